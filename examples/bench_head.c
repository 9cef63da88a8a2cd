/* bench_head: speed of the GTL head in libgtl (compare with bench_head_torch.py).
 *
 * Measures, at the method's default sizes (F 1280, H 256, Nc 128, Nm 64,
 * d 128, dropout 0.5):
 *   - one B1 training step (gtl_model_train_step, Adam + clipping) on a batch
 *     of 64, split into forward/backward and optimizer apply;
 *   - one N2 training step (16 classes x 4);
 *   - a whole gtl_adapt (default schedule: N1 60 epochs then N2 60 epochs)
 *     for 5-way 1-shot (10 support features: 1 RGB + 1 sketch per class) and
 *     61-way 5-shot (610 support features);
 *   - allocations per steady-state step (gtl__alloc_count);
 *   - the oneDNN implementation of every cached primitive.
 *
 * Usage: bench_head [--steps N] [--reps R] [--skip-61] [--adapt-only] [--b1-only]
 * Not a test: it prints numbers. See docs/head-verification.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_model.h"
#include "core/core.h"
#include "dnnl/ctx.h"
#include "gtl/gtl.h"

#define CHECK(call)                                                                        \
    do {                                                                                   \
        gtl_status st_ = (call);                                                           \
        if (st_ != GTL_STATUS_OK) {                                                        \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, gtl_strerror(st_),      \
                    gtl_last_error());                                                     \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

enum { F = 1280, B = 64 };

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static gtl_model *make_model(void)
{
    gtl_model *m = NULL;
    CHECK(gtl_model_create(&m));
    CHECK(gtl_model_set_i64(m, GTL_MODEL_SEED, 0));
    CHECK(gtl_model_init(m));
    return m;
}

static gtl_optimizer *make_adam(void)
{
    gtl_optimizer *opt = NULL;
    CHECK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 1e-3f));
    CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, 1e-4f));
    CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, 2.0f));
    return opt;
}

/* Pseudo-random features: a cheap LCG, N(0,1)-ish via sums of uniforms. */
static uint64_t lcg = 0x12345678u;
static float frand(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) & 0xffffff) / 16777216.0f;
}
static float nrand(void)
{
    return (frand() + frand() + frand() + frand() - 2.0f) * 1.7320508f;
}

typedef struct step_times {
    double step, step_min, cpu, fb, apply, allocs;
} step_times;

/* Times a stage: steps of (forward_backward, apply) on fixed batches. */
static step_times bench_stage(gtl_model *m, gtl_stage stage, int64_t n_classes, int steps)
{
    bool cls = stage == GTL_STAGE_B2 || stage == GTL_STAGE_N2;
    float *x = malloc((size_t)B * F * sizeof(float));
    int64_t y[B];
    for (int64_t i = 0; i < (int64_t)B * F; i++)
        x[i] = nrand();
    for (int64_t i = 0; i < B; i++)
        y[i] = n_classes > 0 ? i % n_classes : 0;
    gtl_optimizer *opt = make_adam();
    CHECK(gtl_model_set_stage(m, stage, cls ? n_classes : 0));
    double *t_step = malloc((size_t)steps * sizeof(double));
    double *t_fb = malloc((size_t)steps * sizeof(double));
    double *t_ap = malloc((size_t)steps * sizeof(double));
    for (int s = 0; s < 3; s++) /* warm-up: primitives, arena, optimizer state */
        CHECK(gtl_model_train_step(m, opt, x, B, F, cls ? y : NULL, NULL, 0));
    uint64_t a0 = gtl__alloc_count();
    double c0 = cpu_ms();
    for (int s = 0; s < steps; s++) {
        double t0 = now_ms();
        CHECK(gtl_model_forward_backward(m, x, B, F, cls ? y : NULL, NULL, 0));
        double t1 = now_ms();
        CHECK(gtl_model_apply(m, opt, NULL));
        double t2 = now_ms();
        t_fb[s] = t1 - t0;
        t_ap[s] = t2 - t1;
        t_step[s] = t2 - t0;
    }
    step_times r;
    r.cpu = (cpu_ms() - c0) / steps;
    r.allocs = (double)(gtl__alloc_count() - a0) / steps;
    r.step = median(t_step, steps);
    r.step_min = t_step[0]; /* sorted by median() */
    r.fb = median(t_fb, steps);
    r.apply = median(t_ap, steps);
    free(t_step);
    free(t_fb);
    free(t_ap);
    free(x);
    gtl_optimizer_destroy(opt);
    return r;
}

/* A support set: n_way classes, shots per modality, 2 modalities; features
 * are class prototypes plus a modality shift plus noise. */
static gtl_dataset *make_support(int64_t n_way, int64_t shots)
{
    gtl_dataset *ds = NULL;
    CHECK(gtl_dataset_create(F, &ds));
    float *proto = malloc((size_t)n_way * F * sizeof(float));
    float shift[2][F], x[F];
    for (int64_t i = 0; i < n_way * F; i++)
        proto[i] = nrand();
    for (int m = 0; m < 2; m++)
        for (int j = 0; j < F; j++)
            shift[m][j] = 0.5f * nrand();
    for (int64_t c = 0; c < n_way; c++)
        for (int32_t mod = 0; mod < 2; mod++)
            for (int64_t k = 0; k < shots; k++) {
                for (int j = 0; j < F; j++)
                    x[j] = proto[c * F + j] + shift[mod][j] + 0.5f * nrand();
                CHECK(gtl_dataset_add(ds, x, 1, &c, &mod, NULL));
            }
    free(proto);
    return ds;
}

