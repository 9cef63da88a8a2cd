/* The ViT inference path: no tape, oneDNN primitives only.
 *
 * - Weights are reordered once (create/refresh) into the layout the matmul
 *   kernel picks for format_tag_any weights; a weight whose chosen layout is
 *   its PyTorch layout is used in place, not copied. Batch sizes other than
 *   the one the layout was chosen for reuse that layout explicitly.
 * - Bias, activation (QuickGELU = swish with alpha 1.702, or gelu_erf) and
 *   the residual (sum post-op: the residual stream x is the destination) are
 *   post-ops of the matmuls; the positional embedding is a binary post-op of
 *   the patch matmul, which writes straight into token rows 1..T-1.
 * - Attention reads Q, K, V through strided views of the qkv buffer and
 *   writes each head's output into its columns (gtl__mm, as op_attention).
 * - Buffers live in one workspace per batch capacity; primitives are cached
 *   in the context. A call with a batch size seen before allocates nothing.
 * - bf16: linear-layer weights in bf16, activations reordered f32 -> bf16
 *   before each linear layer (c_fc writes bf16 directly). Only with native
 *   bf16 (gtl__dnnl_has_bf16), else fp32 and a warning.
 *
 * Shapes: B batch, T tokens, W width, H heads, Dh = W / H, Np = T - 1 patches,
 * Kp = 3*P*P patch length, Hid = R*W, M = B*T rows, D output dim. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "dnnl/dnnl_ctx.h"
#include "nn/vit.h"

#define VIT_KEY_LIN 0x7669746c    /* "vitl" */
#define VIT_KEY_WREO 0x76697477   /* "vitw" */
#define VIT_KEY_LN 0x7669746e     /* "vitn" */
#define VIT_KEY_SM 0x76697473     /* "vits" */
#define VIT_KEY_CVT 0x76697463    /* "vitc" */
#define VIT_LN_EPS 1e-5f

/* Linear-layer kinds; each has one weight layout shared by all blocks. */
enum { LIN_QKV = 0, LIN_OUT, LIN_FC1, LIN_FC2, LIN_PATCH, LIN_PROJ, LIN_COUNT };
static const char *const lin_names[LIN_COUNT] = {"vit qkv", "vit out_proj", "vit c_fc",
                                                 "vit c_proj", "vit patch", "vit proj"};

struct gtl__vit_infer {
    const gtl__vit *vit;
    gtl__ctx *ctx;                  /* borrowed */
    bool bf16;                      /* linear layers (qkv, out, fc1, fc2) in bf16 */
    int64_t w, t, np, kp, hid, h, dh, d;
    dnnl_memory_desc_t wmd[LIN_COUNT]; /* chosen weight layout per kind */
    int64_t k_of[LIN_COUNT], n_of[LIN_COUNT];
    /* Per weight (4 per block, then patch, proj): data in the chosen layout. */
    int64_t n_w;
    void **wdata;
    bool *w_owned;
    float *cls_row;                 /* (W) class_embedding + positional_embedding[0] */
    /* Workspace for up to cap_b images. */
    int64_t cap_b;
    void *ws;
    float *col, *x, *hbuf, *qkv, *att, *fc, *p, *c0, *c1, *c2; /* see ws_layout */
    uint16_t *hb, *fcb;
    bool profile;
    double prof[GTL__VIT_PROF_COUNT];
};

static const char *prof_names[GTL__VIT_PROF_COUNT] = {
    "patch embed", "layernorm", "qkv linear", "Q K^T", "softmax", "P V",
    "out_proj+res", "c_fc+act", "c_proj+res", "bf16 reorder", "ln_post+proj"};

