/* concat, slice, reshape, transpose: forward against multi-index reference
 * loops, gradients against central differences, reshape's aliasing and its own
 * gradient, and bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* Multi-index of flat index f in shape (nd, ne), row-major. */
static void unravel(int64_t f, int32_t nd, const int64_t *ne, int64_t *idx)
{
    for (int32_t i = nd - 1; i >= 0; i--) {
        idx[i] = ne[i] > 0 ? f % ne[i] : 0;
        f = ne[i] > 0 ? f / ne[i] : 0;
    }
}

static int64_t ravel(int32_t nd, const int64_t *ne, const int64_t *idx)
{
    int64_t f = 0;
    for (int32_t i = 0; i < nd; i++)
        f = f * ne[i] + idx[i];
    return f;
}

static void random_shape(gt_env *env, gt_input *in, int32_t nd_lo, int32_t nd_hi, int64_t hi)
{
    memset(in, 0, sizeof *in);
    in->nd = (int32_t)gt_randint(env, nd_lo, nd_hi);
    for (int32_t i = 0; i < in->nd; i++)
        in->ne[i] = gt_randint(env, 1, hi);
}

static void assert_shape(const gtl__tensor *t, int32_t nd, const int64_t *ne)
{
    assert_int_equal(t->nd, nd);
    for (int32_t i = 0; i < nd; i++)
        assert_int_equal(t->ne[i], ne[i]);
}

/* ---- concat ---------------------------------------------------------------- */

typedef struct cat_ud {
    int32_t n, axis;
} cat_ud;

static gtl_status cat_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    cat_ud *u = ud;
    return gtl__op_concat(t, in, u->n, u->axis, out);
}

/* n inputs equal to base except along axis, where each gets 0..hi (min_len..). */
static void cat_shapes(gt_env *env, const gt_input *base, int32_t n, int32_t axis,
                       int64_t min_len, gt_input *in)
{
    for (int32_t k = 0; k < n; k++) {
        in[k] = *base;
        in[k].ne[axis] = gt_randint(env, min_len, 4);
    }
}

static void test_concat_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 30; rep++) {
        gt_input base, in[6];
        random_shape(env, &base, 1, 4, 4);
        int32_t n = (int32_t)gt_randint(env, 1, 6), axis = (int32_t)gt_randint(env, 0, base.nd - 1);
        cat_shapes(env, &base, n, axis, 0, in); /* zero-length pieces allowed */
        gtl__tensor *src[6];
        int64_t total = 0, offs[7];
        for (int32_t k = 0; k < n; k++) {
            src[k] = gt_leaf(env, in[k].nd, in[k].ne, NULL, k % 2 == 0);
            offs[k] = total;
            total += in[k].ne[axis];
        }
        gtl__tensor *y = NULL;
        assert_int_equal(gtl__op_concat(env->tape, src, n, axis, &y), GTL_STATUS_OK);
        int64_t ne[GTL__MAX_DIMS];
        memcpy(ne, base.ne, sizeof ne);
        ne[axis] = total;
        assert_shape(y, base.nd, ne);
        float *ref = calloc((size_t)(y->n ? y->n : 1), sizeof(float));
        for (int32_t k = 0; k < n; k++)
            for (int64_t f = 0; f < src[k]->n; f++) {
                int64_t idx[GTL__MAX_DIMS];
                unravel(f, in[k].nd, in[k].ne, idx);
                idx[axis] += offs[k];
                ref[ravel(base.nd, ne, idx)] = src[k]->data[f];
            }
        gt_assert_close(y->data, ref, y->n, 0.0, 0.0, "concat forward");
        free(ref);
        assert_int_equal(env->tape->n_nodes, 1);
        gtl__tape_reset(env->tape);
    }
}

