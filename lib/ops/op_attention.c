/* Multi-head scaled dot-product attention on oneDNN matmul and softmax_v2.
 * Derivations: docs/autograd.md#attention.
 *
 * Shapes: B batch, T tokens, C width, H heads, Dh = C / H head dim.
 * qkv (B, T, 3C) holds [q | k | v] along the last dim, as CLIP's fused
 * in_proj produces it. Head h of Q is the (T, Dh) block at columns
 * [h*Dh, (h+1)*Dh) of q, so Q, K and V are 4-D strided views
 * (B, H, T, Dh) with strides (T*3C, Dh, 3C, 1) at offsets 0, C and 2C of
 * qkv; K^T is the same view with the last two dims swapped. The output
 * (B, T, C) is written as the view (B, H, T, Dh), strides (T*C, Dh, C, 1).
 * Nothing is copied or transposed in memory: every matmul reads and writes
 * through these views. The only buffer of the op is P (B, H, T, T), kept
 * for backward. On an AVX2 host (oneDNN 2.6.3) every one of these views gets
 * the gemm:jit matmul; copying Q, K, V into contiguous (B, H, T, Dh) blocks
 * first was measured slower at ViT-B/16 shapes (B = 1 and 8), as the copies
 * cost more than the contiguous matmuls save. */
#include <math.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

#define ATTN_KEY_SOFTMAX 0x61747378 /* "atsx" */

/* A (B, H, rows, cols) view of a buffer whose rows are `row_stride` apart and
 * whose heads are `cols` columns apart (row-major inside a token row). With
 * transposed set, the view is (B, H, cols, rows) of the same memory. */
static void head_view(int64_t *dims, int64_t *strides, int64_t b, int64_t h, int64_t rows,
                      int64_t cols, int64_t row_stride, bool transposed)
{
    dims[0] = b;
    dims[1] = h;
    strides[0] = rows * row_stride;
    strides[1] = cols;
    if (!transposed) {
        dims[2] = rows;
        dims[3] = cols;
        strides[2] = row_stride;
        strides[3] = 1;
    } else {
        dims[2] = cols;
        dims[3] = rows;
        strides[2] = 1;
        strides[3] = row_stride;
    }
}

/* A dense (B, H, T, T) score matrix, or its per-head transpose. */
static void score_view(int64_t *dims, int64_t *strides, int64_t b, int64_t h, int64_t t,
                       bool transposed)
{
    dims[0] = b;
    dims[1] = h;
    dims[2] = t;
    dims[3] = t;
    strides[0] = h * t * t;
    strides[1] = t * t;
    strides[2] = transposed ? 1 : t;
    strides[3] = transposed ? t : 1;
}

/* softmax_v2 forward_training over the last dim of a plain (rows, t) tensor.
 * (oneDNN 2.6 has a JIT softmax backward for AVX-512 only; on AVX2 it falls
 * back to ref:any, 8-10x slower than softmax_rows_backward below, so the
 * backward never uses oneDNN.) */
static gtl_status softmax_prim(gtl__ctx *ctx, int64_t rows, int64_t t, gtl__prim **out)
{
    int64_t key[3] = {ATTN_KEY_SOFTMAX, rows, t};
    *out = gtl__prim_lookup(ctx, key, 3);
    if (*out != NULL)
        return GTL_STATUS_OK;

    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_memory_desc_t md;
    int64_t dims[2] = {rows, t};
    st = gtl__md_plain(&md, 2, dims, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_softmax_v2_desc_t fwd;
    dnnl_status_t s = dnnl_softmax_v2_forward_desc_init(&fwd, dnnl_forward_training,
                                                        dnnl_softmax_accurate, &md, &md, 1);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "attention softmax descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t pd = NULL;
    s = dnnl_primitive_desc_create(&pd, &fwd, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "attention softmax primitive descriptor");
    int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    return gtl__prim_create(ctx, "attention softmax", GTL__PRIM_HOT, key, 3, pd, args, 2, out);
}

/* Softmax backward over rows of length t, in place:
 * g <- p * (g - sum_j g_j p_j). Memory bound; 8 partial sums let the dot
 * product vectorise without -ffast-math. */
static void softmax_rows_backward(const float *p, float *g, int64_t rows, int64_t t)
{
#pragma omp parallel for schedule(static) if (rows * t >= 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *pr = p + r * t;
        float *gr = g + r * t;
        float acc[8] = {0};
        int64_t j = 0;
        for (; j + 8 <= t; j += 8)
            for (int u = 0; u < 8; u++)
                acc[u] += pr[j + u] * gr[j + u];
        float dot = 0.0f;
        for (int u = 0; u < 8; u++)
            dot += acc[u];
        for (; j < t; j++)
            dot += pr[j] * gr[j];
        for (j = 0; j < t; j++)
            gr[j] = pr[j] * (gr[j] - dot);
    }
}

