/* sparsemax: forward against a bisection reference in double, simplex
 * properties, sparsity, extreme inputs, gradients by central differences on
 * inputs kept away from the support boundary, bad arguments, no allocation in
 * a steady-state step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* tau with sum_i max(z_i - tau, 0) = 1, by bisection in double on
 * [max - 1, max] (the sum is >= 1 at the left end and 0 at the right). */
static double ref_tau(const float *z, int64_t d)
{
    double mx = z[0];
    for (int64_t i = 1; i < d; i++)
        mx = fmax(mx, z[i]);
    double lo = mx - 1.0, hi = mx;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi), s = 0.0;
        for (int64_t i = 0; i < d; i++)
            s += fmax((double)z[i] - mid, 0.0);
        if (s >= 1.0)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static void ref_sparsemax(const float *z, float *p, int64_t rows, int64_t d)
{
    for (int64_t r = 0; r < rows; r++) {
        double tau = ref_tau(z + r * d, d);
        for (int64_t i = 0; i < d; i++)
            p[r * d + i] = (float)fmax((double)z[r * d + i] - tau, 0.0);
    }
}

/* Checks sum = 1, p >= 0 per row; returns the number of exact zeros. */
static int64_t check_simplex(const float *p, int64_t rows, int64_t d)
{
    int64_t zeros = 0;
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int64_t i = 0; i < d; i++) {
            assert_true(p[r * d + i] >= 0.0f);
            zeros += p[r * d + i] == 0.0f;
            s += p[r * d + i];
        }
        if (fabs(s - 1.0) > 1e-5)
            fail_msg("row %lld sums to %.9g", (long long)r, s);
    }
    return zeros;
}

static void test_sparsemax_forward(void **state)
{
    gt_env *env = *state;
    /* D up to 100 covers both sort paths (insertion <= 32, heapsort above). */
    for (int rep = 0; rep < 24; rep++) {
        int64_t rows = gt_randint(env, 1, 20), d = gt_randint(env, 1, rep < 12 ? 32 : 100);
        float scale = rep % 3 == 0 ? 0.1f : rep % 3 == 1 ? 1.0f : 10.0f;
        int64_t ne[2] = {rows, d};
        gtl__tensor *z = gt_leaf(env, 2, ne, NULL, rep % 2 == 0);
        for (int64_t i = 0; i < z->n; i++)
            z->data[i] *= scale;
        gtl__tensor *p;
        assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
        assert_int_equal(p->nd, 2);
        assert_int_equal(p->ne[0], rows);
        assert_int_equal(p->ne[1], d);
        check_simplex(p->data, rows, d);
        float *ref = malloc((size_t)z->n * sizeof(float));
        ref_sparsemax(z->data, ref, rows, d);
        gt_assert_close(p->data, ref, z->n, 2e-6, 1e-5, "sparsemax forward");
        free(ref);
        gtl__tape_reset(env->tape);
    }
    /* 3-D input: rows are all leading dims. */
    int64_t ne3[3] = {2, 3, 7};
    gtl__tensor *z = gt_leaf(env, 3, ne3, NULL, false);
    gtl__tensor *p;
    assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
    assert_int_equal(p->nd, 3);
    float ref[42];
    ref_sparsemax(z->data, ref, 6, 7);
    gt_assert_close(p->data, ref, 42, 2e-6, 1e-5, "sparsemax forward 3-D");
}

static void test_sparsemax_sparse_for_spread_inputs(void **state)
{
    gt_env *env = *state;
    int64_t rows = 16, d = 50;
    int64_t ne[2] = {rows, d};
    gtl__tensor *z = gt_leaf(env, 2, ne, NULL, false);
    gt_fill(env, z->data, z->n, -5.0f, 5.0f);
    gtl__tensor *p;
    assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
    int64_t zeros = check_simplex(p->data, rows, d);
    printf("# spread inputs: %lld of %lld outputs exactly 0\n", (long long)zeros,
           (long long)z->n);
    /* With a spread of 10 the support is a handful of the largest entries. */
    assert_true(zeros > rows * d * 3 / 4);
}

