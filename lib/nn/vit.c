/* The CLIP-layout ViT: configuration, parameters, initialisation, freezing and
 * the differentiable forward on the tape. The inference path is in
 * vit_infer.c. Gradients come from the ops' own backward functions
 * (docs/autograd.md); nothing here has a backward of its own.
 *
 * Shapes: see vit.h (B, S, P, G, T, W, H, R, D). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/vit.h"

#define VIT_LN_EPS 1e-5f

typedef struct vit_preset {
    const char *name;
    gtl__vit_config cfg;
} vit_preset;

static const vit_preset presets[] = {
    {"ViT-B/16", {224, 16, 768, 12, 12, 4, 512, GTL__ACT_QUICK_GELU}},
    {"ViT-B/32", {224, 32, 768, 12, 12, 4, 512, GTL__ACT_QUICK_GELU}},
    {"small", {32, 8, 64, 3, 4, 4, 32, GTL__ACT_QUICK_GELU}},
    {"tiny", {8, 4, 8, 2, 2, 4, 6, GTL__ACT_QUICK_GELU}},
};

gtl_status gtl__vit_preset(const char *name, gtl__vit_config *out_cfg)
{
    memset(out_cfg, 0, sizeof *out_cfg);
    if (name == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: NULL preset name");
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out_cfg = presets[i].cfg;
            return GTL_STATUS_OK;
        }
    }
    return gtl__error(GTL_STATUS_INVALID_ARG, "vit: unknown preset \"%s\"", name);
}

gtl_status gtl__vit_config_check(const gtl__vit_config *c)
{
    if (c == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: NULL config");
    if (c->image_size <= 0 || c->patch <= 0 || c->image_size % c->patch != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "vit: image size %lld is not a positive multiple of patch %lld",
                          (long long)c->image_size, (long long)c->patch);
    if (c->width <= 0 || c->layers < 0 || c->heads <= 0 || c->width % c->heads != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "vit: width %lld, layers %lld, heads %lld (heads must divide width)",
                          (long long)c->width, (long long)c->layers, (long long)c->heads);
    if (c->mlp_ratio <= 0 || c->out_dim <= 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: MLP ratio %lld and output dim %lld "
                          "must be positive", (long long)c->mlp_ratio, (long long)c->out_dim);
    if (c->act != GTL__ACT_QUICK_GELU && c->act != GTL__ACT_GELU)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: activation %d is neither QuickGELU "
                          "nor GELU", (int)c->act);
    if (c->image_size > 65536 || c->width > 65536 || c->layers > 4096)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: config too large");
    return GTL_STATUS_OK;
}

int64_t gtl__vit_tokens(const gtl__vit_config *cfg)
{
    int64_t g = cfg->image_size / cfg->patch;
    return g * g + 1;
}

int64_t gtl__vit_feature_dim(const gtl__vit_config *cfg, int which)
{
    switch (which) {
    case GTL__VIT_FEAT_CLS: return cfg->width;
    case GTL__VIT_FEAT_PROJ: return cfg->out_dim;
    case GTL__VIT_FEAT_BOTH: return cfg->width + cfg->out_dim;
    default: return 0;
    }
}

/* ---- parameters ------------------------------------------------------------ */

static gtl_status add_param(gtl__paramset *ps, const char *prefix, const char *name, int32_t nd,
                            int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t *out_index)
{
    char full[256];
    int64_t ne[4] = {d0, d1, d2, d3};
    int n = snprintf(full, sizeof full, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: parameter name too long (%s%s)", prefix,
                          name);
    return gtl__paramset_add(ps, full, nd, ne, out_index);
}

