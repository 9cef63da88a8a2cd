/* nn/vit: the CLIP-layout Vision Transformer backbone.
 *
 * The network is OpenAI CLIP's VisionTransformer, with its parameter names
 * (optionally behind a prefix such as "visual."):
 *
 *   conv1.weight (W, 3, P, P)                    patch embedding, no bias
 *   class_embedding (W), positional_embedding (T, W), ln_pre.{weight,bias}
 *   transformer.resblocks.{i}.ln_1.{weight,bias}
 *   transformer.resblocks.{i}.attn.in_proj_weight (3W, W), .in_proj_bias (3W)
 *   transformer.resblocks.{i}.attn.out_proj.{weight (W, W), bias (W)}
 *   transformer.resblocks.{i}.ln_2.{weight,bias}
 *   transformer.resblocks.{i}.mlp.c_fc.{weight (R*W, W), bias}   -> QuickGELU or GELU
 *   transformer.resblocks.{i}.mlp.c_proj.{weight (W, R*W), bias (W)}
 *   ln_post.{weight,bias}, proj (W, D) used as x @ proj
 *
 * Shape letters: B batch, S image side, P patch, G = S / P grid side,
 * T = G*G + 1 tokens (CLS first), W width, H heads, R MLP ratio, D output dim.
 * LayerNorm eps is 1e-5 (PyTorch's default, as CLIP uses).
 *
 * The feature of an image is [CLS after ln_post ; CLS @ proj] (W + D values,
 * 1280 for ViT-B/16), or either part alone.
 *
 * Two forward paths share the parameters:
 * - gtl__vit_forward(): ops on the tape, differentiable; frozen parameters
 *   (gtl__vit_freeze_first) record nothing, so fine-tuning the last blocks
 *   costs only their own backward.
 * - gtl__vit_infer_*(): inference without a tape on oneDNN primitives, with
 *   weights reordered once into the layouts the matmul kernels prefer, bias,
 *   activation and residual fused as post-ops, and all buffers and primitives
 *   made on the first call for a batch size (later calls allocate nothing).
 *   See docs/vit.md. */
#ifndef GTL__NN_VIT_H
#define GTL__NN_VIT_H

#include "core/rng.h"
#include "io/safetensors.h"
#include "ops/ops.h"

typedef struct gtl__vit_config {
    int64_t image_size;  /* S */
    int64_t patch;       /* P; S % P == 0 */
    int64_t width;       /* W */
    int64_t layers;
    int64_t heads;       /* H divides W */
    int64_t mlp_ratio;   /* R */
    int64_t out_dim;     /* D */
    gtl__act act;        /* GTL__ACT_QUICK_GELU (CLIP) or GTL__ACT_GELU */
} gtl__vit_config;

/* Presets: "ViT-B/16" (224/16/768/12/12/4/512, QuickGELU), "ViT-B/32",
 * "small" (32/8/64/3/4/4/32) and "tiny" (8/4/8/2/2/4/6) for tests.
 * INVALID_ARG for an unknown name. */
gtl_status gtl__vit_preset(const char *name, gtl__vit_config *out_cfg);
/* INVALID_ARG with a message when a config is unusable. */
gtl_status gtl__vit_config_check(const gtl__vit_config *cfg);
/* T = (S / P)^2 + 1. */
int64_t gtl__vit_tokens(const gtl__vit_config *cfg);

/* Which part of the feature to return. */
enum {
    GTL__VIT_FEAT_CLS = 1,   /* CLS after ln_post (W) */
    GTL__VIT_FEAT_PROJ = 2,  /* CLS after ln_post, @ proj (D) */
    GTL__VIT_FEAT_BOTH = 3   /* [CLS ; CLS @ proj] (W + D) */
};
/* Feature length for `which`; 0 when which is invalid. */
int64_t gtl__vit_feature_dim(const gtl__vit_config *cfg, int which);

/* Paramset indices of one residual block. */
typedef struct gtl__vit_block {
    int64_t ln1_w, ln1_b;
    int64_t in_w, in_b;       /* attn.in_proj_weight, attn.in_proj_bias */
    int64_t out_w, out_b;     /* attn.out_proj */
    int64_t ln2_w, ln2_b;
    int64_t fc_w, fc_b;       /* mlp.c_fc */
    int64_t cproj_w, cproj_b; /* mlp.c_proj */
} gtl__vit_block;

typedef struct gtl__vit {
    gtl__vit_config cfg;
    gtl__paramset *ps;        /* borrowed; holds the parameters below */
    int64_t conv1, cls, pos, ln_pre_w, ln_pre_b, ln_post_w, ln_post_b, proj;
    gtl__vit_block *blocks;   /* cfg.layers entries */
    size_t prefix_len;        /* length of the name prefix given to init */
} gtl__vit;

/* Adds the parameters to ps (not finalized yet), named prefix + CLIP name.
 * prefix may be NULL or "". On failure vit is left empty (fini is safe). */
gtl_status gtl__vit_init(gtl__vit *vit, const gtl__vit_config *cfg, gtl__paramset *ps,
                         const char *prefix);
void gtl__vit_fini(gtl__vit *vit);

