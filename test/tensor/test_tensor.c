/* tensor: shapes, bf16 conversion, the step arena (alignment, reuse, growth
 * and the steady state with zero allocations) and parameter sets (blob
 * layout, views, gradient blob, frozen parameters, lookup, misuse). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

static void assert_in_use(uint64_t want_bytes, uint64_t want_blocks)
{
    uint64_t bytes = 1, blocks = 1;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    assert_int_equal(bytes, want_bytes);
    assert_int_equal(blocks, want_blocks);
}

static uint64_t blocks_in_use(void)
{
    uint64_t bytes, blocks;
    gtl_memory_in_use(&bytes, &blocks);
    return blocks;
}

/* ---- shapes ---------------------------------------------------------------- */

static void test_shapes(void **state)
{
    (void)state;
    gtl__tensor t, u;
    memset(&t, 0, sizeof t);
    memset(&u, 0, sizeof u);
    int64_t ne[3] = {2, 3, 4};
    assert_true(gtl__tensor_set_shape(&t, 3, ne));
    assert_int_equal(t.nd, 3);
    assert_int_equal(t.n, 24);
    for (int i = 3; i < GTL__MAX_DIMS; i++)
        assert_int_equal(t.ne[i], 1);
    char buf[64];
    assert_string_equal(gtl__shape_str(&t, buf, sizeof buf), "(2, 3, 4)");
    /* A short buffer truncates without overflowing. */
    char small[8];
    memset(small, 'Z', sizeof small);
    gtl__shape_str(&t, small, 4);
    assert_true(strlen(small) < 4);
    assert_int_equal(small[4], 'Z');

    assert_true(gtl__tensor_set_shape(&u, 0, NULL));
    assert_int_equal(u.n, 1); /* a scalar */
    assert_string_equal(gtl__shape_str(&u, buf, sizeof buf), "()");
    assert_false(gtl__same_shape(&t, &u));
    int64_t ne2[3] = {2, 3, 5};
    assert_true(gtl__tensor_set_shape(&u, 3, ne2));
    assert_false(gtl__same_shape(&t, &u));
    assert_true(gtl__tensor_set_shape(&u, 3, ne));
    assert_true(gtl__same_shape(&t, &u));
    int64_t z[2] = {0, 5};
    assert_true(gtl__tensor_set_shape(&u, 2, z));
    assert_int_equal(u.n, 0);

    /* Refused: too many dims, negative dims, element counts that overflow. */
    int64_t seven[7] = {1, 1, 1, 1, 1, 1, 1};
    assert_false(gtl__tensor_set_shape(&u, 7, seven));
    assert_false(gtl__tensor_set_shape(&u, -1, seven));
    int64_t neg[2] = {3, -1};
    assert_false(gtl__tensor_set_shape(&u, 2, neg));
    int64_t huge[3] = {1ll << 30, 1ll << 30, 1ll << 10};
    assert_false(gtl__tensor_set_shape(&u, 3, huge));
}

/* ---- bf16 -------------------------------------------------------------------- */

static uint32_t f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Reference: keep the top 16 bits, then round to nearest, ties to even,
 * written out case by case. */
static uint16_t ref_bf16(uint32_t u)
{
    uint16_t lo = (uint16_t)(u >> 16);
    uint32_t rest = u & 0xffffu;
    if (rest > 0x8000u || (rest == 0x8000u && (lo & 1u)))
        return (uint16_t)(lo + 1u);
    return lo;
}

static void test_bf16_round_trip(void **state)
{
    (void)state;
    /* Every bf16 value converts to f32 and back to itself; NaNs stay NaN
     * with their sign. */
    for (uint32_t h = 0; h <= 0xffffu; h++) {
        float f = gtl__bf16_to_f32((uint16_t)h);
        assert_true(f2u(f) == h << 16);
        uint16_t back = gtl__f32_to_bf16(f);
        if (isnan(f)) {
            assert_true(isnan(gtl__bf16_to_f32(back)));
            assert_int_equal(back >> 15, h >> 15);
        } else {
            assert_int_equal(back, h);
        }
    }
    const float exact[] = {0.0f, 1.0f, -2.5f, 0.15625f, 65536.0f, -1.0f / 1024.0f, INFINITY,
                           -INFINITY};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        assert_true(gtl__bf16_to_f32(gtl__f32_to_bf16(exact[i])) == exact[i]);
    assert_int_equal(gtl__f32_to_bf16(-0.0f), 0x8000);
}