const char *gtl__vit_prof_name(int kind)
{
    return (kind >= 0 && kind < GTL__VIT_PROF_COUNT) ? prof_names[kind] : "?";
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- linear layers ---------------------------------------------------------- */

/* One matmul: src (m, k) @ weights (k, n) (+ bias) (-> act) (+ dst) into dst
 * (m, n) whose rows are dst_rs apart. */
typedef struct lin_spec {
    int kind;
    int64_t m;
    int64_t dst_rs;
    bool bias, sum;
    gtl__act act;
    bool bf16_in, bf16_out;
} lin_spec;

static gtl_status lin_pd(struct gtl__vit_infer *inf, const lin_spec *ls, bool any_weights,
                         dnnl_primitive_desc_t *out_pd)
{
    *out_pd = NULL;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t k = inf->k_of[ls->kind], n = inf->n_of[ls->kind];
    dnnl_data_type_t in_dt = ls->bf16_in ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t out_dt = ls->bf16_out ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t src_md, w_md, b_md, d_md;
    int64_t sd[2] = {ls->m, k}, bd[2] = {1, n}, dd[2] = {ls->m, n};
    int64_t ds[2] = {ls->dst_rs, 1};
    st = gtl__md_plain(&src_md, 2, sd, in_dt);
    if (st == GTL_STATUS_OK)
        st = gtl__md_plain(&b_md, 2, bd, dnnl_f32);
    if (st == GTL_STATUS_OK)
        st = gtl__md_strided(&d_md, 2, dd, ds, out_dt);
    if (st == GTL_STATUS_OK && any_weights) {
        dnnl_dims_t wd = {k, n};
        if (dnnl_memory_desc_init_by_tag(&w_md, 2, wd, in_dt, dnnl_format_tag_any) !=
            dnnl_success)
            st = gtl__error(GTL_STATUS_BACKEND, "vit: weight descriptor");
    }
    if (st != GTL_STATUS_OK)
        return st;
    if (!any_weights)
        w_md = inf->wmd[ls->kind];

    dnnl_matmul_desc_t mm;
    dnnl_status_t s = dnnl_matmul_desc_init(&mm, &src_md, &w_md, ls->bias ? &b_md : NULL, &d_md);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "vit: matmul descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_post_ops_t po = NULL;
    s = dnnl_post_ops_create(&po);
    if (s == dnnl_success && ls->act == GTL__ACT_QUICK_GELU)
        s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.702f, 0.0f);
    else if (s == dnnl_success && ls->act == GTL__ACT_GELU)
        s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
    if (s == dnnl_success && ls->sum)
        s = dnnl_post_ops_append_sum(po, 1.0f);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_post_ops(attr, po);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(out_pd, &mm, attr, eng, NULL);
    if (s != dnnl_success) {
        *out_pd = NULL;
        st = gtl__dnnl_error(s, "vit: matmul primitive descriptor");
    }
    if (po != NULL)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static gtl_status lin_prim(struct gtl__vit_infer *inf, const lin_spec *ls, gtl__prim **out)
{
    int64_t key[8] = {VIT_KEY_LIN, ls->kind, inf->k_of[ls->kind], inf->n_of[ls->kind], ls->m,
                      ls->dst_rs,
                      (ls->bias ? 1 : 0) | (ls->sum ? 2 : 0) | (ls->bf16_in ? 8 : 0) |
                          (ls->bf16_out ? 16 : 0),
                      (int64_t)ls->act};
    *out = gtl__prim_lookup(inf->ctx, key, 8);
    if (*out != NULL)
        return GTL_STATUS_OK;
    dnnl_primitive_desc_t pd;
    gtl_status st = lin_pd(inf, ls, false, &pd);
    if (st != GTL_STATUS_OK)
        return st;
    int args[4];
    int32_t n = 0;
    args[n++] = DNNL_ARG_SRC;
    args[n++] = DNNL_ARG_WEIGHTS;
    if (ls->bias)
        args[n++] = DNNL_ARG_BIAS;
    args[n++] = DNNL_ARG_DST;
    return gtl__prim_create(inf->ctx, lin_names[ls->kind], GTL__PRIM_HOT, key, 8, pd, args, n, out);
}

/* The spec of each linear kind for B images. */
static lin_spec spec_of(const struct gtl__vit_infer *inf, int kind, int64_t nb)
{
    lin_spec ls;
    memset(&ls, 0, sizeof ls);
    ls.kind = kind;
    ls.m = nb * inf->t;
    ls.bias = true;
    bool lin_bf16 = inf->bf16;
    switch (kind) {
    case LIN_QKV:
        ls.dst_rs = 3 * inf->w;
        ls.bf16_in = lin_bf16;
        break;
    case LIN_OUT:
        ls.dst_rs = inf->w;
        ls.sum = true;
        ls.bf16_in = lin_bf16;
        break;
    case LIN_FC1:
        ls.dst_rs = inf->hid;
        ls.act = inf->vit->cfg.act;
        ls.bf16_in = lin_bf16;
        ls.bf16_out = lin_bf16;
        break;
    case LIN_FC2:
        ls.dst_rs = inf->w;
        ls.sum = true;
        ls.bf16_in = lin_bf16;
        break;
    case LIN_PATCH:
        ls.m = nb * inf->np;
        ls.dst_rs = inf->w;
        ls.bias = false;
        break;
    default: /* LIN_PROJ */
        ls.m = nb;
        ls.dst_rs = inf->d;
        ls.bias = false;
        break;
    }
    return ls;
}

static gtl_status torch_md(const struct gtl__vit_infer *inf, int kind, dnnl_memory_desc_t *md);

/* True for a blocked descriptor without inner blocks (any stride order). */
static bool md_is_plain(const dnnl_memory_desc_t *md)
{
    return md->format_kind == dnnl_blocked && md->format_desc.blocking.inner_nblks == 0;
}

/* Asks oneDNN which weight layout it wants for each kind (format_tag_any at
 * B = 1), and remembers it. */
static gtl_status choose_layouts(struct gtl__vit_infer *inf)
{
    for (int kind = 0; kind < LIN_COUNT; kind++) {
        lin_spec ls = spec_of(inf, kind, 1);
        dnnl_primitive_desc_t pd;
        gtl_status st = lin_pd(inf, &ls, true, &pd);
        if (st != GTL_STATUS_OK)
            return st;
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if (md == NULL) {
            dnnl_primitive_desc_destroy(pd);
            return gtl__error(GTL_STATUS_BACKEND, "vit: no weight layout for %s",
                              lin_names[kind]);
        }
        inf->wmd[kind] = *md;
        dnnl_primitive_desc_destroy(pd);
        /* A plain (unblocked) choice means the kernel is gemm-based and has no
         * real preference; it then picks (in, out) row-major, which measured
         * 2x slower than the stored (out, in) at M = 197 on AVX2 (1 thread:
         * 15 vs 30 GFLOP/s; equal at M = 1576). Keep the stored layout then:
         * it is as fast or faster and needs no copy. */
        if (md_is_plain(&inf->wmd[kind])) {
            st = torch_md(inf, kind, &inf->wmd[kind]);
            if (st != GTL_STATUS_OK)
                return st;
            if (ls.bf16_in) /* bf16 weights are always a copy: same strides, bf16 */
                inf->wmd[kind].data_type = dnnl_bf16;
        }
    }
    return GTL_STATUS_OK;
}

/* The PyTorch layout of a kind's weight as a logical (K, N) descriptor:
 * Linear/conv weights are stored (N, K) (strides 1, K); proj is (K, N). */
static gtl_status torch_md(const struct gtl__vit_infer *inf, int kind, dnnl_memory_desc_t *md)
{
    int64_t k = inf->k_of[kind], n = inf->n_of[kind];
    int64_t d[2] = {k, n};
    int64_t s[2] = {1, k};
    if (kind == LIN_PROJ) {
        s[0] = n;
        s[1] = 1;
    }
    return gtl__md_strided(md, 2, d, s, dnnl_f32);
}

/* Reorders one weight from its parameter into the chosen layout (or points
 * at the parameter when the layouts agree). */
static gtl_status load_weight(struct gtl__vit_infer *inf, int kind, int64_t slot,
                              const float *src)
{
    dnnl_memory_desc_t smd;
    gtl_status st = torch_md(inf, kind, &smd);
    if (st != GTL_STATUS_OK)
        return st;
    const dnnl_memory_desc_t *dmd = &inf->wmd[kind];
    if (dnnl_memory_desc_equal(&smd, dmd)) {
        if (inf->w_owned[slot])
            gtl__free_aligned(inf->wdata[slot]);
        inf->w_owned[slot] = false;
        inf->wdata[slot] = (void *)src;
        return GTL_STATUS_OK;
    }
    if (!inf->w_owned[slot]) {
        inf->wdata[slot] = gtl__malloc_aligned(dnnl_memory_desc_get_size(dmd));
        if (inf->wdata[slot] == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "vit: weight buffer: out of memory");
        inf->w_owned[slot] = true;
    }
    int64_t key[5] = {VIT_KEY_WREO, kind, inf->k_of[kind], inf->n_of[kind], inf->bf16};
    gtl__prim *p = gtl__prim_lookup(inf->ctx, key, 5);
    if (p == NULL) {
        dnnl_engine_t eng;
        st = gtl__dnnl_engine(&eng);
        if (st != GTL_STATUS_OK)
            return st;
        dnnl_primitive_attr_t attr;
        st = gtl__dnnl_attr_create(&attr);
        if (st != GTL_STATUS_OK)
            return st;
        dnnl_primitive_desc_t pd;
        dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, &smd, eng, dmd, eng, attr);
        dnnl_primitive_attr_destroy(attr);
        if (s != dnnl_success)
            return gtl__dnnl_error(s, "vit: weight reorder");
        int args[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
        /* Runs once per load: not hot. */
        st = gtl__prim_create(inf->ctx, "vit weight reorder", 0, key, 5, pd, args, 2, &p);
        if (st != GTL_STATUS_OK)
            return st;
    }
    void *ptrs[2] = {(void *)src, inf->wdata[slot]};
    return gtl__prim_exec(inf->ctx, p, ptrs);
}

gtl_status gtl__vit_infer_refresh(gtl__vit_infer *inf)
{
    if (inf == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit infer: NULL engine");
    const gtl__vit *vit = inf->vit;
    gtl__paramset *ps = vit->ps;
    gtl_status st = GTL_STATUS_OK;
    for (int64_t l = 0; st == GTL_STATUS_OK && l < vit->cfg.layers; l++) {
        const gtl__vit_block *b = &vit->blocks[l];
        st = load_weight(inf, LIN_QKV, 4 * l + 0, gtl__paramset_get(ps, b->in_w)->data);
        if (st == GTL_STATUS_OK)
            st = load_weight(inf, LIN_OUT, 4 * l + 1, gtl__paramset_get(ps, b->out_w)->data);
        if (st == GTL_STATUS_OK)
            st = load_weight(inf, LIN_FC1, 4 * l + 2, gtl__paramset_get(ps, b->fc_w)->data);
        if (st == GTL_STATUS_OK)
            st = load_weight(inf, LIN_FC2, 4 * l + 3, gtl__paramset_get(ps, b->cproj_w)->data);
    }
    int64_t base = 4 * vit->cfg.layers;
    if (st == GTL_STATUS_OK)
        st = load_weight(inf, LIN_PATCH, base, gtl__paramset_get(ps, vit->conv1)->data);
    if (st == GTL_STATUS_OK)
        st = load_weight(inf, LIN_PROJ, base + 1, gtl__paramset_get(ps, vit->proj)->data);
    if (st != GTL_STATUS_OK)
        return st;
    const float *ce = gtl__paramset_get(ps, vit->cls)->data;
    const float *pe = gtl__paramset_get(ps, vit->pos)->data;
    for (int64_t i = 0; i < inf->w; i++)
        inf->cls_row[i] = ce[i] + pe[i];
    return GTL_STATUS_OK;
}

static gtl_status infer_create(const gtl__vit *vit, gtl__ctx *ctx, bool bf16,
                               gtl__vit_infer **out_inf)
{
    *out_inf = NULL;
    if (vit == NULL || vit->ps == NULL || ctx == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit infer: NULL argument");
    if (!vit->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "vit infer: parameters not finalized");
    gtl__vit_infer *inf = gtl__calloc(1, sizeof *inf);
    if (inf == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "vit infer: out of memory");
    const gtl__vit_config *c = &vit->cfg;
    inf->vit = vit;
    inf->ctx = ctx;
    inf->bf16 = bf16;
    inf->w = c->width;
    inf->t = gtl__vit_tokens(c);
    inf->np = inf->t - 1;
    inf->kp = 3 * c->patch * c->patch;
    inf->hid = c->mlp_ratio * c->width;
    inf->h = c->heads;
    inf->dh = c->width / c->heads;
    inf->d = c->out_dim;
    int64_t kn[LIN_COUNT][2] = {{inf->w, 3 * inf->w}, {inf->w, inf->w}, {inf->w, inf->hid},
                                {inf->hid, inf->w}, {inf->kp, inf->w}, {inf->w, inf->d}};
    for (int i = 0; i < LIN_COUNT; i++) {
        inf->k_of[i] = kn[i][0];
        inf->n_of[i] = kn[i][1];
    }
    gtl_status st;
    inf->n_w = 4 * c->layers + 2;
    inf->wdata = gtl__calloc((size_t)inf->n_w, sizeof *inf->wdata);
    inf->w_owned = gtl__calloc((size_t)inf->n_w, sizeof *inf->w_owned);
    inf->cls_row = gtl__malloc_aligned((size_t)inf->w * sizeof(float));
    if (inf->wdata == NULL || inf->w_owned == NULL || inf->cls_row == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "vit infer: out of memory");
        goto out_destroy;
    }
    st = choose_layouts(inf);
    if (st == GTL_STATUS_OK)
        st = gtl__vit_infer_refresh(inf);
    if (st != GTL_STATUS_OK)
        goto out_destroy;
    *out_inf = inf;
    return GTL_STATUS_OK;

out_destroy:
    gtl__vit_infer_destroy(inf);
    return st;
}

gtl_status gtl__vit_infer_create(const gtl__vit *vit, gtl__ctx *ctx, bool bf16,
                                 gtl__vit_infer **out_inf)
{
    if (bf16 && !gtl__dnnl_has_bf16()) {
        gtl__log(GTL_LOG_WARN, "vit: bf16 linear layers requested, but this CPU (oneDNN ISA %s) "
                 "has no native bf16 kernels: running them in fp32", gtl__dnnl_isa_name());
        bf16 = false;
    }
    return infer_create(vit, ctx, bf16, out_inf);
}

gtl_status gtl__vit_infer_create_forced_bf16(const gtl__vit *vit, gtl__ctx *ctx,
                                             gtl__vit_infer **out_inf)
{
    return infer_create(vit, ctx, true, out_inf);
}

void gtl__vit_infer_destroy(gtl__vit_infer *inf)
{
    if (inf == NULL)
        return;
    for (int64_t i = 0; inf->wdata != NULL && inf->w_owned != NULL && i < inf->n_w; i++)
        if (inf->w_owned[i])
            gtl__free_aligned(inf->wdata[i]);
    gtl__free(inf->wdata);
    gtl__free(inf->w_owned);
    gtl__free_aligned(inf->cls_row);
    gtl__free_aligned(inf->ws);
    gtl__free(inf);
}

size_t gtl__vit_infer_weight_bytes(const gtl__vit_infer *inf)
{
    size_t n = 0;
    for (int64_t i = 0; i < inf->n_w; i++) {
        int kind = i >= 4 * inf->vit->cfg.layers ? (int)(LIN_PATCH + i - 4 * inf->vit->cfg.layers)
                                                 : (int)(i % 4);
        if (inf->w_owned[i])
            n += dnnl_memory_desc_get_size(&inf->wmd[kind]);
    }
    return n;
}

bool gtl__vit_infer_uses_bf16(const gtl__vit_infer *inf)
{
    return inf != NULL && inf->bf16;
}

void gtl__vit_infer_set_profile(gtl__vit_infer *inf, bool on)
{
    inf->profile = on;
}

const double *gtl__vit_infer_profile(const gtl__vit_infer *inf)
{
    return inf->prof;
}

void gtl__vit_infer_profile_reset(gtl__vit_infer *inf)
{
    memset(inf->prof, 0, sizeof inf->prof);
}

/* ---- workspace ------------------------------------------------------------ */

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* Lays out the workspace for nb images; with base NULL only measures it. */
static size_t ws_layout(struct gtl__vit_infer *inf, int64_t nb, char *base)
{
    int64_t m = nb * inf->t;
    size_t f = sizeof(float), off = 0;
    size_t sizes[12] = {
        (size_t)(nb * inf->np * inf->kp) * f, /* col (B*Np, Kp) */
        (size_t)(m * inf->w) * f,             /* x (M, W): the residual stream */
        (size_t)(m * inf->w) * f,             /* hbuf (M, W) */
        (size_t)(m * 3 * inf->w) * f,         /* qkv (M, 3W) */
        (size_t)(m * inf->w) * f,             /* att (M, W) */
        (size_t)(m * inf->hid) * f,           /* fc (M, Hid) */
        (size_t)(nb * inf->h * inf->t * inf->t) * f, /* p (B, H, T, T) */
        (size_t)(nb * inf->w) * f,            /* c0 (B, W) */
        (size_t)(nb * inf->w) * f,            /* c1 (B, W) */
        (size_t)(nb * inf->d) * f,            /* c2 (B, D) */
        inf->bf16 ? (size_t)(m * inf->w) * 2 : 0,   /* hb (M, W) bf16 */
        inf->bf16 ? (size_t)(m * inf->hid) * 2 : 0, /* fcb (M, Hid) bf16 */
    };
    void **dst[12] = {(void **)&inf->col, (void **)&inf->x, (void **)&inf->hbuf,
                      (void **)&inf->qkv, (void **)&inf->att, (void **)&inf->fc,
                      (void **)&inf->p, (void **)&inf->c0, (void **)&inf->c1,
                      (void **)&inf->c2, (void **)&inf->hb, (void **)&inf->fcb};
    for (int i = 0; i < 12; i++) {
        if (base != NULL)
            *dst[i] = sizes[i] ? base + off : NULL;
        off += round64(sizes[i]);
    }
    return off;
}

static gtl_status ensure_ws(struct gtl__vit_infer *inf, int64_t nb)
{
    if (nb <= inf->cap_b)
        return GTL_STATUS_OK;
    size_t bytes = ws_layout(inf, nb, NULL);
    void *ws = gtl__malloc_aligned(bytes);
    if (ws == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "vit infer: workspace of %zu bytes", bytes);
    gtl__free_aligned(inf->ws);
    inf->ws = ws;
    inf->cap_b = nb;
    ws_layout(inf, nb, ws);
    return GTL_STATUS_OK;
}

/* ---- other primitives ------------------------------------------------------ */

static gtl_status ln_prim(gtl__ctx *ctx, int64_t rows, int64_t c, gtl__prim **out)
{
    int64_t key[3] = {VIT_KEY_LN, rows, c};
    *out = gtl__prim_lookup(ctx, key, 3);
    if (*out != NULL)
        return GTL_STATUS_OK;
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
    dnnl_status_t s = dnnl_layer_normalization_forward_desc_init(
        &desc, dnnl_forward_inference, &md, &smd, VIT_LN_EPS,
        (unsigned)(dnnl_use_scale | dnnl_use_shift));
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "vit: layernorm descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t pd;
    s = dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "vit: layernorm primitive descriptor");
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_DST};
    return gtl__prim_create(ctx, "vit layernorm", GTL__PRIM_HOT, key, 3, pd, args, 4, out);
}

