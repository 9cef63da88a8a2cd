/* Softmax, log-softmax (over the last dim) and cross-entropy on oneDNN
 * softmax_v2. Shapes: src (..., C) viewed as (R, C) rows; cross-entropy
 * logits (N, C), labels (N), a scalar result.
 *
 * oneDNN 2.6 has a JIT softmax backward for AVX-512 only; elsewhere its
 * backward is ref:any. The backward primitive is therefore created unmarked
 * (not hot) and used only when it is not a reference kernel; otherwise the
 * same formula runs as a plain loop, which is as fast as a memory-bound
 * two-pass kernel needs to be.
 * Derivations: docs/autograd.md#softmax and docs/autograd.md#cross-entropy. */
#include <math.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

#define KEY_SOFTMAX 0x736d6178 /* "smax" */

/* Forward args: SRC, DST. Backward args: DST, DIFF_DST, DIFF_SRC. */
static gtl_status softmax_prim(gtl__ctx *ctx, bool log, bool backward, int64_t rows, int64_t c,
                               gtl__prim **out)
{
    int64_t key[5] = {KEY_SOFTMAX, log, backward, rows, c};
    *out = gtl__prim_lookup(ctx, key, 5);
    if (*out != NULL)
        return GTL_STATUS_OK;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t dims[2] = {rows, c};
    dnnl_memory_desc_t md;
    st = gtl__md_plain(&md, 2, dims, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_alg_kind_t alg = log ? dnnl_softmax_log : dnnl_softmax_accurate;
    const char *name = log ? "log_softmax" : "softmax";
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_softmax_v2_desc_t fdesc, bdesc;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_status_t s = dnnl_softmax_v2_forward_desc_init(&fdesc, dnnl_forward_training, alg, &md,
                                                        &md, 1);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&fpd, &fdesc, attr, eng, NULL);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "softmax forward descriptor");
        goto out_destroy_attr;
    }
    if (!backward) {
        int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        st = gtl__prim_create(ctx, name, GTL__PRIM_HOT, key, 5, fpd, args, 2, out);
        goto out_destroy_attr;
    }
    s = dnnl_softmax_v2_backward_desc_init(&bdesc, alg, &md, &md, &md, 1);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&bpd, &bdesc, attr, eng, fpd);
    dnnl_primitive_desc_destroy(fpd);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "softmax backward descriptor");
        goto out_destroy_attr;
    }
    {
        int args[3] = {DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        st = gtl__prim_create(ctx, log ? "log_softmax_bwd" : "softmax_bwd", 0, key, 5, bpd,
                              args, 3, out);
    }
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Runs the forward primitive over (rows, c). */
static gtl_status softmax_run(gtl__ctx *ctx, bool log, int64_t rows, int64_t c, const float *src,
                              float *dst)
{
    gtl__prim *p;
    gtl_status st = softmax_prim(ctx, log, false, rows, c, &p);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[2] = {(void *)src, dst};
    return gtl__prim_exec(ctx, p, ptrs);
}

/* node: src[0] src; ip[0] log, ip[1] rows, ip[2] C. The forward output y
 * (dst->data) is all the backward needs:
 *   softmax:     dx = y * (dy - sum(dy * y))
 *   log-softmax: dx = dy - exp(y) * sum(dy) */
static gtl_status softmax_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    bool log = node->ip[0] != 0;
    int64_t rows = node->ip[1], c = node->ip[2];
    float *g;
    gtl_status st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__prim *p;
    st = softmax_prim(tape->ctx, log, true, rows, c, &p);
    if (st != GTL_STATUS_OK)
        return st;
    if (strncmp(p->impl, "ref", 3) != 0) {
        float *tmp = gtl__tape_alloc(tape, (size_t)src->n * sizeof(float));
        if (tmp == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        void *ptrs[3] = {dst->data, dst->grad, tmp};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < src->n; i++)
            g[i] += tmp[i];
        return GTL_STATUS_OK;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *y = dst->data + r * c, *dy = dst->grad + r * c;
        float *dx = g + r * c;
        double s = 0.0;
        if (log) {
            for (int64_t j = 0; j < c; j++)
                s += dy[j];
            for (int64_t j = 0; j < c; j++)
                dx[j] += dy[j] - expf(y[j]) * (float)s;
        } else {
            for (int64_t j = 0; j < c; j++)
                s += (double)dy[j] * y[j];
            for (int64_t j = 0; j < c; j++)
                dx[j] += y[j] * (dy[j] - (float)s);
        }
    }
    return GTL_STATUS_OK;
}

