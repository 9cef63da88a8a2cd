/* bench_vit: ViT-B/16 (CLIP layout, random weights) on libgtl's inference
 * path, next to a oneDNN matmul ceiling measured in the same run and PyTorch
 * 1.13 on the same network (examples/bench_vit_torch.py).
 *
 * The machine may be shared: every time is the best of several runs (the
 * median is printed too), the ceiling as well, so their ratio is meaningful.
 *
 * Prints: fp32 ms/img at B = 1 and B = 8, GFLOP/s (35.1 GFLOP per image),
 * the ratio to the matmul ceiling (197x768x3072, and 1576x768x3072 for B = 8),
 * bf16 where the CPU has native bf16, the tape path (no grad) for
 * comparison, the time per op kind at B = 8, and PyTorch's ms/img as a ratio.
 *
 * Build only (not a test: it takes about a minute).
 * Usage: bench_vit [--no-torch] [--reps N]
 * Threads follow OMP_NUM_THREADS (default: all cores); PyTorch gets the same
 * count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gtl/gtl.h"
#include "nn/vit.h"

#ifndef GTL_BENCH_VIT_TORCH_PY
#  define GTL_BENCH_VIT_TORCH_PY "bench_vit_torch.py"
#endif
#define VIT_B16_GFLOP 35.1

#define CHECK(x)                                                                    \
    do {                                                                            \
        gtl_status st_ = (x);                                                       \
        if (st_ != GTL_STATUS_OK) {                                                 \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,              \
                    gtl_last_error());                                              \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GFLOP/s of an (m, 768) @ (768, 3072) oneDNN matmul (+ bias) with weights
 * stored (out, in) as PyTorch stores them, or (in, out); the better of the two
 * is the ceiling. */
static double matmul_gflops(gtl__ctx *ctx, int64_t m, int reps, bool w_out_in)
{
    int64_t k = 768, n = 3072;
    float *a = gtl__malloc_aligned((size_t)(m * k) * sizeof(float));
    float *b = gtl__malloc_aligned((size_t)(k * n) * sizeof(float));
    float *c = gtl__malloc_aligned((size_t)(m * n) * sizeof(float));
    float *bias = gtl__calloc_aligned((size_t)n * sizeof(float));
    if (a == NULL || b == NULL || c == NULL || bias == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    gtl__rng rng;
    gtl__rng_seed(&rng, 1);
    gtl__rng_fill_uniform(&rng, a, m * k, -1.0f, 1.0f);
    gtl__rng_fill_uniform(&rng, b, k * n, -1.0f, 1.0f);
    gtl__mm_desc d;
    gtl__mm_desc_2d(&d, m, n, k, false, w_out_in);
    d.has_bias = true;
    CHECK(gtl__mm(ctx, &d, a, b, bias, c));
    double t = 1e30; /* best of reps: the machine is shared, the minimum is the signal */
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        CHECK(gtl__mm(ctx, &d, a, b, bias, c));
        double ti = now_s() - t0;
        t = ti < t ? ti : t;
    }
    gtl__free_aligned(a);
    gtl__free_aligned(b);
    gtl__free_aligned(c);
    gtl__free_aligned(bias);
    return 2.0 * (double)(m * k * n) / t * 1e-9;
}

