/* linear and matmul: forward against a naive loop, gradients against central
 * differences, all transpose combinations, batched and shared operands. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

static void naive_mm(const float *a, const float *b, float *c, int64_t batch, int64_t m,
                     int64_t n, int64_t k, bool ta, bool tb, bool b_shared, float alpha)
{
    for (int64_t z = 0; z < batch; z++) {
        const float *A = a + z * m * k;
        const float *B = b + (b_shared ? 0 : z * k * n);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++) {
                    float av = ta ? A[p * m + i] : A[i * k + p];
                    float bv = tb ? B[j * k + p] : B[p * n + j];
                    s += (double)av * bv;
                }
                c[z * m * n + i * n + j] = (float)(alpha * s);
            }
    }
}

static void test_linear_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 6; rep++) {
        int64_t rows = gt_randint(env, 1, 70), in = gt_randint(env, 1, 90),
                out = gt_randint(env, 1, 80);
        int64_t xs[2] = {rows, in}, ws[2] = {out, in}, bs[1] = {out};
        gtl__tensor *x = gt_leaf(env, 2, xs, NULL, false);
        gtl__tensor *w = gt_leaf(env, 2, ws, NULL, false);
        gtl__tensor *b = gt_leaf(env, 1, bs, NULL, false);
        for (int act = 0; act <= GTL__ACT_QUICK_GELU; act++) {
            gtl__tensor *y;
            assert_int_equal(gtl__op_linear(env->tape, x, w, rep % 2 ? b : NULL, act, &y),
                             GTL_STATUS_OK);
            float *ref = malloc((size_t)(rows * out) * sizeof(float));
            naive_mm(x->data, w->data, ref, 1, rows, out, in, false, true, false, 1.0f);
            for (int64_t i = 0; i < rows * out; i++) {
                float v = ref[i] + (rep % 2 ? b->data[i % out] : 0.0f);
                if (act == GTL__ACT_RELU)
                    v = v > 0 ? v : 0;
                else if (act == GTL__ACT_GELU)
                    v = 0.5f * v * (1.0f + erff(v / sqrtf(2.0f)));
                else if (act == GTL__ACT_QUICK_GELU)
                    v = v / (1.0f + expf(-1.702f * v));
                ref[i] = v;
            }
            gt_assert_close(y->data, ref, rows * out, 1e-4, 1e-4, "linear forward");
            free(ref);
        }
        gtl__tape_reset(env->tape);
    }
}

typedef struct lin_ud {
    bool bias;
    gtl__act act;
} lin_ud;

static gtl_status lin_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    lin_ud *u = ud;
    return gtl__op_linear(t, in[0], in[1], u->bias ? in[2] : NULL, u->act, out);
}

static void test_linear_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 8; rep++) {
        /* Smooth activations only: relu has its own kink-aware test in test_op_act. */
        static const gtl__act acts[3] = {GTL__ACT_NONE, GTL__ACT_GELU, GTL__ACT_QUICK_GELU};
        lin_ud u = {rep % 2 == 0, acts[rep % 3]};
        int64_t b0 = gt_randint(env, 1, 4), rows = gt_randint(env, 1, 9),
                in = gt_randint(env, 1, 12), out = gt_randint(env, 1, 10);
        gt_input inp[3] = {
            {.nd = 3, .ne = {b0, rows, in}},
            {.nd = 2, .ne = {out, in}},
            {.nd = 1, .ne = {out}},
        };
        gt_gradcheck(env, "linear", lin_fn, &u,
                     u.bias ? 3 : 2, inp, NULL);
    }
}

typedef struct mm_ud {
    bool ta, tb;
    float alpha;
} mm_ud;

static gtl_status mm_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    mm_ud *u = ud;
    return gtl__op_matmul(t, in[0], in[1], u->ta, u->tb, u->alpha, out);
}

static void test_matmul_forward_and_grad(void **state)
{
    gt_env *env = *state;
    for (int shared = 0; shared < 2; shared++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t batch = gt_randint(env, 1, 3), m = gt_randint(env, 1, 7),
                        n = gt_randint(env, 1, 7), k = gt_randint(env, 1, 7);
                mm_ud u = {ta, tb, shared ? 0.5f : 1.0f};
                gt_input inp[2] = {
                    {.nd = 3, .ne = {batch, ta ? k : m, ta ? m : k}},
                    {.nd = shared ? 2 : 3},
                };
                if (shared) {
                    inp[1].ne[0] = tb ? n : k;
                    inp[1].ne[1] = tb ? k : n;
                } else {
                    inp[1].ne[0] = batch;
                    inp[1].ne[1] = tb ? n : k;
                    inp[1].ne[2] = tb ? k : n;
                }
                /* forward */
                gtl__tensor *a = gt_leaf(env, inp[0].nd, inp[0].ne, NULL, false);
                gtl__tensor *b = gt_leaf(env, inp[1].nd, inp[1].ne, NULL, false);
                gtl__tensor *c;
                assert_int_equal(gtl__op_matmul(env->tape, a, b, ta, tb, u.alpha, &c),
                                 GTL_STATUS_OK);
                float *ref = malloc((size_t)(batch * m * n) * sizeof(float));
                naive_mm(a->data, b->data, ref, batch, m, n, k, ta, tb, shared, u.alpha);
                gt_assert_close(c->data, ref, batch * m * n, 1e-5, 1e-4, "matmul forward");
                free(ref);
                gtl__tape_reset(env->tape);
                char name[64];
                snprintf(name, sizeof name, "matmul ta=%d tb=%d shared=%d", ta, tb, shared);
                gt_gradcheck(env, name, mm_fn, &u, 2, inp, NULL);
            }
}

static void test_matmul_bad_shapes(void **state)
{
    gt_env *env = *state;
    int64_t as[2] = {3, 4}, bs[2] = {5, 6};
    gtl__tensor *a = gt_leaf(env, 2, as, NULL, true);
    gtl__tensor *b = gt_leaf(env, 2, bs, NULL, true);
    gtl__tensor *c = (gtl__tensor *)1;
    assert_int_equal(gtl__op_matmul(env->tape, a, b, false, false, 1.0f, &c),
                     GTL_STATUS_INVALID_ARG);
    assert_null(c);
    assert_non_null(strstr(gtl_last_error(), "matmul"));
    assert_int_equal(gtl__op_linear(env->tape, a, b, NULL, GTL__ACT_NONE, &c),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
}

static void test_matmul_hot_kernels_not_ref(void **state)
{
    gt_env *env = *state;
    /* ViT-B/16-like shapes: the kernels must be JIT, not ref:. */
    int64_t xs[2] = {197, 768}, ws[2] = {3072, 768};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true);
    gtl__tensor *w = gt_leaf(env, 2, ws, NULL, true);
    gtl__tensor *y;
    assert_int_equal(gtl__op_linear(env->tape, x, w, NULL, GTL__ACT_NONE, &y), GTL_STATUS_OK);
    gtl__tensor *s;
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, s), GTL_STATUS_OK);
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, NULL);
        printf("# %s: %s\n", op, impl);
        assert_true(strncmp(impl, "ref", 3) != 0);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_linear_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_matmul_forward_and_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_matmul_bad_shapes, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_matmul_hot_kernels_not_ref, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_matmul", tests, NULL, NULL);
}
