/* layernorm and batchnorm: forward against double-precision loops, gradients
 * against central differences (training and evaluation batchnorm), running
 * statistics, bad arguments, and the kernels picked at realistic shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* Element (o, g, i) of an (O, G, I) block belongs to normalisation group g
 * (layernorm: O = 1, G = rows, I = C; batchnorm: O = N, G = C, I = H*W).
 * Fills each group with well separated values in random order, so that no
 * group has a variance near 0 (where a finite-difference step of 1e-2 would
 * cross a region of extreme curvature), then shifts and scales it. */
static void fill_groups(gt_env *env, float *x, int64_t o_n, int64_t g_n, int64_t i_n)
{
    int64_t len = o_n * i_n;
    float *v = malloc((size_t)len * sizeof(float));
    for (int64_t g = 0; g < g_n; g++) {
        float step = 3.0f / (float)len;
        for (int64_t k = 0; k < len; k++) {
            float jit;
            gt_fill(env, &jit, 1, -0.2f, 0.2f);
            v[k] = ((float)k - 0.5f * (float)(len - 1) + jit) * step;
        }
        for (int64_t k = len - 1; k > 0; k--) {
            int64_t j = gt_randint(env, 0, k);
            float t = v[k];
            v[k] = v[j];
            v[j] = t;
        }
        float sh[2];
        gt_fill(env, sh, 2, -0.5f, 0.5f);
        for (int64_t o = 0; o < o_n; o++)
            for (int64_t i = 0; i < i_n; i++)
                x[(o * g_n + g) * i_n + i] = v[o * i_n + i] * (1.0f + sh[0]) + sh[1];
    }
    free(v);
}

/* ---- references ------------------------------------------------------------ */

static void ref_layernorm(const float *x, const float *gamma, const float *beta, float *y,
                          int64_t rows, int64_t c, double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        double m = 0.0, v = 0.0;
        for (int64_t j = 0; j < c; j++)
            m += xr[j];
        m /= (double)c;
        for (int64_t j = 0; j < c; j++)
            v += (xr[j] - m) * (xr[j] - m);
        v /= (double)c;
        double inv = 1.0 / sqrt(v + eps);
        for (int64_t j = 0; j < c; j++) {
            double t = (xr[j] - m) * inv;
            if (gamma != NULL)
                t = t * gamma[j] + beta[j];
            y[r * c + j] = (float)t;
        }
    }
}

/* Batch statistics per channel (biased variance) of (N, C, S). */
static void ref_bn_stats(const float *x, int64_t n, int64_t c, int64_t s, double *mean,
                         double *var)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < s; k++)
                m += x[(i * c + ch) * s + k];
        m /= (double)(n * s);
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < s; k++) {
                double d = x[(i * c + ch) * s + k] - m;
                v += d * d;
            }
        mean[ch] = m;
        var[ch] = v / (double)(n * s);
    }
}

static void ref_bn_apply(const float *x, const float *gamma, const float *beta,
                         const double *mean, const double *var, float *y, int64_t n, int64_t c,
                         int64_t s, double eps)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t k = 0; k < s; k++) {
                int64_t idx = (i * c + ch) * s + k;
                double t = (x[idx] - mean[ch]) / sqrt(var[ch] + eps);
                if (gamma != NULL)
                    t = t * gamma[ch] + beta[ch];
                y[idx] = (float)t;
            }
}

/* ---- layernorm --------------------------------------------------------------- */

static void test_layernorm_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        int32_t nd = (int32_t)gt_randint(env, 1, 3);
        int64_t ne[3];
        for (int32_t i = 0; i < nd; i++)
            ne[i] = gt_randint(env, 1, 9);
        ne[nd - 1] = rep == 0 ? 1 : rep == 1 ? 2 : gt_randint(env, 1, 70);
        bool affine = rep % 2 == 1;
        float eps = rep % 3 == 0 ? 1e-5f : 1e-2f;
        int64_t c = ne[nd - 1];
        gtl__tensor *x = gt_leaf(env, nd, ne, NULL, false);
        gt_fill(env, x->data, x->n, -3.0f, 3.0f);
        gtl__tensor *g = gt_leaf(env, 1, &c, NULL, false);
        gtl__tensor *b = gt_leaf(env, 1, &c, NULL, false);
        gtl__tensor *y;
        assert_int_equal(gtl__op_layernorm(env->tape, x, affine ? g : NULL, affine ? b : NULL,
                                           eps, &y),
                         GTL_STATUS_OK);
        assert_int_equal(y->nd, nd);
        float *ref = malloc((size_t)x->n * sizeof(float));
        ref_layernorm(x->data, affine ? g->data : NULL, b->data, ref, x->n / c, c, eps);
        gt_assert_close(y->data, ref, x->n, 2e-5, 2e-4, "layernorm forward");
        free(ref);
        gtl__tape_reset(env->tape);
    }
}

