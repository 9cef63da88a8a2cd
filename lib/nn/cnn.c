/* The residual CNN backbone: configuration, parameters and running
 * statistics, initialisation, freezing, the differentiable forward on the
 * tape, and the supervised classification head. Gradients come from the ops'
 * own backward functions (docs/autograd.md); nothing here has a backward of
 * its own.
 *
 * Shapes: see cnn.h (B, S, w, Ci, F). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/cnn.h"

typedef struct cnn_preset {
    const char *name;
    gtl__cnn_config cfg;
} cnn_preset;

static const cnn_preset presets[] = {
    {"resnet_small", {64, 32, 4, 2, 1}},
    {"resnet_small_s2", {64, 32, 4, 2, 2}},
    {"tiny", {16, 4, 2, 2, 1}},
};

void gtl__cnn_config_default(gtl__cnn_config *cfg)
{
    *cfg = presets[0].cfg;
}

gtl_status gtl__cnn_preset(const char *name, gtl__cnn_config *out_cfg)
{
    memset(out_cfg, 0, sizeof *out_cfg);
    if (name == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: NULL preset name");
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out_cfg = presets[i].cfg;
            return GTL_STATUS_OK;
        }
    }
    return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: unknown preset \"%s\"", name);
}

gtl_status gtl__cnn_config_check(const gtl__cnn_config *c)
{
    if (c == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: NULL config");
    if (c->image_size < 2 || c->image_size > 4096)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: image size %lld out of range [2, 4096]",
                          (long long)c->image_size);
    if (c->stages < 1 || c->stages > GTL__CNN_MAX_STAGES)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: %lld stages (1 to %d allowed)",
                          (long long)c->stages, GTL__CNN_MAX_STAGES);
    if (c->width < 1 || c->width > 4096 || (c->width << (c->stages - 1)) > 65536)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "cnn: width %lld out of range (1 to 4096, at most 65536 channels in "
                          "the last stage)", (long long)c->width);
    if (c->blocks < 1 || c->blocks > 64)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: %lld blocks per stage (1 to 64 allowed)",
                          (long long)c->blocks);
    if (c->stem_stride < 0 || c->stem_stride > 2)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: stem stride %lld (1 or 2 allowed)",
                          (long long)c->stem_stride);
    return GTL_STATUS_OK;
}

int64_t gtl__cnn_stage_width(const gtl__cnn_config *cfg, int64_t stage)
{
    return cfg->width << stage;
}

int64_t gtl__cnn_feature_dim(const gtl__cnn_config *cfg)
{
    return gtl__cnn_stage_width(cfg, cfg->stages - 1);
}

int64_t gtl__cnn_stage_side(const gtl__cnn_config *cfg, int64_t stage)
{
    /* conv3x3, padding 1, stride 2: (H + 2 - 3) / 2 + 1. */
    int64_t s = cfg->image_size;
    for (int64_t i = 1; i <= stage; i++)
        s = (s - 1) / 2 + 1;
    return s;
}

/* ---- parameters ------------------------------------------------------------ */

static gtl_status add_named(gtl__paramset *ps, const char *prefix, const char *name, int32_t nd,
                            int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t *out_index)
{
    char full[256];
    int64_t ne[4] = {d0, d1, d2, d3};
    int n = snprintf(full, sizeof full, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: parameter name too long (%s%s)", prefix,
                          name);
    return gtl__paramset_add(ps, full, nd, ne, out_index);
}

/* conv weight (o, i, k, k) named <p>conv, no bias (BN follows). */
static gtl_status add_conv(gtl__cnn *cnn, const char *p, const char *layer, int64_t o, int64_t i,
                           int64_t k, int64_t *out_index)
{
    char name[96];
    snprintf(name, sizeof name, "%s.weight", layer);
    return add_named(cnn->ps, p, name, 4, o, i, k, k, out_index);
}

