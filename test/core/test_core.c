/* core: status names, the thread-local error message, allocator hooks and
 * accounting, the log callback, the seeded RNG, version and build
 * information, and the thread-count setting.
 *
 * Statistical RNG checks draw 1e5 samples with seeds derived from
 * gt_base_seed() (GTL_TEST_SEED replays them); tolerances are about six
 * standard errors, so a correct generator fails them with negligible
 * probability. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gtl_test.h"
#include "gtl/gtl.h"

/* ---- status names and gtl_last_error ------------------------------------ */

static void test_strerror_every_status(void **state)
{
    (void)state;
    static const struct {
        gtl_status st;
        const char *msg;
    } want[] = {
        {GTL_STATUS_OK, "ok"},
        {GTL_STATUS_INVALID_ARG, "invalid argument"},
        {GTL_STATUS_OUT_OF_MEMORY, "out of memory"},
        {GTL_STATUS_BAD_STATE, "call not valid in the current state"},
        {GTL_STATUS_IO, "input/output error"},
        {GTL_STATUS_FORMAT, "bad or corrupt format"},
        {GTL_STATUS_BACKEND, "compute backend error"},
        {GTL_STATUS_UNSUPPORTED, "unsupported"},
        {GTL_STATUS_NUMERIC, "numeric error (NaN or infinity)"},
        {GTL_STATUS_CANCELLED, "cancelled"},
        {GTL_STATUS_INTERNAL, "internal error"},
    };
    /* The values are ABI: pinned here as numbers. */
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal((int)want[i].st, (int)i);
        assert_string_equal(gtl_strerror(want[i].st), want[i].msg);
    }
    /* Every name is distinct. */
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        for (size_t j = i + 1; j < sizeof want / sizeof want[0]; j++)
            assert_string_not_equal(gtl_strerror(want[i].st), gtl_strerror(want[j].st));
    const int unknown[] = {-1, 11, 12, 100, 0x7fffffff, -0x7fffffff - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = gtl_strerror((gtl_status)unknown[i]);
        assert_non_null(s);
        assert_string_equal(s, "unknown status");
    }
}

typedef struct thread_result {
    char seen_at_start[512];
    char own_after_error[512];
    gtl_status st;
} thread_result;

static void *error_thread(void *arg)
{
    thread_result *r = arg;
    snprintf(r->seen_at_start, sizeof r->seen_at_start, "%s", gtl_last_error());
    r->st = gtl_set_num_threads(0);
    snprintf(r->own_after_error, sizeof r->own_after_error, "%s", gtl_last_error());
    return NULL;
}

