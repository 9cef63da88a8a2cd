/* Normalisation on oneDNN: layer normalisation over the last dim and batch
 * normalisation per channel, forward and backward on oneDNN primitives.
 * Shapes: layernorm src (..., C) viewed as (R, C) rows; batchnorm src (N, C)
 * or (N, C, H, W), statistics per channel C over M = N * H * W values.
 * Derivations: docs/autograd.md#layernorm and docs/autograd.md#batchnorm. */
#include <math.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

#define KEY_LNORM 0x6c6e726d /* "lnrm" */
#define KEY_BNORM 0x626e726d /* "bnrm" */

static int64_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (int64_t)u;
}

/* Adds n values of src into dst. */
static void add_into(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* ---- layernorm ----------------------------------------------------------- */

/* The forward primitive descriptor for (R, C) rows; the backward one uses it
 * as its hint. Statistics are (R). */
static gtl_status lnorm_fwd_pd(int64_t rows, int64_t c, unsigned flags, float eps,
                               dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *out_pd)
{
    *out_pd = NULL;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t dims[2] = {rows, c};
    dnnl_memory_desc_t md, smd;
    st = gtl__md_plain(&md, 2, dims, dnnl_f32);
    if (st == GTL_STATUS_OK)
        st = gtl__md_plain(&smd, 1, dims, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_layer_normalization_desc_t desc;
    dnnl_status_t s = dnnl_layer_normalization_forward_desc_init(&desc, dnnl_forward_training,
                                                                 &md, &smd, eps, flags);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(out_pd, &desc, attr, eng, NULL);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "layernorm forward descriptor");
    return GTL_STATUS_OK;
}

/* Forward args: SRC, [SCALE, SHIFT], DST, MEAN, VARIANCE.
 * Backward args: SRC, MEAN, VARIANCE, DIFF_DST, [SCALE, SHIFT], DIFF_SRC,
 * [DIFF_SCALE, DIFF_SHIFT]. With gamma/beta the backward is always
 * dnnl_backward: oneDNN 2.6 has no backward_data with use_shift, and its
 * backward lists SHIFT as an input although the result does not use it. */
static gtl_status lnorm_prim(gtl__ctx *ctx, int64_t rows, int64_t c, bool affine, float eps,
                             bool backward, gtl__prim **out)
{
    int64_t key[6] = {KEY_LNORM, rows, c, affine, float_bits(eps), backward};
    *out = gtl__prim_lookup(ctx, key, 6);
    if (*out != NULL)
        return GTL_STATUS_OK;
    unsigned flags = affine ? (unsigned)(dnnl_use_scale | dnnl_use_shift) : 0u;
    dnnl_primitive_attr_t attr;
    gtl_status st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    st = lnorm_fwd_pd(rows, c, flags, eps, attr, &fpd);
    if (st != GTL_STATUS_OK)
        goto out_destroy_attr;
    if (!backward) {
        int args_aff[6] = {DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DST,
                           DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
        int args_plain[4] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
        st = gtl__prim_create(ctx, "layernorm", GTL__PRIM_HOT, key, 6, fpd,
                              affine ? args_aff : args_plain, affine ? 6 : 4, out);
        goto out_destroy_attr;
    }
    {
        int64_t dims[2] = {rows, c};
        dnnl_memory_desc_t md, smd;
        dnnl_layer_normalization_desc_t desc;
        dnnl_engine_t eng;
        st = gtl__dnnl_engine(&eng);
        if (st == GTL_STATUS_OK)
            st = gtl__md_plain(&md, 2, dims, dnnl_f32);
        if (st == GTL_STATUS_OK)
            st = gtl__md_plain(&smd, 1, dims, dnnl_f32);
        if (st != GTL_STATUS_OK)
            goto out_destroy_fpd;
        dnnl_status_t s = dnnl_layer_normalization_backward_desc_init(&desc, dnnl_backward, &md,
                                                                      &md, &smd, eps, flags);
        if (s == dnnl_success)
            s = dnnl_primitive_desc_create(&bpd, &desc, attr, eng, fpd);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, "layernorm backward descriptor");
            goto out_destroy_fpd;
        }
    }
    {
        int args[9] = {DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_DST,
                       DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE,
                       DNNL_ARG_DIFF_SHIFT};
        int args_plain[5] = {DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_DST,
                             DNNL_ARG_DIFF_SRC};
        st = gtl__prim_create(ctx, "layernorm_bwd", GTL__PRIM_HOT, key, 6, bpd,
                              affine ? args : args_plain, affine ? 9 : 5, out);
    }
out_destroy_fpd:
    dnnl_primitive_desc_destroy(fpd);
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* node: src[0] src (R, C), src[1] gamma (C), src[2] beta (C); saved = mean
 * (R) followed by variance (R); ip[0] R, ip[1] C; fp[0] eps. */
static gtl_status layernorm_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    bool affine = node->n_src == 3;
    gtl__tensor *gamma = affine ? node->src[1] : NULL, *beta = affine ? node->src[2] : NULL;
    int64_t rows = node->ip[0], c = node->ip[1];
    const float *mean = node->saved, *var = mean + rows;
    gtl__prim *p;
    gtl_status st = lnorm_prim(tape->ctx, rows, c, affine, node->fp[0], true, &p);
    if (st != GTL_STATUS_OK)
        return st;
    /* oneDNN overwrites its outputs: compute into scratch, then accumulate. */
    float *dsrc = gtl__tape_alloc(tape, (size_t)(src->n + 2 * c) * sizeof(float));
    if (dsrc == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    float *dscale = dsrc + src->n, *dshift = dscale + c;
    void *ptrs[9] = {src->data, (void *)mean, (void *)var, dst->grad, dsrc};
    if (affine) {
        ptrs[4] = gamma->data;
        ptrs[5] = beta->data;
        ptrs[6] = dsrc;
        ptrs[7] = dscale;
        ptrs[8] = dshift;
    }
    st = gtl__prim_exec(tape->ctx, p, ptrs);
    if (st != GTL_STATUS_OK)
        return st;
    float *g;
    if (gtl__requires_grad(src)) {
        st = gtl__tape_grad(tape, src, &g);
        if (st != GTL_STATUS_OK)
            return st;
        add_into(g, dsrc, src->n);
    }
    if (affine && gtl__requires_grad(gamma)) {
        st = gtl__tape_grad(tape, gamma, &g);
        if (st != GTL_STATUS_OK)
            return st;
        add_into(g, dscale, c);
    }
    if (affine && gtl__requires_grad(beta)) {
        st = gtl__tape_grad(tape, beta, &g);
        if (st != GTL_STATUS_OK)
            return st;
        add_into(g, dshift, c);
    }
    return GTL_STATUS_OK;
}

/* dst (..., C) = (src - mean) / sqrt(var + eps) * gamma + beta per row. */
gtl_status gtl__op_layernorm(gtl__tape *tape, gtl__tensor *src, gtl__tensor *gamma,
                             gtl__tensor *beta, float eps, gtl__tensor **out)
{
    char s1[64];
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "layernorm: NULL tensor");
    if (src->nd < 1 || src->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "layernorm: src %s must be non-empty",
                          gtl__shape_str(src, s1, sizeof s1));
    int64_t c = src->ne[src->nd - 1], rows = src->n / c;
    if ((gamma == NULL) != (beta == NULL))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "layernorm: gamma and beta must both be given or both be NULL");
    if (gamma != NULL && (gamma->n != c || beta->n != c))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "layernorm: gamma/beta have %lld/%lld elements, want C = %lld",
                          (long long)gamma->n, (long long)beta->n, (long long)c);
    if (!(eps >= 0.0f) || isinf(eps))
        return gtl__error(GTL_STATUS_INVALID_ARG, "layernorm: eps must be finite and >= 0 (%g)",
                          (double)eps);

    bool affine = gamma != NULL;
    gtl__tensor *srcs[3] = {src, gamma, beta};
    int32_t n_src = affine ? 3 : 1;
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, srcs, n_src, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    float *stats = gtl__tape_alloc(tape, (size_t)(2 * rows) * sizeof(float));
    if (stats == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    gtl__prim *p;
    st = lnorm_prim(tape->ctx, rows, c, affine, eps, false, &p);
    if (st != GTL_STATUS_OK)
        return st;
    if (affine) {
        void *ptrs[6] = {src->data, gamma->data, beta->data, dst->data, stats, stats + rows};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    } else {
        void *ptrs[4] = {src->data, dst->data, stats, stats + rows};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    }
    if (st != GTL_STATUS_OK)
        return st;
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "layernorm", layernorm_backward, dst, srcs, n_src, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = stats;
        node->ip[0] = rows;
        node->ip[1] = c;
        node->fp[0] = eps;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- batchnorm ----------------------------------------------------------- */

/* (N, C) is described as (N, C, 1, 1) in nhwc, which is the same memory and
 * picks the JIT kernel (plain 2-D picks a generic C++ one); (N, C, H, W) is
 * plain nchw. */
static gtl_status bnorm_md(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w,
                           bool two_d)
{
    if (!two_d) {
        int64_t dims[4] = {n, c, h, w};
        return gtl__md_plain(md, 4, dims, dnnl_f32);
    }
    dnnl_dims_t dims = {n, c, 1, 1};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc);
    return s == dnnl_success ? GTL_STATUS_OK : gtl__dnnl_error(s, "memory descriptor");
}

