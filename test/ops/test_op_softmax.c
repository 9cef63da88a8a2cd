/* softmax, log_softmax and cross_entropy: forward against double-precision
 * loops (also for logits around 1e3), gradients against central differences,
 * bad arguments, and the kernels picked at realistic shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* Stable double-precision (log-)softmax of (rows, c). */
static void ref_softmax(const float *x, double *y, int64_t rows, int64_t c, bool take_log)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        double mx = xr[0], s = 0.0;
        for (int64_t j = 1; j < c; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        for (int64_t j = 0; j < c; j++)
            s += exp(xr[j] - mx);
        for (int64_t j = 0; j < c; j++)
            y[r * c + j] = take_log ? xr[j] - mx - log(s) : exp(xr[j] - mx) / s;
    }
}

static double ref_cross_entropy(const float *x, const int64_t *labels, int64_t n, int64_t c)
{
    double *lp = malloc((size_t)(n * c) * sizeof(double));
    ref_softmax(x, lp, n, c, true);
    double loss = 0.0;
    for (int64_t i = 0; i < n; i++)
        loss -= lp[i * c + labels[i]];
    free(lp);
    return loss / (double)n;
}

static void check_against_ref(const float *got, const float *x, int64_t rows, int64_t c,
                              bool log, double atol, const char *what)
{
    double *ref = malloc((size_t)(rows * c) * sizeof(double));
    float *reff = malloc((size_t)(rows * c) * sizeof(float));
    ref_softmax(x, ref, rows, c, log);
    for (int64_t i = 0; i < rows * c; i++) {
        assert_true(isfinite(got[i]));
        reff[i] = (float)ref[i];
    }
    gt_assert_close(got, reff, rows * c, atol, 1e-5, what);
    free(ref);
    free(reff);
}

static void test_softmax_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 12; rep++) {
        bool log = rep % 2 == 1;
        int32_t nd = (int32_t)gt_randint(env, 1, 3);
        int64_t ne[3];
        for (int32_t i = 0; i < nd; i++)
            ne[i] = gt_randint(env, 1, 8);
        ne[nd - 1] = rep < 2 ? 1 : gt_randint(env, 1, 300);
        gtl__tensor *x = gt_leaf(env, nd, ne, NULL, false);
        /* rep >= 8: logits around 1e3, spread over 20, where exp overflows
         * without the max subtraction. */
        float lo = rep >= 8 ? 990.0f : -5.0f, hi = rep >= 8 ? 1010.0f : 5.0f;
        if (rep == 10)
            lo = -1010.0f, hi = -990.0f;
        gt_fill(env, x->data, x->n, lo, hi);
        gtl__tensor *y;
        gtl_status st = log ? gtl__op_log_softmax(env->tape, x, &y)
                            : gtl__op_softmax(env->tape, x, &y);
        assert_int_equal(st, GTL_STATUS_OK);
        assert_int_equal(y->nd, nd);
        int64_t c = ne[nd - 1];
        check_against_ref(y->data, x->data, x->n / c, c, log, log ? 1e-4 : 1e-6,
                          log ? "log_softmax forward" : "softmax forward");
        if (!log) {
            /* Rows sum to 1. */
            for (int64_t r = 0; r < x->n / c; r++) {
                double s = 0.0;
                for (int64_t j = 0; j < c; j++)
                    s += y->data[r * c + j];
                assert_true(fabs(s - 1.0) < 1e-5);
            }
        }
        gtl__tape_reset(env->tape);
    }
}

typedef struct sm_ud {
    bool log;
} sm_ud;

static gtl_status sm_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    sm_ud *u = ud;
    return u->log ? gtl__op_log_softmax(t, in[0], out) : gtl__op_softmax(t, in[0], out);
}

static void test_softmax_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 12; rep++) {
        sm_ud u = {rep % 2 == 1};
        int64_t b0 = gt_randint(env, 1, 3), rows = rep < 4 ? 1 : gt_randint(env, 1, 5);
        int64_t c = rep < 2 ? 1 : gt_randint(env, 2, 12);
        gt_input inp[1] = {{.nd = 3, .ne = {b0, rows, c}, .lo = -3.0f, .hi = 3.0f}};
        char name[64];
        snprintf(name, sizeof name, "%s C=%lld", u.log ? "log_softmax" : "softmax", (long long)c);
        gt_gradcheck(env, name, sm_fn, &u, 1, inp, NULL);
    }
}

