/* add, sub, mul (same shape, trailing-dims broadcast, one-element b), scale,
 * abs and exp: forward against plain loops on both the loop path (small) and
 * the oneDNN binary path (>= 4096 elements), gradients against central
 * differences, aliasing (x op x), and bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

enum { OP_ADD = 0, OP_SUB = 1, OP_MUL = 2 };
enum { BC_SAME = 0, BC_TRAIL = 1, BC_SCALAR = 2 };

static const char *op_names[3] = {"add", "sub", "mul"};
static const char *bc_names[3] = {"same", "trailing", "scalar"};

static gtl_status run_binary(gtl__tape *t, int op, gtl__tensor *a, gtl__tensor *b,
                             gtl__tensor **out)
{
    switch (op) {
    case OP_ADD: return gtl__op_add(t, a, b, out);
    case OP_SUB: return gtl__op_sub(t, a, b, out);
    default: return gtl__op_mul(t, a, b, out);
    }
}

/* Random shape for a with about `target` elements (0: small, 1..3 per dim),
 * and b's shape for the broadcast mode. */
static void make_shapes(gt_env *env, int bc, int64_t target, gt_input *a, gt_input *b)
{
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    a->nd = (int32_t)gt_randint(env, 1, 4);
    for (int32_t i = 0; i < a->nd; i++)
        a->ne[i] = gt_randint(env, 1, 4);
    if (target > 0) {
        /* grow the last dim so the whole tensor has at least target elements */
        int64_t rest = 1;
        for (int32_t i = 0; i < a->nd - 1; i++)
            rest *= a->ne[i];
        a->ne[a->nd - 1] = (target + rest - 1) / rest + gt_randint(env, 0, 7);
    }
    switch (bc) {
    case BC_SAME:
        *b = *a;
        break;
    case BC_TRAIL: {
        int32_t k = (int32_t)gt_randint(env, 1, a->nd);
        b->nd = k;
        for (int32_t i = 0; i < k; i++)
            b->ne[i] = a->ne[a->nd - k + i];
        break;
    }
    default: {
        /* one element, in any of the three spellings: 0-d, (1) or (1, 1) */
        b->nd = (int32_t)gt_randint(env, 0, 2);
        for (int32_t i = 0; i < b->nd; i++)
            b->ne[i] = 1;
        break;
    }
    }
}

static int64_t numel(const gt_input *in)
{
    int64_t n = 1;
    for (int32_t i = 0; i < in->nd; i++)
        n *= in->ne[i];
    return n;
}

static void check_binary_forward(gt_env *env, int op, int bc, int64_t target)
{
    gt_input ia, ib;
    make_shapes(env, bc, target, &ia, &ib);
    gtl__tensor *a = gt_leaf(env, ia.nd, ia.ne, NULL, true);
    gtl__tensor *b = gt_leaf(env, ib.nd, ib.ne, NULL, true);
    gtl__tensor *y = NULL;
    assert_int_equal(run_binary(env->tape, op, a, b, &y), GTL_STATUS_OK);
    assert_non_null(y);
    assert_int_equal(y->nd, a->nd);
    for (int32_t i = 0; i < a->nd; i++)
        assert_int_equal(y->ne[i], a->ne[i]);
    float *ref = malloc((size_t)a->n * sizeof(float));
    for (int64_t i = 0; i < a->n; i++) {
        float x = a->data[i], z = b->data[i % b->n];
        ref[i] = op == OP_ADD ? x + z : op == OP_SUB ? x - z : x * z;
    }
    char what[96];
    snprintf(what, sizeof what, "%s %s forward (%lld elements)", op_names[op], bc_names[bc],
             (long long)a->n);
    gt_assert_close(y->data, ref, a->n, 1e-6, 1e-6, what);
    free(ref);
    assert_true(gtl__requires_grad(y));
    assert_int_equal(env->tape->n_nodes, 1);
    gtl__tape_reset(env->tape);
}

static void test_binary_forward(void **state)
{
    gt_env *env = *state;
    for (int op = 0; op < 3; op++)
        for (int bc = 0; bc < 3; bc++)
            for (int rep = 0; rep < 3; rep++) {
                check_binary_forward(env, op, bc, 0);                 /* loop path */
                check_binary_forward(env, op, bc, 4096 + rep * 3001); /* oneDNN path */
            }
}

typedef struct bin_ud {
    int op;
} bin_ud;

static gtl_status bin_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return run_binary(t, ((bin_ud *)ud)->op, in[0], in[1], out);
}