/* Number of parameters of the model (8 + 12 * layers) and their paramset
 * indices in a fixed order (stem, blocks, head); idx holds that many. */
int64_t gtl__vit_num_params(const gtl__vit *vit);
void gtl__vit_param_indices(const gtl__vit *vit, int64_t *idx);

/* Loads every parameter from a safetensors file (F32, F16 or BF16), the file
 * naming them file_prefix + CLIP name (e.g. "visual." for OpenAI's
 * checkpoints converted to safetensors; NULL or "" for none). Shapes must
 * match exactly. FORMAT naming the tensor when one is missing or has another
 * shape; the reader's errors otherwise. On failure some parameters may
 * already hold the file's values. */
gtl_status gtl__vit_load_safetensors(gtl__vit *vit, gtl__safetensors *f,
                                     const char *file_prefix);

/* Random weights as CLIP/PyTorch initialise them (ps finalized): normal
 * W^-1/2 for class/positional embeddings and proj, Xavier-uniform in_proj,
 * Kaiming-uniform linear and conv weights, zero attention biases, unit
 * LayerNorms. */
gtl_status gtl__vit_init_weights(gtl__vit *vit, gtl__rng *rng);

/* Freezes the stem (conv1, class/positional embeddings, ln_pre) and blocks
 * 0..k-1 when k >= 1, unfreezes everything else; k = layers + 1 freezes
 * ln_post and proj too. 0 <= k <= layers + 1. */
gtl_status gtl__vit_freeze_first(gtl__vit *vit, int64_t k);

/* The tape forward. image (B, 3, S, S) -> out (B, F), F = feature_dim(which). */
gtl_status gtl__vit_forward(gtl__vit *vit, gtl__tape *tape, gtl__tensor *image, int which,
                            gtl__tensor **out);

/* ---- inference path --------------------------------------------------------- */

typedef struct gtl__vit_infer gtl__vit_infer;

/* Timed op kinds of the inference path (gtl__vit_infer_profile). */
enum {
    GTL__VIT_PROF_PATCH = 0,  /* im2col + patch matmul (+ positional add) */
    GTL__VIT_PROF_LN,         /* ln_pre, ln_1, ln_2 */
    GTL__VIT_PROF_QKV,        /* in_proj + bias */
    GTL__VIT_PROF_QK,         /* S = Q K^T / sqrt(Dh) */
    GTL__VIT_PROF_SOFTMAX,
    GTL__VIT_PROF_PV,         /* O = P V */
    GTL__VIT_PROF_OUT,        /* out_proj + bias + residual */
    GTL__VIT_PROF_FC1,        /* c_fc + bias + activation */
    GTL__VIT_PROF_FC2,        /* c_proj + bias + residual */
    GTL__VIT_PROF_CVT,        /* f32 -> bf16 activation reorders (bf16 only) */
    GTL__VIT_PROF_HEAD,       /* ln_post + proj */
    GTL__VIT_PROF_COUNT
};
const char *gtl__vit_prof_name(int kind);

/* Builds the inference engine for vit (parameters loaded) on ctx (borrowed;
 * its primitive cache holds the engine's primitives). Weights are reordered
 * now, once; call gtl__vit_infer_refresh after changing the parameters.
 * bf16 asks for bf16 linear layers: without native bf16 support
 * (gtl__dnnl_has_bf16) it falls back to fp32 and logs a warning. */
gtl_status gtl__vit_infer_create(const gtl__vit *vit, gtl__ctx *ctx, bool bf16,
                                 gtl__vit_infer **out_inf);
void gtl__vit_infer_destroy(gtl__vit_infer *inf);
/* Reorders the weights again from the parameters (same shapes). */
gtl_status gtl__vit_infer_refresh(gtl__vit_infer *inf);
/* Bytes of weight copies the engine owns (0 when every chosen layout was the
 * parameters' own layout and they are used in place). */
size_t gtl__vit_infer_weight_bytes(const gtl__vit_infer *inf);
/* Whether the linear layers run in bf16. */
bool gtl__vit_infer_uses_bf16(const gtl__vit_infer *inf);
/* images (B, 3, S, S) f32 -> out (B, F), F = feature_dim(which). B >= 1.
 * The first call for a batch size creates buffers and primitives; later
 * calls with a batch size seen before allocate nothing. */
gtl_status gtl__vit_infer_run(gtl__vit_infer *inf, const float *images, int64_t batch, int which,
                              float *out);
/* Profiling: when on, each run adds the wall time of each op kind (ms). */
void gtl__vit_infer_set_profile(gtl__vit_infer *inf, bool on);
/* Accumulated ms per kind (GTL__VIT_PROF_COUNT entries); reset zeroes them. */
const double *gtl__vit_infer_profile(const gtl__vit_infer *inf);
void gtl__vit_infer_profile_reset(gtl__vit_infer *inf);

/* Test hook: build the bf16 path even without native bf16 (oneDNN may then
 * refuse it with UNSUPPORTED, or run reference kernels). Not for production. */
gtl_status gtl__vit_infer_create_forced_bf16(const gtl__vit *vit, gtl__ctx *ctx,
                                             gtl__vit_infer **out_inf);

#endif /* GTL__NN_VIT_H */
