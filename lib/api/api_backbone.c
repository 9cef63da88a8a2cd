/* Public backbone functions (include/gtl/backbone.h): creation, settings,
 * inference, supervised training and checkpoints. The architectures sit
 * behind gtl__bb_arch (api_backbone.h); file embedding and the feature cache
 * are in api_backbone_files.c.
 *
 * Backbone checkpoint (lib/io/ckpt.h format):
 *   meta    "format" = "libgtl-backbone", "format.version" = 1, "libgtl.version",
 *           "arch" ("vit" / "cnn") and the architecture's configuration
 *           ("vit.width", ...), "backbone.<KEY>" for each writable setting,
 *           "rng.spare", "rng.has_spare"
 *   tensors every parameter by name (f32; "head.weight", "head.bias" when
 *           there is a head), "buffers.<name>" for the architecture's buffers,
 *           "rng.state" (4 x i64) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_backbone.h"
#include "gtl/version.h"
#include "ops/ops.h"
#include "optim/optim.h"

#define BB_FORMAT "libgtl-backbone"
#define BB_FORMAT_VERSION 1

typedef struct bb_key {
    const char *name;
    bool readonly;
    int64_t lo, hi, def;
    bool is_f32;           /* an f32 key: the bounds and default below */
    float flo, fhi, fdef;
    bool optional;         /* may be absent from checkpoints (added after format 1) */
} bb_key;

/* Bounds of TRAINABLE_BLOCKS depend on the network; NUM_CLASSES also refuses 1. */
static const bb_key keys[GTL__BB_NKEYS] = {
    [GTL_BACKBONE_IMAGE_SIZE] = {"IMAGE_SIZE", true, 1, 65536, 0},
    [GTL_BACKBONE_FEATURE_DIM] = {"FEATURE_DIM", true, 1, INT64_MAX, 0},
    [GTL_BACKBONE_FEATURE_PARTS] = {"FEATURE_PARTS", false, 1, 3, 3},
    [GTL_BACKBONE_BF16] = {"BF16", false, 0, 1, 0},
    [GTL_BACKBONE_SEED] = {"SEED", false, 0, INT64_MAX, 0},
    [GTL_BACKBONE_TRAINABLE_BLOCKS] = {"TRAINABLE_BLOCKS", false, 0, 4096, 0},
    [GTL_BACKBONE_NUM_CLASSES] = {"NUM_CLASSES", false, 0, (int64_t)1 << 20, 0},
    [GTL_BACKBONE_BATCH_SIZE] = {"BATCH_SIZE", false, 1, 4096, 8},
    [GTL_BACKBONE_LOSS] = {"LOSS", false, 0, 2, GTL_BACKBONE_LOSS_CE, .optional = true},
    [GTL_BACKBONE_TEMPERATURE] = {"TEMPERATURE", false, .is_f32 = true, .flo = 0.01f,
                                  .fhi = 10.0f, .fdef = 0.1f, .optional = true},
    [GTL_BACKBONE_SUPCON_WEIGHT] = {"SUPCON_WEIGHT", false, .is_f32 = true, .flo = 0.0f,
                                    .fhi = 100.0f, .fdef = 1.0f, .optional = true},
};

static bool key_valid(int key)
{
    return key >= 0 && key < GTL__BB_NKEYS;
}

/* ---- construction -------------------------------------------------------- */

gtl_status gtl__bb_alloc(gtl_backbone **out_bb)
{
    *out_bb = NULL;
    gtl_backbone *bb = gtl__calloc(1, sizeof *bb);
    if (bb == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "backbone: out of memory");
    for (int k = 0; k < GTL__BB_NKEYS; k++) {
        bb->iv[k] = keys[k].def;
        bb->fv[k] = keys[k].fdef;
    }
    bb->head_w = bb->head_b = -1;
    gtl__rng_seed(&bb->rng, 0);
    gtl_status st = gtl__ctx_create(&bb->ctx);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_create(bb->ctx, &bb->rng, &bb->tape);
    if (st != GTL_STATUS_OK) {
        gtl_backbone_destroy(bb);
        return st;
    }
    *out_bb = bb;
    return GTL_STATUS_OK;
}

void gtl__bb_paramset_free(gtl__paramset *ps)
{
    if (ps == NULL)
        return;
    gtl__paramset_fini(ps);
    gtl__free(ps);
}

gtl_status gtl__bb_new_paramset(gtl__paramset **out_ps)
{
    *out_ps = gtl__calloc(1, sizeof **out_ps);
    if (*out_ps == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "backbone: out of memory");
    gtl__paramset_init(*out_ps);
    return GTL_STATUS_OK;
}

/* Floats of the network's part of a paramset blob (the head follows it). */
static int64_t net_floats(const gtl__paramset *ps, int64_t n_net)
{
    return n_net < ps->n_params ? ps->offsets[n_net] : ps->n_total;
}

