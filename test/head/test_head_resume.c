/* Resume from a mid-stage checkpoint: a host training loop (stage N1, then
 * N2) is saved with its optimizer at step k (gtl_model_save: weights,
 * batch-norm statistics, RNG, stage and step counters, optimizer settings and
 * state including the live rows of the lazy adapter updates), loaded into a
 * fresh model and optimizer, and continued. After N steps every weight is
 * bit-identical to the uninterrupted run's.
 *
 * The sizes leave some of the 40 adapters inactive for the whole run, so the
 * lazy rows matter; the optimizers: Adam (L2 decay, clipping, warm-up and a
 * milestone) and SGD without momentum but with weight decay (no moments: the
 * live map in the file is the only record of which adapters were active). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "gtl/gtl.h"

static void ok_at(gtl_status st, const char *call, int line)
{
    if (st != GTL_STATUS_OK)
        fail_msg("line %d: %s: %s: %s", line, call, gtl_strerror(st), gtl_last_error());
}
#define OK(call) ok_at((call), #call, __LINE__)

enum { F = 48, H = 32, NC = 12, NM = 6, D = 40, NB = 16, NCLS = 4, STEPS = 6, MAXT = 64 };

static gtl_model *make_model(void)
{
    gtl_model *m = NULL;
    OK(gtl_model_create(&m));
    OK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, F));
    OK(gtl_model_set_i64(m, GTL_MODEL_HIDDEN_DIM, H));
    OK(gtl_model_set_i64(m, GTL_MODEL_CONCEPT_DIM, NC));
    OK(gtl_model_set_i64(m, GTL_MODEL_DISTURBANCE_DIM, NM));
    OK(gtl_model_set_i64(m, GTL_MODEL_NUM_DOMAINS, D));
    OK(gtl_model_set_i64(m, GTL_MODEL_SEED, 77));
    OK(gtl_model_init(m));
    return m;
}

static gtl_optimizer *make_opt(gtl_optim_kind kind)
{
    gtl_optimizer *o = NULL;
    OK(gtl_optimizer_create(kind, &o));
    OK(gtl_optimizer_set_f32(o, GTL_OPTIM_PARAM_LR, kind == GTL_OPTIM_SGD ? 0.05f : 2e-3f));
    OK(gtl_optimizer_set_f32(o, GTL_OPTIM_PARAM_WEIGHT_DECAY, 0.01f));
    OK(gtl_optimizer_set_f32(o, GTL_OPTIM_PARAM_CLIP_NORM, 1.0f));
    OK(gtl_optimizer_set_i64(o, GTL_OPTIM_PARAM_WARMUP_STEPS, 2));
    const int64_t ms[1] = {4};
    OK(gtl_optimizer_set_milestones(o, ms, 1));
    return o;
}

/* The host's batch of step s: deterministic, independent of the model. */
static void batch(int s, float *x, int64_t *y)
{
    uint64_t r = 0x9e3779b97f4a7c15ull * (uint64_t)(s + 1);
    for (int64_t i = 0; i < NB; i++) {
        y[i] = i % NCLS;
        for (int64_t j = 0; j < F; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((r >> 40) & 0xffff) / 65536.0f - 0.5f;
            x[i * F + j] = 4.0f * u + 0.5f * (float)y[i] * (j % 3 == 0);
        }
    }
}

/* Runs steps [from, to) of the loop: N1 for steps < STEPS, N2 after (the
 * stage switch happens at step STEPS). */
static void run(gtl_model *m, gtl_optimizer **opt, gtl_optim_kind kind, int from, int to)
{
    float x[NB * F];
    int64_t y[NB];
    for (int s = from; s < to; s++) {
        if (s == 0)
            OK(gtl_model_set_stage(m, GTL_STAGE_N1, 0));
        if (s == STEPS) {
            OK(gtl_model_set_stage(m, GTL_STAGE_N2, NCLS));
            gtl_optimizer_destroy(*opt);
            *opt = make_opt(kind);
        }
        batch(s % 2, x, y); /* a small support set, as in adaptation */
        OK(gtl_model_train_step(m, *opt, x, NB, F, s >= STEPS ? y : NULL, NULL, 0));
    }
}

