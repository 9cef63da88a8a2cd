/* l2_normalize, cosine_distance, triplet_hard, center_loss: forwards against
 * plain references in double, gradients by central differences (and, for the
 * triplet loss, against a reference backward in double), the same tensor
 * passed twice, tie-breaking, edge cases (N = 1, singleton classes, one
 * class), copied labels, bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"

#define COS_EPS 1e-12 /* the op's norm floor for cosine and triplet */

/* y = x / max(||x||, eps) in double; norms out (may be NULL). */
static void ref_normalize(const float *x, int64_t n, int64_t d, double eps, double *y,
                          double *norms)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t k = 0; k < d; k++)
            s += (double)x[i * d + k] * x[i * d + k];
        double nr = sqrt(s), den = fmax(nr, eps);
        for (int64_t k = 0; k < d; k++)
            y[i * d + k] = x[i * d + k] / den;
        if (norms)
            norms[i] = nr;
    }
}

static double ref_dot(const double *a, const double *b, int64_t d)
{
    double s = 0.0;
    for (int64_t k = 0; k < d; k++)
        s += a[k] * b[k];
    return s;
}

/* A row with norm in [lo, hi], direction uniform-ish (no tiny rows). */
static void fill_row_norm(gt_env *env, float *x, int64_t d, double lo, double hi)
{
    double s;
    do {
        gt_fill(env, x, d, -1.0f, 1.0f);
        s = 0.0;
        for (int64_t k = 0; k < d; k++)
            s += (double)x[k] * x[k];
    } while (s < 1e-2);
    double target = lo + (hi - lo) * gtl__rng_uniform_f64(&env->data);
    for (int64_t k = 0; k < d; k++)
        x[k] = (float)(x[k] * target / sqrt(s));
}

/* ---- l2_normalize ---- */

static void test_l2_normalize_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        int64_t n = rep == 0 ? 1 : gt_randint(env, 1, 12);
        int64_t d = rep == 1 ? 1 : gt_randint(env, 1, 40);
        float eps = rep % 2 ? 1e-12f : 0.5f;
        int64_t ne[2] = {n, d};
        gtl__tensor *x = gt_leaf(env, 2, ne, NULL, rep % 3 == 0);
        /* Row 0 is zero, row 1 (if any) tiny: both take the eps branch. */
        memset(x->data, 0, (size_t)d * sizeof(float));
        if (n > 1)
            for (int64_t k = 0; k < d; k++)
                x->data[d + k] *= 1e-3f;
        gtl__tensor *y;
        assert_int_equal(gtl__op_l2_normalize(env->tape, x, eps, &y), GTL_STATUS_OK);
        double *ry = malloc((size_t)(n * d) * sizeof(double));
        float *rf = malloc((size_t)(n * d) * sizeof(float));
        ref_normalize(x->data, n, d, eps, ry, NULL);
        for (int64_t i = 0; i < n * d; i++)
            rf[i] = (float)ry[i];
        gt_assert_close(y->data, rf, n * d, 1e-7, 1e-6, "l2_normalize forward");
        for (int64_t k = 0; k < d; k++)
            assert_true(y->data[k] == 0.0f);
        free(ry);
        free(rf);
        gtl__tape_reset(env->tape);
    }
}

static gtl_status l2_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_l2_normalize(t, in[0], *(float *)ud, out);
}

static void test_l2_normalize_grad(void **state)
{
    gt_env *env = *state;
    /* eps = 0.5; each row's norm is either in [1, 2] (the x / ||x|| branch) or
     * in [0.05, 0.25] (the x / eps branch), so a step of 1e-2 never crosses
     * ||x|| = eps. */
    float eps = 0.5f;
    for (int rep = 0; rep < 8; rep++) {
        int64_t n = rep == 0 ? 1 : gt_randint(env, 1, 6), d = rep == 1 ? 1 : gt_randint(env, 1, 8);
        float *x = malloc((size_t)(n * d) * sizeof(float));
        for (int64_t i = 0; i < n; i++) {
            bool small = (i + rep) % 3 == 0;
            fill_row_norm(env, x + i * d, d, small ? 0.05 : 1.0, small ? 0.25 : 2.0);
        }
        gt_input in = {.nd = 2, .ne = {n, d}, .data = x};
        gt_gradcheck(env, "l2_normalize", l2_fn, &eps, 1, &in, NULL);
        free(x);
    }
}