static gtl_status add_block(gtl__paramset *ps, const char *prefix, int64_t i, int64_t w,
                            int64_t hid, gtl__vit_block *b)
{
    char p[224];
    int n = snprintf(p, sizeof p, "%stransformer.resblocks.%lld.", prefix, (long long)i);
    if (n < 0 || (size_t)n >= sizeof p)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: parameter prefix too long");
    gtl_status st;
    st = add_param(ps, p, "ln_1.weight", 1, w, 0, 0, 0, &b->ln1_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "ln_1.bias", 1, w, 0, 0, 0, &b->ln1_b);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "attn.in_proj_weight", 2, 3 * w, w, 0, 0, &b->in_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "attn.in_proj_bias", 1, 3 * w, 0, 0, 0, &b->in_b);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "attn.out_proj.weight", 2, w, w, 0, 0, &b->out_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "attn.out_proj.bias", 1, w, 0, 0, 0, &b->out_b);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "ln_2.weight", 1, w, 0, 0, 0, &b->ln2_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "ln_2.bias", 1, w, 0, 0, 0, &b->ln2_b);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "mlp.c_fc.weight", 2, hid, w, 0, 0, &b->fc_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "mlp.c_fc.bias", 1, hid, 0, 0, 0, &b->fc_b);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "mlp.c_proj.weight", 2, w, hid, 0, 0, &b->cproj_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, p, "mlp.c_proj.bias", 1, w, 0, 0, 0, &b->cproj_b);
    return st;
}

gtl_status gtl__vit_init(gtl__vit *vit, const gtl__vit_config *cfg, gtl__paramset *ps,
                         const char *prefix)
{
    memset(vit, 0, sizeof *vit);
    if (ps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: NULL parameter set");
    if (ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "vit: parameter set already finalized");
    gtl_status st = gtl__vit_config_check(cfg);
    if (st != GTL_STATUS_OK)
        return st;
    const char *pf = prefix != NULL ? prefix : "";
    int64_t w = cfg->width, p = cfg->patch, t = gtl__vit_tokens(cfg);
    int64_t hid = cfg->mlp_ratio * w;

    vit->blocks = gtl__calloc((size_t)(cfg->layers ? cfg->layers : 1), sizeof *vit->blocks);
    if (vit->blocks == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "vit: out of memory");
    st = add_param(ps, pf, "conv1.weight", 4, w, 3, p, p, &vit->conv1);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "class_embedding", 1, w, 0, 0, 0, &vit->cls);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "positional_embedding", 2, t, w, 0, 0, &vit->pos);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "ln_pre.weight", 1, w, 0, 0, 0, &vit->ln_pre_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "ln_pre.bias", 1, w, 0, 0, 0, &vit->ln_pre_b);
    for (int64_t i = 0; st == GTL_STATUS_OK && i < cfg->layers; i++)
        st = add_block(ps, pf, i, w, hid, &vit->blocks[i]);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "ln_post.weight", 1, w, 0, 0, 0, &vit->ln_post_w);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "ln_post.bias", 1, w, 0, 0, 0, &vit->ln_post_b);
    if (st == GTL_STATUS_OK)
        st = add_param(ps, pf, "proj", 2, w, cfg->out_dim, 0, 0, &vit->proj);
    if (st != GTL_STATUS_OK) {
        gtl__free(vit->blocks);
        memset(vit, 0, sizeof *vit);
        return st;
    }
    vit->cfg = *cfg;
    vit->ps = ps;
    vit->prefix_len = strlen(pf);
    return GTL_STATUS_OK;
}

void gtl__vit_fini(gtl__vit *vit)
{
    if (vit == NULL)
        return;
    gtl__free(vit->blocks);
    memset(vit, 0, sizeof *vit);
}

static gtl__tensor *P(const gtl__vit *vit, int64_t i)
{
    return gtl__paramset_get(vit->ps, i);
}

static void fill_const(gtl__tensor *t, float v)
{
    for (int64_t i = 0; i < t->n; i++)
        t->data[i] = v;
}

int64_t gtl__vit_num_params(const gtl__vit *vit)
{
    return 8 + 12 * vit->cfg.layers;
}