typedef struct ln_ud {
    bool affine;
    float eps;
} ln_ud;

static gtl_status ln_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    ln_ud *u = ud;
    return gtl__op_layernorm(t, in[0], u->affine ? in[1] : NULL, u->affine ? in[2] : NULL,
                             u->eps, out);
}

static void test_layernorm_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        ln_ud u = {rep % 2 == 0, rep % 4 < 2 ? 1e-5f : 1e-1f};
        int64_t b0 = gt_randint(env, 1, 3), rows = gt_randint(env, 1, 5);
        int64_t c = rep < 2 ? 1 : rep < 4 ? 2 : gt_randint(env, 3, 12);
        float *x = malloc((size_t)(b0 * rows * c) * sizeof(float));
        fill_groups(env, x, 1, b0 * rows, c);
        gt_input inp[3] = {
            {.nd = 3, .ne = {b0, rows, c}, .data = x},
            {.nd = 1, .ne = {c}, .lo = 0.5f, .hi = 1.5f},
            {.nd = 1, .ne = {c}},
        };
        char name[64];
        snprintf(name, sizeof name, "layernorm C=%lld affine=%d", (long long)c, u.affine);
        gt_gradcheck(env, name, ln_fn, &u, u.affine ? 3 : 1, inp, NULL);
        free(x);
    }
    /* Only gamma/beta need gradients (src is a constant). */
    ln_ud u = {true, 1e-5f};
    float x[12];
    fill_groups(env, x, 1, 3, 4);
    gt_input inp[3] = {
        {.nd = 2, .ne = {3, 4}, .data = x, .no_grad = true},
        {.nd = 1, .ne = {4}},
        {.nd = 1, .ne = {4}},
    };
    gt_gradcheck(env, "layernorm params only", ln_fn, &u, 3, inp, NULL);
    /* Only src needs a gradient, with constant gamma/beta (backward_data). */
    inp[0].no_grad = false;
    inp[1].no_grad = true;
    inp[2].no_grad = true;
    gt_gradcheck(env, "layernorm src only", ln_fn, &u, 3, inp, NULL);
}

/* The gradients accumulate into existing ones rather than overwrite them:
 * backward twice through the same op, once onto pre-filled gradients. */
