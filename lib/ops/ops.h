/* ops: differentiable operations on the tape.
 *
 * Every op has the same shape:
 *     gtl_status gtl__op_NAME(gtl__tape *tape, <inputs>, <params>, gtl__tensor **out);
 * It validates shapes (INVALID_ARG with a message naming the op), allocates
 * its output from the tape's arena, computes the forward pass, and records a
 * node only if grad mode is on and some input requires a gradient. Backward
 * functions accumulate (+=) into the inputs' gradients (gtl__tape_grad).
 * On failure *out is NULL.
 *
 * Shape letters: N batch rows, D/C features or classes, B batch, T tokens,
 * H heads, M/K/N matrix dims. Shapes are outermost first.
 * Derivations are in docs/autograd.md. */
#ifndef GTL__OPS_H
#define GTL__OPS_H

#include "tape/tape.h"

/* ==== op_matmul.c: linear algebra on oneDNN matmul ======================= */

/* Activations that can be fused into linear layers (and stand alone). */
typedef enum gtl__act {
    GTL__ACT_NONE = 0,
    GTL__ACT_RELU = 1,
    GTL__ACT_GELU = 2,       /* erf form */
    GTL__ACT_QUICK_GELU = 3  /* x * sigmoid(1.702 x), as in CLIP */
} gtl__act;

/* Low level, raw pointers: for each batch index b (broadcast where a dim is 1),
 *   C[b] = alpha * op(A[b]) @ op(B[b]) (+ bias) (-> act) (+ C[b] if accumulate)
 * A is (..., M, K), B (..., K, N), C (..., M, N) given by dims and strides
 * (elements), nd = 2..4, the batch dims of A and B equal to C's or 1. bias is
 * (N) or NULL. Used by linear, attention and their backward passes. The
 * primitive is cached by shapes, strides and flags; hot (ref: kernels flagged). */
typedef struct gtl__mm_desc {
    int32_t nd;
    int64_t a_dims[4], a_strides[4];
    int64_t b_dims[4], b_strides[4];
    int64_t c_dims[4], c_strides[4];
    float alpha;
    bool accumulate;   /* C += result (sum post-op) */
    bool has_bias;
    gtl__act act;      /* applied before the accumulation */
    bool bf16;         /* A and B are bf16 (uint16_t) buffers; C stays f32 */
} gtl__mm_desc;

gtl_status gtl__mm(gtl__ctx *ctx, const gtl__mm_desc *d, const void *a, const void *b,
                   const float *bias, float *c);
/* Fills a desc for a plain row-major (M,K)@(K,N) or with transposes. */
void gtl__mm_desc_2d(gtl__mm_desc *d, int64_t m, int64_t n, int64_t k, bool trans_a,
                     bool trans_b);

/* dst (..., out) = src (..., in) @ weight(out, in)^T + bias(out).
 * bias may be NULL. When no node is needed, act is fused as a post-op;
 * otherwise it is applied by the activation op on the tape. */
gtl_status gtl__op_linear(gtl__tape *tape, gtl__tensor *src, gtl__tensor *weight,
                          gtl__tensor *bias, gtl__act act, gtl__tensor **out);

/* dst = alpha * op(a) @ op(b); a (..., M, K), b (..., K, N) after the optional
 * transposes of the last two dims; batch dims equal, or b 2-D (shared). */
gtl_status gtl__op_matmul(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, bool trans_a,
                          bool trans_b, float alpha, gtl__tensor **out);

/* ==== op_act.c: activations and dropout ================================= */