typedef struct bnorm_geom {
    int64_t n, c, h, w;
    bool two_d, affine, global;
    float eps;
} bnorm_geom;

/* Forward args: SRC, [SCALE, SHIFT], MEAN, VARIANCE, DST (mean and variance
 * are outputs, or inputs with global statistics).
 * Backward args: SRC, MEAN, VARIANCE, DIFF_DST, [SCALE, SHIFT], DIFF_SRC,
 * [DIFF_SCALE, DIFF_SHIFT]; dnnl_backward with gamma/beta, as for layernorm. */
static gtl_status bnorm_prim(gtl__ctx *ctx, const bnorm_geom *g, bool backward, gtl__prim **out)
{
    int64_t key[10] = {KEY_BNORM, g->n, g->c, g->h, g->w, g->two_d, g->affine, g->global,
                       float_bits(g->eps), backward};
    *out = gtl__prim_lookup(ctx, key, 10);
    if (*out != NULL)
        return GTL_STATUS_OK;
    unsigned flags = (g->affine ? (unsigned)(dnnl_use_scale | dnnl_use_shift) : 0u) |
                     (g->global ? (unsigned)dnnl_use_global_stats : 0u);
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_memory_desc_t md;
    st = bnorm_md(&md, g->n, g->c, g->h, g->w, g->two_d);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_batch_normalization_desc_t fdesc, bdesc;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_status_t s = dnnl_batch_normalization_forward_desc_init(&fdesc, dnnl_forward_training,
                                                                 &md, g->eps, flags);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&fpd, &fdesc, attr, eng, NULL);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "batchnorm forward descriptor");
        goto out_destroy_attr;
    }
    if (!backward) {
        int args_aff[6] = {DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                           DNNL_ARG_VARIANCE, DNNL_ARG_DST};
        int args_plain[4] = {DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DST};
        st = gtl__prim_create(ctx, "batchnorm", GTL__PRIM_HOT, key, 10, fpd,
                              g->affine ? args_aff : args_plain, g->affine ? 6 : 4, out);
        goto out_destroy_attr;
    }
    s = dnnl_batch_normalization_backward_desc_init(&bdesc, dnnl_backward, &md, &md, g->eps,
                                                    flags);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&bpd, &bdesc, attr, eng, fpd);
    dnnl_primitive_desc_destroy(fpd);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "batchnorm backward descriptor");
        goto out_destroy_attr;
    }
    {
        int args[9] = {DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_DST,
                       DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE,
                       DNNL_ARG_DIFF_SHIFT};
        int args_plain[5] = {DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_DST,
                             DNNL_ARG_DIFF_SRC};
        st = gtl__prim_create(ctx, "batchnorm_bwd", GTL__PRIM_HOT, key, 10, bpd,
                              g->affine ? args : args_plain, g->affine ? 9 : 5, out);
    }
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static void bnorm_geom_of(const gtl__tensor *src, bool affine, bool global, float eps,
                          bnorm_geom *g)
{
    g->n = src->ne[0];
    g->c = src->ne[1];
    g->two_d = src->nd == 2;
    g->h = g->two_d ? 1 : src->ne[2];
    g->w = g->two_d ? 1 : src->ne[3];
    g->affine = affine;
    g->global = global;
    g->eps = eps;
}