static void test_concat_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 12; rep++) {
        gt_input base, in[6];
        random_shape(env, &base, 1, 4, rep < 2 ? 1 : 3);
        cat_ud u = {(int32_t)gt_randint(env, 1, 6), (int32_t)gt_randint(env, 0, base.nd - 1)};
        if (rep == 2)
            u.n = 6;
        cat_shapes(env, &base, u.n, u.axis, 1, in);
        if (rep % 3 == 1)
            in[0].no_grad = true; /* a constant piece */
        char name[64];
        snprintf(name, sizeof name, "concat n=%d axis=%d nd=%d", (int)u.n, (int)u.axis,
                 (int)base.nd);
        gt_gradcheck(env, name, cat_fn, &u, u.n, in, NULL);
    }
}

/* concat(x, x) sends both halves of the gradient into x. */
static gtl_status cat_self_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    gtl__tensor *s[3] = {in[0], in[1], in[0]};
    return gtl__op_concat(t, s, 3, *(int32_t *)ud, out);
}

static void test_concat_repeated_source(void **state)
{
    gt_env *env = *state;
    for (int32_t axis = 0; axis < 2; axis++) {
        gt_input in[2] = {{.nd = 2, .ne = {2, 3}}, {.nd = 2, .ne = {2, 3}}};
        gt_gradcheck(env, "concat(x, y, x)", cat_self_fn, &axis, 2, in, NULL);
    }
}

static void test_concat_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t s23[2] = {2, 3}, s24[2] = {2, 4}, s33[2] = {3, 3}, s6[1] = {6};
    gtl__tensor *a = gt_leaf(env, 2, s23, NULL, true), *b = gt_leaf(env, 2, s24, NULL, true);
    gtl__tensor *c = gt_leaf(env, 2, s33, NULL, true), *d = gt_leaf(env, 1, s6, NULL, true);
    gtl__tensor *y;
    gtl__tensor *seven[7] = {a, a, a, a, a, a, a};
    gtl__tensor *with_null[2] = {a, NULL};
    gtl__tensor *ab[2] = {a, b}, *ac[2] = {a, c}, *ad[2] = {a, d};
    struct {
        gtl__tensor *const *src;
        int32_t n, axis;
    } cases[] = {
        {NULL, 1, 0}, {seven, 0, 0}, {seven, 7, 0}, {seven, -1, 0}, {with_null, 2, 0},
        {ab, 2, 0},  /* differ along axis 1, concat along 0 */
        {ac, 2, 1},  /* differ along axis 0, concat along 1 */
        {ad, 2, 0},  /* different rank */
        {ab, 2, 2}, {ab, 2, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_concat(env->tape, cases[i].src, cases[i].n, cases[i].axis, &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "concat"));
    }
    /* the good ones */
    assert_int_equal(gtl__op_concat(env->tape, ab, 2, 1, &y), GTL_STATUS_OK);
    assert_int_equal(y->ne[1], 7);
    assert_int_equal(gtl__op_concat(env->tape, seven, 6, 0, &y), GTL_STATUS_OK);
    assert_int_equal(y->ne[0], 12);
    assert_int_equal(env->tape->n_nodes, 2);
}

/* ---- slice ----------------------------------------------------------------- */

typedef struct slice_ud {
    int32_t axis;
    int64_t start, len;
} slice_ud;

static gtl_status slice_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    slice_ud *u = ud;
    return gtl__op_slice(t, in[0], u->axis, u->start, u->len, out);
}

