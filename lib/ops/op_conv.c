/* 2-D convolution and pooling on oneDNN, forward and backward.
 * Derivations: docs/autograd.md#convolution and #pooling.
 *
 * Shapes: N batch, C input channels, H x W input size, O output channels,
 * KH x KW kernel, OH x OW output size. Tape tensors are plain nchw (src,
 * dst) and oihw (weights). The primitives choose their own layouts
 * (format_tag_any for convolution, the first blocked layout a JIT kernel
 * accepts for pooling: plain nchw pooling is a slow C++ kernel), so every
 * operand goes through a cached reorder when the chosen layout is not the
 * plain one, and gradients come back through a reorder with a sum post-op
 * (which accumulates into the plain gradient). A forced plain layout can
 * land on a ref: kernel 1000x slower (docs/platform-notes.md). */
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

#define CONV_KEY 0x636f6e76   /* "conv" */
#define POOL_KEY 0x706f6f6c   /* "pool" */
#define LAYOUT_KEY 0x6c61796f /* "layo": reorders between plain and chosen layouts */

enum { KIND_FWD = 0, KIND_BWD_DATA = 1, KIND_BWD_WEIGHTS = 2 };

/* ---- layouts ------------------------------------------------------------ */

/* The memory descriptor a cached primitive binds to its i-th argument. */
static const dnnl_memory_desc_t *prim_md(const gtl__prim *p, int32_t i)
{
    const dnnl_memory_desc_t *md = NULL;
    dnnl_memory_get_memory_desc(p->args[i].memory, &md);
    return md;
}

static bool md_is_plain(const dnnl_memory_desc_t *md, int32_t nd, const int64_t *dims)
{
    dnnl_memory_desc_t plain;
    if (gtl__md_plain(&plain, nd, dims, dnnl_f32) != GTL_STATUS_OK)
        return false;
    return dnnl_memory_desc_equal(&plain, md) != 0;
}

/* A cached reorder between the plain layout of dims and `other`: plain ->
 * other (to_other), or other -> plain, accumulating into the plain buffer
 * with a sum post-op when accumulate is set. The key is the owning
 * primitive's key plus a role, which fixes `other`. */
