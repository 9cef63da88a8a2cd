/* Metric learning: row L2 normalisation, cosine distance, batch-hard triplet
 * loss (cosine distance) and center loss.
 * Shapes: feat/src/a (N, D), b (M, D), centers (C, D), labels (N).
 * Everything works on normalised rows y = x / max(||x||, eps): the forward
 * keeps y, 1 / max(||x||, eps) and whether the norm was clamped, and every
 * backward ends in the same row rule (l2_row_backward).
 * Derivations: docs/autograd.md#metric-learning. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

/* Norm floor of cosine_distance and triplet_hard (the default of PyTorch's
 * F.normalize): a zero row normalises to 0, so its cosine with anything is 0. */
#define COS_EPS 1e-12f

/* Arena array of n elements of size bytes, overflow-checked. */
static void *alloc_array(gtl__tape *tape, int64_t n, size_t size)
{
    size_t bytes;
    if (n < 0 || !gtl__mul_size((size_t)n, size, &bytes)) {
        gtl__error(GTL_STATUS_OUT_OF_MEMORY, "metric op: scratch size overflows");
        return NULL;
    }
    return gtl__tape_alloc(tape, bytes);
}

/* sum_k a[k] b[k] in double, four partial sums so the loop pipelines. */
static double dot_f64(const float *a, const float *b, int64_t d)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t k = 0;
    for (; k + 4 <= d; k += 4) {
        s0 += (double)a[k] * b[k];
        s1 += (double)a[k + 1] * b[k + 1];
        s2 += (double)a[k + 2] * b[k + 2];
        s3 += (double)a[k + 3] * b[k + 3];
    }
    for (; k < d; k++)
        s0 += (double)a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* Normalised rows of an (N, D) matrix and what their backward needs. */
typedef struct l2_rows {
    float *y;          /* (N, D) x / max(||x||, eps) */
    double *inv;       /* (N) 1 / max(||x||, eps) */
    uint8_t *clamped;  /* (N) 1 where ||x|| < eps: y = x / eps, a plain scaling */
} l2_rows;

/* Fills r for src; y is given (the op's output) or NULL to take arena memory. */
static gtl_status l2_rows_make(gtl__tape *tape, const gtl__tensor *src, float eps, float *y,
                               l2_rows *r)
{
    int64_t n = src->ne[0], d = src->ne[1];
    r->y = y != NULL ? y : alloc_array(tape, n * d, sizeof(float));
    r->inv = alloc_array(tape, n, sizeof(double));
    r->clamped = alloc_array(tape, n, sizeof(uint8_t));
    if (r->y == NULL || r->inv == NULL || r->clamped == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        const float *x = src->data + i * d;
        double norm = sqrt(dot_f64(x, x, d));
        r->clamped[i] = norm < (double)eps;
        r->inv[i] = 1.0 / (r->clamped[i] ? (double)eps : norm);
        for (int64_t k = 0; k < d; k++)
            r->y[i * d + k] = (float)((double)x[k] * r->inv[i]);
    }
    return GTL_STATUS_OK;
}

/* dx += J^T dy for y = x / max(||x||, eps), one row:
 * unclamped dx = (dy - y (y . dy)) / ||x||, clamped dx = dy / eps. */
static void l2_row_backward(const float *y, double inv, bool clamped, const double *dy,
                            int64_t d, float *dx)
{
    double yg = 0.0;
    if (!clamped)
        for (int64_t k = 0; k < d; k++)
            yg += (double)y[k] * dy[k];
    for (int64_t k = 0; k < d; k++)
        dx[k] += (float)((dy[k] - (double)y[k] * yg) * inv);
}

static bool is_matrix(const gtl__tensor *t)
{
    return t->nd == 2;
}

/* ---- l2_normalize --------------------------------------------------------- */

