/* OOM sweep: every create path runs under a failing allocator whose failure
 * point rises (n = 0, 1, 2, ...) until the path succeeds. Each run must
 * report GTL_STATUS_OUT_OF_MEMORY with a message, zero its out-parameters,
 * and after the matching destroy leave nothing allocated (0 bytes, 0 blocks,
 * and no block outstanding at the allocator itself).
 *
 * Two failure modes, both swept for every path:
 *  - sticky: allocation n and every later one fail. This is what running
 *    out of memory looks like, and it proves error and cleanup paths never
 *    need memory themselves. It is the primary mode.
 *  - one-shot: only allocation n fails and later ones succeed again. This
 *    catches a failure that is swallowed or overwritten by a later success
 *    (the status must still be OUT_OF_MEMORY), and cleanup that is only
 *    right when everything after the failure also failed.
 *
 * Adding a path (model, checkpoint, ...) is one entry in `paths[]` below: a
 * function that creates, uses and destroys, returning the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "gtl_test.h"

/* ---- the failing allocator ---------------------------------------------- */

typedef struct fault_alloc {
    int64_t fail_at;   /* index of the (first) allocation to fail; -1: never */
    bool sticky;       /* every allocation from fail_at on fails */
    int64_t n_calls;   /* malloc + realloc calls since armed */
    int64_t n_failed;  /* how many were refused */
    int64_t live;      /* blocks handed out and not yet freed */
} fault_alloc;

static fault_alloc fa = {-1, true, 0, 0, 0};

static bool should_fail(void)
{
    int64_t i = fa.n_calls++;
    bool fail = fa.fail_at >= 0 && (fa.sticky ? i >= fa.fail_at : i == fa.fail_at);
    if (fail)
        fa.n_failed++;
    return fail;
}

static void *fault_malloc(void *ud, size_t size)
{
    (void)ud;
    if (should_fail())
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        fa.live++;
    return p;
}

static void *fault_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (should_fail())
        return NULL;
    void *p = realloc(ptr, size);
    if (p != NULL && ptr == NULL)
        fa.live++;
    return p;
}

static void fault_free(void *ud, void *ptr)
{
    (void)ud;
    if (ptr != NULL)
        fa.live--;
    free(ptr);
}

static void arm(int64_t fail_at, bool sticky)
{
    fa.fail_at = fail_at;
    fa.sticky = sticky;
    fa.n_calls = 0;
    fa.n_failed = 0;
}

/* Contract checks inside a path (out-params zeroed on failure, NULL from a
 * failed allocation) are counted, not asserted, so the path still cleans up. */
static int n_violations;

static void expect(bool ok, const char *what)
{
    if (!ok) {
        n_violations++;
        fprintf(stderr, "contract violated: %s (fail_at %lld, %s)\n", what,
                (long long)fa.fail_at, fa.sticky ? "sticky" : "one-shot");
    }
}

/* ---- paths ------------------------------------------------------------------ */

/* A compute context, a tape, and a linear layer forward + backward: creates
 * the matmul primitives (forward, both backward matmuls) with their
 * scratchpads and the tape's node array and arena. */
