/* Matmul and linear layers on oneDNN's matmul primitive, forward and backward.
 * oneDNN has no matmul backward primitive: each gradient is one more matmul on
 * transposed strided views, accumulating through a sum post-op.
 * Derivations: docs/autograd.md#matmul. */
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

void gtl__mm_desc_2d(gtl__mm_desc *d, int64_t m, int64_t n, int64_t k, bool trans_a,
                     bool trans_b)
{
    memset(d, 0, sizeof *d);
    d->nd = 2;
    d->alpha = 1.0f;
    d->a_dims[0] = m;
    d->a_dims[1] = k;
    d->a_strides[0] = trans_a ? 1 : k; /* A stored (K, M) when transposed */
    d->a_strides[1] = trans_a ? m : 1;
    d->b_dims[0] = k;
    d->b_dims[1] = n;
    d->b_strides[0] = trans_b ? 1 : n; /* B stored (N, K) when transposed */
    d->b_strides[1] = trans_b ? k : 1;
    d->c_dims[0] = m;
    d->c_dims[1] = n;
    d->c_strides[0] = n;
    d->c_strides[1] = 1;
}

static dnnl_alg_kind_t act_alg(gtl__act act, float *alpha)
{
    *alpha = 0.0f;
    switch (act) {
    case GTL__ACT_RELU:
        return dnnl_eltwise_relu;
    case GTL__ACT_GELU:
        return dnnl_eltwise_gelu_erf;
    case GTL__ACT_QUICK_GELU:
        *alpha = 1.702f; /* swish(x) = x * sigmoid(alpha x) */
        return dnnl_eltwise_swish;
    default:
        return dnnl_alg_kind_undef;
    }
}