/* softmax_v2 inference over the last dim of (rows, t), run in place. */
static gtl_status sm_prim(gtl__ctx *ctx, int64_t rows, int64_t t, gtl__prim **out)
{
    int64_t key[3] = {VIT_KEY_SM, rows, t};
    *out = gtl__prim_lookup(ctx, key, 3);
    if (*out != NULL)
        return GTL_STATUS_OK;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t dims[2] = {rows, t};
    dnnl_memory_desc_t md;
    st = gtl__md_plain(&md, 2, dims, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_softmax_v2_desc_t desc;
    dnnl_status_t s = dnnl_softmax_v2_forward_desc_init(&desc, dnnl_forward_inference,
                                                        dnnl_softmax_accurate, &md, &md, 1);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "vit: softmax descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t pd;
    s = dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "vit: softmax primitive descriptor");
    int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    return gtl__prim_create(ctx, "vit softmax", GTL__PRIM_HOT, key, 3, pd, args, 2, out);
}

/* Plain f32 (rows, c) -> bf16. */
static gtl_status cvt_prim(gtl__ctx *ctx, int64_t rows, int64_t c, gtl__prim **out)
{
    int64_t key[3] = {VIT_KEY_CVT, rows, c};
    *out = gtl__prim_lookup(ctx, key, 3);
    if (*out != NULL)
        return GTL_STATUS_OK;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t dims[2] = {rows, c};
    dnnl_memory_desc_t from, to;
    st = gtl__md_plain(&from, 2, dims, dnnl_f32);
    if (st == GTL_STATUS_OK)
        st = gtl__md_plain(&to, 2, dims, dnnl_bf16);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, &from, eng, &to, eng, attr);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "vit: bf16 reorder");
    int args[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    return gtl__prim_create(ctx, "vit bf16 reorder", GTL__PRIM_HOT, key, 3, pd, args, 2, out);
}

