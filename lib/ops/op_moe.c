/* Sparsely gated adapters: u[n] = sum_k g[n,k] (A_k x_n + a_k) over the
 * non-zero gates only. Rows are grouped by adapter, so each active adapter is
 * one pass over its weights A_k (M, F) for the rows that use it.
 * Derivation: docs/autograd.md#gated-adapters.
 *
 * The groups are small (a batch of 64 spreads over the 128 adapters, a few
 * rows each), so the products are memory-bound on A_k and dA_k (327 KB each
 * at M 64, F 1280; 42 MB for all adapters): the kernels below read A_k once
 * per pass, and the backward produces dX and dA_k in the same sweep over the
 * rows of A_k, accumulating straight into the gradients. (dnnl_sgemm, used
 * before, packed A_k, a second read and a write of it, for every group.)
 * Rows go four at a time, so a large group still reads A_k from L1/L2.
 *
 * Gradient with respect to the gate: computed at the non-zero entries only
 * (zero elsewhere). That is exact for a sparsemax gate, whose Jacobian is
 * zero off its support, which is the only way GTL uses this op. */
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

/* Rows grouped by adapter (CSR): rows[start[k] .. start[k+1]) use adapter k. */
typedef struct moe_saved {
    int64_t *start;   /* (d + 1) */
    int64_t *rows;    /* (n_active) */
    float *y;         /* (n_active, M): A_k x_n + a_k for each active pair */
    int64_t n_active;
} moe_saved;

/* The kernels use GCC vector extensions (8 floats, unaligned loads) and get
 * an AVX2 copy chosen at load time (function multiversioning), as the
 * optimizer's loops do; the sums are reassociated into 8 lanes. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#  define MOE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#  define MOE_CLONES
#endif

typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));

static inline float hsum8(v8 a)
{
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

/* y[i * ldy] = a . xs[i] for i < nr (F-vectors), four rows per pass over a. */
MOE_CLONES
static void dots(const float *restrict a, const float *const *xs, int64_t nr, int64_t f,
                 float *restrict y, int64_t ldy)
{
    int64_t f8 = f - f % 8, i = 0;
    for (; i + 4 <= nr; i += 4) {
        const float *x0 = xs[i], *x1 = xs[i + 1], *x2 = xs[i + 2], *x3 = xs[i + 3];
        v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (int64_t t = 0; t < f8; t += 8) {
            v8 va = *(const v8 *)(a + t);
            s0 += va * *(const v8 *)(x0 + t);
            s1 += va * *(const v8 *)(x1 + t);
            s2 += va * *(const v8 *)(x2 + t);
            s3 += va * *(const v8 *)(x3 + t);
        }
        float r0 = hsum8(s0), r1 = hsum8(s1), r2 = hsum8(s2), r3 = hsum8(s3);
        for (int64_t t = f8; t < f; t++) {
            r0 += a[t] * x0[t];
            r1 += a[t] * x1[t];
            r2 += a[t] * x2[t];
            r3 += a[t] * x3[t];
        }
        y[i * ldy] = r0;
        y[(i + 1) * ldy] = r1;
        y[(i + 2) * ldy] = r2;
        y[(i + 3) * ldy] = r3;
    }
    for (; i < nr; i++) {
        const float *x0 = xs[i];
        v8 s0 = {0}, s1 = {0};
        int64_t t = 0;
        for (; t + 16 <= f8; t += 16) {
            s0 += *(const v8 *)(a + t) * *(const v8 *)(x0 + t);
            s1 += *(const v8 *)(a + t + 8) * *(const v8 *)(x0 + t + 8);
        }
        for (; t < f8; t += 8)
            s0 += *(const v8 *)(a + t) * *(const v8 *)(x0 + t);
        float r0 = hsum8(s0 + s1);
        for (t = f8; t < f; t++)
            r0 += a[t] * x0[t];
        y[i * ldy] = r0;
    }
}

