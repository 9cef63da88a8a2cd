/* Evaluation module (include/gtl/eval.h, lib/eval/): baselines against hand
 * values and numpy/scipy references (eval_ref.h, from gen_eval_ref.py),
 * metrics, the episodic and all-way runners, replay of saved episodes,
 * callbacks, GTL through the runner, reports, bad arguments, and the speed
 * of 600 nearest-centroid episodes at F = 1280. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "gtl/gtl.h"
#include "eval_ref.h"

#define OK(x) assert_int_equal((x), GTL_STATUS_OK)
#define RGB GTL_MODALITY_RGB
#define SKETCH GTL_MODALITY_SKETCH

/* ---- helpers ---- */

static uint64_t lcg_state;

static double urand(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) / 9007199254740992.0;
}

static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* A source of n_cls classes (labels 10, 11, ...), each with n_per RGB and
 * n_per sketch samples around a class mean; the i-th RGB and sketch sample of
 * a class share a pair id. noise controls the difficulty. */
static gtl_dataset *make_source(int64_t n_cls, int64_t n_per, int64_t F, double noise,
                                uint64_t seed)
{
    lcg_state = seed;
    int64_t n = n_cls * n_per * 2;
    float *x = malloc((size_t)(n * F) * sizeof(float));
    float *mean = malloc((size_t)F * sizeof(float));
    float *shift = malloc((size_t)F * sizeof(float));
    int64_t *y = malloc((size_t)n * sizeof(int64_t)), *pair = malloc((size_t)n * sizeof(int64_t));
    int32_t *mod = malloc((size_t)n * sizeof(int32_t));
    assert_non_null(x);
    for (int64_t f = 0; f < F; f++)
        shift[f] = (float)nrand(); /* a modality shift shared by every sketch */
    int64_t r = 0;
    for (int64_t c = 0; c < n_cls; c++) {
        for (int64_t f = 0; f < F; f++)
            mean[f] = (float)nrand();
        for (int64_t i = 0; i < n_per; i++)
            for (int m = 0; m < 2; m++, r++) {
                for (int64_t f = 0; f < F; f++)
                    x[r * F + f] = mean[f] + (float)(noise * nrand()) + (m ? 0.5f * shift[f] : 0);
                y[r] = 10 + c;
                mod[r] = m ? SKETCH : RGB;
                pair[r] = c * n_per + i;
            }
    }
    gtl_dataset *ds = NULL;
    OK(gtl_dataset_create(F, &ds));
    OK(gtl_dataset_add(ds, x, n, y, mod, pair));
    free(x);
    free(mean);
    free(shift);
    free(y);
    free(pair);
    free(mod);
    return ds;
}

