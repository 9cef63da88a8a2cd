/* tape: when nodes are recorded (grad mode, frozen parameters), gradient
 * accumulation into a parameter blob across backward passes, backward
 * misuse (twice, non-scalar, nothing to differentiate, no gradient blob),
 * and the steady state: a repeated training step allocates nothing.
 *
 * Only linear, act, matmul, sum and mean are used: the ops that exist in the
 * foundation. Shapes: N rows, D inputs, H hidden, O outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

/* A two-layer perceptron's parameters: w1 (H, D), b1 (H), w2 (O, H), b2 (O). */
typedef struct mlp {
    gtl__paramset ps;
    int64_t d, h, o;
    gtl__tensor *w1, *b1, *w2, *b2;
} mlp;

static void mlp_init(gt_env *env, mlp *m, int64_t d, int64_t h, int64_t o, bool alloc_grad)
{
    gtl__paramset_init(&m->ps);
    m->d = d;
    m->h = h;
    m->o = o;
    int64_t s_w1[2] = {h, d}, s_b1[1] = {h}, s_w2[2] = {o, h}, s_b2[1] = {o};
    int64_t i[4];
    assert_int_equal(gtl__paramset_add(&m->ps, "fc1.weight", 2, s_w1, &i[0]), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(&m->ps, "fc1.bias", 1, s_b1, &i[1]), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(&m->ps, "fc2.weight", 2, s_w2, &i[2]), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(&m->ps, "fc2.bias", 1, s_b2, &i[3]), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&m->ps), GTL_STATUS_OK);
    if (alloc_grad)
        assert_int_equal(gtl__paramset_alloc_grad(&m->ps), GTL_STATUS_OK);
    gt_fill(env, m->ps.data, m->ps.n_total, -0.5f, 0.5f);
    m->w1 = gtl__paramset_get(&m->ps, i[0]);
    m->b1 = gtl__paramset_get(&m->ps, i[1]);
    m->w2 = gtl__paramset_get(&m->ps, i[2]);
    m->b2 = gtl__paramset_get(&m->ps, i[3]);
}

/* loss = sum(fc2(relu(fc1(x)))), relu as its own op on the tape. */
static gtl_status mlp_forward(gtl__tape *tape, mlp *m, gtl__tensor *x, gtl__tensor **loss)
{
    gtl__tensor *h, *a, *y;
    gtl_status st = gtl__op_linear(tape, x, m->w1, m->b1, GTL__ACT_NONE, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_act(tape, h, GTL__ACT_RELU, &a);
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, a, m->w2, m->b2, GTL__ACT_NONE, &y);
    if (st == GTL_STATUS_OK)
        st = gtl__op_sum(tape, y, -1, false, loss);
    return st;
}

static bool all_zero(const float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (p[i] != 0.0f)
            return false;
    return true;
}

static void test_no_grad_records_nothing(void **state)
{
    gt_env *env = *state;
    mlp m;
    mlp_init(env, &m, 6, 5, 3, true);
    int64_t xs[2] = {4, 6};
    float xv[24];
    gt_fill(env, xv, 24, -1.0f, 1.0f);

    /* The same computation with grad mode on and off. */
    float want_fused[4 * 5], want_loss = 0.0f;
    for (int pass = 0; pass < 2; pass++) {
        bool grad = pass == 0;
        gtl__tape_reset(env->tape);
        env->tape->grad_enabled = grad;
        gtl__tensor *x, *h, *g, *mm, *s, *mn, *loss;
        assert_int_equal(gtl__tape_leaf(env->tape, 2, xs, xv, true, &x), GTL_STATUS_OK);
        /* RELU fused into the matmul when nothing is recorded, a separate
         * node otherwise: same values. */
        assert_int_equal(gtl__op_linear(env->tape, x, m.w1, m.b1, GTL__ACT_RELU, &h),
                         GTL_STATUS_OK);
        assert_int_equal(gtl__op_act(env->tape, h, GTL__ACT_GELU, &g), GTL_STATUS_OK);
        assert_int_equal(gtl__op_matmul(env->tape, g, m.w1, false, false, 0.5f, &mm),
                         GTL_STATUS_OK);
        assert_int_equal(gtl__op_sum(env->tape, mm, 0, true, &s), GTL_STATUS_OK);
        assert_int_equal(gtl__op_mean(env->tape, s, -1, false, &mn), GTL_STATUS_OK);
        assert_int_equal(mlp_forward(env->tape, &m, x, &loss), GTL_STATUS_OK);
        gtl__tensor *outs[6] = {h, g, mm, s, mn, loss};
        if (grad) {
            /* linear + relu, gelu, matmul, sum, mean, then linear, relu,
             * linear, sum */
            assert_int_equal(env->tape->n_nodes, 10);
            for (int i = 0; i < 6; i++)
                assert_true(gtl__requires_grad(outs[i]));
            memcpy(want_fused, h->data, sizeof want_fused);
            want_loss = loss->data[0];
        } else {
            assert_int_equal(env->tape->n_nodes, 0);
            for (int i = 0; i < 6; i++) {
                assert_false(gtl__requires_grad(outs[i]));
                assert_null(outs[i]->grad);
            }
            gt_assert_close(h->data, want_fused, 20, 1e-6, 1e-6, "fused relu vs node");
            assert_true(loss->data[0] == want_loss);
            /* Nothing to differentiate: BAD_STATE, and the blob is untouched. */
            assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_BAD_STATE);
            assert_non_null(strstr(gtl_last_error(), "does not depend"));
            assert_true(all_zero(m.ps.grad, m.ps.n_total));
            assert_null(x->grad);
        }
    }
    env->tape->grad_enabled = true;
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m.ps);
}