/* Gradients through large logits are finite and right (the backward uses the
 * forward output, never exp of the raw logits). */
static void test_softmax_grad_large_logits(void **state)
{
    gt_env *env = *state;
    for (int log = 0; log < 2; log++) {
        sm_ud u = {log == 1};
        gt_input inp[1] = {{.nd = 2, .ne = {3, 6}, .lo = 995.0f, .hi = 1000.0f}};
        /* float spacing at 1e3 is 6e-5: a step of 0.05 keeps the differences exact enough. */
        gt_gradcheck_opts o = {.eps = 5e-2, .tol = 5e-2};
        gt_gradcheck(env, log ? "log_softmax large" : "softmax large", sm_fn, &u, 1, inp, &o);
    }
}

typedef struct ce_ud {
    const int64_t *labels;
} ce_ud;

static gtl_status ce_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    ce_ud *u = ud;
    return gtl__op_cross_entropy(t, in[0], u->labels, out);
}

static void test_cross_entropy_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        int64_t n = rep == 0 ? 1 : gt_randint(env, 1, 40);
        int64_t c = rep == 1 ? 1 : gt_randint(env, 1, 200);
        int64_t ne[2] = {n, c};
        int64_t *labels = malloc((size_t)n * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            labels[i] = gt_randint(env, 0, c - 1);
        gtl__tensor *x = gt_leaf(env, 2, ne, NULL, rep % 2 == 0);
        float lo = rep >= 6 ? 900.0f : -4.0f, hi = rep >= 6 ? 1100.0f : 4.0f;
        gt_fill(env, x->data, x->n, lo, hi);
        gtl__tensor *loss;
        assert_int_equal(gtl__op_cross_entropy(env->tape, x, labels, &loss), GTL_STATUS_OK);
        assert_int_equal(loss->nd, 0);
        assert_int_equal(loss->n, 1);
        assert_int_equal(env->tape->n_nodes, rep % 2 == 0 ? 1 : 0);
        double ref = ref_cross_entropy(x->data, labels, n, c);
        assert_true(isfinite(loss->data[0]));
        if (fabs(loss->data[0] - ref) > 1e-4 + 1e-5 * fabs(ref))
            fail_msg("cross_entropy: got %.8g want %.8g", loss->data[0], ref);
        if (rep % 2 == 0) {
            /* Backward at large logits stays finite and each row sums to 0. */
            assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
            for (int64_t i = 0; i < n; i++) {
                double s = 0.0;
                for (int64_t j = 0; j < c; j++) {
                    assert_true(isfinite(x->grad[i * c + j]));
                    s += x->grad[i * c + j];
                }
                assert_true(fabs(s) < 1e-5);
            }
        }
        free(labels);
        gtl__tape_reset(env->tape);
    }
}

/* The backward equals (softmax - onehot) / N * g exactly. */
static void test_cross_entropy_backward_formula(void **state)
{
    gt_env *env = *state;
    int64_t n = 5, c = 7, ne[2] = {5, 7};
    int64_t labels[5] = {0, 6, 3, 3, 1};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true);
    gt_fill(env, x->data, x->n, -3.0f, 3.0f);
    gtl__tensor *loss;
    const float seed = 2.5f; /* the incoming gradient g */
    assert_int_equal(gtl__op_cross_entropy(env->tape, x, labels, &loss), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward_seed(env->tape, loss, &seed), GTL_STATUS_OK);
    double *p = malloc((size_t)(n * c) * sizeof(double));
    float *want = malloc((size_t)(n * c) * sizeof(float));
    ref_softmax(x->data, p, n, c, false);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++)
            want[i * c + j] = (float)((p[i * c + j] - (j == labels[i])) / (double)n * 2.5);
    gt_assert_close(x->grad, want, n * c, 1e-6, 1e-5, "cross_entropy backward");
    free(p);
    free(want);
}

static void test_cross_entropy_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        int64_t n = rep == 0 ? 1 : gt_randint(env, 1, 8);
        int64_t c = rep == 1 ? 1 : gt_randint(env, 2, 10);
        int64_t *labels = malloc((size_t)n * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            labels[i] = gt_randint(env, 0, c - 1);
        ce_ud u = {labels};
        gt_input inp[1] = {{.nd = 2, .ne = {n, c}, .lo = -3.0f, .hi = 3.0f}};
        char name[64];
        snprintf(name, sizeof name, "cross_entropy N=%lld C=%lld", (long long)n, (long long)c);
        gt_gradcheck(env, name, ce_fn, &u, 1, inp, NULL);
        free(labels);
    }
}