typedef struct weights {
    int64_t n;
    float *v[MAXT];
    int64_t numel[MAXT];
} weights;

static void take(gtl_model *m, weights *w)
{
    OK(gtl_model_num_tensors(m, &w->n));
    assert_true(w->n <= MAXT);
    for (int64_t i = 0; i < w->n; i++) {
        OK(gtl_model_tensor_info(m, i, NULL, 0, &w->numel[i], NULL));
        w->v[i] = malloc((size_t)w->numel[i] * sizeof(float));
        OK(gtl_model_tensor_get(m, i, 0, w->v[i], (size_t)w->numel[i]));
    }
}

static void drop(weights *w)
{
    for (int64_t i = 0; i < w->n; i++)
        free(w->v[i]);
}

/* Save at step k, load, continue to 2 * STEPS; compare with the straight run. */
static void resume_case(gtl_optim_kind kind, int k, const weights *want, const char *path)
{
    gtl_model *m = make_model();
    gtl_optimizer *opt = make_opt(kind);
    run(m, &opt, kind, 0, k);
    OK(gtl_model_save(m, opt, path));
    gtl_model_destroy(m);
    gtl_optimizer_destroy(opt);

    gtl_model *m2 = NULL;
    gtl_optimizer *o2 = NULL;
    OK(gtl_model_load(path, &m2, &o2));
    assert_non_null(o2);
    run(m2, &o2, kind, k, 2 * STEPS);
    weights got;
    take(m2, &got);
    assert_int_equal(got.n, want->n);
    for (int64_t i = 0; i < got.n; i++) {
        assert_int_equal(got.numel[i], want->numel[i]);
        if (memcmp(got.v[i], want->v[i], (size_t)got.numel[i] * sizeof(float)) != 0) {
            char name[64];
            OK(gtl_model_tensor_info(m2, i, name, sizeof name, NULL, NULL));
            fail_msg("kind %d, resumed at step %d: tensor %s differs", (int)kind, k, name);
        }
    }
    drop(&got);
    gtl_model_destroy(m2);
    gtl_optimizer_destroy(o2);
    remove(path);
}

static void test_resume_bitwise(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "test_head_resume_%ld.gtl", (long)getpid());
    const gtl_optim_kind kinds[2] = {GTL_OPTIM_ADAM, GTL_OPTIM_SGD};
    for (int kk = 0; kk < 2; kk++) {
        /* The uninterrupted run. */
        gtl_model *m = make_model();
        gtl_optimizer *opt = make_opt(kinds[kk]);
        run(m, &opt, kinds[kk], 0, 2 * STEPS);
        weights want;
        take(m, &want);
        /* Some adapters never ran: the lazy rows are exercised. */
        int64_t ad = -1;
        char name[64];
        for (int64_t i = 0; i < want.n; i++) {
            OK(gtl_model_tensor_info(m, i, name, sizeof name, NULL, NULL));
            if (strcmp(name, "estimator.adapters.weight") == 0)
                ad = i;
        }
        assert_true(ad >= 0);
        gtl_model_destroy(m);
        gtl_optimizer_destroy(opt);
        gtl_model *m0 = make_model();
        weights init;
        take(m0, &init);
        int64_t row = NM * F, n_same = 0;
        for (int64_t r = 0; r < D; r++)
            n_same += memcmp(init.v[ad] + r * row, want.v[ad] + r * row,
                             (size_t)row * sizeof(float)) == 0;
        printf("kind %d: %lld of %d adapters never active\n", (int)kinds[kk],
               (long long)n_same, D);
        assert_true(n_same > 0 && n_same < D);
        drop(&init);
        gtl_model_destroy(m0);

        /* Mid-N1 (after a warm-up step, before the milestone), mid-N2. */
        resume_case(kinds[kk], 3, &want, path);
        resume_case(kinds[kk], STEPS + 2, &want, path);
        drop(&want);
    }
}

static unsigned char *read_all(const char *path, long *out_n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *out_n = n;
    return b;
}

