/* Activations (relu, gelu erf, quick_gelu, sigmoid, gtl__op_act incl. the
 * identity) and dropout: forward against the plain C formulas, gradients
 * against central differences (relu away from its kink), dropout's seeded
 * mask, kept fraction, scaling, eval-mode identity and gradient. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* Kinds tested here: the four gtl__act values through gtl__op_act, then the
 * named entry points. */
enum {
    K_ACT_NONE = 0, K_ACT_RELU, K_ACT_GELU, K_ACT_QUICK_GELU, /* gtl__op_act */
    K_RELU, K_GELU, K_QUICK_GELU, K_SIGMOID,                  /* named ops */
    K_COUNT
};

static const char *k_names[K_COUNT] = {
    "act(none)", "act(relu)", "act(gelu)", "act(quick_gelu)", "relu", "gelu", "quick_gelu",
    "sigmoid",
};

static gtl_status run_act(gtl__tape *t, int k, gtl__tensor *x, gtl__tensor **out)
{
    switch (k) {
    case K_ACT_NONE: return gtl__op_act(t, x, GTL__ACT_NONE, out);
    case K_ACT_RELU: return gtl__op_act(t, x, GTL__ACT_RELU, out);
    case K_ACT_GELU: return gtl__op_act(t, x, GTL__ACT_GELU, out);
    case K_ACT_QUICK_GELU: return gtl__op_act(t, x, GTL__ACT_QUICK_GELU, out);
    case K_RELU: return gtl__op_relu(t, x, out);
    case K_GELU: return gtl__op_gelu(t, x, out);
    case K_QUICK_GELU: return gtl__op_quick_gelu(t, x, out);
    default: return gtl__op_sigmoid(t, x, out);
    }
}

/* The plain formulas, in double. */
static double ref_act(int k, double x)
{
    switch (k) {
    case K_ACT_NONE: return x;
    case K_ACT_RELU: case K_RELU: return x > 0 ? x : 0;
    case K_ACT_GELU: case K_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case K_ACT_QUICK_GELU: case K_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    default: return 1.0 / (1.0 + exp(-x));
    }
}

static bool is_relu(int k)
{
    return k == K_ACT_RELU || k == K_RELU;
}

static void test_act_forward(void **state)
{
    gt_env *env = *state;
    for (int k = 0; k < K_COUNT; k++)
        for (int rep = 0; rep < 4; rep++) {
            int64_t ne[3] = {gt_randint(env, 1, 4), gt_randint(env, 1, 30),
                             rep == 3 ? 3001 : gt_randint(env, 1, 50)};
            gtl__tensor *x = gt_leaf(env, 3, ne, NULL, rep % 2 == 0), *y = NULL;
            gt_fill(env, x->data, x->n, -6.0f, 6.0f);
            x->data[0] = 0.0f;
            assert_int_equal(run_act(env->tape, k, x, &y), GTL_STATUS_OK);
            assert_non_null(y);
            assert_int_equal(y->nd, 3);
            assert_int_equal(y->n, x->n);
            float *ref = malloc((size_t)x->n * sizeof(float));
            for (int64_t i = 0; i < x->n; i++)
                ref[i] = (float)ref_act(k, x->data[i]);
            gt_assert_close(y->data, ref, x->n, 2e-6, 2e-6, k_names[k]);
            free(ref);
            assert_int_equal(gtl__requires_grad(y), rep % 2 == 0);
            assert_int_equal(env->tape->n_nodes, rep % 2 == 0 ? 1 : 0);
            gtl__tape_reset(env->tape);
        }
}

typedef struct act_ud {
    int k;
} act_ud;

static gtl_status act_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return run_act(t, ((act_ud *)ud)->k, in[0], out);
}

