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
 * @retval ::GTL_STATUS_OK            @p out_model holds the new model.
 * @retval ::GTL_STATUS_INVALID_ARG   @p out_model is NULL.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN could not create its CPU engine.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN cannot create a CPU engine on this machine.
 *
 * Ownership: the caller frees the model with gtl_model_destroy().
 * Thread safety: distinct models may be used from distinct threads; one
 *   model must not be used by two threads at once.
 */
GTL_API gtl_status gtl_model_create(gtl_model **out_model);

/**
 * Destroys a model. NULL is accepted and ignored.
 *
 * @param[in] model the model, or NULL.
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
 * @retval ::GTL_STATUS_OK          the parameter is set.
 * @retval ::GTL_STATUS_INVALID_ARG @p model is NULL, @p key is unknown, an f32 or read-only key,
 *                                  or @p value is out of bounds.
 * @retval ::GTL_STATUS_BAD_STATE   @p key is structural and the model is initialised.
 *
 * On failure nothing changes.
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
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL, or @p key is unknown or an f32 key.
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
 * @retval ::GTL_STATUS_OK          the parameter is set.
 * @retval ::GTL_STATUS_INVALID_ARG @p model is NULL, @p key is unknown or an i64 key, or @p value
 *                                  is not finite or out of bounds.
 * @retval ::GTL_STATUS_BAD_STATE   @p key is structural and the model is initialised.
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
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL, or @p key is unknown or an i64 key.
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
 * @retval ::GTL_STATUS_OK          the bounds were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p key is unknown or a bound pointer is NULL.
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
 * @retval ::GTL_STATUS_OK            the weights are allocated and initialised.
 * @retval ::GTL_STATUS_INVALID_ARG   @p model is NULL, or the sizes' product does not fit.
 * @retval ::GTL_STATUS_BAD_STATE     the model is already initialised.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed; the model stays uninitialised.
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
 * @retval ::GTL_STATUS_OK          the count was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL.
 * @retval ::GTL_STATUS_BAD_STATE   the model is not initialised.
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
 * @retval ::GTL_STATUS_OK            the labels and/or probabilities were written.
 * @retval ::GTL_STATUS_INVALID_ARG   @p model or @p features is NULL, n < 1, @p feature_dim
 *                                    differs from GTL_MODEL_FEATURE_DIM, a feature is NaN or
 *                                    infinite, @p probs_capacity < n * C with @p out_probs given,
 *                                    or (implicit initialisation) the sizes' product does not fit;
 *                                    nothing is written.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
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
 * @retval ::GTL_STATUS_OK            the codes were written.
 * @retval ::GTL_STATUS_INVALID_ARG   a pointer argument is NULL, @p which is unknown, n < 1, @p
 *                                    feature_dim differs from GTL_MODEL_FEATURE_DIM, a feature is
 *                                    not finite, or @p capacity is too small; nothing is written.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
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
 * @retval ::GTL_STATUS_OK          the count was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL.
 * @retval ::GTL_STATUS_BAD_STATE   the model is not initialised.
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
 * @retval ::GTL_STATUS_OK          the requested fields were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p model is NULL, @p index is out of range, or @p name_capacity
 *                                  is too small.
 * @retval ::GTL_STATUS_BAD_STATE   the model is not initialised.
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
 * @retval ::GTL_STATUS_OK          the values were copied.
 * @retval ::GTL_STATUS_INVALID_ARG a pointer argument is NULL, @p index is out of range, or @p
 *                                  capacity < numel.
 * @retval ::GTL_STATUS_BAD_STATE   the model is not initialised.
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
 * @retval ::GTL_STATUS_OK          the values were copied in.
 * @retval ::GTL_STATUS_INVALID_ARG a pointer argument is NULL, @p index is out of range, @p n !=
 *                                  numel, or a value is not finite; nothing is written.
 * @retval ::GTL_STATUS_BAD_STATE   the model is not initialised.
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
 * @retval ::GTL_STATUS_OK            the file was written.
 * @retval ::GTL_STATUS_INVALID_ARG   @p model or @p path is NULL.
 * @retval ::GTL_STATUS_BAD_STATE     the model is not initialised, or gradients are pending
 *                                    between gtl_model_forward_backward() and gtl_model_apply().
 * @retval ::GTL_STATUS_IO            the file cannot be created, written or renamed (the message
 *                                    has the OS reason); an existing file is left untouched.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_INTERNAL      zlib failed to compress (a libgtl bug).
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
 * @retval ::GTL_STATUS_OK            @p out_model (and @p out_optimizer) hold the loaded objects.
 * @retval ::GTL_STATUS_INVALID_ARG   @p path or @p out_model is NULL.
 * @retval ::GTL_STATUS_IO            the file is missing or unreadable.
 * @retval ::GTL_STATUS_FORMAT        not a libgtl model file, corrupt, truncated, or inconsistent
 *                                    shapes (the message names the field).
 * @retval ::GTL_STATUS_UNSUPPORTED   a newer format version, or oneDNN cannot create a CPU engine.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN could not create its CPU engine.
 * @retval ::GTL_STATUS_INTERNAL      zlib failed to initialise, or a saved setting has no field (a
 *                                    libgtl bug).
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
 * @retval ::GTL_STATUS_OK            @p out_model holds the copy.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL.
 * @retval ::GTL_STATUS_BAD_STATE     the model is not initialised, or gradients are pending
 *                                    between gtl_model_forward_backward() and gtl_model_apply().
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN could not create its CPU engine.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN cannot create a CPU engine on this machine.
 *
 * Ownership: the caller destroys the copy with gtl_model_destroy().
 * Thread safety: read-only on @p model.
 */
GTL_API gtl_status gtl_model_clone(const gtl_model *model, gtl_model **out_model);

#ifdef __cplusplus
}
#endif

#endif /* GTL_MODEL_H */