typedef struct attn_geom {
    int64_t b, t, c, h, dh;
    float scale; /* 1 / sqrt(Dh) */
} attn_geom;

static void attn_geom_of(const gtl__node *node, attn_geom *g)
{
    g->b = node->ip[0];
    g->t = node->ip[1];
    g->c = node->ip[2];
    g->h = node->ip[3];
    g->dh = g->c / g->h;
    g->scale = node->fp[0];
}

static gtl_status attention_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *qkv = node->src[0], *dst = node->dst;
    const float *p = node->saved;                          /* (B, H, T, T) */
    attn_geom g;
    attn_geom_of(node, &g);
    int64_t c3 = 3 * g.c;
    int64_t n_scores = g.b * g.h * g.t * g.t;
    const float *q = qkv->data, *k = qkv->data + g.c, *v = qkv->data + 2 * g.c;
    gtl__mm_desc d;
    gtl_status st;
    float *dqkv;

    st = gtl__tape_grad(tape, qkv, &dqkv);
    if (st != GTL_STATUS_OK)
        return st;
    float *dq = dqkv, *dk = dqkv + g.c, *dv = dqkv + 2 * g.c;
    float *dp = gtl__tape_alloc(tape, (size_t)n_scores * sizeof(float)); /* (B, H, T, T) */
    if (dp == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;

    /* dV (T, Dh) += P^T (T, T) @ dO (T, Dh), per (b, h) */
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = 1.0f;
    d.accumulate = true;
    score_view(d.a_dims, d.a_strides, g.b, g.h, g.t, true);
    head_view(d.b_dims, d.b_strides, g.b, g.h, g.t, g.dh, g.c, false);
    head_view(d.c_dims, d.c_strides, g.b, g.h, g.t, g.dh, c3, false);
    st = gtl__mm(tape->ctx, &d, p, dst->grad, NULL, dv);
    if (st != GTL_STATUS_OK)
        return st;

    /* dP (T, T) = dO (T, Dh) @ V^T (Dh, T) */
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = 1.0f;
    head_view(d.a_dims, d.a_strides, g.b, g.h, g.t, g.dh, g.c, false);
    head_view(d.b_dims, d.b_strides, g.b, g.h, g.t, g.dh, c3, true);
    score_view(d.c_dims, d.c_strides, g.b, g.h, g.t, false);
    st = gtl__mm(tape->ctx, &d, dst->grad, v, NULL, dp);
    if (st != GTL_STATUS_OK)
        return st;

    /* dS = P * (dP - rowsum(dP * P)), in place over dP */
    softmax_rows_backward(p, dp, g.b * g.h * g.t, g.t);
    const float *ds = dp;

    /* dQ (T, Dh) += scale * dS (T, T) @ K (T, Dh) */
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = g.scale;
    d.accumulate = true;
    score_view(d.a_dims, d.a_strides, g.b, g.h, g.t, false);
    head_view(d.b_dims, d.b_strides, g.b, g.h, g.t, g.dh, c3, false);
    head_view(d.c_dims, d.c_strides, g.b, g.h, g.t, g.dh, c3, false);
    st = gtl__mm(tape->ctx, &d, ds, k, NULL, dq);
    if (st != GTL_STATUS_OK)
        return st;

    /* dK (T, Dh) += scale * dS^T (T, T) @ Q (T, Dh) */
    score_view(d.a_dims, d.a_strides, g.b, g.h, g.t, true);
    return gtl__mm(tape->ctx, &d, ds, q, NULL, dk);
}