static void test_softmax_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t xs[2] = {3, 4}, x1s[1] = {4}, x3s[3] = {2, 3, 4}, zs[2] = {3, 0};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true);
    gtl__tensor *x1 = gt_leaf(env, 1, x1s, NULL, true);
    gtl__tensor *x3 = gt_leaf(env, 3, x3s, NULL, true);
    gtl__tensor *z = gt_leaf(env, 2, zs, NULL, true);
    gtl__tensor *y = (gtl__tensor *)1;

    assert_int_equal(gtl__op_softmax(env->tape, NULL, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "softmax"));
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_log_softmax(env->tape, z, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "log_softmax"));

    int64_t ok[3] = {0, 3, 1};
    int64_t bad_hi[3] = {0, 4, 1};  /* 4 == C */
    int64_t bad_lo[3] = {0, 1, -1};
    struct {
        gtl__tensor *x;
        const int64_t *labels;
    } cases[] = {
        {NULL, ok}, {x, NULL}, {x1, ok}, {x3, ok}, {z, ok}, {x, bad_hi}, {x, bad_lo},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_cross_entropy(env->tape, cases[i].x, cases[i].labels, &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "cross_entropy"));
    }
    /* Out-of-range labels are refused before anything is computed: no
     * primitive was created, nothing recorded. */
    assert_int_equal(gtl__ctx_num_prims(env->ctx), 0);
    assert_int_equal(env->tape->n_nodes, 0);
    assert_non_null(strstr(gtl_last_error(), "label"));
}

/* The labels are copied: changing the caller's array after the forward does
 * not change the backward. */
static void test_cross_entropy_copies_labels(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {2, 3};
    int64_t labels[2] = {0, 2};
    float xv[6] = {0.1f, 0.2f, 0.3f, -0.5f, 0.0f, 0.5f};
    gtl__tensor *x = gt_leaf(env, 2, ne, xv, true);
    gtl__tensor *loss;
    assert_int_equal(gtl__op_cross_entropy(env->tape, x, labels, &loss), GTL_STATUS_OK);
    labels[0] = 1;
    labels[1] = 1;
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
    assert_true(x->grad[0] < 0.0f); /* label 0 of row 0 */
    assert_true(x->grad[5] < 0.0f); /* label 2 of row 1 */
    assert_true(x->grad[1] > 0.0f && x->grad[4] > 0.0f);
}

static void test_softmax_hot_kernels_not_ref(void **state)
{
    gt_env *env = *state;
    /* Attention scores of ViT-B/16 (12 heads x 197 queries, 197 keys) and a
     * classifier over the emoji base classes. */
    int64_t att[3] = {12, 197, 197}, cls[2] = {64, 1116};
    gtl__tensor *a = gt_leaf(env, 3, att, NULL, true);
    gtl__tensor *y, *s;
    assert_int_equal(gtl__op_softmax(env->tape, a, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    gtl__tape_reset(env->tape);
    a = gt_leaf(env, 3, att, NULL, true);
    assert_int_equal(gtl__op_log_softmax(env->tape, a, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    gtl__tape_reset(env->tape);
    gtl__tensor *x = gt_leaf(env, 2, cls, NULL, true);
    int64_t *labels = malloc(64 * sizeof(int64_t));
    for (int i = 0; i < 64; i++)
        labels[i] = (i * 37) % 1116;
    assert_int_equal(gtl__op_cross_entropy(env->tape, x, labels, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    free(labels);
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n_exec;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, &n_exec);
        printf("# %-16s %-16s hot=%d runs=%llu%s\n", op, impl, hot, (unsigned long long)n_exec,
               !hot && strncmp(impl, "ref", 3) == 0 ? " (not run: the C loop is used)" : "");
        if (hot)
            assert_true(strncmp(impl, "ref", 3) != 0);
        /* A reference backward kernel is never executed. */
        if (strncmp(impl, "ref", 3) == 0)
            assert_int_equal(n_exec, 0);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_softmax_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_softmax_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_softmax_grad_large_logits, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cross_entropy_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cross_entropy_backward_formula, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_cross_entropy_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_softmax_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cross_entropy_copies_labels, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_softmax_hot_kernels_not_ref, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_softmax", tests, NULL, NULL);
}