gtl_status gtl__bb_install(gtl_backbone *bb, const gtl__bb_arch *arch, void *net,
                           gtl__paramset *ps, int64_t n_classes)
{
    int64_t n_net = ps->n_params, hw = -1, hb = -1;
    gtl_status st = GTL_STATUS_OK;
    if (n_classes >= 2) {
        int64_t f = arch->feature_dim(net, bb->iv[GTL_BACKBONE_FEATURE_PARTS]);
        int64_t ne_w[2] = {n_classes, f};
        st = gtl__paramset_add(ps, "head.weight", 2, ne_w, &hw);
        if (st == GTL_STATUS_OK)
            st = gtl__paramset_add(ps, "head.bias", 1, &n_classes, &hb);
    }
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_finalize(ps);
    if (st != GTL_STATUS_OK) {
        arch->destroy(net);
        gtl__bb_paramset_free(ps);
        return st;
    }
    if (bb->net != NULL)
        bb->arch->destroy(bb->net);
    gtl__bb_paramset_free(bb->ps);
    bb->arch = arch;
    bb->net = net;
    bb->ps = ps;
    bb->n_net_params = n_net;
    bb->head_w = hw;
    bb->head_b = hb;
    bb->iv[GTL_BACKBONE_NUM_CLASSES] = n_classes >= 2 ? n_classes : 0;
    bb->sum_valid = false;
    return GTL_STATUS_OK;
}

/* PyTorch's nn.Linear default for the head: U(-1/sqrt(F), 1/sqrt(F)). */
static void init_head(gtl_backbone *bb)
{
    if (bb->head_w < 0)
        return;
    gtl__tensor *w = gtl__paramset_get(bb->ps, bb->head_w);
    gtl__tensor *b = gtl__paramset_get(bb->ps, bb->head_b);
    float bound = (float)(1.0 / sqrt((double)w->ne[1]));
    gtl__rng_fill_uniform(&bb->rng, w->data, w->n, -bound, bound);
    gtl__rng_fill_uniform(&bb->rng, b->data, b->n, -bound, bound);
}

/* A new paramset with the same network and a head for n_classes (0: none),
 * the network's values and buffers copied, a fresh head. The head depends on
 * F, so FEATURE_PARTS changes go through here too. */
static gtl_status rebuild(gtl_backbone *bb, int64_t n_classes)
{
    gtl__paramset *ps = NULL;
    void *net = NULL;
    const gtl__bb_arch *arch = bb->arch;
    gtl_status st = gtl__bb_new_paramset(&ps);
    if (st != GTL_STATUS_OK)
        return st;
    st = arch->create_like(bb->net, ps, &net);
    if (st != GTL_STATUS_OK) {
        gtl__bb_paramset_free(ps);
        return st;
    }
    gtl__paramset *old_ps = bb->ps;
    void *old_net = bb->net;
    int64_t old_n = bb->n_net_params;
    /* Keep the old network alive until its values are copied. */
    bb->net = NULL;
    bb->ps = NULL;
    st = gtl__bb_install(bb, arch, net, ps, n_classes);
    if (st != GTL_STATUS_OK) {
        bb->net = old_net;
        bb->ps = old_ps;
        return st;
    }
    GTL_ASSERT(net_floats(ps, bb->n_net_params) == net_floats(old_ps, old_n));
    memcpy(ps->data, old_ps->data, (size_t)net_floats(old_ps, old_n) * sizeof(float));
    gtl__paramset *nb = arch->buffers != NULL ? arch->buffers(net) : NULL;
    gtl__paramset *ob = arch->buffers != NULL ? arch->buffers(old_net) : NULL;
    if (nb != NULL && ob != NULL)
        memcpy(nb->data, ob->data, (size_t)ob->n_total * sizeof(float));
    arch->destroy(old_net);
    gtl__bb_paramset_free(old_ps);
    init_head(bb);
    gtl__bb_params_changed(bb);
    /* The new network starts fully trainable: apply the setting again. */
    return arch->set_trainable(net, bb->iv[GTL_BACKBONE_TRAINABLE_BLOCKS]);
}

static gtl_status apply_default_trainable(gtl_backbone *bb)
{
    int64_t k = bb->arch->default_trainable < 0 ? bb->arch->max_trainable(bb->net)
                                                : bb->arch->default_trainable;
    bb->iv[GTL_BACKBONE_TRAINABLE_BLOCKS] = k;
    return bb->arch->set_trainable(bb->net, k);
}

