/* conv2d and pooling: forward against naive loops (double), gradients against
 * central differences over random stride / padding / kernel sizes, bad
 * arguments, and the oneDNN kernels picked at ViT-B/16 patch-embedding and
 * small-CNN shapes (printed; ref: fails). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gtl_test.h"

typedef struct conv_case {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw;
    bool bias;
} conv_case;

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p)
{
    return (in + 2 * p - k) / s + 1;
}

static void naive_conv(const conv_case *k, const float *x, const float *wt, const float *b,
                       float *y)
{
    int64_t oh = out_size(k->h, k->kh, k->sh, k->ph), ow = out_size(k->w, k->kw, k->sw, k->pw);
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t o = 0; o < k->o; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < k->c; c++)
                        for (int64_t u = 0; u < k->kh; u++)
                            for (int64_t v = 0; v < k->kw; v++) {
                                int64_t y0 = i * k->sh - k->ph + u, x0 = j * k->sw - k->pw + v;
                                if (y0 < 0 || y0 >= k->h || x0 < 0 || x0 >= k->w)
                                    continue;
                                s += (double)x[((n * k->c + c) * k->h + y0) * k->w + x0] *
                                     wt[((o * k->c + c) * k->kh + u) * k->kw + v];
                            }
                    y[((n * k->o + o) * oh + i) * ow + j] = (float)s;
                }
}

static conv_case random_conv(gt_env *env, int64_t max_hw, int64_t max_c)
{
    conv_case k;
    k.n = gt_randint(env, 1, 3);
    k.c = gt_randint(env, 1, max_c);
    k.o = gt_randint(env, 1, max_c);
    k.kh = gt_randint(env, 1, 4);
    k.kw = gt_randint(env, 1, 4);
    k.sh = gt_randint(env, 1, 3);
    k.sw = gt_randint(env, 1, 3);
    k.ph = gt_randint(env, 0, 2);
    k.pw = gt_randint(env, 0, 2);
    /* at least one output row / column */
    int64_t min_h = k.kh - 2 * k.ph, min_w = k.kw - 2 * k.pw;
    k.h = gt_randint(env, min_h > 1 ? min_h : 1, max_hw);
    k.w = gt_randint(env, min_w > 1 ? min_w : 1, max_hw);
    if (k.h < min_h)
        k.h = min_h;
    if (k.w < min_w)
        k.w = min_w;
    k.bias = gt_randint(env, 0, 1) == 1;
    return k;
}

static void check_conv_forward(gt_env *env, const conv_case *k)
{
    int64_t xs[4] = {k->n, k->c, k->h, k->w}, ws[4] = {k->o, k->c, k->kh, k->kw}, bs[1] = {k->o};
    gtl__tensor *x = gt_leaf(env, 4, xs, NULL, false);
    gtl__tensor *wt = gt_leaf(env, 4, ws, NULL, false);
    gtl__tensor *b = k->bias ? gt_leaf(env, 1, bs, NULL, false) : NULL;
    gtl__tensor *y;
    gtl_status st = gtl__op_conv2d(env->tape, x, wt, b, k->sh, k->sw, k->ph, k->pw, &y);
    if (st != GTL_STATUS_OK)
        fail_msg("conv2d: %s", gtl_last_error());
    int64_t oh = out_size(k->h, k->kh, k->sh, k->ph), ow = out_size(k->w, k->kw, k->sw, k->pw);
    assert_int_equal(y->nd, 4);
    assert_int_equal(y->ne[0], k->n);
    assert_int_equal(y->ne[1], k->o);
    assert_int_equal(y->ne[2], oh);
    assert_int_equal(y->ne[3], ow);
    float *ref = malloc((size_t)y->n * sizeof(float));
    naive_conv(k, x->data, wt->data, b ? b->data : NULL, ref);
    char what[160];
    snprintf(what, sizeof what,
             "conv2d forward N%lld C%lld %lldx%lld O%lld k%lldx%lld s%lldx%lld p%lldx%lld b%d",
             (long long)k->n, (long long)k->c, (long long)k->h, (long long)k->w,
             (long long)k->o, (long long)k->kh, (long long)k->kw, (long long)k->sh,
             (long long)k->sw, (long long)k->ph, (long long)k->pw, k->bias);
    gt_assert_close(y->data, ref, y->n, 1e-5, 1e-4, what);
    free(ref);
    gtl__tape_reset(env->tape);
}