/* ga += sum_i c[i * ldc] xs[i] (F-vectors), four rows per pass over ga. */
MOE_CLONES
static void axpys_into(float *restrict ga, const float *c, int64_t ldc, const float *const *xs,
                       int64_t nr, int64_t f)
{
    int64_t f8 = f - f % 8, i = 0;
    for (; i + 4 <= nr; i += 4) {
        const float *x0 = xs[i], *x1 = xs[i + 1], *x2 = xs[i + 2], *x3 = xs[i + 3];
        float c0 = c[i * ldc], c1 = c[(i + 1) * ldc], c2 = c[(i + 2) * ldc];
        float c3 = c[(i + 3) * ldc];
        for (int64_t t = 0; t < f8; t += 8) {
            v8 acc = (c0 * *(const v8 *)(x0 + t) + c1 * *(const v8 *)(x1 + t)) +
                     (c2 * *(const v8 *)(x2 + t) + c3 * *(const v8 *)(x3 + t));
            *(v8 *)(ga + t) += acc;
        }
        for (int64_t t = f8; t < f; t++)
            ga[t] += (c0 * x0[t] + c1 * x1[t]) + (c2 * x2[t] + c3 * x3[t]);
    }
    for (; i < nr; i++) {
        const float *x0 = xs[i];
        float c0 = c[i * ldc];
        for (int64_t t = 0; t < f8; t += 8)
            *(v8 *)(ga + t) += c0 * *(const v8 *)(x0 + t);
        for (int64_t t = f8; t < f; t++)
            ga[t] += c0 * x0[t];
    }
}