static gtl_dataset *make_set(const float *x, int64_t n, int64_t F, const int64_t *y,
                             const int32_t *mod)
{
    gtl_dataset *ds = NULL;
    OK(gtl_dataset_create(F, &ds));
    OK(gtl_dataset_add(ds, x, n, y, mod, NULL));
    return ds;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- nearest centroid ---- */

static void test_ncm_hand(void **state)
{
    (void)state;
    /* class 4: (1,0), (2,0) -> centroid (1,0); class 9: (0,1), (0,3) -> (0,1). */
    const float xs[] = {1, 0, 0, 1, 2, 0, 0, 3};
    const int64_t ys[] = {4, 9, 4, 9};
    const float xq[] = {3, 1, 1, 2, 0, 0, -1, 0};
    const int64_t yq[] = {4, 9, 4, 9};
    gtl_dataset *s = make_set(xs, 4, 2, ys, NULL), *q = make_set(xq, 4, 2, yq, NULL);
    int64_t pred[4];
    float sc[8];
    OK(gtl_eval_nearest_centroid(s, q, 0, pred, 4, sc, 8));
    const float want[8] = {3 / sqrtf(10), 1 / sqrtf(10), 1 / sqrtf(5), 2 / sqrtf(5),
                           0, 0, -1, 0};
    for (int i = 0; i < 8; i++)
        assert_true(fabsf(sc[i] - want[i]) < 1e-6f);
    assert_int_equal(pred[0], 4);
    assert_int_equal(pred[1], 9);
    assert_int_equal(pred[2], 4); /* zero query: tie -> smaller label */
    assert_int_equal(pred[3], 9); /* scores -1 vs 0 */
    /* Centred: support mean (0.75, 1); class 4 rows (0.25,-1), (1.25,-1),
     * class 9 rows (-0.75,0), (-0.75,2). Query (3,1) -> (2.25, 0). */
    OK(gtl_eval_nearest_centroid(s, q, 1, pred, 4, sc, 8));
    double a1 = 1 / sqrt(0.25 * 0.25 + 1), a2 = 1 / sqrt(1.25 * 1.25 + 1);
    double c4x = 0.5 * (0.25 * a1 + 1.25 * a2), c4y = 0.5 * (-a1 - a2);
    double b2 = 1 / sqrt(0.75 * 0.75 + 4);
    double c9x = 0.5 * (-1 + -0.75 * b2), c9y = 0.5 * (0 + 2 * b2);
    double w4 = c4x / sqrt(c4x * c4x + c4y * c4y), w9 = c9x / sqrt(c9x * c9x + c9y * c9y);
    assert_true(fabs(sc[0] - w4) < 1e-6);
    assert_true(fabs(sc[1] - w9) < 1e-6);
    gtl_dataset_destroy(s);
    gtl_dataset_destroy(q);
}

static void test_ncm_reference(void **state)
{
    (void)state;
    gtl_dataset *s = make_set(ref_xs, REF_S, REF_F, ref_ys, NULL);
    gtl_dataset *q = make_set(ref_xq, REF_Q, REF_F, ref_yq, NULL);
    int64_t pred[REF_Q];
    float sc[REF_Q * REF_C];
    for (int centred = 0; centred < 2; centred++) {
        const double *ref = centred ? ref_ncm_centred : ref_ncm_raw;
        OK(gtl_eval_nearest_centroid(s, q, centred, pred, REF_Q, sc, REF_Q * REF_C));
        double worst = 0;
        for (int i = 0; i < REF_Q * REF_C; i++)
            worst = fmax(worst, fabs(sc[i] - ref[i]));
        printf("nearest centroid (%s) vs numpy: max |diff| = %.3g\n", centred ? "centred" : "raw",
               worst);
        assert_true(worst < 2e-6);
        for (int i = 0; i < REF_Q; i++) {
            int best = 0;
            for (int c = 1; c < REF_C; c++)
                if (ref[i * REF_C + c] > ref[i * REF_C + best])
                    best = c;
            assert_int_equal(pred[i], ref_labels[best]);
        }
    }
    gtl_dataset_destroy(s);
    gtl_dataset_destroy(q);
}

/* ---- linear probe ---- */

static void test_probe_reference(void **state)
{
    (void)state;
    gtl_dataset *s = make_set(ref_xs, REF_S, REF_F, ref_ys, NULL);
    gtl_dataset *q = make_set(ref_xq, REF_Q, REF_F, ref_yq, NULL);
    int64_t pred[REF_Q];
    float pr[REF_Q * REF_C];
    struct { float l2; int64_t iters; const double *ref; } cases[2] = {
        {REF_PROBE_L2_A, 100, ref_probe_a}, {REF_PROBE_L2_B, 300, ref_probe_b}};
    for (int k = 0; k < 2; k++) {
        OK(gtl_eval_linear_probe(s, q, cases[k].iters, cases[k].l2, pred, REF_Q, pr,
                                 REF_Q * REF_C));
        double worst = 0;
        for (int i = 0; i < REF_Q * REF_C; i++)
            worst = fmax(worst, fabs(pr[i] - cases[k].ref[i]));
        printf("linear probe l2=%g vs scipy L-BFGS-B: max |diff| of probabilities = %.3g\n",
               (double)cases[k].l2, worst);
        assert_true(worst < 1e-5);
        for (int i = 0; i < REF_Q; i++) {
            int best = 0;
            for (int c = 1; c < REF_C; c++)
                if (cases[k].ref[i * REF_C + c] > cases[k].ref[i * REF_C + best])
                    best = c;
            assert_int_equal(pred[i], ref_labels[best]);
        }
    }
    gtl_dataset_destroy(s);
    gtl_dataset_destroy(q);
}

static void test_probe_separable(void **state)
{
    (void)state;
    /* 4 well-separated classes in 16-D; the probe must fit the support
     * exactly and classify fresh queries correctly, bit-identically twice. */
    gtl_dataset *src = make_source(4, 10, 16, 0.3, 7);
    gtl_episode *ep = NULL;
    OK(gtl_episode_create(&ep));
    OK(gtl_episode_sample(ep, src, 4, 3, 6, GTL_MODALITY_BIT(RGB), GTL_MODALITY_BIT(RGB), 1));
    const gtl_dataset *s = gtl_episode_support(ep), *q = gtl_episode_query(ep);
    int64_t pred[24], pred2[24], ps[12];
    float pr[24 * 4], pr2[24 * 4];
    OK(gtl_eval_linear_probe(s, s, 100, 0.01f, ps, 12, NULL, 0));
    double acc;
    OK(gtl_eval_accuracy(s, ps, 12, &acc, NULL, NULL, 0));
    assert_true(acc == 1.0);
    OK(gtl_eval_linear_probe(s, q, 100, 0.01f, pred, 24, pr, 96));
    OK(gtl_eval_accuracy(q, pred, 24, &acc, NULL, NULL, 0));
    assert_true(acc == 1.0);
    OK(gtl_eval_linear_probe(s, q, 100, 0.01f, pred2, 24, pr2, 96));
    assert_memory_equal(pr, pr2, sizeof pr);
    for (int i = 0; i < 24; i++) {
        float sum = pr[i * 4] + pr[i * 4 + 1] + pr[i * 4 + 2] + pr[i * 4 + 3];
        assert_true(fabsf(sum - 1) < 1e-5f);
    }
    gtl_episode_destroy(ep);
    gtl_dataset_destroy(src);
}

/* ---- metrics ---- */

static void test_mean_ci(void **state)
{
    (void)state;
    const double v[] = {0.5, 0.7, NAN, 0.9};
    double mean, ci;
    int64_t n;
    OK(gtl_eval_mean_ci(v, 4, &mean, &ci, &n));
    assert_int_equal(n, 3);
    assert_true(fabs(mean - 0.7) < 1e-15);
    /* std (n-1) = sqrt((0.04 + 0 + 0.04) / 2) = 0.2 */
    assert_true(fabs(ci - 1.96 * 0.2 / sqrt(3.0)) < 1e-15);
    OK(gtl_eval_mean_ci(v, 1, &mean, &ci, &n));
    assert_true(mean == 0.5 && isnan(ci) && n == 1);
    OK(gtl_eval_mean_ci(v + 2, 1, &mean, &ci, &n));
    assert_true(isnan(mean) && isnan(ci) && n == 0);
    const double bad[] = {0.5, INFINITY};
    assert_int_equal(gtl_eval_mean_ci(bad, 2, &mean, &ci, &n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_mean_ci(NULL, 2, &mean, &ci, &n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_mean_ci(v, 0, &mean, &ci, &n), GTL_STATUS_INVALID_ARG);
}

static void test_accuracy_per_modality(void **state)
{
    (void)state;
    const float x[6] = {0};
    const int64_t y[6] = {0, 1, 2, 0, 1, 2};
    const int32_t mod[6] = {RGB, RGB, RGB, SKETCH, SKETCH, 20};
    const int64_t pred[6] = {0, 1, 0, 0, 2, 2};
    gtl_dataset *q = make_set(x, 6, 1, y, mod);
    double acc, per[GTL_EVAL_NUM_MODALITIES];
    int64_t cnt[GTL_EVAL_NUM_MODALITIES];
    OK(gtl_eval_accuracy(q, pred, 6, &acc, per, cnt, GTL_EVAL_NUM_MODALITIES));
    assert_true(fabs(acc - 4.0 / 6) < 1e-15);
    assert_true(fabs(per[RGB] - 2.0 / 3) < 1e-15);
    assert_true(per[SKETCH] == 0.5);
    assert_true(per[20] == 1.0);
    assert_true(isnan(per[GTL_MODALITY_DEPTH]));
    assert_int_equal(cnt[RGB], 3);
    assert_int_equal(cnt[SKETCH], 2);
    assert_int_equal(cnt[GTL_MODALITY_DEPTH], 0);
    int64_t cm[9];
    OK(gtl_eval_confusion(q, pred, 6, 3, cm, 9));
    const int64_t want[9] = {2, 0, 0, 0, 1, 1, 1, 0, 1};
    assert_memory_equal(cm, want, sizeof want);
    assert_int_equal(gtl_eval_confusion(q, pred, 6, 2, cm, 9), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_confusion(q, pred, 6, 3, cm, 8), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_accuracy(q, pred, 5, &acc, NULL, NULL, 0), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_accuracy(q, pred, 6, &acc, per, NULL, 31), GTL_STATUS_INVALID_ARG);
    gtl_dataset_destroy(q);
}

/* ---- runners ---- */

static gtl_evaluator *make_ev(gtl_eval_method m, int64_t n_way, int64_t k, int64_t q,
                              int64_t episodes, int64_t seed)
{
    gtl_evaluator *ev = NULL;
    OK(gtl_evaluator_create(m, &ev));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, n_way));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, k));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_Q_QUERY, q));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_EPISODES, episodes));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_SEED, seed));
    return ev;
}