static void test_frozen_params(void **state)
{
    gt_env *env = *state;
    mlp m;
    mlp_init(env, &m, 5, 4, 3, false);
    for (int64_t i = 0; i < m.ps.n_params; i++)
        gtl__paramset_set_frozen(&m.ps, i, true);
    assert_int_equal(gtl__paramset_alloc_grad(&m.ps), GTL_STATUS_OK);
    int64_t xs[2] = {3, 5};

    /* All parameters frozen and an input without gradient: no node, no
     * gradient anywhere, and backward has nothing to do. */
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, false);
    gtl__tensor *loss;
    assert_int_equal(mlp_forward(env->tape, &m, x, &loss), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 0);
    assert_false(gtl__requires_grad(loss));
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_BAD_STATE);
    for (int64_t i = 0; i < m.ps.n_params; i++)
        assert_null(m.ps.params[i].grad);

    /* The input requires a gradient: nodes are recorded and x gets one, the
     * frozen parameters still get none. */
    gtl__tape_reset(env->tape);
    x = gt_leaf(env, 2, xs, NULL, true);
    assert_int_equal(mlp_forward(env->tape, &m, x, &loss), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 4);
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
    assert_non_null(x->grad);
    for (int64_t i = 0; i < m.ps.n_params; i++)
        assert_null(m.ps.params[i].grad);
    assert_true(all_zero(m.ps.grad, m.ps.n_total));

    /* Only fc2.bias trainable: its gradient is N per output (d sum / d b2),
     * the frozen parts of the blob stay zero. */
    gtl__tape_reset(env->tape);
    gtl__paramset_set_frozen(&m.ps, 3, false);
    x = gt_leaf(env, 2, xs, NULL, false);
    assert_int_equal(mlp_forward(env->tape, &m, x, &loss), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 2); /* fc2 and sum */
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
    for (int64_t j = 0; j < m.o; j++)
        assert_true(m.b2->grad[j] == 3.0f);
    for (int64_t i = 0; i < 3; i++) {
        assert_null(m.ps.params[i].grad);
        assert_true(all_zero(m.ps.grad + m.ps.offsets[i], m.ps.params[i].n));
    }
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m.ps);
}

/* One linear layer: loss = sum(x W^T + b) has dW[o][i] = sum_r x[r][i] and
 * db[o] = N; the gradients accumulate over backward passes until zeroed. */
