/* reparam, kl_normal, mse: forward against plain references in double,
 * gradients by central differences on random shapes, the saved noise,
 * precision of the KL near logvar = 0, bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* Random shape with nd in 1..3, each dim in 1..max_dim; returns the element count. */
static int64_t random_shape(gt_env *env, gt_input *in, int64_t max_dim)
{
    in->nd = (int32_t)gt_randint(env, 1, 3);
    int64_t n = 1;
    for (int32_t i = 0; i < in->nd; i++) {
        in->ne[i] = gt_randint(env, 1, max_dim);
        n *= in->ne[i];
    }
    return n;
}

/* ---- reparam ---- */

static void test_reparam_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        gt_input sh = {0};
        int64_t n = random_shape(env, &sh, 7);
        gtl__tensor *mu = gt_leaf(env, sh.nd, sh.ne, NULL, rep % 2 == 0);
        gtl__tensor *lv = gt_leaf(env, sh.nd, sh.ne, NULL, true);
        float *eps = malloc((size_t)n * sizeof(float));
        float *ref = malloc((size_t)n * sizeof(float));
        gtl__tensor *z;
        /* Given noise. */
        gt_fill(env, eps, n, -2.0f, 2.0f);
        assert_int_equal(gtl__op_reparam(env->tape, mu, lv, eps, &z), GTL_STATUS_OK);
        assert_true(gtl__same_shape(z, mu));
        for (int64_t i = 0; i < n; i++)
            ref[i] = (float)(mu->data[i] + exp(0.5 * lv->data[i]) * eps[i]);
        gt_assert_close(z->data, ref, n, 1e-6, 1e-5, "reparam forward (eps_in)");
        /* Drawn noise: the same stream as gtl__rng_normal on a copy of the RNG. */
        gtl__rng copy = env->rng;
        for (int64_t i = 0; i < n; i++)
            eps[i] = gtl__rng_normal(&copy);
        assert_int_equal(gtl__op_reparam(env->tape, mu, lv, NULL, &z), GTL_STATUS_OK);
        for (int64_t i = 0; i < n; i++)
            ref[i] = (float)(mu->data[i] + exp(0.5 * lv->data[i]) * eps[i]);
        gt_assert_close(z->data, ref, n, 1e-6, 1e-5, "reparam forward (rng)");
        assert_memory_equal(&copy.s, &env->rng.s, sizeof copy.s);
        free(eps);
        free(ref);
        gtl__tape_reset(env->tape);
    }
}

static void test_reparam_statistics(void **state)
{
    gt_env *env = *state;
    /* mu = 1, logvar = log 4: z ~ N(1, 4). */
    int64_t n = 20000;
    int64_t ne[1] = {n};
    gtl__tensor *mu = gt_leaf(env, 1, ne, NULL, false);
    gtl__tensor *lv = gt_leaf(env, 1, ne, NULL, false);
    for (int64_t i = 0; i < n; i++) {
        mu->data[i] = 1.0f;
        lv->data[i] = logf(4.0f);
    }
    gtl__tensor *z;
    assert_int_equal(gtl__op_reparam(env->tape, mu, lv, NULL, &z), GTL_STATUS_OK);
    double m = 0.0, v = 0.0;
    for (int64_t i = 0; i < n; i++)
        m += z->data[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++)
        v += (z->data[i] - m) * (z->data[i] - m);
    v /= (double)(n - 1);
    printf("# reparam N(1, 4): mean %.4f var %.4f\n", m, v);
    /* 5 standard errors: se(mean) = 2/sqrt(n) = 0.014, se(var) ~ 4 sqrt(2/n) = 0.04. */
    assert_true(fabs(m - 1.0) < 0.07);
    assert_true(fabs(v - 4.0) < 0.2);
}

static gtl_status reparam_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_reparam(t, in[0], in[1], ud, out);
}

static void test_reparam_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        gt_input in[2] = {{0}, {.lo = -2.0f, .hi = 2.0f}};
        int64_t n = 1;
        if (rep == 0) {
            in[0].nd = 1;
            in[0].ne[0] = 1;
        } else {
            n = random_shape(env, &in[0], 6);
        }
        in[1].nd = in[0].nd;
        memcpy(in[1].ne, in[0].ne, sizeof in[0].ne);
        in[rep % 3 == 2].no_grad = true;
        float *eps = NULL;
        if (rep % 2 == 1) {
            eps = malloc((size_t)n * sizeof(float));
            gt_fill(env, eps, n, -2.0f, 2.0f);
        }
        char name[64];
        snprintf(name, sizeof name, "reparam %s n=%lld", eps ? "eps_in" : "rng", (long long)n);
        /* The checker restores the tape RNG before every evaluation. */
        gt_gradcheck(env, name, reparam_fn, eps, 2, in, NULL);
        free(eps);
    }
}

