/* The residual CNN behind gtl_backbone (lib/nn/cnn.h, docs/cnn.md): the
 * GTL_BACKBONE_RESNET_SMALL preset and the architecture table. Its batch-norm
 * running statistics are the backbone's buffers: saved in checkpoints, part
 * of the checksum, restored when a training step fails. Inference runs the
 * tape forward in evaluation mode without gradients (running statistics). */
#include <stdio.h>
#include <string.h>

#include "api/api_backbone.h"
#include "nn/cnn.h"

static gtl_status cnn_new(const gtl__cnn_config *cfg, gtl__paramset *ps, void **out_net)
{
    *out_net = NULL;
    gtl__cnn *c = gtl__calloc(1, sizeof *c);
    if (c == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "backbone: out of memory");
    gtl_status st = gtl__cnn_init(c, cfg, ps, NULL);
    if (st != GTL_STATUS_OK) {
        gtl__cnn_fini(c);
        gtl__free(c);
        return st;
    }
    *out_net = c;
    return GTL_STATUS_OK;
}

gtl_status gtl__bb_cnn_create(gtl_backbone_preset preset, gtl__paramset *ps, void **out_net)
{
    gtl__cnn_config cfg;
    *out_net = NULL;
    if (preset != GTL_BACKBONE_RESNET_SMALL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "backbone: preset %d is not a CNN",
                          (int)preset);
    /* The public preset is the stride-2-stem variant (backbone.h). */
    gtl_status st = gtl__cnn_preset("resnet_small_s2", &cfg);
    if (st != GTL_STATUS_OK)
        return st;
    return cnn_new(&cfg, ps, out_net);
}

static gtl_status cnn_create_like(const void *like, gtl__paramset *ps, void **out_net)
{
    return cnn_new(&((const gtl__cnn *)like)->cfg, ps, out_net);
}

static void cnn_destroy(void *net)
{
    if (net == NULL)
        return;
    gtl__cnn_fini(net);
    gtl__free(net);
}

static gtl_status cnn_init_weights(void *net, gtl__rng *rng)
{
    return gtl__cnn_init_weights(net, rng);
}

static int64_t cnn_image_size(const void *net)
{
    return ((const gtl__cnn *)net)->cfg.image_size;
}

static int64_t cnn_feature_dim(const void *net, int64_t parts)
{
    (void)parts;
    return gtl__cnn_feature_dim(&((const gtl__cnn *)net)->cfg);
}

static int64_t cnn_max_trainable(const void *net)
{
    return ((const gtl__cnn *)net)->cfg.stages;
}

/* The last k stages train; the stem trains only with all of them. */
static gtl_status cnn_set_trainable(void *net, int64_t k)
{
    gtl__cnn *c = net;
    return gtl__cnn_freeze_first(c, c->cfg.stages - k);
}

static gtl__paramset *cnn_buffers(void *net)
{
    return &((gtl__cnn *)net)->buffers;
}

static gtl_status cnn_forward(gtl_backbone *bb, gtl__tensor *images, gtl__tensor **out)
{
    return gtl__cnn_forward(bb->net, bb->tape, images, out);
}

static gtl_status cnn_infer(gtl_backbone *bb, const float *images, int64_t n, float *dst)
{
    gtl__tape *t = bb->tape;
    bool g0 = t->grad_enabled, t0 = t->training;
    int64_t s = cnn_image_size(bb->net), f = cnn_feature_dim(bb->net, 0);
    int64_t ne[4] = {n, 3, s, s};
    gtl__tensor *x = NULL, *y = NULL;
    gtl__tape_reset(t);
    t->grad_enabled = false;
    t->training = false;
    gtl_status st = gtl__tape_leaf(t, 4, ne, images, false, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__cnn_forward(bb->net, t, x, &y);
    if (st == GTL_STATUS_OK)
        memcpy(dst, y->data, (size_t)(n * f) * sizeof(float));
    gtl__tape_reset(t);
    t->grad_enabled = g0;
    t->training = t0;
    return st;
}

static void cnn_params_changed(void *net)
{
    (void)net; /* nothing derived from the weights is kept */
}

#define N_CFG 5
static const char *const cfg_keys[N_CFG] = {"cnn.image_size", "cnn.width", "cnn.stages",
                                            "cnn.blocks", "cnn.stem_stride"};

static void cfg_to_array(const gtl__cnn_config *c, int64_t a[N_CFG])
{
    a[0] = c->image_size;
    a[1] = c->width;
    a[2] = c->stages;
    a[3] = c->blocks;
    a[4] = c->stem_stride == 0 ? 1 : c->stem_stride;
}

static gtl_status cnn_save_config(const void *net, gtl__ckpt_writer *w)
{
    int64_t a[N_CFG];
    cfg_to_array(&((const gtl__cnn *)net)->cfg, a);
    gtl_status st = GTL_STATUS_OK;
    for (int i = 0; i < N_CFG && st == GTL_STATUS_OK; i++)
        st = gtl__ckpt_add_meta_i64(w, cfg_keys[i], a[i]);
    return st;
}

static void cnn_hash_config(const void *net, gtl__sha256 *s)
{
    int64_t a[N_CFG];
    cfg_to_array(&((const gtl__cnn *)net)->cfg, a);
    gtl__sha256_update(s, a, sizeof a);
}

static gtl_status cnn_create_from_ckpt(gtl__ckpt_reader *r, const char *path, gtl__paramset *ps,
                                       void **out_net)
{
    int64_t a[N_CFG];
    *out_net = NULL;
    for (int i = 0; i < N_CFG; i++) {
        gtl_status st = gtl__ckpt_meta_i64(r, cfg_keys[i], &a[i]);
        if (st != GTL_STATUS_OK)
            return st;
    }
    gtl__cnn_config c = {a[0], a[1], a[2], a[3], a[4]};
    if (gtl__cnn_config_check(&c) != GTL_STATUS_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", gtl__error_message());
        return gtl__error(GTL_STATUS_FORMAT, "%s: invalid CNN configuration: %s", path, msg);
    }
    return cnn_new(&c, ps, out_net);
}

static const gtl__bb_arch cnn_arch = {
    .name = "cnn",
    .has_feature_parts = false,
    .has_bf16 = false,
    .default_trainable = -1,
    .create_like = cnn_create_like,
    .create_from_ckpt = cnn_create_from_ckpt,
    .destroy = cnn_destroy,
    .init_weights = cnn_init_weights,
    .image_size = cnn_image_size,
    .feature_dim = cnn_feature_dim,
    .max_trainable = cnn_max_trainable,
    .set_trainable = cnn_set_trainable,
    .buffers = cnn_buffers,
    .forward = cnn_forward,
    .infer = cnn_infer,
    .params_changed = cnn_params_changed,
    .save_config = cnn_save_config,
    .hash_config = cnn_hash_config,
};

const gtl__bb_arch *const gtl__bb_arch_cnn = &cnn_arch;
