/* Baselines on one support/query pair: nearest centroid (cosine, optionally
 * centred) and a linear probe (multinomial logistic regression, L-BFGS).
 * See docs/evaluation.md for the formulas. Shapes: S support rows, Q query
 * rows, F features, C classes (the support's class index). */
#include <math.h>
#include <string.h>

#include "eval/eval.h"

/* Dot product with 16 independent partial sums: the inner loop is lane-wise,
 * so the compiler can vectorise it without -ffast-math reassociation, and
 * the result does not depend on the build's vector width. */
static float dot_f32(const float *a, const float *b, int64_t n)
{
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (; i < n; i++)
        s += a[i] * b[i];
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

static int64_t argmax_f32(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t k = 1; k < n; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

gtl_status gtl__eval_ncm(const gtl_dataset *sup, const gtl_dataset *qry, bool centred,
                         int64_t *pred, float *scores)
{
    int64_t F = sup->dim, C = sup->n_cls;
    float *mean = gtl__calloc((size_t)F, sizeof(float));     // (F)
    float *cent = gtl__calloc((size_t)(C * F), sizeof(float)); // (C, F)
    float *v = gtl__malloc((size_t)F * sizeof(float));        // (F)
    float *row = gtl__malloc((size_t)C * sizeof(float));      // (C)
    gtl_status st = GTL_STATUS_OK;
    if (mean == NULL || cent == NULL || v == NULL || row == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "nearest centroid: out of memory");
        goto out_free;
    }
    if (centred) {
        /* Mean of the raw support features, accumulated in double. */
        for (int64_t f = 0; f < F; f++) {
            double s = 0;
            for (int64_t i = 0; i < sup->n; i++)
                s += sup->x[i * F + f];
            mean[f] = (float)(s / (double)sup->n);
        }
    }
    /* Centroid of class c: mean of its L2-normalised support rows, then
     * normalised itself so that a dot product with a unit query is the cosine. */
    for (int64_t c = 0; c < C; c++) {
        float *cc = cent + c * F;
        int64_t s0 = sup->cls_start[c], s1 = sup->cls_start[c + 1];
        for (int64_t j = s0; j < s1; j++) {
            const float *x = sup->x + sup->cls_idx[j] * F;
            for (int64_t f = 0; f < F; f++)
                v[f] = x[f] - mean[f];
            float nrm = sqrtf(dot_f32(v, v, F));
            float inv = nrm > 1e-30f ? 1.0f / nrm : 0.0f;
            for (int64_t f = 0; f < F; f++)
                cc[f] += v[f] * inv;
        }
        float nrm = sqrtf(dot_f32(cc, cc, F));
        float inv = nrm > 1e-30f ? 1.0f / nrm : 0.0f;
        for (int64_t f = 0; f < F; f++)
            cc[f] *= inv;
    }
    for (int64_t i = 0; i < qry->n; i++) {
        const float *x = qry->x + i * F;
        if (centred) {
            for (int64_t f = 0; f < F; f++)
                v[f] = x[f] - mean[f];
            x = v;
        }
        float nrm = sqrtf(dot_f32(x, x, F));
        float inv = nrm > 1e-30f ? 1.0f / nrm : 0.0f;
        for (int64_t c = 0; c < C; c++)
            row[c] = dot_f32(x, cent + c * F, F) * inv;
        pred[i] = argmax_f32(row, C);
        if (scores != NULL)
            memcpy(scores + i * C, row, (size_t)C * sizeof(float));
    }

out_free:
    gtl__free(mean);
    gtl__free(cent);
    gtl__free(v);
    gtl__free(row);
    return st;
}

/* ---- linear probe --------------------------------------------------------
 * Parameters theta = [W (C, F) ; b (C)], P = C * F + C values, in double.
 * f(theta) = (1/S) sum_i -log softmax(W x_i + b)[y_i] + (l2 / 2) ||W||^2. */

typedef struct probe {
    const double *x;  /* (S, F) normalised support rows */
    const int64_t *y; /* (S) class indices */
    int64_t S, F, C;
    double l2;
    double *logits;   /* (C) scratch */
} probe;

/* Logits of one row x (F) into z (C). */
static void probe_logits(const probe *p, const double *theta, const double *x, double *z)
{
    const double *b = theta + p->C * p->F;
    for (int64_t c = 0; c < p->C; c++) {
        const double *w = theta + c * p->F;
        double s = b[c];
        for (int64_t f = 0; f < p->F; f++)
            s += w[f] * x[f];
        z[c] = s;
    }
}

/* In-place softmax of z (C); returns log-sum-exp. */
static double softmax_inplace(double *z, int64_t C)
{
    double m = z[0];
    for (int64_t c = 1; c < C; c++)
        if (z[c] > m)
            m = z[c];
    double s = 0;
    for (int64_t c = 0; c < C; c++) {
        z[c] = exp(z[c] - m);
        s += z[c];
    }
    for (int64_t c = 0; c < C; c++)
        z[c] /= s;
    return m + log(s);
}

/* Objective and gradient g (P). */
static double probe_fg(probe *p, const double *theta, double *g)
{
    int64_t C = p->C, F = p->F, P = C * F + C;
    memset(g, 0, (size_t)P * sizeof(double));
    double loss = 0;
    for (int64_t i = 0; i < p->S; i++) {
        const double *x = p->x + i * F;
        double *z = p->logits;
        probe_logits(p, theta, x, z);
        double zy = z[p->y[i]];
        loss += softmax_inplace(z, C) - zy;
        z[p->y[i]] -= 1.0; /* dloss/dlogits = p - onehot */
        for (int64_t c = 0; c < C; c++) {
            double d = z[c];
            double *gw = g + c * F;
            for (int64_t f = 0; f < F; f++)
                gw[f] += d * x[f];
            g[C * F + c] += d;
        }
    }
    double inv = 1.0 / (double)p->S, reg = 0;
    for (int64_t k = 0; k < P; k++)
        g[k] *= inv;
    for (int64_t k = 0; k < C * F; k++) {
        reg += theta[k] * theta[k];
        g[k] += p->l2 * theta[k];
    }
    return loss * inv + 0.5 * p->l2 * reg;
}

static double dot_f64(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Writes the L2-normalised rows of ds into dst (n, F) as doubles. */
static void normalise_rows(const gtl_dataset *ds, double *dst)
{
    int64_t F = ds->dim;
    for (int64_t i = 0; i < ds->n; i++) {
        const float *x = ds->x + i * F;
        double s = 0;
        for (int64_t f = 0; f < F; f++)
            s += (double)x[f] * x[f];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        for (int64_t f = 0; f < F; f++)
            dst[i * F + f] = x[f] * inv;
    }
}

#define PROBE_MEM 10
#define PROBE_GTOL 1e-7

/* L-BFGS (two-loop recursion, Nocedal & Wright alg. 7.4) with backtracking
 * Armijo line search, from theta = 0. Deterministic: fixed order of every sum. */
static void probe_fit(probe *p, double *theta, int64_t n_iters, double *work)
{
    int64_t P = p->C * p->F + p->C, M = PROBE_MEM;
    double *g = work, *d = g + P, *xn = d + P, *gn = xn + P;
    double *s = gn + P, *yv = s + M * P; /* (M, P) each */
    double rho[PROBE_MEM], alpha[PROBE_MEM];
    int64_t n_mem = 0, head = 0; /* ring buffer of the last M pairs */
    memset(theta, 0, (size_t)P * sizeof(double));
    double fx = probe_fg(p, theta, g);
    for (int64_t it = 0; it < n_iters; it++) {
        double gmax = 0;
        for (int64_t k = 0; k < P; k++)
            gmax = fmax(gmax, fabs(g[k]));
        if (gmax < PROBE_GTOL)
            break;
        /* d = -H g by the two-loop recursion over the stored pairs. */
        for (int64_t k = 0; k < P; k++)
            d[k] = -g[k];
        for (int64_t j = 0; j < n_mem; j++) {
            int64_t m = (head - 1 - j + M) % M;
            alpha[m] = rho[m] * dot_f64(s + m * P, d, P);
            for (int64_t k = 0; k < P; k++)
                d[k] -= alpha[m] * yv[m * P + k];
        }
        double gamma = 1.0;
        if (n_mem > 0) {
            int64_t m = (head - 1 + M) % M;
            gamma = dot_f64(s + m * P, yv + m * P, P) / dot_f64(yv + m * P, yv + m * P, P);
        } else {
            double gn2 = sqrt(dot_f64(g, g, P));
            gamma = gn2 > 1.0 ? 1.0 / gn2 : 1.0;
        }
        for (int64_t k = 0; k < P; k++)
            d[k] *= gamma;
        for (int64_t j = n_mem - 1; j >= 0; j--) {
            int64_t m = (head - 1 - j + M) % M;
            double beta = rho[m] * dot_f64(yv + m * P, d, P);
            for (int64_t k = 0; k < P; k++)
                d[k] += (alpha[m] - beta) * s[m * P + k];
        }
        double gd = dot_f64(g, d, P);
        if (!(gd < 0)) {
            /* Not a descent direction (numerical trouble): restart from -g. */
            n_mem = 0;
            for (int64_t k = 0; k < P; k++)
                d[k] = -g[k];
            gd = -dot_f64(g, g, P);
        }
        double t = 1.0, fn = 0;
        int tries;
        for (tries = 0; tries < 50; tries++) {
            for (int64_t k = 0; k < P; k++)
                xn[k] = theta[k] + t * d[k];
            fn = probe_fg(p, xn, gn);
            if (fn <= fx + 1e-4 * t * gd)
                break;
            t *= 0.5;
        }
        if (tries == 50)
            break; /* no decrease possible at this precision: converged */
        /* Store the pair (s, y) when the curvature condition holds. */
        double *sm = s + head * P, *ym = yv + head * P;
        for (int64_t k = 0; k < P; k++) {
            sm[k] = xn[k] - theta[k];
            ym[k] = gn[k] - g[k];
        }
        double sy = dot_f64(sm, ym, P);
        if (sy > 1e-12) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % M;
            if (n_mem < M)
                n_mem++;
        }
        memcpy(theta, xn, (size_t)P * sizeof(double));
        memcpy(g, gn, (size_t)P * sizeof(double));
        fx = fn;
    }
}

gtl_status gtl__eval_probe(const gtl_dataset *sup, const gtl_dataset *qry, int64_t n_iters,
                           double l2, int64_t *pred, float *probs)
{
    int64_t F = sup->dim, C = sup->n_cls, S = sup->n, P = C * F + C;
    size_t n_x = (size_t)((S > qry->n ? S : qry->n) * F);
    double *x = gtl__malloc(n_x * sizeof(double));                         // (max(S, Q), F)
    int64_t *y = gtl__malloc((size_t)S * sizeof(int64_t));                 // (S)
    double *theta = gtl__malloc((size_t)P * sizeof(double));               // (P)
    double *work = gtl__malloc((size_t)(4 + 2 * PROBE_MEM) * (size_t)P * sizeof(double));
    double *z = gtl__malloc((size_t)C * sizeof(double));                   // (C)
    gtl_status st = GTL_STATUS_OK;
    if (x == NULL || y == NULL || theta == NULL || work == NULL || z == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "linear probe: out of memory (%lld parameters)",
                        (long long)P);
        goto out_free;
    }
    normalise_rows(sup, x);
    for (int64_t c = 0; c < C; c++)
        for (int64_t j = sup->cls_start[c]; j < sup->cls_start[c + 1]; j++)
            y[sup->cls_idx[j]] = c;
    probe p = {.x = x, .y = y, .S = S, .F = F, .C = C, .l2 = l2, .logits = z};
    probe_fit(&p, theta, n_iters, work);
    normalise_rows(qry, x);
    for (int64_t i = 0; i < qry->n; i++) {
        probe_logits(&p, theta, x + i * F, z);
        softmax_inplace(z, C);
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (z[c] > z[best])
                best = c;
        pred[i] = best;
        if (probs != NULL)
            for (int64_t c = 0; c < C; c++)
                probs[i * C + c] = (float)z[c];
    }

out_free:
    gtl__free(x);
    gtl__free(y);
    gtl__free(theta);
    gtl__free(work);
    gtl__free(z);
    return st;
}
