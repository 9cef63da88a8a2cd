/* Gated adapters: forward against a dense reference (every adapter computed,
 * zero gates included), gradients against central differences, and the
 * sparsity saving (rows never touch adapters whose gate is zero). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

static void dense_ref(const float *x, const float *g, const float *w, const float *b, float *u,
                      int64_t n, int64_t f, int64_t d, int64_t m)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < d; k++) {
                double y = b ? b[k * m + j] : 0.0;
                for (int64_t i = 0; i < f; i++)
                    y += (double)w[(k * m + j) * f + i] * x[r * f + i];
                s += (double)g[r * d + k] * y;
            }
            u[r * m + j] = (float)s;
        }
}

static void test_moe_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 6; rep++) {
        int64_t n = gt_randint(env, 1, 20), f = gt_randint(env, 1, 40), d = gt_randint(env, 1, 9),
                m = gt_randint(env, 1, 12);
        int64_t xs[2] = {n, f}, gs[2] = {n, d}, ws[3] = {d, m, f}, bs[2] = {d, m};
        gtl__tensor *x = gt_leaf(env, 2, xs, NULL, false);
        gtl__tensor *g = gt_leaf(env, 2, gs, NULL, false);
        gtl__tensor *w = gt_leaf(env, 3, ws, NULL, false);
        gtl__tensor *b = gt_leaf(env, 2, bs, NULL, false);
        for (int64_t i = 0; i < g->n; i++) /* about half the gates exactly zero */
            g->data[i] = g->data[i] < 0 ? 0.0f : g->data[i];
        gtl__tensor *u;
        assert_int_equal(gtl__op_gated_adapters(env->tape, x, g, w, rep % 2 ? b : NULL, &u),
                         GTL_STATUS_OK);
        float *ref = malloc((size_t)(n * m) * sizeof(float));
        dense_ref(x->data, g->data, w->data, rep % 2 ? b->data : NULL, ref, n, f, d, m);
        gt_assert_close(u->data, ref, n * m, 1e-4, 1e-4, "gated adapters forward");
        free(ref);
        gtl__tape_reset(env->tape);
    }
}

static gtl_status moe_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    (void)ud;
    return gtl__op_gated_adapters(t, in[0], in[1], in[2], in[3], out);
}

static void test_moe_grad_dense_gates(void **state)
{
    gt_env *env = *state;
    /* Strictly positive gates: every adapter active, every gradient checked. */
    for (int rep = 0; rep < 4; rep++) {
        int64_t n = gt_randint(env, 1, 6), f = gt_randint(env, 1, 7), d = gt_randint(env, 1, 4),
                m = gt_randint(env, 1, 5);
        gt_input in[4] = {
            {.nd = 2, .ne = {n, f}},
            {.nd = 2, .ne = {n, d}, .lo = 0.2f, .hi = 1.0f},
            {.nd = 3, .ne = {d, m, f}},
            {.nd = 2, .ne = {d, m}},
        };
        gt_gradcheck(env, "gated_adapters", moe_fn, NULL, 4, in, NULL);
    }
    /* Wide enough for the 8-wide vector bodies of the kernels (F >= 16, odd
     * tails) and groups of more than four rows per adapter. */
    for (int rep = 0; rep < 2; rep++) {
        int64_t n = gt_randint(env, 5, 9), f = gt_randint(env, 16, 27), d = gt_randint(env, 1, 3),
                m = gt_randint(env, 3, 9);
        gt_input in[4] = {
            {.nd = 2, .ne = {n, f}},
            {.nd = 2, .ne = {n, d}, .lo = 0.2f, .hi = 1.0f},
            {.nd = 3, .ne = {d, m, f}},
            {.nd = 2, .ne = {d, m}},
        };
        gt_gradcheck(env, "gated_adapters (wide)", moe_fn, NULL, 4, in, NULL);
    }
}

static gtl_status moe_sparse_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    (void)ud;
    gtl__tensor *g;
    gtl_status st = gtl__op_sparsemax(t, in[1], &g);
    if (st != GTL_STATUS_OK)
        return st;
    return gtl__op_gated_adapters(t, in[0], g, in[2], in[3], out);
}

static void test_moe_grad_sparsemax_gates(void **state)
{
    gt_env *env = *state;
    /* As GTL uses it: gate = sparsemax(logits). Logits spread wide so the
     * support does not change under +/- eps. */
    for (int rep = 0; rep < 4; rep++) {
        int64_t n = gt_randint(env, 1, 5), f = gt_randint(env, 1, 6), d = gt_randint(env, 2, 6),
                m = gt_randint(env, 1, 4);
        int64_t nl = n * d;
        float *logits = malloc((size_t)nl * sizeof(float));
        for (int64_t i = 0; i < nl; i++) /* distinct levels 0.37 apart */
            logits[i] = 0.37f * (float)gt_randint(env, -4, 4) + 0.05f * (float)(i % 3);
        gt_input in[4] = {
            {.nd = 2, .ne = {n, f}},
            {.nd = 2, .ne = {n, d}, .data = logits},
            {.nd = 3, .ne = {d, m, f}},
            {.nd = 2, .ne = {d, m}},
        };
        gt_gradcheck_opts o = {.eps = 1e-3, .tol = 2e-2};
        gt_gradcheck(env, "sparsemax->gated_adapters", moe_sparse_fn, NULL, 4, in, &o);
        free(logits);
    }
}

static void test_moe_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t xs[2] = {4, 5}, gs[2] = {4, 3}, ws[3] = {3, 2, 6}, bs[2] = {2, 2};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true), *g = gt_leaf(env, 2, gs, NULL, true);
    gtl__tensor *w = gt_leaf(env, 3, ws, NULL, true), *b = gt_leaf(env, 2, bs, NULL, true);
    gtl__tensor *u = (gtl__tensor *)1;
    assert_int_equal(gtl__op_gated_adapters(env->tape, x, g, w, NULL, &u), GTL_STATUS_INVALID_ARG);
    assert_null(u);
    int64_t ws2[3] = {3, 2, 5};
    gtl__tensor *w2 = gt_leaf(env, 3, ws2, NULL, true);
    assert_int_equal(gtl__op_gated_adapters(env->tape, x, g, w2, b, &u), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_gated_adapters(env->tape, NULL, g, w2, NULL, &u),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_moe_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_moe_grad_dense_gates, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_moe_grad_sparsemax_gates, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_moe_bad_args, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_moe", tests, NULL, NULL);
}