static void test_l2_normalize_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t n1[1] = {4}, n3[3] = {2, 2, 2}, n2[2] = {2, 3};
    gtl__tensor *v = gt_leaf(env, 1, n1, NULL, true);
    gtl__tensor *c = gt_leaf(env, 3, n3, NULL, true);
    gtl__tensor *m = gt_leaf(env, 2, n2, NULL, true);
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_l2_normalize(env->tape, v, 1e-6f, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "l2_normalize"));
    assert_int_equal(gtl__op_l2_normalize(env->tape, c, 1e-6f, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_l2_normalize(env->tape, NULL, 1e-6f, &out), GTL_STATUS_INVALID_ARG);
    const float bad_eps[4] = {0.0f, -1.0f, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        out = (gtl__tensor *)1;
        assert_int_equal(gtl__op_l2_normalize(env->tape, m, bad_eps[i], &out),
                         GTL_STATUS_INVALID_ARG);
        assert_null(out);
        assert_non_null(strstr(gtl_last_error(), "eps"));
    }
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- cosine_distance ---- */

static void ref_cosine(const float *a, const float *b, int64_t n, int64_t m, int64_t d,
                       float *out)
{
    double *ya = malloc((size_t)(n * d + 1) * sizeof(double));
    double *yb = malloc((size_t)(m * d + 1) * sizeof(double));
    ref_normalize(a, n, d, COS_EPS, ya, NULL);
    ref_normalize(b, m, d, COS_EPS, yb, NULL);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++)
            out[i * m + j] = (float)(1.0 - ref_dot(ya + i * d, yb + j * d, d));
    free(ya);
    free(yb);
}

static void test_cosine_forward(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        int64_t n = gt_randint(env, 1, 9), m = gt_randint(env, 1, 9), d = gt_randint(env, 1, 70);
        int64_t na[2] = {n, d}, nb[2] = {m, d};
        gtl__tensor *a = gt_leaf(env, 2, na, NULL, true);
        gtl__tensor *b = gt_leaf(env, 2, nb, NULL, rep % 2 == 0);
        if (rep == 3)
            memset(b->data, 0, (size_t)d * sizeof(float)); /* zero row: distance 1 */
        gtl__tensor *c;
        assert_int_equal(gtl__op_cosine_distance(env->tape, a, b, &c), GTL_STATUS_OK);
        assert_int_equal(c->ne[0], n);
        assert_int_equal(c->ne[1], m);
        float *ref = malloc((size_t)(n * m) * sizeof(float));
        ref_cosine(a->data, b->data, n, m, d, ref);
        gt_assert_close(c->data, ref, n * m, 2e-6, 1e-5, "cosine forward");
        if (rep == 3)
            for (int64_t i = 0; i < n; i++)
                assert_true(c->data[i * m] == 1.0f);
        free(ref);
        /* Same tensor twice: a symmetric matrix with a zero diagonal. */
        assert_int_equal(gtl__op_cosine_distance(env->tape, a, a, &c), GTL_STATUS_OK);
        for (int64_t i = 0; i < n; i++) {
            assert_true(fabsf(c->data[i * n + i]) < 1e-6f);
            for (int64_t j = 0; j < n; j++)
                assert_true(c->data[i * n + j] == c->data[j * n + i]);
        }
        gtl__tape_reset(env->tape);
    }
}

static gtl_status cos_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_cosine_distance(t, in[0], in[ud != NULL ? 0 : 1], out);
}

/* Entries at least 0.25 from 0 keep every norm >= 0.25, where the map is
 * smooth enough for a step of 1e-3. */
static float *cos_input(gt_env *env, int64_t n, int64_t d)
{
    static const float kink = 0.0f;
    float *x = malloc((size_t)(n * d) * sizeof(float));
    gt_fill_away(env, x, n * d, -1.5f, 1.5f, &kink, 1, 0.25f);
    return x;
}