static void test_act_grad(void **state)
{
    gt_env *env = *state;
    static const float kink = 0.0f;
    for (int k = 0; k < K_COUNT; k++)
        for (int rep = 0; rep < 4; rep++) {
            gt_input in = {.nd = (int32_t)gt_randint(env, 1, 4)};
            int64_t n = 1;
            for (int32_t i = 0; i < in.nd; i++) {
                in.ne[i] = rep == 0 ? 1 : gt_randint(env, 1, 5);
                n *= in.ne[i];
            }
            float *vals = malloc((size_t)n * sizeof(float));
            if (is_relu(k)) /* eps is 1e-2: stay 5 eps away from the kink at 0 */
                gt_fill_away(env, vals, n, -3.0f, 3.0f, &kink, 1, 0.05f);
            else
                gt_fill(env, vals, n, -3.0f, 3.0f);
            in.data = vals;
            act_ud u = {k};
            char name[64];
            snprintf(name, sizeof name, "%s n=%lld", k_names[k], (long long)n);
            gt_gradcheck(env, name, act_fn, &u, 1, &in, NULL);
            free(vals);
        }
}

/* relu's gradient is exactly 1 above 0 and 0 below and at 0. */
static void test_relu_grad_exact(void **state)
{
    gt_env *env = *state;
    int64_t ne[1] = {6};
    const float xs[6] = {-2.0f, -1e-20f, 0.0f, 1e-20f, 0.5f, 3.0f};
    const float want[6] = {0, 0, 0, 1, 1, 1};
    gtl__tensor *x = gt_leaf(env, 1, ne, xs, true), *y, *s;
    assert_int_equal(gtl__op_relu(env->tape, x, &y), GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    gt_assert_close(x->grad, want, 6, 0.0, 0.0, "relu grad");
}

/* Zero-element tensors go through forward and backward. */
static void test_act_empty(void **state)
{
    gt_env *env = *state;
    for (int k = 0; k < K_COUNT; k++) {
        int64_t ne[2] = {0, 3};
        gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y, *s;
        assert_int_equal(run_act(env->tape, k, x, &y), GTL_STATUS_OK);
        assert_int_equal(y->n, 0);
        assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
        gtl__tape_reset(env->tape);
    }
    int64_t ne[1] = {0};
    gtl__tensor *x = gt_leaf(env, 1, ne, NULL, true), *y;
    env->tape->training = true;
    assert_int_equal(gtl__op_dropout(env->tape, x, 0.5f, &y), GTL_STATUS_OK);
    assert_int_equal(y->n, 0);
}

/* ---- dropout -------------------------------------------------------------- */

static void test_dropout_eval_identity(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {7, 33};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y;
    /* eval mode: identity for any p, and the RNG is not touched */
    env->tape->training = false;
    gtl__rng before = env->rng;
    assert_int_equal(gtl__op_dropout(env->tape, x, 0.7f, &y), GTL_STATUS_OK);
    assert_memory_equal(y->data, x->data, (size_t)x->n * sizeof(float));
    assert_memory_equal(&before, &env->rng, sizeof before);
    /* training with p = 0: identity too */
    env->tape->training = true;
    assert_int_equal(gtl__op_dropout(env->tape, x, 0.0f, &y), GTL_STATUS_OK);
    assert_memory_equal(y->data, x->data, (size_t)x->n * sizeof(float));
    /* and the gradient passes straight through */
    gtl__tensor *s;
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    for (int64_t i = 0; i < x->n; i++)
        assert_true(x->grad[i] == 1.0f);
}

/* Dropout output from a given tape RNG state. */
static gtl__tensor *dropout_from(gt_env *env, const gtl__rng *rng, gtl__tensor *x, float p,
                                 bool grad)
{
    env->rng = *rng;
    env->tape->training = true;
    env->tape->grad_enabled = grad;
    gtl__tensor *y = NULL;
    assert_int_equal(gtl__op_dropout(env->tape, x, p, &y), GTL_STATUS_OK);
    env->tape->grad_enabled = true;
    return y;
}

static void test_dropout_seeded(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {16, 64};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true);
    gtl__rng r0 = env->rng, r1;
    gtl__rng_seed(&r1, env->seed + 1);
    gtl__tensor *a = dropout_from(env, &r0, x, 0.5f, true);
    gtl__tensor *b = dropout_from(env, &r0, x, 0.5f, false); /* grad mode does not matter */
    gtl__tensor *c = dropout_from(env, &r1, x, 0.5f, true);
    assert_memory_equal(a->data, b->data, (size_t)x->n * sizeof(float));
    assert_memory_not_equal(a->data, c->data, (size_t)x->n * sizeof(float));
    /* consecutive calls draw fresh masks */
    gtl__tensor *d;
    assert_int_equal(gtl__op_dropout(env->tape, x, 0.5f, &d), GTL_STATUS_OK);
    assert_memory_not_equal(c->data, d->data, (size_t)x->n * sizeof(float));
}