static void test_sparsemax_known_values(void **state)
{
    gt_env *env = *state;
    /* Hand-derived: (0.5, 0.2, 0.1): k = 3, tau = -0.2/3. (1, 0, -1): k = 1, tau = 0.
     * (2, 2, 2, 2): uniform. D = 1: always 1. */
    static const float z1[3] = {0.5f, 0.2f, 0.1f};
    static const float p1[3] = {0.5f + 0.2f / 3, 0.2f + 0.2f / 3, 0.1f + 0.2f / 3};
    static const float z2[3] = {1.0f, 0.0f, -1.0f};
    static const float p2[3] = {1.0f, 0.0f, 0.0f};
    static const float z3[4] = {2.0f, 2.0f, 2.0f, 2.0f};
    static const float p3[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    static const float z4[1] = {-123.0f};
    static const float p4[1] = {1.0f};
    /* Huge and shifted inputs: no NaN, no lost 1 (the row is shifted by its max). */
    static const float z5[3] = {1e30f, 0.0f, -1e30f};
    static const float p5[3] = {1.0f, 0.0f, 0.0f};
    static const float z6[2] = {3e38f, 3e38f};
    static const float p6[2] = {0.5f, 0.5f};
    static const float z7[3] = {1000.5f, 1000.25f, 990.0f};
    static const float p7[3] = {0.625f, 0.375f, 0.0f};
    const float *zs[7] = {z1, z2, z3, z4, z5, z6, z7};
    const float *ps[7] = {p1, p2, p3, p4, p5, p6, p7};
    const int64_t ds[7] = {3, 3, 4, 1, 3, 2, 3};
    for (int c = 0; c < 7; c++) {
        int64_t ne[1] = {ds[c]};
        gtl__tensor *z = gt_leaf(env, 1, ne, zs[c], true);
        gtl__tensor *p;
        assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
        char what[32];
        snprintf(what, sizeof what, "sparsemax case %d", c);
        gt_assert_close(p->data, ps[c], ds[c], 1e-6, 1e-6, what);
    }
}

/* Fills rows so that every |z_i - tau| >= gap (rejection sampling per row).
 * One coordinate moved by h moves tau by at most |h| (by h/k inside the
 * support, not at all outside), so every z_i - tau moves by at most 2|h|: with
 * gap > 2 eps the support, hence the linear piece, is the same at z + eps and
 * z - eps, and central differences are exact up to rounding. */
static void fill_away_from_support_boundary(gt_env *env, float *z, int64_t rows, int64_t d,
                                            float lo, float hi, double gap)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = z + r * d;
        for (int tries = 0;; tries++) {
            assert_true(tries < 10000);
            gt_fill(env, row, d, lo, hi);
            double tau = ref_tau(row, d);
            bool ok = true;
            for (int64_t i = 0; i < d; i++)
                if (fabs((double)row[i] - tau) < gap)
                    ok = false;
            if (ok)
                break;
        }
    }
}

static gtl_status sparsemax_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_sparsemax(t, in[0], out);
}

static void test_sparsemax_grad(void **state)
{
    gt_env *env = *state;
    const double eps = 1e-2, gap = 5e-2;
    /* Piecewise linear away from the boundary: a tight tolerance. */
    gt_gradcheck_opts opts = {.eps = eps, .tol = 1e-3, .max_checks = 64};
    for (int rep = 0; rep < 10; rep++) {
        int64_t rows = rep == 0 ? 1 : gt_randint(env, 1, 5);
        int64_t d = rep == 1 ? 1 : rep == 2 ? 40 : gt_randint(env, 2, 12);
        gt_input in = {.nd = 2, .ne = {rows, d}};
        float *z = malloc((size_t)(rows * d) * sizeof(float));
        fill_away_from_support_boundary(env, z, rows, d, -1.5f, 1.5f, gap);
        in.data = z;
        char name[64];
        snprintf(name, sizeof name, "sparsemax (%lld, %lld)", (long long)rows, (long long)d);
        gt_gradcheck(env, name, sparsemax_fn, NULL, 1, &in, &opts);
        free(z);
    }
    /* 3-D. */
    gt_input in3 = {.nd = 3, .ne = {2, 3, 6}};
    float z3[36];
    fill_away_from_support_boundary(env, z3, 6, 6, -1.0f, 1.0f, gap);
    in3.data = z3;
    gt_gradcheck(env, "sparsemax (2, 3, 6)", sparsemax_fn, NULL, 1, &in3, &opts);
}

/* The Jacobian is symmetric with rows summing to 0 (the output stays on the
 * simplex), so the gradient of each row sums to 0 and is 0 off the support. */