static void test_cosine_grad(void **state)
{
    gt_env *env = *state;
    gt_gradcheck_opts opts = {.eps = 1e-3};
    for (int rep = 0; rep < 8; rep++) {
        int64_t n = rep == 0 ? 1 : gt_randint(env, 1, 5), m = rep == 1 ? 1 : gt_randint(env, 1, 5),
                d = rep == 2 ? 1 : gt_randint(env, 2, 7);
        gt_input in[2] = {{.nd = 2, .ne = {n, d}}, {.nd = 2, .ne = {m, d}}};
        in[0].data = cos_input(env, n, d);
        in[1].data = cos_input(env, m, d);
        if (rep % 4 == 3)
            in[rep % 2].no_grad = true;
        char name[64];
        snprintf(name, sizeof name, "cosine (%lld,%lld) D=%lld", (long long)n, (long long)m,
                 (long long)d);
        gt_gradcheck(env, name, cos_fn, NULL, 2, in, &opts);
        free((void *)in[0].data);
        free((void *)in[1].data);
    }
    /* The same tensor as both operands: both contributions must land. */
    for (int rep = 0; rep < 4; rep++) {
        int64_t n = gt_randint(env, 1, 6), d = gt_randint(env, 2, 7);
        gt_input in = {.nd = 2, .ne = {n, d}, .data = cos_input(env, n, d)};
        gt_gradcheck(env, "cosine (a, a)", cos_fn, (void *)1, 1, &in, &opts);
        free((void *)in.data);
    }
}

/* Explicitly: grad of cosine(a, a) = grad_a + grad_b of cosine(a, copy of a). */
static void test_cosine_same_tensor_accumulates(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {5, 6};
    gtl__tensor *a = gt_leaf(env, 2, ne, NULL, true);
    gtl__tensor *b = gt_leaf(env, 2, ne, a->data, true);
    float seed[25];
    gt_fill(env, seed, 25, -1.0f, 1.0f);
    gtl__tensor *c;
    assert_int_equal(gtl__op_cosine_distance(env->tape, a, b, &c), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward_seed(env->tape, c, seed), GTL_STATUS_OK);
    float want[30];
    for (int i = 0; i < 30; i++)
        want[i] = a->grad[i] + b->grad[i];
    float data[30];
    memcpy(data, a->data, sizeof data);
    gtl__tape_reset(env->tape);
    gtl__tensor *s = gt_leaf(env, 2, ne, data, true);
    assert_int_equal(gtl__op_cosine_distance(env->tape, s, s, &c), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward_seed(env->tape, c, seed), GTL_STATUS_OK);
    gt_assert_close(s->grad, want, 30, 1e-6, 1e-5, "cosine(a, a) gradient");
}