/* ---- forward ---------------------------------------------------------------- */

/* images (B, 3, S, S) -> col (B*Np, Kp), rows in patch order (gy, gx) and
 * columns in conv1's weight order (c, py, px). */
static void im2col(const struct gtl__vit_infer *inf, const float *img, int64_t nb)
{
    int64_t p = inf->vit->cfg.patch, s = inf->vit->cfg.image_size, g = s / p;
    float *col = inf->col;
#pragma omp parallel for collapse(2) schedule(static) if (nb * g > 4)
    for (int64_t b = 0; b < nb; b++)
        for (int64_t gy = 0; gy < g; gy++)
            for (int64_t gx = 0; gx < g; gx++) {
                float *row = col + ((b * g + gy) * g + gx) * inf->kp;
                for (int64_t c = 0; c < 3; c++)
                    for (int64_t py = 0; py < p; py++) {
                        const float *src = img + ((b * 3 + c) * s + gy * p + py) * s + gx * p;
                        memcpy(row + (c * p + py) * p, src, (size_t)p * sizeof(float));
                    }
            }
}

/* Runs a linear kind; ptrs beyond src/weights/bias/dst as the spec needs. */
static gtl_status run_lin(struct gtl__vit_infer *inf, int kind, int64_t nb, const void *src,
                          int64_t slot, const float *bias, void *dst)
{
    lin_spec ls = spec_of(inf, kind, nb);
    gtl__prim *p;
    gtl_status st = lin_prim(inf, &ls, &p);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[4];
    int n = 0;
    ptrs[n++] = (void *)src;
    ptrs[n++] = inf->wdata[slot];
    if (ls.bias)
        ptrs[n++] = (void *)bias;
    ptrs[n++] = dst;
    return gtl__prim_exec(inf->ctx, p, ptrs);
}