gtl_status gtl_backbone_create(gtl_backbone_preset preset, gtl_backbone **out_backbone)
{
    const char *fn = "gtl_backbone_create";
    gtl__clear_error();
    if (out_backbone == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_backbone is NULL", fn);
    *out_backbone = NULL;
    if ((int)preset < GTL_BACKBONE_CLIP_VIT_B16 || (int)preset > GTL_BACKBONE_RESNET_SMALL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown preset %d", fn, (int)preset);
    gtl_backbone *bb = NULL;
    gtl__paramset *ps = NULL;
    void *net = NULL;
    gtl_status st = gtl__bb_alloc(&bb);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__bb_new_paramset(&ps);
    if (st != GTL_STATUS_OK)
        goto out_destroy;
    const gtl__bb_arch *arch = &gtl__bb_arch_vit;
    if (preset == GTL_BACKBONE_RESNET_SMALL) {
        arch = gtl__bb_arch_cnn;
        st = gtl__bb_cnn_create(preset, ps, &net);
        /* One feature part: the pooled map. */
        bb->iv[GTL_BACKBONE_FEATURE_PARTS] = 1;
    } else {
        st = gtl__bb_vit_create(preset, ps, &net);
    }
    if (st != GTL_STATUS_OK) {
        gtl__bb_paramset_free(ps);
        goto out_destroy;
    }
    st = gtl__bb_install(bb, arch, net, ps, 0);
    if (st == GTL_STATUS_OK)
        st = bb->arch->init_weights(bb->net, &bb->rng);
    if (st == GTL_STATUS_OK)
        st = apply_default_trainable(bb);
    if (st != GTL_STATUS_OK)
        goto out_destroy;
    bb->fresh = true;
    *out_backbone = bb;
    return GTL_STATUS_OK;
out_destroy:
    gtl_backbone_destroy(bb);
    return st;
}

void gtl_backbone_destroy(gtl_backbone *backbone)
{
    if (backbone == NULL)
        return;
    if (backbone->net != NULL)
        backbone->arch->destroy(backbone->net);
    gtl__bb_paramset_free(backbone->ps);
    gtl__tape_destroy(backbone->tape);
    gtl__ctx_destroy(backbone->ctx);
    gtl__free(backbone->cache_dir);
    gtl__free(backbone);
}

/* ---- settings ------------------------------------------------------------ */

int64_t gtl__bb_feature_dim(const gtl_backbone *bb)
{
    return bb->arch->feature_dim(bb->net, bb->iv[GTL_BACKBONE_FEATURE_PARTS]);
}

void gtl__bb_params_changed(gtl_backbone *bb)
{
    bb->sum_valid = false;
    bb->arch->params_changed(bb->net);
}

gtl_status gtl_backbone_set_i64(gtl_backbone *backbone, gtl_backbone_param key, int64_t value)
{
    const char *fn = "gtl_backbone_set_i64";
    gtl__clear_error();
    if (backbone == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: backbone is NULL", fn);
    if (!key_valid((int)key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown key %d", fn, (int)key);
    const bb_key *k = &keys[key];
    gtl_backbone *bb = backbone;
    if (k->readonly)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is read-only", fn, k->name);
    if (k->is_f32)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is an f32 setting "
                          "(gtl_backbone_set_f32)", fn, k->name);
    if ((key == GTL_BACKBONE_FEATURE_PARTS && !bb->arch->has_feature_parts) ||
        (key == GTL_BACKBONE_BF16 && !bb->arch->has_bf16))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s does not apply to the %s backbone", fn,
                          k->name, bb->arch->name);
    int64_t hi = key == GTL_BACKBONE_TRAINABLE_BLOCKS ? bb->arch->max_trainable(bb->net) : k->hi;
    if (value < k->lo || value > hi || (key == GTL_BACKBONE_NUM_CLASSES && value == 1))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s = %lld is outside [%lld, %lld]%s", fn,
                          k->name, (long long)value, (long long)k->lo, (long long)hi,
                          key == GTL_BACKBONE_NUM_CLASSES ? " or is 1" : "");
    gtl_status st = GTL_STATUS_OK;
    switch (key) {
    case GTL_BACKBONE_SEED:
        bb->iv[key] = value;
        gtl__rng_seed(&bb->rng, (uint64_t)value);
        if (bb->fresh) {
            /* Weights never trained nor loaded: they become the new seed's. */
            st = bb->arch->init_weights(bb->net, &bb->rng);
            init_head(bb);
            gtl__bb_params_changed(bb);
        }
        return st;
    case GTL_BACKBONE_TRAINABLE_BLOCKS:
        st = bb->arch->set_trainable(bb->net, value);
        if (st == GTL_STATUS_OK)
            bb->iv[key] = value;
        return st;
    case GTL_BACKBONE_NUM_CLASSES:
        if (value == bb->iv[key])
            return GTL_STATUS_OK;
        return rebuild(bb, value);
    case GTL_BACKBONE_FEATURE_PARTS: {
        int64_t old = bb->iv[key];
        if (value == old)
            return GTL_STATUS_OK;
        bb->iv[key] = value;
        /* The head's input size follows F. */
        if (bb->head_w >= 0) {
            st = rebuild(bb, bb->iv[GTL_BACKBONE_NUM_CLASSES]);
            if (st != GTL_STATUS_OK)
                bb->iv[key] = old;
        }
        return st;
    }
    default:
        bb->iv[key] = value;
        return GTL_STATUS_OK;
    }
}

gtl_status gtl_backbone_get_i64(const gtl_backbone *backbone, gtl_backbone_param key,
                                int64_t *out_value)
{
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0;
    if (backbone == NULL || out_value == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_backbone_get_i64: NULL argument");
    if (!key_valid((int)key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_backbone_get_i64: unknown key %d",
                          (int)key);
    if (keys[key].is_f32)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_backbone_get_i64: %s is an f32 setting "
                          "(gtl_backbone_get_f32)", keys[key].name);
    const gtl_backbone *bb = backbone;
    switch (key) {
    case GTL_BACKBONE_IMAGE_SIZE:
        *out_value = bb->arch->image_size(bb->net);
        break;
    case GTL_BACKBONE_FEATURE_DIM:
        *out_value = gtl__bb_feature_dim(bb);
        break;
    default:
        *out_value = bb->iv[key];
    }
    return GTL_STATUS_OK;
}

gtl_status gtl_backbone_set_f32(gtl_backbone *backbone, gtl_backbone_param key, float value)
{
    const char *fn = "gtl_backbone_set_f32";
    gtl__clear_error();
    if (backbone == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: backbone is NULL", fn);
    if (!key_valid((int)key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown key %d", fn, (int)key);
    const bb_key *k = &keys[key];
    if (!k->is_f32)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is an integer setting "
                          "(gtl_backbone_set_i64)", fn, k->name);
    if (!(value >= k->flo && value <= k->fhi)) /* also refuses NaN */
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s = %g is outside [%g, %g]", fn,
                          k->name, (double)value, (double)k->flo, (double)k->fhi);
    backbone->fv[key] = value;
    return GTL_STATUS_OK;
}

gtl_status gtl_backbone_get_f32(const gtl_backbone *backbone, gtl_backbone_param key,
                                float *out_value)
{
    const char *fn = "gtl_backbone_get_f32";
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0.0f;
    if (backbone == NULL || out_value == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if (!key_valid((int)key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown key %d", fn, (int)key);
    if (!keys[key].is_f32)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is an integer setting "
                          "(gtl_backbone_get_i64)", fn, keys[key].name);
    *out_value = backbone->fv[key];
    return GTL_STATUS_OK;
}

/* ---- checksum ------------------------------------------------------------ */

const uint8_t *gtl__bb_checksum(gtl_backbone *bb)
{
    if (bb->sum_valid)
        return bb->checksum;
    gtl__sha256 s;
    gtl__sha256_init(&s);
    static const char tag[] = "libgtl-backbone-checksum-v1";
    gtl__sha256_update(&s, tag, sizeof tag);
    gtl__sha256_update(&s, bb->arch->name, strlen(bb->arch->name) + 1);
    bb->arch->hash_config(bb->net, &s);
    gtl__sha256_update(&s, bb->ps->data,
                       (size_t)net_floats(bb->ps, bb->n_net_params) * sizeof(float));
    gtl__paramset *buf = bb->arch->buffers != NULL ? bb->arch->buffers(bb->net) : NULL;
    if (buf != NULL)
        gtl__sha256_update(&s, buf->data, (size_t)buf->n_total * sizeof(float));
    gtl__sha256_final(&s, bb->checksum);
    bb->sum_valid = true;
    return bb->checksum;
}

/* ---- inference ----------------------------------------------------------- */

gtl_status gtl__bb_infer(gtl_backbone *bb, const float *images, int64_t n, float *dst)
{
    int64_t s = bb->arch->image_size(bb->net), f = gtl__bb_feature_dim(bb);
    int64_t per = 3 * s * s, bs = bb->iv[GTL_BACKBONE_BATCH_SIZE];
    for (int64_t i = 0; i < n; i += bs) {
        int64_t m = n - i < bs ? n - i : bs;
        gtl_status st = bb->arch->infer(bb, images + i * per, m, dst + i * f);
        if (st != GTL_STATUS_OK)
            return st;
    }
    return GTL_STATUS_OK;
}

/* Images: n x 3 x S x S finite floats. */
static gtl_status check_images(const gtl_backbone *bb, const float *images, int64_t n,
                               const char *fn)
{
    int64_t s = bb->arch->image_size(bb->net), per = 3 * s * s;
    for (int64_t i = 0; i < n * per; i++)
        if (!isfinite(images[i]))
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: value %lld of image %lld is not "
                              "finite", fn, (long long)(i % per), (long long)(i / per));
    return GTL_STATUS_OK;
}

gtl_status gtl_backbone_embed(gtl_backbone *backbone, const float *images, int64_t n,
                              float *dst, size_t capacity)
{
    const char *fn = "gtl_backbone_embed";
    gtl__clear_error();
    if (backbone == NULL || images == NULL || dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if (n < 1 || n > ((int64_t)1 << 31))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n must be >= 1 (got %lld)", fn,
                          (long long)n);
    int64_t f = gtl__bb_feature_dim(backbone);
    if (capacity < (size_t)(n * f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < n * F = %lld", fn,
                          capacity, (long long)(n * f));
    gtl_status st = check_images(backbone, images, n, fn);
    if (st == GTL_STATUS_OK)
        st = gtl__bb_infer(backbone, images, n, dst);
    return st;
}

/* ---- supervised training ------------------------------------------------- */

/* The supervised contrastive loss of gtl_backbone_loss (backbone.h), composed
 * of tape ops (each gradient-checked): z = rows of feat L2-normalised, logits
 * S = z z^T / tau (one matmul) with the diagonal pushed to -1e4 (an image is not its own
 * candidate), log-softmax over each row, then -sum(W * logP) where
 * W[i][p] = 1 / (|P(i)| A) for the positives p of anchor i and A anchors with
 * positives. With no anchor having a positive the loss is 0 (constant). With
 * out_nn_acc, the fraction of images whose most similar other image has
 * their label (leave-one-out nearest neighbour on the batch). */
static gtl_status supcon_loss(gtl__tape *t, gtl__tensor *feat, const int64_t *labels,
                              float tau, gtl__tensor **out, float *out_nn_acc)
{
    int64_t n = feat->ne[0], nn[2] = {n, n};
    gtl__tensor *z = NULL, *s = NULL, *mask = NULL, *w = NULL, *lp = NULL, *prod = NULL;
    gtl_status st = gtl__tape_leaf(t, 2, nn, NULL, false, &mask);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_leaf(t, 2, nn, NULL, false, &w);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t anchors = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t np = 0;
        for (int64_t j = 0; j < n; j++)
            np += j != i && labels[j] == labels[i];
        anchors += np > 0;
        mask->data[i * n + i] = -1e4f;
    }
    for (int64_t i = 0; i < n && anchors > 0; i++) {
        int64_t np = 0;
        for (int64_t j = 0; j < n; j++)
            np += j != i && labels[j] == labels[i];
        for (int64_t j = 0; j < n && np > 0; j++)
            if (j != i && labels[j] == labels[i])
                w->data[i * n + j] = -1.0f / ((float)np * (float)anchors);
    }
    st = gtl__op_l2_normalize(t, feat, 1e-12f, &z);
    if (st == GTL_STATUS_OK)
        st = gtl__op_matmul(t, z, z, false, true, 1.0f / tau, &s);
    if (st == GTL_STATUS_OK && out_nn_acc != NULL) {
        int64_t correct = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t best = i == 0 ? 1 : 0;
            for (int64_t j = 0; j < n; j++)
                if (j != i && s->data[i * n + j] > s->data[i * n + best])
                    best = j;
            correct += labels[best] == labels[i];
        }
        *out_nn_acc = (float)correct / (float)n;
    }
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(t, s, mask, &s);
    if (st == GTL_STATUS_OK)
        st = gtl__op_log_softmax(t, s, &lp);
    if (st == GTL_STATUS_OK)
        st = gtl__op_mul(t, lp, w, &prod);
    if (st == GTL_STATUS_OK)
        st = gtl__op_sum(t, prod, -1, false, out);
    return st;
}

/* Frozen parameters carry the paramset's frozen flag: the optimizer skips
 * them without a group. */
gtl_status gtl_backbone_train_step(gtl_backbone *backbone, gtl_optimizer *optimizer,
                                   const float *images, int64_t n, const int64_t *labels,
                                   float *stats, size_t n_stats)
{
    const char *fn = "gtl_backbone_train_step";
    gtl__clear_error();
    if (stats != NULL)
        memset(stats, 0, n_stats * sizeof(float));
    if (backbone == NULL || optimizer == NULL || images == NULL || labels == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    gtl_backbone *bb = backbone;
    if (n < 2 || n > ((int64_t)1 << 31))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: batch size must be >= 2 (got %lld)", fn,
                          (long long)n);
    int64_t c = bb->iv[GTL_BACKBONE_NUM_CLASSES], loss_kind = bb->iv[GTL_BACKBONE_LOSS];
    bool use_head = loss_kind != GTL_BACKBONE_LOSS_SUPCON;
    bool use_supcon = loss_kind != GTL_BACKBONE_LOSS_CE;
    if (use_head && (c < 2 || bb->head_w < 0))
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: no classes set (GTL_BACKBONE_NUM_CLASSES)",
                          fn);
    if (bb->iv[GTL_BACKBONE_TRAINABLE_BLOCKS] == 0)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: nothing trainable: the backbone is frozen "
                          "(GTL_BACKBONE_TRAINABLE_BLOCKS = 0)", fn);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || (use_head && labels[i] >= c))
            return gtl__error(GTL_STATUS_INVALID_ARG, use_head ? "%s: label %lld of image %lld "
                              "is outside [0, %lld)" : "%s: label %lld of image %lld is "
                              "negative", fn, (long long)labels[i], (long long)i, (long long)c);
    gtl_status st = check_images(bb, images, n, fn);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__paramset *ps = bb->ps;
    st = gtl__paramset_alloc_grad(ps);
    if (st != GTL_STATUS_OK)
        return st;

    /* Everything a failed step must give back: buffers (CNN running
     * statistics, updated by the forward) and the random state. */
    gtl__paramset *buf = bb->arch->buffers != NULL ? bb->arch->buffers(bb->net) : NULL;
    float *buf_backup = NULL;
    if (buf != NULL && buf->n_total > 0) {
        buf_backup = gtl__malloc((size_t)buf->n_total * sizeof(float));
        if (buf_backup == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        memcpy(buf_backup, buf->data, (size_t)buf->n_total * sizeof(float));
    }
    gtl__rng rng0 = bb->rng;
    gtl__tape *t = bb->tape;
    bool g0 = t->grad_enabled, t0 = t->training;
    gtl__tape_reset(t);
    t->grad_enabled = true;
    t->training = true;
    gtl__paramset_zero_grad(ps);

    int64_t s = bb->arch->image_size(bb->net);
    int64_t ne[4] = {n, 3, s, s};
    gtl__tensor *x = NULL, *feat = NULL, *logits = NULL, *loss = NULL;
    float local[4] = {0};
    st = gtl__tape_leaf(t, 4, ne, images, false, &x);
    if (st == GTL_STATUS_OK)
        st = bb->arch->forward(bb, x, &feat);
    if (st == GTL_STATUS_OK && use_head)
        st = gtl__op_linear(t, feat, gtl__paramset_get(ps, bb->head_w),
                            gtl__paramset_get(ps, bb->head_b), GTL__ACT_NONE, &logits);
    if (st == GTL_STATUS_OK && use_head)
        st = gtl__op_cross_entropy(t, logits, labels, &loss);
    if (st == GTL_STATUS_OK && use_supcon) {
        gtl__tensor *sc = NULL;
        st = supcon_loss(t, feat, labels, bb->fv[GTL_BACKBONE_TEMPERATURE], &sc,
                         use_head ? NULL : &local[1]);
        if (st == GTL_STATUS_OK && use_head)
            st = gtl__op_scale(t, sc, bb->fv[GTL_BACKBONE_SUPCON_WEIGHT], 0.0f, &sc);
        if (st == GTL_STATUS_OK)
            st = use_head ? gtl__op_add(t, loss, sc, &loss) : (loss = sc, GTL_STATUS_OK);
    }
    if (st == GTL_STATUS_OK && !isfinite(loss->data[0]))
        st = gtl__error(GTL_STATUS_NUMERIC, "%s: the loss is %s; nothing changed", fn,
                        isnan(loss->data[0]) ? "NaN" : "infinite");
    if (st == GTL_STATUS_OK)
        st = gtl__tape_backward(t, loss);
    if (st == GTL_STATUS_OK) {
        int64_t correct = 0;
        for (int64_t i = 0; use_head && i < n; i++) {
            const float *row = logits->data + i * c;
            int64_t best = 0;
            for (int64_t k = 1; k < c; k++)
                if (row[k] > row[best])
                    best = k;
            correct += best == labels[i];
        }
        local[0] = loss->data[0];
        if (use_head)
            local[1] = (float)correct / (float)n;
        if (optimizer->bound &&
            (optimizer->n_params != ps->n_params || optimizer->n_total != ps->n_total)) {
            gtl__log(GTL_LOG_INFO, "%s: the optimizer's state was for other parameters; reset",
                     fn);
            gtl__optim_reset(optimizer);
        }
        local[3] = (float)gtl__optim_lr_at(&optimizer->cfg, optimizer->step);
        /* NUMERIC here (a non-finite gradient) changes nothing either. */
        st = gtl__optim_step(optimizer, ps, NULL, 0, &local[2]);
    }
    gtl__tape_reset(t);
    t->grad_enabled = g0;
    t->training = t0;
    if (st != GTL_STATUS_OK) {
        if (buf_backup != NULL)
            memcpy(buf->data, buf_backup, (size_t)buf->n_total * sizeof(float));
        bb->rng = rng0;
        gtl__paramset_zero_grad(ps);
        gtl__free(buf_backup);
        return st;
    }
    gtl__free(buf_backup);
    bb->fresh = false;
    gtl__bb_params_changed(bb);
    if (stats != NULL)
        memcpy(stats, local, (n_stats < 4 ? n_stats : 4) * sizeof(float));
    return GTL_STATUS_OK;
}

/* ---- checkpoints ----------------------------------------------------------- */

gtl_status gtl_backbone_save(const gtl_backbone *backbone, const char *path)
{
    const char *fn = "gtl_backbone_save";
    gtl__clear_error();
    if (backbone == NULL || path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: backbone and path must not be NULL", fn);
    gtl_backbone *bb = (gtl_backbone *)backbone; /* read only */
    gtl__ckpt_writer *w = NULL;
    gtl_status st = gtl__ckpt_writer_create(-1, &w);
    if (st != GTL_STATUS_OK)
        return st;
    char key[96];
    st = gtl__ckpt_add_meta_str(w, "format", BB_FORMAT);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "format.version", BB_FORMAT_VERSION);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_str(w, "libgtl.version", GTL_VERSION_STRING);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_str(w, "arch", bb->arch->name);
    if (st == GTL_STATUS_OK)
        st = bb->arch->save_config(bb->net, w);
    for (int k = 0; k < GTL__BB_NKEYS && st == GTL_STATUS_OK; k++) {
        if (keys[k].readonly)
            continue;
        snprintf(key, sizeof key, "backbone.%s", keys[k].name);
        st = keys[k].is_f32 ? gtl__ckpt_add_meta_f64(w, key, (double)bb->fv[k])
                            : gtl__ckpt_add_meta_i64(w, key, bb->iv[k]);
    }
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_f64(w, "rng.spare", bb->rng.spare);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "rng.has_spare", bb->rng.has_spare);
    int64_t four = 4;
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_tensor(w, "rng.state", GTL__CKPT_I64, 1, &four, bb->rng.s);
    for (int64_t i = 0; i < bb->ps->n_params && st == GTL_STATUS_OK; i++) {
        const gtl__tensor *t = &bb->ps->params[i];
        st = gtl__ckpt_add_tensor(w, bb->ps->names[i], GTL__CKPT_F32, t->nd, t->ne, t->data);
    }
    gtl__paramset *buf = bb->arch->buffers != NULL ? bb->arch->buffers(bb->net) : NULL;
    for (int64_t i = 0; buf != NULL && i < buf->n_params && st == GTL_STATUS_OK; i++) {
        const gtl__tensor *t = &buf->params[i];
        snprintf(key, sizeof key, "buffers.%s", buf->names[i]);
        st = gtl__ckpt_add_tensor(w, key, GTL__CKPT_F32, t->nd, t->ne, t->data);
    }
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_write(w, path);
    gtl__ckpt_writer_destroy(w);
    return st;
}

static gtl_status read_exact(gtl__ckpt_reader *r, const char *path, const char *name,
                             const gtl__tensor *t)
{
    const gtl__ckpt_tensor_info *ti = gtl__ckpt_find(r, name);
    if (ti == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is missing", path, name);
    bool ok = ti->nd == t->nd && ti->dtype == GTL__CKPT_F32;
    for (int32_t i = 0; ok && i < t->nd; i++)
        ok = ti->ne[i] == t->ne[i];
    if (!ok) {
        char s1[64];
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s has the wrong type or shape (want "
                          "f32 %s)", path, name, gtl__shape_str(t, s1, sizeof s1));
    }
    return gtl__ckpt_read_f32(r, name, t->data, t->n);
}

static gtl_status load_ckpt(gtl_backbone *bb, gtl__ckpt_reader *r, const char *path)
{
    const char *fmt = NULL, *arch_name = NULL;
    int64_t ver = 0;
    char key[96];
    gtl_status st = gtl__ckpt_meta_str(r, "format", &fmt);
    if (st == GTL_STATUS_OK && strcmp(fmt, BB_FORMAT) != 0)
        st = gtl__error(GTL_STATUS_FORMAT, "%s: not a libgtl backbone (format \"%s\")", path,
                        fmt);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "format.version", &ver);
    if (st == GTL_STATUS_OK && ver != BB_FORMAT_VERSION)
        st = gtl__error(ver > BB_FORMAT_VERSION ? GTL_STATUS_UNSUPPORTED : GTL_STATUS_FORMAT,
                        "%s: backbone format version %lld (this libgtl reads %d)", path,
                        (long long)ver, BB_FORMAT_VERSION);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_str(r, "arch", &arch_name);
    if (st != GTL_STATUS_OK)
        return st;
    const gtl__bb_arch *arch = NULL;
    if (strcmp(arch_name, gtl__bb_arch_vit.name) == 0)
        arch = &gtl__bb_arch_vit;
    else if (strcmp(arch_name, gtl__bb_arch_cnn->name) == 0)
        arch = gtl__bb_arch_cnn;
    else
        return gtl__error(GTL_STATUS_UNSUPPORTED, "%s: unknown backbone architecture \"%s\"",
                          path, arch_name);
    /* Settings first: the head's shape depends on FEATURE_PARTS and NUM_CLASSES. */
    int64_t iv[GTL__BB_NKEYS];
    float fv[GTL__BB_NKEYS];
    memcpy(iv, bb->iv, sizeof iv);
    memcpy(fv, bb->fv, sizeof fv);
    for (int k = 0; k < GTL__BB_NKEYS && st == GTL_STATUS_OK; k++) {
        if (keys[k].readonly)
            continue;
        snprintf(key, sizeof key, "backbone.%s", keys[k].name);
        if (keys[k].optional && !gtl__ckpt_has_meta(r, key, NULL)) {
            iv[k] = keys[k].def;
            fv[k] = keys[k].fdef;
            continue;
        }
        if (keys[k].is_f32) {
            double v = 0.0;
            st = gtl__ckpt_meta_f64(r, key, &v);
            if (st == GTL_STATUS_OK && !(v >= keys[k].flo && v <= keys[k].fhi))
                st = gtl__error(GTL_STATUS_FORMAT, "%s: %s = %g is out of range", path, key, v);
            fv[k] = (float)v;
            continue;
        }
        st = gtl__ckpt_meta_i64(r, key, &iv[k]);
        if (st == GTL_STATUS_OK &&
            (iv[k] < keys[k].lo || iv[k] > keys[k].hi ||
             (k == GTL_BACKBONE_NUM_CLASSES && iv[k] == 1)))
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s = %lld is out of range", path, key,
                            (long long)iv[k]);
    }
    if (st != GTL_STATUS_OK)
        return st;
    memcpy(bb->iv, iv, sizeof iv);
    memcpy(bb->fv, fv, sizeof fv);
    gtl__paramset *ps = NULL;
    void *net = NULL;
    st = gtl__bb_new_paramset(&ps);
    if (st != GTL_STATUS_OK)
        return st;
    st = arch->create_from_ckpt(r, path, ps, &net);
    if (st != GTL_STATUS_OK) {
        gtl__bb_paramset_free(ps);
        return st;
    }
    st = gtl__bb_install(bb, arch, net, ps, iv[GTL_BACKBONE_NUM_CLASSES]);
    if (st != GTL_STATUS_OK)
        return st;
    if (iv[GTL_BACKBONE_TRAINABLE_BLOCKS] > arch->max_trainable(bb->net))
        return gtl__error(GTL_STATUS_FORMAT, "%s: backbone.TRAINABLE_BLOCKS = %lld is out of "
                          "range", path, (long long)iv[GTL_BACKBONE_TRAINABLE_BLOCKS]);
    for (int64_t i = 0; i < bb->ps->n_params && st == GTL_STATUS_OK; i++)
        st = read_exact(r, path, bb->ps->names[i], &bb->ps->params[i]);
    gtl__paramset *buf = arch->buffers != NULL ? arch->buffers(bb->net) : NULL;
    for (int64_t i = 0; buf != NULL && i < buf->n_params && st == GTL_STATUS_OK; i++) {
        snprintf(key, sizeof key, "buffers.%s", buf->names[i]);
        st = read_exact(r, path, key, &buf->params[i]);
    }
    /* The random state continues where the saved backbone left off. */
    const gtl__ckpt_tensor_info *ti = gtl__ckpt_find(r, "rng.state");
    int64_t has_spare = 0;
    double spare = 0.0;
    if (st == GTL_STATUS_OK && (ti == NULL || ti->dtype != GTL__CKPT_I64 || ti->nd != 1 ||
                                ti->ne[0] != 4))
        st = gtl__error(GTL_STATUS_FORMAT, "%s: rng.state is missing or malformed", path);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_read(r, "rng.state", bb->rng.s, sizeof bb->rng.s);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_f64(r, "rng.spare", &spare);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "rng.has_spare", &has_spare);
    if (st == GTL_STATUS_OK && has_spare != 0 && has_spare != 1)
        st = gtl__error(GTL_STATUS_FORMAT, "%s: rng.has_spare = %lld", path,
                        (long long)has_spare);
    if (st != GTL_STATUS_OK)
        return st;
    bb->rng.spare = spare;
    bb->rng.has_spare = (int32_t)has_spare;
    gtl__bb_params_changed(bb);
    return arch->set_trainable(bb->net, iv[GTL_BACKBONE_TRAINABLE_BLOCKS]);
}