static void test_cosine_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t na[2] = {3, 4}, nb[2] = {3, 5}, nv[1] = {4};
    gtl__tensor *a = gt_leaf(env, 2, na, NULL, true);
    gtl__tensor *b = gt_leaf(env, 2, nb, NULL, true);
    gtl__tensor *v = gt_leaf(env, 1, nv, NULL, true);
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_cosine_distance(env->tape, a, b, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "cosine_distance"));
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_cosine_distance(env->tape, a, v, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_int_equal(gtl__op_cosine_distance(env->tape, NULL, a, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_cosine_distance(env->tape, a, NULL, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- triplet_hard ---- */

typedef struct ref_trip {
    double loss;
    int64_t used, active;
    double min_gap;    /* smallest separation that keeps the selection and hinges fixed */
} ref_trip;

/* Batch-hard triplet loss in double; grad (N, D) gets d loss / d feat when
 * not NULL (the selection held fixed, rows unclamped). */
static ref_trip ref_triplet(const float *x, const int64_t *lab, int64_t n, int64_t d,
                            double margin, double *grad)
{
    ref_trip r = {0.0, 0, 0, INFINITY};
    double *y = malloc((size_t)(n * d + 1) * sizeof(double));
    double *nr = malloc((size_t)(n + 1) * sizeof(double));
    double *dy = calloc((size_t)(n * d + 1), sizeof(double));
    ref_normalize(x, n, d, COS_EPS, y, nr);
    int64_t *sel = malloc((size_t)(2 * n + 1) * sizeof(int64_t));
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int64_t p = -1, q = -1;
        double dp = 0.0, dq = 0.0, dp2 = -INFINITY, dq2 = INFINITY;
        for (int64_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            double dij = 1.0 - ref_dot(y + i * d, y + j * d, d);
            if (lab[j] == lab[i]) {
                if (p < 0 || dij > dp) {
                    if (p >= 0)
                        dp2 = dp;
                    p = j;
                    dp = dij;
                } else {
                    dp2 = fmax(dp2, dij);
                }
            } else {
                if (q < 0 || dij < dq) {
                    if (q >= 0)
                        dq2 = dq;
                    q = j;
                    dq = dij;
                } else {
                    dq2 = fmin(dq2, dij);
                }
            }
        }
        sel[2 * i] = sel[2 * i + 1] = -1;
        if (p < 0 || q < 0)
            continue;
        r.used++;
        double h = dp - dq + margin;
        r.min_gap = fmin(r.min_gap, fmin(dp - dp2, dq2 - dq));
        r.min_gap = fmin(r.min_gap, fabs(h));
        if (h > 0.0) {
            sum += h;
            r.active++;
            sel[2 * i] = p;
            sel[2 * i + 1] = q;
        }
    }
    r.loss = r.used > 0 ? sum / (double)r.used : 0.0;
    if (grad != NULL) {
        for (int64_t i = 0; i < n; i++) {
            int64_t p = sel[2 * i], q = sel[2 * i + 1];
            if (p < 0)
                continue;
            double s = 1.0 / (double)r.used;
            for (int64_t k = 0; k < d; k++) {
                dy[i * d + k] += s * (y[q * d + k] - y[p * d + k]);
                dy[p * d + k] -= s * y[i * d + k];
                dy[q * d + k] += s * y[i * d + k];
            }
        }
        for (int64_t i = 0; i < n; i++) {
            double yg = ref_dot(y + i * d, dy + i * d, d);
            for (int64_t k = 0; k < d; k++)
                grad[i * d + k] = (dy[i * d + k] - y[i * d + k] * yg) / nr[i];
        }
    }
    free(y);
    free(nr);
    free(dy);
    free(sel);
    return r;
}

typedef struct trip_ud {
    const int64_t *labels;
    float margin;
} trip_ud;

static gtl_status trip_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    trip_ud *u = ud;
    return gtl__op_triplet_hard(t, in[0], u->labels, u->margin, out);
}

/* Runs the op with loss seed 1 and compares value and gradient to the reference. */
static void check_triplet(gt_env *env, const float *x, const int64_t *lab, int64_t n, int64_t d,
                          float margin, const char *what)
{
    gtl__tape_reset(env->tape);
    int64_t ne[2] = {n, d};
    gtl__tensor *f = gt_leaf(env, 2, ne, x, true);
    gtl__tensor *l;
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, lab, margin, &l), GTL_STATUS_OK);
    assert_int_equal(l->nd, 0);
    double *g = calloc((size_t)(n * d + 1), sizeof(double));
    ref_trip r = ref_triplet(x, lab, n, d, margin, g);
    float want = (float)r.loss;
    gt_assert_close(l->data, &want, 1, 2e-6, 1e-5, what);
    assert_int_equal(gtl__tape_backward(env->tape, l), GTL_STATUS_OK);
    float *gw = malloc((size_t)(n * d + 1) * sizeof(float));
    for (int64_t i = 0; i < n * d; i++)
        gw[i] = (float)g[i];
    float *got = f->grad;
    float *zeros = calloc((size_t)(n * d + 1), sizeof(float));
    gt_assert_close(got != NULL ? got : zeros, gw, n * d, 1e-6, 1e-5, what);
    free(zeros);
    free(gw);
    free(g);
    gtl__tape_reset(env->tape);
}