static double matmul_ceiling(gtl__ctx *ctx, int64_t m, int reps)
{
    double a = matmul_gflops(ctx, m, reps, true);
    double b = matmul_gflops(ctx, m, reps, false);
    printf("  matmul %lldx768x3072: weights (out, in) %.1f GFLOP/s, (in, out) %.1f GFLOP/s\n",
           (long long)m, a, b);
    return a > b ? a : b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ms per image of the inference path at batch nb, best and median of reps
 * runs after one warm-up run. */
static void time_infer(gtl__vit_infer *inf, const float *img, int64_t nb, int reps, float *out,
                       double *best, double *median)
{
    double t[64];
    if (reps > 64)
        reps = 64;
    CHECK(gtl__vit_infer_run(inf, img, nb, GTL__VIT_FEAT_BOTH, out));
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        CHECK(gtl__vit_infer_run(inf, img, nb, GTL__VIT_FEAT_BOTH, out));
        t[i] = (now_s() - t0) / (double)nb * 1e3;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *best = t[0];
    *median = t[reps / 2];
}

static double time_tape(gtl__vit *vit, gtl__tape *tape, const float *img, int64_t nb, int reps)
{
    int64_t ne[4] = {nb, 3, 224, 224};
    double best = 1e30;
    tape->grad_enabled = false;
    for (int i = 0; i <= reps; i++) {
        gtl__tensor *x, *y;
        gtl__tape_reset(tape);
        double t0 = now_s();
        CHECK(gtl__tape_leaf(tape, 4, ne, img, false, &x));
        CHECK(gtl__vit_forward(vit, tape, x, GTL__VIT_FEAT_BOTH, &y));
        double t = now_s() - t0;
        if (i > 0 && t < best) /* the first run is the warm-up */
            best = t;
    }
    gtl__tape_reset(tape);
    return best / (double)nb * 1e3;
}

typedef struct torch_result {
    bool ok;
    double ms[2];   /* B = 1, B = 8 */
    double mm_gflops;
} torch_result;

static torch_result run_torch(int n_threads)
{
    torch_result r;
    memset(&r, 0, sizeof r);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "GTL_BENCH_TORCH_THREADS=%d /usr/bin/python3 "
             GTL_BENCH_VIT_TORCH_PY " 2>&1", n_threads);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return r;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        int b;
        double v;
        if (sscanf(line, "torch fp32 B=%d ms_per_img %lf", &b, &v) == 2) {
            r.ms[b == 1 ? 0 : 1] = v;
            got++;
        } else if (sscanf(line, "torch matmul 197x768x3072 gflops %lf", &v) == 1) {
            r.mm_gflops = v;
        } else {
            printf("  torch: %s", line);
        }
    }
    r.ok = pclose(p) == 0 && got == 2;
    return r;
}