static gtl_status mm_create(gtl__ctx *ctx, const gtl__mm_desc *d, const int64_t *key,
                            int32_t n_key, gtl__prim **out)
{
    gtl_status st;
    dnnl_status_t s;
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    dnnl_matmul_desc_t mm;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_engine_t eng;
    dnnl_data_type_t in_dt = d->bf16 ? dnnl_bf16 : dnnl_f32;

    st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__md_strided(&a_md, d->nd, d->a_dims, d->a_strides, in_dt);
    if (st == GTL_STATUS_OK)
        st = gtl__md_strided(&b_md, d->nd, d->b_dims, d->b_strides, in_dt);
    if (st == GTL_STATUS_OK)
        st = gtl__md_strided(&c_md, d->nd, d->c_dims, d->c_strides, dnnl_f32);
    if (st == GTL_STATUS_OK && d->has_bias) {
        int64_t bd[4] = {1, 1, 1, 1};
        bd[d->nd - 1] = d->c_dims[d->nd - 1];
        st = gtl__md_plain(&bias_md, d->nd, bd, dnnl_f32);
    }
    if (st != GTL_STATUS_OK)
        return st;
    s = dnnl_matmul_desc_init(&mm, &a_md, &b_md, d->has_bias ? &bias_md : NULL, &c_md);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "matmul descriptor");

    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    if (d->alpha != 1.0f) {
        s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &d->alpha);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, "matmul scale");
            goto out_destroy_attr;
        }
    }
    if (d->act != GTL__ACT_NONE || d->accumulate) {
        s = dnnl_post_ops_create(&po);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, "matmul post-ops");
            goto out_destroy_attr;
        }
        float ealpha;
        dnnl_alg_kind_t alg = act_alg(d->act, &ealpha);
        if (alg != dnnl_alg_kind_undef)
            s = dnnl_post_ops_append_eltwise(po, 1.0f, alg, ealpha, 0.0f);
        if (s == dnnl_success && d->accumulate)
            s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, "matmul post-ops");
            goto out_destroy_po;
        }
    }
    s = dnnl_primitive_desc_create(&pd, &mm, attr, eng, NULL);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "matmul primitive descriptor");
        goto out_destroy_po;
    }
    {
        int args_bias[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        int args_nobias[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        st = gtl__prim_create(ctx, "matmul", GTL__PRIM_HOT, key, n_key, pd,
                              d->has_bias ? args_bias : args_nobias, d->has_bias ? 4 : 3, out);
    }
out_destroy_po:
    if (po != NULL)
        dnnl_post_ops_destroy(po);
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

gtl_status gtl__mm(gtl__ctx *ctx, const gtl__mm_desc *d, const void *a, const void *b,
                   const float *bias, float *c)
{
    int64_t key[GTL__KEY_MAX];
    int32_t n = 0;
    GTL_ASSERT(d->nd >= 2 && d->nd <= 4);
    key[n++] = 0x6d6d; /* "mm" */
    key[n++] = d->nd;
    for (int32_t i = 0; i < d->nd; i++) {
        key[n++] = d->a_dims[i];
        key[n++] = d->a_strides[i];
        key[n++] = d->b_dims[i];
        key[n++] = d->b_strides[i];
        key[n++] = d->c_dims[i];
        key[n++] = d->c_strides[i];
    }
    uint32_t abits;
    memcpy(&abits, &d->alpha, sizeof abits);
    key[n++] = abits;
    key[n++] = (d->accumulate ? 1 : 0) | (d->has_bias ? 2 : 0) | (d->bf16 ? 4 : 0) |
               ((int64_t)d->act << 8);
    gtl__prim *p = gtl__prim_lookup(ctx, key, n);
    if (p == NULL) {
        gtl_status st = mm_create(ctx, d, key, n, &p);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (d->has_bias) {
        void *ptrs[4] = {(void *)a, (void *)b, (void *)bias, c};
        return gtl__prim_exec(ctx, p, ptrs);
    }
    void *ptrs[3] = {(void *)a, (void *)b, c};
    return gtl__prim_exec(ctx, p, ptrs);
}

/* ---- linear ------------------------------------------------------------ */

/* src (R, in) as rows; weight (out, in); dst (R, out). */
static gtl_status linear_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *dst = node->dst, *src = node->src[0], *w = node->src[1];
    gtl__tensor *b = node->n_src > 2 ? node->src[2] : NULL;
    int64_t in = w->ne[1], out = w->ne[0], rows = src->n / in;
    gtl__mm_desc d;
    gtl_status st;
    float *g;

    if (gtl__requires_grad(src)) {
        /* diff_src (R, in) += diff_dst (R, out) @ W (out, in) */
        st = gtl__tape_grad(tape, src, &g);
        if (st != GTL_STATUS_OK)
            return st;
        gtl__mm_desc_2d(&d, rows, in, out, false, false);
        d.accumulate = true;
        st = gtl__mm(tape->ctx, &d, dst->grad, w->data, NULL, g);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (gtl__requires_grad(w)) {
        /* diff_W (out, in) += diff_dst^T (out, R) @ src (R, in) */
        st = gtl__tape_grad(tape, w, &g);
        if (st != GTL_STATUS_OK)
            return st;
        gtl__mm_desc_2d(&d, out, in, rows, true, false);
        d.accumulate = true;
        st = gtl__mm(tape->ctx, &d, dst->grad, src->data, NULL, g);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (b != NULL && gtl__requires_grad(b)) {
        /* diff_b (out) += column sums of diff_dst */
        st = gtl__tape_grad(tape, b, &g);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t r = 0; r < rows; r++) {
            const float *gr = dst->grad + r * out;
            for (int64_t j = 0; j < out; j++)
                g[j] += gr[j];
        }
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_linear(gtl__tape *tape, gtl__tensor *src, gtl__tensor *weight,
                          gtl__tensor *bias, gtl__act act, gtl__tensor **out)
{
    char s1[64], s2[64];
    *out = NULL;
    if (src == NULL || weight == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "linear: NULL tensor");
    if (weight->nd != 2 || src->nd < 1 || src->ne[src->nd - 1] != weight->ne[1])
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "linear: src %s does not match weight %s (want (..., in) and (out, in))",
                          gtl__shape_str(src, s1, sizeof s1), gtl__shape_str(weight, s2, sizeof s2));
    if (bias != NULL && (bias->n != weight->ne[0]))
        return gtl__error(GTL_STATUS_INVALID_ARG, "linear: bias has %lld elements, want %lld",
                          (long long)bias->n, (long long)weight->ne[0]);
    if ((int)act < GTL__ACT_NONE || (int)act > GTL__ACT_QUICK_GELU)
        return gtl__error(GTL_STATUS_INVALID_ARG, "linear: unknown activation %d", (int)act);

    int64_t in = weight->ne[1], n_out = weight->ne[0];
    int64_t rows = in > 0 ? src->n / in : 0;
    int64_t ne[GTL__MAX_DIMS];
    for (int32_t i = 0; i < src->nd; i++)
        ne[i] = src->ne[i];
    ne[src->nd - 1] = n_out;

    gtl__tensor *srcs[3] = {src, weight, bias};
    int32_t n_src = bias != NULL ? 3 : 2;
    bool node = gtl__tape_needs_node(tape, srcs, n_src);
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, ne, srcs, n_src, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    if (rows > 0 && n_out > 0) {
        if (in == 0) {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < n_out; j++)
                    dst->data[r * n_out + j] = bias ? bias->data[j] : 0.0f;
        } else {
            gtl__mm_desc d;
            gtl__mm_desc_2d(&d, rows, n_out, in, false, true);
            d.has_bias = bias != NULL;
            d.act = node ? GTL__ACT_NONE : act; /* fuse only when nothing is recorded */
            st = gtl__mm(tape->ctx, &d, src->data, weight->data, bias ? bias->data : NULL,
                         dst->data);
            if (st != GTL_STATUS_OK)
                return st;
        }
    }
    if (node) {
        gtl__node *nd;
        st = gtl__tape_record(tape, "linear", linear_backward, dst, srcs, n_src, &nd);
        if (st != GTL_STATUS_OK)
            return st;
        if (act != GTL__ACT_NONE)
            return gtl__op_act(tape, dst, act, out);
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- matmul ------------------------------------------------------------ */

/* Describes one operand (rows x cols as used, stored transposed or not) as a
 * 3-D view (batch, rows, cols) for gtl__mm. */
static void view3(int64_t *dims, int64_t *strides, int64_t batch, int64_t rows, int64_t cols,
                  bool stored_transposed)
{
    dims[0] = batch;
    dims[1] = rows;
    dims[2] = cols;
    strides[0] = rows * cols;
    strides[1] = stored_transposed ? 1 : cols;
    strides[2] = stored_transposed ? rows : 1;
}

typedef struct mm_geom {
    int64_t batch, m, n, k;
    bool ta, tb, b_shared;
} mm_geom;

static void geom(const gtl__node *node, mm_geom *g)
{
    g->batch = node->ip[0];
    g->m = node->ip[1];
    g->n = node->ip[2];
    g->k = node->ip[3];
    g->ta = node->ip[4] != 0;
    g->tb = node->ip[5] != 0;
    g->b_shared = node->ip[6] != 0;
}

static gtl_status matmul_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *a = node->src[0], *b = node->src[1], *c = node->dst;
    float alpha = node->fp[0];
    mm_geom gm;
    geom(node, &gm);
    gtl__mm_desc d;
    gtl_status st;
    float *g;
    int64_t bb = gm.b_shared ? 1 : gm.batch;

    if (gtl__requires_grad(a)) {
        st = gtl__tape_grad(tape, a, &g);
        if (st != GTL_STATUS_OK)
            return st;
        memset(&d, 0, sizeof d);
        d.nd = 3;
        d.alpha = alpha;
        d.accumulate = true;
        if (!gm.ta) {
            /* dA (M,K) += dC (M,N) @ op(B)^T (N,K) */
            view3(d.a_dims, d.a_strides, gm.batch, gm.m, gm.n, false);
            view3(d.b_dims, d.b_strides, bb, gm.n, gm.k, !gm.tb);
            view3(d.c_dims, d.c_strides, gm.batch, gm.m, gm.k, false);
        } else {
            /* A stored (K,M): dA_s (K,M) += op(B) (K,N) @ dC^T (N,M) */
            view3(d.a_dims, d.a_strides, bb, gm.k, gm.n, gm.tb);
            view3(d.b_dims, d.b_strides, gm.batch, gm.n, gm.m, true);
            view3(d.c_dims, d.c_strides, gm.batch, gm.k, gm.m, false);
        }
        st = gm.ta ? gtl__mm(tape->ctx, &d, b->data, c->grad, NULL, g)
                   : gtl__mm(tape->ctx, &d, c->grad, b->data, NULL, g);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (gtl__requires_grad(b)) {
        st = gtl__tape_grad(tape, b, &g);
        if (st != GTL_STATUS_OK)
            return st;
        /* Shared B sums its gradient over the batch: one 2-D matmul per batch
         * entry, each accumulating. */
        int64_t n_calls = gm.b_shared ? gm.batch : 1;
        int64_t inner = gm.b_shared ? 1 : gm.batch;
        for (int64_t i = 0; i < n_calls; i++) {
            const float *ai = a->data + i * gm.m * gm.k;
            const float *ci = c->grad + i * gm.m * gm.n;
            memset(&d, 0, sizeof d);
            d.nd = 3;
            d.alpha = alpha;
            d.accumulate = true;
            if (!gm.tb) {
                /* dB (K,N) += op(A)^T (K,M) @ dC (M,N) */
                view3(d.a_dims, d.a_strides, inner, gm.k, gm.m, !gm.ta);
                view3(d.b_dims, d.b_strides, inner, gm.m, gm.n, false);
                view3(d.c_dims, d.c_strides, inner, gm.k, gm.n, false);
                st = gtl__mm(tape->ctx, &d, ai, ci, NULL, g);
            } else {
                /* B stored (N,K): dB_s (N,K) += dC^T (N,M) @ op(A) (M,K) */
                view3(d.a_dims, d.a_strides, inner, gm.n, gm.m, true);
                view3(d.b_dims, d.b_strides, inner, gm.m, gm.k, gm.ta);
                view3(d.c_dims, d.c_strides, inner, gm.n, gm.k, false);
                st = gtl__mm(tape->ctx, &d, ci, ai, NULL, g);
            }
            if (st != GTL_STATUS_OK)
                return st;
        }
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_matmul(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, bool trans_a,
                          bool trans_b, float alpha, gtl__tensor **out)
{
    char s1[64], s2[64];
    *out = NULL;
    if (a == NULL || b == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "matmul: NULL tensor");
    if (a->nd < 2 || b->nd < 2)
        return gtl__error(GTL_STATUS_INVALID_ARG, "matmul: operands must have >= 2 dims");
    int64_t m = trans_a ? a->ne[a->nd - 1] : a->ne[a->nd - 2];
    int64_t k = trans_a ? a->ne[a->nd - 2] : a->ne[a->nd - 1];
    int64_t kb = trans_b ? b->ne[b->nd - 1] : b->ne[b->nd - 2];
    int64_t n = trans_b ? b->ne[b->nd - 2] : b->ne[b->nd - 1];
    int64_t mat = a->ne[a->nd - 1] * a->ne[a->nd - 2];
    int64_t batch = mat != 0 ? a->n / mat : 0;
    bool b_shared = b->nd == 2 && a->nd > 2;
    bool ok = k == kb;
    if (!b_shared) {
        ok = ok && a->nd == b->nd;
        for (int32_t i = 0; ok && i < a->nd - 2; i++)
            ok = a->ne[i] == b->ne[i];
    }
    if (!ok)
        return gtl__error(GTL_STATUS_INVALID_ARG, "matmul: shapes %s and %s do not match%s",
                          gtl__shape_str(a, s1, sizeof s1), gtl__shape_str(b, s2, sizeof s2),
                          (trans_a || trans_b) ? " (after transposes)" : "");
    if (m == 0 || n == 0 || k == 0 || batch == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "matmul: zero-sized operand");

    int64_t ne[GTL__MAX_DIMS];
    for (int32_t i = 0; i < a->nd - 2; i++)
        ne[i] = a->ne[i];
    ne[a->nd - 2] = m;
    ne[a->nd - 1] = n;
    gtl__tensor *srcs[2] = {a, b};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, a->nd, ne, srcs, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;

    gtl__mm_desc d;
    memset(&d, 0, sizeof d);
    d.nd = 3;
    d.alpha = alpha;
    view3(d.a_dims, d.a_strides, batch, m, k, trans_a);
    view3(d.b_dims, d.b_strides, b_shared ? 1 : batch, k, n, trans_b);
    view3(d.c_dims, d.c_strides, batch, m, n, false);
    st = gtl__mm(tape->ctx, &d, a->data, b->data, NULL, dst->data);
    if (st != GTL_STATUS_OK)
        return st;

    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "matmul", matmul_backward, dst, srcs, 2, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = batch;
        node->ip[1] = m;
        node->ip[2] = n;
        node->ip[3] = k;
        node->ip[4] = trans_a;
        node->ip[5] = trans_b;
        node->ip[6] = b_shared;
        node->fp[0] = alpha;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
