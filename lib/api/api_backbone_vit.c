/* The CLIP ViT behind gtl_backbone (lib/nn/vit.h): presets, the
 * architecture table, and weight import from safetensors.
 *
 * Import recognises two namings (docs/backbone.md has the full map):
 * - Hugging Face CLIPVisionModelWithProjection (or CLIPModel): tensors under
 *   "vision_model." plus "visual_projection.weight". q/k/v projections are
 *   fused into CLIP's in_proj (rows q, then k, then v), the projection
 *   (D, W) is transposed into proj (W, D).
 * - OpenAI CLIP names ("conv1.weight", ...), with or without "visual.", as
 *   bindings/python/tools/convert_clip.py writes them.
 * The configuration comes from the shapes: W and P from the patch
 * embedding, S from the position count, layers from the block indices,
 * the MLP ratio from fc1 / c_fc, D from the projection. Heads are not
 * visible in the weights: metadata "num_attention_heads" (or "heads"), else
 * the environment variable GTL_CLIP_HEADS, else 16 for widths 1280, 1408 and
 * 1664 (OpenCLIP's H/14, g/14, bigG/14) and W / 64 otherwise. The
 * activation is QuickGELU (OpenAI CLIP) unless metadata "hidden_act" says
 * "gelu". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_backbone.h"
#include "nn/vit.h"

typedef struct vit_net {
    gtl__vit vit;
    gtl__vit_infer *inf;   /* made on the first inference */
    bool inf_bf16;         /* inf was made with bf16 requested */
    bool stale;            /* parameters changed since inf read them */
} vit_net;

/* The 64 px test ViT of GTL_BACKBONE_VIT_TINY. */
static const gtl__vit_config vit_tiny = {64, 8, 64, 2, 2, 4, 32, GTL__ACT_QUICK_GELU};

static gtl_status vit_new(const gtl__vit_config *cfg, gtl__paramset *ps, void **out_net)
{
    *out_net = NULL;
    vit_net *v = gtl__calloc(1, sizeof *v);
    if (v == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "backbone: out of memory");
    gtl_status st = gtl__vit_init(&v->vit, cfg, ps, NULL);
    if (st != GTL_STATUS_OK) {
        gtl__free(v);
        return st;
    }
    *out_net = v;
    return GTL_STATUS_OK;
}

gtl_status gtl__bb_vit_create(gtl_backbone_preset preset, gtl__paramset *ps, void **out_net)
{
    gtl__vit_config cfg;
    gtl_status st = GTL_STATUS_OK;
    *out_net = NULL;
    switch (preset) {
    case GTL_BACKBONE_CLIP_VIT_B16:
        st = gtl__vit_preset("ViT-B/16", &cfg);
        break;
    case GTL_BACKBONE_CLIP_VIT_B32:
        st = gtl__vit_preset("ViT-B/32", &cfg);
        break;
    case GTL_BACKBONE_VIT_TINY:
        cfg = vit_tiny;
        break;
    default:
        return gtl__error(GTL_STATUS_INVALID_ARG, "backbone: preset %d is not a ViT",
                          (int)preset);
    }
    if (st != GTL_STATUS_OK)
        return st;
    return vit_new(&cfg, ps, out_net);
}

/* ---- the architecture table ---------------------------------------------- */

static gtl_status vit_create_like(const void *like, gtl__paramset *ps, void **out_net)
{
    return vit_new(&((const vit_net *)like)->vit.cfg, ps, out_net);
}

static void vit_destroy(void *net)
{
    vit_net *v = net;
    if (v == NULL)
        return;
    gtl__vit_infer_destroy(v->inf);
    gtl__vit_fini(&v->vit);
    gtl__free(v);
}

static gtl_status vit_init_weights(void *net, gtl__rng *rng)
{
    vit_net *v = net;
    v->stale = true;
    return gtl__vit_init_weights(&v->vit, rng);
}

static int64_t vit_image_size(const void *net)
{
    return ((const vit_net *)net)->vit.cfg.image_size;
}

static int64_t vit_feature_dim(const void *net, int64_t parts)
{
    return gtl__vit_feature_dim(&((const vit_net *)net)->vit.cfg, (int)parts);
}

