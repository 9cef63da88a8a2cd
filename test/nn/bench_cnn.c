/* bench_cnn: wall time of the CNN backbone (not a test).
 *
 *   bench_cnn [batch 64] [size 64] [width 32] [reps 5] [threads 2]
 *
 * Per repetition: one training step (tape forward with batch statistics,
 * linear head + cross-entropy over 100 classes, backward; no optimizer) and
 * one inference forward (evaluation mode, no tape recording). Prints the best
 * and the median of the repetitions after one warm-up (which creates the
 * primitives), and the oneDNN implementations used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gtl/runtime.h"
#include "nn/cnn.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    printf("%-22s best %8.1f ms   median %8.1f ms   worst %8.1f ms\n", what, t[0], t[n / 2],
           t[n - 1]);
}

#define CHECK(x)                                                                   \
    do {                                                                           \
        if ((x) != GTL_STATUS_OK) {                                                \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, gtl_last_error()); \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    int64_t nb = argc > 1 ? atoll(argv[1]) : 64;
    int64_t size = argc > 2 ? atoll(argv[2]) : 64;
    int64_t width = argc > 3 ? atoll(argv[3]) : 32;
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    int threads = argc > 5 ? atoi(argv[5]) : 2;
    if (reps < 1 || reps > 100)
        reps = 5;
    CHECK(gtl_set_num_threads(threads));

    gtl__cnn_config cfg;
    gtl__cnn_config_default(&cfg);
    cfg.image_size = size;
    cfg.width = width;
    gtl__paramset ps, hps;
    gtl__cnn cnn;
    gtl__cnn_head head;
    gtl__rng rng;
    gtl__ctx *ctx;
    gtl__tape *tape;
    gtl__paramset_init(&ps);
    gtl__paramset_init(&hps);
    CHECK(gtl__cnn_init(&cnn, &cfg, &ps, NULL));
    CHECK(gtl__paramset_finalize(&ps));
    CHECK(gtl__paramset_alloc_grad(&ps));
    CHECK(gtl__cnn_head_init(&head, &hps, NULL, gtl__cnn_feature_dim(&cfg), 100));
    CHECK(gtl__paramset_finalize(&hps));
    CHECK(gtl__paramset_alloc_grad(&hps));
    gtl__rng_seed(&rng, 1);
    CHECK(gtl__cnn_init_weights(&cnn, &rng));
    CHECK(gtl__cnn_head_init_weights(&head, &rng));
    CHECK(gtl__ctx_create(&ctx));
    CHECK(gtl__tape_create(ctx, &rng, &tape));

    int64_t n_img = nb * 3 * size * size;
    float *img = malloc((size_t)n_img * sizeof(float));
    int64_t *labels = malloc((size_t)nb * sizeof(int64_t));
    gtl__rng_fill_normal(&rng, img, n_img, 0.0f, 1.0f);
    for (int64_t i = 0; i < nb; i++)
        labels[i] = (int64_t)gtl__rng_below(&rng, 100);
    int64_t ne[4] = {nb, 3, size, size};

    printf("resnet_small: S %lld, width %lld, %lld weights, batch %lld, %d threads, isa %s\n",
           (long long)size, (long long)width, (long long)gtl__cnn_num_weights(&cnn),
           (long long)nb, threads, gtl__dnnl_isa_name());
    double *tf = calloc((size_t)reps, sizeof(double)), *tb = calloc((size_t)reps, sizeof(double));
    double *ts = calloc((size_t)reps, sizeof(double)), *ti = calloc((size_t)reps, sizeof(double));
    for (int r = -1; r < reps; r++) {
        gtl__tensor *x, *loss, *feat;
        /* Training step. */
        gtl__tape_reset(tape);
        tape->training = true;
        tape->grad_enabled = true;
        gtl__paramset_zero_grad(&ps);
        gtl__paramset_zero_grad(&hps);
        double t0 = now_ms();
        CHECK(gtl__tape_leaf(tape, 4, ne, img, false, &x));
        CHECK(gtl__cnn_supervised_loss(&cnn, &head, tape, x, labels, &loss, NULL));
        double t1 = now_ms();
        CHECK(gtl__tape_backward(tape, loss));
        double t2 = now_ms();
        float loss_v = loss->data[0]; /* before the tape is reset */
        /* Inference. */
        gtl__tape_reset(tape);
        tape->training = false;
        tape->grad_enabled = false;
        double t3 = now_ms();
        CHECK(gtl__tape_leaf(tape, 4, ne, img, false, &x));
        CHECK(gtl__cnn_forward(&cnn, tape, x, &feat));
        double t4 = now_ms();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
            ts[r] = t2 - t0;
            ti[r] = t4 - t3;
        } else {
            printf("warm-up: step %.1f ms (primitive creation included), loss %.4f\n", t2 - t0,
                   loss_v);
        }
    }
    report("train forward", tf, reps);
    report("train backward", tb, reps);
    report("train step (f+b)", ts, reps);
    report("inference forward", ti, reps);
    printf("arena high water: %.1f MB\n", (double)tape->arena.high_water / 1e6);
    if (getenv("BENCH_PRIMS") != NULL)
        for (int64_t i = 0; i < gtl__ctx_num_prims(ctx); i++) {
            const char *op, *impl;
            bool hot;
            uint64_t n_exec;
            gtl__ctx_prim_info(ctx, i, &op, &impl, &hot, &n_exec);
            printf("  %-20s %-28s hot %d runs %llu\n", op, impl, hot, (unsigned long long)n_exec);
        }
    free(tf);
    free(tb);
    free(ts);
    free(ti);
    free(labels);
    free(img);
    gtl__tape_destroy(tape);
    gtl__ctx_destroy(ctx);
    gtl__cnn_fini(&cnn);
    gtl__paramset_fini(&hps);
    gtl__paramset_fini(&ps);
    return 0;
}
