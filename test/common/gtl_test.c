/* Shared test helpers; see gtl_test.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gtl_test.h"

uint64_t gt_base_seed(void)
{
    static uint64_t seed;
    static int done;
    if (!done) {
        const char *e = getenv("GTL_TEST_SEED");
        if (e != NULL && strcmp(e, "time") == 0)
            seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
        else if (e != NULL && *e)
            seed = strtoull(e, NULL, 0);
        else
            seed = 20261129;
        done = 1;
        printf("# seed %llu (replay with GTL_TEST_SEED=%llu)\n", (unsigned long long)seed,
               (unsigned long long)seed);
    }
    return seed;
}

int gt_setup(void **state)
{
    static uint64_t n_fixture;
    gt_env *env = calloc(1, sizeof *env);
    if (env == NULL)
        return -1;
    env->seed = gt_base_seed() + 7919 * n_fixture++;
    gtl__rng_seed(&env->rng, env->seed);
    gtl__rng_seed(&env->data, env->seed ^ 0x5eed);
    if (gtl__ctx_create(&env->ctx) != GTL_STATUS_OK) {
        fprintf(stderr, "ctx: %s\n", gtl_last_error());
        free(env);
        return -1;
    }
    if (gtl__tape_create(env->ctx, &env->rng, &env->tape) != GTL_STATUS_OK) {
        gtl__ctx_destroy(env->ctx);
        free(env);
        return -1;
    }
    *state = env;
    return 0;
}

int gt_teardown(void **state)
{
    gt_env *env = *state;
    if (env == NULL)
        return 0;
    if (gtl__ctx_num_hot_ref(env->ctx) != 0) {
        for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
            const char *op, *impl;
            bool hot;
            gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, NULL);
            if (hot && strncmp(impl, "ref", 3) == 0)
                fprintf(stderr, "hot primitive %s fell back to %s\n", op, impl);
        }
        gtl__tape_destroy(env->tape);
        gtl__ctx_destroy(env->ctx);
        free(env);
        return -1; /* a hot ref: kernel fails the test */
    }
    gtl__tape_destroy(env->tape);
    gtl__ctx_destroy(env->ctx);
    free(env);
    return 0;
}

int64_t gt_randint(gt_env *env, int64_t lo, int64_t hi)
{
    return lo + (int64_t)gtl__rng_below(&env->data, (uint64_t)(hi - lo + 1));
}

void gt_fill(gt_env *env, float *dst, int64_t n, float lo, float hi)
{
    gtl__rng_fill_uniform(&env->data, dst, n, lo, hi);
}

void gt_fill_away(gt_env *env, float *dst, int64_t n, float lo, float hi, const float *kinks,
                  int n_kinks, float gap)
{
    for (int64_t i = 0; i < n; i++) {
        for (int tries = 0;; tries++) {
            float v = lo + (hi - lo) * gtl__rng_uniform(&env->data);
            int ok = 1;
            for (int k = 0; k < n_kinks; k++)
                if (fabsf(v - kinks[k]) < gap)
                    ok = 0;
            if (ok || tries > 1000) {
                dst[i] = v;
                break;
            }
        }
    }
}

gtl__tensor *gt_leaf(gt_env *env, int32_t nd, const int64_t *ne, const float *data,
                     bool requires_grad)
{
    gtl__tensor *t = NULL;
    gtl_status st = gtl__tape_leaf(env->tape, nd, ne, data, requires_grad, &t);
    assert_int_equal(st, GTL_STATUS_OK);
    if (data == NULL)
        gt_fill(env, t->data, t->n, -1.0f, 1.0f);
    return t;
}

void gt_assert_close(const float *a, const float *b, int64_t n, double atol, double rtol,
                     const char *what)
{
    double worst = 0.0;
    int64_t wi = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double lim = atol + rtol * fabs((double)b[i]);
        if (!(d <= lim) && (wi < 0 || d > worst)) {
            worst = isnan(d) ? INFINITY : d;
            wi = i;
        }
    }
    if (wi >= 0) {
        fprintf(stderr, "%s: element %lld: got %.8g want %.8g (|diff| %.3g)\n", what,
                (long long)wi, (double)a[wi], (double)b[wi], worst);
        fail_msg("%s: values differ", what);
    }
}

/* Runs fn on leaves made from vals; returns sum(out * r) in double; fills r on first use. */
static double eval_loss(gt_env *env, gt_fn fn, void *ud, int n_in, const gt_input *in,
                        float **vals, bool grad, const gtl__rng *rng0, float **r,
                        int64_t *n_out, gtl__tensor ***out_leaves, gtl__tensor **out_t)
{
    static gtl__tensor *leaves[16];
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = grad;
    env->rng = *rng0;
    for (int i = 0; i < n_in; i++) {
        gtl_status st = gtl__tape_leaf(env->tape, in[i].nd, in[i].ne, vals[i],
                                       grad && !in[i].no_grad, &leaves[i]);
        assert_int_equal(st, GTL_STATUS_OK);
    }
    gtl__tensor *out = NULL;
    gtl_status st = fn(env->tape, leaves, ud, &out);
    if (st != GTL_STATUS_OK)
        fail_msg("op failed: %s: %s", gtl_strerror(st), gtl_last_error());
    assert_non_null(out);
    if (*r == NULL) {
        *r = malloc((size_t)out->n * sizeof(float));
        gt_fill(env, *r, out->n, -1.0f, 1.0f);
        *n_out = out->n;
    }
    assert_int_equal(out->n, *n_out);
    double L = 0.0;
    for (int64_t i = 0; i < out->n; i++)
        L += (double)out->data[i] * (double)(*r)[i];
    if (out_leaves)
        *out_leaves = leaves;
    if (out_t)
        *out_t = out;
    return L;
}

