/* attention: forward against a naive multi-head attention in double, gradients
 * against central differences (incl. H = 1 and T = 1), bad arguments, and the
 * oneDNN kernels picked at ViT-B/16 shapes (printed; ref: fails). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gtl_test.h"

/* qkv (B, T, 3C) -> out (B, T, C), heads in column blocks of Dh = C / H. */
static void naive_attention(const float *qkv, float *out, int64_t b, int64_t t, int64_t c,
                            int64_t h)
{
    int64_t dh = c / h, c3 = 3 * c;
    double *p = malloc((size_t)t * sizeof(double));
    for (int64_t z = 0; z < b; z++)
        for (int64_t hh = 0; hh < h; hh++)
            for (int64_t i = 0; i < t; i++) {
                const float *q = qkv + (z * t + i) * c3 + hh * dh;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < t; j++) {
                    const float *k = qkv + (z * t + j) * c3 + c + hh * dh;
                    double s = 0.0;
                    for (int64_t e = 0; e < dh; e++)
                        s += (double)q[e] * k[e];
                    p[j] = s / sqrt((double)dh);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int64_t j = 0; j < t; j++) {
                    p[j] = exp(p[j] - mx);
                    sum += p[j];
                }
                for (int64_t e = 0; e < dh; e++) {
                    double o = 0.0;
                    for (int64_t j = 0; j < t; j++)
                        o += p[j] / sum * qkv[(z * t + j) * c3 + 2 * c + hh * dh + e];
                    out[(z * t + i) * c + hh * dh + e] = (float)o;
                }
            }
    free(p);
}

static void check_forward(gt_env *env, int64_t b, int64_t t, int64_t c, int64_t h, float range)
{
    int64_t ne[3] = {b, t, 3 * c};
    gtl__tensor *qkv = gt_leaf(env, 3, ne, NULL, false);
    gt_fill(env, qkv->data, qkv->n, -range, range);
    gtl__tensor *y;
    assert_int_equal(gtl__op_attention(env->tape, qkv, h, &y), GTL_STATUS_OK);
    assert_int_equal(y->nd, 3);
    assert_int_equal(y->ne[0], b);
    assert_int_equal(y->ne[1], t);
    assert_int_equal(y->ne[2], c);
    float *ref = malloc((size_t)(b * t * c) * sizeof(float));
    naive_attention(qkv->data, ref, b, t, c, h);
    char what[96];
    snprintf(what, sizeof what, "attention forward B=%lld T=%lld C=%lld H=%lld", (long long)b,
             (long long)t, (long long)c, (long long)h);
    gt_assert_close(y->data, ref, b * t * c, 1e-5, 1e-4, what);
    free(ref);
    gtl__tape_reset(env->tape);
}

static void test_attention_forward(void **state)
{
    gt_env *env = *state;
    check_forward(env, 1, 1, 4, 1, 1.0f);  /* T = 1: P = 1, out = V */
    check_forward(env, 2, 5, 6, 1, 1.0f);  /* one head */
    check_forward(env, 1, 7, 8, 8, 1.0f);  /* Dh = 1 */
    check_forward(env, 2, 3, 12, 3, 3.0f); /* peaked softmax */
    for (int rep = 0; rep < 6; rep++) {
        int64_t h = gt_randint(env, 1, 4), dh = gt_randint(env, 1, 9);
        check_forward(env, gt_randint(env, 1, 3), gt_randint(env, 1, 20), h * dh, h, 1.0f);
    }
    /* A ViT-ish shape (head dim 64), smaller T to keep the naive loop fast. */
    check_forward(env, 1, 50, 256, 4, 1.0f);
}

