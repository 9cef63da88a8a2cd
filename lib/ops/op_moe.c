/* Sparsely gated adapters: u[n] = sum_k g[n,k] (A_k x_n + a_k) over the
 * non-zero gates only. Rows are grouped by adapter, so each active adapter is
 * one GEMM over the rows that use it (dnnl_sgemm: JIT, and no primitive per
 * row count, which varies every step). Derivation: docs/autograd.md#gated-adapters.
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

static gtl_status sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                        int64_t ldc)
{
    if (m == 0 || n == 0)
        return GTL_STATUS_OK;
    dnnl_status_t s = dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    return s == dnnl_success ? GTL_STATUS_OK : gtl__dnnl_error(s, "gated adapters: sgemm");
}

static gtl_status gather(gtl__tape *tape, const float *x, const int64_t *rows, int64_t n,
                         int64_t f, float **out)
{
    float *buf = gtl__tape_alloc(tape, (size_t)(n ? n : 1) * (size_t)f * sizeof(float));
    if (buf == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++)
        memcpy(buf + i * f, x + rows[i] * f, (size_t)f * sizeof(float));
    *out = buf;
    return GTL_STATUS_OK;
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
    float *dy = gtl__tape_alloc(tape, (size_t)(max_rows ? max_rows : 1) * (size_t)m * sizeof(float));
    float *dxk = gtl__tape_alloc(tape, (size_t)(max_rows ? max_rows : 1) * (size_t)f * sizeof(float));
    if (dy == NULL || dxk == NULL)
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
        }
        const float *ak = w->data + k * m * f;
        if (gx != NULL) {
            /* dX_k (nk, F) = dY (nk, M) @ A_k (M, F), scattered into dx */
            st = sgemm('N', 'N', nk, f, m, dy, m, ak, f, 0.0f, dxk, f);
            if (st != GTL_STATUS_OK)
                return st;
            for (int64_t i = 0; i < nk; i++) {
                float *dst = gx + rows[i] * f;
                const float *src = dxk + i * f;
                for (int64_t j = 0; j < f; j++)
                    dst[j] += src[j];
            }
        }
        if (gw != NULL) {
            /* dA_k (M, F) += dY^T (M, nk) @ X_k (nk, F) */
            float *xk;
            st = gather(tape, x->data, rows, nk, f, &xk);
            if (st != GTL_STATUS_OK)
                return st;
            st = sgemm('T', 'N', m, f, nk, dy, m, xk, f, 1.0f, gw + k * m * f, f);
            if (st != GTL_STATUS_OK)
                return st;
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

    for (int64_t k = 0; k < d; k++) {
        int64_t s0 = sv->start[k], nk = sv->start[k + 1] - s0;
        if (nk == 0)
            continue;
        float *xk;
        st = gather(tape, x->data, sv->rows + s0, nk, f, &xk);
        if (st != GTL_STATUS_OK)
            return st;
        float *yk = sv->y + s0 * m;
        /* Y_k (nk, M) = X_k (nk, F) @ A_k^T */
        st = sgemm('N', 'T', nk, m, f, xk, f, weight->data + k * m * f, f, 0.0f, yk, m);
        if (st != GTL_STATUS_OK)
            return st;
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