void gtl__vit_param_indices(const gtl__vit *vit, int64_t *idx)
{
    int64_t n = 0;
    idx[n++] = vit->conv1;
    idx[n++] = vit->cls;
    idx[n++] = vit->pos;
    idx[n++] = vit->ln_pre_w;
    idx[n++] = vit->ln_pre_b;
    for (int64_t l = 0; l < vit->cfg.layers; l++) {
        const gtl__vit_block *b = &vit->blocks[l];
        int64_t bi[12] = {b->ln1_w, b->ln1_b, b->in_w, b->in_b, b->out_w, b->out_b,
                          b->ln2_w, b->ln2_b, b->fc_w, b->fc_b, b->cproj_w, b->cproj_b};
        for (int i = 0; i < 12; i++)
            idx[n++] = bi[i];
    }
    idx[n++] = vit->ln_post_w;
    idx[n++] = vit->ln_post_b;
    idx[n++] = vit->proj;
}

gtl_status gtl__vit_load_safetensors(gtl__vit *vit, gtl__safetensors *f,
                                     const char *file_prefix)
{
    if (vit == NULL || vit->ps == NULL || f == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit load: NULL argument");
    if (!vit->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "vit load: parameters not finalized");
    const char *fp = file_prefix != NULL ? file_prefix : "";
    int64_t n = gtl__vit_num_params(vit);
    int64_t *idx = gtl__malloc((size_t)n * sizeof *idx);
    if (idx == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "vit load: out of memory");
    gtl__vit_param_indices(vit, idx);
    gtl_status st = GTL_STATUS_OK;
    char name[GTL__SAFETENSORS_MAX_NAME + 1];
    for (int64_t i = 0; st == GTL_STATUS_OK && i < n; i++) {
        gtl__tensor *t = gtl__paramset_get(vit->ps, idx[i]);
        const char *clip_name = vit->ps->names[idx[i]] + vit->prefix_len;
        int len = snprintf(name, sizeof name, "%s%s", fp, clip_name);
        if (len < 0 || (size_t)len >= sizeof name) {
            st = gtl__error(GTL_STATUS_INVALID_ARG, "vit load: name too long (%s%s)", fp,
                            clip_name);
            break;
        }
        const gtl__safetensors_info *info = gtl__safetensors_find(f, name);
        bool same = info != NULL && info->nd == t->nd;
        for (int32_t d = 0; same && d < t->nd; d++)
            same = info->ne[d] == t->ne[d];
        if (!same) {
            char s1[64];
            st = gtl__error(GTL_STATUS_FORMAT, "vit load: %s %s (want shape %s)", name,
                            info == NULL ? "is missing" : "has another shape",
                            gtl__shape_str(t, s1, sizeof s1));
            break;
        }
        st = gtl__safetensors_read_f32(f, name, t->data, t->n);
    }
    gtl__free(idx);
    return st;
}

/* Uniform in +-bound. */
static void fill_uniform(gtl__rng *rng, gtl__tensor *t, float bound)
{
    gtl__rng_fill_uniform(rng, t->data, t->n, -bound, bound);
}

gtl_status gtl__vit_init_weights(gtl__vit *vit, gtl__rng *rng)
{
    if (vit == NULL || vit->ps == NULL || rng == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: init_weights: NULL argument");
    if (!vit->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "vit: init_weights before the parameter set "
                          "is finalized");
    const gtl__vit_config *c = &vit->cfg;
    int64_t w = c->width, hid = c->mlp_ratio * w;
    float scale = (float)(1.0 / sqrt((double)w));
    /* Kaiming-uniform with a = sqrt(5), PyTorch's Linear/Conv default: 1/sqrt(fan_in). */
    float conv_b = (float)(1.0 / sqrt((double)(3 * c->patch * c->patch)));
    fill_uniform(rng, P(vit, vit->conv1), conv_b);
    gtl__rng_fill_normal(rng, P(vit, vit->cls)->data, w, 0.0f, scale);
    gtl__rng_fill_normal(rng, P(vit, vit->pos)->data, P(vit, vit->pos)->n, 0.0f, scale);
    fill_const(P(vit, vit->ln_pre_w), 1.0f);
    fill_const(P(vit, vit->ln_pre_b), 0.0f);
    for (int64_t i = 0; i < c->layers; i++) {
        const gtl__vit_block *b = &vit->blocks[i];
        fill_const(P(vit, b->ln1_w), 1.0f);
        fill_const(P(vit, b->ln1_b), 0.0f);
        fill_uniform(rng, P(vit, b->in_w), (float)sqrt(6.0 / (double)(w + 3 * w)));
        fill_const(P(vit, b->in_b), 0.0f);
        fill_uniform(rng, P(vit, b->out_w), scale);
        fill_const(P(vit, b->out_b), 0.0f);
        fill_const(P(vit, b->ln2_w), 1.0f);
        fill_const(P(vit, b->ln2_b), 0.0f);
        fill_uniform(rng, P(vit, b->fc_w), scale);
        fill_uniform(rng, P(vit, b->fc_b), scale);
        float hb = (float)(1.0 / sqrt((double)hid));
        fill_uniform(rng, P(vit, b->cproj_w), hb);
        fill_uniform(rng, P(vit, b->cproj_b), hb);
    }
    fill_const(P(vit, vit->ln_post_w), 1.0f);
    fill_const(P(vit, vit->ln_post_b), 0.0f);
    gtl__rng_fill_normal(rng, P(vit, vit->proj)->data, P(vit, vit->proj)->n, 0.0f, scale);
    return GTL_STATUS_OK;
}

gtl_status gtl__vit_freeze_first(gtl__vit *vit, int64_t k)
{
    if (vit == NULL || vit->ps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: freeze: NULL model");
    if (k < 0 || k > vit->cfg.layers + 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit: freeze %lld blocks of %lld (want 0..%lld)",
                          (long long)k, (long long)vit->cfg.layers,
                          (long long)vit->cfg.layers + 1);
    gtl__paramset *ps = vit->ps;
    int64_t stem[5] = {vit->conv1, vit->cls, vit->pos, vit->ln_pre_w, vit->ln_pre_b};
    for (int i = 0; i < 5; i++)
        gtl__paramset_set_frozen(ps, stem[i], k >= 1);
    for (int64_t l = 0; l < vit->cfg.layers; l++) {
        const gtl__vit_block *b = &vit->blocks[l];
        int64_t idx[12] = {b->ln1_w, b->ln1_b, b->in_w, b->in_b, b->out_w, b->out_b,
                           b->ln2_w, b->ln2_b, b->fc_w, b->fc_b, b->cproj_w, b->cproj_b};
        for (int i = 0; i < 12; i++)
            gtl__paramset_set_frozen(ps, idx[i], l < k);
    }
    int64_t post[3] = {vit->ln_post_w, vit->ln_post_b, vit->proj};
    for (int i = 0; i < 3; i++)
        gtl__paramset_set_frozen(ps, post[i], k > vit->cfg.layers);
    return GTL_STATUS_OK;
}

/* ---- tape forward ---------------------------------------------------------- */

/* x (B, T, W) -> x + attn(ln_1(x)) -> + mlp(ln_2(.)), on the tape. */
static gtl_status block_forward(const gtl__vit *vit, const gtl__vit_block *b, gtl__tape *tape,
                                gtl__tensor *x, gtl__tensor **out)
{
    gtl__tensor *h, *qkv, *a, *o, *f, *m;
    gtl_status st;
    *out = NULL;
    st = gtl__op_layernorm(tape, x, P(vit, b->ln1_w), P(vit, b->ln1_b), VIT_LN_EPS, &h);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_linear(tape, h, P(vit, b->in_w), P(vit, b->in_b), GTL__ACT_NONE, &qkv);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_attention(tape, qkv, vit->cfg.heads, &a);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_linear(tape, a, P(vit, b->out_w), P(vit, b->out_b), GTL__ACT_NONE, &o);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_add(tape, x, o, &x);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_layernorm(tape, x, P(vit, b->ln2_w), P(vit, b->ln2_b), VIT_LN_EPS, &h);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_linear(tape, h, P(vit, b->fc_w), P(vit, b->fc_b), vit->cfg.act, &f);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__op_linear(tape, f, P(vit, b->cproj_w), P(vit, b->cproj_b), GTL__ACT_NONE, &m);
    if (st != GTL_STATUS_OK)
        return st;
    return gtl__op_add(tape, x, m, out);
}

gtl_status gtl__vit_forward(gtl__vit *vit, gtl__tape *tape, gtl__tensor *image, int which,
                            gtl__tensor **out)
{
    char s1[64];
    *out = NULL;
    if (vit == NULL || vit->ps == NULL || tape == NULL || image == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit forward: NULL argument");
    if (!vit->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "vit forward: parameters not finalized");
    const gtl__vit_config *c = &vit->cfg;
    if (image->nd != 4 || image->ne[0] < 1 || image->ne[1] != 3 ||
        image->ne[2] != c->image_size || image->ne[3] != c->image_size)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit forward: image %s, want (B, 3, %lld, %lld)",
                          gtl__shape_str(image, s1, sizeof s1), (long long)c->image_size,
                          (long long)c->image_size);
    if (gtl__vit_feature_dim(c, which) == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "vit forward: unknown feature selection %d",
                          which);
    int64_t nb = image->ne[0], w = c->width, t = gtl__vit_tokens(c), np = t - 1;
    gtl__tensor *x, *y, *cls0, *parts[2];
    gtl_status st;

    /* Patch embedding: (B, W, G, G) -> (B, W, G*G) -> (B, G*G, W). */
    st = gtl__op_conv2d(tape, image, P(vit, vit->conv1), NULL, c->patch, c->patch, 0, 0, &x);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t ne3[3] = {nb, w, np};
    st = gtl__op_reshape(tape, x, 3, ne3, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__op_transpose(tape, x, 1, 2, &x);
    if (st != GTL_STATUS_OK)
        return st;
    /* CLS token per image: zeros (B, 1, W) + class_embedding, as CLIP writes it. */
    int64_t nec[3] = {nb, 1, w};
    st = gtl__tape_leaf(tape, 3, nec, NULL, false, &cls0);
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(tape, cls0, P(vit, vit->cls), &cls0);
    if (st != GTL_STATUS_OK)
        return st;
    parts[0] = cls0;
    parts[1] = x;
    st = gtl__op_concat(tape, parts, 2, 1, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(tape, x, P(vit, vit->pos), &x);
    if (st == GTL_STATUS_OK)
        st = gtl__op_layernorm(tape, x, P(vit, vit->ln_pre_w), P(vit, vit->ln_pre_b),
                               VIT_LN_EPS, &x);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t l = 0; l < c->layers; l++) {
        st = block_forward(vit, &vit->blocks[l], tape, x, &x);
        if (st != GTL_STATUS_OK)
            return st;
    }
    /* Head: CLS row -> ln_post -> [cls ; cls @ proj]. */
    int64_t ne2[2] = {nb, w};
    st = gtl__op_slice(tape, x, 1, 0, 1, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__op_reshape(tape, x, 2, ne2, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__op_layernorm(tape, x, P(vit, vit->ln_post_w), P(vit, vit->ln_post_b),
                               VIT_LN_EPS, &x);
    if (st != GTL_STATUS_OK)
        return st;
    if (which == GTL__VIT_FEAT_CLS) {
        *out = x;
        return GTL_STATUS_OK;
    }
    st = gtl__op_matmul(tape, x, P(vit, vit->proj), false, false, 1.0f, &y);
    if (st != GTL_STATUS_OK)
        return st;
    if (which == GTL__VIT_FEAT_PROJ) {
        *out = y;
        return GTL_STATUS_OK;
    }
    parts[0] = x;
    parts[1] = y;
    return gtl__op_concat(tape, parts, 2, 1, out);
}