static void test_attention_no_grad_mode(void **state)
{
    gt_env *env = *state;
    int64_t ne[3] = {2, 4, 12};
    gtl__tensor *qkv = gt_leaf(env, 3, ne, NULL, true);
    env->tape->grad_enabled = false;
    gtl__tensor *y;
    assert_int_equal(gtl__op_attention(env->tape, qkv, 2, &y), GTL_STATUS_OK);
    assert_false(gtl__requires_grad(y));
    assert_int_equal(env->tape->n_nodes, 0);
    env->tape->grad_enabled = true;
    assert_int_equal(gtl__op_attention(env->tape, qkv, 2, &y), GTL_STATUS_OK);
    assert_true(gtl__requires_grad(y));
    assert_int_equal(env->tape->n_nodes, 1);
}

static gtl_status attn_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_attention(t, in[0], *(int64_t *)ud, out);
}

static void gradcheck_shape(gt_env *env, int64_t b, int64_t t, int64_t c, int64_t h)
{
    gt_input in = {.nd = 3, .ne = {b, t, 3 * c}, .lo = -1.5f, .hi = 1.5f};
    gt_gradcheck_opts o = {.max_checks = 64};
    char name[64];
    snprintf(name, sizeof name, "attention B%lld T%lld C%lld H%lld", (long long)b, (long long)t,
             (long long)c, (long long)h);
    gt_gradcheck(env, name, attn_fn, &h, 1, &in, &o);
}

static void test_attention_grad(void **state)
{
    gt_env *env = *state;
    gradcheck_shape(env, 1, 1, 3, 1); /* T = 1: only dV is non-zero */
    gradcheck_shape(env, 2, 4, 3, 1); /* H = 1 */
    gradcheck_shape(env, 1, 5, 4, 4); /* Dh = 1 */
    gradcheck_shape(env, 2, 3, 6, 2);
    for (int rep = 0; rep < 5; rep++) {
        int64_t h = gt_randint(env, 1, 3), dh = gt_randint(env, 1, 4);
        gradcheck_shape(env, gt_randint(env, 1, 3), gt_randint(env, 1, 7), h * dh, h);
    }
}

/* The gradient accumulates: two uses of qkv give twice one use. */
static void test_attention_grad_accumulates(void **state)
{
    gt_env *env = *state;
    int64_t ne[3] = {2, 5, 18};
    gtl__tensor *qkv = gt_leaf(env, 3, ne, NULL, true);
    gtl__tensor *y1, *y2;
    assert_int_equal(gtl__op_attention(env->tape, qkv, 3, &y1), GTL_STATUS_OK);
    float *r = malloc((size_t)y1->n * sizeof(float));
    gt_fill(env, r, y1->n, -1.0f, 1.0f);
    assert_int_equal(gtl__tape_backward_seed(env->tape, y1, r), GTL_STATUS_OK);
    float *g1 = malloc((size_t)qkv->n * sizeof(float));
    memcpy(g1, qkv->grad, (size_t)qkv->n * sizeof(float));
    float *x = malloc((size_t)qkv->n * sizeof(float));
    memcpy(x, qkv->data, (size_t)qkv->n * sizeof(float));

    gtl__tape_reset(env->tape);
    qkv = gt_leaf(env, 3, ne, x, true);
    assert_int_equal(gtl__op_attention(env->tape, qkv, 3, &y1), GTL_STATUS_OK);
    assert_int_equal(gtl__op_attention(env->tape, qkv, 3, &y2), GTL_STATUS_OK);
    /* Seed y1's gradient by hand, then run backward from y2 with the same seed:
     * both nodes add into qkv->grad. */
    float *g;
    assert_int_equal(gtl__tape_grad(env->tape, y1, &g), GTL_STATUS_OK);
    memcpy(g, r, (size_t)y1->n * sizeof(float));
    assert_int_equal(gtl__tape_backward_seed(env->tape, y2, r), GTL_STATUS_OK);
    for (int64_t i = 0; i < qkv->n; i++)
        g1[i] *= 2.0f;
    gt_assert_close(qkv->grad, g1, qkv->n, 1e-5, 1e-4, "attention grad accumulation");
    free(r);
    free(g1);
    free(x);
}