static void test_binary_grad(void **state)
{
    gt_env *env = *state;
    for (int op = 0; op < 3; op++)
        for (int bc = 0; bc < 3; bc++)
            for (int rep = 0; rep < 4; rep++) {
                gt_input in[2];
                /* rep 3: a large a, so the forward runs on oneDNN */
                make_shapes(env, bc, rep == 3 ? 4100 : 0, &in[0], &in[1]);
                if (rep == 0) {
                    /* edge: every dim 1 */
                    for (int32_t i = 0; i < in[0].nd; i++)
                        in[0].ne[i] = 1;
                    if (bc != BC_SCALAR)
                        for (int32_t i = 0; i < in[1].nd; i++)
                            in[1].ne[i] = 1;
                }
                bin_ud u = {op};
                char name[64];
                snprintf(name, sizeof name, "%s %s n=%lld", op_names[op], bc_names[bc],
                         (long long)numel(&in[0]));
                /* The broadcast b's gradient is a sum over many rows: check enough of them. */
                gt_gradcheck_opts o = {.max_checks = 64};
                gt_gradcheck(env, name, bin_fn, &u, 2, in, &o);
            }
}

/* One operand constant: only the other gets a gradient, and it is right. */
static void test_binary_grad_one_side(void **state)
{
    gt_env *env = *state;
    for (int op = 0; op < 3; op++)
        for (int side = 0; side < 2; side++) {
            gt_input in[2];
            make_shapes(env, BC_TRAIL, 0, &in[0], &in[1]);
            in[side].no_grad = true;
            bin_ud u = {op};
            char name[64];
            snprintf(name, sizeof name, "%s const %s", op_names[op], side ? "b" : "a");
            gt_gradcheck(env, name, bin_fn, &u, 2, in, NULL);
        }
}

/* x op x: both gradient contributions accumulate into the same buffer. */
static gtl_status self_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return run_binary(t, ((bin_ud *)ud)->op, in[0], in[0], out);
}

static void test_binary_same_tensor(void **state)
{
    gt_env *env = *state;
    for (int op = 0; op < 3; op++) {
        gt_input in = {.nd = 2, .ne = {3, 5}};
        bin_ud u = {op};
        char name[64];
        snprintf(name, sizeof name, "%s(x, x)", op_names[op]);
        gt_gradcheck(env, name, self_fn, &u, 1, &in, NULL);

        /* and exactly: d(sum x op x)/dx = 2, 0, 2x */
        int64_t ne[2] = {3, 5};
        gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y, *s;
        assert_int_equal(run_binary(env->tape, op, x, x, &y), GTL_STATUS_OK);
        assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
        float want[15];
        for (int i = 0; i < 15; i++)
            want[i] = op == OP_ADD ? 2.0f : op == OP_SUB ? 0.0f : 2.0f * x->data[i];
        gt_assert_close(x->grad, want, 15, 1e-6, 1e-6, name);
        gtl__tape_reset(env->tape);
    }
}

/* ---- unary ---------------------------------------------------------------- */

enum { UN_SCALE = 0, UN_ABS = 1, UN_EXP = 2 };

typedef struct un_ud {
    int op;
    float alpha, beta;
} un_ud;

static gtl_status un_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    un_ud *u = ud;
    switch (u->op) {
    case UN_SCALE: return gtl__op_scale(t, in[0], u->alpha, u->beta, out);
    case UN_ABS: return gtl__op_abs(t, in[0], out);
    default: return gtl__op_exp(t, in[0], out);
    }
}

static void test_unary_forward(void **state)
{
    gt_env *env = *state;
    for (int op = 0; op < 3; op++)
        for (int rep = 0; rep < 4; rep++) {
            int64_t ne[3] = {gt_randint(env, 1, 5), gt_randint(env, 1, 40),
                             gt_randint(env, 1, 70)};
            gtl__tensor *x = gt_leaf(env, 3, ne, NULL, true);
            gt_fill(env, x->data, x->n, -3.0f, 3.0f);
            x->data[0] = 0.0f;
            un_ud u = {op, (float)gt_randint(env, -30, 30) / 10.0f,
                       (float)gt_randint(env, -30, 30) / 10.0f};
            gtl__tensor *y = NULL;
            assert_int_equal(un_fn(env->tape, &x, &u, &y), GTL_STATUS_OK);
            float *ref = malloc((size_t)x->n * sizeof(float));
            for (int64_t i = 0; i < x->n; i++) {
                double v = x->data[i];
                ref[i] = (float)(op == UN_SCALE ? u.alpha * v + u.beta
                                 : op == UN_ABS ? fabs(v) : exp(v));
            }
            gt_assert_close(y->data, ref, x->n, 1e-6, 1e-6,
                            op == UN_SCALE ? "scale" : op == UN_ABS ? "abs" : "exp");
            free(ref);
            assert_int_equal(env->tape->n_nodes, 1);
            gtl__tape_reset(env->tape);
        }
}