static void test_layernorm_accumulates(void **state)
{
    gt_env *env = *state;
    int64_t xs[2] = {4, 6}, cs[1] = {6};
    float xv[24], gv[6], bv[6], fresh[3][24], pre[3] = {0.5f, -1.0f, 2.0f};
    gt_fill(env, xv, 24, -1.0f, 1.0f);
    gt_fill(env, gv, 6, -1.0f, 1.0f);
    gt_fill(env, bv, 6, -1.0f, 1.0f);
    for (int pass = 0; pass < 2; pass++) {
        gtl__tensor *t[3];
        assert_int_equal(gtl__tape_leaf(env->tape, 2, xs, xv, true, &t[0]), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_leaf(env->tape, 1, cs, gv, true, &t[1]), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_leaf(env->tape, 1, cs, bv, true, &t[2]), GTL_STATUS_OK);
        for (int k = 0; pass == 1 && k < 3; k++) {
            float *g;
            assert_int_equal(gtl__tape_grad(env->tape, t[k], &g), GTL_STATUS_OK);
            for (int64_t i = 0; i < t[k]->n; i++)
                g[i] = pre[k];
        }
        gtl__tensor *y, *s;
        assert_int_equal(gtl__op_layernorm(env->tape, t[0], t[1], t[2], 1e-5f, &y), GTL_STATUS_OK);
        gtl__tensor *sq;
        assert_int_equal(gtl__op_sigmoid(env->tape, y, &sq), GTL_STATUS_OK);
        assert_int_equal(gtl__op_sum(env->tape, sq, -1, false, &s), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
        for (int k = 0; k < 3; k++) {
            if (pass == 0) {
                memcpy(fresh[k], t[k]->grad, (size_t)t[k]->n * sizeof(float));
                continue;
            }
            for (int64_t i = 0; i < t[k]->n; i++)
                assert_float_equal(t[k]->grad[i], fresh[k][i] + pre[k], 1e-5f);
        }
        gtl__tape_reset(env->tape);
    }
}

static void test_layernorm_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t xs[2] = {3, 4}, c4[1] = {4}, c5[1] = {5};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true);
    gtl__tensor *g4 = gt_leaf(env, 1, c4, NULL, true);
    gtl__tensor *b4 = gt_leaf(env, 1, c4, NULL, true);
    gtl__tensor *g5 = gt_leaf(env, 1, c5, NULL, true);
    int64_t zs[2] = {3, 0};
    gtl__tensor *z = gt_leaf(env, 2, zs, NULL, true);
    struct {
        gtl__tensor *x, *g, *b;
        float eps;
    } cases[] = {
        {NULL, NULL, NULL, 1e-5f}, {x, g4, NULL, 1e-5f}, {x, NULL, b4, 1e-5f},
        {x, g5, b4, 1e-5f},        {x, g4, g5, 1e-5f},   {x, NULL, NULL, -1.0f},
        {x, NULL, NULL, NAN},      {x, NULL, NULL, INFINITY}, {z, NULL, NULL, 1e-5f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gtl__tensor *y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_layernorm(env->tape, cases[i].x, cases[i].g, cases[i].b,
                                           cases[i].eps, &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "layernorm"));
    }
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- batchnorm --------------------------------------------------------------- */

static void random_bn_shape(gt_env *env, int rep, int32_t *nd, int64_t *ne)
{
    *nd = rep % 2 == 0 ? 2 : 4;
    ne[0] = gt_randint(env, 2, 6);
    ne[1] = gt_randint(env, 1, 7);
    if (*nd == 4) {
        ne[2] = gt_randint(env, 1, 4);
        ne[3] = gt_randint(env, 1, 4);
    }
}

static void test_batchnorm_train_forward_and_running(void **state)
{
    gt_env *env = *state;
    env->tape->training = true;
    for (int rep = 0; rep < 10; rep++) {
        int32_t nd;
        int64_t ne[4];
        random_bn_shape(env, rep, &nd, ne);
        if (rep == 2)
            ne[0] = 2; /* the smallest batch allowed */
        int64_t n = ne[0], c = ne[1], s = nd == 4 ? ne[2] * ne[3] : 1;
        bool affine = rep % 3 != 0;
        float eps = 1e-5f, momentum = rep == 4 ? 1.0f : rep == 5 ? 0.0f : 0.1f;
        gtl__tensor *x = gt_leaf(env, nd, ne, NULL, true);
        gt_fill(env, x->data, x->n, -2.0f, 3.0f);
        gtl__tensor *g = gt_leaf(env, 1, &c, NULL, true);
        gtl__tensor *b = gt_leaf(env, 1, &c, NULL, true);
        float *rm = malloc((size_t)c * sizeof(float)), *rv = malloc((size_t)c * sizeof(float));
        float *rm0 = malloc((size_t)c * sizeof(float)), *rv0 = malloc((size_t)c * sizeof(float));
        gt_fill(env, rm, c, -1.0f, 1.0f);
        gt_fill(env, rv, c, 0.5f, 2.0f);
        memcpy(rm0, rm, (size_t)c * sizeof(float));
        memcpy(rv0, rv, (size_t)c * sizeof(float));
        gtl__tensor *y;
        assert_int_equal(gtl__op_batchnorm(env->tape, x, affine ? g : NULL, affine ? b : NULL,
                                           rm, rv, momentum, eps, &y),
                         GTL_STATUS_OK);
        assert_int_equal(env->tape->n_nodes, 1);
        double *mean = malloc((size_t)c * sizeof(double));
        double *var = malloc((size_t)c * sizeof(double));
        float *ref = malloc((size_t)x->n * sizeof(float));
        ref_bn_stats(x->data, n, c, s, mean, var);
        ref_bn_apply(x->data, affine ? g->data : NULL, b->data, mean, var, ref, n, c, s, eps);
        gt_assert_close(y->data, ref, x->n, 5e-5, 2e-4, "batchnorm train forward");
        /* PyTorch: running = (1 - m) running + m batch, unbiased variance. */
        float *want_m = malloc((size_t)c * sizeof(float));
        float *want_v = malloc((size_t)c * sizeof(float));
        for (int64_t ch = 0; ch < c; ch++) {
            double unb = var[ch] * (double)(n * s) / (double)(n * s - 1);
            want_m[ch] = (float)((1.0 - momentum) * rm0[ch] + momentum * mean[ch]);
            want_v[ch] = (float)((1.0 - momentum) * rv0[ch] + momentum * unb);
        }
        gt_assert_close(rm, want_m, c, 1e-5, 1e-5, "running_mean");
        gt_assert_close(rv, want_v, c, 1e-5, 1e-5, "running_var");
        /* Without running statistics training mode still works. */
        assert_int_equal(gtl__op_batchnorm(env->tape, x, NULL, NULL, NULL, NULL, 0.1f, eps, &y),
                         GTL_STATUS_OK);
        free(mean);
        free(var);
        free(ref);
        free(want_m);
        free(want_v);
        free(rm);
        free(rv);
        free(rm0);
        free(rv0);
        gtl__tape_reset(env->tape);
    }
}