static gtl_status run_ln(struct gtl__vit_infer *inf, int64_t rows, const float *src,
                         const gtl__tensor *gamma, const gtl__tensor *beta, float *dst)
{
    gtl__prim *p;
    gtl_status st = ln_prim(inf->ctx, rows, inf->w, &p);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[4] = {(void *)src, gamma->data, beta->data, dst};
    return gtl__prim_exec(inf->ctx, p, ptrs);
}

static gtl_status run_cvt(struct gtl__vit_infer *inf, int64_t rows, const float *src,
                          uint16_t *dst)
{
    gtl__prim *p;
    gtl_status st = cvt_prim(inf->ctx, rows, inf->w, &p);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[2] = {(void *)src, dst};
    return gtl__prim_exec(inf->ctx, p, ptrs);
}

/* Head h of Q, K or V as a (B, H, T, Dh) view of qkv (or of att with
 * row_stride W), optionally with the last two dims swapped. */
static void head_view(int64_t *dims, int64_t *strides, const struct gtl__vit_infer *inf,
                      int64_t nb, int64_t row_stride, bool transposed)
{
    dims[0] = nb;
    dims[1] = inf->h;
    strides[0] = inf->t * row_stride;
    strides[1] = inf->dh;
    dims[2] = transposed ? inf->dh : inf->t;
    dims[3] = transposed ? inf->t : inf->dh;
    strides[2] = transposed ? 1 : row_stride;
    strides[3] = transposed ? row_stride : 1;
}