static void test_slice_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 30; rep++) {
        gt_input in;
        random_shape(env, &in, 1, 5, 5);
        int32_t axis = (int32_t)gt_randint(env, 0, in.nd - 1);
        int64_t start = gt_randint(env, 0, in.ne[axis]);
        int64_t len = gt_randint(env, 0, in.ne[axis] - start); /* 0 and the full axis included */
        gtl__tensor *x = gt_leaf(env, in.nd, in.ne, NULL, true), *y = NULL;
        assert_int_equal(gtl__op_slice(env->tape, x, axis, start, len, &y), GTL_STATUS_OK);
        int64_t ne[GTL__MAX_DIMS];
        memcpy(ne, in.ne, sizeof ne);
        ne[axis] = len;
        assert_shape(y, in.nd, ne);
        float *ref = malloc((size_t)(y->n ? y->n : 1) * sizeof(float));
        for (int64_t f = 0; f < y->n; f++) {
            int64_t idx[GTL__MAX_DIMS];
            unravel(f, in.nd, ne, idx);
            idx[axis] += start;
            ref[f] = x->data[ravel(in.nd, in.ne, idx)];
        }
        gt_assert_close(y->data, ref, y->n, 0.0, 0.0, "slice forward");
        free(ref);
        gtl__tape_reset(env->tape);
    }
}

static void test_slice_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 12; rep++) {
        gt_input in;
        random_shape(env, &in, 1, 4, rep < 2 ? 1 : 5);
        slice_ud u;
        u.axis = (int32_t)gt_randint(env, 0, in.nd - 1);
        u.start = gt_randint(env, 0, in.ne[u.axis] - 1);
        u.len = gt_randint(env, 1, in.ne[u.axis] - u.start);
        char name[64];
        snprintf(name, sizeof name, "slice axis=%d [%lld,+%lld)", (int)u.axis,
                 (long long)u.start, (long long)u.len);
        gt_gradcheck(env, name, slice_fn, &u, 1, &in, NULL);
    }
}

/* Two slices of the same tensor (overlapping) both accumulate into it. */
static void test_slice_overlap_accumulates(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 5};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *a, *b, *sa, *sb, *s;
    assert_int_equal(gtl__op_slice(env->tape, x, 1, 0, 3, &a), GTL_STATUS_OK);
    assert_int_equal(gtl__op_slice(env->tape, x, 1, 2, 3, &b), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, a, -1, false, &sa), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, b, -1, false, &sb), GTL_STATUS_OK);
    assert_int_equal(gtl__op_add(env->tape, sa, sb, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    const float row[5] = {1, 1, 2, 1, 1};
    for (int r = 0; r < 3; r++)
        gt_assert_close(x->grad + 5 * r, row, 5, 0.0, 0.0, "overlapping slices");
}

static void test_slice_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y;
    struct {
        int32_t axis;
        int64_t start, len;
    } cases[] = {
        {-1, 0, 1}, {2, 0, 1}, {0, -1, 1}, {0, 0, -1}, {0, 0, 4}, {1, 3, 2}, {1, 5, 0},
        {1, INT64_MAX, 1}, {1, 1, INT64_MAX},
    };
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_slice(env->tape, NULL, 0, 0, 1, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_slice(env->tape, x, cases[i].axis, cases[i].start, cases[i].len,
                                       &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "slice"));
    }
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- reshape --------------------------------------------------------------- */

typedef struct reshape_ud {
    int32_t nd;
    int64_t ne[GTL__MAX_DIMS];
} reshape_ud;

static gtl_status reshape_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    reshape_ud *u = ud;
    return gtl__op_reshape(t, in[0], u->nd, u->ne, out);
}

/* Splits n into a random shape of nd dims. */
static void split_count(gt_env *env, int64_t n, int32_t nd, int64_t *ne)
{
    for (int32_t i = 0; i < nd - 1; i++) {
        int64_t d = gt_randint(env, 1, 4);
        ne[i] = n % d == 0 ? d : 1;
        n /= ne[i];
    }
    ne[nd - 1] = n;
}