static void test_batchnorm_eval_forward(void **state)
{
    gt_env *env = *state;
    env->tape->training = false;
    for (int rep = 0; rep < 8; rep++) {
        int32_t nd;
        int64_t ne[4];
        random_bn_shape(env, rep, &nd, ne);
        if (rep < 2)
            ne[0] = 1; /* a single sample is fine in evaluation mode */
        int64_t n = ne[0], c = ne[1], s = nd == 4 ? ne[2] * ne[3] : 1;
        bool affine = rep % 3 != 0;
        gtl__tensor *x = gt_leaf(env, nd, ne, NULL, rep % 2 == 0);
        gtl__tensor *g = gt_leaf(env, 1, &c, NULL, false);
        gtl__tensor *b = gt_leaf(env, 1, &c, NULL, false);
        float *rm = malloc((size_t)c * sizeof(float)), *rv = malloc((size_t)c * sizeof(float));
        float *rm0 = malloc((size_t)c * sizeof(float)), *rv0 = malloc((size_t)c * sizeof(float));
        gt_fill(env, rm, c, -1.0f, 1.0f);
        gt_fill(env, rv, c, 0.5f, 2.0f);
        memcpy(rm0, rm, (size_t)c * sizeof(float));
        memcpy(rv0, rv, (size_t)c * sizeof(float));
        double *mean = malloc((size_t)c * sizeof(double));
        double *var = malloc((size_t)c * sizeof(double));
        for (int64_t ch = 0; ch < c; ch++) {
            mean[ch] = rm[ch];
            var[ch] = rv[ch];
        }
        gtl__tensor *y;
        assert_int_equal(gtl__op_batchnorm(env->tape, x, affine ? g : NULL, affine ? b : NULL,
                                           rm, rv, 0.1f, 1e-3f, &y),
                         GTL_STATUS_OK);
        float *ref = malloc((size_t)x->n * sizeof(float));
        ref_bn_apply(x->data, affine ? g->data : NULL, b->data, mean, var, ref, n, c, s, 1e-3);
        gt_assert_close(y->data, ref, x->n, 2e-5, 2e-4, "batchnorm eval forward");
        /* Evaluation mode never touches the running statistics. */
        assert_memory_equal(rm, rm0, (size_t)c * sizeof(float));
        assert_memory_equal(rv, rv0, (size_t)c * sizeof(float));
        free(mean);
        free(var);
        free(ref);
        free(rm);
        free(rv);
        free(rm0);
        free(rv0);
        gtl__tape_reset(env->tape);
    }
}

typedef struct bn_ud {
    bool affine;
    float eps;
    float *rm, *rv;  /* evaluation mode only */
} bn_ud;