static void test_conv_forward(void **state)
{
    gt_env *env = *state;
    static const conv_case fixed[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, false}, /* 1x1 everything */
        {1, 1, 5, 5, 1, 5, 5, 1, 1, 0, 0, true},  /* kernel = input: 1x1 output */
        {2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 1, true},  /* rectangular kernel, mixed strides */
        {1, 2, 4, 4, 3, 1, 1, 3, 3, 0, 0, false}, /* stride > kernel */
        {2, 2, 3, 3, 2, 3, 3, 1, 1, 2, 2, true},  /* padding 2 on a 3x3 input */
        {1, 3, 32, 32, 8, 16, 16, 16, 16, 0, 0, true}, /* patch embedding, small */
        {2, 16, 9, 9, 24, 3, 3, 2, 2, 1, 1, true},     /* channels past one SIMD block */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_conv_forward(env, &fixed[i]);
    for (int rep = 0; rep < 12; rep++) {
        conv_case k = random_conv(env, 12, 10);
        check_conv_forward(env, &k);
    }
}

typedef struct conv_ud {
    conv_case k;
} conv_ud;

static gtl_status conv_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    const conv_case *k = &((conv_ud *)ud)->k;
    return gtl__op_conv2d(t, in[0], in[1], k->bias ? in[2] : NULL, k->sh, k->sw, k->ph, k->pw,
                          out);
}

/* frozen: 0 all inputs checked, 1 src constant, 2 weights and bias constant. */
static void gradcheck_conv(gt_env *env, const conv_case *k, int frozen)
{
    conv_ud u = {*k};
    gt_input in[3] = {
        {.nd = 4, .ne = {k->n, k->c, k->h, k->w}, .no_grad = frozen == 1},
        {.nd = 4, .ne = {k->o, k->c, k->kh, k->kw}, .no_grad = frozen == 2},
        {.nd = 1, .ne = {k->o}, .no_grad = frozen == 2},
    };
    char name[128];
    snprintf(name, sizeof name, "conv2d C%lld %lldx%lld O%lld k%lldx%lld s%lld,%lld p%lld,%lld%s",
             (long long)k->c, (long long)k->h, (long long)k->w, (long long)k->o,
             (long long)k->kh, (long long)k->kw, (long long)k->sh, (long long)k->sw,
             (long long)k->ph, (long long)k->pw, frozen == 1 ? " (src frozen)"
                                                 : frozen == 2 ? " (weights frozen)" : "");
    gt_gradcheck(env, name, conv_fn, &u, k->bias ? 3 : 2, in, NULL);
}

static void test_conv_grad(void **state)
{
    gt_env *env = *state;
    static const conv_case fixed[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, true},
        {2, 2, 5, 4, 3, 3, 2, 2, 1, 1, 1, true},
        {1, 3, 8, 8, 4, 4, 4, 4, 4, 0, 0, true}, /* patch embedding, small */
        {1, 9, 5, 5, 10, 3, 3, 1, 1, 1, 1, false},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        gradcheck_conv(env, &fixed[i], 0);
    for (int rep = 0; rep < 8; rep++) {
        conv_case k = random_conv(env, 7, 5);
        gradcheck_conv(env, &k, 0);
    }
    conv_case k = {2, 3, 5, 6, 4, 3, 3, 1, 2, 1, 0, true};
    gradcheck_conv(env, &k, 1);
    gradcheck_conv(env, &k, 2);
}

/* ---- pooling ---------------------------------------------------------------- */

typedef struct pool_case {
    int64_t n, c, h, w, kh, kw, sh, sw, ph, pw;
} pool_case;