static void test_bf16_rounding(void **state)
{
    (void)state;
    gtl__rng rng;
    gtl__rng_seed(&rng, gt_base_seed() ^ 0xbf16);
    /* Ties go to the even neighbour. */
    float one = 1.0f;
    assert_true(gtl__bf16_to_f32(gtl__f32_to_bf16(one + 0x1p-8f)) == 1.0f);
    assert_true(gtl__bf16_to_f32(gtl__f32_to_bf16(one + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);
    assert_true(gtl__bf16_to_f32(gtl__f32_to_bf16(-(one + 0x1p-8f))) == -1.0f);
    /* Just above a tie goes up, just below goes down. */
    assert_true(gtl__bf16_to_f32(gtl__f32_to_bf16(one + 0x1p-8f + 0x1p-20f)) ==
                1.0f + 0x1p-7f);
    assert_true(gtl__bf16_to_f32(gtl__f32_to_bf16(one + 0x1p-8f - 0x1p-20f)) == 1.0f);
    /* Overflow rounds to infinity; subnormals round like everything else. */
    assert_true(isinf(gtl__bf16_to_f32(gtl__f32_to_bf16(FLT_MAX))));
    assert_int_equal(gtl__f32_to_bf16(u2f(0x00000001u)), 0x0000);
    assert_int_equal(gtl__f32_to_bf16(u2f(0x00008000u)), 0x0000);
    assert_int_equal(gtl__f32_to_bf16(u2f(0x00018000u)), 0x0002);
    assert_int_equal(gtl__f32_to_bf16(u2f(0x0000c000u)), 0x0001);
    /* A signalling NaN whose payload sits in the low bits stays a NaN. */
    assert_true(isnan(gtl__bf16_to_f32(gtl__f32_to_bf16(u2f(0x7f800001u)))));
    assert_true(isnan(gtl__bf16_to_f32(gtl__f32_to_bf16(u2f(0xff800001u)))));

    /* Random bit patterns: matches the reference, and the result is the
     * nearer of the two neighbouring bf16 values. */
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)gtl__rng_u64(&rng);
        float x = u2f(u);
        if (isnan(x)) {
            assert_true(isnan(gtl__bf16_to_f32(gtl__f32_to_bf16(x))));
            continue;
        }
        uint16_t h = gtl__f32_to_bf16(x);
        assert_int_equal(h, ref_bf16(u));
        double got = gtl__bf16_to_f32(h);
        double down = gtl__bf16_to_f32((uint16_t)(u >> 16));
        if (isfinite(got) && isfinite(x))
            assert_true(fabs(got - x) <= fabs(down - x));
    }
    /* Relative error of normal values is at most half an ulp: 2^-8 (8-bit significand). */
    for (int i = 0; i < 100000; i++) {
        float x = (float)(gtl__rng_normal(&rng) * 100.0);
        if (fabsf(x) < FLT_MIN)
            continue;
        float y = gtl__bf16_to_f32(gtl__f32_to_bf16(x));
        assert_true(fabsf(y - x) <= fabsf(x) * 0x1p-8f);
    }
}

/* ---- arena ------------------------------------------------------------------ */

static void test_arena_alignment(void **state)
{
    (void)state;
    gtl__arena a;
    gtl__arena_init(&a);
    const size_t sizes[] = {1, 3, 63, 64, 65, 100, 1000, 0, 4096, 7, 129};
    const size_t n = sizeof sizes / sizeof sizes[0];
    unsigned char *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < n; i++) {
        p[i] = gtl__arena_alloc(&a, sizes[i]);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 64, 0);
        memset(p[i], (int)i + 1, sizes[i]);
    }
    /* Blocks do not overlap: each one still holds its own fill, and a
     * zero-byte request still gets a distinct address. */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(p[i][k], (int)i + 1);
        for (size_t j = 0; j < i; j++)
            assert_true(p[i] != p[j]);
    }
    assert_int_equal(a.n_chunk_allocs, 1);
    /* Requests whose rounded size overflows fail without allocating. */
    uint64_t calls = gtl__alloc_count();
    assert_null(gtl__arena_alloc(&a, SIZE_MAX - 10));
    assert_null(gtl__arena_alloc(&a, SIZE_MAX - 100));
    assert_int_equal(gtl__alloc_count(), calls);
    gtl__arena_fini(&a);
    assert_in_use(0, 0);
    gtl__arena_fini(&a); /* twice is harmless */
}