static void score_view(int64_t *dims, int64_t *strides, const struct gtl__vit_infer *inf,
                       int64_t nb)
{
    int64_t t = inf->t;
    dims[0] = nb;
    dims[1] = inf->h;
    dims[2] = t;
    dims[3] = t;
    strides[0] = inf->h * t * t;
    strides[1] = t * t;
    strides[2] = t;
    strides[3] = 1;
}

/* att (B, T, W) = concat_h softmax(Q_h K_h^T / sqrt(Dh)) V_h from qkv. */
static gtl_status attention(struct gtl__vit_infer *inf, int64_t nb)
{
    int64_t c3 = 3 * inf->w;
    gtl__mm_desc d;
    double t0 = inf->profile ? now_ms() : 0.0;
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = (float)(1.0 / sqrt((double)inf->dh));
    head_view(d.a_dims, d.a_strides, inf, nb, c3, false);
    head_view(d.b_dims, d.b_strides, inf, nb, c3, true);
    score_view(d.c_dims, d.c_strides, inf, nb);
    gtl_status st = gtl__mm(inf->ctx, &d, inf->qkv, inf->qkv + inf->w, NULL, inf->p);
    if (st != GTL_STATUS_OK)
        return st;
    double t1 = inf->profile ? now_ms() : 0.0;
    gtl__prim *sm;
    st = sm_prim(inf->ctx, nb * inf->h * inf->t, inf->t, &sm);
    if (st != GTL_STATUS_OK)
        return st;
    void *ptrs[2] = {inf->p, inf->p};
    st = gtl__prim_exec(inf->ctx, sm, ptrs);
    if (st != GTL_STATUS_OK)
        return st;
    double t2 = inf->profile ? now_ms() : 0.0;
    memset(&d, 0, sizeof d);
    d.nd = 4;
    d.alpha = 1.0f;
    score_view(d.a_dims, d.a_strides, inf, nb);
    head_view(d.b_dims, d.b_strides, inf, nb, c3, false);
    head_view(d.c_dims, d.c_strides, inf, nb, inf->w, false);
    st = gtl__mm(inf->ctx, &d, inf->p, inf->qkv + 2 * inf->w, NULL, inf->att);
    if (st != GTL_STATUS_OK)
        return st;
    if (inf->profile) {
        double t3 = now_ms();
        inf->prof[GTL__VIT_PROF_QK] += t1 - t0;
        inf->prof[GTL__VIT_PROF_SOFTMAX] += t2 - t1;
        inf->prof[GTL__VIT_PROF_PV] += t3 - t2;
    }
    return GTL_STATUS_OK;
}