/* The optimizer's moments are allocated without zero-filling and an
 * optimizer reset keeps its buffers for the next binding; neither may show
 * in a checkpoint. Saved mid-N1: (a) a fresh optimizer (its buffers hold the
 * NaN bytes of main()'s allocator); (b) an optimizer first trained on another
 * model of the same layout with other batches (moments everywhere), then
 * reset and used for the same run. The two files are byte-identical (the
 * never-live rows of "optim.m" and "optim.v" are exported as zeros), and
 * the loaded state continues as the uninterrupted run. */
static void test_checkpoint_bytes_reused_optimizer(void **state)
{
    (void)state;
    char pa[64], pb[64];
    snprintf(pa, sizeof pa, "test_head_resume_a_%ld.gtl", (long)getpid());
    snprintf(pb, sizeof pb, "test_head_resume_b_%ld.gtl", (long)getpid());
    const gtl_optim_kind kinds[2] = {GTL_OPTIM_ADAM, GTL_OPTIM_ADAMW};
    for (int kk = 0; kk < 2; kk++) {
        gtl_model *ma = make_model();
        gtl_optimizer *oa = make_opt(kinds[kk]);
        run(ma, &oa, kinds[kk], 0, 3);
        OK(gtl_model_save(ma, oa, pa));

        gtl_model *scratch = make_model();
        gtl_optimizer *ob = make_opt(kinds[kk]);
        float x[NB * F];
        int64_t y[NB];
        OK(gtl_model_set_stage(scratch, GTL_STAGE_N1, 0));
        for (int s = 0; s < 4; s++) {
            batch(100 + s, x, y); /* other batches: other adapters live */
            OK(gtl_model_train_step(scratch, ob, x, NB, F, NULL, NULL, 0));
        }
        OK(gtl_optimizer_reset(ob));
        gtl_model *mb = make_model();
        run(mb, &ob, kinds[kk], 0, 3);
        OK(gtl_model_save(mb, ob, pb));

        long na = 0, nb = 0;
        unsigned char *a = read_all(pa, &na), *b = read_all(pb, &nb);
        assert_int_equal(na, nb);
        assert_true(memcmp(a, b, (size_t)na) == 0);
        free(a);
        free(b);

        gtl_model *ml = NULL;
        gtl_optimizer *ol = NULL;
        OK(gtl_model_load(pa, &ml, &ol));
        run(ml, &ol, kinds[kk], 3, 5);
        run(ma, &oa, kinds[kk], 3, 5);
        weights wl, wa;
        take(ml, &wl);
        take(ma, &wa);
        for (int64_t i = 0; i < wa.n; i++)
            assert_memory_equal(wl.v[i], wa.v[i], (size_t)wa.numel[i] * sizeof(float));
        drop(&wl);
        drop(&wa);
        gtl_model_destroy(ml);
        gtl_optimizer_destroy(ol);
        gtl_model_destroy(ma);
        gtl_model_destroy(mb);
        gtl_model_destroy(scratch);
        gtl_optimizer_destroy(oa);
        gtl_optimizer_destroy(ob);
        remove(pa);
        remove(pb);
    }
}

/* An allocator that fills every new block with NaN bytes, so that memory
 * libgtl uses without initialising it shows (a size header in front of each
 * block lets realloc fill the part it adds). */
typedef struct poison_hdr {
    size_t size;
    size_t pad; /* keeps the block 16-byte aligned */
} poison_hdr;

static void *poison_malloc(void *ud, size_t size)
{
    (void)ud;
    poison_hdr *h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    memset(h + 1, 0xff, size);
    return h + 1;
}

static void poison_free(void *ud, void *p)
{
    (void)ud;
    if (p != NULL)
        free((poison_hdr *)p - 1);
}

static void *poison_realloc(void *ud, void *p, size_t size)
{
    if (p == NULL)
        return poison_malloc(ud, size);
    poison_hdr *h = (poison_hdr *)p - 1;
    size_t old = h->size;
    poison_hdr *n = realloc(h, sizeof *n + size);
    if (n == NULL)
        return NULL;
    if (size > old)
        memset((char *)(n + 1) + old, 0xff, size - old);
    n->size = size;
    return n + 1;
}

int main(void)
{
    if (gtl_set_allocator(poison_malloc, poison_realloc, poison_free, NULL) != GTL_STATUS_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bitwise),
        cmocka_unit_test(test_checkpoint_bytes_reused_optimizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