static int64_t vit_max_trainable(const void *net)
{
    return ((const vit_net *)net)->vit.cfg.layers;
}

/* The last k blocks train, with ln_post and proj; k = 0 freezes everything
 * (gtl__vit_freeze_first counts frozen blocks from the front). */
static gtl_status vit_set_trainable(void *net, int64_t k)
{
    vit_net *v = net;
    int64_t layers = v->vit.cfg.layers;
    return gtl__vit_freeze_first(&v->vit, k == 0 ? layers + 1 : layers - k);
}

static gtl_status vit_forward(gtl_backbone *bb, gtl__tensor *images, gtl__tensor **out)
{
    vit_net *v = bb->net;
    return gtl__vit_forward(&v->vit, bb->tape, images, (int)bb->iv[GTL_BACKBONE_FEATURE_PARTS],
                            out);
}

static gtl_status vit_infer(gtl_backbone *bb, const float *images, int64_t n, float *dst)
{
    vit_net *v = bb->net;
    bool bf16 = bb->iv[GTL_BACKBONE_BF16] != 0;
    gtl_status st = GTL_STATUS_OK;
    if (v->inf != NULL && v->inf_bf16 != bf16) {
        gtl__vit_infer_destroy(v->inf);
        v->inf = NULL;
    }
    if (v->inf == NULL) {
        st = gtl__vit_infer_create(&v->vit, bb->ctx, bf16, &v->inf);
        if (st != GTL_STATUS_OK)
            return st;
        v->inf_bf16 = bf16;
        v->stale = false;
    } else if (v->stale) {
        st = gtl__vit_infer_refresh(v->inf);
        if (st != GTL_STATUS_OK)
            return st;
        v->stale = false;
    }
    return gtl__vit_infer_run(v->inf, images, n, (int)bb->iv[GTL_BACKBONE_FEATURE_PARTS], dst);
}

static void vit_params_changed(void *net)
{
    ((vit_net *)net)->stale = true;
}

/* Checkpoint metadata keys of the configuration, in gtl__vit_config order. */
static const char *const cfg_keys[8] = {"vit.image_size", "vit.patch", "vit.width",
                                        "vit.layers", "vit.heads", "vit.mlp_ratio",
                                        "vit.out_dim", "vit.act"};

static void cfg_to_array(const gtl__vit_config *c, int64_t a[8])
{
    a[0] = c->image_size;
    a[1] = c->patch;
    a[2] = c->width;
    a[3] = c->layers;
    a[4] = c->heads;
    a[5] = c->mlp_ratio;
    a[6] = c->out_dim;
    a[7] = (int64_t)c->act;
}

static gtl_status vit_save_config(const void *net, gtl__ckpt_writer *w)
{
    int64_t a[8];
    cfg_to_array(&((const vit_net *)net)->vit.cfg, a);
    gtl_status st = GTL_STATUS_OK;
    for (int i = 0; i < 8 && st == GTL_STATUS_OK; i++)
        st = gtl__ckpt_add_meta_i64(w, cfg_keys[i], a[i]);
    return st;
}

static void vit_hash_config(const void *net, gtl__sha256 *s)
{
    int64_t a[8];
    cfg_to_array(&((const vit_net *)net)->vit.cfg, a);
    gtl__sha256_update(s, a, sizeof a);
}

static gtl_status vit_create_from_ckpt(gtl__ckpt_reader *r, const char *path, gtl__paramset *ps,
                                       void **out_net)
{
    int64_t a[8];
    *out_net = NULL;
    for (int i = 0; i < 8; i++) {
        gtl_status st = gtl__ckpt_meta_i64(r, cfg_keys[i], &a[i]);
        if (st != GTL_STATUS_OK)
            return st;
    }
    gtl__vit_config c = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], (gtl__act)a[7]};
    if (a[7] < 0 || a[7] > 16 || gtl__vit_config_check(&c) != GTL_STATUS_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", gtl__error_message());
        return gtl__error(GTL_STATUS_FORMAT, "%s: invalid ViT configuration: %s", path, msg);
    }
    return vit_new(&c, ps, out_net);
}