gtl_status gtl__op_act(gtl__tape *tape, gtl__tensor *src, gtl__act act, gtl__tensor **out);
gtl_status gtl__op_relu(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
gtl_status gtl__op_gelu(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
gtl_status gtl__op_quick_gelu(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
gtl_status gtl__op_sigmoid(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
/* Inverted dropout with probability p drawn from tape->rng; the identity
 * when !tape->training or p == 0. 0 <= p < 1. */
gtl_status gtl__op_dropout(gtl__tape *tape, gtl__tensor *src, float p, gtl__tensor **out);

/* ==== op_elementwise.c: arithmetic ======================================= */

/* a + b, a * b, a - b. b has a's shape, or the shape of a's trailing dims
 * (broadcast over the leading ones, e.g. a bias row), or one element. */
gtl_status gtl__op_add(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out);
gtl_status gtl__op_sub(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out);
gtl_status gtl__op_mul(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out);
/* alpha * src + beta. */
gtl_status gtl__op_scale(gtl__tape *tape, gtl__tensor *src, float alpha, float beta,
                         gtl__tensor **out);
/* |src|; the gradient at 0 is 0. */
gtl_status gtl__op_abs(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
/* exp(src). */
gtl_status gtl__op_exp(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);

/* ==== op_shape.c: layout ================================================= */

/* Concatenation along axis of n tensors equal in every other dim. n <= 6. */
gtl_status gtl__op_concat(gtl__tape *tape, gtl__tensor *const *src, int32_t n, int32_t axis,
                          gtl__tensor **out);
/* src[..., start:start+len, ...] along axis. */
gtl_status gtl__op_slice(gtl__tape *tape, gtl__tensor *src, int32_t axis, int64_t start,
                         int64_t len, gtl__tensor **out);
/* Same data, new shape with the same element count. */
gtl_status gtl__op_reshape(gtl__tape *tape, gtl__tensor *src, int32_t nd, const int64_t *ne,
                           gtl__tensor **out);
/* Swaps two axes (materialised, contiguous result). */
gtl_status gtl__op_transpose(gtl__tape *tape, gtl__tensor *src, int32_t axis0, int32_t axis1,
                             gtl__tensor **out);

/* ==== op_reduce.c: reductions =========================================== */

/* Sum or mean over one axis (the axis is removed; keepdim keeps it as 1),
 * or over all elements with axis = -1 (a 1-element, 0-d result). */
gtl_status gtl__op_sum(gtl__tape *tape, gtl__tensor *src, int32_t axis, bool keepdim,
                       gtl__tensor **out);
gtl_status gtl__op_mean(gtl__tape *tape, gtl__tensor *src, int32_t axis, bool keepdim,
                        gtl__tensor **out);

/* ==== op_norm.c: normalisation (oneDNN layer/batch normalisation) ========= */

/* Over the last dim: (x - mean) / sqrt(var + eps) * gamma + beta.
 * gamma and beta are (C) or both NULL. */
gtl_status gtl__op_layernorm(gtl__tape *tape, gtl__tensor *src, gtl__tensor *gamma,
                             gtl__tensor *beta, float eps, gtl__tensor **out);

/* Batch normalisation of (N, C) or (N, C, H, W) per channel C. In training
 * mode (tape->training) it uses the batch statistics (biased variance) and
 * updates running_mean/var (C) with momentum as PyTorch does (unbiased
 * variance in the running estimate); in evaluation mode it uses the running
 * statistics. gamma/beta are (C) or both NULL. running_* may be NULL only in
 * training mode. N >= 2 in training mode. */
gtl_status gtl__op_batchnorm(gtl__tape *tape, gtl__tensor *src, gtl__tensor *gamma,
                             gtl__tensor *beta, float *running_mean, float *running_var,
                             float momentum, float eps, gtl__tensor **out);

/* ==== op_softmax.c: softmax family (oneDNN softmax_v2) ==================== */

/* Over the last dim. */
gtl_status gtl__op_softmax(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
gtl_status gtl__op_log_softmax(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);
/* Mean over N of -log softmax(logits)[label]; logits (N, C), labels in [0, C).
 * labels are copied. Out-of-range labels give INVALID_ARG. */
gtl_status gtl__op_cross_entropy(gtl__tape *tape, gtl__tensor *logits, const int64_t *labels,
                                 gtl__tensor **out);

/* ==== op_attention.c: multi-head scaled dot-product attention ============= */

/* qkv (B, T, 3*C) as CLIP's fused in_proj produces it ([q | k | v] along the
 * last dim), heads H dividing C; dst (B, T, C) = concat_h softmax(Q_h K_h^T /
 * sqrt(C/H)) V_h. Q, K, V are read through strided views, never copied. */
gtl_status gtl__op_attention(gtl__tape *tape, gtl__tensor *qkv, int64_t n_heads,
                             gtl__tensor **out);

/* ==== op_conv.c: convolution and pooling (oneDNN) ======================== */

/* src (N, C, H, W), weight (O, C, KH, KW), bias (O) or NULL ->
 * dst (N, O, OH, OW), OH = (H + 2*pad_h - KH) / stride_h + 1. */
gtl_status gtl__op_conv2d(gtl__tape *tape, gtl__tensor *src, gtl__tensor *weight,
                          gtl__tensor *bias, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                          int64_t pad_w, gtl__tensor **out);

/* ==== op_conv.c: pooling ================================================= */

/* src (N, C, H, W) -> dst (N, C, OH, OW), OH = (H + 2*pad_h - kh) / stride_h + 1
 * (floor, as PyTorch with ceil_mode off). kh, kw, strides >= 1;
 * 0 <= pad < kernel. Max pooling ignores the padding (-inf); average pooling
 * divides by the number of real (non-padding) elements in each window. */
gtl_status gtl__op_maxpool2d(gtl__tape *tape, gtl__tensor *src, int64_t kh, int64_t kw,
                             int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                             gtl__tensor **out);
gtl_status gtl__op_avgpool2d(gtl__tape *tape, gtl__tensor *src, int64_t kh, int64_t kw,
                             int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                             gtl__tensor **out);
/* Mean over H and W: src (N, C, H, W) -> dst (N, C). */
gtl_status gtl__op_global_avgpool(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);

/* ==== op_sparse.c: sparsemax ============================================= */

/* Sparsemax over the last dim (Martins & Astudillo 2016): the Euclidean
 * projection onto the simplex; many outputs exactly 0. */
gtl_status gtl__op_sparsemax(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out);

/* ==== op_dist.c: distributions and reconstruction ======================== */

/* z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn from tape->rng (or
 * taken from eps_in when it is not NULL: same element count). Shapes equal. */
gtl_status gtl__op_reparam(gtl__tape *tape, gtl__tensor *mu, gtl__tensor *logvar,
                           const float *eps_in, gtl__tensor **out);
/* KL(N(mu, exp(logvar)) || N(0, I)) summed over the last dim, averaged over
 * the rows: mean_n sum_d -0.5 (1 + logvar - mu^2 - exp(logvar)). Scalar. */
gtl_status gtl__op_kl_normal(gtl__tape *tape, gtl__tensor *mu, gtl__tensor *logvar,
                             gtl__tensor **out);
/* mean((a - b)^2) over all elements. Scalar. */
gtl_status gtl__op_mse(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out);

/* ==== op_metric.c: metric learning ====================================== */

/* Rows divided by max(||row||_2, eps). src (N, D). */
gtl_status gtl__op_l2_normalize(gtl__tape *tape, gtl__tensor *src, float eps,
                                gtl__tensor **out);
/* dst (N, M) = 1 - cos(a_i, b_j); a (N, D), b (M, D). */
gtl_status gtl__op_cosine_distance(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b,
                                   gtl__tensor **out);
/* Batch-hard triplet loss with cosine distance: for each anchor, the hardest
 * positive (largest distance, same label, not itself) and hardest negative
 * (smallest distance, other label); mean over anchors that have both of
 * max(0, d_ap - d_an + margin). feat (N, D); labels copied. Scalar (0 when
 * no anchor has both). */
gtl_status gtl__op_triplet_hard(gtl__tape *tape, gtl__tensor *feat, const int64_t *labels,
                                float margin, gtl__tensor **out);
/* Center loss: mean over rows of ||feat_i - centers[label_i]||^2.
 * feat (N, D), centers (C, D), labels in [0, C). Scalar. */
gtl_status gtl__op_center_loss(gtl__tape *tape, gtl__tensor *feat, gtl__tensor *centers,
                               const int64_t *labels, gtl__tensor **out);

/* ==== op_moe.c: sparsely gated adapters (the GTL disturbance estimator) ==== */

/* u (N, M) = sum_k gate[n, k] * (A[k] @ x[n] + a[k]) over the k with
 * gate[n, k] != 0 only; x (N, F), gate (N, d) (typically a sparsemax output,
 * mostly exact zeros), A (d, M, F), a (d, M) or NULL. Adapters with a zero
 * gate are skipped in forward and backward: exact, not an approximation. */
gtl_status gtl__op_gated_adapters(gtl__tape *tape, gtl__tensor *x, gtl__tensor *gate,
                                  gtl__tensor *weight, gtl__tensor *bias, gtl__tensor **out);

#endif /* GTL__OPS_H */
