/* nn/cnn: a small residual CNN ("resnet_small") for training from scratch.
 *
 * The network is a CIFAR-style ResNet with torchvision's BasicBlock:
 *
 *   stem:    conv3x3 (3 -> w, stride 1, no bias) - BN - ReLU
 *   stage i (i = 0 .. stages-1), width w * 2^i, `blocks` BasicBlocks; the
 *            first block of stage i >= 1 has stride 2:
 *              y = ReLU(BN2(conv3x3(ReLU(BN1(conv3x3_stride(x))))) + shortcut(x))
 *            shortcut = identity, or conv1x1_stride - BN when the shape changes
 *   head:    global average pool -> feature (B, F), F = w * 2^(stages-1)
 *
 * Parameter names (behind an optional prefix such as "backbone."):
 *
 *   stem.conv.weight (w, 3, 3, 3), stem.bn.{weight,bias} (w)
 *   stages.{i}.{j}.conv1.weight (Ci, Cin, 3, 3), stages.{i}.{j}.bn1.{weight,bias}
 *   stages.{i}.{j}.conv2.weight (Ci, Ci, 3, 3),  stages.{i}.{j}.bn2.{weight,bias}
 *   stages.{i}.{j}.shortcut.conv.weight (Ci, Cin, 1, 1), ...shortcut.bn.{weight,bias}
 *
 * and in the model's own buffer set (not trained, saved with the model), for
 * every BN layer above: <layer>.running_mean, <layer>.running_var (C).
 * BatchNorm is PyTorch's: eps 1e-5, momentum 0.1, biased batch variance in
 * the forward, unbiased in the running estimate.
 *
 * Shape letters: B batch, S image side, w base width, Ci width of stage i,
 * F feature size. Defaults (resnet_small): S 64, w 32, 4 stages of 2 blocks,
 * F 256, 2,795,040 parameters. See docs/cnn.md.
 *
 * Training and evaluation: gtl__cnn_forward() follows tape->training (batch
 * statistics and running-statistic updates, or running statistics).
 * Frozen parts (gtl__cnn_freeze_first) always run in evaluation mode and, as
 * their parameters need no gradient, record nothing on the tape.
 *
 * Supervised pre-training: gtl__cnn_head is a linear classifier F -> C with
 * cross-entropy (gtl__cnn_supervised_loss). It usually lives in a parameter
 * set of its own, so the number of classes can be chosen after the backbone
 * exists; or in the backbone's set, after the backbone's parameters. */
#ifndef GTL__NN_CNN_H
#define GTL__NN_CNN_H

#include "core/rng.h"
#include "io/safetensors.h"
#include "ops/ops.h"

#define GTL__CNN_BN_EPS 1e-5f
#define GTL__CNN_BN_MOMENTUM 0.1f
#define GTL__CNN_MAX_STAGES 8

typedef struct gtl__cnn_config {
    int64_t image_size; /* S >= 2 (default 64) */
    int64_t width;      /* w: stem and stage-0 channels (default 32) */
    int64_t stages;     /* 1 .. GTL__CNN_MAX_STAGES (default 4) */
    int64_t blocks;     /* BasicBlocks per stage, >= 1 (default 2) */
    int64_t stem_stride; /* 1 or 2 (0 means 1): a stride-2 stem quarters the compute */
} gtl__cnn_config;

/* resnet_small: 64 / 32 / 4 / 2. */
void gtl__cnn_config_default(gtl__cnn_config *cfg);
/* Presets: "resnet_small" (the default), "resnet_small_s2" (the same with a
 * stride-2 stem: stage 0 runs at S/2, about 4x fewer FLOPs) and "tiny"
 * (16 / 4 / 2 / 2, for tests). INVALID_ARG for an unknown name. */
gtl_status gtl__cnn_preset(const char *name, gtl__cnn_config *out_cfg);
/* INVALID_ARG with a message when a config is unusable. */
gtl_status gtl__cnn_config_check(const gtl__cnn_config *cfg);
/* Channels of stage i: w * 2^i. */
int64_t gtl__cnn_stage_width(const gtl__cnn_config *cfg, int64_t stage);
/* F = w * 2^(stages - 1). */
int64_t gtl__cnn_feature_dim(const gtl__cnn_config *cfg);
/* Side of the feature map after stage i (before the global pool). */
int64_t gtl__cnn_stage_side(const gtl__cnn_config *cfg, int64_t stage);

/* A BatchNorm layer: weight and bias in the parameter set, running mean and
 * variance in the buffer set (indices). */
typedef struct gtl__cnn_bn {
    int64_t weight, bias;
    int64_t mean, var;
} gtl__cnn_bn;

typedef struct gtl__cnn_block {
    int64_t conv1, conv2;  /* paramset indices */
    gtl__cnn_bn bn1, bn2;
    int64_t sc_conv;       /* -1: identity shortcut */
    gtl__cnn_bn sc_bn;
    int64_t stride;        /* of conv1 and the shortcut */
} gtl__cnn_block;