static void test_arena_reset_reuses(void **state)
{
    (void)state;
    gtl__arena a;
    gtl__arena_init(&a);
    void *p1 = gtl__arena_alloc(&a, 1000);
    void *p2 = gtl__arena_alloc(&a, 2000);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal(a.used_total, 1024 + 2048);
    uint64_t calls = gtl__alloc_count();
    for (int step = 0; step < 5; step++) {
        gtl__arena_reset(&a);
        assert_int_equal(a.used_total, 0);
        assert_ptr_equal(gtl__arena_alloc(&a, 1000), p1);
        assert_ptr_equal(gtl__arena_alloc(&a, 2000), p2);
    }
    assert_int_equal(gtl__alloc_count(), calls);
    assert_int_equal(a.n_chunk_allocs, 1);
    assert_int_equal(a.high_water, 1024 + 2048);
    gtl__arena_reset(&a);
    gtl__arena_fini(&a);
    assert_in_use(0, 0);
    /* Reset of a never-used arena is a no-op. */
    gtl__arena_init(&a);
    gtl__arena_reset(&a);
    gtl__arena_fini(&a);
}

/* One "step" of the arena: a fixed list of block sizes. Returns the number
 * of allocator calls the step made and stores the block addresses. */
static uint64_t arena_step(gtl__arena *a, const size_t *sizes, int n, unsigned char **p)
{
    uint64_t c0 = gtl__alloc_count();
    for (int i = 0; i < n; i++) {
        p[i] = gtl__arena_alloc(a, sizes[i]);
        assert_non_null(p[i]);
        memset(p[i], 0xab, sizes[i]);
    }
    return gtl__alloc_count() - c0;
}


static void test_arena_overflow_then_steady(void **state)
{
    (void)state;
    gtl__arena a;
    gtl__arena_init(&a);
    /* 3 x 40000 bytes do not fit the first 64 KiB chunk. */
    const size_t sizes[4] = {40000, 40000, 40000, 40000};
    unsigned char *p[4], *q[4];

    /* Step 1 overflows into a second chunk. */
    assert_int_equal(arena_step(&a, sizes, 3, p), 2);
    assert_int_equal(a.n_chunk_allocs, 2);
    assert_int_equal(a.high_water, 120000);
    assert_int_equal(blocks_in_use(), 2);
    /* The reset drops both chunks... */
    gtl__arena_reset(&a);
    assert_int_equal(blocks_in_use(), 0);
    /* ...and the next step makes one chunk of the high-water size: the three
     * blocks are adjacent in it. */
    assert_int_equal(arena_step(&a, sizes, 3, q), 1);
    assert_int_equal(blocks_in_use(), 1);
    assert_ptr_equal(q[1], q[0] + 40000);
    assert_ptr_equal(q[2], q[1] + 40000);
    /* From then on the same step allocates nothing and reuses the addresses. */
    for (int step = 0; step < 8; step++) {
        gtl__arena_reset(&a);
        assert_int_equal(arena_step(&a, sizes, 3, p), 0);
        for (int i = 0; i < 3; i++)
            assert_ptr_equal(p[i], q[i]);
    }
    assert_int_equal(a.n_chunk_allocs, 3);

    /* A bigger step grows again (one more chunk), then settles at the new
     * high-water mark; smaller steps fit as well. */
    gtl__arena_reset(&a);
    assert_int_equal(arena_step(&a, sizes, 4, p), 1);
    assert_int_equal(a.high_water, 160000);
    gtl__arena_reset(&a);
    assert_int_equal(arena_step(&a, sizes, 4, q), 1);
    assert_int_equal(blocks_in_use(), 1);
    assert_ptr_equal(q[3], q[0] + 120000);
    for (int step = 0; step < 4; step++) {
        gtl__arena_reset(&a);
        assert_int_equal(arena_step(&a, sizes, 4 - step % 2, p), 0);
    }
    gtl__arena_fini(&a);
    assert_in_use(0, 0);
}

/* ---- parameter sets ----------------------------------------------------------- */