/* The noise is copied at forward time: changing the caller's buffer before
 * backward does not change the gradient. */
static void test_reparam_saves_eps(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4};
    gtl__tensor *mu = gt_leaf(env, 2, ne, NULL, true);
    gtl__tensor *lv = gt_leaf(env, 2, ne, NULL, true);
    float eps[12], keep[12];
    gt_fill(env, eps, 12, -2.0f, 2.0f);
    memcpy(keep, eps, sizeof eps);
    gtl__tensor *z;
    assert_int_equal(gtl__op_reparam(env->tape, mu, lv, eps, &z), GTL_STATUS_OK);
    for (int i = 0; i < 12; i++)
        eps[i] = 1000.0f;
    float seed[12];
    gt_fill(env, seed, 12, -1.0f, 1.0f);
    assert_int_equal(gtl__tape_backward_seed(env->tape, z, seed), GTL_STATUS_OK);
    float want_mu[12], want_lv[12];
    for (int i = 0; i < 12; i++) {
        want_mu[i] = seed[i];
        want_lv[i] = (float)(0.5 * seed[i] * keep[i] * exp(0.5 * lv->data[i]));
    }
    gt_assert_close(mu->grad, want_mu, 12, 1e-6, 1e-5, "reparam dmu");
    gt_assert_close(lv->grad, want_lv, 12, 1e-6, 1e-5, "reparam dlogvar");
}

static void test_reparam_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t a[2] = {2, 3}, b[2] = {3, 2};
    gtl__tensor *mu = gt_leaf(env, 2, a, NULL, true);
    gtl__tensor *lv = gt_leaf(env, 2, b, NULL, true);
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_reparam(env->tape, mu, lv, NULL, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "reparam"));
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_reparam(env->tape, NULL, lv, NULL, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_int_equal(gtl__op_reparam(env->tape, mu, NULL, NULL, &out), GTL_STATUS_INVALID_ARG);
    /* No noise and no RNG. */
    gtl__rng *rng = env->tape->rng;
    env->tape->rng = NULL;
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_reparam(env->tape, mu, mu, NULL, &out), GTL_STATUS_BAD_STATE);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "reparam"));
    float eps[6] = {0};
    assert_int_equal(gtl__op_reparam(env->tape, mu, mu, eps, &out), GTL_STATUS_OK);
    env->tape->rng = rng;
    assert_int_equal(env->tape->n_nodes, 1);
}

/* ---- kl_normal ---- */

static double ref_kl(const float *mu, const float *lv, int64_t n, int64_t d)
{
    long double s = 0.0L;
    for (int64_t i = 0; i < n; i++)
        s += -0.5L * (1.0L + lv[i] - (long double)mu[i] * mu[i] - expl(lv[i]));
    return (double)(s / (long double)(n / d));
}

static void test_kl_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        gt_input sh = {0};
        int64_t n = random_shape(env, &sh, 9);
        gtl__tensor *mu = gt_leaf(env, sh.nd, sh.ne, NULL, true);
        gtl__tensor *lv = gt_leaf(env, sh.nd, sh.ne, NULL, rep % 2 == 0);
        gt_fill(env, lv->data, n, -3.0f, 3.0f);
        gtl__tensor *kl;
        assert_int_equal(gtl__op_kl_normal(env->tape, mu, lv, &kl), GTL_STATUS_OK);
        assert_int_equal(kl->nd, 0);
        assert_int_equal(kl->n, 1);
        float want = (float)ref_kl(mu->data, lv->data, n, sh.ne[sh.nd - 1]);
        gt_assert_close(kl->data, &want, 1, 1e-6, 1e-5, "kl forward");
        gtl__tape_reset(env->tape);
    }
    /* N(0, 1) has KL 0. */
    int64_t ne[2] = {4, 5};
    gtl__tensor *z = gt_leaf(env, 2, ne, NULL, false);
    memset(z->data, 0, 20 * sizeof(float));
    gtl__tensor *kl;
    assert_int_equal(gtl__op_kl_normal(env->tape, z, z, &kl), GTL_STATUS_OK);
    assert_true(kl->data[0] == 0.0f);
}

/* Near logvar = 0 the per-element KL is about lv^2 / 4: 1 + lv - e^lv in
 * float cancels to noise (a float implementation fails this); the op must keep
 * it to relative precision. */
