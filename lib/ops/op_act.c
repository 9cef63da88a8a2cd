/* Activations on oneDNN eltwise (forward and backward) and seeded dropout.
 * Derivations: docs/autograd.md#activations. */
#include <math.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

/* Internal activation ids beyond gtl__act, for the eltwise cache key. */
#define ACT_SIGMOID 100

static dnnl_alg_kind_t alg_of(int act, float *alpha)
{
    *alpha = 0.0f;
    switch (act) {
    case GTL__ACT_RELU: return dnnl_eltwise_relu;
    case GTL__ACT_GELU: return dnnl_eltwise_gelu_erf;
    case GTL__ACT_QUICK_GELU: *alpha = 1.702f; return dnnl_eltwise_swish;
    case ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

static const char *act_name(int act)
{
    switch (act) {
    case GTL__ACT_RELU: return "relu";
    case GTL__ACT_GELU: return "gelu";
    case GTL__ACT_QUICK_GELU: return "quick_gelu";
    case ACT_SIGMOID: return "sigmoid";
    default: return "identity";
    }
}

/* Eltwise primitives work on a flat 1-D view (n elements). */
static gtl_status eltwise_prim(gtl__ctx *ctx, int act, bool backward, int64_t n,
                               gtl__prim **out)
{
    int64_t key[4] = {0x656c74, act, backward, n};
    *out = gtl__prim_lookup(ctx, key, 4);
    if (*out != NULL)
        return GTL_STATUS_OK;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_memory_desc_t md;
    st = gtl__md_plain(&md, 1, &n, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    float alpha;
    dnnl_alg_kind_t alg = alg_of(act, &alpha);
    dnnl_eltwise_desc_t fwd, bwd;
    dnnl_status_t s = dnnl_eltwise_forward_desc_init(&fwd, dnnl_forward_training, alg, &md,
                                                     alpha, 0.0f);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "eltwise descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    s = dnnl_primitive_desc_create(&fpd, &fwd, attr, eng, NULL);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "eltwise primitive descriptor");
        goto out_destroy_attr;
    }
    if (!backward) {
        int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        st = gtl__prim_create(ctx, act_name(act), GTL__PRIM_HOT, key, 4, fpd, args, 2, out);
        goto out_destroy_attr;
    }
    s = dnnl_eltwise_backward_desc_init(&bwd, alg, &md, &md, alpha, 0.0f);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&bpd, &bwd, attr, eng, fpd);
    dnnl_primitive_desc_destroy(fpd);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "eltwise backward primitive descriptor");
        goto out_destroy_attr;
    }
    {
        int args[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        st = gtl__prim_create(ctx, act_name(act), GTL__PRIM_HOT, key, 4, bpd, args, 3, out);
    }
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static gtl_status act_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    int act = (int)node->ip[0];
    if (src->n == 0)
        return GTL_STATUS_OK; /* the forward skipped oneDNN too: no 0-sized primitive */
    gtl__prim *p;
    gtl_status st = eltwise_prim(tape->ctx, act, true, src->n, &p);
    if (st != GTL_STATUS_OK)
        return st;
    float *tmp = gtl__tape_alloc(tape, (size_t)src->n * sizeof(float));
    if (tmp == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    void *ptrs[3] = {src->data, dst->grad, tmp};
    st = gtl__prim_exec(tape->ctx, p, ptrs);
    if (st != GTL_STATUS_OK)
        return st;
    float *g;
    st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < src->n; i++)
        g[i] += tmp[i];
    return GTL_STATUS_OK;
}

static gtl_status identity_backward(gtl__tape *tape, gtl__node *node)
{
    float *g;
    gtl_status st = gtl__tape_grad(tape, node->src[0], &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < node->dst->n; i++)
        g[i] += node->dst->grad[i];
    return GTL_STATUS_OK;
}

static gtl_status act_any(gtl__tape *tape, gtl__tensor *src, int act, gtl__tensor **out)
{
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL tensor", act_name(act));
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    if (act == GTL__ACT_NONE) {
        memcpy(dst->data, src->data, (size_t)src->n * sizeof(float));
    } else if (src->n > 0) {
        gtl__prim *p;
        st = eltwise_prim(tape->ctx, act, false, src->n, &p);
        if (st != GTL_STATUS_OK)
            return st;
        void *ptrs[2] = {src->data, dst->data};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, act_name(act),
                              act == GTL__ACT_NONE ? identity_backward : act_backward, dst,
                              &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = act;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

gtl_status gtl__op_act(gtl__tape *tape, gtl__tensor *src, gtl__act act, gtl__tensor **out)
{
    if ((int)act < GTL__ACT_NONE || (int)act > GTL__ACT_QUICK_GELU) {
        *out = NULL;
        return gtl__error(GTL_STATUS_INVALID_ARG, "activation: unknown kind %d", (int)act);
    }
    return act_any(tape, src, (int)act, out);
}

gtl_status gtl__op_relu(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return act_any(tape, src, GTL__ACT_RELU, out);
}

gtl_status gtl__op_gelu(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return act_any(tape, src, GTL__ACT_GELU, out);
}

gtl_status gtl__op_quick_gelu(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return act_any(tape, src, GTL__ACT_QUICK_GELU, out);
}

gtl_status gtl__op_sigmoid(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return act_any(tape, src, ACT_SIGMOID, out);
}

/* ---- dropout ------------------------------------------------------------ */

static gtl_status dropout_backward(gtl__tape *tape, gtl__node *node)
{
    const float *mask = node->saved; /* 0 or 1/(1-p) */
    float *g;
    gtl_status st = gtl__tape_grad(tape, node->src[0], &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < node->dst->n; i++)
        g[i] += node->dst->grad[i] * mask[i];
    return GTL_STATUS_OK;
}

gtl_status gtl__op_dropout(gtl__tape *tape, gtl__tensor *src, float p, gtl__tensor **out)
{
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "dropout: NULL tensor");
    if (!(p >= 0.0f && p < 1.0f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "dropout: p must be in [0, 1) (got %g)",
                          (double)p);
    if (!tape->training || p == 0.0f)
        return gtl__op_act(tape, src, GTL__ACT_NONE, out);
    if (tape->rng == NULL)
        return gtl__error(GTL_STATUS_BAD_STATE, "dropout: the tape has no RNG");
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    bool node = gtl__requires_grad(dst);
    float *mask = NULL;
    if (node) {
        mask = gtl__tape_alloc(tape, (size_t)src->n * sizeof(float));
        if (mask == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
    }
    float scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < src->n; i++) {
        float m = gtl__rng_uniform(tape->rng) < p ? 0.0f : scale;
        dst->data[i] = src->data[i] * m;
        if (mask)
            mask[i] = m;
    }
    if (node) {
        gtl__node *nd;
        st = gtl__tape_record(tape, "dropout", dropout_backward, dst, &src, 1, &nd);
        if (st != GTL_STATUS_OK)
            return st;
        nd->saved = mask;
        nd->fp[0] = p;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