static void test_paramset_layout(void **state)
{
    (void)state;
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    char name[32];
    int64_t idx = -1;
    int64_t s0[2] = {3, 5}, s1[1] = {7}, s2[3] = {2, 2, 2};
    /* Names are copied: the caller's buffer is reused for each. */
    snprintf(name, sizeof name, "enc.w");
    assert_int_equal(gtl__paramset_add(&ps, name, 2, s0, &idx), GTL_STATUS_OK);
    assert_int_equal(idx, 0);
    snprintf(name, sizeof name, "enc.b");
    assert_int_equal(gtl__paramset_add(&ps, name, 1, s1, &idx), GTL_STATUS_OK);
    assert_int_equal(idx, 1);
    snprintf(name, sizeof name, "dec.w");
    assert_int_equal(gtl__paramset_add(&ps, name, 3, s2, &idx), GTL_STATUS_OK);
    assert_int_equal(idx, 2);
    snprintf(name, sizeof name, "scale");
    assert_int_equal(gtl__paramset_add(&ps, name, 0, NULL, NULL), GTL_STATUS_OK);
    memset(name, 0, sizeof name);
    assert_int_equal(ps.n_params, 4);
    assert_null(ps.params[0].data); /* no blob before finalize */
    /* Each tensor starts on a 16-float (64-byte) boundary. */
    assert_int_equal(ps.n_total, 64);

    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    assert_true(ps.finalized);
    assert_int_equal((uintptr_t)ps.data % 64, 0);
    const char *names[4] = {"enc.w", "enc.b", "dec.w", "scale"};
    const int64_t n_el[4] = {15, 7, 8, 1};
    for (int64_t i = 0; i < 4; i++) {
        gtl__tensor *t = gtl__paramset_get(&ps, i);
        assert_ptr_equal(t, &ps.params[i]);
        assert_string_equal(t->name, names[i]);
        assert_int_equal(t->n, n_el[i]);
        assert_ptr_equal(t->data, ps.data + ps.offsets[i]);
        assert_int_equal((uintptr_t)t->data % 64, 0);
        assert_true(ps.offsets[i] + t->n <= ps.n_total);
        if (i > 0)
            assert_true(ps.offsets[i] >= ps.offsets[i - 1] + n_el[i - 1]);
        assert_int_equal(t->flags, GTL__TF_PARAM | GTL__TF_LEAF | GTL__TF_REQUIRES_GRAD);
        assert_null(t->grad);
        for (int64_t k = 0; k < t->n; k++)
            assert_true(t->data[k] == 0.0f);
        assert_int_equal(gtl__paramset_find(&ps, names[i]), i);
    }
    assert_int_equal(ps.params[2].nd, 3);
    assert_int_equal(ps.params[2].ne[1], 2);
    assert_int_equal(ps.params[3].nd, 0);
    assert_int_equal(gtl__paramset_find(&ps, "enc"), -1);
    assert_int_equal(gtl__paramset_find(&ps, "enc.w.x"), -1);
    assert_int_equal(gtl__paramset_find(&ps, ""), -1);
    assert_null(gtl__paramset_get(&ps, -1));
    assert_null(gtl__paramset_get(&ps, 4));

    /* Misuse after finalize. */
    assert_int_equal(gtl__paramset_add(&ps, "late", 1, s1, &idx), GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "finalized"));
    assert_int_equal(ps.n_params, 4);
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_BAD_STATE);
    gtl__paramset_fini(&ps);
    assert_in_use(0, 0);
    gtl__paramset_fini(&ps); /* twice is harmless */
}

static void test_paramset_growth_and_bad_args(void **state)
{
    (void)state;
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "not finalized"));
    int64_t seven[7] = {1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -3};
    assert_int_equal(gtl__paramset_add(&ps, "a", 7, seven, NULL), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "a"));
    assert_int_equal(gtl__paramset_add(&ps, "b", 2, neg, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(ps.n_params, 0);
    /* 40 parameters: the table grows twice (16 -> 32 -> 64). */
    for (int i = 0; i < 40; i++) {
        char nm[16];
        int64_t ne[2] = {i + 1, 3};
        int64_t idx;
        snprintf(nm, sizeof nm, "p%d", i);
        assert_int_equal(gtl__paramset_add(&ps, nm, 2, ne, &idx), GTL_STATUS_OK);
        assert_int_equal(idx, i);
    }
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    for (int i = 0; i < 40; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "p%d", i);
        assert_int_equal(gtl__paramset_find(&ps, nm), i);
        assert_int_equal(ps.params[i].n, 3 * (i + 1));
        ps.params[i].data[ps.params[i].n - 1] = (float)i; /* last element of each view */
    }
    for (int i = 0; i < 40; i++)
        assert_true(ps.params[i].data[ps.params[i].n - 1] == (float)i);
    gtl__paramset_fini(&ps);

    /* An empty set can be finalized and given a gradient blob. */
    gtl__paramset_init(&ps);
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_OK);
    gtl__paramset_zero_grad(&ps);
    gtl__paramset_fini(&ps);
    assert_in_use(0, 0);
}