const gtl__bb_arch gtl__bb_arch_vit = {
    .name = "vit",
    .has_feature_parts = true,
    .has_bf16 = true,
    .default_trainable = 0,
    .create_like = vit_create_like,
    .create_from_ckpt = vit_create_from_ckpt,
    .destroy = vit_destroy,
    .init_weights = vit_init_weights,
    .image_size = vit_image_size,
    .feature_dim = vit_feature_dim,
    .max_trainable = vit_max_trainable,
    .set_trainable = vit_set_trainable,
    .buffers = NULL,
    .forward = vit_forward,
    .infer = vit_infer,
    .params_changed = vit_params_changed,
    .save_config = vit_save_config,
    .hash_config = vit_hash_config,
};

/* ---- safetensors import ---------------------------------------------------- */

/* Which naming a file uses. */
typedef enum naming {
    NAMING_HF,      /* vision_model.* + visual_projection.weight */
    NAMING_OPENAI   /* conv1.weight ... behind `prefix` */
} naming;

#define HF_EMB "vision_model.embeddings."
#define HF_LAYER "vision_model.encoder.layers."

/* The tensor `name` with exactly the shape (d[0], ..., d[nd-1]), or FORMAT
 * naming it. */
static gtl_status want_shape(gtl__safetensors *f, const char *path, const char *name, int32_t nd,
                             const int64_t *d, const gtl__safetensors_info **out)
{
    const gtl__safetensors_info *info = gtl__safetensors_find(f, name);
    *out = info;
    if (info == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is missing", path, name);
    bool same = info->nd == nd;
    for (int32_t i = 0; same && i < nd; i++)
        same = info->ne[i] == d[i];
    if (same)
        return GTL_STATUS_OK;
    char got[160], want[160];
    size_t k = 0;
    got[0] = want[0] = '\0';
    for (int32_t i = 0; i < info->nd && k < sizeof got; i++)
        k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", i ? ", " : "",
                              (long long)info->ne[i]);
    k = 0;
    for (int32_t i = 0; i < nd && k < sizeof want; i++)
        k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", i ? ", " : "",
                              (long long)d[i]);
    return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s has shape (%s), expected (%s)", path,
                      name, got, want);
}

/* Highest block index + 1 among names "<prefix><i>.<...>". */
static int64_t count_layers(const gtl__safetensors *f, const char *prefix)
{
    size_t pl = strlen(prefix);
    int64_t n = 0;
    for (int64_t i = 0; i < gtl__safetensors_num_tensors(f); i++) {
        const char *name = gtl__safetensors_tensor(f, i)->name;
        if (strncmp(name, prefix, pl) != 0)
            continue;
        char *end = NULL;
        long long v = strtoll(name + pl, &end, 10);
        if (end != name + pl && *end == '.' && v >= 0 && v < 4096 && v + 1 > n)
            n = v + 1;
    }
    return n;
}

/* A positive decimal integer from metadata or the environment, 0 if absent. */
static gtl_status positive_setting(const char *text, const char *what, const char *path,
                                   int64_t *out)
{
    *out = 0;
    if (text == NULL)
        return GTL_STATUS_OK;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || v > 65536)
        return gtl__error(GTL_STATUS_FORMAT, "%s: %s = \"%s\" is not a positive integer", path,
                          what, text);
    *out = v;
    return GTL_STATUS_OK;
}