/* node: src[0] src, src[1] gamma (C), src[2] beta (C); saved = mean (C)
 * followed by variance (C): the batch statistics (biased variance) in
 * training mode, a copy of the running statistics in evaluation mode;
 * ip[0] global (evaluation mode); fp[0] eps. */
static gtl_status batchnorm_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    bool affine = node->n_src == 3;
    gtl__tensor *gamma = affine ? node->src[1] : NULL, *beta = affine ? node->src[2] : NULL;
    bnorm_geom geo;
    bnorm_geom_of(src, affine, node->ip[0] != 0, node->fp[0], &geo);
    const float *mean = node->saved, *var = mean + geo.c;
    gtl__prim *p;
    gtl_status st = bnorm_prim(tape->ctx, &geo, true, &p);
    if (st != GTL_STATUS_OK)
        return st;
    float *dsrc = gtl__tape_alloc(tape, (size_t)(src->n + 2 * geo.c) * sizeof(float));
    if (dsrc == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    float *dscale = dsrc + src->n, *dshift = dscale + geo.c;
    void *ptrs[9] = {src->data, (void *)mean, (void *)var, dst->grad, dsrc};
    if (affine) {
        ptrs[4] = gamma->data;
        ptrs[5] = beta->data;
        ptrs[6] = dsrc;
        ptrs[7] = dscale;
        ptrs[8] = dshift;
    }
    st = gtl__prim_exec(tape->ctx, p, ptrs);
    if (st != GTL_STATUS_OK)
        return st;
    float *g;
    if (gtl__requires_grad(src)) {
        st = gtl__tape_grad(tape, src, &g);
        if (st != GTL_STATUS_OK)
            return st;
        add_into(g, dsrc, src->n);
    }
    if (affine && gtl__requires_grad(gamma)) {
        st = gtl__tape_grad(tape, gamma, &g);
        if (st != GTL_STATUS_OK)
            return st;
        add_into(g, dscale, geo.c);
    }
    if (affine && gtl__requires_grad(beta)) {
        st = gtl__tape_grad(tape, beta, &g);
        if (st != GTL_STATUS_OK)
            return st;
        add_into(g, dshift, geo.c);
    }
    return GTL_STATUS_OK;
}

