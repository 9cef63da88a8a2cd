/* sum and mean over one axis (keepdim or not) and over everything: forward
 * against a multi-index reference in double, gradients against central
 * differences, empty tensors, precision of long sums, bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

static gtl_status run_reduce(gtl__tape *t, bool mean, gtl__tensor *x, int32_t axis,
                             bool keepdim, gtl__tensor **out)
{
    return mean ? gtl__op_mean(t, x, axis, keepdim, out) : gtl__op_sum(t, x, axis, keepdim, out);
}

/* Reference: out[o, i] = sum_l x[o, l, i] (/ len), in double. */
static void ref_reduce(const gtl__tensor *x, int32_t axis, bool mean, double *out,
                       int64_t *n_out)
{
    if (axis < 0) {
        double s = 0.0;
        for (int64_t i = 0; i < x->n; i++)
            s += x->data[i];
        out[0] = mean ? s / (double)x->n : s;
        *n_out = 1;
        return;
    }
    int64_t outer = 1, inner = 1, len = x->ne[axis];
    for (int32_t i = 0; i < axis; i++)
        outer *= x->ne[i];
    for (int32_t i = axis + 1; i < x->nd; i++)
        inner *= x->ne[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0.0;
            for (int64_t l = 0; l < len; l++)
                s += x->data[(o * len + l) * inner + i];
            out[o * inner + i] = mean ? s / (double)len : s;
        }
    *n_out = outer * inner;
}

static void check_shape(const gtl__tensor *x, const gtl__tensor *y, int32_t axis, bool keepdim)
{
    if (axis < 0) {
        assert_int_equal(y->n, 1);
        assert_int_equal(y->nd, keepdim ? x->nd : 0);
        for (int32_t i = 0; i < y->nd; i++)
            assert_int_equal(y->ne[i], 1);
        return;
    }
    assert_int_equal(y->nd, keepdim ? x->nd : x->nd - 1);
    int32_t j = 0;
    for (int32_t i = 0; i < x->nd; i++) {
        if (i == axis) {
            if (keepdim)
                assert_int_equal(y->ne[j++], 1);
            continue;
        }
        assert_int_equal(y->ne[j++], x->ne[i]);
    }
}

static void test_reduce_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 16; rep++) {
        int32_t nd = (int32_t)gt_randint(env, 1, 5);
        int64_t ne[GTL__MAX_DIMS];
        for (int32_t i = 0; i < nd; i++)
            ne[i] = gt_randint(env, 1, rep < 12 ? 6 : 40);
        for (int mean = 0; mean < 2; mean++)
            for (int32_t axis = -1; axis < nd; axis++)
                for (int keep = 0; keep < 2; keep++) {
                    gtl__tensor *x = gt_leaf(env, nd, ne, NULL, keep == 0), *y = NULL;
                    assert_int_equal(run_reduce(env->tape, mean, x, axis, keep, &y),
                                     GTL_STATUS_OK);
                    assert_non_null(y);
                    check_shape(x, y, axis, keep);
                    double *ref = malloc((size_t)x->n * sizeof(double));
                    float *reff = malloc((size_t)x->n * sizeof(float));
                    int64_t n_out;
                    ref_reduce(x, axis, mean, ref, &n_out);
                    assert_int_equal(n_out, y->n);
                    for (int64_t i = 0; i < n_out; i++)
                        reff[i] = (float)ref[i];
                    char what[64];
                    snprintf(what, sizeof what, "%s axis=%d keepdim=%d", mean ? "mean" : "sum",
                             (int)axis, keep);
                    gt_assert_close(y->data, reff, n_out, 1e-5, 1e-5, what);
                    free(ref);
                    free(reff);
                    assert_int_equal(env->tape->n_nodes, keep == 0 ? 1 : 0);
                    gtl__tape_reset(env->tape);
                }
    }
}

typedef struct red_ud {
    bool mean, keepdim;
    int32_t axis;
} red_ud;

static gtl_status red_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    red_ud *u = ud;
    return run_reduce(t, u->mean, in[0], u->axis, u->keepdim, out);
}

static void test_reduce_grad(void **state)
{
    gt_env *env = *state;
    for (int mean = 0; mean < 2; mean++)
        for (int rep = 0; rep < 8; rep++) {
            gt_input in = {.nd = (int32_t)gt_randint(env, 1, 4)};
            for (int32_t i = 0; i < in.nd; i++)
                in.ne[i] = rep == 0 ? 1 : gt_randint(env, 1, 5);
            red_ud u = {mean != 0, rep % 2 == 1,
                        (int32_t)gt_randint(env, -1, in.nd - 1)};
            char name[64];
            snprintf(name, sizeof name, "%s nd=%d axis=%d keepdim=%d", mean ? "mean" : "sum",
                     (int)in.nd, (int)u.axis, (int)u.keepdim);
            gt_gradcheck(env, name, red_fn, &u, 1, &in, NULL);
        }
}

/* Exact gradients: 1 for sum, 1/len (or 1/n) for mean, scaled by the seed. */
static void test_reduce_grad_exact(void **state)
{
    gt_env *env = *state;
    int64_t ne[3] = {2, 3, 4};
    for (int mean = 0; mean < 2; mean++)
        for (int32_t axis = -1; axis < 3; axis++) {
            gtl__tensor *x = gt_leaf(env, 3, ne, NULL, true), *y;
            assert_int_equal(run_reduce(env->tape, mean, x, axis, false, &y), GTL_STATUS_OK);
            float seed[24];
            for (int64_t i = 0; i < y->n; i++)
                seed[i] = (float)(i + 1);
            assert_int_equal(gtl__tape_backward_seed(env->tape, y, seed), GTL_STATUS_OK);
            float want[24];
            for (int64_t f = 0; f < 24; f++) {
                int64_t idx[3] = {f / 12, (f / 4) % 3, f % 4};
                int64_t o;
                double len;
                if (axis < 0) {
                    o = 0;
                    len = 24;
                } else {
                    o = axis == 0 ? idx[1] * 4 + idx[2]
                        : axis == 1 ? idx[0] * 4 + idx[2] : idx[0] * 3 + idx[1];
                    len = (double)ne[axis];
                }
                want[f] = (float)(seed[o] / (mean ? len : 1.0));
            }
            gt_assert_close(x->grad, want, 24, 1e-7, 1e-6, mean ? "mean grad" : "sum grad");
            gtl__tape_reset(env->tape);
        }
}