/* Infers the configuration from the shapes (see the top of this file). */
static gtl_status infer_config(gtl__safetensors *f, const char *path, naming nm,
                               const char *prefix, gtl__vit_config *c)
{
    char name[GTL__SAFETENSORS_MAX_NAME + 64];
    const gtl__safetensors_info *pe, *pos, *fc, *proj;
    memset(c, 0, sizeof *c);
    if (nm == NAMING_HF)
        snprintf(name, sizeof name, HF_EMB "patch_embedding.weight");
    else
        snprintf(name, sizeof name, "%sconv1.weight", prefix);
    pe = gtl__safetensors_find(f, name);
    if (pe == NULL || pe->nd != 4 || pe->ne[1] != 3 || pe->ne[2] != pe->ne[3] || pe->ne[0] < 1 ||
        pe->ne[2] < 1)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is %s (want (W, 3, P, P))", path,
                          name, pe == NULL ? "missing" : "not a patch embedding");
    c->width = pe->ne[0];
    c->patch = pe->ne[2];
    if (nm == NAMING_HF)
        snprintf(name, sizeof name, HF_EMB "position_embedding.weight");
    else
        snprintf(name, sizeof name, "%spositional_embedding", prefix);
    pos = gtl__safetensors_find(f, name);
    if (pos == NULL || pos->nd != 2 || pos->ne[1] != c->width || pos->ne[0] < 2)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is %s (want (T, %lld))", path, name,
                          pos == NULL ? "missing" : "mis-shaped", (long long)c->width);
    int64_t g = 0;
    while ((g + 1) * (g + 1) <= pos->ne[0] - 1)
        g++;
    if (g * g != pos->ne[0] - 1)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s has %lld positions, not a square "
                          "grid + 1", path, name, (long long)pos->ne[0]);
    c->image_size = g * c->patch;
    if (nm == NAMING_HF)
        snprintf(name, sizeof name, HF_LAYER);
    else
        snprintf(name, sizeof name, "%stransformer.resblocks.", prefix);
    c->layers = count_layers(f, name);
    c->mlp_ratio = 4;
    if (c->layers > 0) {
        if (nm == NAMING_HF)
            snprintf(name, sizeof name, HF_LAYER "0.mlp.fc1.weight");
        else
            snprintf(name, sizeof name, "%stransformer.resblocks.0.mlp.c_fc.weight", prefix);
        fc = gtl__safetensors_find(f, name);
        if (fc == NULL || fc->nd != 2 || fc->ne[1] != c->width || fc->ne[0] % c->width != 0 ||
            fc->ne[0] == 0)
            return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is %s (want (R * %lld, %lld))",
                              path, name, fc == NULL ? "missing" : "mis-shaped",
                              (long long)c->width, (long long)c->width);
        c->mlp_ratio = fc->ne[0] / c->width;
    }
    if (nm == NAMING_HF)
        snprintf(name, sizeof name, "visual_projection.weight");
    else
        snprintf(name, sizeof name, "%sproj", prefix);
    proj = gtl__safetensors_find(f, name);
    int64_t d_axis = nm == NAMING_HF ? 0 : 1;
    if (proj == NULL || proj->nd != 2 || proj->ne[1 - d_axis] != c->width || proj->ne[d_axis] < 1)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is %s (want %s)", path, name,
                          proj == NULL ? "missing" : "mis-shaped",
                          nm == NAMING_HF ? "(D, W)" : "(W, D)");
    c->out_dim = proj->ne[d_axis];

    const char *h = gtl__safetensors_meta(f, "num_attention_heads");
    const char *what = "metadata num_attention_heads";
    if (h == NULL) {
        h = gtl__safetensors_meta(f, "heads");
        what = "metadata heads";
    }
    if (h == NULL) {
        h = getenv("GTL_CLIP_HEADS");
        what = "GTL_CLIP_HEADS";
    }
    gtl_status st = positive_setting(h, what, path, &c->heads);
    if (st != GTL_STATUS_OK)
        return st;
    if (c->heads == 0) {
        /* OpenCLIP's ViT-H/14, g/14 and bigG/14 (widths 1280, 1408, 1664) have
         * 16 heads of 80, 88 and 104; every other released CLIP ViT has heads
         * of 64. */
        if (c->width == 1280 || c->width == 1408 || c->width == 1664)
            c->heads = 16;
        else if (c->width % 64 != 0)
            return gtl__error(GTL_STATUS_FORMAT, "%s: width %lld is not a multiple of 64: give "
                              "the head count as metadata num_attention_heads or in "
                              "GTL_CLIP_HEADS", path, (long long)c->width);
        else
            c->heads = c->width / 64;
    }
    if (c->width % c->heads != 0)
        return gtl__error(GTL_STATUS_FORMAT, "%s: %lld heads (%s) do not divide width %lld", path,
                          (long long)c->heads, h != NULL ? what : "width / 64",
                          (long long)c->width);
    c->act = GTL__ACT_QUICK_GELU;
    const char *act = gtl__safetensors_meta(f, "hidden_act");
    if (act != NULL && strcmp(act, "gelu") == 0)
        c->act = GTL__ACT_GELU;
    else if (act != NULL && strcmp(act, "quick_gelu") != 0)
        return gtl__error(GTL_STATUS_UNSUPPORTED, "%s: hidden_act \"%s\" (libgtl has quick_gelu "
                          "and gelu)", path, act);
    st = gtl__vit_config_check(c);
    if (st != GTL_STATUS_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", gtl__error_message());
        return gtl__error(GTL_STATUS_FORMAT, "%s: unusable ViT configuration: %s", path, msg);
    }
    return GTL_STATUS_OK;
}