/* dst = (src - mean_c) / sqrt(var_c + eps) * gamma_c + beta_c. */
gtl_status gtl__op_batchnorm(gtl__tape *tape, gtl__tensor *src, gtl__tensor *gamma,
                             gtl__tensor *beta, float *running_mean, float *running_var,
                             float momentum, float eps, gtl__tensor **out)
{
    char s1[64];
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "batchnorm: NULL tensor");
    if ((src->nd != 2 && src->nd != 4) || src->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "batchnorm: src %s must be a non-empty (N, C) or (N, C, H, W)",
                          gtl__shape_str(src, s1, sizeof s1));
    int64_t c = src->ne[1];
    bool training = tape->training;
    if ((gamma == NULL) != (beta == NULL))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "batchnorm: gamma and beta must both be given or both be NULL");
    if (gamma != NULL && (gamma->n != c || beta->n != c))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "batchnorm: gamma/beta have %lld/%lld elements, want C = %lld",
                          (long long)gamma->n, (long long)beta->n, (long long)c);
    if ((running_mean == NULL) != (running_var == NULL))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "batchnorm: running_mean and running_var must both be given or both "
                          "be NULL");
    if (!training && running_mean == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "batchnorm: evaluation mode needs running statistics");
    if (training && src->ne[0] < 2)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "batchnorm: training mode needs N >= 2 (src %s)",
                          gtl__shape_str(src, s1, sizeof s1));
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "batchnorm: momentum must be in [0, 1] (%g)",
                          (double)momentum);
    if (!(eps >= 0.0f) || isinf(eps))
        return gtl__error(GTL_STATUS_INVALID_ARG, "batchnorm: eps must be finite and >= 0 (%g)",
                          (double)eps);

    bool affine = gamma != NULL;
    bnorm_geom geo;
    bnorm_geom_of(src, affine, !training, eps, &geo);
    gtl__tensor *srcs[3] = {src, gamma, beta};
    int32_t n_src = affine ? 3 : 1;
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, srcs, n_src, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    /* Batch statistics come out here in training mode; in evaluation mode
     * the running statistics are copied in, so the backward pass sees the
     * values the forward used even if the caller changes them. */
    float *stats = gtl__tape_alloc(tape, (size_t)(2 * c) * sizeof(float));
    if (stats == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    if (!training) {
        memcpy(stats, running_mean, (size_t)c * sizeof(float));
        memcpy(stats + c, running_var, (size_t)c * sizeof(float));
    }
    gtl__prim *p;
    st = bnorm_prim(tape->ctx, &geo, false, &p);
    if (st != GTL_STATUS_OK)
        return st;
    if (affine) {
        void *ptrs[6] = {src->data, gamma->data, beta->data, stats, stats + c, dst->data};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    } else {
        void *ptrs[4] = {src->data, stats, stats + c, dst->data};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    }
    if (st != GTL_STATUS_OK)
        return st;
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "batchnorm", batchnorm_backward, dst, srcs, n_src, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = stats;
        node->ip[0] = !training;
        node->fp[0] = eps;
    }
    /* Last, so a failed forward leaves the running statistics untouched.
     * As PyTorch: the running variance takes the unbiased estimate. */
    if (training && running_mean != NULL) {
        int64_t m = src->n / c;
        float unbias = (float)m / (float)(m - 1);
        for (int64_t i = 0; i < c; i++) {
            running_mean[i] = (1.0f - momentum) * running_mean[i] + momentum * stats[i];
            running_var[i] = (1.0f - momentum) * running_var[i] + momentum * stats[c + i] * unbias;
        }
    }
    *out = dst;
    return GTL_STATUS_OK;
}