/* kind 0 max, 1 average excluding padding. */
static void naive_pool(const pool_case *k, int kind, const float *x, float *y)
{
    int64_t oh = out_size(k->h, k->kh, k->sh, k->ph), ow = out_size(k->w, k->kw, k->sw, k->pw);
    for (int64_t nc = 0; nc < k->n * k->c; nc++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                double s = 0.0, mx = -INFINITY;
                int64_t cnt = 0;
                for (int64_t u = 0; u < k->kh; u++)
                    for (int64_t v = 0; v < k->kw; v++) {
                        int64_t y0 = i * k->sh - k->ph + u, x0 = j * k->sw - k->pw + v;
                        if (y0 < 0 || y0 >= k->h || x0 < 0 || x0 >= k->w)
                            continue;
                        double val = x[(nc * k->h + y0) * k->w + x0];
                        s += val;
                        mx = val > mx ? val : mx;
                        cnt++;
                    }
                y[(nc * oh + i) * ow + j] = (float)(kind == 0 ? mx : s / (double)cnt);
            }
}

static pool_case random_pool(gt_env *env, int64_t max_hw, int64_t max_c)
{
    pool_case k;
    k.n = gt_randint(env, 1, 3);
    k.c = gt_randint(env, 1, max_c);
    k.kh = gt_randint(env, 1, 4);
    k.kw = gt_randint(env, 1, 4);
    k.sh = gt_randint(env, 1, 3);
    k.sw = gt_randint(env, 1, 3);
    k.ph = gt_randint(env, 0, k.kh - 1);
    k.pw = gt_randint(env, 0, k.kw - 1);
    int64_t min_h = k.kh - 2 * k.ph, min_w = k.kw - 2 * k.pw;
    k.h = gt_randint(env, min_h > 1 ? min_h : 1, max_hw);
    k.w = gt_randint(env, min_w > 1 ? min_w : 1, max_hw);
    if (k.h < min_h)
        k.h = min_h;
    if (k.w < min_w)
        k.w = min_w;
    return k;
}

static gtl_status run_pool(gtl__tape *t, int kind, const pool_case *k, gtl__tensor *x,
                           gtl__tensor **y)
{
    if (kind == 0)
        return gtl__op_maxpool2d(t, x, k->kh, k->kw, k->sh, k->sw, k->ph, k->pw, y);
    if (kind == 1)
        return gtl__op_avgpool2d(t, x, k->kh, k->kw, k->sh, k->sw, k->ph, k->pw, y);
    return gtl__op_global_avgpool(t, x, y);
}

static void check_pool_forward(gt_env *env, int kind, const pool_case *k)
{
    static const char *names[3] = {"maxpool2d", "avgpool2d", "global_avgpool"};
    int64_t xs[4] = {k->n, k->c, k->h, k->w};
    gtl__tensor *x = gt_leaf(env, 4, xs, NULL, false);
    gtl__tensor *y;
    gtl_status st = run_pool(env->tape, kind, k, x, &y);
    if (st != GTL_STATUS_OK)
        fail_msg("%s: %s", names[kind], gtl_last_error());
    pool_case g = *k;
    if (kind == 2) {
        g.kh = k->h;
        g.kw = k->w;
        g.sh = g.sw = 1;
        g.ph = g.pw = 0;
        assert_int_equal(y->nd, 2);
        assert_int_equal(y->ne[0], k->n);
        assert_int_equal(y->ne[1], k->c);
    } else {
        assert_int_equal(y->nd, 4);
        assert_int_equal(y->ne[2], out_size(k->h, k->kh, k->sh, k->ph));
        assert_int_equal(y->ne[3], out_size(k->w, k->kw, k->sw, k->pw));
    }
    float *ref = malloc((size_t)y->n * sizeof(float));
    naive_pool(&g, kind == 0 ? 0 : 1, x->data, ref);
    char what[128];
    snprintf(what, sizeof what, "%s forward C%lld %lldx%lld k%lldx%lld s%lld,%lld p%lld,%lld",
             names[kind], (long long)k->c, (long long)k->h, (long long)k->w, (long long)g.kh,
             (long long)g.kw, (long long)g.sh, (long long)g.sw, (long long)g.ph,
             (long long)g.pw);
    gt_assert_close(y->data, ref, y->n, 1e-6, 1e-5, what);
    free(ref);
    gtl__tape_reset(env->tape);
}