typedef struct gtl__cnn {
    gtl__cnn_config cfg;
    gtl__paramset *ps;       /* borrowed; holds the parameters below */
    gtl__paramset buffers;   /* owned, finalized by init: the running statistics */
    int64_t stem_conv;
    gtl__cnn_bn stem_bn;
    gtl__cnn_block *blocks;  /* stages * blocks, stage-major */
    int64_t n_frozen;        /* stages frozen (gtl__cnn_freeze_first); stem with >= 1 */
    float bn_momentum;       /* GTL__CNN_BN_MOMENTUM */
    float bn_eps;            /* GTL__CNN_BN_EPS */
    size_t prefix_len;       /* length of the name prefix given to init */
} gtl__cnn;

/* Adds the parameters to ps (not finalized yet) named prefix + name, and
 * makes the buffer set (finalized, running mean 0 and variance 1). prefix
 * may be NULL or "". On an empty ps the backbone's parameters are indices
 * 0 .. gtl__cnn_num_params() - 1, a prefix of the blob. On failure cnn is
 * left empty (fini is safe) and ps may hold some of the parameters. */
gtl_status gtl__cnn_init(gtl__cnn *cnn, const gtl__cnn_config *cfg, gtl__paramset *ps,
                         const char *prefix);
void gtl__cnn_fini(gtl__cnn *cnn);

/* Number of parameter tensors (3 + per block 6, + 3 with a projection
 * shortcut) and their paramset indices in a fixed order (stem, then blocks);
 * idx holds that many. */
int64_t gtl__cnn_num_params(const gtl__cnn *cnn);
void gtl__cnn_param_indices(const gtl__cnn *cnn, int64_t *idx);
/* Number of scalar parameters (weights, not the running statistics). */
int64_t gtl__cnn_num_weights(const gtl__cnn *cnn);

/* Random weights as torchvision's ResNet (ps finalized): conv weights
 * Kaiming-normal with mode fan_out, ReLU gain (std sqrt(2 / (O * KH * KW))),
 * BN weight 1 and bias 0; running statistics reset (mean 0, variance 1). */
gtl_status gtl__cnn_init_weights(gtl__cnn *cnn, gtl__rng *rng);
void gtl__cnn_reset_running_stats(gtl__cnn *cnn);

/* Freezes the stem and stages 0..k-1 (k >= 1) and unfreezes the others:
 * frozen parameters get no gradient and their BN layers use the running
 * statistics even in training mode. 0 <= k <= stages. */
gtl_status gtl__cnn_freeze_first(gtl__cnn *cnn, int64_t k);

/* The tape forward: image (B, 3, S, S) -> out (B, F). Training mode
 * (tape->training, B >= 2) uses batch statistics and updates the running
 * statistics of the trainable BN layers; evaluation mode uses the running
 * statistics. tape->training is restored on return. */
gtl_status gtl__cnn_forward(gtl__cnn *cnn, gtl__tape *tape, gtl__tensor *image,
                            gtl__tensor **out);

/* Loads every parameter and running statistic from a safetensors file that
 * names them file_prefix + name (NULL or "" for none). Shapes must match.
 * FORMAT naming the tensor when one is missing or has another shape. On
 * failure some tensors may already hold the file's values. */
gtl_status gtl__cnn_load_safetensors(gtl__cnn *cnn, gtl__safetensors *f,
                                     const char *file_prefix);

/* ---- supervised classification head ------------------------------------- */

typedef struct gtl__cnn_head {
    gtl__paramset *ps;   /* borrowed */
    int64_t weight;      /* (C, F) */
    int64_t bias;        /* (C) */
    int64_t dim;         /* F */
    int64_t n_classes;   /* C */
} gtl__cnn_head;

/* Adds prefix + "weight" (C, F) and prefix + "bias" (C) to ps (not
 * finalized); prefix NULL means "head.". C >= 2, F >= 1. */
gtl_status gtl__cnn_head_init(gtl__cnn_head *head, gtl__paramset *ps, const char *prefix,
                              int64_t dim, int64_t n_classes);
/* PyTorch's nn.Linear default: U(-1/sqrt(F), 1/sqrt(F)) for both. */
gtl_status gtl__cnn_head_init_weights(gtl__cnn_head *head, gtl__rng *rng);
/* logits (B, C) = feat (B, F) @ weight^T + bias. */
gtl_status gtl__cnn_head_forward(gtl__cnn_head *head, gtl__tape *tape, gtl__tensor *feat,
                                 gtl__tensor **out_logits);
/* Backbone forward, head, mean cross-entropy over the batch: out_loss is the
 * scalar to call gtl__tape_backward on. out_correct (may be NULL) receives
 * the number of rows whose arg-max logit is the label. labels (B) in [0, C). */
gtl_status gtl__cnn_supervised_loss(gtl__cnn *cnn, gtl__cnn_head *head, gtl__tape *tape,
                                    gtl__tensor *image, const int64_t *labels,
                                    gtl__tensor **out_loss, int64_t *out_correct);

#endif /* GTL__NN_CNN_H */