static void test_triplet_forward_and_reference_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 16; rep++) {
        int64_t n = gt_randint(env, 2, 16), d = gt_randint(env, 1, 20);
        int64_t n_cls = gt_randint(env, 1, 5);
        int64_t *lab = malloc((size_t)n * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            lab[i] = 7 * gt_randint(env, 0, n_cls - 1) - 3; /* any values, negative too */
        float *x = malloc((size_t)(n * d) * sizeof(float));
        float margin = rep % 4 == 0 ? -0.1f : rep % 4 == 1 ? 1.0f : 0.3f;
        /* Redraw near-ties (< 1e-4), where float and double could select
         * differently. With D = 1 every distance is exactly 0 or 2: exact ties
         * that both sides break alike. */
        int tries = 0;
        do {
            assert_true(tries++ < 1000);
            for (int64_t i = 0; i < n; i++)
                fill_row_norm(env, x + i * d, d, 0.5, 2.0);
        } while (d > 1 && ref_triplet(x, lab, n, d, margin, NULL).min_gap < 1e-4);
        check_triplet(env, x, lab, n, d, margin, "triplet random");
        free(lab);
        free(x);
    }
}

static void test_triplet_edge_cases(void **state)
{
    gt_env *env = *state;
    /* One class with a singleton: f0 = (1, 0), f1 = (0, 1) in class 0, f2 = (1, 1)
     * alone in class 1. Anchors 0 and 1: d_ap = 1, d_an = 1 - 1/sqrt 2; anchor 2
     * has no positive and is skipped (it still serves as a negative). */
    static const float x3[6] = {1, 0, 0, 1, 1, 1};
    static const int64_t l3[3] = {0, 0, 1};
    gtl__tensor *f, *l;
    int64_t ne3[2] = {3, 2};
    f = gt_leaf(env, 2, ne3, x3, true);
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, l3, 0.3f, &l), GTL_STATUS_OK);
    float want = (float)(1.0 / sqrt(2.0) + 0.3);
    gt_assert_close(l->data, &want, 1, 1e-6, 1e-6, "triplet singleton class");
    check_triplet(env, x3, l3, 3, 2, 0.3f, "triplet singleton class");
    /* N = 1: no positive, no negative: 0, and backward gives a zero gradient. */
    static const float x1[3] = {0.5f, -1.0f, 2.0f};
    static const int64_t l1[1] = {4};
    int64_t ne1[2] = {1, 3};
    f = gt_leaf(env, 2, ne1, x1, true);
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, l1, 0.3f, &l), GTL_STATUS_OK);
    assert_true(l->data[0] == 0.0f);
    check_triplet(env, x1, l1, 1, 3, 0.3f, "triplet N=1");
    /* All one class: no negatives: 0. */
    float x5[20];
    gt_fill(env, x5, 20, -1.0f, 1.0f);
    static const int64_t l5[5] = {2, 2, 2, 2, 2};
    int64_t ne5[2] = {5, 4};
    f = gt_leaf(env, 2, ne5, x5, true);
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, l5, 0.3f, &l), GTL_STATUS_OK);
    assert_true(l->data[0] == 0.0f);
    check_triplet(env, x5, l5, 5, 4, 0.3f, "triplet one class");
    /* All singletons: no positives: 0. */
    static const int64_t l5s[5] = {0, 1, 2, 3, 4};
    check_triplet(env, x5, l5s, 5, 4, 0.3f, "triplet all singletons");
    /* No rows: 0. */
    int64_t ne0[2] = {0, 4};
    f = gt_leaf(env, 2, ne0, NULL, true);
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, NULL, 0.3f, &l), GTL_STATUS_OK);
    assert_true(l->data[0] == 0.0f);
}

/* Ties pick the first index: rows 1 and 2 are identical positives of anchor 0,
 * rows 3 and 4 identical negatives; every anchor sees at least one exact tie.
 * The gradient (which flows only through the selected pairs) must match the
 * first-index reference, and differ between the twins. */