/* BN layer <p><layer>: weight and bias parameters, running statistics buffers. */
static gtl_status add_bn(gtl__cnn *cnn, const char *p, const char *layer, int64_t c,
                         gtl__cnn_bn *bn)
{
    char name[96];
    gtl_status st;
    snprintf(name, sizeof name, "%s.weight", layer);
    st = add_named(cnn->ps, p, name, 1, c, 0, 0, 0, &bn->weight);
    if (st != GTL_STATUS_OK)
        return st;
    snprintf(name, sizeof name, "%s.bias", layer);
    st = add_named(cnn->ps, p, name, 1, c, 0, 0, 0, &bn->bias);
    if (st != GTL_STATUS_OK)
        return st;
    snprintf(name, sizeof name, "%s.running_mean", layer);
    st = add_named(&cnn->buffers, p, name, 1, c, 0, 0, 0, &bn->mean);
    if (st != GTL_STATUS_OK)
        return st;
    snprintf(name, sizeof name, "%s.running_var", layer);
    return add_named(&cnn->buffers, p, name, 1, c, 0, 0, 0, &bn->var);
}

static gtl_status add_block(gtl__cnn *cnn, const char *prefix, int64_t stage, int64_t j,
                            int64_t cin, int64_t cout, gtl__cnn_block *b)
{
    char p[224];
    int n = snprintf(p, sizeof p, "%sstages.%lld.%lld.", prefix, (long long)stage, (long long)j);
    if (n < 0 || (size_t)n >= sizeof p)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: parameter prefix too long");
    b->stride = (stage > 0 && j == 0) ? 2 : 1;
    b->sc_conv = -1;
    gtl_status st = add_conv(cnn, p, "conv1", cout, cin, 3, &b->conv1);
    if (st == GTL_STATUS_OK)
        st = add_bn(cnn, p, "bn1", cout, &b->bn1);
    if (st == GTL_STATUS_OK)
        st = add_conv(cnn, p, "conv2", cout, cout, 3, &b->conv2);
    if (st == GTL_STATUS_OK)
        st = add_bn(cnn, p, "bn2", cout, &b->bn2);
    if (st == GTL_STATUS_OK && (b->stride != 1 || cin != cout)) {
        st = add_conv(cnn, p, "shortcut.conv", cout, cin, 1, &b->sc_conv);
        if (st == GTL_STATUS_OK)
            st = add_bn(cnn, p, "shortcut.bn", cout, &b->sc_bn);
    }
    return st;
}

