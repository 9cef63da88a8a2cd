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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