static gtl_status path_ctx_linear(void)
{
    gtl__ctx *ctx = NULL;
    gtl__tape *tape = NULL;
    gtl__rng rng;
    gtl__rng_seed(&rng, 3);
    gtl_status st = gtl__ctx_create(&ctx);
    expect(st == GTL_STATUS_OK || ctx == NULL, "ctx_create: *out_ctx NULL on failure");
    if (st != GTL_STATUS_OK)
        goto out;
    st = gtl__tape_create(ctx, &rng, &tape);
    expect(st == GTL_STATUS_OK || tape == NULL, "tape_create: *out_tape NULL on failure");
    if (st != GTL_STATUS_OK)
        goto out;
    int64_t xs[2] = {5, 12}, ws[2] = {9, 12}, bs[1] = {9};
    gtl__tensor *x = NULL, *w = NULL, *b = NULL, *y = NULL, *loss = NULL;
    st = gtl__tape_leaf(tape, 2, xs, NULL, true, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_leaf(tape, 2, ws, NULL, true, &w);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_leaf(tape, 1, bs, NULL, true, &b);
    if (st != GTL_STATUS_OK)
        goto out;
    gtl__rng_fill_uniform(&rng, x->data, x->n, -1.0f, 1.0f);
    gtl__rng_fill_uniform(&rng, w->data, w->n, -1.0f, 1.0f);
    st = gtl__op_linear(tape, x, w, b, GTL__ACT_RELU, &y);
    expect(st == GTL_STATUS_OK || y == NULL, "linear: *out NULL on failure");
    if (st != GTL_STATUS_OK)
        goto out;
    st = gtl__op_sum(tape, y, -1, false, &loss);
    expect(st == GTL_STATUS_OK || loss == NULL, "sum: *out NULL on failure");
    if (st != GTL_STATUS_OK)
        goto out;
    st = gtl__tape_backward(tape, loss);
out:
    gtl__tape_destroy(tape);
    gtl__ctx_destroy(ctx);
    return st;
}

static gtl_status no_backward(gtl__tape *tape, gtl__node *node)
{
    (void)tape;
    (void)node;
    return GTL_STATUS_OK;
}

/* A tape alone: arena growth past the first chunk, the node array growing
 * past its first capacity, then a reset and the consolidated chunk. */
static gtl_status path_tape_arena(void)
{
    gtl__tape *tape = NULL;
    gtl_status st = gtl__tape_create(NULL, NULL, &tape);
    expect(st == GTL_STATUS_OK || tape == NULL, "tape_create: *out_tape NULL on failure");
    if (st != GTL_STATUS_OK)
        return st;
    for (int round = 0; round < 2 && st == GTL_STATUS_OK; round++) {
        gtl__tape_reset(tape);
        for (int i = 0; i < 3; i++) {
            gtl__clear_error();
            if (gtl__tape_alloc(tape, 40000) == NULL) {
                expect(strstr(gtl_last_error(), "out of memory") != NULL,
                       "tape_alloc: OOM message set");
                st = GTL_STATUS_OUT_OF_MEMORY;
                goto out;
            }
        }
        int64_t ne[1] = {4};
        gtl__tensor *t = NULL;
        st = gtl__tape_leaf(tape, 1, ne, NULL, true, &t);
        expect(st == GTL_STATUS_OK || t == NULL, "tape_leaf: *out NULL on failure");
        for (int i = 0; i < 300 && st == GTL_STATUS_OK; i++) {
            gtl__node *node = NULL;
            st = gtl__tape_record(tape, "test", no_backward, t, &t, 1, &node);
            expect(st == GTL_STATUS_OK || node == NULL, "tape_record: *out NULL on failure");
        }
    }
out:
    gtl__tape_destroy(tape);
    return st;
}

/* A parameter set: 40 parameters (the table grows 16 -> 32 -> 64), the data
 * blob, the gradient blob. */
static gtl_status path_paramset(void)
{
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    gtl_status st = GTL_STATUS_OK;
    for (int i = 0; i < 40 && st == GTL_STATUS_OK; i++) {
        char name[16];
        int64_t ne[2] = {i + 1, 5};
        int64_t idx = -1;
        snprintf(name, sizeof name, "p%d", i);
        int64_t before = ps.n_params;
        st = gtl__paramset_add(&ps, name, 2, ne, &idx);
        expect(st == GTL_STATUS_OK || ps.n_params == before,
               "paramset_add: no parameter added on failure");
    }
    if (st == GTL_STATUS_OK) {
        st = gtl__paramset_finalize(&ps);
        expect(st == GTL_STATUS_OK || (!ps.finalized && ps.data == NULL),
               "paramset_finalize: not finalized on failure");
    }
    if (st == GTL_STATUS_OK) {
        st = gtl__paramset_alloc_grad(&ps);
        expect(st == GTL_STATUS_OK || ps.params[0].grad == NULL,
               "paramset_alloc_grad: no views on failure");
    }
    gtl__paramset_fini(&ps);
    return st;
}

/* What a model will do: parameters, context, tape, and two training steps
 * of a two-layer perceptron (the second after a reset). */
static gtl_status path_mlp_steps(void)
{
    gtl__ctx *ctx = NULL;
    gtl__tape *tape = NULL;
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    gtl__rng rng;
    gtl__rng_seed(&rng, 5);
    int64_t s_w1[2] = {16, 8}, s_b1[1] = {16}, s_w2[2] = {3, 16}, s_b2[1] = {3};
    gtl_status st = gtl__paramset_add(&ps, "fc1.weight", 2, s_w1, NULL);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_add(&ps, "fc1.bias", 1, s_b1, NULL);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_add(&ps, "fc2.weight", 2, s_w2, NULL);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_add(&ps, "fc2.bias", 1, s_b2, NULL);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_finalize(&ps);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_alloc_grad(&ps);
    if (st == GTL_STATUS_OK)
        st = gtl__ctx_create(&ctx);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_create(ctx, &rng, &tape);
    if (st != GTL_STATUS_OK)
        goto out;
    gtl__rng_fill_uniform(&rng, ps.data, ps.n_total, -0.5f, 0.5f);
    for (int step = 0; step < 2; step++) {
        gtl__tape_reset(tape);
        int64_t xs[2] = {6, 8};
        gtl__tensor *x = NULL, *h = NULL, *a = NULL, *y = NULL, *loss = NULL;
        st = gtl__tape_leaf(tape, 2, xs, NULL, false, &x);
        if (st == GTL_STATUS_OK) {
            gtl__rng_fill_uniform(&rng, x->data, x->n, -1.0f, 1.0f);
            st = gtl__op_linear(tape, x, &ps.params[0], &ps.params[1], GTL__ACT_NONE, &h);
        }
        if (st == GTL_STATUS_OK)
            st = gtl__op_act(tape, h, GTL__ACT_RELU, &a);
        expect(st == GTL_STATUS_OK || a == NULL, "act: *out NULL on failure");
        if (st == GTL_STATUS_OK)
            st = gtl__op_linear(tape, a, &ps.params[2], &ps.params[3], GTL__ACT_NONE, &y);
        if (st == GTL_STATUS_OK)
            st = gtl__op_mean(tape, y, -1, false, &loss);
        if (st == GTL_STATUS_OK)
            st = gtl__tape_backward(tape, loss);
        if (st != GTL_STATUS_OK)
            goto out;
    }
out:
    gtl__tape_destroy(tape);
    gtl__ctx_destroy(ctx);
    gtl__paramset_fini(&ps);
    return st;
}

/* A primitive that asks for a scratchpad, made directly through the cache:
 * batch normalisation forward (training) on (N, C, H, W) wants one here,
 * while the matmul and eltwise kernels above do not, so this is what reaches
 * gtl__prim_create's scratchpad allocation. */
static gtl_status path_prim_scratchpad(void)
{
    gtl__ctx *ctx = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    gtl_status st = gtl__ctx_create(&ctx);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_engine_t eng;
    st = gtl__dnnl_engine(&eng);
    int64_t dims[4] = {8, 4, 5, 5};
    dnnl_memory_desc_t md;
    if (st == GTL_STATUS_OK)
        st = gtl__md_plain(&md, 4, dims, dnnl_f32);
    if (st == GTL_STATUS_OK)
        st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        goto out;
    dnnl_batch_normalization_desc_t bd;
    if (dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &md, 1e-5f,
                                                   dnnl_use_scaleshift) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &bd, attr, eng, NULL) != dnnl_success) {
        st = gtl__error(GTL_STATUS_BACKEND, "test: batch norm descriptor");
        goto out;
    }
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    expect(smd != NULL && dnnl_memory_desc_get_size(smd) > 0, "batch norm has a scratchpad");
    const int args[5] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                         DNNL_ARG_SCALE_SHIFT};
    const int64_t key[3] = {0x7465737462, 8, 4};
    gtl__prim *p = NULL;
    st = gtl__prim_create(ctx, "test_bnorm", 0, key, 3, pd, args, 5, &p); /* destroys pd */
    expect(st == GTL_STATUS_OK || p == NULL, "prim_create: *out_prim NULL on failure");
    if (st != GTL_STATUS_OK)
        goto out;
    expect(p->scratch != NULL, "prim_create: scratchpad allocated");
    expect(gtl__prim_lookup(ctx, key, 3) == p, "prim_lookup finds the new primitive");
    static float src[800], dst[800], mean[4], var[4], ss[8];
    for (int i = 0; i < 800; i++)
        src[i] = (float)(i % 13);
    for (int i = 0; i < 4; i++) {
        ss[i] = 1.0f;
        ss[4 + i] = 0.0f;
    }
    void *ptrs[5] = {src, dst, mean, var, ss};
    st = gtl__prim_exec(ctx, p, ptrs);
