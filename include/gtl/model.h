/**
 * @file model.h
 * @brief The GTL model handle: configuration, initialisation, prediction,
 *        latent codes, parameter access.
 *
 * A ::gtl_model holds the GTL head that works on backbone feature vectors of
 * size F (GTL_MODEL_FEATURE_DIM): an encoder q(z|x) producing a latent
 * concept z_c (Nc) and a disturbance z_m (Nm), a disturbance estimator
 * (sparsemax gate over d latent domains with one adapter each), a generator
 * p(x | z_c, z~_m) and a classifier head (projector, BNNeck, linear).
 * Training is driven through train.h.
 *
 * Life cycle: create -> set structural parameters -> gtl_model_init() (or
 * any training/prediction call, which initialises with the current settings)
 * -> train / predict -> gtl_model_destroy(). Structural parameters
 * (dimensions, estimator on/off, seed) are fixed by initialisation; loss and
 * schedule parameters may change at any time.
 *
 * Usage, a head on 512-dimensional features:
 * @code
 *   gtl_model *m = NULL;
 *   gtl_model_create(&m);
 *   gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, 512);
 *   gtl_model_init(m);
 *   ... train (train.h) ...
 *   int64_t labels[8];
 *   gtl_model_predict(m, queries, 8, 512, labels, NULL, 0);
 *   gtl_model_destroy(m);
 * @endcode
 */
#ifndef GTL_MODEL_H
#define GTL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/export.h"
#include "gtl/optim.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A GTL model. Opaque; created and destroyed by libgtl. */
typedef struct gtl_model gtl_model;

/**
 * Model parameters, set with gtl_model_set_i64() / gtl_model_set_f32() (the
 * type is given for each). Values are append-only. "Structural" parameters
 * can only be set before initialisation.
 */
typedef enum gtl_model_param {
    GTL_MODEL_FEATURE_DIM = 0,       /**< i64, structural: F, feature size (1280) */
    GTL_MODEL_HIDDEN_DIM = 1,        /**< i64, structural: H, hidden size (256) */
    GTL_MODEL_CONCEPT_DIM = 2,       /**< i64, structural: Nc, latent concept size (128) */
    GTL_MODEL_DISTURBANCE_DIM = 3,   /**< i64, structural: Nm, disturbance size (64) */
    GTL_MODEL_NUM_DOMAINS = 4,       /**< i64, structural: d, latent domains (128) */
    GTL_MODEL_NUM_CLASSES = 5,       /**< i64, read-only: classes of the current classifier */
    GTL_MODEL_ESTIMATOR = 6,         /**< i64, structural: 1 = disturbance estimator on (1), 0 = ablation */
    GTL_MODEL_SEED = 7,              /**< i64, structural: seed of initialisation and sampling (0) */
    GTL_MODEL_DROPOUT = 8,           /**< f32, structural: encoder dropout (0.5) */
    GTL_MODEL_BETA = 9,              /**< f32: weight of |KL - C_t| (1) */
    GTL_MODEL_CAPACITY_MAX = 10,     /**< f32: C_max (20) */
    GTL_MODEL_CAPACITY_ITERS = 11,   /**< f32: T_c, iterations to reach C_max at r = 1 (5000) */
    GTL_MODEL_CAPACITY_RATE_BASE = 12,  /**< f32: r on base data, stage B1 (20) */
    GTL_MODEL_CAPACITY_RATE_NOVEL = 13, /**< f32: r on novel data, stage N1 (50) */
    GTL_MODEL_TRIPLET_MARGIN = 14,   /**< f32: batch-hard triplet margin (0.3) */
    GTL_MODEL_CE_WEIGHT = 15,        /**< f32: weight of cross-entropy in L_cls (1) */
    GTL_MODEL_TRIPLET_WEIGHT = 16,   /**< f32: weight of the triplet loss (1) */
    GTL_MODEL_CENTER_WEIGHT = 17,    /**< f32: weight of the center loss (1) */
    GTL_MODEL_CENTER_LR = 18,        /**< f32: SGD learning rate of the class centers (0.5) */
    GTL_MODEL_FREEZE_GENERATOR = 19, /**< i64: 1 = generator frozen in N1 (1); 0 = ablation */
    GTL_MODEL_BATCH_CLASSES = 20,    /**< i64: P of the identity batches of whole stages (16) */
    GTL_MODEL_BATCH_SAMPLES = 21,    /**< i64: K of the identity batches (4) */
    GTL_MODEL_N1_EPOCHS = 22,        /**< i64: gtl_adapt() stage N1 epochs (60) */
    GTL_MODEL_N2_EPOCHS = 23,        /**< i64: gtl_adapt() stage N2 epochs (60) */
    GTL_MODEL_N1_LR = 24,            /**< f32: gtl_adapt() stage N1 Adam learning rate (1e-3) */
    GTL_MODEL_N2_LR = 25,            /**< f32: gtl_adapt() stage N2 Adam learning rate (1e-3) */
    GTL_MODEL_WEIGHT_DECAY = 26,     /**< f32: gtl_adapt() and whole-stage weight decay (1e-4) */
    GTL_MODEL_WARMUP_EPOCHS = 27,    /**< i64: linear warm-up of whole stages (5) */
    GTL_MODEL_CLIP_NORM = 28,        /**< f32: global gradient-norm clip of whole stages (2) */
    GTL_MODEL_CLS_USE_MEAN = 29,     /**< i64: 1 = classifier stages read z_c = mu_c (1); 0 = a sample */
    GTL_MODEL_CAPACITY_START_NOVEL = 30, /**< f32: N1's C_t starts at this fraction s of C_max:
                                              min(C_max, s C_max + r t / T_c) (1; 0 = from 0) */
    GTL_MODEL_REP_CLS_WEIGHT = 31    /**< f32: gamma of the term gamma CE(classifier(z_c), y)
                                          that B1 and N1 add to L_rep (1; 0 = L_rep only) */
} gtl_model_param;