static void test_grad_accumulation(void **state)
{
    gt_env *env = *state;
    mlp m;
    mlp_init(env, &m, 7, 5, 2, true);
    const int64_t n = 6;
    int64_t xs[2] = {n, 7};
    float xv[6 * 7];
    gt_fill(env, xv, n * 7, -1.0f, 1.0f);
    float want_w[5 * 7], want_b[5];
    for (int64_t o = 0; o < 5; o++) {
        want_b[o] = (float)n;
        for (int64_t i = 0; i < 7; i++) {
            double s = 0.0;
            for (int64_t r = 0; r < n; r++)
                s += xv[r * 7 + i];
            want_w[o * 7 + i] = (float)s;
        }
    }
    float acc_w[5 * 7], acc_b[5];
    for (int pass = 1; pass <= 3; pass++) {
        gtl__tape_reset(env->tape);
        gtl__tensor *x, *y, *loss;
        assert_int_equal(gtl__tape_leaf(env->tape, 2, xs, xv, false, &x), GTL_STATUS_OK);
        assert_int_equal(gtl__op_linear(env->tape, x, m.w1, m.b1, GTL__ACT_NONE, &y),
                         GTL_STATUS_OK);
        assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &loss), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
        for (int64_t k = 0; k < 35; k++)
            acc_w[k] = want_w[k] * (float)pass;
        for (int64_t k = 0; k < 5; k++)
            acc_b[k] = want_b[k] * (float)pass;
        gt_assert_close(m.w1->grad, acc_w, 35, 1e-5, 1e-5, "accumulated dW");
        gt_assert_close(m.b1->grad, acc_b, 5, 1e-5, 1e-5, "accumulated db");
        /* The unused layer's gradient stays zero. */
        assert_true(all_zero(m.w2->grad, m.w2->n));
    }
    /* zero_grad, then a mean loss: the gradient scales by 1 / (N * H). */
    gtl__paramset_zero_grad(&m.ps);
    gtl__tape_reset(env->tape);
    gtl__tensor *x, *y, *loss;
    assert_int_equal(gtl__tape_leaf(env->tape, 2, xs, xv, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__op_linear(env->tape, x, m.w1, m.b1, GTL__ACT_NONE, &y),
                     GTL_STATUS_OK);
    assert_int_equal(gtl__op_mean(env->tape, y, -1, false, &loss), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
    for (int64_t k = 0; k < 35; k++)
        acc_w[k] = want_w[k] / (float)(n * 5);
    for (int64_t k = 0; k < 5; k++)
        acc_b[k] = want_b[k] / (float)(n * 5);
    gt_assert_close(m.w1->grad, acc_w, 35, 1e-6, 1e-5, "mean dW");
    gt_assert_close(m.b1->grad, acc_b, 5, 1e-6, 1e-5, "mean db");
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m.ps);
}

static void test_backward_misuse(void **state)
{
    gt_env *env = *state;
    mlp m;
    mlp_init(env, &m, 4, 3, 2, true);
    int64_t xs[2] = {2, 4};
    gtl__tensor *x = gt_leaf(env, 2, xs, NULL, true);
    gtl__tensor *y, *loss;
    assert_int_equal(gtl__op_linear(env->tape, x, m.w1, m.b1, GTL__ACT_NONE, &y),
                     GTL_STATUS_OK);

    /* Non-scalar: INVALID_ARG; nothing ran, so a scalar backward still works. */
    assert_int_equal(gtl__tape_backward(env->tape, y), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "scalar"));
    assert_false(env->tape->backward_done);
    assert_null(x->grad);
    assert_true(all_zero(m.ps.grad, m.ps.n_total));

    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &loss), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
    float gw[12], gx[8];
    memcpy(gw, m.w1->grad, sizeof gw);
    memcpy(gx, x->grad, sizeof gx);

    /* Twice: BAD_STATE and no gradient changes. */
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "already"));
    const float one = 1.0f;
    assert_int_equal(gtl__tape_backward_seed(env->tape, loss, &one), GTL_STATUS_BAD_STATE);
    assert_memory_equal(m.w1->grad, gw, sizeof gw);
    assert_memory_equal(x->grad, gx, sizeof gx);

    /* Recording on a tape that already ran backward: BAD_STATE, no node. */
    int64_t n_nodes = env->tape->n_nodes;
    gtl__tensor dummy;
    gtl__tensor *z = &dummy; /* must be overwritten with NULL */
    assert_int_equal(gtl__op_act(env->tape, y, GTL__ACT_RELU, &z), GTL_STATUS_BAD_STATE);
    assert_null(z);
    z = y;
    assert_int_equal(gtl__op_linear(env->tape, x, m.w1, NULL, GTL__ACT_NONE, &z),
                     GTL_STATUS_BAD_STATE);
    assert_null(z);
    assert_int_equal(env->tape->n_nodes, n_nodes);

    /* After a reset the tape works again. */
    gtl__tape_reset(env->tape);
    assert_false(env->tape->backward_done);
    assert_int_equal(env->tape->n_nodes, 0);
    x = gt_leaf(env, 2, xs, NULL, false);
    assert_int_equal(gtl__op_linear(env->tape, x, m.w1, m.b1, GTL__ACT_NONE, &y),
                     GTL_STATUS_OK);
    assert_int_equal(gtl__op_mean(env->tape, y, -1, false, &loss), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);

    /* A tensor that does not require a gradient cannot seed backward. */
    gtl__tape_reset(env->tape);
    gtl__tensor *c = gt_leaf(env, 0, NULL, NULL, false);
    assert_int_equal(gtl__tape_backward(env->tape, c), GTL_STATUS_BAD_STATE);
    assert_false(env->tape->backward_done);
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m.ps);

    /* Parameters without a gradient blob: BAD_STATE naming the parameter. */
    mlp m2;
    mlp_init(env, &m2, 4, 3, 2, false);
    x = gt_leaf(env, 2, xs, NULL, false);
    assert_int_equal(gtl__op_linear(env->tape, x, m2.w1, m2.b1, GTL__ACT_NONE, &y),
                     GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(env->tape, y, -1, false, &loss), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "fc1."));
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m2.ps);
}