static void test_kl_small_logvar_precision(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {2, 8};
    gtl__tensor *mu = gt_leaf(env, 2, ne, NULL, false);
    gtl__tensor *lv = gt_leaf(env, 2, ne, NULL, false);
    memset(mu->data, 0, 16 * sizeof(float));
    for (int i = 0; i < 16; i++)
        lv->data[i] = (i % 2 ? 1.0f : -1.0f) * 1e-4f * (float)(i + 1);
    gtl__tensor *kl;
    assert_int_equal(gtl__op_kl_normal(env->tape, mu, lv, &kl), GTL_STATUS_OK);
    float want = (float)ref_kl(mu->data, lv->data, 16, 8);
    printf("# kl near logvar 0: got %.9g want %.9g\n", (double)kl->data[0], (double)want);
    gt_assert_close(kl->data, &want, 1, 0.0, 1e-5, "kl small logvar");
}

static gtl_status kl_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_kl_normal(t, in[0], in[1], out);
}

static void test_kl_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        gt_input in[2] = {{0}, {.lo = -2.0f, .hi = 2.0f}};
        if (rep == 0) {
            in[0].nd = 1;
            in[0].ne[0] = 1;
        } else {
            random_shape(env, &in[0], 6);
        }
        in[1].nd = in[0].nd;
        memcpy(in[1].ne, in[0].ne, sizeof in[0].ne);
        in[rep % 3 == 2].no_grad = true;
        gt_gradcheck(env, "kl_normal", kl_fn, NULL, 2, in, NULL);
    }
}

static void test_kl_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t a[2] = {2, 3}, b[2] = {2, 4}, e[2] = {0, 3};
    gtl__tensor *x = gt_leaf(env, 2, a, NULL, true);
    gtl__tensor *y = gt_leaf(env, 2, b, NULL, true);
    gtl__tensor *z = gt_leaf(env, 2, e, NULL, true);
    gtl__tensor *s = gt_leaf(env, 0, NULL, NULL, true);
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_kl_normal(env->tape, x, y, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "kl_normal"));
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_kl_normal(env->tape, z, z, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_int_equal(gtl__op_kl_normal(env->tape, s, s, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_kl_normal(env->tape, NULL, x, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- mse ---- */

static void test_mse_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        gt_input sh = {0};
        int64_t n = random_shape(env, &sh, 9);
        gtl__tensor *a = gt_leaf(env, sh.nd, sh.ne, NULL, true);
        gtl__tensor *b = gt_leaf(env, sh.nd, sh.ne, NULL, false);
        gtl__tensor *l;
        assert_int_equal(gtl__op_mse(env->tape, a, b, &l), GTL_STATUS_OK);
        assert_int_equal(l->nd, 0);
        double s = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += ((double)a->data[i] - b->data[i]) * ((double)a->data[i] - b->data[i]);
        float want = (float)(s / (double)n);
        gt_assert_close(l->data, &want, 1, 1e-7, 1e-6, "mse forward");
        gtl__tape_reset(env->tape);
    }
}

static gtl_status mse_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_mse(t, in[0], in[ud != NULL ? 0 : 1], out);
}

static void test_mse_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        gt_input in[2] = {{0}};
        if (rep == 0) {
            in[0].nd = 1;
            in[0].ne[0] = 1;
        } else {
            random_shape(env, &in[0], 6);
        }
        in[1] = in[0];
        in[rep % 3 == 2].no_grad = true;
        gt_gradcheck(env, "mse", mse_fn, NULL, 2, in, NULL);
    }
    /* The same tensor twice: the loss is identically 0 and so is the gradient
     * (the two contributions cancel in one buffer). */
    gt_input same = {.nd = 2, .ne = {3, 4}};
    gt_gradcheck(env, "mse(a, a)", mse_fn, (void *)1, 1, &same, NULL);
}

static void test_mse_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t a[2] = {2, 3}, b[1] = {6}, e[1] = {0};
    gtl__tensor *x = gt_leaf(env, 2, a, NULL, true);
    gtl__tensor *y = gt_leaf(env, 1, b, NULL, true);
    gtl__tensor *z = gt_leaf(env, 1, e, NULL, true);
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_mse(env->tape, x, y, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "mse"));
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_mse(env->tape, z, z, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_int_equal(gtl__op_mse(env->tape, x, NULL, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
    /* Nothing requires grad: no node. */
    gtl__tensor *c = gt_leaf(env, 2, a, NULL, false);
    assert_int_equal(gtl__op_mse(env->tape, c, c, &out), GTL_STATUS_OK);
    assert_int_equal(gtl__op_kl_normal(env->tape, c, c, &out), GTL_STATUS_OK);
    assert_int_equal(gtl__op_reparam(env->tape, c, c, NULL, &out), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 0);
    printf("# dist ops: %lld oneDNN primitives (plain loops)\n",
           (long long)gtl__ctx_num_prims(env->ctx));
    assert_int_equal(gtl__ctx_num_prims(env->ctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reparam_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reparam_statistics, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reparam_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reparam_saves_eps, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_reparam_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_kl_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_kl_small_logvar_precision, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_kl_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_kl_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_mse_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_mse_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_mse_bad_args, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_dist", tests, NULL, NULL);
}