static void test_reshape_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 20; rep++) {
        gt_input in;
        random_shape(env, &in, 1, 4, 4);
        int64_t n = 1;
        for (int32_t i = 0; i < in.nd; i++)
            n *= in.ne[i];
        reshape_ud u;
        u.nd = (int32_t)gt_randint(env, 1, GTL__MAX_DIMS);
        split_count(env, n, u.nd, u.ne);
        gtl__tensor *x = gt_leaf(env, in.nd, in.ne, NULL, rep % 2 == 0), *y = NULL;
        assert_int_equal(gtl__op_reshape(env->tape, x, u.nd, u.ne, &y), GTL_STATUS_OK);
        assert_shape(y, u.nd, u.ne);
        assert_int_equal(y->n, x->n);
        assert_ptr_equal(y->data, x->data); /* an alias, no copy */
        assert_int_equal(gtl__requires_grad(y), rep % 2 == 0);
        assert_false(y->flags & GTL__TF_LEAF);
        assert_int_equal(env->tape->n_nodes, rep % 2 == 0 ? 1 : 0);
        gtl__tape_reset(env->tape);
    }
    /* to and from 0-d */
    int64_t one = 1;
    gtl__tensor *x = gt_leaf(env, 1, &one, NULL, true), *y, *z;
    assert_int_equal(gtl__op_reshape(env->tape, x, 0, NULL, &y), GTL_STATUS_OK);
    assert_int_equal(y->nd, 0);
    assert_int_equal(y->n, 1);
    int64_t ones[3] = {1, 1, 1};
    assert_int_equal(gtl__op_reshape(env->tape, y, 3, ones, &z), GTL_STATUS_OK);
    assert_shape(z, 3, ones);
}

static void test_reshape_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        gt_input in;
        random_shape(env, &in, 1, 4, rep == 0 ? 1 : 4);
        int64_t n = 1;
        for (int32_t i = 0; i < in.nd; i++)
            n *= in.ne[i];
        reshape_ud u;
        u.nd = (int32_t)gt_randint(env, 1, 4);
        split_count(env, n, u.nd, u.ne);
        gt_gradcheck(env, "reshape", reshape_fn, &u, 1, &in, NULL);
    }
}

/* The result has its own gradient; backward accumulates it into src's,
 * which also receives gradient from src's other uses. */
static void test_reshape_own_grad(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {2, 6}, ne2[3] = {3, 2, 2};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y, *e, *sy, *sx, *s;
    /* s = sum(exp(reshape(x))) + sum(x)  ->  ds/dx = exp(x) + 1 */
    assert_int_equal(gtl__op_reshape(env->tape, x, 3, ne2, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_exp(env->tape, y, &e), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, e, -1, false, &sy), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, x, -1, false, &sx), GTL_STATUS_OK);
    assert_int_equal(gtl__op_add(env->tape, sy, sx, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    assert_non_null(y->grad);
    assert_non_null(x->grad);
    assert_ptr_not_equal(y->grad, x->grad);
    float want_x[12], want_y[12];
    for (int i = 0; i < 12; i++) {
        want_y[i] = expf(x->data[i]);
        want_x[i] = want_y[i] + 1.0f;
    }
    gt_assert_close(y->grad, want_y, 12, 1e-6, 1e-6, "reshape dst grad");
    gt_assert_close(x->grad, want_x, 12, 1e-6, 1e-6, "reshape src grad");
}

static void test_reshape_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y;
    int64_t s5[1] = {5}, s_neg[2] = {-3, -4}, s7[7] = {1, 1, 1, 1, 1, 3, 4}, s0[2] = {0, 12};
    struct {
        gtl__tensor *src;
        int32_t nd;
        const int64_t *ne;
    } cases[] = {
        {NULL, 2, ne}, {x, 2, NULL}, {x, 1, s5}, {x, 2, s_neg}, {x, 7, s7}, {x, -1, ne},
        {x, 0, NULL}, {x, 2, s0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_reshape(env->tape, cases[i].src, cases[i].nd, cases[i].ne, &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "reshape"));
    }
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- transpose ------------------------------------------------------------- */

typedef struct tr_ud {
    int32_t a0, a1;
} tr_ud;

static gtl_status tr_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    tr_ud *u = ud;
    return gtl__op_transpose(t, in[0], u->a0, u->a1, out);
}