int main(int argc, char **argv)
{
    bool torch = true;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-torch") == 0)
            torch = false;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
    }
    if (reps < 1)
        reps = 1;

    int32_t n_threads = 0;
    gtl_num_threads(&n_threads);
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la != NULL) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1.0;
        fclose(la);
    }
    char ver[64];
    gtl__dnnl_version_string(ver, sizeof ver);
    printf("bench_vit: ViT-B/16 (CLIP layout, random weights), 35.1 GFLOP/img\n");
    printf("oneDNN %s, ISA %s, native bf16 %s, %d threads, load average %.2f\n", ver,
           gtl__dnnl_isa_name(), gtl__dnnl_has_bf16() ? "yes" : "no", (int)n_threads, load[0]);

    gtl__ctx *ctx;
    gtl__rng rng;
    gtl__tape *tape;
    CHECK(gtl__ctx_create(&ctx));
    gtl__rng_seed(&rng, 42);
    CHECK(gtl__tape_create(ctx, &rng, &tape));
    gtl__vit_config cfg;
    gtl__paramset ps;
    gtl__vit vit;
    CHECK(gtl__vit_preset("ViT-B/16", &cfg));
    gtl__paramset_init(&ps);
    CHECK(gtl__vit_init(&vit, &cfg, &ps, NULL));
    CHECK(gtl__paramset_finalize(&ps));
    CHECK(gtl__vit_init_weights(&vit, &rng));

    int64_t max_b = 8, fd = gtl__vit_feature_dim(&cfg, GTL__VIT_FEAT_BOTH);
    float *img = malloc((size_t)(max_b * 3 * 224 * 224) * sizeof(float));
    float *out = malloc((size_t)(max_b * fd) * sizeof(float));
    if (img == NULL || out == NULL)
        return 1;
    gtl__rng_fill_uniform(&rng, img, max_b * 3 * 224 * 224, -2.0f, 2.0f);

    printf("\nmatmul ceiling (oneDNN matmul + bias, same run):\n");
    double ceil1 = matmul_ceiling(ctx, 197, 30);
    double ceil8 = matmul_ceiling(ctx, 1576, 8);

    gtl__vit_infer *inf;
    double t0 = now_s();
    CHECK(gtl__vit_infer_create(&vit, ctx, false, &inf));
    printf("inference engine: weights prepared in %.0f ms, %.1f MB of reordered copies\n",
           (now_s() - t0) * 1e3, (double)gtl__vit_infer_weight_bytes(inf) / 1e6);

    printf("\n%-20s %14s %16s %10s %10s\n", "fp32 inference", "best ms/img", "(median)",
           "GFLOP/s", "/ ceiling");
    double ms[2], med;
    int64_t bs[2] = {1, 8};
    for (int i = 0; i < 2; i++) {
        time_infer(inf, img, bs[i], i == 0 ? 3 * reps : reps, out, &ms[i], &med);
        double gf = VIT_B16_GFLOP / ms[i] * 1e3;
        printf("  B=%-17lld %14.1f %16.1f %10.1f %9.0f%%\n", (long long)bs[i], ms[i], med, gf,
               100.0 * gf / (i == 0 ? ceil1 : ceil8));
    }
    if (gtl__dnnl_has_bf16()) {
        gtl__vit_infer *binf;
        CHECK(gtl__vit_infer_create(&vit, ctx, true, &binf));
        for (int i = 0; i < 2; i++) {
            double m, mm;
            time_infer(binf, img, bs[i], reps, out, &m, &mm);
            printf("  bf16 B=%-12lld %14.1f %16.1f %10.1f\n", (long long)bs[i], m, mm,
                   VIT_B16_GFLOP / m * 1e3);
        }
        gtl__vit_infer_destroy(binf);
    } else {
        printf("  bf16: bf16 unsupported on this CPU (oneDNN ISA %s): no native bf16 "
               "kernels, the bf16 option runs fp32\n", gtl__dnnl_isa_name());
    }
    double tape_ms = time_tape(&vit, tape, img, 1, 2);
    printf("  tape path, B=1     %14.1f %16s %10.1f\n", tape_ms, "", VIT_B16_GFLOP / tape_ms * 1e3);

    /* Time per op kind at B = 8. */
    gtl__vit_infer_set_profile(inf, true);
    gtl__vit_infer_profile_reset(inf);
    CHECK(gtl__vit_infer_run(inf, img, 8, GTL__VIT_FEAT_BOTH, out));
    const double *prof = gtl__vit_infer_profile(inf);
    double total = 0.0;
    for (int k = 0; k < GTL__VIT_PROF_COUNT; k++)
        total += prof[k];
    /* GFLOP of each kind for 8 images (12 blocks; T = 197, W = 768). */
    double t = 197, w = 768, gflop[GTL__VIT_PROF_COUNT] = {0};
    gflop[GTL__VIT_PROF_PATCH] = 8 * 2.0 * 196 * 768 * 768 * 1e-9;
    gflop[GTL__VIT_PROF_QKV] = 8 * 12 * 2.0 * t * w * 3 * w * 1e-9;
    gflop[GTL__VIT_PROF_QK] = 8 * 12 * 2.0 * t * t * w * 1e-9;
    gflop[GTL__VIT_PROF_PV] = gflop[GTL__VIT_PROF_QK];
    gflop[GTL__VIT_PROF_OUT] = 8 * 12 * 2.0 * t * w * w * 1e-9;
    gflop[GTL__VIT_PROF_FC1] = 8 * 12 * 2.0 * t * w * 4 * w * 1e-9;
    gflop[GTL__VIT_PROF_FC2] = gflop[GTL__VIT_PROF_FC1];
    printf("\nprofile, B=8, one run (%.0f ms, %.1f ms/img):\n", total, total / 8);
    printf("  %-14s %8s %6s %9s\n", "op kind", "ms", "share", "GFLOP/s");
    for (int k = 0; k < GTL__VIT_PROF_COUNT; k++) {
        if (prof[k] <= 0.0)
            continue;
        printf("  %-14s %8.1f %5.1f%%", gtl__vit_prof_name(k), prof[k], 100.0 * prof[k] / total);
        if (gflop[k] > 0.0)
            printf(" %9.1f", gflop[k] / prof[k] * 1e3);
        printf("\n");
    }

    if (torch) {
        printf("\nPyTorch 1.13 (same network, fp32, %d threads, best of runs; %s):\n",
               (int)n_threads, GTL_BENCH_VIT_TORCH_PY);
        torch_result tr = run_torch((int)n_threads);
        if (!tr.ok) {
            printf("  not available\n");
        } else {
                printf("  torch matmul 197x768x3072: %.1f GFLOP/s\n", tr.mm_gflops);
            for (int i = 0; i < 2; i++)
                printf("  B=%lld: torch %.1f ms/img, libgtl %.1f ms/img: libgtl %.2fx faster\n",
                       (long long)bs[i], tr.ms[i], ms[i], tr.ms[i] / ms[i]);
        }
    }

    gtl__vit_infer_destroy(inf);
    free(img);
    free(out);
    gtl__vit_fini(&vit);
    gtl__paramset_fini(&ps);
    gtl__tape_destroy(tape);
    gtl__ctx_destroy(ctx);
    return 0;
}