/* The first bytes of path: a libgtl checkpoint, or something else. */
static gtl_status sniff(const char *path, bool *out_ckpt)
{
    *out_ckpt = false;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gtl__error(GTL_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return gtl__error(GTL_STATUS_IO, "%s: read error", path);
    if (got < 8)
        return gtl__error(GTL_STATUS_FORMAT, "%s: too short to be a backbone file (%zu bytes)",
                          path, got);
    *out_ckpt = memcmp(magic, "GTLCKPT", 8) == 0;
    return GTL_STATUS_OK;
}

gtl_status gtl_backbone_load(const char *path, gtl_backbone **out_backbone)
{
    const char *fn = "gtl_backbone_load";
    gtl__clear_error();
    if (out_backbone != NULL)
        *out_backbone = NULL;
    if (path == NULL || out_backbone == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: path and out_backbone must not be NULL",
                          fn);
    bool is_ckpt = false;
    gtl_status st = sniff(path, &is_ckpt);
    if (st != GTL_STATUS_OK)
        return st;
    gtl_backbone *bb = NULL;
    st = gtl__bb_alloc(&bb);
    if (st != GTL_STATUS_OK)
        return st;
    if (is_ckpt) {
        gtl__ckpt_reader *r = NULL;
        st = gtl__ckpt_open(path, &r);
        if (st == GTL_STATUS_OK)
            st = load_ckpt(bb, r, path);
        gtl__ckpt_close(r);
    } else {
        gtl__safetensors *f = NULL;
        st = gtl__safetensors_open(path, &f);
        if (st == GTL_STATUS_FORMAT) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", gtl__error_message());
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s: neither a libgtl backbone checkpoint "
                            "nor a safetensors file (%s)", fn, path, msg);
        }
        if (st == GTL_STATUS_OK)
            st = gtl__bb_vit_load_safetensors(bb, f, path);
        gtl__safetensors_close(f);
    }
    if (st == GTL_STATUS_OK && bb->net == NULL)
        st = gtl__error(GTL_STATUS_INTERNAL, "%s: %s: no network after loading", fn, path);
    if (st != GTL_STATUS_OK) {
        gtl_backbone_destroy(bb);
        return st;
    }
    *out_backbone = bb;
    return GTL_STATUS_OK;
}