/* Adds the time since *t to prof[kind] and restarts *t. */
static void lap(struct gtl__vit_infer *inf, int kind, double *t)
{
    if (!inf->profile)
        return;
    double n = now_ms();
    inf->prof[kind] += n - *t;
    *t = n;
}

static gtl_status block(struct gtl__vit_infer *inf, int64_t l, int64_t nb)
{
    const gtl__vit_block *b = &inf->vit->blocks[l];
    gtl__paramset *ps = inf->vit->ps;
    int64_t m = nb * inf->t;
    bool bf = inf->bf16;
    const void *lin_in = bf ? (const void *)inf->hb : (const void *)inf->hbuf;
    double t = inf->profile ? now_ms() : 0.0;
    gtl_status st;

    st = run_ln(inf, m, inf->x, gtl__paramset_get(ps, b->ln1_w), gtl__paramset_get(ps, b->ln1_b),
                inf->hbuf);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_LN, &t);
    if (bf) {
        st = run_cvt(inf, m, inf->hbuf, inf->hb);
        if (st != GTL_STATUS_OK)
            return st;
        lap(inf, GTL__VIT_PROF_CVT, &t);
    }
    st = run_lin(inf, LIN_QKV, nb, lin_in, 4 * l, gtl__paramset_get(ps, b->in_b)->data,
                 inf->qkv);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_QKV, &t);
    st = attention(inf, nb);
    if (st != GTL_STATUS_OK)
        return st;
    t = inf->profile ? now_ms() : 0.0;
    if (bf) {
        st = run_cvt(inf, m, inf->att, inf->hb);
        if (st != GTL_STATUS_OK)
            return st;
        lap(inf, GTL__VIT_PROF_CVT, &t);
    }
    /* x += att @ Wo^T + bo */
    st = run_lin(inf, LIN_OUT, nb, bf ? (const void *)inf->hb : (const void *)inf->att,
                 4 * l + 1, gtl__paramset_get(ps, b->out_b)->data, inf->x);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_OUT, &t);
    st = run_ln(inf, m, inf->x, gtl__paramset_get(ps, b->ln2_w), gtl__paramset_get(ps, b->ln2_b),
                inf->hbuf);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_LN, &t);
    if (bf) {
        st = run_cvt(inf, m, inf->hbuf, inf->hb);
        if (st != GTL_STATUS_OK)
            return st;
        lap(inf, GTL__VIT_PROF_CVT, &t);
    }
    /* fc = act(h @ W1^T + b1), bf16 straight from the matmul on the bf16 path */
    st = run_lin(inf, LIN_FC1, nb, lin_in, 4 * l + 2, gtl__paramset_get(ps, b->fc_b)->data,
                 bf ? (void *)inf->fcb : (void *)inf->fc);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_FC1, &t);
    /* x += fc @ W2^T + b2 */
    st = run_lin(inf, LIN_FC2, nb, bf ? (const void *)inf->fcb : (const void *)inf->fc,
                 4 * l + 3, gtl__paramset_get(ps, b->cproj_b)->data, inf->x);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_FC2, &t);
    return GTL_STATUS_OK;
}