static gtl_status softmax_any(gtl__tape *tape, gtl__tensor *src, bool log, gtl__tensor **out)
{
    const char *name = log ? "log_softmax" : "softmax";
    char s1[64];
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL tensor", name);
    if (src->nd < 1 || src->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: src %s must be non-empty", name,
                          gtl__shape_str(src, s1, sizeof s1));
    int64_t c = src->ne[src->nd - 1], rows = src->n / c;
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    st = softmax_run(tape->ctx, log, rows, c, src->data, dst->data);
    if (st != GTL_STATUS_OK)
        return st;
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, name, softmax_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = log;
        node->ip[1] = rows;
        node->ip[2] = c;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

gtl_status gtl__op_softmax(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return softmax_any(tape, src, false, out);
}

gtl_status gtl__op_log_softmax(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return softmax_any(tape, src, true, out);
}

/* ---- cross-entropy -------------------------------------------------------- */

typedef struct ce_saved {
    int64_t *labels;  /* (N), copied */
    float *logp;      /* (N, C) log-softmax of the logits */
} ce_saved;

/* node: src[0] logits (N, C); saved ce_saved.
 *   d logits[i, j] += g / N * (softmax[i, j] - [j == label_i]) */
static gtl_status cross_entropy_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *logits = node->src[0];
    const ce_saved *sv = node->saved;
    int64_t n = logits->ne[0], c = logits->ne[1];
    float scale = node->dst->grad[0] / (float)n;
    float *g;
    gtl_status st = gtl__tape_grad(tape, logits, &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        const float *lp = sv->logp + i * c;
        float *gr = g + i * c;
        for (int64_t j = 0; j < c; j++)
            gr[j] += scale * expf(lp[j]);
        gr[sv->labels[i]] -= scale;
    }
    return GTL_STATUS_OK;
}

/* dst () = -1/N sum_i log_softmax(logits)[i, label_i]. */
gtl_status gtl__op_cross_entropy(gtl__tape *tape, gtl__tensor *logits, const int64_t *labels,
                                 gtl__tensor **out)
{
    char s1[64];
    *out = NULL;
    if (logits == NULL || labels == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cross_entropy: NULL %s",
                          logits == NULL ? "logits" : "labels");
    if (logits->nd != 2 || logits->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "cross_entropy: logits %s must be a non-empty (N, C)",
                          gtl__shape_str(logits, s1, sizeof s1));
    int64_t n = logits->ne[0], c = logits->ne[1];
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "cross_entropy: label %lld of row %lld is outside [0, %lld)",
                              (long long)labels[i], (long long)i, (long long)c);

    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 0, NULL, &logits, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    bool node_needed = gtl__requires_grad(dst);
    float *logp = gtl__tape_alloc(tape, (size_t)logits->n * sizeof(float));
    if (logp == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    st = softmax_run(tape->ctx, true, n, c, logits->data, logp);
    if (st != GTL_STATUS_OK)
        return st;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += logp[i * c + labels[i]];
    dst->data[0] = (float)(-s / (double)n);
    if (node_needed) {
        ce_saved *sv = gtl__tape_alloc(tape, sizeof *sv);
        int64_t *lab = gtl__tape_alloc(tape, (size_t)n * sizeof *lab);
        if (sv == NULL || lab == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        memcpy(lab, labels, (size_t)n * sizeof *lab);
        sv->labels = lab;
        sv->logp = logp;
        gtl__node *node;
        st = gtl__tape_record(tape, "cross_entropy", cross_entropy_backward, dst, &logits, 1,
                              &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = sv;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