static void test_attention_bad_args(void **state)
{
    gt_env *env = *state;
    gtl__tensor *y = (gtl__tensor *)1;
    int64_t ok_ne[3] = {2, 4, 12}, bad_last[3] = {2, 4, 13}, two_d[2] = {4, 12},
            empty[3] = {2, 0, 12};
    gtl__tensor *ok = gt_leaf(env, 3, ok_ne, NULL, true);
    gtl__tensor *t_last = gt_leaf(env, 3, bad_last, NULL, true);
    gtl__tensor *t_2d = gt_leaf(env, 2, two_d, NULL, true);
    gtl__tensor *t_empty = gt_leaf(env, 3, empty, NULL, true);

    assert_int_equal(gtl__op_attention(env->tape, NULL, 1, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "attention"));
    y = (gtl__tensor *)1;
    assert_int_equal(gtl__op_attention(env->tape, t_last, 1, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "attention"));
    assert_int_equal(gtl__op_attention(env->tape, t_2d, 1, &y), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_attention(env->tape, t_empty, 1, &y), GTL_STATUS_INVALID_ARG);
    /* C = 4: 3 heads do not divide it; 0 and negative heads are invalid. */
    assert_int_equal(gtl__op_attention(env->tape, ok, 3, &y), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "heads"));
    assert_int_equal(gtl__op_attention(env->tape, ok, 0, &y), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_attention(env->tape, ok, -2, &y), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_attention(env->tape, ok, 8, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_int_equal(env->tape->n_nodes, 0);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ViT-B/16: T = 197, C = 768, H = 12. Forward and backward at B = 1 and 8;
 * every primitive must be a JIT kernel. Prints the kernels and timings. */
static void test_attention_vit_kernels(void **state)
{
    gt_env *env = *state;
    static const int64_t batches[2] = {1, 8};
    for (int i = 0; i < 2; i++) {
        int64_t b = batches[i], t = 197, c = 768, h = 12;
        int64_t ne[3] = {b, t, 3 * c};
        double best_f = 1e30, best_b = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            gtl__tape_reset(env->tape);
            gtl__tensor *qkv = gt_leaf(env, 3, ne, NULL, true);
            gtl__tensor *y;
            double t0 = now_ms();
            assert_int_equal(gtl__op_attention(env->tape, qkv, h, &y), GTL_STATUS_OK);
            double t1 = now_ms();
            float *seed = malloc((size_t)y->n * sizeof(float));
            gt_fill(env, seed, y->n, -1.0f, 1.0f);
            double t2 = now_ms();
            assert_int_equal(gtl__tape_backward_seed(env->tape, y, seed), GTL_STATUS_OK);
            double t3 = now_ms();
            free(seed);
            best_f = fmin(best_f, t1 - t0);
            best_b = fmin(best_b, t3 - t2);
        }
        /* 2 matmuls forward, 4 backward, 2*T*T*Dh*B*H flops each. */
        double gflop = 2.0 * t * t * (c / h) * b * h * 1e-9;
        printf("# attention B=%lld T=%lld C=%lld H=%lld: forward %.2f ms (%.0f GFLOP/s), "
               "backward %.2f ms (%.0f GFLOP/s)\n",
               (long long)b, (long long)t, (long long)c, (long long)h, best_f,
               2 * gflop / best_f * 1e3, best_b, 4 * gflop / best_b * 1e3);
    }
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n_exec;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, &n_exec);
        printf("# %-24s %-28s hot=%d runs=%llu\n", op, impl, hot, (unsigned long long)n_exec);
        assert_true(strncmp(impl, "ref", 3) != 0);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attention_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_attention_no_grad_mode, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_attention_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_attention_grad_accumulates, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_attention_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_attention_vit_kernels, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_attention", tests, NULL, NULL);
}