static void test_triplet_ties_pick_first(void **state)
{
    gt_env *env = *state;
    static const float x[10] = {1, 0, 0, 1, 0, 1, 1, 1, 1, 1};
    static const int64_t lab[5] = {0, 0, 0, 1, 1};
    check_triplet(env, x, lab, 5, 2, 0.5f, "triplet ties");
    int64_t ne[2] = {5, 2};
    gtl__tensor *f = gt_leaf(env, 2, ne, x, true), *l;
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, lab, 0.5f, &l), GTL_STATUS_OK);
    assert_int_equal(gtl__tape_backward(env->tape, l), GTL_STATUS_OK);
    assert_true(f->grad[2] != f->grad[4] || f->grad[3] != f->grad[5]);
    assert_true(f->grad[6] != f->grad[8] || f->grad[7] != f->grad[9]);
}

static void test_triplet_grad(void **state)
{
    gt_env *env = *state;
    /* Well separated: rows have norm in [0.5, 2], so a step h = 1e-3 on one
     * coordinate moves any cosine distance by at most h / ||x|| <= 2e-3 and a
     * difference of two distances by <= 4e-3. Samples are redrawn until every
     * used anchor's hardest positive beats its runner-up by >= 0.02, likewise
     * the hardest negative, and |d_ap - d_an + margin| >= 0.02: then neither
     * the selection nor the active hinges change between x + h and x - h. */
    const double gap = 0.02;
    gt_gradcheck_opts opts = {.eps = 1e-3, .max_checks = 64};
    for (int rep = 0; rep < 8; rep++) {
        int64_t n = gt_randint(env, 3, 10), d = gt_randint(env, 2, 6);
        int64_t *lab = malloc((size_t)n * sizeof(int64_t));
        float *x = malloc((size_t)(n * d) * sizeof(float));
        /* Margin 0 leaves some used anchors inactive (zero hinge). */
        float margin = rep % 3 == 2 ? 0.0f : 0.3f;
        ref_trip r;
        int tries = 0;
        do {
            assert_true(tries++ < 5000);
            int64_t n_cls = gt_randint(env, 2, 3);
            for (int64_t i = 0; i < n; i++)
                lab[i] = gt_randint(env, 0, n_cls - 1);
            if (rep % 2 == 1)
                lab[n - 1] = 99; /* a singleton class: a skipped anchor */
            for (int64_t i = 0; i < n; i++)
                fill_row_norm(env, x + i * d, d, 0.5, 2.0);
            r = ref_triplet(x, lab, n, d, margin, NULL);
        } while (r.active == 0 || r.min_gap < gap);
        printf("# triplet N=%lld D=%lld: %lld used, %lld active, min gap %.3f (%d draws)\n",
               (long long)n, (long long)d, (long long)r.used, (long long)r.active, r.min_gap,
               tries);
        trip_ud u = {lab, margin};
        gt_input in = {.nd = 2, .ne = {n, d}, .data = x};
        gt_gradcheck(env, "triplet_hard", trip_fn, &u, 1, &in, &opts);
        check_triplet(env, x, lab, n, d, margin, "triplet reference grad");
        free(lab);
        free(x);
    }
}

/* Labels are copied: scrambling the caller's array after forward changes nothing. */
static void test_triplet_labels_copied(void **state)
{
    gt_env *env = *state;
    int64_t n = 8, d = 4;
    int64_t lab[8] = {0, 0, 1, 1, 2, 2, 0, 1};
    float x[32];
    for (int64_t i = 0; i < n; i++)
        fill_row_norm(env, x + i * d, d, 0.5, 2.0);
    double g[32];
    ref_trip r = ref_triplet(x, lab, n, d, 0.3, g);
    int64_t ne[2] = {n, d};
    gtl__tensor *f = gt_leaf(env, 2, ne, x, true), *l;
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, lab, 0.3f, &l), GTL_STATUS_OK);
    for (int64_t i = 0; i < n; i++)
        lab[i] = i;
    assert_int_equal(gtl__tape_backward(env->tape, l), GTL_STATUS_OK);
    float want = (float)r.loss, gw[32];
    for (int i = 0; i < 32; i++)
        gw[i] = (float)g[i];
    gt_assert_close(l->data, &want, 1, 2e-6, 1e-5, "triplet labels copied (loss)");
    gt_assert_close(f->grad, gw, 32, 1e-6, 1e-5, "triplet labels copied (grad)");
}