/* Reads tensor `name`, checked to be exactly d (nd dims), into dst. */
static gtl_status read_checked(gtl__safetensors *f, const char *path, const char *name,
                               int32_t nd, const int64_t *d, float *dst)
{
    const gtl__safetensors_info *info;
    gtl_status st = want_shape(f, path, name, nd, d, &info);
    if (st == GTL_STATUS_OK)
        st = gtl__safetensors_read_f32(f, name, dst, info->n_elems);
    return st;
}

/* Block l of the HF tower into CLIP's block l. */
static gtl_status load_hf_block(gtl__safetensors *f, const char *path, const gtl__vit *vit,
                                int64_t l)
{
    const gtl__vit_block *b = &vit->blocks[l];
    int64_t w = vit->cfg.width;
    char name[128];
    gtl_status st = GTL_STATUS_OK;
    struct {
        int64_t idx;
        const char *hf;
    } plain[] = {
        {b->ln1_w, "layer_norm1.weight"},  {b->ln1_b, "layer_norm1.bias"},
        {b->out_w, "self_attn.out_proj.weight"}, {b->out_b, "self_attn.out_proj.bias"},
        {b->ln2_w, "layer_norm2.weight"},  {b->ln2_b, "layer_norm2.bias"},
        {b->fc_w, "mlp.fc1.weight"},        {b->fc_b, "mlp.fc1.bias"},
        {b->cproj_w, "mlp.fc2.weight"},     {b->cproj_b, "mlp.fc2.bias"},
    };
    for (size_t i = 0; st == GTL_STATUS_OK && i < sizeof plain / sizeof plain[0]; i++) {
        gtl__tensor *t = gtl__paramset_get(vit->ps, plain[i].idx);
        snprintf(name, sizeof name, HF_LAYER "%lld.%s", (long long)l, plain[i].hf);
        st = read_checked(f, path, name, t->nd, t->ne, t->data);
    }
    /* q, k, v -> in_proj rows [0, W), [W, 2W), [2W, 3W). */
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    gtl__tensor *iw = gtl__paramset_get(vit->ps, b->in_w);
    gtl__tensor *ib = gtl__paramset_get(vit->ps, b->in_b);
    int64_t dw[2] = {w, w};
    for (int j = 0; st == GTL_STATUS_OK && j < 3; j++) {
        snprintf(name, sizeof name, HF_LAYER "%lld.self_attn.%s.weight", (long long)l, qkv[j]);
        st = read_checked(f, path, name, 2, dw, iw->data + j * w * w);
        snprintf(name, sizeof name, HF_LAYER "%lld.self_attn.%s.bias", (long long)l, qkv[j]);
        if (st == GTL_STATUS_OK)
            st = read_checked(f, path, name, 1, &w, ib->data + j * w);
    }
    return st;
}