static void test_unary_grad(void **state)
{
    gt_env *env = *state;
    static const float kink = 0.0f;
    for (int op = 0; op < 3; op++)
        for (int rep = 0; rep < 4; rep++) {
            gt_input in = {.nd = (int32_t)gt_randint(env, 1, 3)};
            for (int32_t i = 0; i < in.nd; i++)
                in.ne[i] = rep == 0 ? 1 : gt_randint(env, 1, 6);
            float *vals = NULL;
            if (op == UN_ABS) {
                /* |x| has a kink at 0: stay well away from it */
                vals = malloc((size_t)numel(&in) * sizeof(float));
                gt_fill_away(env, vals, numel(&in), -2.0f, 2.0f, &kink, 1, 0.1f);
                in.data = vals;
            } else if (op == UN_EXP) {
                in.lo = -2.0f;
                in.hi = 2.0f;
            }
            un_ud u = {op, (float)gt_randint(env, -30, 30) / 10.0f, 0.5f};
            char name[64];
            snprintf(name, sizeof name, "%s n=%lld",
                     op == UN_SCALE ? "scale" : op == UN_ABS ? "abs" : "exp",
                     (long long)numel(&in));
            gt_gradcheck(env, name, un_fn, &u, 1, &in, NULL);
            free(vals);
        }
}

/* The gradient of |x| at exactly 0 is 0 (and sign(x) elsewhere). */
static void test_abs_grad_at_zero(void **state)
{
    gt_env *env = *state;
    int64_t ne[1] = {5};
    const float xs[5] = {-2.0f, -0.0f, 0.0f, 1e-30f, 3.0f};
    gtl__tensor *x = gt_leaf(env, 1, ne, xs, true), *y, *s;
    assert_int_equal(gtl__op_abs(env->tape, x, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    const float want[5] = {-1.0f, 0.0f, 0.0f, 1.0f, 1.0f};
    gt_assert_close(x->grad, want, 5, 0.0, 0.0, "abs grad");
}

/* Gradients accumulate into an existing gradient instead of overwriting it. */
static void test_accumulates(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {4, 6};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y1, *y2, *y, *s;
    /* s = sum(3x + 1) + sum(exp(x)) -> ds/dx = 3 + exp(x) */
    assert_int_equal(gtl__op_scale(env->tape, x, 3.0f, 1.0f, &y1), GTL_STATUS_OK);
    assert_int_equal(gtl__op_exp(env->tape, x, &y2), GTL_STATUS_OK);
    assert_int_equal(gtl__op_add(env->tape, y1, y2, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    float want[24];
    for (int i = 0; i < 24; i++)
        want[i] = 3.0f + expf(x->data[i]);
    gt_assert_close(x->grad, want, 24, 1e-6, 1e-6, "accumulated grad");
}

static void test_no_grad_records_nothing(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4};
    gtl__tensor *a = gt_leaf(env, 2, ne, NULL, false), *b = gt_leaf(env, 2, ne, NULL, true);
    gtl__tensor *y;
    /* no source requires grad */
    assert_int_equal(gtl__op_mul(env->tape, a, a, &y), GTL_STATUS_OK);
    assert_false(gtl__requires_grad(y));
    assert_int_equal(gtl__op_exp(env->tape, a, &y), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 0);
    /* grad mode off */
    env->tape->grad_enabled = false;
    assert_int_equal(gtl__op_add(env->tape, a, b, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_scale(env->tape, b, 2.0f, 0.0f, &y), GTL_STATUS_OK);
    assert_false(gtl__requires_grad(y));
    assert_int_equal(env->tape->n_nodes, 0);
    env->tape->grad_enabled = true;
}

static void test_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s2[1] = {2}, s4[1] = {4}, s123[3] = {1, 2, 3};
    gtl__tensor *a = gt_leaf(env, 2, s23, NULL, true);
    gtl__tensor *bad[4] = {
        gt_leaf(env, 2, s32, NULL, true),  /* transposed */
        gt_leaf(env, 1, s2, NULL, true),   /* leading dim, not trailing */
        gt_leaf(env, 1, s4, NULL, true),   /* unrelated */
        gt_leaf(env, 3, s123, NULL, true), /* more dims than a */
    };
    for (int op = 0; op < 3; op++) {
        gtl__tensor *y = (gtl__tensor *)1;
        assert_int_equal(run_binary(env->tape, op, NULL, a, &y), GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), op_names[op]));
        y = (gtl__tensor *)1;
        assert_int_equal(run_binary(env->tape, op, a, NULL, &y), GTL_STATUS_INVALID_ARG);
        assert_null(y);
        for (int k = 0; k < 4; k++) {
            y = (gtl__tensor *)1;
            assert_int_equal(run_binary(env->tape, op, a, bad[k], &y), GTL_STATUS_INVALID_ARG);
            assert_null(y);
            assert_non_null(strstr(gtl_last_error(), op_names[op]));
            assert_non_null(strstr(gtl_last_error(), "broadcast"));
        }
        /* b bigger than a is not broadcast the other way */
        y = (gtl__tensor *)1;
        assert_int_equal(run_binary(env->tape, op, bad[1], a, &y), GTL_STATUS_INVALID_ARG);
        assert_null(y);
    }
    for (int op = 0; op < 3; op++) {
        un_ud u = {op, 1.0f, 0.0f};
        gtl__tensor *in0 = NULL, *y = (gtl__tensor *)1;
        assert_int_equal(un_fn(env->tape, &in0, &u, &y), GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(),
                               op == UN_SCALE ? "scale" : op == UN_ABS ? "abs" : "exp"));
    }
    assert_int_equal(env->tape->n_nodes, 0);
}