double gt_gradcheck(gt_env *env, const char *name, gt_fn fn, void *ud, int n_in,
                    const gt_input *in, const gt_gradcheck_opts *opts)
{
    gt_gradcheck_opts o = {1e-2, 2e-2, 1e-1, 48, false};
    if (opts != NULL) {
        if (opts->eps > 0)
            o.eps = opts->eps;
        if (opts->tol > 0)
            o.tol = opts->tol;
        if (opts->floor > 0)
            o.floor = opts->floor;
        if (opts->max_checks > 0)
            o.max_checks = opts->max_checks;
        o.training = opts->training;
    }
    assert_true(n_in <= 16);
    bool training0 = env->tape->training;
    env->tape->training = o.training;
    float *vals[16];
    for (int i = 0; i < n_in; i++) {
        int64_t n = 1;
        for (int32_t d = 0; d < in[i].nd; d++)
            n *= in[i].ne[d];
        vals[i] = malloc((size_t)(n ? n : 1) * sizeof(float));
        if (in[i].data != NULL)
            memcpy(vals[i], in[i].data, (size_t)n * sizeof(float));
        else
            gt_fill(env, vals[i], n, in[i].lo != in[i].hi ? in[i].lo : -1.0f,
                    in[i].lo != in[i].hi ? in[i].hi : 1.0f);
    }
    gtl__rng rng0 = env->rng;
    float *r = NULL;
    int64_t n_out = 0;
    gtl__tensor **leaves = NULL, *out = NULL;
    eval_loss(env, fn, ud, n_in, in, vals, true, &rng0, &r, &n_out, &leaves, &out);
    if (gtl__requires_grad(out)) {
        gtl_status st = gtl__tape_backward_seed(env->tape, out, r);
        if (st != GTL_STATUS_OK)
            fail_msg("%s backward: %s: %s", name, gtl_strerror(st), gtl_last_error());
    }
    /* Copy analytic gradients before the tape is reused. */
    float *ana[16] = {0};
    int64_t nel[16];
    for (int i = 0; i < n_in; i++) {
        nel[i] = leaves[i]->n;
        ana[i] = calloc((size_t)(nel[i] ? nel[i] : 1), sizeof(float));
        if (!in[i].no_grad && leaves[i]->grad != NULL)
            memcpy(ana[i], leaves[i]->grad, (size_t)nel[i] * sizeof(float));
    }
    double worst = 0.0;
    int64_t n_checked = 0;
    for (int i = 0; i < n_in; i++) {
        if (in[i].no_grad)
            continue;
        int64_t n_c = nel[i] < o.max_checks ? nel[i] : o.max_checks;
        for (int64_t c = 0; c < n_c; c++) {
            int64_t j = nel[i] <= o.max_checks ? c : gt_randint(env, 0, nel[i] - 1);
            float x0 = vals[i][j];
            vals[i][j] = (float)(x0 + o.eps);
            double lp = eval_loss(env, fn, ud, n_in, in, vals, false, &rng0, &r, &n_out, NULL, NULL);
            vals[i][j] = (float)(x0 - o.eps);
            double lm = eval_loss(env, fn, ud, n_in, in, vals, false, &rng0, &r, &n_out, NULL, NULL);
            vals[i][j] = x0;
            double num = (lp - lm) / (2.0 * o.eps);
            double a = ana[i][j];
            double err = fabs(num - a) / (o.floor + fmax(fabs(num), fabs(a)));
            if (!(err <= o.tol))
                fprintf(stderr, "%s: input %d element %lld: analytic %.6g numeric %.6g (err %.3g)\n",
                        name, i, (long long)j, a, num, err);
            if (!(err <= worst))
                worst = isnan(err) ? INFINITY : (err > worst ? err : worst);
            n_checked++;
        }
    }
    printf("# gradcheck %-28s seed %llu: %lld coords, max rel err %.3g\n", name,
           (unsigned long long)env->seed, (long long)n_checked, worst);
    for (int i = 0; i < n_in; i++) {
        free(vals[i]);
        free(ana[i]);
    }
    free(r);
    env->tape->training = training0;
    env->tape->grad_enabled = true;
    gtl__tape_reset(env->tape);
    if (!(worst <= o.tol))
        fail_msg("%s: gradient check failed (max rel err %.3g > %.3g, seed %llu)", name, worst,
                 o.tol, (unsigned long long)env->seed);
    return worst;
}