/** What gtl_model_latent() returns. */
typedef enum gtl_latent {
    GTL_LATENT_CONCEPT = 0,     /**< mu_c, Nc values per sample */
    GTL_LATENT_DISTURBANCE = 1, /**< the fused disturbance z~_m at z = mu, Nm values */
    GTL_LATENT_GATE = 2         /**< the sparsemax gate over the d domains (0 when the estimator is off) */
} gtl_latent;

/**
 * Creates a model with default parameters (the method's sizes, F = 1280).
 *
 * @param[out] out_model the new model; NULL on failure.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL out pointer);
 *         ::GTL_STATUS_OUT_OF_MEMORY; ::GTL_STATUS_BACKEND (no oneDNN CPU engine).
 *
 * Ownership: the caller frees the model with gtl_model_destroy().
 * Thread safety: distinct models may be used from distinct threads; one
 *   model must not be used by two threads at once.
 */
GTL_API gtl_status gtl_model_create(gtl_model **out_model);

/**
 * Destroys a model. NULL is accepted and ignored.
 *
 * Ownership: frees everything the model holds.
 * Thread safety: the model must not be in use by another thread.
 */
GTL_API void gtl_model_destroy(gtl_model *model);

/**
 * Sets an integer parameter.
 *
 * @param[in,out] model the model.
 * @param[in]     key   a parameter whose type is i64.
 * @param[in]     value within gtl_model_param_bounds().
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL model, unknown key,
 *         an f32 or read-only key, value out of bounds);
 *         ::GTL_STATUS_BAD_STATE (a structural key after initialisation).
 *         On failure nothing changes.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_set_i64(gtl_model *model, gtl_model_param key, int64_t value);

/**
 * Reads an integer parameter.
 *
 * @param[in]  model     the model.
 * @param[in]  key       a parameter whose type is i64.
 * @param[out] out_value the value.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument, unknown
 *         key or an f32 key).
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same model.
 */
GTL_API gtl_status gtl_model_get_i64(const gtl_model *model, gtl_model_param key,
                                     int64_t *out_value);

/**
 * Sets a floating-point parameter.
 *
 * @param[in,out] model the model.
 * @param[in]     key   a parameter whose type is f32.
 * @param[in]     value finite and within gtl_model_param_bounds().
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL model, unknown key,
 *         an i64 key, value not finite or out of bounds);
 *         ::GTL_STATUS_BAD_STATE (a structural key after initialisation).
 *
 * Ownership: nothing is allocated.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_set_f32(gtl_model *model, gtl_model_param key, float value);

/**
 * Reads a floating-point parameter.
 *
 * @param[in]  model     the model.
 * @param[in]  key       a parameter whose type is f32.
 * @param[out] out_value the value.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument, unknown
 *         key or an i64 key).
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same model.
 */
GTL_API gtl_status gtl_model_get_f32(const gtl_model *model, gtl_model_param key,
                                     float *out_value);

/**
 * The range a parameter accepts, and whether it is an integer.
 *
 * @param[in]  key        the parameter.
 * @param[out] out_lo     smallest accepted value.
 * @param[out] out_hi     largest accepted value.
 * @param[out] out_is_int 1 for i64 parameters, 0 for f32; may be NULL.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (unknown key, NULL bound pointer).
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe from any thread.
 */