/* Empty tensors: sums are 0 (and their backward is a no-op), means are errors. */
static void test_reduce_empty(void **state)
{
    gt_env *env = *state;
    int64_t ne[3] = {3, 0, 4};
    gtl__tensor *x = gt_leaf(env, 3, ne, NULL, true), *y, *s;
    assert_int_equal(gtl__op_sum(env->tape, x, 1, false, &y), GTL_STATUS_OK);
    assert_int_equal(y->n, 12);
    for (int i = 0; i < 12; i++)
        assert_true(y->data[i] == 0.0f);
    assert_int_equal(gtl__op_sum(env->tape, x, -1, false, &s), GTL_STATUS_OK);
    assert_true(s->data[0] == 0.0f);
    assert_int_equal(gtl__op_sum(env->tape, x, 0, true, &y), GTL_STATUS_OK);
    assert_int_equal(y->n, 0);
    assert_int_equal(gtl__op_mean(env->tape, x, 2, false, &y), GTL_STATUS_OK); /* (3, 0) */
    assert_int_equal(y->n, 0);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    gtl__tape_reset(env->tape);

    x = gt_leaf(env, 3, ne, NULL, true);
    int64_t n_before = env->tape->n_nodes;
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_mean(env->tape, x, 1, false, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "mean"));
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_mean(env->tape, x, -1, true, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_int_equal(env->tape->n_nodes, n_before);
}

/* Long reductions stay accurate: both the whole-tensor and the per-axis sums
 * accumulate in double (a float accumulator is off by ~1e-4 here). */
static void test_reduce_long(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {1 << 17, 8};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, false), *y;
    gt_fill(env, x->data, x->n, 0.0f, 1.0f);
    double *ref = malloc((size_t)ne[1] * sizeof(double));
    float *reff = malloc((size_t)ne[1] * sizeof(float));
    int64_t n_out;
    for (int mean = 0; mean < 2; mean++) {
        assert_int_equal(run_reduce(env->tape, mean, x, -1, false, &y), GTL_STATUS_OK);
        ref_reduce(x, -1, mean, ref, &n_out);
        reff[0] = (float)ref[0];
        gt_assert_close(y->data, reff, 1, 0.0, 1e-6, "long reduction over all");
        assert_int_equal(run_reduce(env->tape, mean, x, 0, false, &y), GTL_STATUS_OK);
        ref_reduce(x, 0, mean, ref, &n_out);
        for (int64_t i = 0; i < n_out; i++)
            reff[i] = (float)ref[i];
        gt_assert_close(y->data, reff, n_out, 0.0, 1e-6, "long reduction over axis 0");
    }
    free(ref);
    free(reff);
}

static void test_reduce_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y;
    static const int32_t bad_axes[4] = {-2, 2, 7, -100};
    for (int mean = 0; mean < 2; mean++) {
        const char *name = mean ? "mean" : "sum";
        y = (gtl__tensor *)1;
        assert_int_equal(run_reduce(env->tape, mean, NULL, 0, false, &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), name));
        for (int i = 0; i < 4; i++) {
            y = (gtl__tensor *)1;
            assert_int_equal(run_reduce(env->tape, mean, x, bad_axes[i], false, &y),
                             GTL_STATUS_INVALID_ARG);
            assert_null(y);
            assert_non_null(strstr(gtl_last_error(), name));
            assert_non_null(strstr(gtl_last_error(), "axis"));
        }
    }
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- accumulation ---------------------------------------------------------
 * acc_fn wraps an op: out = sum(op(in...)) + sum(in[0]) + sum(in[1]) + ...
 * The extra sums are recorded after the op, so their backward runs first and
 * the op's backward must add to (not overwrite) the gradients already there. */
typedef struct acc_ud {
    gt_fn fn;
    void *ud;
    int n_in;
} acc_ud;

static gtl_status acc_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    acc_ud *u = ud;
    gtl__tensor *y, *total, *s;
    gtl_status st = u->fn(t, in, u->ud, &y);
    if (st == GTL_STATUS_OK)
        st = gtl__op_sum(t, y, -1, false, &total);
    for (int i = 0; st == GTL_STATUS_OK && i < u->n_in; i++) {
        st = gtl__op_sum(t, in[i], -1, false, &s);
        if (st == GTL_STATUS_OK)
            st = gtl__op_add(t, total, s, &total);
    }
    *out = st == GTL_STATUS_OK ? total : NULL;
    return st;
}
static void test_reduce_accumulates(void **state)
{
    gt_env *env = *state;
    gt_input x = {.nd = 3, .ne = {2, 4, 3}};
    for (int mean = 0; mean < 2; mean++)
        for (int32_t axis = -1; axis < 3; axis++) {
            red_ud u = {mean != 0, false, axis};
            acc_ud a = {red_fn, &u, 1};
            gt_gradcheck(env, mean ? "acc mean" : "acc sum", acc_fn, &a, 1, &x, NULL);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reduce_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reduce_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reduce_grad_exact, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reduce_empty, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reduce_long, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reduce_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reduce_accumulates, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_reduce", tests, NULL, NULL);
}