static double *accs(const gtl_evaluator *ev, int32_t modality, int64_t *out_n)
{
    int64_t n;
    OK(gtl_evaluator_accuracies(ev, modality, NULL, 0, &n));
    double *a = malloc((size_t)n * sizeof(double));
    OK(gtl_evaluator_accuracies(ev, modality, a, (size_t)n, &n));
    *out_n = n;
    return a;
}

static void test_episodic_determinism(void **state)
{
    (void)state;
    gtl_dataset *src = make_source(12, 8, 32, 2.0, 3);
    gtl_eval_method methods[3] = {GTL_EVAL_NEAREST_CENTROID, GTL_EVAL_CENTRED_CENTROID,
                                  GTL_EVAL_LINEAR_PROBE};
    const char *names[3] = {"nearest centroid", "centred centroid", "linear probe"};
    for (int k = 0; k < 3; k++) {
        gtl_evaluator *a = make_ev(methods[k], 5, 1, 4, 40, 11);
        gtl_evaluator *b = make_ev(methods[k], 5, 1, 4, 40, 11);
        gtl_evaluator *c = make_ev(methods[k], 5, 1, 4, 40, 12);
        OK(gtl_evaluator_run_episodic(a, src));
        OK(gtl_evaluator_run_episodic(b, src));
        OK(gtl_evaluator_run_episodic(c, src));
        int64_t na, nb, nc;
        double *xa = accs(a, GTL_EVAL_TOTAL, &na), *xb = accs(b, GTL_EVAL_TOTAL, &nb);
        double *xc = accs(c, GTL_EVAL_TOTAL, &nc);
        assert_int_equal(na, 40);
        assert_memory_equal(xa, xb, 40 * sizeof(double));
        assert_true(memcmp(xa, xc, 40 * sizeof(double)) != 0);
        double mean, ci, mr, ms;
        int64_t n;
        OK(gtl_evaluator_result(a, GTL_EVAL_TOTAL, &mean, &ci, &n));
        assert_int_equal(n, 40);
        assert_true(ci > 0 && mean > 0.2 && mean <= 1);
        printf("%s: 40 episodes 5-way 1-shot: %.2f +- %.2f %%\n", names[k], 100 * mean, 100 * ci);
        /* Per modality: queries come from both modalities here. */
        OK(gtl_evaluator_result(a, RGB, &mr, NULL, &n));
        assert_true(n > 0);
        OK(gtl_evaluator_result(a, SKETCH, &ms, NULL, &n));
        assert_true(n > 0);
        OK(gtl_evaluator_result(a, GTL_MODALITY_DEPTH, &mr, &ci, &n));
        assert_true(n == 0 && isnan(mr) && isnan(ci));
        /* The episode list of equal runs is equal too. */
        size_t la, lb;
        OK(gtl_evaluator_episode_list(a, NULL, 0, &la));
        OK(gtl_evaluator_episode_list(b, NULL, 0, &lb));
        assert_int_equal(la, lb);
        assert_int_equal(la, 40 * (3 + 5 + 10 + 20));
        free(xa);
        free(xb);
        free(xc);
        gtl_evaluator_destroy(a);
        gtl_evaluator_destroy(b);
        gtl_evaluator_destroy(c);
    }
    gtl_dataset_destroy(src);
}