/* The oneDNN path: print the implementations and require JIT kernels. */
static void test_binary_kernels(void **state)
{
    gt_env *env = *state;
    static const int64_t shapes[][3] = {
        /* a (R, C) and b's mode */
        {197, 768, BC_SAME}, {197, 768, BC_TRAIL}, {197, 768, BC_SCALAR},
        {64, 65, BC_TRAIL}, {1, 4099, BC_SAME}, {4099, 1, BC_TRAIL}, {3, 1531, BC_SCALAR},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int op = 0; op < 3; op++) {
            int64_t ne[2] = {shapes[k][0], shapes[k][1]};
            int64_t bn[2] = {1, 1};
            int32_t bnd = shapes[k][2] == BC_SAME ? 2 : 1;
            if (shapes[k][2] == BC_SAME) {
                bn[0] = ne[0];
                bn[1] = ne[1];
            } else if (shapes[k][2] == BC_TRAIL) {
                bn[0] = ne[1];
            }
            gtl__tensor *a = gt_leaf(env, 2, ne, NULL, false);
            gtl__tensor *b = gt_leaf(env, bnd, bn, NULL, false);
            gtl__tensor *y;
            assert_int_equal(run_binary(env->tape, op, a, b, &y), GTL_STATUS_OK);
            for (int64_t i = 0; i < a->n; i += 97) {
                float x = a->data[i], z = b->data[i % b->n];
                float r = op == OP_ADD ? x + z : op == OP_SUB ? x - z : x * z;
                assert_true(fabsf(y->data[i] - r) <= 1e-6f * (1.0f + fabsf(r)));
            }
            gtl__tape_reset(env->tape);
        }
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, NULL);
        printf("# %s: %s%s\n", op, impl, hot ? " (hot)" : "");
        assert_true(strncmp(impl, "ref", 3) != 0);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
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
static void test_elementwise_accumulates(void **state)
{
    gt_env *env = *state;
    for (int op = 0; op < 3; op++)
        for (int bc = 0; bc < 3; bc++) {
            gt_input in[2];
            make_shapes(env, bc, 0, &in[0], &in[1]);
            bin_ud u = {op};
            acc_ud a = {bin_fn, &u, 2};
            char name[64];
            snprintf(name, sizeof name, "acc %s %s", op_names[op], bc_names[bc]);
            gt_gradcheck(env, name, acc_fn, &a, 2, in, NULL);
        }
    for (int op = 0; op < 3; op++) {
        gt_input in = {.nd = 2, .ne = {3, 4}, .lo = 0.2f, .hi = 2.0f}; /* away from abs' kink */
        un_ud u = {op, -1.5f, 0.25f};
        acc_ud a = {un_fn, &u, 1};
        gt_gradcheck(env, op == UN_SCALE ? "acc scale" : op == UN_ABS ? "acc abs" : "acc exp",
                     acc_fn, &a, 1, &in, NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_binary_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_binary_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_binary_grad_one_side, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_binary_same_tensor, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_unary_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_unary_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_abs_grad_at_zero, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_accumulates, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_no_grad_records_nothing, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_binary_kernels, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_elementwise_accumulates, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_elementwise", tests, NULL, NULL);
}