gtl_status gtl__cnn_init(gtl__cnn *cnn, const gtl__cnn_config *cfg, gtl__paramset *ps,
                         const char *prefix)
{
    memset(cnn, 0, sizeof *cnn);
    gtl__paramset_init(&cnn->buffers);
    if (ps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: NULL parameter set");
    if (ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn: parameter set already finalized");
    gtl_status st = gtl__cnn_config_check(cfg);
    if (st != GTL_STATUS_OK)
        return st;
    const char *pf = prefix != NULL ? prefix : "";
    cnn->cfg = *cfg;
    cnn->ps = ps;
    cnn->blocks = gtl__calloc((size_t)(cfg->stages * cfg->blocks), sizeof *cnn->blocks);
    if (cnn->blocks == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "cnn: out of memory");
        goto out_fail;
    }
    char p[224];
    int n = snprintf(p, sizeof p, "%sstem.", pf);
    if (n < 0 || (size_t)n >= sizeof p) {
        st = gtl__error(GTL_STATUS_INVALID_ARG, "cnn: parameter prefix too long");
        goto out_fail;
    }
    st = add_conv(cnn, p, "conv", cfg->width, 3, 3, &cnn->stem_conv);
    if (st == GTL_STATUS_OK)
        st = add_bn(cnn, p, "bn", cfg->width, &cnn->stem_bn);
    int64_t cin = cfg->width;
    for (int64_t i = 0; st == GTL_STATUS_OK && i < cfg->stages; i++) {
        int64_t cout = gtl__cnn_stage_width(cfg, i);
        for (int64_t j = 0; st == GTL_STATUS_OK && j < cfg->blocks; j++) {
            st = add_block(cnn, pf, i, j, cin, cout, &cnn->blocks[i * cfg->blocks + j]);
            cin = cout;
        }
    }
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_finalize(&cnn->buffers);
    if (st != GTL_STATUS_OK)
        goto out_fail;
    for (int64_t i = 0; i < cnn->buffers.n_params; i++)
        gtl__paramset_set_frozen(&cnn->buffers, i, true);
    gtl__cnn_reset_running_stats(cnn);
    cnn->bn_momentum = GTL__CNN_BN_MOMENTUM;
    cnn->bn_eps = GTL__CNN_BN_EPS;
    cnn->prefix_len = strlen(pf);
    return GTL_STATUS_OK;

out_fail:
    gtl__cnn_fini(cnn);
    return st;
}

void gtl__cnn_fini(gtl__cnn *cnn)
{
    if (cnn == NULL)
        return;
    gtl__free(cnn->blocks);
    gtl__paramset_fini(&cnn->buffers);
    memset(cnn, 0, sizeof *cnn);
    gtl__paramset_init(&cnn->buffers);
}

static gtl__tensor *P(const gtl__cnn *cnn, int64_t i)
{
    return gtl__paramset_get(cnn->ps, i);
}

static float *buf(gtl__cnn *cnn, int64_t i)
{
    return gtl__paramset_get(&cnn->buffers, i)->data;
}

static int64_t n_blocks(const gtl__cnn *cnn)
{
    return cnn->cfg.stages * cnn->cfg.blocks;
}

int64_t gtl__cnn_num_params(const gtl__cnn *cnn)
{
    int64_t n = 3;
    for (int64_t i = 0; i < n_blocks(cnn); i++)
        n += cnn->blocks[i].sc_conv >= 0 ? 9 : 6;
    return n;
}

void gtl__cnn_param_indices(const gtl__cnn *cnn, int64_t *idx)
{
    int64_t n = 0;
    idx[n++] = cnn->stem_conv;
    idx[n++] = cnn->stem_bn.weight;
    idx[n++] = cnn->stem_bn.bias;
    for (int64_t i = 0; i < n_blocks(cnn); i++) {
        const gtl__cnn_block *b = &cnn->blocks[i];
        int64_t bi[9] = {b->conv1, b->bn1.weight, b->bn1.bias, b->conv2, b->bn2.weight,
                         b->bn2.bias, b->sc_conv, b->sc_bn.weight, b->sc_bn.bias};
        int m = b->sc_conv >= 0 ? 9 : 6;
        for (int k = 0; k < m; k++)
            idx[n++] = bi[k];
    }
}

int64_t gtl__cnn_num_weights(const gtl__cnn *cnn)
{
    int64_t n = gtl__cnn_num_params(cnn), total = 0;
    int64_t *idx = gtl__malloc((size_t)n * sizeof *idx);
    if (idx == NULL)
        return -1;
    gtl__cnn_param_indices(cnn, idx);
    for (int64_t i = 0; i < n; i++)
        total += cnn->ps->params[idx[i]].n;
    gtl__free(idx);
    return total;
}

static void fill_const(float *d, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = v;
}

void gtl__cnn_reset_running_stats(gtl__cnn *cnn)
{
    /* Buffers alternate running_mean, running_var per BN layer. */
    for (int64_t i = 0; i < cnn->buffers.n_params; i++) {
        gtl__tensor *t = gtl__paramset_get(&cnn->buffers, i);
        fill_const(t->data, t->n, (i % 2 == 0) ? 0.0f : 1.0f);
    }
}

/* Kaiming-normal, mode fan_out, gain sqrt(2) (torchvision's ResNet). */
static void kaiming_fan_out(gtl__rng *rng, gtl__tensor *w)
{
    double fan_out = (double)(w->ne[0] * w->ne[2] * w->ne[3]);
    gtl__rng_fill_normal(rng, w->data, w->n, 0.0f, (float)sqrt(2.0 / fan_out));
}

static void bn_unit(gtl__cnn *cnn, const gtl__cnn_bn *bn)
{
    gtl__tensor *w = P(cnn, bn->weight), *b = P(cnn, bn->bias);
    fill_const(w->data, w->n, 1.0f);
    fill_const(b->data, b->n, 0.0f);
}

gtl_status gtl__cnn_init_weights(gtl__cnn *cnn, gtl__rng *rng)
{
    if (cnn == NULL || cnn->ps == NULL || rng == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: init_weights: NULL argument");
    if (!cnn->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn: init_weights before the parameter set "
                          "is finalized");
    kaiming_fan_out(rng, P(cnn, cnn->stem_conv));
    bn_unit(cnn, &cnn->stem_bn);
    for (int64_t i = 0; i < n_blocks(cnn); i++) {
        const gtl__cnn_block *b = &cnn->blocks[i];
        kaiming_fan_out(rng, P(cnn, b->conv1));
        bn_unit(cnn, &b->bn1);
        kaiming_fan_out(rng, P(cnn, b->conv2));
        bn_unit(cnn, &b->bn2);
        if (b->sc_conv >= 0) {
            kaiming_fan_out(rng, P(cnn, b->sc_conv));
            bn_unit(cnn, &b->sc_bn);
        }
    }
    gtl__cnn_reset_running_stats(cnn);
    return GTL_STATUS_OK;
}

gtl_status gtl__cnn_freeze_first(gtl__cnn *cnn, int64_t k)
{
    if (cnn == NULL || cnn->ps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: freeze: NULL model");
    if (k < 0 || k > cnn->cfg.stages)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn: freeze %lld stages of %lld (want 0..%lld)",
                          (long long)k, (long long)cnn->cfg.stages, (long long)cnn->cfg.stages);
    gtl__paramset *ps = cnn->ps;
    gtl__paramset_set_frozen(ps, cnn->stem_conv, k >= 1);
    gtl__paramset_set_frozen(ps, cnn->stem_bn.weight, k >= 1);
    gtl__paramset_set_frozen(ps, cnn->stem_bn.bias, k >= 1);
    for (int64_t i = 0; i < n_blocks(cnn); i++) {
        const gtl__cnn_block *b = &cnn->blocks[i];
        bool fr = i / cnn->cfg.blocks < k;
        int64_t bi[9] = {b->conv1, b->bn1.weight, b->bn1.bias, b->conv2, b->bn2.weight,
                         b->bn2.bias, b->sc_conv, b->sc_bn.weight, b->sc_bn.bias};
        int m = b->sc_conv >= 0 ? 9 : 6;
        for (int j = 0; j < m; j++)
            gtl__paramset_set_frozen(ps, bi[j], fr);
    }
    cnn->n_frozen = k;
    return GTL_STATUS_OK;
}

gtl_status gtl__cnn_load_safetensors(gtl__cnn *cnn, gtl__safetensors *f,
                                     const char *file_prefix)
{
    if (cnn == NULL || cnn->ps == NULL || f == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn load: NULL argument");
    if (!cnn->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn load: parameters not finalized");
    const char *fp = file_prefix != NULL ? file_prefix : "";
    int64_t n = gtl__cnn_num_params(cnn);
    int64_t *idx = gtl__malloc((size_t)n * sizeof *idx);
    if (idx == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "cnn load: out of memory");
    gtl__cnn_param_indices(cnn, idx);
    gtl_status st = GTL_STATUS_OK;
    char name[GTL__SAFETENSORS_MAX_NAME + 1];
    /* Parameters first, then the running statistics. */
    for (int64_t i = 0; st == GTL_STATUS_OK && i < n + cnn->buffers.n_params; i++) {
        gtl__paramset *set = i < n ? cnn->ps : &cnn->buffers;
        int64_t j = i < n ? idx[i] : i - n;
        gtl__tensor *t = gtl__paramset_get(set, j);
        const char *own = set->names[j] + cnn->prefix_len;
        int len = snprintf(name, sizeof name, "%s%s", fp, own);
        if (len < 0 || (size_t)len >= sizeof name) {
            st = gtl__error(GTL_STATUS_INVALID_ARG, "cnn load: name too long (%s%s)", fp, own);
            break;
        }
        const gtl__safetensors_info *info = gtl__safetensors_find(f, name);
        bool same = info != NULL && info->nd == t->nd;
        for (int32_t d = 0; same && d < t->nd; d++)
            same = info->ne[d] == t->ne[d];
        if (!same) {
            char s1[64];
            st = gtl__error(GTL_STATUS_FORMAT, "cnn load: %s %s (want shape %s)", name,
                            info == NULL ? "is missing" : "has another shape",
                            gtl__shape_str(t, s1, sizeof s1));
            break;
        }
        st = gtl__safetensors_read_f32(f, name, t->data, t->n);
    }
    gtl__free(idx);
    return st;
}

/* ---- tape forward ---------------------------------------------------------- */

/* conv (no bias, padding k / 2) -> BN, optionally -> ReLU. */
static gtl_status conv_bn(gtl__cnn *cnn, gtl__tape *tape, gtl__tensor *x, int64_t conv,
                          const gtl__cnn_bn *bn, int64_t stride, bool relu, gtl__tensor **out)
{
    gtl__tensor *w = P(cnn, conv), *y;
    int64_t pad = w->ne[2] / 2;
    *out = NULL;
    gtl_status st = gtl__op_conv2d(tape, x, w, NULL, stride, stride, pad, pad, &y);
    if (st == GTL_STATUS_OK)
        st = gtl__op_batchnorm(tape, y, P(cnn, bn->weight), P(cnn, bn->bias), buf(cnn, bn->mean),
                               buf(cnn, bn->var), cnn->bn_momentum, cnn->bn_eps, &y);
    if (st == GTL_STATUS_OK && relu)
        st = gtl__op_relu(tape, y, &y);
    if (st == GTL_STATUS_OK)
        *out = y;
    return st;
}

/* x -> ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + shortcut(x)). */
static gtl_status block_forward(gtl__cnn *cnn, const gtl__cnn_block *b, gtl__tape *tape,
                                gtl__tensor *x, gtl__tensor **out)
{
    gtl__tensor *h, *sc = x;
    *out = NULL;
    gtl_status st = conv_bn(cnn, tape, x, b->conv1, &b->bn1, b->stride, true, &h);
    if (st == GTL_STATUS_OK)
        st = conv_bn(cnn, tape, h, b->conv2, &b->bn2, 1, false, &h);
    if (st == GTL_STATUS_OK && b->sc_conv >= 0)
        st = conv_bn(cnn, tape, x, b->sc_conv, &b->sc_bn, b->stride, false, &sc);
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(tape, h, sc, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_relu(tape, h, out);
    return st;
}

gtl_status gtl__cnn_forward(gtl__cnn *cnn, gtl__tape *tape, gtl__tensor *image,
                            gtl__tensor **out)
{
    char s1[64];
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn forward: NULL out");
    *out = NULL;
    if (cnn == NULL || cnn->ps == NULL || tape == NULL || image == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn forward: NULL argument");
    if (!cnn->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn forward: parameters not finalized");
    const gtl__cnn_config *c = &cnn->cfg;
    if (image->nd != 4 || image->ne[0] < 1 || image->ne[1] != 3 ||
        image->ne[2] != c->image_size || image->ne[3] != c->image_size)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn forward: image %s, want (B, 3, %lld, %lld)",
                          gtl__shape_str(image, s1, sizeof s1), (long long)c->image_size,
                          (long long)c->image_size);
    bool training = tape->training;
    if (training && cnn->n_frozen < c->stages && image->ne[0] < 2)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn forward: training mode needs a batch of "
                          "at least 2 images (got %lld)", (long long)image->ne[0]);

    /* Frozen parts run their BN layers in evaluation mode. */
    gtl__tensor *x;
    tape->training = training && cnn->n_frozen == 0;
    gtl_status st = conv_bn(cnn, tape, image, cnn->stem_conv, &cnn->stem_bn,
                            c->stem_stride > 1 ? c->stem_stride : 1, true, &x);
    for (int64_t i = 0; st == GTL_STATUS_OK && i < n_blocks(cnn); i++) {
        tape->training = training && i / c->blocks >= cnn->n_frozen;
        st = block_forward(cnn, &cnn->blocks[i], tape, x, &x);
    }
    tape->training = training;
    if (st == GTL_STATUS_OK)
        st = gtl__op_global_avgpool(tape, x, out);
    return st;
}

/* ---- supervised classification head ---------------------------------------- */

gtl_status gtl__cnn_head_init(gtl__cnn_head *head, gtl__paramset *ps, const char *prefix,
                              int64_t dim, int64_t n_classes)
{
    memset(head, 0, sizeof *head);
    if (ps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn head: NULL parameter set");
    if (ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn head: parameter set already finalized");
    if (dim < 1 || n_classes < 2 || n_classes > ((int64_t)1 << 24))
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn head: %lld features, %lld classes (want "
                          ">= 1 and 2 .. 2^24)", (long long)dim, (long long)n_classes);
    const char *pf = prefix != NULL ? prefix : "head.";
    gtl_status st = add_named(ps, pf, "weight", 2, n_classes, dim, 0, 0, &head->weight);
    if (st == GTL_STATUS_OK)
        st = add_named(ps, pf, "bias", 1, n_classes, 0, 0, 0, &head->bias);
    if (st != GTL_STATUS_OK) {
        memset(head, 0, sizeof *head);
        return st;
    }
    head->ps = ps;
    head->dim = dim;
    head->n_classes = n_classes;
    return GTL_STATUS_OK;
}

gtl_status gtl__cnn_head_init_weights(gtl__cnn_head *head, gtl__rng *rng)
{
    if (head == NULL || head->ps == NULL || rng == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn head: init_weights: NULL argument");
    if (!head->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn head: init_weights before the parameter "
                          "set is finalized");
    float bound = (float)(1.0 / sqrt((double)head->dim));
    gtl__tensor *w = gtl__paramset_get(head->ps, head->weight);
    gtl__tensor *b = gtl__paramset_get(head->ps, head->bias);
    gtl__rng_fill_uniform(rng, w->data, w->n, -bound, bound);
    gtl__rng_fill_uniform(rng, b->data, b->n, -bound, bound);
    return GTL_STATUS_OK;
}

gtl_status gtl__cnn_head_forward(gtl__cnn_head *head, gtl__tape *tape, gtl__tensor *feat,
                                 gtl__tensor **out_logits)
{
    char s1[64];
    if (out_logits == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn head: NULL out");
    *out_logits = NULL;
    if (head == NULL || head->ps == NULL || tape == NULL || feat == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn head: NULL argument");
    if (!head->ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "cnn head: parameters not finalized");
    if (feat->nd != 2 || feat->ne[1] != head->dim)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn head: features %s, want (B, %lld)",
                          gtl__shape_str(feat, s1, sizeof s1), (long long)head->dim);
    return gtl__op_linear(tape, feat, gtl__paramset_get(head->ps, head->weight),
                          gtl__paramset_get(head->ps, head->bias), GTL__ACT_NONE, out_logits);
}

gtl_status gtl__cnn_supervised_loss(gtl__cnn *cnn, gtl__cnn_head *head, gtl__tape *tape,
                                    gtl__tensor *image, const int64_t *labels,
                                    gtl__tensor **out_loss, int64_t *out_correct)
{
    if (out_correct != NULL)
        *out_correct = 0;
    if (out_loss == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn supervised loss: NULL out");
    *out_loss = NULL;
    if (cnn == NULL || head == NULL || labels == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn supervised loss: NULL argument");
    if (head->dim != gtl__cnn_feature_dim(&cnn->cfg))
        return gtl__error(GTL_STATUS_INVALID_ARG, "cnn supervised loss: head takes %lld "
                          "features, the backbone gives %lld", (long long)head->dim,
                          (long long)gtl__cnn_feature_dim(&cnn->cfg));
    /* Labels first, so a bad label costs no forward pass. */
    for (int64_t i = 0; image != NULL && image->nd >= 1 && i < image->ne[0]; i++)
        if (labels[i] < 0 || labels[i] >= head->n_classes)
            return gtl__error(GTL_STATUS_INVALID_ARG, "cnn supervised loss: label %lld of row "
                              "%lld is outside [0, %lld)", (long long)labels[i], (long long)i,
                              (long long)head->n_classes);
    gtl__tensor *feat, *logits;
    gtl_status st = gtl__cnn_forward(cnn, tape, image, &feat);
    if (st == GTL_STATUS_OK)
        st = gtl__cnn_head_forward(head, tape, feat, &logits);
    if (st == GTL_STATUS_OK)
        st = gtl__op_cross_entropy(tape, logits, labels, out_loss);
    if (st != GTL_STATUS_OK)
        return st;
    if (out_correct != NULL) {
        int64_t nb = logits->ne[0], nc = logits->ne[1], correct = 0;
        for (int64_t i = 0; i < nb; i++) {
            const float *row = logits->data + i * nc; // (C)
            int64_t best = 0;
            for (int64_t k = 1; k < nc; k++)
                if (row[k] > row[best])
                    best = k;
            correct += best == labels[i];
        }
        *out_correct = correct;
    }
    return GTL_STATUS_OK;
}