static void test_replay(void **state)
{
    (void)state;
    gtl_dataset *src = make_source(10, 6, 24, 1.5, 5);
    /* Episode level: sampled indices rebuild an identical episode. */
    gtl_episode *ep = NULL, *ep2 = NULL;
    OK(gtl_episode_create(&ep));
    OK(gtl_episode_create(&ep2));
    assert_int_equal(gtl_episode_source_indices(ep, 0, NULL, 0, &(int64_t){0}),
                     GTL_STATUS_BAD_STATE);
    OK(gtl_episode_sample(ep, src, 4, 2, 3, 3, 3, 99));
    int64_t ns, nq, sidx[16], qidx[12], lab[4];
    OK(gtl_episode_source_indices(ep, 0, NULL, 0, &ns));
    OK(gtl_episode_source_indices(ep, 0, sidx, 16, &ns));
    OK(gtl_episode_source_indices(ep, 1, qidx, 12, &nq));
    assert_int_equal(ns, 16);
    assert_int_equal(nq, 12);
    assert_int_equal(gtl_episode_source_indices(ep, 0, sidx, 15, &ns), GTL_STATUS_INVALID_ARG);
    for (int c = 0; c < 4; c++)
        OK(gtl_episode_class_label(ep, c, &lab[c]));
    OK(gtl_episode_from_indices(ep2, src, lab, 4, sidx, 16, qidx, 12));
    for (int side = 0; side < 2; side++) {
        const gtl_dataset *d1 = side ? gtl_episode_query(ep) : gtl_episode_support(ep);
        const gtl_dataset *d2 = side ? gtl_episode_query(ep2) : gtl_episode_support(ep2);
        int64_t n1, n2;
        OK(gtl_dataset_size(d1, &n1));
        OK(gtl_dataset_size(d2, &n2));
        assert_int_equal(n1, n2);
        for (int64_t i = 0; i < n1; i++) {
            float f1[24], f2[24];
            int64_t y1, y2, p1, p2;
            int32_t m1, m2;
            OK(gtl_dataset_get(d1, i, f1, 24, &y1, &m1, &p1));
            OK(gtl_dataset_get(d2, i, f2, 24, &y2, &m2, &p2));
            assert_memory_equal(f1, f2, sizeof f1);
            assert_true(y1 == y2 && m1 == m2 && p1 == p2);
        }
    }
    /* Runner level: the saved list replays to identical accuracies. */
    gtl_eval_method methods[2] = {GTL_EVAL_CENTRED_CENTROID, GTL_EVAL_LINEAR_PROBE};
    for (int k = 0; k < 2; k++) {
        gtl_evaluator *a = make_ev(methods[k], 5, 2, 3, 25, 4);
        OK(gtl_evaluator_run_episodic(a, src));
        size_t n;
        OK(gtl_evaluator_episode_list(a, NULL, 0, &n));
        int64_t *list = malloc(n * sizeof(int64_t));
        size_t n_bad = 1;
        assert_int_equal(gtl_evaluator_episode_list(a, list, n - 1, &n_bad),
                         GTL_STATUS_INVALID_ARG);
        assert_int_equal(n_bad, 0); /* out-params are zeroed on failure */
        OK(gtl_evaluator_episode_list(a, list, n, &n));
        gtl_evaluator *b = NULL;
        OK(gtl_evaluator_create(methods[k], &b));
        OK(gtl_evaluator_run_episode_list(b, src, list, n));
        for (int32_t m = GTL_EVAL_TOTAL; m <= SKETCH; m++) {
            int64_t na, nb;
            double *xa = accs(a, m, &na), *xb = accs(b, m, &nb);
            assert_int_equal(na, 25);
            assert_int_equal(nb, 25);
            assert_memory_equal(xa, xb, 25 * sizeof(double));
            free(xa);
            free(xb);
        }
        /* The replayed run's list is the input list. */
        size_t n2;
        int64_t *list2 = malloc(n * sizeof(int64_t));
        OK(gtl_evaluator_episode_list(b, list2, n, &n2));
        assert_int_equal(n, n2);
        assert_memory_equal(list, list2, n * sizeof(int64_t));
        /* Malformed lists. */
        assert_int_equal(gtl_evaluator_run_episode_list(b, src, list, n - 1),
                         GTL_STATUS_INVALID_ARG);
        assert_int_equal(gtl_evaluator_run_episode_list(b, src, list, 0), GTL_STATUS_INVALID_ARG);
        int64_t save = list[3 + 5];
        list[3 + 5] = 100000; /* first support index out of range */
        assert_int_equal(gtl_evaluator_run_episode_list(b, src, list, n), GTL_STATUS_INVALID_ARG);
        assert_non_null(strstr(gtl_last_error(), "episode 0"));
        list[3 + 5] = save;
        list[3] = list[4]; /* repeated class label */
        assert_int_equal(gtl_evaluator_run_episode_list(b, src, list, n), GTL_STATUS_INVALID_ARG);
        assert_int_equal(gtl_evaluator_result(b, GTL_EVAL_TOTAL, NULL, NULL, NULL),
                         GTL_STATUS_BAD_STATE);
        free(list);
        free(list2);
        gtl_evaluator_destroy(a);
        gtl_evaluator_destroy(b);
    }
    /* from_indices: a row whose label is not an episode class. */
    int64_t one = 10;
    int64_t rows[2] = {0, 40};
    assert_int_equal(gtl_episode_from_indices(ep2, src, &one, 1, rows, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_episode_from_indices(ep2, src, &one, 1, rows, 1, NULL, 1),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_episode_from_indices(ep2, src, &one, 1, rows, 1, NULL, 0));
    gtl_episode_destroy(ep);
    gtl_episode_destroy(ep2);
    gtl_dataset_destroy(src);
}

/* ---- callbacks ---- */

typedef struct cb_state {
    int calls;
    int fail_at;        /* call index that fails, or -1 */
    int mode;           /* 0 oracle, 1 leave unset, 2 out of range */
} cb_state;

static gtl_status cb_method(void *ud, const gtl_dataset *support, const gtl_dataset *query,
                            int64_t *out_pred)
{
    cb_state *s = ud;
    int64_t n;
    (void)support;
    if (s->calls++ == s->fail_at) {
        /* a failing library call inside the callback: its message travels up */
        gtl_dataset_size(NULL, &n);
        return GTL_STATUS_NUMERIC;
    }
    gtl_dataset_size(query, &n);
    for (int64_t i = 0; i < n; i++) {
        int64_t y;
        gtl_dataset_get(query, i, NULL, 0, &y, NULL, NULL);
        if (s->mode == 0)
            out_pred[i] = y;
        else if (s->mode == 2)
            out_pred[i] = 7;
        else if (i > 0)
            out_pred[i] = y;
    }
    return GTL_STATUS_OK;
}

static int cancel_at_5(void *ud, int64_t episode, int64_t n_episodes, double accuracy)
{
    (void)n_episodes;
    (void)accuracy;
    *(int64_t *)ud = episode;
    return episode == 5;
}

static void test_callback(void **state)
{
    (void)state;
    gtl_dataset *src = make_source(8, 6, 8, 1.0, 9);
    gtl_evaluator *ev = make_ev(GTL_EVAL_CALLBACK, 3, 1, 2, 10, 0);
    assert_int_equal(gtl_evaluator_run_episodic(ev, src), GTL_STATUS_BAD_STATE);
    cb_state s = {0, -1, 0};
    OK(gtl_evaluator_set_callback(ev, cb_method, &s));
    OK(gtl_evaluator_run_episodic(ev, src));
    assert_int_equal(s.calls, 10);
    double mean, ci;
    OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, NULL));
    assert_true(mean == 1.0 && ci == 0.0);
    /* An error on the 4th call (episode 3) stops the run with that status. */
    s = (cb_state){0, 3, 0};
    assert_int_equal(gtl_evaluator_run_episodic(ev, src), GTL_STATUS_NUMERIC);
    printf("callback error: %s\n", gtl_last_error());
    assert_non_null(strstr(gtl_last_error(), "episode 3"));
    assert_non_null(strstr(gtl_last_error(), "gtl_dataset_size"));
    assert_int_equal(s.calls, 4);
    assert_int_equal(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, NULL),
                     GTL_STATUS_BAD_STATE);
    s = (cb_state){0, -1, 1};
    assert_int_equal(gtl_evaluator_run_episodic(ev, src), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "not written"));
    s = (cb_state){0, -1, 2};
    assert_int_equal(gtl_evaluator_run_episodic(ev, src), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "outside"));
    /* Cancellation keeps the completed episodes. */
    s = (cb_state){0, -1, 0};
    int64_t last = 0, n;
    OK(gtl_evaluator_set_progress(ev, cancel_at_5, &last));
    assert_int_equal(gtl_evaluator_run_episodic(ev, src), GTL_STATUS_CANCELLED);
    assert_int_equal(last, 5);
    OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, NULL, &n));
    assert_int_equal(n, 5);
    gtl_evaluator_destroy(ev);
    gtl_dataset_destroy(src);
}