static void test_pool_forward(void **state)
{
    gt_env *env = *state;
    static const pool_case fixed[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {2, 3, 7, 7, 3, 3, 2, 2, 1, 1},   /* ResNet stem style */
        {1, 2, 5, 4, 2, 3, 1, 2, 1, 2},   /* rectangular, padding on one side only */
        {2, 20, 9, 9, 2, 2, 2, 2, 0, 0},  /* channels past one SIMD block */
    };
    for (int kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            check_pool_forward(env, kind, &fixed[i]);
        for (int rep = 0; rep < 8; rep++) {
            pool_case k = random_pool(env, 10, 12);
            check_pool_forward(env, kind, &k);
        }
    }
}

typedef struct pool_ud {
    int kind;
    pool_case k;
} pool_ud;

static gtl_status pool_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    pool_ud *u = ud;
    return run_pool(t, u->kind, &u->k, in[0], out);
}

static void gradcheck_pool(gt_env *env, int kind, const pool_case *k)
{
    static const char *names[3] = {"maxpool2d", "avgpool2d", "global_avgpool"};
    pool_ud u = {kind, *k};
    int64_t n = k->n * k->c * k->h * k->w;
    /* Max pooling is not differentiable at ties: use distinct values 0.1
     * apart (a random permutation), well above the finite-difference step. */
    float *vals = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        vals[i] = 0.1f * (float)i - 0.05f * (float)n;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = gt_randint(env, 0, i);
        float t = vals[i];
        vals[i] = vals[j];
        vals[j] = t;
    }
    gt_input in = {.nd = 4, .ne = {k->n, k->c, k->h, k->w}, .data = kind == 0 ? vals : NULL};
    gt_gradcheck_opts o = {.max_checks = 64};
    char name[96];
    if (kind == 2)
        snprintf(name, sizeof name, "%s C%lld %lldx%lld", names[kind], (long long)k->c,
                 (long long)k->h, (long long)k->w);
    else
        snprintf(name, sizeof name, "%s C%lld %lldx%lld k%lldx%lld s%lld,%lld p%lld,%lld",
                 names[kind], (long long)k->c, (long long)k->h, (long long)k->w,
                 (long long)k->kh, (long long)k->kw, (long long)k->sh, (long long)k->sw,
                 (long long)k->ph, (long long)k->pw);
    gt_gradcheck(env, name, pool_fn, &u, 1, &in, &o);
    free(vals);
}

static void test_pool_grad(void **state)
{
    gt_env *env = *state;
    pool_case overlap = {2, 3, 6, 5, 3, 3, 1, 2, 1, 1}; /* overlapping windows */
    pool_case one = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    for (int kind = 0; kind < 3; kind++) {
        gradcheck_pool(env, kind, &overlap);
        gradcheck_pool(env, kind, &one);
        for (int rep = 0; rep < 4; rep++) {
            pool_case k = random_pool(env, 7, 4);
            gradcheck_pool(env, kind, &k);
        }
    }
}

/* ---- bad arguments ------------------------------------------------------------ */

static void expect_invalid(gtl_status st, gtl__tensor **y, const char *name)
{
    assert_int_equal(st, GTL_STATUS_INVALID_ARG);
    assert_null(*y);
    *y = (gtl__tensor *)1; /* must be reset by the next call */
    if (strstr(gtl_last_error(), name) == NULL)
        fail_msg("message '%s' does not name %s", gtl_last_error(), name);
}