out:
    if (attr != NULL)
        dnnl_primitive_attr_destroy(attr);
    gtl__ctx_destroy(ctx);
    return st;
}

typedef struct oom_path {
    const char *name;
    gtl_status (*run)(void);
} oom_path;

static const oom_path paths[] = {
    {"ctx_linear_fwd_bwd", path_ctx_linear},
    {"tape_arena_growth", path_tape_arena},
    {"paramset_add_finalize_grad", path_paramset},
    {"mlp_two_steps", path_mlp_steps},
    {"prim_with_scratchpad", path_prim_scratchpad},
    /* Later: {"model_create", ...}, {"checkpoint_load", ...}. */
};

/* ---- the sweep ----------------------------------------------------------------- */

static void assert_nothing_held(const oom_path *p, int64_t n, bool sticky)
{
    uint64_t bytes = 1, blocks = 1;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    if (bytes != 0 || blocks != 0 || fa.live != 0)
        fail_msg("%s: failing allocation %lld (%s): leaked %llu bytes in %llu blocks "
                 "(allocator sees %lld live)",
                 p->name, (long long)n, sticky ? "sticky" : "one-shot",
                 (unsigned long long)bytes, (unsigned long long)blocks, (long long)fa.live);
}

/* Returns the number of allocation calls the path makes when nothing fails. */
static int64_t sweep(const oom_path *p, bool sticky)
{
    arm(-1, sticky);
    gtl_status st = p->run();
    if (st != GTL_STATUS_OK)
        fail_msg("%s: fails without injected faults: %s: %s", p->name, gtl_strerror(st),
                 gtl_last_error());
    int64_t total = fa.n_calls;
    assert_nothing_held(p, -1, sticky);
    for (int64_t n = 0;; n++) {
        if (n > total + 1000)
            fail_msg("%s: sweep does not terminate", p->name);
        arm(n, sticky);
        gtl__clear_error();
        st = p->run();
        fa.fail_at = -1; /* checks below must not fail */
        char msg[512]; /* gtl_memory_in_use() below clears the message */
        snprintf(msg, sizeof msg, "%s", gtl_last_error());
        assert_nothing_held(p, n, sticky);
        if (fa.n_failed == 0) {
            if (st != GTL_STATUS_OK)
                fail_msg("%s: no fault injected at %lld but got %s: %s", p->name,
                         (long long)n, gtl_strerror(st), msg);
            break;
        }
        if (st != GTL_STATUS_OUT_OF_MEMORY)
            fail_msg("%s: failing allocation %lld of %lld (%s) gave %s instead of out of "
                     "memory: %s",
                     p->name, (long long)n, (long long)total, sticky ? "sticky" : "one-shot",
                     gtl_strerror(st), msg);
        if (msg[0] == '\0')
            fail_msg("%s: failing allocation %lld (%s): no error message", p->name,
                     (long long)n, sticky ? "sticky" : "one-shot");
    }
    return total;
}