static gtl_status bn_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    bn_ud *u = ud;
    return gtl__op_batchnorm(t, in[0], u->affine ? in[1] : NULL, u->affine ? in[2] : NULL,
                             t->training ? NULL : u->rm, t->training ? NULL : u->rv, 0.1f,
                             u->eps, out);
}

static void bn_gradcheck(gt_env *env, bool training, int rep)
{
    int32_t nd;
    int64_t ne[4] = {0};
    random_bn_shape(env, rep, &nd, ne);
    if (rep == 2)
        ne[0] = 2;
    if (rep == 3)
        ne[1] = 1;
    if (!training && rep == 4)
        ne[0] = 1;
    int64_t n = ne[0], c = ne[1], s = nd == 4 ? ne[2] * ne[3] : 1;
    bn_ud u = {rep % 3 != 2, rep % 2 ? 1e-5f : 1e-2f, NULL, NULL};
    float *x = malloc((size_t)(n * c * s) * sizeof(float));
    fill_groups(env, x, n, c, s);
    u.rm = malloc((size_t)c * sizeof(float));
    u.rv = malloc((size_t)c * sizeof(float));
    gt_fill(env, u.rm, c, -0.5f, 0.5f);
    gt_fill(env, u.rv, c, 0.3f, 2.0f);
    gt_input inp[3] = {
        {.nd = nd, .data = x},
        {.nd = 1, .ne = {c}, .lo = 0.5f, .hi = 1.5f},
        {.nd = 1, .ne = {c}},
    };
    memcpy(inp[0].ne, ne, sizeof ne);
    gt_gradcheck_opts o = {.training = training};
    char name[96];
    snprintf(name, sizeof name, "batchnorm %s nd=%d N=%lld C=%lld affine=%d",
             training ? "train" : "eval", (int)nd, (long long)n, (long long)c, u.affine);
    gt_gradcheck(env, name, bn_fn, &u, u.affine ? 3 : 1, inp, &o);
    free(x);
    free(u.rm);
    free(u.rv);
}

static void test_batchnorm_grad_train(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++)
        bn_gradcheck(env, true, rep);
}

static void test_batchnorm_grad_eval(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++)
        bn_gradcheck(env, false, rep);
}

static void test_batchnorm_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t xs[2] = {3, 4}, x1s[2] = {1, 4}, x3s[3] = {3, 4, 2}, c4[1] = {4}, c5[1] = {5};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true);
    gtl__tensor *x1 = gt_leaf(env, 2, x1s, NULL, true);
    gtl__tensor *x3 = gt_leaf(env, 3, x3s, NULL, true);
    gtl__tensor *g4 = gt_leaf(env, 1, c4, NULL, true);
    gtl__tensor *b4 = gt_leaf(env, 1, c4, NULL, true);
    gtl__tensor *g5 = gt_leaf(env, 1, c5, NULL, true);
    float rm[4] = {0.1f, 0.2f, 0.3f, 0.4f}, rv[4] = {1, 2, 3, 4};
    float rm0[4], rv0[4];
    memcpy(rm0, rm, sizeof rm);
    memcpy(rv0, rv, sizeof rv);
    struct {
        bool training;
        gtl__tensor *x, *g, *b;
        float *rm, *rv;
        float momentum, eps;
    } cases[] = {
        {true, NULL, NULL, NULL, rm, rv, 0.1f, 1e-5f},
        {true, x1, NULL, NULL, rm, rv, 0.1f, 1e-5f},   /* N = 1 in training mode */
        {true, x3, NULL, NULL, rm, rv, 0.1f, 1e-5f},   /* 3-D */
        {true, x, g4, NULL, rm, rv, 0.1f, 1e-5f},
        {true, x, g5, b4, rm, rv, 0.1f, 1e-5f},
        {true, x, NULL, NULL, rm, NULL, 0.1f, 1e-5f},
        {true, x, NULL, NULL, rm, rv, -0.1f, 1e-5f},
        {true, x, NULL, NULL, rm, rv, 1.5f, 1e-5f},
        {true, x, NULL, NULL, rm, rv, NAN, 1e-5f},
        {true, x, NULL, NULL, rm, rv, 0.1f, -1e-5f},
        {false, x, NULL, NULL, NULL, NULL, 0.1f, 1e-5f}, /* eval without running stats */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        env->tape->training = cases[i].training;
        gtl__tensor *y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_batchnorm(env->tape, cases[i].x, cases[i].g, cases[i].b,
                                           cases[i].rm, cases[i].rv, cases[i].momentum,
                                           cases[i].eps, &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "batchnorm"));
    }
    assert_int_equal(env->tape->n_nodes, 0);
    assert_memory_equal(rm, rm0, sizeof rm);
    assert_memory_equal(rv, rv0, sizeof rv);
}