/* ---- all-way ---- */

static void test_all_way(void **state)
{
    (void)state;
    const int64_t C = 7, PER = 5;
    gtl_dataset *src = make_source(C, PER, 16, 0.8, 21);
    gtl_evaluator *ev = NULL;
    OK(gtl_evaluator_create(GTL_EVAL_NEAREST_CENTROID, &ev));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, 2));
    OK(gtl_evaluator_run_all_way(ev, src));
    size_t n;
    int64_t list[3 + 7 + 200];
    OK(gtl_evaluator_episode_list(ev, list, 210, &n));
    /* 1 draw: all C classes, 2 RGB + 2 sketch each; the test set is every
     * other sample minus the partners (pair ids) of the support samples. */
    assert_int_equal(list[0], C);
    assert_int_equal(list[1], C * 4);
    int64_t nq = list[2];
    assert_true(nq >= C * (2 * PER - 8) && nq <= C * (2 * PER - 4));
    assert_int_equal(n, 3 + C + C * 4 + nq);
    double mean, ci;
    int64_t ne;
    OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &ne));
    assert_int_equal(ne, 1);
    assert_true(mean > 0.5 && isnan(ci));
    /* Several draws give an interval; too many shots is an error. */
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_ALL_WAY_REPEATS, 3));
    OK(gtl_evaluator_run_all_way(ev, src));
    OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &ne));
    assert_true(ne == 3 && !isnan(ci));
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, PER + 1));
    assert_int_equal(gtl_evaluator_run_all_way(ev, src), GTL_STATUS_INVALID_ARG);
    OK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, PER));
    assert_int_equal(gtl_evaluator_run_all_way(ev, src), GTL_STATUS_INVALID_ARG); /* no test */
    gtl_evaluator_destroy(ev);
    gtl_dataset_destroy(src);
}

/* ---- reports ---- */

static void test_reports(void **state)
{
    (void)state;
    gtl_dataset *src = make_source(6, 5, 8, 1.0, 13);
    gtl_evaluator *ev = make_ev(GTL_EVAL_LINEAR_PROBE, 3, 1, 2, 4, 0);
    size_t len;
    assert_int_equal(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, 0, NULL, 0, &len),
                     GTL_STATUS_BAD_STATE);
    OK(gtl_evaluator_run_episodic(ev, src));
    OK(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES, NULL, 0, &len));
    char *buf = malloc(len + 1);
    assert_int_equal(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES,
                                          buf, len, &len),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES, buf, len + 1,
                            &len));
    assert_int_equal(strlen(buf), len);
    assert_non_null(strstr(buf, "\"method\": \"linear_probe\""));
    assert_non_null(strstr(buf, "\"protocol\": \"episodic\""));
    assert_non_null(strstr(buf, "\"n_way\": 3"));
    assert_non_null(strstr(buf, "\"sketch\": {\"mean\""));
    assert_non_null(strstr(buf, "\"episodes\": ["));
    free(buf);
    OK(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_MARKDOWN, 0, NULL, 0, &len));
    buf = malloc(len + 1);
    OK(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_MARKDOWN, 0, buf, len + 1, &len));
    printf("%s", buf);
    assert_non_null(
        strstr(buf, "| method | protocol | setting | episodes | total | rgb | sketch |"));
    assert_non_null(strstr(buf, "3-way 1-shot 2-query, support rgb+sketch | 4 |"));
    free(buf);
    OK(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_MARKDOWN, GTL_EVAL_REPORT_NO_HEADER, NULL, 0,
                            &len));
    assert_int_equal(gtl_evaluator_report(ev, 2, 0, NULL, 0, &len), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, 8, NULL, 0, &len),
                     GTL_STATUS_INVALID_ARG);
    /* Files, and the JSON parses (when Debian's python3 is there). */
    char path[64];
    snprintf(path, sizeof path, "/tmp/gtl_test_eval_%d.json", (int)getpid());
    OK(gtl_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES, path));
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                 "assert len(d[\"episodes\"]) == 4' %s", path);
        assert_int_equal(system(cmd), 0);
    }
    remove(path);
    assert_int_equal(gtl_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, 0,
                                              "/nonexistent-dir/x.json"),
                     GTL_STATUS_IO);
    gtl_evaluator_destroy(ev);
    gtl_dataset_destroy(src);
}