GTL_API gtl_status gtl_model_param_bounds(gtl_model_param key, double *out_lo, double *out_hi,
                                          int32_t *out_is_int);

/**
 * Allocates and initialises the weights with the current settings and
 * GTL_MODEL_SEED. Training and prediction calls do it implicitly.
 *
 * @param[in,out] model the model.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL model; sizes whose
 *         product does not fit); ::GTL_STATUS_BAD_STATE (already initialised);
 *         ::GTL_STATUS_OUT_OF_MEMORY (the model stays uninitialised).
 *
 * Ownership: the model owns its weights.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_init(gtl_model *model);

/**
 * Number of trainable values (weights and biases) of the initialised model,
 * in the head's two parameter blocks together.
 *
 * @param[in]  model the model.
 * @param[out] out_n the count.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument);
 *         ::GTL_STATUS_BAD_STATE (not initialised).
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same model.
 */
GTL_API gtl_status gtl_model_num_params(const gtl_model *model, int64_t *out_n);

/**
 * Classifies feature vectors with the current classifier (evaluation mode:
 * z_c = mu_c, batch norm on running statistics, no dropout).
 *
 * @param[in,out] model          the model (initialised implicitly).
 * @param[in]     features       n * feature_dim floats, row-major, finite.
 * @param[in]     n              rows, >= 1.
 * @param[in]     feature_dim    must equal GTL_MODEL_FEATURE_DIM.
 * @param[out]    out_labels     n predicted classes (argmax), or NULL.
 * @param[out]    out_probs      n * C class probabilities (softmax), or NULL.
 * @param[in]     probs_capacity floats available in out_probs.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL model or features,
 *         n < 1, feature_dim mismatch, NaN/Inf in features, probs_capacity
 *         < n * C; nothing is written); ::GTL_STATUS_OUT_OF_MEMORY;
 *         ::GTL_STATUS_BACKEND.
 *
 * Ownership: the caller owns the output arrays.
 * Thread safety: not concurrently with other calls on the same model (the
 *   model's workspace is reused).
 */
GTL_API gtl_status gtl_model_predict(gtl_model *model, const float *features, int64_t n,
                                     int64_t feature_dim, int64_t *out_labels, float *out_probs,
                                     size_t probs_capacity);

/**
 * Latent codes of feature vectors (evaluation mode), for inspection and plots.
 *
 * @param[in,out] model       the model (initialised implicitly).
 * @param[in]     which       ::gtl_latent: concept (Nc), disturbance (Nm) or gate (d).
 * @param[in]     features    n * feature_dim floats.
 * @param[in]     n           rows, >= 1.
 * @param[in]     feature_dim must equal GTL_MODEL_FEATURE_DIM.
 * @param[out]    dst         n * (Nc | Nm | d) floats.
 * @param[in]     capacity    floats available in dst.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument, unknown
 *         @p which, n < 1, dimension mismatch, non-finite features, capacity
 *         too small: nothing is written); ::GTL_STATUS_OUT_OF_MEMORY;
 *         ::GTL_STATUS_BACKEND.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_latent(gtl_model *model, gtl_latent which, const float *features,
                                    int64_t n, int64_t feature_dim, float *dst, size_t capacity);

/**
 * Number of named parameter tensors (body and classifier).
 *
 * @param[in]  model the model.
 * @param[out] out_n the count.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument);
 *         ::GTL_STATUS_BAD_STATE (not initialised).
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same model.
 */
GTL_API gtl_status gtl_model_num_tensors(const gtl_model *model, int64_t *out_n);

/**
 * Name and size of parameter tensor @p index, e.g. "encoder.fc.weight".
 *
 * @param[in]  model         the model.
 * @param[in]  index         0 .. gtl_model_num_tensors() - 1.
 * @param[out] name          buffer for the NUL-terminated name, or NULL.
 * @param[in]  name_capacity bytes available in @p name (64 always suffice).
 * @param[out] out_numel     number of values; may be NULL.
 * @param[out] out_trainable 1 if the tensor receives gradients in the current
 *                           stage, else 0; may be NULL.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL model, index out
 *         of range, name_capacity too small); ::GTL_STATUS_BAD_STATE (not initialised).
 *
 * Ownership: the caller owns @p name.
 * Thread safety: safe with other read-only calls on the same model.
 */
GTL_API gtl_status gtl_model_tensor_info(const gtl_model *model, int64_t index, char *name,
                                         size_t name_capacity, int64_t *out_numel,
                                         int32_t *out_trainable);