/* A forward that fails after the computation (here: recording on a tape that
 * already ran backward) must leave the running statistics untouched. */
static void test_batchnorm_running_untouched_on_failure(void **state)
{
    gt_env *env = *state;
    env->tape->training = true;
    int64_t xs[2] = {4, 3};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true);
    float rm[3] = {0.1f, 0.2f, 0.3f}, rv[3] = {1, 2, 3};
    float rm0[3], rv0[3];
    memcpy(rm0, rm, sizeof rm);
    memcpy(rv0, rv, sizeof rv);
    env->tape->backward_done = true;
    gtl__tensor *y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_batchnorm(env->tape, x, NULL, NULL, rm, rv, 0.1f, 1e-5f, &y),
                     GTL_STATUS_BAD_STATE);
    assert_null(y);
    assert_memory_equal(rm, rm0, sizeof rm);
    assert_memory_equal(rv, rv0, sizeof rv);
    env->tape->backward_done = false;
}

/* ---- kernels at realistic shapes ------------------------------------------- */

static void print_and_check_prims(gt_env *env)
{
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n_exec;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, &n_exec);
        printf("# %-14s %-34s hot=%d runs=%llu\n", op, impl, hot, (unsigned long long)n_exec);
        if (hot)
            assert_true(strncmp(impl, "ref", 3) != 0);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
}

static void run_and_backward(gt_env *env, gtl__tensor *y)
{
    gtl__tensor *s;
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    gtl__tape_reset(env->tape);
}

static void test_norm_hot_kernels_not_ref(void **state)
{
    gt_env *env = *state;
    static const int64_t shapes[2][3] = {{197, 768, 0}, {8, 197, 768}};
    int64_t c = 768;
    for (int k = 0; k < 2; k++) {
        int32_t nd = k == 0 ? 2 : 3;
        gtl__tensor *x = gt_leaf(env, nd, shapes[k], NULL, true);
        gtl__tensor *g = gt_leaf(env, 1, &c, NULL, true);
        gtl__tensor *b = gt_leaf(env, 1, &c, NULL, true);
        gtl__tensor *y;
        assert_int_equal(gtl__op_layernorm(env->tape, x, g, b, 1e-5f, &y), GTL_STATUS_OK);
        run_and_backward(env, y);
    }
    /* A CNN-like batch norm: (N, C) and (N, C, H, W), training and evaluation. */
    int64_t b2[2] = {64, 256}, b4[4] = {8, 64, 16, 16};
    float *rm = calloc(256, sizeof(float)), *rv = malloc(256 * sizeof(float));
    for (int i = 0; i < 256; i++)
        rv[i] = 1.0f;
    for (int train = 1; train >= 0; train--) {
        env->tape->training = train;
        for (int k = 0; k < 2; k++) {
            gtl__tensor *x = gt_leaf(env, k ? 4 : 2, k ? b4 : b2, NULL, true);
            int64_t ch = x->ne[1];
            gtl__tensor *g = gt_leaf(env, 1, &ch, NULL, true);
            gtl__tensor *b = gt_leaf(env, 1, &ch, NULL, true);
            gtl__tensor *y;
            assert_int_equal(gtl__op_batchnorm(env->tape, x, g, b, rm, rv, 0.1f, 1e-5f, &y),
                             GTL_STATUS_OK);
            run_and_backward(env, y);
        }
    }
    free(rm);
    free(rv);
    print_and_check_prims(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layernorm_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_layernorm_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_layernorm_accumulates, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_layernorm_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_batchnorm_train_forward_and_running, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_batchnorm_eval_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_batchnorm_grad_train, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_batchnorm_grad_eval, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_batchnorm_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_batchnorm_running_untouched_on_failure, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_norm_hot_kernels_not_ref, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_norm", tests, NULL, NULL);
}