static void test_last_error_thread_local(void **state)
{
    (void)state;
    assert_non_null(gtl_last_error());
    assert_int_equal(gtl_build_info(NULL, 10, NULL), GTL_STATUS_INVALID_ARG);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", gtl_last_error());
    assert_non_null(strstr(mine, "gtl_build_info"));

    /* Another thread starts with an empty message and its own error does not
     * touch this thread's. */
    thread_result r;
    memset(&r, 0, sizeof r);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, error_thread, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_string_equal(r.seen_at_start, "");
    assert_int_equal(r.st, GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(r.own_after_error, "gtl_set_num_threads"));
    assert_string_equal(gtl_last_error(), mine);

    /* gtl_strerror and gtl_last_error leave the message alone (the usage
     * example evaluates them in either order)... */
    (void)gtl_strerror(GTL_STATUS_INVALID_ARG);
    assert_string_equal(gtl_last_error(), mine);
    /* ...and a successful status-returning call clears it. */
    int32_t n = 0;
    assert_int_equal(gtl_num_threads(&n), GTL_STATUS_OK);
    assert_string_equal(gtl_last_error(), "");

    /* Each failing public call sets a message naming itself; each success
     * clears it. */
    uint64_t b, k;
    assert_int_equal(gtl_memory_in_use(NULL, &k), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl_memory_in_use"));
    assert_int_equal(gtl_memory_in_use(&b, &k), GTL_STATUS_OK);
    assert_string_equal(gtl_last_error(), "");
    assert_int_equal(gtl_set_log_callback(NULL, NULL, (gtl_log_level)7), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl_set_log_callback"));
    assert_int_equal(gtl_cpu_has_bf16(NULL), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl_cpu_has_bf16"));
    assert_int_equal(gtl_num_threads(NULL), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl_num_threads"));
    assert_int_equal(gtl_set_allocator(NULL, NULL, NULL, NULL), GTL_STATUS_OK);
    assert_string_equal(gtl_last_error(), "");
}

/* ---- allocator hooks ----------------------------------------------------- */

/* Counting hooks: a 16-byte header of our own records each block's size, so
 * the hooks know exactly what libgtl holds, independently of its counters. */
typedef struct counting {
    uint64_t n_malloc, n_realloc, n_free;
    int64_t live_blocks;
    int64_t live_bytes; /* as requested from the hooks (libgtl's header included) */
} counting;

static void *count_malloc(void *ud, size_t size)
{
    counting *c = ud;
    unsigned char *p = malloc(size + 16);
    c->n_malloc++;
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof size);
    c->live_blocks++;
    c->live_bytes += (int64_t)size;
    return p + 16;
}

static void *count_realloc(void *ud, void *ptr, size_t size)
{
    counting *c = ud;
    c->n_realloc++;
    if (ptr == NULL)
        return count_malloc(ud, size);
    unsigned char *base = (unsigned char *)ptr - 16;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *p = realloc(base, size + 16);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof size);
    c->live_bytes += (int64_t)size - (int64_t)old;
    return p + 16;
}

static void count_free(void *ud, void *ptr)
{
    counting *c = ud;
    c->n_free++;
    if (ptr == NULL)
        return;
    unsigned char *base = (unsigned char *)ptr - 16;
    size_t old;
    memcpy(&old, base, sizeof old);
    c->live_blocks--;
    c->live_bytes -= (int64_t)old;
    free(base);
}

static void assert_in_use(uint64_t want_bytes, uint64_t want_blocks)
{
    uint64_t bytes = 1, blocks = 1;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    assert_int_equal(bytes, want_bytes);
    assert_int_equal(blocks, want_blocks);
}

static void test_allocator_validation(void **state)
{
    (void)state;
    counting c;
    memset(&c, 0, sizeof c);
    assert_in_use(0, 0);

    /* All three or none: every partial combination is refused. */
    for (int mask = 1; mask < 7; mask++) {
        gtl_status st = gtl_set_allocator((mask & 1) ? count_malloc : NULL,
                                          (mask & 2) ? count_realloc : NULL,
                                          (mask & 4) ? count_free : NULL, &c);
        assert_int_equal(st, GTL_STATUS_INVALID_ARG);
        assert_non_null(strstr(gtl_last_error(), "gtl_set_allocator"));
    }
    /* Refused hooks were not installed. */
    void *p = gtl__malloc(24);
    assert_non_null(p);
    assert_int_equal(c.n_malloc, 0);
    assert_in_use(24, 1);

    /* Live blocks: switching allocators is refused in both directions. */
    assert_int_equal(gtl_set_allocator(count_malloc, count_realloc, count_free, &c),
                     GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "1 blocks"));
    assert_int_equal(gtl_set_allocator(NULL, NULL, NULL, NULL), GTL_STATUS_BAD_STATE);
    gtl__free(p);
    assert_in_use(0, 0);

    assert_int_equal(gtl_set_allocator(count_malloc, count_realloc, count_free, &c),
                     GTL_STATUS_OK);
    p = gtl__malloc_aligned(100);
    assert_non_null(p);
    assert_int_equal(c.n_malloc, 1);
    assert_int_equal(gtl_set_allocator(NULL, NULL, NULL, NULL), GTL_STATUS_BAD_STATE);
    /* A different set of hooks is refused too while blocks are live. */
    counting c2;
    memset(&c2, 0, sizeof c2);
    assert_int_equal(gtl_set_allocator(count_malloc, count_realloc, count_free, &c2),
                     GTL_STATUS_BAD_STATE);
    gtl__free_aligned(p);
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(gtl_set_allocator(NULL, NULL, NULL, NULL), GTL_STATUS_OK);
    /* Back on malloc: the counting hooks see nothing more. */
    p = gtl__malloc(8);
    gtl__free(p);
    assert_int_equal(c.n_malloc, 1);
    assert_int_equal(c.n_free, 1);

    uint64_t b;
    assert_int_equal(gtl_memory_in_use(&b, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_memory_in_use(NULL, &b), GTL_STATUS_INVALID_ARG);
    assert_int_equal(b, 0); /* zeroed on failure */
}

/* The hooks see every allocation of a realistic workload (context, tape,
 * parameters, forward and backward), and libgtl's own accounting agrees
 * with theirs at every point. */
static void test_allocator_counts_everything(void **state)
{
    (void)state;
    counting c;
    memset(&c, 0, sizeof c);
    assert_in_use(0, 0);
    assert_int_equal(gtl_set_allocator(count_malloc, count_realloc, count_free, &c),
                     GTL_STATUS_OK);
    uint64_t calls0 = gtl__alloc_count();

    gtl__ctx *ctx = NULL;
    gtl__tape *tape = NULL;
    gtl__rng rng;
    gtl__rng_seed(&rng, 1);
    assert_int_equal(gtl__ctx_create(&ctx), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_create(ctx, &rng, &tape), GTL_STATUS_OK);
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    int64_t ws[2] = {5, 7}, bs[1] = {5}, xs[2] = {3, 7};
    int64_t iw, ib;
    assert_int_equal(gtl__paramset_add(&ps, "w", 2, ws, &iw), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(&ps, "b", 1, bs, &ib), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_OK);
    gtl__rng_fill_normal(&rng, ps.data, ps.n_total, 0.0f, 0.5f);

    gtl__tensor *x, *y, *s;
    assert_int_equal(gtl__tape_leaf(tape, 2, xs, NULL, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__op_linear(tape, x, gtl__paramset_get(&ps, iw),
                                    gtl__paramset_get(&ps, ib), GTL__ACT_RELU, &y),
                     GTL_STATUS_OK);
    assert_int_equal(gtl__op_sum(tape, y, -1, false, &s), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(tape, s), GTL_STATUS_OK);

    /* Every gtl__malloc-family call reached a hook, and nothing else did. */
    assert_int_equal(c.n_malloc + c.n_realloc, gtl__alloc_count() - calls0);
    assert_true(c.n_malloc > 0);
    uint64_t bytes, blocks;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    assert_int_equal((int64_t)blocks, c.live_blocks);
    /* libgtl asks the hooks for 16 header bytes per block on top of its sizes. */
    assert_int_equal((int64_t)bytes + 16 * c.live_blocks, c.live_bytes);
    printf("# workload: %llu allocation calls, %llu live blocks, %llu live bytes\n",
           (unsigned long long)(gtl__alloc_count() - calls0), (unsigned long long)blocks,
           (unsigned long long)bytes);

    gtl__paramset_fini(&ps);
    gtl__tape_destroy(tape);
    gtl__ctx_destroy(ctx);
    assert_in_use(0, 0);
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(c.live_bytes, 0);
    assert_int_equal(gtl_set_allocator(NULL, NULL, NULL, NULL), GTL_STATUS_OK);
}

/* ---- logging ------------------------------------------------------------- */

typedef struct log_sink {
    int n[4];
    int n_total;
    char last[1100];
} log_sink;

static void on_log(void *ud, gtl_log_level level, const char *msg)
{
    log_sink *s = ud;
    if ((int)level >= 0 && (int)level < 4)
        s->n[level]++;
    s->n_total++;
    snprintf(s->last, sizeof s->last, "%s", msg);
}

/* Something from every level, plus failing public calls and a primitive
 * creation (which logs its kernel at DEBUG). */
static void emit_everything(void)
{
    gtl__log(GTL_LOG_ERROR, "e %d", 0);
    gtl__log(GTL_LOG_WARN, "w %d", 1);
    gtl__log(GTL_LOG_INFO, "i %d", 2);
    gtl__log(GTL_LOG_DEBUG, "d %d", 3);
    (void)gtl_set_num_threads(-3);
    (void)gtl_build_info(NULL, 0, NULL);
    gtl__ctx *ctx = NULL;
    gtl__tape *tape = NULL;
    if (gtl__ctx_create(&ctx) != GTL_STATUS_OK)
        return;
    if (gtl__tape_create(ctx, NULL, &tape) == GTL_STATUS_OK) {
        int64_t ne[2] = {2, 3};
        gtl__tensor *a, *y;
        if (gtl__tape_leaf(tape, 2, ne, NULL, true, &a) == GTL_STATUS_OK)
            (void)gtl__op_act(tape, a, GTL__ACT_GELU, &y);
        gtl__tape_destroy(tape);
    }
    gtl__ctx_destroy(ctx);
}

/* Runs emit_everything() with stdout and stderr redirected to a temporary
 * file; returns how many bytes were written to them. */
static long captured_output_of_emit(void)
{
    fflush(stdout);
    fflush(stderr);
    FILE *tmp = tmpfile();
    if (tmp == NULL)
        return -1;
    int out = dup(1), err = dup(2);
    dup2(fileno(tmp), 1);
    dup2(fileno(tmp), 2);
    emit_everything();
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    long n = -1;
    if (fseek(tmp, 0, SEEK_END) == 0)
        n = ftell(tmp);
    fclose(tmp);
    return n;
}

static void test_log_silent_by_default(void **state)
{
    (void)state;
    assert_false(gtl__log_enabled(GTL_LOG_ERROR));
    assert_int_equal(captured_output_of_emit(), 0);
}

static void test_log_levels_and_reset(void **state)
{
    (void)state;
    log_sink s;
    memset(&s, 0, sizeof s);
    assert_int_equal(gtl_set_log_callback(on_log, &s, GTL_LOG_WARN), GTL_STATUS_OK);
    gtl__log(GTL_LOG_ERROR, "error %d", 1);
    gtl__log(GTL_LOG_WARN, "warn %s", "x");
    gtl__log(GTL_LOG_INFO, "info");
    gtl__log(GTL_LOG_DEBUG, "debug");
    assert_int_equal(s.n[GTL_LOG_ERROR], 1);
    assert_int_equal(s.n[GTL_LOG_WARN], 1);
    assert_int_equal(s.n_total, 2);
    assert_string_equal(s.last, "warn x");
    assert_true(gtl__log_enabled(GTL_LOG_WARN));
    assert_false(gtl__log_enabled(GTL_LOG_INFO));

    /* Errors are logged at DEBUG, with the status name. */
    memset(&s, 0, sizeof s);
    assert_int_equal(gtl_set_log_callback(on_log, &s, GTL_LOG_DEBUG), GTL_STATUS_OK);
    assert_int_equal(gtl_set_num_threads(0), GTL_STATUS_INVALID_ARG);
    assert_int_equal(s.n[GTL_LOG_DEBUG], 1);
    assert_non_null(strstr(s.last, "invalid argument"));
    assert_non_null(strstr(s.last, "gtl_set_num_threads"));

    /* ERROR only. */
    memset(&s, 0, sizeof s);
    assert_int_equal(gtl_set_log_callback(on_log, &s, GTL_LOG_ERROR), GTL_STATUS_OK);
    emit_everything();
    assert_int_equal(s.n[GTL_LOG_ERROR], 1);
    assert_int_equal(s.n_total, 1);

    /* Long messages are truncated, not overflowed, and stay one string. */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gtl__log(GTL_LOG_ERROR, "%s", big);
    assert_true(strlen(s.last) < 1024);

    /* A bad level is refused and leaves the current callback in place. */
    memset(&s, 0, sizeof s);
    assert_int_equal(gtl_set_log_callback(on_log, &s, (gtl_log_level)4), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_set_log_callback(on_log, &s, (gtl_log_level)-1),
                     GTL_STATUS_INVALID_ARG);
    gtl__log(GTL_LOG_ERROR, "still here");
    assert_int_equal(s.n_total, 1);

    /* NULL restores silence: no callback, nothing printed. */
    assert_int_equal(gtl_set_log_callback(NULL, NULL, GTL_LOG_DEBUG), GTL_STATUS_OK);
    memset(&s, 0, sizeof s);
    assert_false(gtl__log_enabled(GTL_LOG_ERROR));
    assert_int_equal(captured_output_of_emit(), 0);
    assert_int_equal(s.n_total, 0);
}

/* ---- RNG ------------------------------------------------------------------ */

static void test_rng_known_answers(void **state)
{
    (void)state;
    /* xoshiro256** seeded by splitmix64: the streams are part of what makes
     * runs reproducible across versions, so pin the first outputs (computed
     * with an independent Python implementation). */
    gtl__rng r;
    gtl__rng_seed(&r, 0);
    assert_true(gtl__rng_u64(&r) == 0x99ec5f36cb75f2b4ull);
    assert_true(gtl__rng_u64(&r) == 0xbf6e1f784956452aull);
    assert_true(gtl__rng_u64(&r) == 0x1a5f849d4933e6e0ull);
    gtl__rng_seed(&r, 12345);
    assert_true(gtl__rng_u64(&r) == 0xbe6a36374160d49bull);
    assert_true(gtl__rng_u64(&r) == 0x214aaa0637a688c6ull);
    assert_true(gtl__rng_u64(&r) == 0xf69d16de9954d388ull);
}

static void test_rng_streams(void **state)
{
    (void)state;
    uint64_t seed = gt_base_seed();
    gtl__rng a, b, c;
    gtl__rng_seed(&a, seed);
    gtl__rng_seed(&b, seed);
    gtl__rng_seed(&c, seed + 1);
    int n_same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = gtl__rng_u64(&a), y = gtl__rng_u64(&b), z = gtl__rng_u64(&c);
        assert_true(x == y);
        n_same_c += x == z;
    }
    assert_int_equal(n_same_c, 0);
    /* Mixed draws (the normal's cached spare included) stay in step. */
    for (int i = 0; i < 1000; i++) {
        float x = (i % 3 == 0) ? gtl__rng_normal(&a) : gtl__rng_uniform(&a);
        float y = (i % 3 == 0) ? gtl__rng_normal(&b) : gtl__rng_uniform(&b);
        assert_true(x == y);
    }
    /* Re-seeding forgets the spare normal. */
    gtl__rng_seed(&a, seed);
    float n1 = gtl__rng_normal(&a);
    (void)gtl__rng_normal(&b); /* b may now hold a spare */
    gtl__rng_seed(&b, seed);
    assert_true(gtl__rng_normal(&b) == n1);
    /* A copied state continues identically (how the gradient checker replays). */
    gtl__rng saved = a;
    float u1 = gtl__rng_uniform(&a);
    assert_true(gtl__rng_uniform(&saved) == u1);
}

static void test_rng_uniform(void **state)
{
    (void)state;
    gtl__rng r;
    gtl__rng_seed(&r, gt_base_seed() ^ 0x11);
    const int n = 100000;
    double s = 0.0, s2 = 0.0, sd = 0.0;
    float lo = 1.0f, hi = 0.0f;
    int bins[10] = {0};
    for (int i = 0; i < n; i++) {
        float u = gtl__rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        s += u;
        s2 += (double)u * u;
        bins[(int)(u * 10.0f)]++;
        double d = gtl__rng_uniform_f64(&r);
        assert_true(d >= 0.0 && d < 1.0);
        sd += d;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    printf("# uniform: mean %.5f var %.5f min %.2g max %.7f\n", mean, var, (double)lo,
           (double)hi);
    assert_true(fabs(mean - 0.5) < 0.006);        /* se 0.0009 */
    assert_true(fabs(var - 1.0 / 12.0) < 0.003);  /* se 0.0003 */
    assert_true(fabs(sd / n - 0.5) < 0.006);
    assert_true(lo < 1e-3f && hi > 0.999f);
    double chi2 = 0.0;
    for (int i = 0; i < 10; i++)
        chi2 += (bins[i] - n / 10.0) * (bins[i] - n / 10.0) / (n / 10.0);
    assert_true(chi2 < 40.0); /* 9 dof: p < 1e-5 */

    float buf[1000];
    gtl__rng_fill_uniform(&r, buf, 1000, -3.0f, 5.0f);
    for (int i = 0; i < 1000; i++)
        assert_true(buf[i] >= -3.0f && buf[i] < 5.0f);
}

static void test_rng_normal(void **state)
{
    (void)state;
    gtl__rng r;
    gtl__rng_seed(&r, gt_base_seed() ^ 0x22);
    const int n = 100000;
    double s = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0;
    int n_within_1 = 0;
    for (int i = 0; i < n; i++) {
        double z = gtl__rng_normal(&r);
        assert_true(isfinite(z));
        s += z;
        s2 += z * z;
        s3 += z * z * z;
        s4 += z * z * z * z;
        n_within_1 += fabs(z) < 1.0;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    printf("# normal: mean %.5f var %.5f skew %.4f kurt %.4f P(|z|<1) %.4f\n", mean, var,
           s3 / n, s4 / n, (double)n_within_1 / n);
    assert_true(fabs(mean) < 0.02);        /* se 0.0032 */
    assert_true(fabs(var - 1.0) < 0.03);   /* se 0.0045 */
    assert_true(fabs(s3 / n) < 0.05);      /* se 0.0077 */
    assert_true(fabs(s4 / n - 3.0) < 0.15); /* se 0.031 */
    assert_true(fabs((double)n_within_1 / n - 0.682689) < 0.009);

    float buf[20000];
    gtl__rng_fill_normal(&r, buf, 20000, 2.0f, 0.5f);
    double m = 0.0, v = 0.0;
    for (int i = 0; i < 20000; i++)
        m += buf[i];
    m /= 20000;
    for (int i = 0; i < 20000; i++)
        v += (buf[i] - m) * (buf[i] - m);
    v /= 20000;
    assert_true(fabs(m - 2.0) < 0.015);
    assert_true(fabs(v - 0.25) < 0.015);
}

static void test_rng_below(void **state)
{
    (void)state;
    gtl__rng r;
    gtl__rng_seed(&r, gt_base_seed() ^ 0x33);
    for (int i = 0; i < 100; i++)
        assert_true(gtl__rng_below(&r, 1) == 0);

    /* Small n: every value, equally often (chi-square, 6 bins). */
    const int n = 60000;
    int bins[6] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t v = gtl__rng_below(&r, 6);
        assert_true(v < 6);
        bins[v]++;
    }
    double chi2 = 0.0;
    for (int i = 0; i < 6; i++)
        chi2 += (bins[i] - n / 6.0) * (bins[i] - n / 6.0) / (n / 6.0);
    assert_true(chi2 < 30.0); /* 5 dof: p < 2e-5 */

    /* Large n where plain modulo would be badly biased: n = 3 * 2^62, so
     * u64 % n maps [0, 2^62) twice as often as the rest (1/2 instead of 1/3). */
    const uint64_t big = 3ull << 62;
    int low = 0;
    for (int i = 0; i < n; i++) {
        uint64_t v = gtl__rng_below(&r, big);
        assert_true(v < big);
        low += v < (1ull << 62);
    }
    double frac = (double)low / n;
    printf("# rng_below(3*2^62): fraction below 2^62 = %.4f (unbiased 1/3)\n", frac);
    assert_true(fabs(frac - 1.0 / 3.0) < 0.012); /* se 0.0019 */

    /* Extremes: n = 2^64 - 1, and a power of two. */
    for (int i = 0; i < 1000; i++) {
        assert_true(gtl__rng_below(&r, UINT64_MAX) < UINT64_MAX);
        assert_true(gtl__rng_below(&r, 1ull << 40) < (1ull << 40));
    }

    /* The shuffle is a permutation. */
    int64_t a[257];
    int seen[257] = {0};
    for (int i = 0; i < 257; i++)
        a[i] = i;
    gtl__rng_shuffle_i64(&r, a, 257);
    int n_fixed = 0;
    for (int i = 0; i < 257; i++) {
        assert_true(a[i] >= 0 && a[i] < 257);
        seen[a[i]]++;
        n_fixed += a[i] == i;
    }
    for (int i = 0; i < 257; i++)
        assert_int_equal(seen[i], 1);
    assert_true(n_fixed < 10);
    gtl__rng_shuffle_i64(&r, a, 0);
    gtl__rng_shuffle_i64(&r, a, 1);
}

/* ---- version, build info, threads ----------------------------------------- */

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(gtl_version_number(), GTL_VERSION_NUMBER);
    assert_int_equal(GTL_VERSION_NUMBER,
                     GTL_VERSION_MAJOR * 10000 + GTL_VERSION_MINOR * 100 + GTL_VERSION_PATCH);
    assert_string_equal(gtl_version_string(), GTL_VERSION_STRING);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", GTL_VERSION_MAJOR, GTL_VERSION_MINOR,
             GTL_VERSION_PATCH);
    assert_string_equal(gtl_version_string(), want);
    assert_true(gtl_version_string() == gtl_version_string()); /* static */
}

static void test_build_info(void **state)
{
    (void)state;
    char buf[512];
    size_t len = 12345;
    assert_int_equal(gtl_build_info(buf, sizeof buf, &len), GTL_STATUS_OK);
    printf("# %s\n", buf);
    assert_int_equal(len, strlen(buf));
    char want[64];
    snprintf(want, sizeof want, "libgtl %s;", GTL_VERSION_STRING);
    assert_true(strncmp(buf, want, strlen(want)) == 0);
    assert_non_null(strstr(buf, "oneDNN 2."));
    snprintf(want, sizeof want, "isa %s;", gtl__dnnl_isa_name());
    assert_non_null(strstr(buf, want));
    assert_string_not_equal(gtl__dnnl_isa_name(), "unknown");
    int32_t bf16 = -1;
    assert_int_equal(gtl_cpu_has_bf16(&bf16), GTL_STATUS_OK);
    assert_true(bf16 == 0 || bf16 == 1);
    assert_non_null(strstr(buf, bf16 ? "bf16 yes" : "bf16 no"));
    int32_t nt = 0;
    assert_int_equal(gtl_num_threads(&nt), GTL_STATUS_OK);
    snprintf(want, sizeof want, "threads %d", (int)nt);
    assert_non_null(strstr(buf, want));

    /* Exactly enough room; out_len may be NULL. */
    char exact[512];
    assert_int_equal(gtl_build_info(exact, len + 1, NULL), GTL_STATUS_OK);
    assert_string_equal(exact, buf);

    /* One byte short, or no room at all: INVALID_ARG and nothing written. */
    const size_t caps[] = {len, 1, 0};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char small[512];
        memset(small, 'X', sizeof small);
        size_t l2 = 777;
        assert_int_equal(gtl_build_info(small, caps[i], &l2), GTL_STATUS_INVALID_ARG);
        assert_non_null(strstr(gtl_last_error(), "dst_capacity"));
        assert_int_equal(l2, 0);
        for (size_t j = 0; j < sizeof small; j++)
            assert_int_equal(small[j], 'X');
    }
    size_t l3 = 5;
    assert_int_equal(gtl_build_info(NULL, 512, &l3), GTL_STATUS_INVALID_ARG);
    assert_int_equal(l3, 0);
    assert_int_equal(gtl_build_info(NULL, 0, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_cpu_has_bf16(NULL), GTL_STATUS_INVALID_ARG);
}

static void test_threads(void **state)
{
    (void)state;
    int32_t n0 = 0;
    assert_int_equal(gtl_num_threads(&n0), GTL_STATUS_OK);
    assert_true(n0 >= 1);
    const int32_t bad[] = {0, -1, 5000, 4097, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gtl_set_num_threads(bad[i]), GTL_STATUS_INVALID_ARG);
        assert_non_null(strstr(gtl_last_error(), "n_threads"));
        int32_t n = 0;
        assert_int_equal(gtl_num_threads(&n), GTL_STATUS_OK);
        assert_int_equal(n, n0); /* unchanged */
    }
    assert_int_equal(gtl_set_num_threads(1), GTL_STATUS_OK);
    int32_t n = 0;
    assert_int_equal(gtl_num_threads(&n), GTL_STATUS_OK);
    assert_int_equal(n, 1);
    char buf[512];
    assert_int_equal(gtl_build_info(buf, sizeof buf, NULL), GTL_STATUS_OK);
    assert_non_null(strstr(buf, "threads 1"));
    /* The upper limit itself is accepted (no parallel region runs before the
     * restore below). */
    assert_int_equal(gtl_set_num_threads(4096), GTL_STATUS_OK);
    assert_int_equal(gtl_num_threads(&n), GTL_STATUS_OK);
    assert_int_equal(n, 4096);
    assert_int_equal(gtl_set_num_threads(n0), GTL_STATUS_OK);
    assert_int_equal(gtl_num_threads(&n), GTL_STATUS_OK);
    assert_int_equal(n, n0);
    assert_int_equal(gtl_num_threads(NULL), GTL_STATUS_INVALID_ARG);
}

/* Every test leaves nothing allocated behind. */
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
        cmocka_unit_test_teardown(test_strerror_every_status, check_no_leak),
        cmocka_unit_test_teardown(test_last_error_thread_local, check_no_leak),
        cmocka_unit_test_teardown(test_allocator_validation, check_no_leak),
        cmocka_unit_test_teardown(test_allocator_counts_everything, check_no_leak),
        cmocka_unit_test_teardown(test_log_silent_by_default, check_no_leak),
        cmocka_unit_test_teardown(test_log_levels_and_reset, check_no_leak),
        cmocka_unit_test_teardown(test_rng_known_answers, check_no_leak),
        cmocka_unit_test_teardown(test_rng_streams, check_no_leak),
        cmocka_unit_test_teardown(test_rng_uniform, check_no_leak),
        cmocka_unit_test_teardown(test_rng_normal, check_no_leak),
        cmocka_unit_test_teardown(test_rng_below, check_no_leak),
        cmocka_unit_test_teardown(test_version, check_no_leak),
        cmocka_unit_test_teardown(test_build_info, check_no_leak),
        cmocka_unit_test_teardown(test_threads, check_no_leak),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