/* ---- bad arguments ---- */

static void test_bad_args(void **state)
{
    (void)state;
    const float x[4] = {1, 0, 0, 1};
    const int64_t y[2] = {0, 1};
    gtl_dataset *s = make_set(x, 2, 2, y, NULL), *q3 = NULL, *empty = NULL;
    OK(gtl_dataset_create(3, &q3));
    OK(gtl_dataset_add(q3, (const float[3]){1, 2, 3}, 1, y, NULL, NULL));
    OK(gtl_dataset_create(2, &empty));
    int64_t pred[2];
    float sc[4];
    assert_int_equal(gtl_eval_nearest_centroid(NULL, s, 0, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_nearest_centroid(s, s, 0, NULL, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_nearest_centroid(s, q3, 0, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_nearest_centroid(s, empty, 0, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_nearest_centroid(s, s, 2, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_nearest_centroid(s, s, 0, pred, 1, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_nearest_centroid(s, s, 0, pred, 2, sc, 3), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl_eval_nearest_centroid"));
    assert_int_equal(gtl_eval_linear_probe(s, s, 0, 0.1f, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_linear_probe(s, s, 10, -1.0f, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_eval_linear_probe(s, s, 10, NAN, pred, 2, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_eval_linear_probe(s, s, 10, 0.0f, pred, 2, sc, 4));

    gtl_evaluator *ev = NULL;
    assert_int_equal(gtl_evaluator_create(GTL_EVAL_NEAREST_CENTROID, NULL),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_create((gtl_eval_method)9, &ev), GTL_STATUS_INVALID_ARG);
    assert_null(ev);
    OK(gtl_evaluator_create(GTL_EVAL_NEAREST_CENTROID, &ev));
    assert_int_equal(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 0), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_set_i64(ev, GTL_EVAL_PROBE_L2, 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_set_i64(ev, (gtl_eval_param)77, 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_set_i64(ev, GTL_EVAL_SUPPORT_MODALITIES, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_set_f32(ev, GTL_EVAL_N_WAY, 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, INFINITY),
                     GTL_STATUS_INVALID_ARG);
    int64_t v;
    float fv;
    OK(gtl_evaluator_get_i64(ev, GTL_EVAL_EPISODES, &v));
    assert_int_equal(v, 600);
    OK(gtl_evaluator_get_i64(ev, GTL_EVAL_QUERY_MODALITIES, &v));
    assert_int_equal(v, 0xffffffffLL);
    OK(gtl_evaluator_get_f32(ev, GTL_EVAL_PROBE_L2, &fv));
    assert_true(fv == 0.01f);
    assert_int_equal(gtl_evaluator_get_f32(ev, GTL_EVAL_SEED, &fv), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_set_callback(ev, cb_method, NULL), GTL_STATUS_BAD_STATE);
    assert_int_equal(gtl_evaluator_set_model(ev, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_run_episodic(ev, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_run_episodic(NULL, s), GTL_STATUS_INVALID_ARG);
    /* 5-way from a 2-class source: the sampler's message is passed on. */
    assert_int_equal(gtl_evaluator_run_episodic(ev, s), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl_evaluator_run_episodic: episode 0"));
    assert_int_equal(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, NULL, NULL, NULL),
                     GTL_STATUS_BAD_STATE);
    assert_int_equal(gtl_evaluator_result(ev, 32, NULL, NULL, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_accuracies(ev, -2, NULL, 0, &v), GTL_STATUS_INVALID_ARG);
    size_t n;
    assert_int_equal(gtl_evaluator_episode_list(ev, NULL, 0, &n), GTL_STATUS_BAD_STATE);
    assert_int_equal(gtl_evaluator_run_episode_list(ev, s, NULL, 3), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_evaluator_run_all_way(ev, empty), GTL_STATUS_INVALID_ARG);
    gtl_evaluator_destroy(ev);
    gtl_evaluator_destroy(NULL);
    gtl_model *m = NULL;
    assert_int_equal(gtl_model_clone(NULL, &m), GTL_STATUS_INVALID_ARG);
    OK(gtl_model_create(&m));
    gtl_model *c = NULL;
    assert_int_equal(gtl_model_clone(m, &c), GTL_STATUS_BAD_STATE);
    assert_null(c);
    gtl_model_destroy(m);
    gtl_dataset_destroy(s);
    gtl_dataset_destroy(q3);
    gtl_dataset_destroy(empty);
}

/* ---- GTL through the runner ---- */

static gtl_model *small_pretrained(const gtl_dataset *base, int64_t F)
{
    gtl_model *m = NULL;
    OK(gtl_model_create(&m));
    OK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, F));
    OK(gtl_model_set_i64(m, GTL_MODEL_HIDDEN_DIM, 16));
    OK(gtl_model_set_i64(m, GTL_MODEL_CONCEPT_DIM, 8));
    OK(gtl_model_set_i64(m, GTL_MODEL_DISTURBANCE_DIM, 4));
    OK(gtl_model_set_i64(m, GTL_MODEL_NUM_DOMAINS, 4));
    OK(gtl_model_set_i64(m, GTL_MODEL_N1_EPOCHS, 4));
    OK(gtl_model_set_i64(m, GTL_MODEL_N2_EPOCHS, 8));
    OK(gtl_model_set_f32(m, GTL_MODEL_N1_LR, 1e-2f));
    OK(gtl_model_set_f32(m, GTL_MODEL_N2_LR, 1e-2f));
    OK(gtl_model_set_i64(m, GTL_MODEL_WARMUP_EPOCHS, 0));
    gtl_optimizer *opt = NULL;
    OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    OK(gtl_model_train_stage(m, opt, GTL_STAGE_B1, base, 2, NULL, NULL));
    OK(gtl_model_train_stage(m, opt, GTL_STAGE_B2, base, 2, NULL, NULL));
    gtl_optimizer_destroy(opt);
    return m;
}

/* GTL done by hand as a host method: clone, adapt, predict. */
static gtl_status cb_host_gtl(void *ud, const gtl_dataset *support, const gtl_dataset *query,
                              int64_t *out_pred)
{
    gtl_model *c = NULL;
    int64_t n, F;
    gtl_status st = gtl_model_clone(ud, &c);
    if (st == GTL_STATUS_OK)
        st = gtl_adapt(c, support, NULL, NULL);
    gtl_dataset_size(query, &n);
    gtl_dataset_feature_dim(query, &F);
    float *x = malloc((size_t)(n * F) * sizeof(float));
    for (int64_t i = 0; i < n && st == GTL_STATUS_OK; i++)
        st = gtl_dataset_get(query, i, x + i * F, (size_t)F, NULL, NULL, NULL);
    if (st == GTL_STATUS_OK)
        st = gtl_model_predict(c, x, n, F, out_pred, NULL, 0);
    free(x);
    gtl_model_destroy(c);
    return st;
}

static void test_model_clone_and_gtl_method(void **state)
{
    (void)state;
    const int64_t F = 12;
    gtl_dataset *base = make_source(4, 4, F, 0.5, 31), *novel = make_source(6, 12, F, 1.5, 32);
    int64_t n_base;
    OK(gtl_dataset_remap_labels(base, NULL, 0, &n_base));
    gtl_model *m = small_pretrained(base, F);
    /* A clone predicts like the original, and adapts like it. */
    gtl_model *c = NULL;
    OK(gtl_model_clone(m, &c));
    float xb[8 * 12];
    for (int i = 0; i < 8; i++)
        OK(gtl_dataset_get(base, i, xb + i * F, (size_t)F, NULL, NULL, NULL));
    float p1[8 * 4], p2[8 * 4];
    OK(gtl_model_predict(m, xb, 8, F, NULL, p1, 32));
    OK(gtl_model_predict(c, xb, 8, F, NULL, p2, 32));
    assert_memory_equal(p1, p2, sizeof p1);

    gtl_evaluator *ev = make_ev(GTL_EVAL_GTL, 4, 1, 8, 3, 5);
    assert_int_equal(gtl_evaluator_run_episodic(ev, novel), GTL_STATUS_BAD_STATE);
    OK(gtl_evaluator_set_model(ev, m));
    OK(gtl_evaluator_run_episodic(ev, novel));
    /* The same episodes through a host callback doing clone + adapt + predict. */
    gtl_evaluator *host = make_ev(GTL_EVAL_CALLBACK, 4, 1, 8, 3, 5);
    OK(gtl_evaluator_set_callback(host, cb_host_gtl, m));
    OK(gtl_evaluator_run_episodic(host, novel));
    int64_t n;
    double *a1[3], *a2[3], *a3[3];
    for (int k = 0; k < 3; k++) {
        a1[k] = accs(ev, (int32_t)k - 1, &n);
        assert_int_equal(n, 3);
        double *h = accs(host, (int32_t)k - 1, &n);
        assert_memory_equal(a1[k], h, 3 * sizeof(double));
        free(h);
    }
    gtl_evaluator_destroy(host);
    gtl_model_destroy(m); /* the evaluator holds its own copies */
    /* Each episode starts from the pretrained copy: a second run, and a
     * replay of episode 2 alone, give the same accuracies (total, RGB, sketch). */
    OK(gtl_evaluator_run_episodic(ev, novel));
    for (int k = 0; k < 3; k++)
        a2[k] = accs(ev, (int32_t)k - 1, &n);
    size_t len;
    OK(gtl_evaluator_episode_list(ev, NULL, 0, &len));
    int64_t *list = malloc(len * sizeof(int64_t));
    OK(gtl_evaluator_episode_list(ev, list, len, &len));
    size_t per = len / 3; /* equal-size episodes */
    OK(gtl_evaluator_run_episode_list(ev, novel, list + 2 * per, per));
    for (int k = 0; k < 3; k++) {
        a3[k] = accs(ev, (int32_t)k - 1, &n);
        assert_int_equal(n, 1);
        assert_memory_equal(a1[k], a2[k], 3 * sizeof(double));
        assert_true(a3[k][0] == a1[k][2]);
    }
    printf("GTL (tiny model, 3 episodes 4-way 1-shot 8-query): %.3f %.3f %.3f\n", a1[0][0],
           a1[0][1], a1[0][2]);
    for (int k = 0; k < 3; k++) {
        free(a1[k]);
        free(a2[k]);
        free(a3[k]);
    }
    free(list);
    gtl_evaluator_destroy(ev);
    gtl_model_destroy(c);
    gtl_dataset_destroy(base);
    gtl_dataset_destroy(novel);
}

/* ---- out of memory ---- */

/* A failing allocator: allocation fail_at (and, when sticky, every later
 * one) returns NULL. */
static struct { int64_t fail_at, n_calls; bool sticky; } fa = {-1, 0, true};

static bool should_fail(void)
{
    int64_t i = fa.n_calls++;
    return fa.fail_at >= 0 && (fa.sticky ? i >= fa.fail_at : i == fa.fail_at);
}

static void *f_malloc(void *ud, size_t n)
{
    (void)ud;
    return should_fail() ? NULL : malloc(n);
}

static void *f_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return should_fail() ? NULL : realloc(p, n);
}

static void f_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

/* Every evaluation path under allocation failure: either OK or
 * OUT_OF_MEMORY, never another status, and nothing left allocated. */
static gtl_status oom_paths(const gtl_dataset *src)
{
    gtl_status st = GTL_STATUS_OK;
    gtl_evaluator *ev = NULL;
    int64_t *list = NULL, pred[64];
    float sc[64 * 4];
    char *text = NULL;
    gtl_episode *ep = NULL;
    gtl_eval_method methods[2] = {GTL_EVAL_CENTRED_CENTROID, GTL_EVAL_LINEAR_PROBE};
    for (int k = 0; k < 2 && st == GTL_STATUS_OK; k++) {
        st = gtl_evaluator_create(methods[k], &ev);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_set_i64(ev, GTL_EVAL_EPISODES, 3);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 3);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_set_i64(ev, GTL_EVAL_Q_QUERY, 2);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_run_episodic(ev, src);
        size_t n = 0, len = 0;
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_episode_list(ev, NULL, 0, &n);
        if (st == GTL_STATUS_OK && (list = malloc(n * sizeof(int64_t))) == NULL)
            st = GTL_STATUS_INTERNAL;
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_episode_list(ev, list, n, &n);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_run_episode_list(ev, src, list, n);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES, NULL, 0,
                                      &len);
        if (st == GTL_STATUS_OK && (text = malloc(len + 1)) == NULL)
            st = GTL_STATUS_INTERNAL;
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_report(ev, GTL_EVAL_FORMAT_MARKDOWN, 0, text, len + 1, &len);
        if (st == GTL_STATUS_OK)
            st = gtl_evaluator_run_all_way(ev, src);
        free(list);
        free(text);
        list = NULL;
        text = NULL;
        gtl_evaluator_destroy(ev);
        ev = NULL;
    }
    if (st == GTL_STATUS_OK)
        st = gtl_episode_create(&ep);
    if (st == GTL_STATUS_OK)
        st = gtl_episode_sample(ep, src, 4, 1, 2, 3, 3, 1);
    if (st == GTL_STATUS_OK)
        st = gtl_eval_nearest_centroid(gtl_episode_support(ep), gtl_episode_query(ep), 1, pred,
                                       64, sc, 256);
    if (st == GTL_STATUS_OK)
        st = gtl_eval_linear_probe(gtl_episode_support(ep), gtl_episode_query(ep), 20, 0.01f,
                                   pred, 64, sc, 256);
    gtl_episode_destroy(ep);
    return st;
}

static void test_out_of_memory(void **state)
{
    (void)state;
    uint64_t bytes, blocks;
    OK(gtl_memory_in_use(&bytes, &blocks));
    assert_int_equal(blocks, 0);
    fa.fail_at = -1;
    OK(gtl_set_allocator(f_malloc, f_realloc, f_free, NULL));
    gtl_dataset *src = make_source(6, 4, 8, 1.0, 41);
    uint64_t base_bytes, base_blocks;
    OK(gtl_memory_in_use(&base_bytes, &base_blocks)); /* the source dataset */
    int64_t runs = 0;
    for (int sticky = 1; sticky >= 0; sticky--) {
        for (int64_t at = 0;; at++) {
            fa.fail_at = at;
            fa.sticky = sticky;
            fa.n_calls = 0;
            gtl_status st = oom_paths(src);
            fa.fail_at = -1;
            runs++;
            if (st != GTL_STATUS_OK && st != GTL_STATUS_OUT_OF_MEMORY)
                fail_msg("allocation %lld (%s): status %s: %s", (long long)at,
                         sticky ? "sticky" : "one-shot", gtl_strerror(st), gtl_last_error());
            OK(gtl_memory_in_use(&bytes, &blocks));
            if (blocks != base_blocks || bytes != base_bytes)
                fail_msg("allocation %lld (%s): %llu blocks / %llu bytes leaked", (long long)at,
                         sticky ? "sticky" : "one-shot",
                         (unsigned long long)(blocks - base_blocks),
                         (unsigned long long)(bytes - base_bytes));
            if (st == GTL_STATUS_OK)
                break;
        }
    }
    gtl_dataset_destroy(src);
    OK(gtl_memory_in_use(&bytes, &blocks));
    assert_int_equal(blocks, 0);
    OK(gtl_set_allocator(NULL, NULL, NULL, NULL));
    printf("out-of-memory sweep: %lld runs, every failure OUT_OF_MEMORY, nothing leaked\n",
           (long long)runs);
}

/* ---- speed ---- */

static void test_speed_600_episodes(void **state)
{
    (void)state;
#ifdef NDEBUG
    const int64_t n_ep = 600;
#else
    const int64_t n_ep = 60; /* debug and sanitizer builds are ~50x slower */
#endif
    gtl_dataset *src = make_source(64, 20, 1280, 6.0, 77);
    gtl_evaluator *ev = make_ev(GTL_EVAL_NEAREST_CENTROID, 5, 1, 15, n_ep, 0);
    double t0 = now_s();
    OK(gtl_evaluator_run_episodic(ev, src));
    double t1 = now_s();
    double mean, ci;
    OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, NULL));
    printf("%lld episodes 5-way 1-shot 15-query nearest centroid, F = 1280, 2560 samples: "
           "%.3f s (%.2f +- %.2f %%)\n", (long long)n_ep, t1 - t0, 100 * mean, 100 * ci);
#ifdef NDEBUG
    /* Target: well under 1 s; the slack is for a loaded machine. Debug and
     * sanitizer builds only report the time. */
    assert_true(t1 - t0 < 2.0);
#endif
    /* The same episodes with a trivial host method: the sampling overhead. */
    gtl_evaluator *cb = make_ev(GTL_EVAL_CALLBACK, 5, 1, 15, n_ep, 0);
    cb_state s = {0, -1, 0};
    OK(gtl_evaluator_set_callback(cb, cb_method, &s));
    t0 = now_s();
    OK(gtl_evaluator_run_episodic(cb, src));
    t1 = now_s();
    printf("  of which sampling and bookkeeping (same episodes, oracle callback): %.3f s\n",
           t1 - t0);
    gtl_evaluator_destroy(cb);
    gtl_evaluator_destroy(ev);
    gtl_dataset_destroy(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ncm_hand),
        cmocka_unit_test(test_ncm_reference),
        cmocka_unit_test(test_probe_reference),
        cmocka_unit_test(test_probe_separable),
        cmocka_unit_test(test_mean_ci),
        cmocka_unit_test(test_accuracy_per_modality),
        cmocka_unit_test(test_episodic_determinism),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_all_way),
        cmocka_unit_test(test_reports),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_model_clone_and_gtl_method),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_speed_600_episodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