static void test_sparsemax_grad_structure(void **state)
{
    gt_env *env = *state;
    int64_t rows = 8, d = 40;
    int64_t ne[2] = {rows, d};
    gtl__tensor *z = gt_leaf(env, 2, ne, NULL, true);
    gt_fill(env, z->data, z->n, -2.0f, 2.0f);
    gtl__tensor *p;
    assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
    float *seed = malloc((size_t)p->n * sizeof(float));
    gt_fill(env, seed, p->n, -1.0f, 1.0f);
    assert_int_equal(gtl__tape_backward_seed(env->tape, p, seed), GTL_STATUS_OK);
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int64_t i = 0; i < d; i++) {
            s += z->grad[r * d + i];
            if (p->data[r * d + i] == 0.0f)
                assert_true(z->grad[r * d + i] == 0.0f);
        }
        assert_true(fabs(s) < 1e-5);
    }
    free(seed);
}

static void test_sparsemax_bad_args(void **state)
{
    gt_env *env = *state;
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_sparsemax(env->tape, NULL, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "sparsemax"));
    /* 0-d: no last dim. */
    gtl__tensor *s = gt_leaf(env, 0, NULL, NULL, true);
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_sparsemax(env->tape, s, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "sparsemax"));
    /* Empty last dim: no simplex to project on. */
    int64_t ne[2] = {3, 0};
    gtl__tensor *e = gt_leaf(env, 2, ne, NULL, true);
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_sparsemax(env->tape, e, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "last dim"));
    assert_int_equal(env->tape->n_nodes, 0);
    /* No rows is fine: an empty result. */
    int64_t ne0[2] = {0, 4};
    gtl__tensor *z0 = gt_leaf(env, 2, ne0, NULL, true);
    assert_int_equal(gtl__op_sparsemax(env->tape, z0, &out), GTL_STATUS_OK);
    assert_int_equal(out->n, 0);
}

static void test_sparsemax_records_only_when_needed(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {4, 5};
    gtl__tensor *z = gt_leaf(env, 2, ne, NULL, false);
    gtl__tensor *p;
    assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 0);
    assert_false(gtl__requires_grad(p));
    gtl__tensor *zg = gt_leaf(env, 2, ne, NULL, true);
    env->tape->grad_enabled = false;
    assert_int_equal(gtl__op_sparsemax(env->tape, zg, &p), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 0);
    env->tape->grad_enabled = true;
    assert_int_equal(gtl__op_sparsemax(env->tape, zg, &p), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 1);
}

/* Scratch is taken from the arena once per call: once the arena has grown to
 * its high-water size (after the first reset), an identical step performs no
 * allocation at all. */
static void test_sparsemax_no_allocation_in_steady_state(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {2000, 64};
    float *data = malloc(2000 * 64 * sizeof(float));
    gt_fill(env, data, 2000 * 64, -2.0f, 2.0f);
    uint64_t before = 0;
    for (int step = 0; step < 3; step++) {
        gtl__tape_reset(env->tape);
        if (step == 2)
            before = gtl__alloc_count();
        gtl__tensor *z;
        assert_int_equal(gtl__tape_leaf(env->tape, 2, ne, data, true, &z), GTL_STATUS_OK);
        gtl__tensor *p, *s;
        assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
        assert_int_equal(gtl__op_sum(env->tape, p, -1, false, &s), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    }
    assert_int_equal(gtl__alloc_count(), before);
    free(data);
}

static void test_sparsemax_uses_no_primitives(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 9};
    gtl__tensor *z = gt_leaf(env, 2, ne, NULL, true), *p;
    assert_int_equal(gtl__op_sparsemax(env->tape, z, &p), GTL_STATUS_OK);
    /* Plain loops: nothing in the oneDNN primitive cache. */
    printf("# sparsemax: %lld oneDNN primitives\n", (long long)gtl__ctx_num_prims(env->ctx));
    assert_int_equal(gtl__ctx_num_prims(env->ctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sparsemax_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_sparse_for_spread_inputs, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_known_values, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_grad_structure, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_records_only_when_needed, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_no_allocation_in_steady_state, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_sparsemax_uses_no_primitives, gt_setup,
                                        gt_teardown),
    };
    return cmocka_run_group_tests_name("op_sparse", tests, NULL, NULL);
}