gtl_status gtl__op_attention(gtl__tape *tape, gtl__tensor *qkv, int64_t n_heads,
                             gtl__tensor **out)
{
    char s1[64];
    *out = NULL;
    if (qkv == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "attention: NULL tensor");
    if (qkv->nd != 3 || qkv->ne[2] % 3 != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "attention: qkv %s must be (B, T, 3*C)",
                          gtl__shape_str(qkv, s1, sizeof s1));
    attn_geom g;
    g.b = qkv->ne[0];
    g.t = qkv->ne[1];
    g.c = qkv->ne[2] / 3;
    g.h = n_heads;
    if (g.b == 0 || g.t == 0 || g.c == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "attention: empty qkv %s",
                          gtl__shape_str(qkv, s1, sizeof s1));
    if (n_heads <= 0 || g.c % n_heads != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "attention: %lld heads do not divide the width C = %lld",
                          (long long)n_heads, (long long)g.c);
    g.dh = g.c / g.h;
    g.scale = (float)(1.0 / sqrt((double)g.dh));
    int64_t c3 = 3 * g.c;
    int64_t n_scores = g.b * g.h * g.t * g.t;

    int64_t ne[3] = {g.b, g.t, g.c};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 3, ne, &qkv, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    bool node = gtl__requires_grad(dst);
    /* P (B, H, T, T): saved for backward when a node is recorded. */
    float *p = gtl__tape_alloc(tape, (size_t)n_scores * sizeof(float));
    if (p == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;

    /* S (T, T) = scale * Q (T, Dh) @ K^T (Dh, T), per (b, h) */
    gtl__mm_desc d;
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = g.scale;
    head_view(d.a_dims, d.a_strides, g.b, g.h, g.t, g.dh, c3, false);
    head_view(d.b_dims, d.b_strides, g.b, g.h, g.t, g.dh, c3, true);
    score_view(d.c_dims, d.c_strides, g.b, g.h, g.t, false);
    st = gtl__mm(tape->ctx, &d, qkv->data, qkv->data + g.c, NULL, p);
    if (st != GTL_STATUS_OK)
        return st;

    /* P = softmax(S) over the last dim, in place. */
    gtl__prim *sm;
    st = softmax_prim(tape->ctx, g.b * g.h * g.t, g.t, &sm);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[2] = {p, p};
    st = gtl__prim_exec(tape->ctx, sm, ptrs);
    if (st != GTL_STATUS_OK)
        return st;

    /* O (T, Dh) = P (T, T) @ V (T, Dh), written into head h's columns of dst */
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = 1.0f;
    score_view(d.a_dims, d.a_strides, g.b, g.h, g.t, false);
    head_view(d.b_dims, d.b_strides, g.b, g.h, g.t, g.dh, c3, false);
    head_view(d.c_dims, d.c_strides, g.b, g.h, g.t, g.dh, g.c, false);
    st = gtl__mm(tape->ctx, &d, p, qkv->data + 2 * g.c, NULL, dst->data);
    if (st != GTL_STATUS_OK)
        return st;

    if (node) {
        gtl__node *nd;
        st = gtl__tape_record(tape, "attention", attention_backward, dst, &qkv, 1, &nd);
        if (st != GTL_STATUS_OK)
            return st;
        nd->saved = p;
        nd->ip[0] = g.b;
        nd->ip[1] = g.t;
        nd->ip[2] = g.c;
        nd->ip[3] = g.h;
        nd->fp[0] = g.scale;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