static void test_conv_bad_args(void **state)
{
    gt_env *env = *state;
    gtl__tape *t = env->tape;
    int64_t xs[4] = {2, 3, 8, 8}, ws[4] = {4, 3, 3, 3}, ws_c[4] = {4, 2, 3, 3},
            ws_big[4] = {4, 3, 11, 3}, bs[1] = {4}, bs_bad[1] = {5}, x3[3] = {3, 8, 8},
            x0[4] = {0, 3, 8, 8};
    gtl__tensor *x = gt_leaf(env, 4, xs, NULL, true), *w = gt_leaf(env, 4, ws, NULL, true);
    gtl__tensor *w_c = gt_leaf(env, 4, ws_c, NULL, true);
    gtl__tensor *w_big = gt_leaf(env, 4, ws_big, NULL, true);
    gtl__tensor *b_bad = gt_leaf(env, 1, bs_bad, NULL, true), *b = gt_leaf(env, 1, bs, NULL, true);
    gtl__tensor *x_3d = gt_leaf(env, 3, x3, NULL, true), *x_0 = gt_leaf(env, 4, x0, NULL, true);
    gtl__tensor *y = (gtl__tensor *)1;

    expect_invalid(gtl__op_conv2d(t, NULL, w, b, 1, 1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, NULL, b, 1, 1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x_3d, w, b, 1, 1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, w_c, NULL, 1, 1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, w, b_bad, 1, 1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, w, b, 0, 1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, w, b, 1, -1, 0, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, w, b, 1, 1, -1, 0, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x, w_big, NULL, 1, 1, 1, 1, &y), &y, "conv2d");
    expect_invalid(gtl__op_conv2d(t, x_0, w, b, 1, 1, 0, 0, &y), &y, "conv2d");

    expect_invalid(gtl__op_maxpool2d(t, NULL, 2, 2, 2, 2, 0, 0, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_maxpool2d(t, x_3d, 2, 2, 2, 2, 0, 0, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_maxpool2d(t, x, 0, 2, 2, 2, 0, 0, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_maxpool2d(t, x, 2, 2, 0, 2, 0, 0, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_maxpool2d(t, x, 2, 2, 2, 2, 2, 0, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_maxpool2d(t, x, 2, 2, 2, 2, 0, -1, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_maxpool2d(t, x, 9, 2, 1, 1, 0, 0, &y), &y, "maxpool2d");
    expect_invalid(gtl__op_avgpool2d(t, x, 3, 3, 1, 1, 3, 0, &y), &y, "avgpool2d");
    expect_invalid(gtl__op_avgpool2d(t, x_0, 3, 3, 1, 1, 0, 0, &y), &y, "avgpool2d");
    expect_invalid(gtl__op_global_avgpool(t, NULL, &y), &y, "global_avgpool");
    expect_invalid(gtl__op_global_avgpool(t, x_3d, &y), &y, "global_avgpool");
    expect_invalid(gtl__op_global_avgpool(t, x_0, &y), &y, "global_avgpool");
    assert_int_equal(t->n_nodes, 0);
}

/* No node without grad; frozen inputs get no gradient. */
static void test_conv_no_grad(void **state)
{
    gt_env *env = *state;
    int64_t xs[4] = {1, 2, 5, 5}, ws[4] = {3, 2, 3, 3};
    gtl__tensor *x = gt_leaf(env, 4, xs, NULL, false), *w = gt_leaf(env, 4, ws, NULL, false);
    gtl__tensor *y, *p;
    assert_int_equal(gtl__op_conv2d(env->tape, x, w, NULL, 1, 1, 1, 1, &y), GTL_STATUS_OK);
    assert_false(gtl__requires_grad(y));
    assert_int_equal(gtl__op_maxpool2d(env->tape, y, 2, 2, 2, 2, 0, 0, &p), GTL_STATUS_OK);
    assert_false(gtl__requires_grad(p));
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- kernels at model shapes ---------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_prims(gt_env *env)
{
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n_exec;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, &n_exec);
        printf("# %-20s %-22s hot=%d runs=%llu\n", op, impl, hot, (unsigned long long)n_exec);
        assert_true(strncmp(impl, "ref", 3) != 0);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
}

/* ViT-B/16 patch embedding: (B, 3, 224, 224) * (768, 3, 16, 16), stride 16. */
static void test_conv_vit_patch_kernels(void **state)
{
    gt_env *env = *state;
    static const int64_t batches[2] = {1, 8};
    for (int i = 0; i < 2; i++) {
        int64_t b = batches[i];
        int64_t xs[4] = {b, 3, 224, 224}, ws[4] = {768, 3, 16, 16}, bs[1] = {768};
        double best_f = 1e30, best_b = 1e30;
        for (int rep = 0; rep < 2; rep++) {
            gtl__tape_reset(env->tape);
            gtl__tensor *x = gt_leaf(env, 4, xs, NULL, true);
            gtl__tensor *w = gt_leaf(env, 4, ws, NULL, true);
            gtl__tensor *bias = gt_leaf(env, 1, bs, NULL, true);
            gtl__tensor *y;
            double t0 = now_ms();
            assert_int_equal(gtl__op_conv2d(env->tape, x, w, bias, 16, 16, 0, 0, &y),
                             GTL_STATUS_OK);
            double t1 = now_ms();
            assert_int_equal(y->ne[2], 14);
            float *seed = malloc((size_t)y->n * sizeof(float));
            gt_fill(env, seed, y->n, -1.0f, 1.0f);
            double t2 = now_ms();
            assert_int_equal(gtl__tape_backward_seed(env->tape, y, seed), GTL_STATUS_OK);
            double t3 = now_ms();
            free(seed);
            best_f = fmin(best_f, t1 - t0);
            best_b = fmin(best_b, t3 - t2);
        }
        double gflop = 2.0 * b * 196 * 768 * 768 * 1e-9;
        printf("# patch conv B=%lld: forward %.2f ms (%.0f GFLOP/s), backward data+weights "
               "%.2f ms (%.0f GFLOP/s)\n", (long long)b, best_f, gflop / best_f * 1e3, best_b,
               2 * gflop / best_b * 1e3);
    }
    print_prims(env);
}

/* A small-CNN block: 3x3 conv, stride 2 conv, max pool, global average pool. */
static void test_conv_cnn_kernels(void **state)
{
    gt_env *env = *state;
    int64_t xs[4] = {8, 32, 32, 32}, w1s[4] = {64, 32, 3, 3}, w2s[4] = {64, 64, 3, 3};
    gtl__tensor *x = gt_leaf(env, 4, xs, NULL, true);
    gtl__tensor *w1 = gt_leaf(env, 4, w1s, NULL, true), *w2 = gt_leaf(env, 4, w2s, NULL, true);
    gtl__tensor *h1, *h2, *h3, *h4;
    double t0 = now_ms();
    assert_int_equal(gtl__op_conv2d(env->tape, x, w1, NULL, 1, 1, 1, 1, &h1), GTL_STATUS_OK);
    assert_int_equal(gtl__op_maxpool2d(env->tape, h1, 3, 3, 2, 2, 1, 1, &h2), GTL_STATUS_OK);
    assert_int_equal(gtl__op_conv2d(env->tape, h2, w2, NULL, 2, 2, 1, 1, &h3), GTL_STATUS_OK);
    assert_int_equal(gtl__op_avgpool2d(env->tape, h3, 2, 2, 2, 2, 0, 0, &h4), GTL_STATUS_OK);
    gtl__tensor *g;
    assert_int_equal(gtl__op_global_avgpool(env->tape, h4, &g), GTL_STATUS_OK);
    double t1 = now_ms();
    float *seed = malloc((size_t)g->n * sizeof(float));
    gt_fill(env, seed, g->n, -1.0f, 1.0f);
    assert_int_equal(gtl__tape_backward_seed(env->tape, g, seed), GTL_STATUS_OK);
    double t2 = now_ms();
    free(seed);
    printf("# small CNN block (first run, includes primitive creation): forward %.2f ms, "
           "backward %.2f ms\n", t1 - t0, t2 - t1);
    print_prims(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conv_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_conv_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_pool_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_pool_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_conv_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_conv_no_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_conv_vit_patch_kernels, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_conv_cnn_kernels, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_conv", tests, NULL, NULL);
}