/**
 * Copies the values, or the accumulated gradient, of parameter tensor @p index.
 *
 * @param[in]  model    the model.
 * @param[in]  index    0 .. gtl_model_num_tensors() - 1.
 * @param[in]  grad     0 for the values, 1 for the gradient (zeros when the
 *                      tensor is frozen or no backward pass ran).
 * @param[out] dst      numel floats.
 * @param[in]  capacity floats available in @p dst.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument, index out
 *         of range, capacity < numel); ::GTL_STATUS_BAD_STATE (not initialised).
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe with other read-only calls on the same model.
 */
GTL_API gtl_status gtl_model_tensor_get(const gtl_model *model, int64_t index, int32_t grad,
                                        float *dst, size_t capacity);

/**
 * Overwrites the values of parameter tensor @p index (for hosts that run
 * their own optimizer, or import weights).
 *
 * @param[in,out] model the model.
 * @param[in]     index 0 .. gtl_model_num_tensors() - 1.
 * @param[in]     src   numel finite floats.
 * @param[in]     n     must equal numel.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument, index out
 *         of range, n != numel, non-finite value: nothing is written);
 *         ::GTL_STATUS_BAD_STATE (not initialised).
 *
 * Ownership: the values are copied.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_tensor_set(gtl_model *model, int64_t index, const float *src,
                                        size_t n);

/**
 * Saves the model — configuration, every weight, batch-norm statistics, the
 * current classifier, the random state, the stage and its step counter —
 * and, if given, the optimizer's settings and state, to one checkpoint file
 * (docs/checkpoint-format.md). Resuming from it continues bit-identically to
 * an uninterrupted run. An adapted model saved this way predicts after
 * loading with no support set.
 *
 * The file is written to a temporary name and renamed, so an existing file is
 * replaced atomically or left untouched on failure.
 *
 * @param[in] model     the model (initialised).
 * @param[in] optimizer an optimizer to save with it, or NULL.
 * @param[in] path      the file to write.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL model or path);
 *         ::GTL_STATUS_BAD_STATE (model not initialised, or gradients
 *         pending between gtl_model_forward_backward() and gtl_model_apply());
 *         ::GTL_STATUS_IO (with the OS reason); ::GTL_STATUS_OUT_OF_MEMORY.
 *
 * Ownership: nothing is kept.
 * Thread safety: not concurrently with calls that modify the model or optimizer.
 */
GTL_API gtl_status gtl_model_save(const gtl_model *model, const gtl_optimizer *optimizer,
                                  const char *path);

/**
 * Loads a model saved by gtl_model_save(), and its optimizer if one was saved.
 *
 * The file is untrusted input: every field is bounds-checked and every tensor
 * CRC-checked; a damaged or foreign file gives ::GTL_STATUS_FORMAT.
 *
 * @param[in]  path          the file.
 * @param[out] out_model     the loaded model; NULL on failure.
 * @param[out] out_optimizer the saved optimizer, or NULL when the file has
 *                           none; pass NULL to ignore a saved optimizer.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL path or out_model);
 *         ::GTL_STATUS_IO (missing or unreadable file); ::GTL_STATUS_FORMAT
 *         (not a libgtl model file, corrupt, truncated, or inconsistent
 *         shapes; the message names the field); ::GTL_STATUS_UNSUPPORTED (a
 *         newer format version); ::GTL_STATUS_OUT_OF_MEMORY.
 *
 * Ownership: the caller destroys the model and the optimizer.
 * Thread safety: safe.
 */
GTL_API gtl_status gtl_model_load(const char *path, gtl_model **out_model,
                                  gtl_optimizer **out_optimizer);

/**
 * A deep copy of a model in memory: settings, weights, batch-norm
 * statistics, the current classifier, the random state, the stage and its
 * step counter (what gtl_model_save() writes, without a file). The copy and
 * the original then evolve independently; the same calls on both give the
 * same results.
 *
 * @param[in]  model     the model, initialised, with no gradients pending.
 * @param[out] out_model the copy; NULL on failure.
 * @return ::GTL_STATUS_OK; ::GTL_STATUS_INVALID_ARG (NULL argument);
 *         ::GTL_STATUS_BAD_STATE (not initialised, or gradients pending
 *         between gtl_model_forward_backward() and gtl_model_apply());
 *         ::GTL_STATUS_OUT_OF_MEMORY; ::GTL_STATUS_BACKEND.
 *
 * Ownership: the caller destroys the copy with gtl_model_destroy().
 * Thread safety: read-only on @p model.
 */
GTL_API gtl_status gtl_model_clone(const gtl_model *model, gtl_model **out_model);

#ifdef __cplusplus
}
#endif

#endif /* GTL_MODEL_H */