static void test_oom_sweep(void **state)
{
    const oom_path *p = *state;
    n_violations = 0;
    int64_t n_sticky = sweep(p, true);
    int64_t n_once = sweep(p, false);
    assert_int_equal(n_sticky, n_once);
    printf("# %-28s %3lld allocation points, each failed cleanly (sticky and one-shot)\n",
           p->name, (long long)n_sticky);
    assert_true(n_sticky > 0);
    assert_int_equal(n_violations, 0);
}

static int install_fault_allocator(void **state)
{
    (void)state;
    arm(-1, true);
    fa.live = 0;
    return gtl_set_allocator(fault_malloc, fault_realloc, fault_free, NULL) == GTL_STATUS_OK
               ? 0
               : -1;
}

/* Restoring the default allocator requires that no block is live: one more
 * leak check. */
static int restore_allocator(void **state)
{
    (void)state;
    arm(-1, true);
    if (gtl_set_allocator(NULL, NULL, NULL, NULL) != GTL_STATUS_OK) {
        fprintf(stderr, "cannot restore the default allocator: %s\n", gtl_last_error());
        return -1;
    }
    return 0;
}

int main(void)
{
    /* The oneDNN engine is process-wide and not allocated through libgtl:
     * create it before the sweep so every run sees the same state. */
    gtl__ctx *ctx = NULL;
    if (gtl__ctx_create(&ctx) != GTL_STATUS_OK)
        return 1;
    gtl__ctx_destroy(ctx);
    struct CMUnitTest tests[sizeof paths / sizeof paths[0]];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        memset(&tests[i], 0, sizeof tests[i]);
        tests[i].name = paths[i].name;
        tests[i].test_func = test_oom_sweep;
        tests[i].setup_func = install_fault_allocator;
        tests[i].teardown_func = restore_allocator;
        tests[i].initial_state = (void *)&paths[i];
    }
    return _cmocka_run_group_tests("oom", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