static void test_dropout_fraction_and_scale(void **state)
{
    gt_env *env = *state;
    static const float kink = 0.0f;
    static const float ps[4] = {0.1f, 0.25f, 0.5f, 0.9f};
    int64_t ne[2] = {200, 500};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true);
    gt_fill_away(env, x->data, x->n, -2.0f, 2.0f, &kink, 1, 1e-3f); /* no zeros in x */
    for (int k = 0; k < 4; k++) {
        float p = ps[k];
        gtl__rng r0 = env->rng;
        gtl__tensor *y = dropout_from(env, &r0, x, p, true);
        int64_t kept = 0;
        for (int64_t i = 0; i < x->n; i++) {
            if (y->data[i] == 0.0f)
                continue;
            kept++;
            double want = (double)x->data[i] / (1.0 - (double)p);
            assert_true(fabs(y->data[i] - want) <= 1e-6 * fabs(want));
        }
        double frac = (double)kept / (double)x->n;
        /* 1e5 Bernoulli draws: the std of the fraction is <= 0.0016; allow 6 sigma */
        printf("# dropout p=%.2f: kept %.4f (want %.4f)\n", (double)p, frac, 1.0 - p);
        assert_true(fabs(frac - (1.0 - (double)p)) < 0.01);

        /* the gradient is the same mask: 1/(1-p) where kept, 0 where dropped */
        gtl__tensor *s;
        assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
        for (int64_t i = 0; i < x->n; i++) {
            float want = y->data[i] == 0.0f ? 0.0f : 1.0f / (1.0f - p);
            assert_true(x->grad[i] == want);
        }
        gtl__tape_reset(env->tape);
        x = gt_leaf(env, 2, ne, NULL, true);
        gt_fill_away(env, x->data, x->n, -2.0f, 2.0f, &kink, 1, 1e-3f);
    }
}

typedef struct drop_ud {
    float p;
} drop_ud;

static gtl_status drop_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_dropout(t, in[0], ((drop_ud *)ud)->p, out);
}

/* Dropout then gelu: a random op inside a chain, mask replayed per evaluation. */
static gtl_status drop_gelu_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    gtl__tensor *h;
    gtl_status st = gtl__op_dropout(t, in[0], ((drop_ud *)ud)->p, &h);
    if (st != GTL_STATUS_OK)
        return st;
    return gtl__op_gelu(t, h, out);
}

static void test_dropout_grad(void **state)
{
    gt_env *env = *state;
    static const float ps[5] = {0.0f, 0.1f, 0.3f, 0.5f, 0.8f};
    for (int k = 0; k < 5; k++)
        for (int train = 0; train < 2; train++) {
            /* training: big enough that some elements are kept and some
             * dropped (a 1-element case comes with p = 0.1 below) */
            gt_input in = {.nd = 2, .ne = {gt_randint(env, train ? 3 : 1, 6),
                                            gt_randint(env, train ? 4 : 1, 9)}};
            if (k == 1 && train == 0)
                in.ne[0] = in.ne[1] = 1;
            drop_ud u = {ps[k]};
            gt_gradcheck_opts o = {.training = train != 0};
            char name[64];
            snprintf(name, sizeof name, "dropout p=%.1f %s", (double)u.p,
                     train ? "train" : "eval");
            gt_gradcheck(env, name, drop_fn, &u, 1, &in, &o);
            snprintf(name, sizeof name, "gelu(dropout p=%.1f) %s", (double)u.p,
                     train ? "train" : "eval");
            gt_gradcheck(env, name, drop_gelu_fn, &u, 1, &in, &o);
        }
    /* one element in training mode, over several draws */
    for (int rep = 0; rep < 4; rep++) {
        gt_input in = {.nd = 1, .ne = {1}};
        drop_ud u = {0.5f};
        gt_gradcheck_opts o = {.training = true};
        gt_gradcheck(env, "dropout p=0.5 train n=1", drop_fn, &u, 1, &in, &o);
        gtl__rng_u64(&env->rng); /* the next draw */
    }
}