gtl_status gtl__vit_infer_run(gtl__vit_infer *inf, const float *images, int64_t batch, int which,
                              float *out)
{
    if (inf == NULL || images == NULL || out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit infer: NULL argument");
    if (batch < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit infer: batch %lld < 1", (long long)batch);
    int64_t fdim = gtl__vit_feature_dim(&inf->vit->cfg, which);
    if (fdim == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit infer: unknown feature selection %d",
                          which);
    gtl_status st = ensure_ws(inf, batch);
    if (st != GTL_STATUS_OK)
        return st;
    const gtl__vit *vit = inf->vit;
    gtl__paramset *ps = vit->ps;
    int64_t nb = batch, w = inf->w, t = inf->t, m = nb * t;
    double tm = inf->profile ? now_ms() : 0.0;

    /* Embedding into hbuf: row 0 of each image is class_embedding + positional
     * row 0, rows 1..T-1 are patches @ conv1 (computed into att) + positional
     * rows 1..; then ln_pre -> x. (A strided destination with the positional
     * rows as a binary post-op makes oneDNN 2.6 pick ref:any.) */
    im2col(inf, images, nb);
    const float *pos = gtl__paramset_get(ps, vit->pos)->data;
    st = run_lin(inf, LIN_PATCH, nb, inf->col, 4 * vit->cfg.layers, NULL, inf->att);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t b = 0; b < nb; b++) {
        float *xb = inf->hbuf + b * t * w;
        const float *pb = inf->att + b * inf->np * w;
        memcpy(xb, inf->cls_row, (size_t)w * sizeof(float));
        for (int64_t i = w; i < t * w; i++)
            xb[i] = pb[i - w] + pos[i];
    }
    lap(inf, GTL__VIT_PROF_PATCH, &tm);
    st = run_ln(inf, m, inf->hbuf, gtl__paramset_get(ps, vit->ln_pre_w),
                gtl__paramset_get(ps, vit->ln_pre_b), inf->x);
    if (st != GTL_STATUS_OK)
        return st;
    lap(inf, GTL__VIT_PROF_LN, &tm);

    for (int64_t l = 0; l < vit->cfg.layers; l++) {
        st = block(inf, l, nb);
        if (st != GTL_STATUS_OK)
            return st;
    }

    /* Head: CLS rows -> ln_post -> proj. */
    tm = inf->profile ? now_ms() : 0.0;
    for (int64_t b = 0; b < nb; b++)
        memcpy(inf->c0 + b * w, inf->x + b * t * w, (size_t)w * sizeof(float));
    st = run_ln(inf, nb, inf->c0, gtl__paramset_get(ps, vit->ln_post_w),
                gtl__paramset_get(ps, vit->ln_post_b), inf->c1);
    if (st != GTL_STATUS_OK)
        return st;
    if (which & GTL__VIT_FEAT_PROJ) {
        st = run_lin(inf, LIN_PROJ, nb, inf->c1, 4 * vit->cfg.layers + 1, NULL, inf->c2);
        if (st != GTL_STATUS_OK)
            return st;
    }
    for (int64_t b = 0; b < nb; b++) {
        float *o = out + b * fdim;
        if (which & GTL__VIT_FEAT_CLS) {
            memcpy(o, inf->c1 + b * w, (size_t)w * sizeof(float));
            o += w;
        }
        if (which & GTL__VIT_FEAT_PROJ)
            memcpy(o, inf->c2 + b * inf->d, (size_t)inf->d * sizeof(float));
    }
    lap(inf, GTL__VIT_PROF_HEAD, &tm);
    return GTL_STATUS_OK;
}