static gtl_status layout_reorder(gtl__ctx *ctx, const int64_t *base, int32_t n_base, int64_t role,
                                 int32_t nd, const int64_t *dims,
                                 const dnnl_memory_desc_t *other, bool to_other, bool accumulate,
                                 gtl__prim **out)
{
    int64_t key[GTL__KEY_MAX];
    int32_t n = 0;
    GTL_ASSERT(n_base + 3 <= GTL__KEY_MAX);
    key[n++] = LAYOUT_KEY;
    key[n++] = role;
    key[n++] = (to_other ? 1 : 0) | (accumulate ? 2 : 0);
    for (int32_t i = 0; i < n_base; i++)
        key[n++] = base[i];
    *out = gtl__prim_lookup(ctx, key, n);
    if (*out != NULL)
        return GTL_STATUS_OK;

    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_memory_desc_t plain;
    st = gtl__md_plain(&plain, nd, dims, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_status_t s = dnnl_success;
    dnnl_post_ops_t po = NULL;
    if (accumulate) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success)
            s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, "layout reorder post-ops");
            goto out_destroy;
        }
    }
    dnnl_primitive_desc_t pd;
    s = to_other ? dnnl_reorder_primitive_desc_create(&pd, &plain, eng, other, eng, attr)
                 : dnnl_reorder_primitive_desc_create(&pd, other, eng, &plain, eng, attr);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "layout reorder primitive descriptor");
        goto out_destroy;
    }
    int args[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    st = gtl__prim_create(ctx, "layout reorder", GTL__PRIM_HOT, key, n, pd, args, 2, out);
out_destroy:
    if (po != NULL)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Makes plain data (dims) available in layout `want`: plain itself when it
 * already is in that layout, `have` when have_md matches (a copy made
 * earlier), else a new arena copy made by a cached reorder. */
static gtl_status to_layout(gtl__tape *tape, const int64_t *base, int32_t n_base, int64_t role,
                            int32_t nd, const int64_t *dims, const dnnl_memory_desc_t *want,
                            const float *plain, const dnnl_memory_desc_t *have_md,
                            const float *have, const float **out)
{
    *out = NULL;
    if (md_is_plain(want, nd, dims)) {
        *out = plain;
        return GTL_STATUS_OK;
    }
    if (have != NULL && have_md != NULL && dnnl_memory_desc_equal(want, have_md)) {
        *out = have;
        return GTL_STATUS_OK;
    }
    gtl__prim *r;
    gtl_status st = layout_reorder(tape->ctx, base, n_base, role, nd, dims, want, true, false, &r);
    if (st != GTL_STATUS_OK)
        return st;
    float *buf = gtl__tape_alloc(tape, dnnl_memory_desc_get_size(want));
    if (buf == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    void *ptrs[2] = {(void *)plain, buf};
    st = gtl__prim_exec(tape->ctx, r, ptrs);
    if (st != GTL_STATUS_OK)
        return st;
    *out = buf;
    return GTL_STATUS_OK;
}

/* Writes (or with accumulate, adds) buf, laid out as `have`, into the plain
 * buffer dst of dims. */
static gtl_status from_layout(gtl__tape *tape, const int64_t *base, int32_t n_base, int64_t role,
                              int32_t nd, const int64_t *dims, const dnnl_memory_desc_t *have,
                              const float *buf, float *dst, bool accumulate)
{
    if (md_is_plain(have, nd, dims)) {
        int64_t n = 1;
        for (int32_t i = 0; i < nd; i++)
            n *= dims[i];
        if (!accumulate) {
            if (buf != dst)
                memcpy(dst, buf, (size_t)n * sizeof(float));
            return GTL_STATUS_OK;
        }
        for (int64_t i = 0; i < n; i++)
            dst[i] += buf[i];
        return GTL_STATUS_OK;
    }
    gtl__prim *r;
    gtl_status st = layout_reorder(tape->ctx, base, n_base, role, nd, dims, have, false,
                                   accumulate, &r);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[2] = {(void *)buf, dst};
    return gtl__prim_exec(tape->ctx, r, ptrs);
}

/* An arena buffer for a primitive output in layout md; the plain buffer
 * itself when md is plain and plain is not NULL (no copy needed). */
static float *out_buffer(gtl__tape *tape, const dnnl_memory_desc_t *md, int32_t nd,
                         const int64_t *dims, float *plain)
{
    if (plain != NULL && md_is_plain(md, nd, dims))
        return plain;
    return gtl__tape_alloc(tape, dnnl_memory_desc_get_size(md));
}

/* ---- convolution --------------------------------------------------------- */

typedef struct conv_geom {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow;
    bool bias;
} conv_geom;

#define CONV_NKEY 15

static int32_t conv_key(const conv_geom *g, int kind, int64_t *key)
{
    int64_t k[CONV_NKEY] = {CONV_KEY, kind, g->n, g->c, g->h, g->w, g->o, g->kh, g->kw,
                            g->sh, g->sw, g->ph, g->pw, g->bias, 0};
    memcpy(key, k, sizeof k);
    return CONV_NKEY;
}

/* Argument orders of the three cached convolution primitives. */
enum { CF_SRC = 0, CF_WEIGHTS = 1 };          /* forward: src, weights, [bias], dst */
enum { CD_DIFF_DST = 0, CD_WEIGHTS = 1, CD_DIFF_SRC = 2 };
enum { CW_SRC = 0, CW_DIFF_DST = 1, CW_DIFF_WEIGHTS = 2, CW_DIFF_BIAS = 3 };

static gtl_status conv_prim(gtl__ctx *ctx, const conv_geom *g, int kind, gtl__prim **out)
{
    int64_t key[CONV_NKEY];
    int32_t n_key = conv_key(g, kind, key);
    *out = gtl__prim_lookup(ctx, key, n_key);
    if (*out != NULL)
        return GTL_STATUS_OK;

    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_dims_t sd = {g->n, g->c, g->h, g->w}, wd = {g->o, g->c, g->kh, g->kw}, bd = {g->o},
                dd = {g->n, g->o, g->oh, g->ow}, strides = {g->sh, g->sw},
                pads = {g->ph, g->pw};
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_f32, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "conv2d memory descriptor");
    const dnnl_memory_desc_t *bias_md = g->bias ? &bmd : NULL;

    dnnl_convolution_desc_t fwd, bwd;
    s = dnnl_convolution_forward_desc_init(&fwd, dnnl_forward_training, dnnl_convolution_direct,
                                           &smd, &wmd, bias_md, &dmd, strides, pads, pads);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "conv2d descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    s = dnnl_primitive_desc_create(&fpd, &fwd, attr, eng, NULL);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "conv2d primitive descriptor");
        goto out_destroy_attr;
    }
    if (kind == KIND_FWD) {
        int args_b[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        int args_nb[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        st = gtl__prim_create(ctx, "conv2d", GTL__PRIM_HOT, key, n_key, fpd,
                              g->bias ? args_b : args_nb, g->bias ? 4 : 3, out);
        goto out_destroy_attr;
    }
    if (kind == KIND_BWD_DATA)
        s = dnnl_convolution_backward_data_desc_init(&bwd, dnnl_convolution_direct, &smd, &wmd,
                                                     &dmd, strides, pads, pads);
    else
        s = dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &smd,
                                                        &wmd, bias_md, &dmd, strides, pads,
                                                        pads);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&bpd, &bwd, attr, eng, fpd);
    dnnl_primitive_desc_destroy(fpd);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "conv2d backward primitive descriptor");
        goto out_destroy_attr;
    }
    if (kind == KIND_BWD_DATA) {
        int args[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        st = gtl__prim_create(ctx, "conv2d bwd data", GTL__PRIM_HOT, key, n_key, bpd, args, 3,
                              out);
    } else {
        int args[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS,
                       DNNL_ARG_DIFF_BIAS};
        st = gtl__prim_create(ctx, "conv2d bwd weights", GTL__PRIM_HOT, key, n_key, bpd, args,
                              g->bias ? 4 : 3, out);
    }
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Forward-layout copies of src and weights, reused by backward when the
 * backward primitives want the same layouts. */
typedef struct conv_saved {
    const float *src_l;
    const float *w_l;
} conv_saved;

static void conv_geom_of(const gtl__node *node, conv_geom *g)
{
    const gtl__tensor *src = node->src[0], *w = node->src[1], *dst = node->dst;
    g->n = src->ne[0];
    g->c = src->ne[1];
    g->h = src->ne[2];
    g->w = src->ne[3];
    g->o = w->ne[0];
    g->kh = w->ne[2];
    g->kw = w->ne[3];
    g->sh = node->ip[0];
    g->sw = node->ip[1];
    g->ph = node->ip[2];
    g->pw = node->ip[3];
    g->bias = node->ip[4] != 0;
    g->oh = dst->ne[2];
    g->ow = dst->ne[3];
}

/* Layout roles (reorder key part): kind * 16 + argument position. */
#define ROLE(kind, arg) ((int64_t)(kind) * 16 + (arg))

static gtl_status conv2d_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *w = node->src[1], *dst = node->dst;
    gtl__tensor *bias = node->n_src > 2 ? node->src[2] : NULL;
    const conv_saved *sv = node->saved;
    conv_geom g;
    conv_geom_of(node, &g);
    int64_t sdims[4] = {g.n, g.c, g.h, g.w}, wdims[4] = {g.o, g.c, g.kh, g.kw},
            ddims[4] = {g.n, g.o, g.oh, g.ow};
    int64_t key[CONV_NKEY];
    gtl__prim *fp, *p;
    gtl_status st = conv_prim(tape->ctx, &g, KIND_FWD, &fp);
    if (st != GTL_STATUS_OK)
        return st;
    /* diff_dst in the layout of the last primitive that asked for it. */
    const dnnl_memory_desc_t *dd_md = NULL;
    const float *dd = NULL;
    float *grad;

    if (gtl__requires_grad(src)) {
        /* diff_src (N, C, H, W) += conv_bwd_data(diff_dst, weights) */
        conv_key(&g, KIND_BWD_DATA, key);
        st = conv_prim(tape->ctx, &g, KIND_BWD_DATA, &p);
        if (st != GTL_STATUS_OK)
            return st;
        const float *w_l;
        st = to_layout(tape, key, CONV_NKEY, ROLE(KIND_BWD_DATA, CD_DIFF_DST), 4, ddims,
                       prim_md(p, CD_DIFF_DST), dst->grad, NULL, NULL, &dd);
        if (st == GTL_STATUS_OK)
            st = to_layout(tape, key, CONV_NKEY, ROLE(KIND_BWD_DATA, CD_WEIGHTS), 4, wdims,
                           prim_md(p, CD_WEIGHTS), w->data, prim_md(fp, CF_WEIGHTS), sv->w_l,
                           &w_l);
        if (st != GTL_STATUS_OK)
            return st;
        dd_md = prim_md(p, CD_DIFF_DST);
        float *ds = out_buffer(tape, prim_md(p, CD_DIFF_SRC), 4, sdims, NULL);
        if (ds == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        void *ptrs[3] = {(void *)dd, (void *)w_l, ds};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
        if (st == GTL_STATUS_OK)
            st = gtl__tape_grad(tape, src, &grad);
        if (st == GTL_STATUS_OK)
            st = from_layout(tape, key, CONV_NKEY, ROLE(KIND_BWD_DATA, CD_DIFF_SRC), 4, sdims,
                             prim_md(p, CD_DIFF_SRC), ds, grad, true);
        if (st != GTL_STATUS_OK)
            return st;
    }
    bool want_w = gtl__requires_grad(w), want_b = gtl__requires_grad(bias);
    if (!want_w && !want_b)
        return GTL_STATUS_OK;

    /* diff_weights (O, C, KH, KW) and diff_bias (O) from conv_bwd_weights(src, diff_dst) */
    conv_key(&g, KIND_BWD_WEIGHTS, key);
    st = conv_prim(tape->ctx, &g, KIND_BWD_WEIGHTS, &p);
    if (st != GTL_STATUS_OK)
        return st;
    const float *s_l;
    st = to_layout(tape, key, CONV_NKEY, ROLE(KIND_BWD_WEIGHTS, CW_SRC), 4, sdims,
                   prim_md(p, CW_SRC), src->data, prim_md(fp, CF_SRC), sv->src_l, &s_l);
    if (st == GTL_STATUS_OK)
        st = to_layout(tape, key, CONV_NKEY, ROLE(KIND_BWD_WEIGHTS, CW_DIFF_DST), 4, ddims,
                       prim_md(p, CW_DIFF_DST), dst->grad, dd_md, dd, &dd);
    if (st != GTL_STATUS_OK)
        return st;
    float *dw = out_buffer(tape, prim_md(p, CW_DIFF_WEIGHTS), 4, wdims, NULL);
    float *db = g.bias ? gtl__tape_alloc(tape, (size_t)g.o * sizeof(float)) : NULL;
    if (dw == NULL || (g.bias && db == NULL))
        return GTL_STATUS_OUT_OF_MEMORY;
    void *ptrs[4] = {(void *)s_l, (void *)dd, dw, db};
    st = gtl__prim_exec(tape->ctx, p, ptrs);
    if (st != GTL_STATUS_OK)
        return st;
    if (want_w) {
        st = gtl__tape_grad(tape, w, &grad);
        if (st == GTL_STATUS_OK)
            st = from_layout(tape, key, CONV_NKEY, ROLE(KIND_BWD_WEIGHTS, CW_DIFF_WEIGHTS), 4,
                             wdims, prim_md(p, CW_DIFF_WEIGHTS), dw, grad, true);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (want_b) {
        st = gtl__tape_grad(tape, bias, &grad);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < g.o; i++)
            grad[i] += db[i];
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_conv2d(gtl__tape *tape, gtl__tensor *src, gtl__tensor *weight,
                          gtl__tensor *bias, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                          int64_t pad_w, gtl__tensor **out)
{
    char s1[64], s2[64];
    *out = NULL;
    if (src == NULL || weight == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "conv2d: NULL tensor");
    if (src->nd != 4 || weight->nd != 4 || src->ne[1] != weight->ne[1])
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "conv2d: src %s and weight %s must be (N, C, H, W) and (O, C, KH, KW)",
                          gtl__shape_str(src, s1, sizeof s1),
                          gtl__shape_str(weight, s2, sizeof s2));
    if (bias != NULL && (bias->nd != 1 || bias->ne[0] != weight->ne[0]))
        return gtl__error(GTL_STATUS_INVALID_ARG, "conv2d: bias %s must be (%lld)",
                          gtl__shape_str(bias, s1, sizeof s1), (long long)weight->ne[0]);
    if (stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "conv2d: strides must be >= 1 and padding >= 0 (got %lld, %lld, "
                          "%lld, %lld)", (long long)stride_h, (long long)stride_w,
                          (long long)pad_h, (long long)pad_w);
    for (int32_t i = 0; i < 4; i++)
        if (src->ne[i] == 0 || weight->ne[i] == 0)
            return gtl__error(GTL_STATUS_INVALID_ARG, "conv2d: empty src %s or weight %s",
                              gtl__shape_str(src, s1, sizeof s1),
                              gtl__shape_str(weight, s2, sizeof s2));
    conv_geom g = {
        .n = src->ne[0], .c = src->ne[1], .h = src->ne[2], .w = src->ne[3],
        .o = weight->ne[0], .kh = weight->ne[2], .kw = weight->ne[3],
        .sh = stride_h, .sw = stride_w, .ph = pad_h, .pw = pad_w, .bias = bias != NULL,
    };
    if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "conv2d: kernel %lldx%lld larger than the padded input %lldx%lld",
                          (long long)g.kh, (long long)g.kw, (long long)(g.h + 2 * g.ph),
                          (long long)(g.w + 2 * g.pw));
    g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
    g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;

    int64_t sdims[4] = {g.n, g.c, g.h, g.w}, wdims[4] = {g.o, g.c, g.kh, g.kw},
            ddims[4] = {g.n, g.o, g.oh, g.ow};
    gtl__tensor *srcs[3] = {src, weight, bias};
    int32_t n_src = bias != NULL ? 3 : 2;
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 4, ddims, srcs, n_src, &dst);
    if (st != GTL_STATUS_OK)
        return st;

    int64_t key[CONV_NKEY];
    conv_key(&g, KIND_FWD, key);
    gtl__prim *p;
    st = conv_prim(tape->ctx, &g, KIND_FWD, &p);
    if (st != GTL_STATUS_OK)
        return st;
    int32_t dst_arg = g.bias ? 3 : 2;
    const float *s_l, *w_l;
    st = to_layout(tape, key, CONV_NKEY, ROLE(KIND_FWD, CF_SRC), 4, sdims, prim_md(p, CF_SRC),
                   src->data, NULL, NULL, &s_l);
    if (st == GTL_STATUS_OK)
        st = to_layout(tape, key, CONV_NKEY, ROLE(KIND_FWD, CF_WEIGHTS), 4, wdims,
                       prim_md(p, CF_WEIGHTS), weight->data, NULL, NULL, &w_l);
    if (st != GTL_STATUS_OK)
        return st;
    float *d_l = out_buffer(tape, prim_md(p, dst_arg), 4, ddims, dst->data);
    if (d_l == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    if (g.bias) {
        void *ptrs[4] = {(void *)s_l, (void *)w_l, bias->data, d_l};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    } else {
        void *ptrs[3] = {(void *)s_l, (void *)w_l, d_l};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    }
    if (st == GTL_STATUS_OK && d_l != dst->data)
        st = from_layout(tape, key, CONV_NKEY, ROLE(KIND_FWD, dst_arg), 4, ddims,
                         prim_md(p, dst_arg), d_l, dst->data, false);
    if (st != GTL_STATUS_OK)
        return st;

    if (gtl__requires_grad(dst)) {
        conv_saved *sv = gtl__tape_alloc(tape, sizeof *sv);
        if (sv == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        sv->src_l = s_l;
        sv->w_l = w_l;
        gtl__node *node;
        st = gtl__tape_record(tape, "conv2d", conv2d_backward, dst, srcs, n_src, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = sv;
        node->ip[0] = g.sh;
        node->ip[1] = g.sw;
        node->ip[2] = g.ph;
        node->ip[3] = g.pw;
        node->ip[4] = g.bias;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- pooling ------------------------------------------------------------- */

typedef struct pool_geom {
    int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
    dnnl_alg_kind_t alg;
} pool_geom;

#define POOL_NKEY 13

static int32_t pool_key(const pool_geom *g, int kind, int64_t *key)
{
    int64_t k[POOL_NKEY] = {POOL_KEY, kind, g->alg, g->n, g->c, g->h, g->w,
                            g->kh, g->kw, g->sh, g->sw, g->ph, g->pw};
    memcpy(key, k, sizeof k);
    return POOL_NKEY;
}

/* Argument orders: forward src, dst, [workspace]; backward diff_dst,
 * [workspace], diff_src. */
enum { PF_SRC = 0, PF_DST = 1, PF_WS = 2 };

static gtl_status pool_fwd_pd(const pool_geom *g, const dnnl_memory_desc_t *smd,
                              const dnnl_memory_desc_t *dmd, dnnl_primitive_attr_t attr,
                              dnnl_primitive_desc_t *pd)
{
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_dims_t strides = {g->sh, g->sw}, kernel = {g->kh, g->kw}, dil = {0, 0},
                pads = {g->ph, g->pw};
    dnnl_pooling_v2_desc_t fwd;
    dnnl_status_t s = dnnl_pooling_v2_forward_desc_init(&fwd, dnnl_forward_training, g->alg,
                                                        smd, dmd, strides, kernel, dil, pads,
                                                        pads);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(pd, &fwd, attr, eng, NULL);
    return s == dnnl_success ? GTL_STATUS_OK : gtl__dnnl_error(s, "pooling primitive descriptor");
}

static gtl_status pool_prim(gtl__ctx *ctx, const pool_geom *g, int kind, gtl__prim **out)
{
    int64_t key[POOL_NKEY];
    int32_t n_key = pool_key(g, kind, key);
    *out = gtl__prim_lookup(ctx, key, n_key);
    if (*out != NULL)
        return GTL_STATUS_OK;

    bool max = g->alg == dnnl_pooling_max;
    dnnl_primitive_attr_t attr;
    gtl_status st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_dims_t sd = {g->n, g->c, g->h, g->w}, dd = {g->n, g->c, g->oh, g->ow};
    dnnl_memory_desc_t smd, dmd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_status_t s;

    if (kind == KIND_FWD) {
        /* Pooling takes no format_tag_any for src: try the blocked layouts
         * of the JIT kernels (16c for AVX-512, 8c for AVX2), else plain. */
        static const dnnl_format_tag_t tags[3] = {dnnl_nChw16c, dnnl_nChw8c, dnnl_nchw};
        for (int i = 0; i < 3; i++) {
            s = dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, tags[i]);
            if (s == dnnl_success)
                s = dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, tags[i]);
            if (s != dnnl_success) {
                st = gtl__dnnl_error(s, "pooling memory descriptor");
                goto out_destroy_attr;
            }
            st = pool_fwd_pd(g, &smd, &dmd, attr, &fpd);
            if (st != GTL_STATUS_OK)
                continue;
            const char *impl = NULL;
            dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl);
            if (i == 2 || (impl != NULL && strncmp(impl, "jit", 3) == 0))
                break;
            dnnl_primitive_desc_destroy(fpd);
            fpd = NULL;
        }
        if (fpd == NULL)
            goto out_destroy_attr; /* st holds the error of the plain layout */
        int args[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
        st = gtl__prim_create(ctx, max ? "maxpool" : "avgpool", GTL__PRIM_HOT, key, n_key, fpd,
                              args, max ? 3 : 2, out);
        goto out_destroy_attr;
    }

    /* Backward: the layouts the forward primitive chose. */
    gtl__prim *fp;
    st = pool_prim(ctx, g, KIND_FWD, &fp);
    if (st != GTL_STATUS_OK)
        goto out_destroy_attr;
    smd = *prim_md(fp, PF_SRC);
    dmd = *prim_md(fp, PF_DST);
    st = pool_fwd_pd(g, &smd, &dmd, attr, &fpd);
    if (st != GTL_STATUS_OK)
        goto out_destroy_attr;
    {
        dnnl_engine_t eng;
        st = gtl__dnnl_engine(&eng);
        if (st != GTL_STATUS_OK) {
            dnnl_primitive_desc_destroy(fpd);
            goto out_destroy_attr;
        }
        dnnl_dims_t strides = {g->sh, g->sw}, kernel = {g->kh, g->kw}, dil = {0, 0},
                    pads = {g->ph, g->pw};
        dnnl_pooling_v2_desc_t bwd;
        s = dnnl_pooling_v2_backward_desc_init(&bwd, g->alg, &smd, &dmd, strides, kernel, dil,
                                               pads, pads);
        if (s == dnnl_success)
            s = dnnl_primitive_desc_create(&bpd, &bwd, attr, eng, fpd);
        dnnl_primitive_desc_destroy(fpd);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, "pooling backward primitive descriptor");
            goto out_destroy_attr;
        }
    }
    {
        int args_max[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE, DNNL_ARG_DIFF_SRC};
        int args_avg[2] = {DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        st = gtl__prim_create(ctx, max ? "maxpool bwd" : "avgpool bwd", GTL__PRIM_HOT, key,
                              n_key, bpd, max ? args_max : args_avg, max ? 3 : 2, out);
    }
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static void pool_geom_of(const gtl__node *node, pool_geom *g)
{
    const gtl__tensor *src = node->src[0];
    g->n = src->ne[0];
    g->c = src->ne[1];
    g->h = src->ne[2];
    g->w = src->ne[3];
    g->kh = node->ip[0];
    g->kw = node->ip[1];
    g->sh = node->ip[2];
    g->sw = node->ip[3];
    g->ph = node->ip[4];
    g->pw = node->ip[5];
    g->alg = (dnnl_alg_kind_t)node->ip[6];
    g->oh = (g->h + 2 * g->ph - g->kh) / g->sh + 1;
    g->ow = (g->w + 2 * g->pw - g->kw) / g->sw + 1;
}

static gtl_status pool_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    pool_geom g;
    pool_geom_of(node, &g);
    bool max = g.alg == dnnl_pooling_max;
    int64_t sdims[4] = {g.n, g.c, g.h, g.w}, ddims[4] = {g.n, g.c, g.oh, g.ow};
    int64_t key[POOL_NKEY];
    pool_key(&g, KIND_BWD_DATA, key);
    gtl__prim *p;
    gtl_status st = pool_prim(tape->ctx, &g, KIND_BWD_DATA, &p);
    if (st != GTL_STATUS_OK)
        return st;
    int32_t ds_arg = max ? 2 : 1;
    const float *dd;
    st = to_layout(tape, key, POOL_NKEY, ROLE(KIND_BWD_DATA, 0), 4, ddims, prim_md(p, 0),
                   dst->grad, NULL, NULL, &dd);
    if (st != GTL_STATUS_OK)
        return st;
    float *ds = out_buffer(tape, prim_md(p, ds_arg), 4, sdims, NULL);
    if (ds == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    if (max) {
        void *ptrs[3] = {(void *)dd, node->saved, ds};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    } else {
        void *ptrs[2] = {(void *)dd, ds};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
    }
    float *grad;
    if (st == GTL_STATUS_OK)
        st = gtl__tape_grad(tape, src, &grad);
    if (st == GTL_STATUS_OK)
        st = from_layout(tape, key, POOL_NKEY, ROLE(KIND_BWD_DATA, ds_arg), 4, sdims,
                         prim_md(p, ds_arg), ds, grad, true);
    return st;
}

/* Shared by the three pooling ops; out_nd 2 gives (N, C) (global pooling). */
static gtl_status pool2d(gtl__tape *tape, const char *name, gtl__tensor *src,
                         dnnl_alg_kind_t alg, int64_t kh, int64_t kw, int64_t stride_h,
                         int64_t stride_w, int64_t pad_h, int64_t pad_w, int32_t out_nd,
                         gtl__tensor **out)
{
    char s1[64];
    if (src->ne[0] == 0 || src->ne[1] == 0 || src->ne[2] == 0 || src->ne[3] == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: empty src %s", name,
                          gtl__shape_str(src, s1, sizeof s1));
    if (kh < 1 || kw < 1 || stride_h < 1 || stride_w < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: kernel and strides must be >= 1 (got %lldx%lld, %lldx%lld)",
                          name, (long long)kh, (long long)kw, (long long)stride_h,
                          (long long)stride_w);
    if (pad_h < 0 || pad_w < 0 || pad_h >= kh || pad_w >= kw)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: padding %lldx%lld must be >= 0 and smaller than the kernel",
                          name, (long long)pad_h, (long long)pad_w);
    pool_geom g = {
        .n = src->ne[0], .c = src->ne[1], .h = src->ne[2], .w = src->ne[3],
        .kh = kh, .kw = kw, .sh = stride_h, .sw = stride_w, .ph = pad_h, .pw = pad_w,
        .alg = alg,
    };
    if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: kernel %lldx%lld larger than the padded input %s", name,
                          (long long)kh, (long long)kw, gtl__shape_str(src, s1, sizeof s1));
    g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
    g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
    bool max = alg == dnnl_pooling_max;

    int64_t sdims[4] = {g.n, g.c, g.h, g.w}, ddims[4] = {g.n, g.c, g.oh, g.ow};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, out_nd, ddims, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t key[POOL_NKEY];
    pool_key(&g, KIND_FWD, key);
    gtl__prim *p;
    st = pool_prim(tape->ctx, &g, KIND_FWD, &p);
    if (st != GTL_STATUS_OK)
        return st;
    const float *s_l;
    st = to_layout(tape, key, POOL_NKEY, ROLE(KIND_FWD, PF_SRC), 4, sdims, prim_md(p, PF_SRC),
                   src->data, NULL, NULL, &s_l);
    if (st != GTL_STATUS_OK)
        return st;
    float *d_l = out_buffer(tape, prim_md(p, PF_DST), 4, ddims, dst->data);
    void *ws = NULL;
    if (max)
        ws = gtl__tape_alloc(tape, dnnl_memory_desc_get_size(prim_md(p, PF_WS)));
    if (d_l == NULL || (max && ws == NULL))
        return GTL_STATUS_OUT_OF_MEMORY;
    void *ptrs[3] = {(void *)s_l, d_l, ws};
    st = gtl__prim_exec(tape->ctx, p, ptrs);
    if (st == GTL_STATUS_OK && d_l != dst->data)
        st = from_layout(tape, key, POOL_NKEY, ROLE(KIND_FWD, PF_DST), 4, ddims,
                         prim_md(p, PF_DST), d_l, dst->data, false);
    if (st != GTL_STATUS_OK)
        return st;

    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, name, pool_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->saved = ws; /* max pooling: argmax positions for backward */
        node->ip[0] = g.kh;
        node->ip[1] = g.kw;
        node->ip[2] = g.sh;
        node->ip[3] = g.sw;
        node->ip[4] = g.ph;
        node->ip[5] = g.pw;
        node->ip[6] = g.alg;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

static gtl_status check_nchw(const char *name, gtl__tensor *src)
{
    char s1[64];
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL tensor", name);
    if (src->nd != 4)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: src %s must be (N, C, H, W)", name,
                          gtl__shape_str(src, s1, sizeof s1));
    return GTL_STATUS_OK;
}

gtl_status gtl__op_maxpool2d(gtl__tape *tape, gtl__tensor *src, int64_t kh, int64_t kw,
                             int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                             gtl__tensor **out)
{
    *out = NULL;
    gtl_status st = check_nchw("maxpool2d", src);
    if (st != GTL_STATUS_OK)
        return st;
    return pool2d(tape, "maxpool2d", src, dnnl_pooling_max, kh, kw, stride_h, stride_w, pad_h,
                  pad_w, 4, out);
}

gtl_status gtl__op_avgpool2d(gtl__tape *tape, gtl__tensor *src, int64_t kh, int64_t kw,
                             int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                             gtl__tensor **out)
{
    *out = NULL;
    gtl_status st = check_nchw("avgpool2d", src);
    if (st != GTL_STATUS_OK)
        return st;
    return pool2d(tape, "avgpool2d", src, dnnl_pooling_avg_exclude_padding, kh, kw, stride_h,
                  stride_w, pad_h, pad_w, 4, out);
}

gtl_status gtl__op_global_avgpool(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    *out = NULL;
    gtl_status st = check_nchw("global_avgpool", src);
    if (st != GTL_STATUS_OK)
        return st;
    return pool2d(tape, "global_avgpool", src, dnnl_pooling_avg_exclude_padding, src->ne[2],
                  src->ne[3], 1, 1, 0, 0, 2, out);
}