static void test_paramset_grad_blob_and_frozen(void **state)
{
    (void)state;
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    int64_t sw[2] = {4, 3}, sb[1] = {4}, se[2] = {10, 2};
    int64_t iw, ib, ie;
    assert_int_equal(gtl__paramset_add(&ps, "w", 2, sw, &iw), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(&ps, "b", 1, sb, &ib), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(&ps, "emb", 2, se, &ie), GTL_STATUS_OK);
    gtl__paramset_zero_grad(&ps); /* no blob yet: nothing to do */
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    gtl__paramset_set_frozen(&ps, ie, true);
    assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_OK);
    assert_non_null(ps.grad);
    assert_int_equal((uintptr_t)ps.grad % 64, 0);
    for (int64_t i = 0; i < ps.n_total; i++)
        assert_true(ps.grad[i] == 0.0f);

    gtl__tensor *w = gtl__paramset_get(&ps, iw), *b = gtl__paramset_get(&ps, ib);
    gtl__tensor *e = gtl__paramset_get(&ps, ie);
    assert_ptr_equal(w->grad, ps.grad + ps.offsets[iw]);
    assert_ptr_equal(b->grad, ps.grad + ps.offsets[ib]);
    assert_true(gtl__requires_grad(w) && gtl__requires_grad(b));
    /* Frozen: no gradient view and no REQUIRES_GRAD, still a parameter and
     * still found by name. */
    assert_null(e->grad);
    assert_false(gtl__requires_grad(e));
    assert_int_equal(e->flags, GTL__TF_PARAM | GTL__TF_LEAF);
    assert_int_equal(gtl__paramset_find(&ps, "emb"), ie);

    /* zero_grad clears the whole blob in one go. */
    for (int64_t i = 0; i < ps.n_total; i++)
        ps.grad[i] = 1.5f;
    gtl__paramset_zero_grad(&ps);
    for (int64_t i = 0; i < ps.n_total; i++)
        assert_true(ps.grad[i] == 0.0f);

    /* A second alloc_grad keeps the blob (no allocation) and its contents. */
    w->grad[0] = 2.0f;
    float *g0 = ps.grad;
    uint64_t calls = gtl__alloc_count();
    assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_OK);
    assert_int_equal(gtl__alloc_count(), calls);
    assert_ptr_equal(ps.grad, g0);
    assert_true(w->grad[0] == 2.0f);
    assert_null(e->grad);

    /* Freezing after the blob exists removes the view; thawing restores it. */
    gtl__paramset_set_frozen(&ps, iw, true);
    assert_null(w->grad);
    assert_false(gtl__requires_grad(w));
    gtl__paramset_set_frozen(&ps, iw, false);
    assert_ptr_equal(w->grad, ps.grad + ps.offsets[iw]);
    assert_true(gtl__requires_grad(w));
    assert_true(w->grad[0] == 2.0f);
    gtl__paramset_set_frozen(&ps, ie, false);
    assert_ptr_equal(e->grad, ps.grad + ps.offsets[ie]);
    assert_true(gtl__requires_grad(e));

    /* Thawing before any blob exists sets the flag but leaves grad NULL. */
    gtl__paramset p2;
    gtl__paramset_init(&p2);
    assert_int_equal(gtl__paramset_add(&p2, "x", 1, sb, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&p2), GTL_STATUS_OK);
    gtl__paramset_set_frozen(&p2, 0, true);
    gtl__paramset_set_frozen(&p2, 0, false);
    assert_true(gtl__requires_grad(&p2.params[0]));
    assert_null(p2.params[0].grad);
    gtl__paramset_fini(&p2);

    gtl__paramset_fini(&ps);
    assert_in_use(0, 0);
}

static int check_no_leak(void **state)
{
    (void)state;
    uint64_t bytes = 0, blocks = 0;
    gtl_memory_in_use(&bytes, &blocks);
    if (bytes != 0 || blocks != 0) {
        fprintf(stderr, "leak: %llu bytes in %llu blocks\n", (unsigned long long)bytes,
                (unsigned long long)blocks);
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_shapes, check_no_leak),
        cmocka_unit_test_teardown(test_bf16_round_trip, check_no_leak),
        cmocka_unit_test_teardown(test_bf16_rounding, check_no_leak),
        cmocka_unit_test_teardown(test_arena_alignment, check_no_leak),
        cmocka_unit_test_teardown(test_arena_reset_reuses, check_no_leak),
        cmocka_unit_test_teardown(test_arena_overflow_then_steady, check_no_leak),
        cmocka_unit_test_teardown(test_paramset_layout, check_no_leak),
        cmocka_unit_test_teardown(test_paramset_growth_and_bad_args, check_no_leak),
        cmocka_unit_test_teardown(test_paramset_grad_blob_and_frozen, check_no_leak),
    };
    return cmocka_run_group_tests_name("tensor", tests, NULL, NULL);
}