static void test_transpose_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 12; rep++) {
        gt_input in;
        random_shape(env, &in, 1, 5, 5);
        /* every pair of axes, both orders, and an axis with itself */
        for (int32_t a0 = 0; a0 < in.nd; a0++)
            for (int32_t a1 = 0; a1 < in.nd; a1++) {
                gtl__tensor *x = gt_leaf(env, in.nd, in.ne, NULL, true), *y = NULL;
                assert_int_equal(gtl__op_transpose(env->tape, x, a0, a1, &y), GTL_STATUS_OK);
                int64_t ne[GTL__MAX_DIMS];
                memcpy(ne, in.ne, sizeof ne);
                ne[a0] = in.ne[a1];
                ne[a1] = in.ne[a0];
                assert_shape(y, in.nd, ne);
                assert_ptr_not_equal(y->data, x->data);
                float *ref = malloc((size_t)y->n * sizeof(float));
                for (int64_t f = 0; f < x->n; f++) {
                    int64_t idx[GTL__MAX_DIMS];
                    unravel(f, in.nd, in.ne, idx);
                    int64_t t = idx[a0];
                    idx[a0] = idx[a1];
                    idx[a1] = t;
                    ref[ravel(in.nd, ne, idx)] = x->data[f];
                }
                gt_assert_close(y->data, ref, y->n, 0.0, 0.0, "transpose forward");
                free(ref);
                gtl__tape_reset(env->tape);
            }
    }
}

static void test_transpose_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 14; rep++) {
        gt_input in;
        random_shape(env, &in, 1, 5, rep < 2 ? 1 : 4);
        tr_ud u = {(int32_t)gt_randint(env, 0, in.nd - 1), (int32_t)gt_randint(env, 0, in.nd - 1)};
        char name[64];
        snprintf(name, sizeof name, "transpose nd=%d (%d, %d)", (int)in.nd, (int)u.a0,
                 (int)u.a1);
        gt_gradcheck(env, name, tr_fn, &u, 1, &in, NULL);
    }
}

static void test_transpose_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t ne[3] = {2, 3, 4};
    gtl__tensor *x = gt_leaf(env, 3, ne, NULL, true), *y;
    int32_t cases[][2] = {{-1, 0}, {0, -1}, {3, 0}, {0, 3}, {7, 7}};
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_transpose(env->tape, NULL, 0, 1, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "transpose"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_transpose(env->tape, x, cases[i][0], cases[i][1], &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "transpose"));
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
static void test_shape_accumulates(void **state)
{
    gt_env *env = *state;
    gt_input c[3] = {{.nd = 2, .ne = {2, 3}}, {.nd = 2, .ne = {2, 1}}, {.nd = 2, .ne = {2, 2}}};
    cat_ud cu = {3, 1};
    acc_ud a = {cat_fn, &cu, 3};
    gt_gradcheck(env, "acc concat", acc_fn, &a, 3, c, NULL);
    gt_input x = {.nd = 3, .ne = {2, 5, 3}};
    slice_ud su = {1, 1, 3};
    a = (acc_ud){slice_fn, &su, 1};
    gt_gradcheck(env, "acc slice", acc_fn, &a, 1, &x, NULL);
    reshape_ud ru = {2, {6, 5}};
    a = (acc_ud){reshape_fn, &ru, 1};
    gt_gradcheck(env, "acc reshape", acc_fn, &a, 1, &x, NULL);
    tr_ud tu = {0, 2};
    a = (acc_ud){tr_fn, &tu, 1};
    gt_gradcheck(env, "acc transpose", acc_fn, &a, 1, &x, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concat_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_concat_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_concat_repeated_source, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_concat_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_slice_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_slice_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_slice_overlap_accumulates, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_slice_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reshape_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reshape_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reshape_own_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reshape_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_transpose_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_transpose_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_transpose_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_shape_accumulates, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_shape", tests, NULL, NULL);
}