static void test_triplet_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t ne[2] = {3, 4}, nv[1] = {4};
    int64_t lab[3] = {0, 1, 0};
    gtl__tensor *f = gt_leaf(env, 2, ne, NULL, true);
    gtl__tensor *v = gt_leaf(env, 1, nv, NULL, true);
    gtl__tensor *out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, NULL, 0.3f, &out),
                     GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(gtl_last_error(), "triplet_hard"));
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_triplet_hard(env->tape, v, lab, 0.3f, &out),
                     GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_int_equal(gtl__op_triplet_hard(env->tape, NULL, lab, 0.3f, &out),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, lab, NAN, &out),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_triplet_hard(env->tape, f, lab, INFINITY, &out),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
}

/* ---- center_loss ---- */

static double ref_center(const float *f, const float *c, const int64_t *lab, int64_t n,
                         int64_t d, int64_t n_c, double *gf, double *gc)
{
    double s = 0.0;
    if (gc)
        memset(gc, 0, (size_t)(n_c * d) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < d; k++) {
            double v = (double)f[i * d + k] - c[lab[i] * d + k];
            s += v * v;
            if (gf)
                gf[i * d + k] = 2.0 * v / (double)n;
            if (gc)
                gc[lab[i] * d + k] -= 2.0 * v / (double)n;
        }
    return s / (double)n;
}

typedef struct center_ud {
    const int64_t *labels;
} center_ud;

static gtl_status center_fn(gtl__tape *t, gtl__tensor **in, void *ud, gtl__tensor **out)
{
    return gtl__op_center_loss(t, in[0], in[1], ((center_ud *)ud)->labels, out);
}