static gtl_status moe_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *x = node->src[0], *g = node->src[1], *w = node->src[2];
    gtl__tensor *b = node->n_src > 3 ? node->src[3] : NULL;
    const moe_saved *sv = node->saved;
    const float *du = node->dst->grad;
    int64_t d = w->ne[0], m = w->ne[1], f = w->ne[2];
    gtl_status st;
    float *gx = NULL, *gg = NULL, *gw = NULL, *gb = NULL;

    if (gtl__requires_grad(x) && (st = gtl__tape_grad(tape, x, &gx)) != GTL_STATUS_OK)
        return st;
    if (gtl__requires_grad(g) && (st = gtl__tape_grad(tape, g, &gg)) != GTL_STATUS_OK)
        return st;
    if (gtl__requires_grad(w) && (st = gtl__tape_grad(tape, w, &gw)) != GTL_STATUS_OK)
        return st;
    if (b != NULL && gtl__requires_grad(b) && (st = gtl__tape_grad(tape, b, &gb)) != GTL_STATUS_OK)
        return st;

    /* Scratch sized for the largest group, reused across adapters. */
    int64_t max_rows = 0;
    for (int64_t k = 0; k < d; k++)
        if (sv->start[k + 1] - sv->start[k] > max_rows)
            max_rows = sv->start[k + 1] - sv->start[k];
    size_t cap = (size_t)(max_rows ? max_rows : 1);
    float *dy = gtl__tape_alloc(tape, cap * (size_t)m * sizeof(float));
    const float **xs = gtl__tape_alloc(tape, cap * sizeof *xs);
    float **gxs = gtl__tape_alloc(tape, cap * sizeof *gxs);
    if (dy == NULL || xs == NULL || gxs == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;

    for (int64_t k = 0; k < d; k++) {
        int64_t s0 = sv->start[k], nk = sv->start[k + 1] - s0;
        if (nk == 0)
            continue;
        const int64_t *rows = sv->rows + s0;
        /* Row k of dA and da is written below: tell a row-tracked parameter
         * (zero_grad, clipping and the optimizer then touch only such rows). */
        if (gw != NULL)
            gtl__tensor_mark_row(w, k);
        if (gb != NULL)
            gtl__tensor_mark_row(b, k);
        /* dy_i = g[n,k] du_n; dg[n,k] = du_n . y_i */
        for (int64_t i = 0; i < nk; i++) {
            int64_t n = rows[i];
            float gv = g->data[n * d + k];
            const float *dun = du + n * m;
            const float *yi = sv->y + (s0 + i) * m;
            double dot = 0.0;
            for (int64_t j = 0; j < m; j++) {
                dy[i * m + j] = gv * dun[j];
                dot += (double)dun[j] * yi[j];
            }
            if (gg != NULL)
                gg[n * d + k] += (float)dot;
            xs[i] = x->data + n * f;
            if (gx != NULL)
                gxs[i] = gx + n * f;
        }
        /* One sweep over the rows j of A_k and dA_k, four at a time:
         * dx_i += sum_j dy[i,j] A_k[j,:]   and   dA_k[j,:] += sum_i dy[i,j] x_i */
        const float *ak = w->data + k * m * f;
        for (int64_t j0 = 0; j0 < m; j0 += 4) {
            int64_t nj = m - j0 < 4 ? m - j0 : 4;
            if (gx != NULL) {
                const float *arows[4];
                for (int64_t j = 0; j < nj; j++)
                    arows[j] = ak + (j0 + j) * f;
                for (int64_t i = 0; i < nk; i++)
                    axpys_into(gxs[i], dy + i * m + j0, 1, arows, nj, f);
            }
            if (gw != NULL)
                for (int64_t j = j0; j < j0 + nj; j++)
                    axpys_into(gw + (k * m + j) * f, dy + j, m, xs, nk, f);
        }
        if (gb != NULL)
            for (int64_t i = 0; i < nk; i++)
                for (int64_t j = 0; j < m; j++)
                    gb[k * m + j] += dy[i * m + j];
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_gated_adapters(gtl__tape *tape, gtl__tensor *x, gtl__tensor *gate,
                                  gtl__tensor *weight, gtl__tensor *bias, gtl__tensor **out)
{
    char s1[64], s2[64], s3[64];
    *out = NULL;
    if (x == NULL || gate == NULL || weight == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gated adapters: NULL tensor");
    if (x->nd != 2 || gate->nd != 2 || weight->nd != 3 || gate->ne[0] != x->ne[0] ||
        gate->ne[1] != weight->ne[0] || weight->ne[2] != x->ne[1])
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gated adapters: x %s, gate %s, weight %s do not fit "
                          "(want (N, F), (N, d), (d, M, F))",
                          gtl__shape_str(x, s1, sizeof s1), gtl__shape_str(gate, s2, sizeof s2),
                          gtl__shape_str(weight, s3, sizeof s3));
    int64_t n = x->ne[0], f = x->ne[1], d = weight->ne[0], m = weight->ne[1];
    if (bias != NULL && (bias->nd != 2 || bias->ne[0] != d || bias->ne[1] != m))
        return gtl__error(GTL_STATUS_INVALID_ARG, "gated adapters: bias must be (%lld, %lld)",
                          (long long)d, (long long)m);

    gtl__tensor *srcs[4] = {x, gate, weight, bias};
    int32_t n_src = bias != NULL ? 4 : 3;
    int64_t ne[2] = {n, m};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 2, ne, srcs, n_src, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    memset(dst->data, 0, (size_t)dst->n * sizeof(float));

    /* Group rows by adapter. */
    moe_saved *sv = gtl__tape_alloc(tape, sizeof *sv);
    if (sv == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    sv->start = gtl__tape_alloc(tape, (size_t)(d + 1) * sizeof(int64_t));
    if (sv->start == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    memset(sv->start, 0, (size_t)(d + 1) * sizeof(int64_t));
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < d; k++)
            if (gate->data[r * d + k] != 0.0f)
                sv->start[k + 1]++;
    for (int64_t k = 0; k < d; k++)
        sv->start[k + 1] += sv->start[k];
    sv->n_active = sv->start[d];
    sv->rows = gtl__tape_alloc(tape, (size_t)(sv->n_active ? sv->n_active : 1) * sizeof(int64_t));
    sv->y = gtl__tape_alloc(tape, (size_t)(sv->n_active ? sv->n_active : 1) * (size_t)m *
                                      sizeof(float));
    if (sv->rows == NULL || sv->y == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    {
        int64_t *fill = gtl__tape_alloc(tape, (size_t)(d ? d : 1) * sizeof(int64_t));
        if (fill == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        memcpy(fill, sv->start, (size_t)d * sizeof(int64_t));
        for (int64_t r = 0; r < n; r++)
            for (int64_t k = 0; k < d; k++)
                if (gate->data[r * d + k] != 0.0f)
                    sv->rows[fill[k]++] = r;
    }

    int64_t max_rows = 0;
    for (int64_t k = 0; k < d; k++)
        if (sv->start[k + 1] - sv->start[k] > max_rows)
            max_rows = sv->start[k + 1] - sv->start[k];
    const float **xs = gtl__tape_alloc(tape, (size_t)(max_rows ? max_rows : 1) * sizeof *xs);
    if (xs == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    for (int64_t k = 0; k < d; k++) {
        int64_t s0 = sv->start[k], nk = sv->start[k + 1] - s0;
        if (nk == 0)
            continue;
        for (int64_t i = 0; i < nk; i++)
            xs[i] = x->data + sv->rows[s0 + i] * f;
        float *yk = sv->y + s0 * m;
        /* Y_k (nk, M) = X_k (nk, F) @ A_k^T, one pass over the rows of A_k */
        const float *ak = weight->data + k * m * f;
        for (int64_t j = 0; j < m; j++)
            dots(ak + j * f, xs, nk, f, yk + j, m);
        for (int64_t i = 0; i < nk; i++) {
            int64_t r = sv->rows[s0 + i];
            float gv = gate->data[r * d + k];
            float *yi = yk + i * m;
            float *ur = dst->data + r * m;
            for (int64_t j = 0; j < m; j++) {
                if (bias != NULL)
                    yi[j] += bias->data[k * m + j];
                ur[j] += gv * yi[j];
            }
        }
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "gated_adapters", moe_backward, dst, srcs, n_src, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = sv;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