/* Runs n_steps training steps (reset, input leaf, forward, backward) and
 * returns the allocator calls of each step in calls[]. */
static void run_steps(gt_env *env, mlp *m, int64_t n, const float *xv, int n_steps,
                      uint64_t *calls, float *losses)
{
    int64_t xs[2] = {n, m->d};
    for (int s = 0; s < n_steps; s++) {
        uint64_t c0 = gtl__alloc_count();
        gtl__tape_reset(env->tape);
        gtl__tensor *x, *loss;
        assert_int_equal(gtl__tape_leaf(env->tape, 2, xs, xv, false, &x), GTL_STATUS_OK);
        assert_int_equal(mlp_forward(env->tape, m, x, &loss), GTL_STATUS_OK);
        assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
        calls[s] = gtl__alloc_count() - c0;
        losses[s] = loss->data[0];
    }
}

static void print_prims(const gtl__ctx *ctx)
{
    for (int64_t i = 0; i < gtl__ctx_num_prims(ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n_exec;
        gtl__ctx_prim_info(ctx, i, &op, &impl, &hot, &n_exec);
        printf("#   %-8s %-28s hot=%d runs=%llu\n", op, impl, hot, (unsigned long long)n_exec);
    }
}

static void test_steady_state_small(void **state)
{
    gt_env *env = *state;
    mlp m;
    mlp_init(env, &m, 16, 32, 4, true);
    float xv[8 * 16];
    gt_fill(env, xv, 8 * 16, -1.0f, 1.0f);
    uint64_t calls[6];
    float losses[6];
    run_steps(env, &m, 8, xv, 6, calls, losses);
    printf("# small MLP: allocations per step:");
    for (int s = 0; s < 6; s++)
        printf(" %llu", (unsigned long long)calls[s]);
    printf("\n");
    print_prims(env->ctx);
    assert_true(calls[0] > 0);
    for (int s = 1; s < 6; s++) {
        assert_int_equal(calls[s], 0);
        assert_true(losses[s] == losses[0]);
    }
    int64_t n_prims = gtl__ctx_num_prims(env->ctx);
    /* Six identical steps accumulated six identical gradients. */
    float g1[4];
    memcpy(g1, m.b2->grad, sizeof g1);
    for (int j = 0; j < 4; j++)
        assert_true(fabsf(g1[j] - 6.0f * 8.0f) < 1e-4f);
    assert_int_equal(gtl__ctx_num_prims(env->ctx), n_prims);
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m.ps);
}

/* A step bigger than the arena's first chunk: the first step chains chunks,
 * the second makes the one chunk of the high-water size, and from the third
 * on nothing is allocated. */
static void test_steady_state_arena_growth(void **state)
{
    gt_env *env = *state;
    mlp m;
    mlp_init(env, &m, 128, 256, 10, true);
    const int64_t n = 64;
    float *xv = malloc((size_t)(n * 128) * sizeof(float));
    assert_non_null(xv);
    gt_fill(env, xv, n * 128, -1.0f, 1.0f);
    uint64_t calls[6];
    float losses[6];
    run_steps(env, &m, n, xv, 6, calls, losses);
    printf("# larger MLP: allocations per step:");
    for (int s = 0; s < 6; s++)
        printf(" %llu", (unsigned long long)calls[s]);
    printf(" (arena high water %zu bytes, %llu chunks made)\n", env->tape->arena.high_water,
           (unsigned long long)env->tape->arena.n_chunk_allocs);
    assert_true(env->tape->arena.high_water > ((size_t)1 << 16));
    assert_int_equal(calls[1], 1);
    for (int s = 2; s < 6; s++)
        assert_int_equal(calls[s], 0);
    for (int s = 1; s < 6; s++)
        assert_true(losses[s] == losses[0]);
    free(xv);
    gtl__tape_reset(env->tape);
    gtl__paramset_fini(&m.ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_grad_records_nothing, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_frozen_params, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_grad_accumulation, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_backward_misuse, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_steady_state_small, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_steady_state_arena_growth, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("tape", tests, NULL, NULL);
}