static void test_center_forward_and_grad(void **state)
{
    gt_env *env = *state;
    for (int rep = 0; rep < 10; rep++) {
        int64_t n = rep == 0 ? 1 : gt_randint(env, 1, 9), d = rep == 1 ? 1 : gt_randint(env, 1, 7);
        int64_t n_c = rep == 2 ? 1 : gt_randint(env, 1, 5);
        int64_t *lab = malloc((size_t)n * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            lab[i] = rep == 3 ? n_c - 1 : gt_randint(env, 0, n_c - 1); /* rep 3: one class */
        /* forward and full gradients against the reference */
        int64_t nf[2] = {n, d}, nc[2] = {n_c, d};
        gtl__tensor *f = gt_leaf(env, 2, nf, NULL, true);
        gtl__tensor *c = gt_leaf(env, 2, nc, NULL, true);
        gtl__tensor *l;
        assert_int_equal(gtl__op_center_loss(env->tape, f, c, lab, &l), GTL_STATUS_OK);
        assert_int_equal(l->nd, 0);
        double *gf = malloc((size_t)(n * d) * sizeof(double));
        double *gc = malloc((size_t)(n_c * d) * sizeof(double));
        float want = (float)ref_center(f->data, c->data, lab, n, d, n_c, gf, gc);
        gt_assert_close(l->data, &want, 1, 1e-6, 1e-5, "center forward");
        assert_int_equal(gtl__tape_backward(env->tape, l), GTL_STATUS_OK);
        float *w = malloc((size_t)((n + n_c) * d) * sizeof(float));
        for (int64_t i = 0; i < n * d; i++)
            w[i] = (float)gf[i];
        for (int64_t i = 0; i < n_c * d; i++)
            w[n * d + i] = (float)gc[i];
        gt_assert_close(f->grad, w, n * d, 1e-6, 1e-5, "center dfeat");
        gt_assert_close(c->grad, w + n * d, n_c * d, 1e-6, 1e-5, "center dcenters");
        free(gf);
        free(gc);
        free(w);
        gtl__tape_reset(env->tape);
        /* central differences */
        center_ud u = {lab};
        gt_input in[2] = {{.nd = 2, .ne = {n, d}}, {.nd = 2, .ne = {n_c, d}}};
        if (rep % 4 == 3)
            in[rep % 2].no_grad = true;
        gt_gradcheck(env, "center_loss", center_fn, &u, 2, in, NULL);
        free(lab);
    }
}

static void test_center_labels_copied(void **state)
{
    gt_env *env = *state;
    int64_t lab[6] = {0, 2, 2, 1, 0, 2};
    int64_t nf[2] = {6, 3}, nc[2] = {3, 3};
    gtl__tensor *f = gt_leaf(env, 2, nf, NULL, true);
    gtl__tensor *c = gt_leaf(env, 2, nc, NULL, true);
    double gf[18], gc[9];
    ref_center(f->data, c->data, lab, 6, 3, 3, gf, gc);
    gtl__tensor *l;
    assert_int_equal(gtl__op_center_loss(env->tape, f, c, lab, &l), GTL_STATUS_OK);
    for (int i = 0; i < 6; i++)
        lab[i] = (lab[i] + 1) % 3;
    assert_int_equal(gtl__tape_backward(env->tape, l), GTL_STATUS_OK);
    float wf[18], wc[9];
    for (int i = 0; i < 18; i++)
        wf[i] = (float)gf[i];
    for (int i = 0; i < 9; i++)
        wc[i] = (float)gc[i];
    gt_assert_close(f->grad, wf, 18, 1e-6, 1e-5, "center labels copied (dfeat)");
    gt_assert_close(c->grad, wc, 9, 1e-6, 1e-5, "center labels copied (dcenters)");
}

static void test_center_bad_args(void **state)
{
    gt_env *env = *state;
    int64_t nf[2] = {3, 4}, nc[2] = {2, 4}, nc5[2] = {2, 5}, n0[2] = {0, 4};
    gtl__tensor *f = gt_leaf(env, 2, nf, NULL, true);
    gtl__tensor *c = gt_leaf(env, 2, nc, NULL, true);
    gtl__tensor *c5 = gt_leaf(env, 2, nc5, NULL, true);
    gtl__tensor *f0 = gt_leaf(env, 2, n0, NULL, true);
    const int64_t bad_labels[2][3] = {{0, -1, 1}, {0, 1, 2}};
    gtl__tensor *out;
    for (int i = 0; i < 2; i++) {
        out = (gtl__tensor *)1;
        assert_int_equal(gtl__op_center_loss(env->tape, f, c, bad_labels[i], &out),
                         GTL_STATUS_INVALID_ARG);
        assert_null(out);
        assert_non_null(strstr(gtl_last_error(), "center_loss"));
        assert_non_null(strstr(gtl_last_error(), "label"));
    }
    const int64_t ok[3] = {0, 1, 1};
    out = (gtl__tensor *)1;
    assert_int_equal(gtl__op_center_loss(env->tape, f, c, NULL, &out), GTL_STATUS_INVALID_ARG);
    assert_null(out);
    assert_int_equal(gtl__op_center_loss(env->tape, f, c5, ok, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_center_loss(env->tape, f0, c, ok, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_center_loss(env->tape, NULL, c, ok, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__op_center_loss(env->tape, f, NULL, ok, &out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, 0);
    assert_int_equal(gtl__op_center_loss(env->tape, f, c, ok, &out), GTL_STATUS_OK);
    assert_int_equal(env->tape->n_nodes, 1);
    printf("# metric ops: %lld oneDNN primitives (plain loops)\n",
           (long long)gtl__ctx_num_prims(env->ctx));
    assert_int_equal(gtl__ctx_num_prims(env->ctx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_l2_normalize_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_l2_normalize_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_l2_normalize_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cosine_forward, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cosine_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cosine_same_tensor_accumulates, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_cosine_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_triplet_forward_and_reference_grad, gt_setup,
                                        gt_teardown),
        cmocka_unit_test_setup_teardown(test_triplet_edge_cases, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_triplet_ties_pick_first, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_triplet_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_triplet_labels_copied, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_triplet_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_center_forward_and_grad, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_center_labels_copied, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_center_bad_args, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests_name("op_metric", tests, NULL, NULL);
}