/* ---- bad arguments and kernels ------------------------------------------- */

static void test_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4};
    gtl__tensor *x = gt_leaf(env, 2, ne, NULL, true), *y;
    static const char *frag[K_COUNT] = {"identity", "relu", "gelu", "quick_gelu",
                                        "relu", "gelu", "quick_gelu", "sigmoid"};
    for (int k = 0; k < K_COUNT; k++) {
        y = (gtl__tensor *)1;
        assert_int_equal(run_act(env->tape, k, NULL, &y), GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), frag[k]));
    }
    static const int bad_kinds[4] = {-1, 4, 100, 1 << 20};
    for (int i = 0; i < 4; i++) {
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_act(env->tape, x, (gtl__act)bad_kinds[i], &y),
                         GTL_STATUS_INVALID_ARG);
        assert_null(y);
        assert_non_null(strstr(gtl_last_error(), "activation"));
    }
    const float bad_p[4] = {-0.1f, 1.0f, 1.5f, NAN};
    for (int train = 0; train < 2; train++) {
        env->tape->training = train != 0;
        for (int i = 0; i < 4; i++) {
            y = (gtl__tensor *)1;
            assert_int_equal(gtl__op_dropout(env->tape, x, bad_p[i], &y),
                             GTL_STATUS_INVALID_ARG);
            assert_null(y);
            assert_non_null(strstr(gtl_last_error(), "dropout"));
        }
        y = (gtl__tensor *)1;
        assert_int_equal(gtl__op_dropout(env->tape, NULL, 0.5f, &y), GTL_STATUS_INVALID_ARG);
        assert_null(y);
    }
    /* training without an RNG */
    env->tape->training = true;
    gtl__rng *rng = env->tape->rng;
    env->tape->rng = NULL;
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_dropout(env->tape, x, 0.5f, &y), GTL_STATUS_BAD_STATE);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "dropout"));
    env->tape->rng = rng;
    assert_int_equal(env->tape->n_nodes, 0);
}

static void test_act_kernels(void **state)
{
    gt_env *env = *state;
    /* fc1-sized (197, 3072) activations and odd sizes, forward and backward */
    static const int64_t sizes[3][2] = {{197, 3072}, {5, 7}, {1, 4097}};
    for (int s = 0; s < 3; s++)
        for (int k = K_RELU; k < K_COUNT; k++) {
            gtl__tensor *x = gt_leaf(env, 2, sizes[s], NULL, true), *y, *sum;
            assert_int_equal(run_act(env->tape, k, x, &y), GTL_STATUS_OK);
            assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &sum), GTL_STATUS_OK);
            assert_int_equal(gtl__tape_backward(env->tape, sum), GTL_STATUS_OK);
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
static void test_act_accumulates(void **state)
{
    gt_env *env = *state;
    static const float kink = 0.0f;
    float vals[12];
    gt_fill_away(env, vals, 12, -3.0f, 3.0f, &kink, 1, 0.05f);
    gt_input x = {.nd = 2, .ne = {3, 4}, .data = vals};
    for (int k = 0; k < K_COUNT; k++) {
        act_ud u = {k};
        acc_ud a = {act_fn, &u, 1};
        char name[64];
        snprintf(name, sizeof name, "acc %s", k_names[k]);
        gt_gradcheck(env, name, acc_fn, &a, 1, &x, NULL);
    }
    for (int train = 0; train < 2; train++) {
        drop_ud u = {0.4f};
        acc_ud a = {drop_fn, &u, 1};
        gt_gradcheck_opts o = {.training = train != 0};
        gt_gradcheck(env, train ? "acc dropout train" : "acc dropout eval", acc_fn, &a, 1, &x,
                     &o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_act_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_act_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_relu_grad_exact, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_act_empty, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_dropout_eval_identity, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_dropout_seeded, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_dropout_fraction_and_scale, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_dropout_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_act_kernels, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_act_accumulates, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_act", tests, NULL, NULL);
}