static gtl_status load_hf(gtl__safetensors *f, const char *path, const gtl__vit *vit)
{
    gtl__paramset *ps = vit->ps;
    struct {
        int64_t idx;
        const char *hf;
    } plain[] = {
        {vit->conv1, HF_EMB "patch_embedding.weight"},
        {vit->cls, HF_EMB "class_embedding"},
        {vit->pos, HF_EMB "position_embedding.weight"},
        {vit->ln_pre_w, "vision_model.pre_layrnorm.weight"},
        {vit->ln_pre_b, "vision_model.pre_layrnorm.bias"},
        {vit->ln_post_w, "vision_model.post_layernorm.weight"},
        {vit->ln_post_b, "vision_model.post_layernorm.bias"},
    };
    gtl_status st = GTL_STATUS_OK;
    for (size_t i = 0; st == GTL_STATUS_OK && i < sizeof plain / sizeof plain[0]; i++) {
        gtl__tensor *t = gtl__paramset_get(ps, plain[i].idx);
        st = read_checked(f, path, plain[i].hf, t->nd, t->ne, t->data);
    }
    for (int64_t l = 0; st == GTL_STATUS_OK && l < vit->cfg.layers; l++)
        st = load_hf_block(f, path, vit, l);
    if (st != GTL_STATUS_OK)
        return st;
    /* visual_projection.weight (D, W) is nn.Linear's (out, in): proj = its transpose. */
    gtl__tensor *proj = gtl__paramset_get(ps, vit->proj);
    int64_t w = vit->cfg.width, d = vit->cfg.out_dim;
    int64_t dd[2] = {d, w};
    float *tmp = gtl__malloc((size_t)(d * w) * sizeof(float));
    if (tmp == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    st = read_checked(f, path, "visual_projection.weight", 2, dd, tmp);
    if (st == GTL_STATUS_OK)
        for (int64_t i = 0; i < w; i++)
            for (int64_t j = 0; j < d; j++)
                proj->data[i * d + j] = tmp[j * w + i];
    gtl__free(tmp);
    return st;
}

gtl_status gtl__bb_vit_load_safetensors(gtl_backbone *bb, gtl__safetensors *f, const char *path)
{
    naming nm;
    const char *prefix = "";
    if (gtl__safetensors_find(f, HF_EMB "patch_embedding.weight") != NULL)
        nm = NAMING_HF;
    else if (gtl__safetensors_find(f, "conv1.weight") != NULL)
        nm = NAMING_OPENAI;
    else if (gtl__safetensors_find(f, "visual.conv1.weight") != NULL) {
        nm = NAMING_OPENAI;
        prefix = "visual.";
    } else
        return gtl__error(GTL_STATUS_FORMAT, "%s: not a CLIP vision tower: no tensor "
                          HF_EMB "patch_embedding.weight (Hugging Face), conv1.weight or "
                          "visual.conv1.weight (OpenAI CLIP)", path);
    gtl__vit_config cfg;
    gtl_status st = infer_config(f, path, nm, prefix, &cfg);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__paramset *ps = NULL;
    void *net = NULL;
    st = gtl__bb_new_paramset(&ps);
    if (st != GTL_STATUS_OK)
        return st;
    st = vit_new(&cfg, ps, &net);
    if (st != GTL_STATUS_OK) {
        gtl__bb_paramset_free(ps);
        return st;
    }
    st = gtl__bb_install(bb, &gtl__bb_arch_vit, net, ps, 0);
    if (st != GTL_STATUS_OK)
        return st;
    vit_net *v = bb->net;
    if (nm == NAMING_HF) {
        st = load_hf(f, path, &v->vit);
    } else {
        st = gtl__vit_load_safetensors(&v->vit, f, prefix);
        if (st == GTL_STATUS_FORMAT) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", gtl__error_message());
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s", path, msg);
        }
    }
    if (st != GTL_STATUS_OK)
        return st;
    bb->iv[GTL_BACKBONE_TRAINABLE_BLOCKS] = 0;
    gtl__bb_params_changed(bb);
    gtl__log(GTL_LOG_INFO, "backbone: %s: CLIP ViT (%s names), image %lld, patch %lld, width "
             "%lld, %lld layers, %lld heads, D %lld", path,
             nm == NAMING_HF ? "Hugging Face" : "OpenAI", (long long)cfg.image_size,
             (long long)cfg.patch, (long long)cfg.width, (long long)cfg.layers,
             (long long)cfg.heads, (long long)cfg.out_dim);
    return vit_set_trainable(bb->net, 0);
}