typedef struct adapt_count {
    int64_t steps;
} adapt_count;

static int count_steps(void *ud, gtl_stage stage, int64_t step, int64_t n_steps,
                       const float *stats)
{
    ((adapt_count *)ud)->steps++;
    return 0;
}

static void bench_adapt(const char *label, int64_t n_way, int64_t shots, int reps)
{
    gtl_dataset *sup = make_support(n_way, shots);
    double *t = malloc((size_t)reps * sizeof(double));
    adapt_count cnt = {0};
    double cpu = 0.0;
    for (int r = 0; r < reps; r++) {
        gtl_model *m = make_model(); /* creation and init are not timed */
        cnt.steps = 0;
        double t0 = now_ms(), c0 = cpu_ms();
        CHECK(gtl_adapt(m, sup, count_steps, &cnt));
        t[r] = now_ms() - t0;
        cpu = cpu_ms() - c0;
        gtl_model_destroy(m);
    }
    int64_t n = 0;
    gtl_dataset_size(sup, &n);
    double med = median(t, reps);
    printf("gtl_adapt %-14s support %4lld: %9.1f ms per adapt (median of %d, min %.1f; cpu of "
           "the last %.1f), %lld steps, %.2f ms/step\n",
           label, (long long)n, med, reps, t[0], cpu, (long long)cnt.steps,
           med / (double)cnt.steps);
    free(t);
    gtl_dataset_destroy(sup);
}

int main(int argc, char **argv)
{
    int steps = 20, reps = 3;
    bool skip61 = false, adapt_only = false, b1_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--skip-61") == 0)
            skip61 = true;
        else if (strcmp(argv[i], "--adapt-only") == 0)
            adapt_only = true; /* for profiling gtl_adapt */
        else if (strcmp(argv[i], "--b1-only") == 0)
            b1_only = true; /* for profiling the B1 step */
    }
    if (steps < 1)
        steps = 1;
    if (reps < 1)
        reps = 1;
    char info[512];
    size_t len = 0;
    CHECK(gtl_build_info(info, sizeof info, &len));
    int32_t thr = 0;
    CHECK(gtl_num_threads(&thr));
    printf("libgtl: %s\nthreads %d, ISA %s\n", info, thr, gtl__dnnl_isa_name());

    if (adapt_only) {
        bench_adapt("5-way 1-shot", 5, 1, reps);
        if (!skip61)
            bench_adapt("61-way 5-shot", 61, 5, 1);
        return 0;
    }
    gtl_model *m = make_model();
    int64_t np = 0;
    CHECK(gtl_model_num_params(m, &np));
    printf("head: F 1280, H 256, Nc 128, Nm 64, d 128: %lld parameters\n", (long long)np);
    step_times b1 = bench_stage(m, GTL_STAGE_B1, 0, steps);
    printf("B1 step (B %d): %8.2f ms/step (min %8.2f, cpu %8.2f; forward+backward %7.2f, "
           "apply %7.2f), %.2f allocations/step\n",
           B, b1.step, b1.step_min, b1.cpu, b1.fb, b1.apply, b1.allocs);
    if (b1_only) {
        gtl_model_destroy(m);
        return 0;
    }
    step_times n1 = bench_stage(m, GTL_STAGE_N1, 0, steps);
    printf("N1 step (B %d): %8.2f ms/step (min %8.2f, cpu %8.2f; forward+backward %7.2f, "
           "apply %7.2f), %.2f allocations/step\n",
           B, n1.step, n1.step_min, n1.cpu, n1.fb, n1.apply, n1.allocs);
    step_times n2 = bench_stage(m, GTL_STAGE_N2, 16, steps);
    printf("N2 step (B %d, 16 classes): %8.2f ms/step (min %8.2f, cpu %8.2f; forward+backward "
           "%7.2f, apply %7.2f), %.2f allocations/step\n",
           B, n2.step, n2.step_min, n2.cpu, n2.fb, n2.apply, n2.allocs);

    printf("primitives (op, implementation, hot, executions):\n");
    for (int64_t i = 0; i < gtl__ctx_num_prims(m->ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n_exec;
        gtl__ctx_prim_info(m->ctx, i, &op, &impl, &hot, &n_exec);
        printf("  %-24s %-28s %s %llu\n", op, impl, hot ? "hot" : "   ",
               (unsigned long long)n_exec);
    }
    gtl_model_destroy(m);

    bench_adapt("5-way 1-shot", 5, 1, reps);
    if (!skip61)
        bench_adapt("61-way 5-shot", 61, 5, 1);
    printf("RESULT b1_ms %.3f n1_ms %.3f n2_ms %.3f allocs_b1 %.2f allocs_n2 %.2f\n", b1.step,
           n1.step, n2.step, b1.allocs, n2.allocs);
    return 0;
}