static gtl_status l2_normalize_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    const l2_rows *r = node->saved;
    int64_t n = src->ne[0], d = src->ne[1];
    float *gx;
    gtl_status st = gtl__tape_grad(tape, src, &gx);
    if (st != GTL_STATUS_OK)
        return st;
    double *dy = alloc_array(tape, d, sizeof(double));
    if (dy == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < d; k++)
            dy[k] = dst->grad[i * d + k];
        l2_row_backward(dst->data + i * d, r->inv[i], r->clamped[i], dy, d, gx + i * d);
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_l2_normalize(gtl__tape *tape, gtl__tensor *src, float eps,
                                gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "l2_normalize: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (!is_matrix(src)) {
        char s[64];
        return gtl__error(GTL_STATUS_INVALID_ARG, "l2_normalize: src %s is not (N, D)",
                          gtl__shape_str(src, s, sizeof s));
    }
    if (!(eps > 0.0f) || isinf(eps))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "l2_normalize: eps must be finite and > 0 (got %g)", (double)eps);
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 2, src->ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    l2_rows *r = gtl__tape_alloc(tape, sizeof *r);
    if (r == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    st = l2_rows_make(tape, src, eps, dst->data, r);
    if (st != GTL_STATUS_OK)
        return st;
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "l2_normalize", l2_normalize_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = r;
        node->fp[0] = eps;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- cosine_distance ------------------------------------------------------ */

typedef struct cos_saved {
    l2_rows a, b;      /* b aliases a when the same tensor was passed twice */
} cos_saved;

/* dst_ij = 1 - ya_i . yb_j, G = dL/ddst:
 * dya_i = -sum_j G_ij yb_j, dyb_j = -sum_i G_ij ya_i, then the row rule.
 * When a and b are one tensor both contributions add into its one buffer. */
static gtl_status cosine_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *a = node->src[0], *b = node->src[1];
    const cos_saved *sv = node->saved;
    const float *g = node->dst->grad;
    int64_t n = a->ne[0], m = b->ne[0], d = a->ne[1];
    gtl_status st;
    if (gtl__requires_grad(a)) {
        float *ga;
        st = gtl__tape_grad(tape, a, &ga);
        if (st != GTL_STATUS_OK)
            return st;
        double *dy = alloc_array(tape, d, sizeof(double));
        if (dy == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        for (int64_t i = 0; i < n; i++) {
            memset(dy, 0, (size_t)d * sizeof(double));
            for (int64_t j = 0; j < m; j++) {
                double gij = -(double)g[i * m + j];
                const float *yb = sv->b.y + j * d;
                for (int64_t k = 0; k < d; k++)
                    dy[k] += gij * yb[k];
            }
            l2_row_backward(sv->a.y + i * d, sv->a.inv[i], sv->a.clamped[i], dy, d,
                            ga + i * d);
        }
    }
    if (gtl__requires_grad(b)) {
        float *gb;
        st = gtl__tape_grad(tape, b, &gb);
        if (st != GTL_STATUS_OK)
            return st;
        /* All of dyb at once so both loops run along contiguous rows. */
        double *dy = alloc_array(tape, m * d, sizeof(double));
        if (dy == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        memset(dy, 0, (size_t)(m * d) * sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            const float *ya = sv->a.y + i * d;
            for (int64_t j = 0; j < m; j++) {
                double gij = -(double)g[i * m + j];
                double *dyj = dy + j * d;
                for (int64_t k = 0; k < d; k++)
                    dyj[k] += gij * ya[k];
            }
        }
        for (int64_t j = 0; j < m; j++)
            l2_row_backward(sv->b.y + j * d, sv->b.inv[j], sv->b.clamped[j], dy + j * d, d,
                            gb + j * d);
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_cosine_distance(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b,
                                   gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || a == NULL || b == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cosine_distance: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (!is_matrix(a) || !is_matrix(b) || a->ne[1] != b->ne[1]) {
        char sa[64], sb[64];
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "cosine_distance: a %s and b %s must be (N, D) and (M, D)",
                          gtl__shape_str(a, sa, sizeof sa), gtl__shape_str(b, sb, sizeof sb));
    }
    int64_t n = a->ne[0], m = b->ne[0], d = a->ne[1];
    gtl__tensor *src[2] = {a, b};
    int64_t ne[2] = {n, m};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 2, ne, src, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    cos_saved *sv = gtl__tape_alloc(tape, sizeof *sv);
    if (sv == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    st = l2_rows_make(tape, a, COS_EPS, NULL, &sv->a);
    if (st != GTL_STATUS_OK)
        return st;
    if (b == a) {
        sv->b = sv->a;
    } else {
        st = l2_rows_make(tape, b, COS_EPS, NULL, &sv->b);
        if (st != GTL_STATUS_OK)
            return st;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++)
            dst->data[i * m + j] =
                (float)(1.0 - dot_f64(sv->a.y + i * d, sv->b.y + j * d, d));
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "cosine_distance", cosine_backward, dst, src, 2, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = sv;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- triplet_hard --------------------------------------------------------- */

typedef struct triplet_saved {
    l2_rows f;
    int64_t *labels;   /* (N) copy of the caller's labels */
    int64_t *pos;      /* (N) hardest positive of an active anchor, else -1 */
    int64_t *neg;      /* (N) hardest negative of an active anchor, else -1 */
    int64_t n_used;    /* anchors with both a positive and a negative */
} triplet_saved;

/* L = (1/U) sum_{active i} (d_ip - d_in + margin), d_ij = 1 - y_i . y_j, with the
 * selection (p, n) held fixed: dy_i += s (y_n - y_p), dy_p -= s y_i,
 * dy_n += s y_i with s = g / U; then the row rule for every row. */
static gtl_status triplet_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *feat = node->src[0];
    const triplet_saved *sv = node->saved;
    int64_t n = feat->ne[0], d = feat->ne[1];
    if (sv->n_used == 0)
        return GTL_STATUS_OK;
    float *gf;
    gtl_status st = gtl__tape_grad(tape, feat, &gf);
    if (st != GTL_STATUS_OK)
        return st;
    double *dy = alloc_array(tape, n * d, sizeof(double));
    if (dy == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    memset(dy, 0, (size_t)(n * d) * sizeof(double));
    double s = (double)node->dst->grad[0] / (double)sv->n_used;
    const float *y = sv->f.y;
    for (int64_t i = 0; i < n; i++) {
        int64_t p = sv->pos[i], q = sv->neg[i];
        if (p < 0)
            continue;
        const float *yi = y + i * d, *yp = y + p * d, *yq = y + q * d;
        double *di = dy + i * d, *dp = dy + p * d, *dq = dy + q * d;
        for (int64_t k = 0; k < d; k++) {
            di[k] += s * ((double)yq[k] - (double)yp[k]);
            dp[k] -= s * yi[k];
            dq[k] += s * yi[k];
        }
    }
    for (int64_t i = 0; i < n; i++)
        l2_row_backward(y + i * d, sv->f.inv[i], sv->f.clamped[i], dy + i * d, d, gf + i * d);
    return GTL_STATUS_OK;
}

gtl_status gtl__op_triplet_hard(gtl__tape *tape, gtl__tensor *feat, const int64_t *labels,
                                float margin, gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || feat == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "triplet_hard: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (!is_matrix(feat)) {
        char s[64];
        return gtl__error(GTL_STATUS_INVALID_ARG, "triplet_hard: feat %s is not (N, D)",
                          gtl__shape_str(feat, s, sizeof s));
    }
    int64_t n = feat->ne[0], d = feat->ne[1];
    if (labels == NULL && n > 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "triplet_hard: NULL labels");
    if (!isfinite(margin))
        return gtl__error(GTL_STATUS_INVALID_ARG, "triplet_hard: margin %g is not finite",
                          (double)margin);
    if (n > 0 && n > INT64_MAX / n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "triplet_hard: %lld rows is too many",
                          (long long)n);
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 0, NULL, &feat, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    triplet_saved *sv = gtl__tape_alloc(tape, sizeof *sv);
    if (sv == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    sv->labels = alloc_array(tape, n, sizeof(int64_t));
    sv->pos = alloc_array(tape, n, sizeof(int64_t));
    sv->neg = alloc_array(tape, n, sizeof(int64_t));
    /* (N, N) distances; the Gram matrix is symmetric, so half is computed. */
    double *dist = alloc_array(tape, n * n, sizeof(double));
    if (sv->labels == NULL || sv->pos == NULL || sv->neg == NULL || dist == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    if (n > 0)
        memcpy(sv->labels, labels, (size_t)n * sizeof(int64_t));
    st = l2_rows_make(tape, feat, COS_EPS, NULL, &sv->f);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            dist[i * n + j] = dist[j * n + i] =
                1.0 - dot_f64(sv->f.y + i * d, sv->f.y + j * d, d);
    /* Hardest positive: largest distance; hardest negative: smallest. Strict
     * comparisons in index order pick the first index on ties. */
    double sum = 0.0;
    sv->n_used = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t p = -1, q = -1;
        const double *row = dist + i * n;
        for (int64_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            if (sv->labels[j] == sv->labels[i]) {
                if (p < 0 || row[j] > row[p])
                    p = j;
            } else if (q < 0 || row[j] < row[q]) {
                q = j;
            }
        }
        sv->pos[i] = -1;
        sv->neg[i] = -1;
        if (p < 0 || q < 0)
            continue; /* no positive or no negative: the anchor is skipped */
        sv->n_used++;
        double h = row[p] - row[q] + (double)margin;
        if (h > 0.0) {
            sum += h;
            sv->pos[i] = p;
            sv->neg[i] = q;
        }
    }
    dst->data[0] = sv->n_used > 0 ? (float)(sum / (double)sv->n_used) : 0.0f;
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "triplet_hard", triplet_backward, dst, &feat, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = sv;
        node->fp[0] = margin;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- center_loss ---------------------------------------------------------- */

typedef struct center_saved {
    int64_t *labels;   /* (N) copy of the caller's labels */
} center_saved;

/* L = (1/N) sum_i ||f_i - c_{y_i}||^2, s = 2 g / N:
 * df_i += s (f_i - c_{y_i}); dc_c -= s sum_{i: y_i = c} (f_i - c_c).
 * The class sums are gathered class by class (counting sort of the labels)
 * and accumulated in double before one write per center row. */
static gtl_status center_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *feat = node->src[0], *centers = node->src[1];
    const center_saved *sv = node->saved;
    int64_t n = feat->ne[0], d = feat->ne[1], c = centers->ne[0];
    double s = 2.0 * (double)node->dst->grad[0] / (double)n;
    gtl_status st;
    if (gtl__requires_grad(feat)) {
        float *gf;
        st = gtl__tape_grad(tape, feat, &gf);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < n; i++) {
            const float *f = feat->data + i * d, *ct = centers->data + sv->labels[i] * d;
            for (int64_t k = 0; k < d; k++)
                gf[i * d + k] += (float)(s * ((double)f[k] - (double)ct[k]));
        }
    }
    if (gtl__requires_grad(centers)) {
        float *gc;
        st = gtl__tape_grad(tape, centers, &gc);
        if (st != GTL_STATUS_OK)
            return st;
        int64_t *start = alloc_array(tape, c + 1, sizeof(int64_t));
        int64_t *order = alloc_array(tape, n, sizeof(int64_t));
        double *acc = alloc_array(tape, d, sizeof(double));
        if (start == NULL || order == NULL || acc == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        memset(start, 0, (size_t)(c + 1) * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++)
            start[sv->labels[i] + 1]++;
        for (int64_t k = 0; k < c; k++)
            start[k + 1] += start[k];
        for (int64_t i = 0; i < n; i++)
            order[start[sv->labels[i]]++] = i;
        /* start[k] is now the end of class k, so class k is [start[k-1], start[k]). */
        for (int64_t k = 0, begin = 0; k < c; begin = start[k], k++) {
            if (start[k] == begin)
                continue;
            const float *ct = centers->data + k * d;
            memset(acc, 0, (size_t)d * sizeof(double));
            for (int64_t o = begin; o < start[k]; o++) {
                const float *f = feat->data + order[o] * d;
                for (int64_t j = 0; j < d; j++)
                    acc[j] += (double)f[j] - (double)ct[j];
            }
            for (int64_t j = 0; j < d; j++)
                gc[k * d + j] -= (float)(s * acc[j]);
        }
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_center_loss(gtl__tape *tape, gtl__tensor *feat, gtl__tensor *centers,
                               const int64_t *labels, gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || feat == NULL || centers == NULL || labels == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "center_loss: NULL %s",
                          tape == NULL ? "tape" : labels == NULL ? "labels" : "tensor");
    if (!is_matrix(feat) || !is_matrix(centers) || feat->ne[1] != centers->ne[1]) {
        char sf[64], sc[64];
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "center_loss: feat %s and centers %s must be (N, D) and (C, D)",
                          gtl__shape_str(feat, sf, sizeof sf),
                          gtl__shape_str(centers, sc, sizeof sc));
    }
    int64_t n = feat->ne[0], d = feat->ne[1], c = centers->ne[0];
    if (n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "center_loss: no rows (the mean over rows is undefined)");
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "center_loss: label %lld of row %lld is outside [0, %lld)",
                              (long long)labels[i], (long long)i, (long long)c);
    gtl__tensor *src[2] = {feat, centers};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 0, NULL, src, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *f = feat->data + i * d, *ct = centers->data + labels[i] * d;
        for (int64_t k = 0; k < d; k++) {
            double v = (double)f[k] - (double)ct[k];
            sum += v * v;
        }
    }
    dst->data[0] = (float)(sum / (double)n);
    if (gtl__requires_grad(dst)) {
        center_saved *sv = gtl__tape_alloc(tape, sizeof *sv);
        if (sv == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        sv->labels = alloc_array(tape, n, sizeof(int64_t));
        if (sv->labels == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        memcpy(sv->labels, labels, (size_t)n * sizeof(int64_t));
        gtl__node *node;
        st = gtl__tape_record(tape, "center_loss", center_backward, dst, src, 2, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = sv;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
