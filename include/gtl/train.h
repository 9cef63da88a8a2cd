/**
 * @file train.h
 * @brief Training driven by the host: the four GTL stages, one step at a
 *        time or whole, and gtl_adapt().
 *
 * The stages (see docs/method.md):
 *
 * | stage | data | trains | frozen | loss |
 * |---|---|---|---|---|
 * | B1 | base features | encoder, estimator, generator (classifier*) | classifier | L_rep*, r = 20 |
 * | B2 | base features | classifier (new, C base classes) | encoder, estimator, generator | L_cls |
 * | N1 | support set | encoder, estimator (classifier*) | generator, classifier | L_rep*, r = 50 |
 * | N2 | support set | classifier (new, C novel classes) | encoder, estimator, generator | L_cls |
 *
 * A frozen module receives no gradient and runs in evaluation mode (no
 * dropout, batch norm on running statistics), so freezing is exact: after
 * N1 the generator is bit-identical to before.
 *
 * L_rep = MSE(x_hat, x) + beta |KL - C_t|, C_t = min(C_max, c0 + r t / T_c) with t
 * the stage's step counter, c0 = 0 in B1 and GTL_MODEL_CAPACITY_START_NOVEL
 * x C_max in N1. (*) With GTL_MODEL_REP_CLS_WEIGHT gamma > 0 and classes
 * given to gtl_model_set_stage(), B1 and N1 add gamma CE(classifier(z_c), y)
 * on the sampled z_c and train a fresh classifier for those classes beside
 * the body (centers excluded); B2/N2 then start a fresh one as always.
 * L_cls = CE + batch-hard triplet + center loss;
 * the class centers follow their own SGD (GTL_MODEL_CENTER_LR), not the
 * optimizer.
 *
 * Host-driven loop:
 * @code
 *   gtl_optimizer *opt = NULL;
 *   gtl_optimizer_create(GTL_OPTIM_ADAM, &opt);
 *   gtl_model_set_stage(m, GTL_STAGE_B1, 0);
 *   for (step = 0; step < n_steps; step++) {
 *       ... fill x (64 x F) and y from your data ...
 *       float stats[GTL_STAT_COUNT];
 *       gtl_status st = gtl_model_train_step(m, opt, x, 64, F, y, stats, GTL_STAT_COUNT);
 *       if (st == GTL_STATUS_NUMERIC) continue;   // skipped, nothing changed
 *   }
 * @endcode
 * Or one call: gtl_model_train_stage(m, opt, GTL_STAGE_B1, base, 120, cb, ud);
 * and for a novel task: gtl_adapt(m, support, cb, ud).
 */
#ifndef GTL_TRAIN_H
#define GTL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/dataset.h"
#include "gtl/export.h"
#include "gtl/model.h"
#include "gtl/optim.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The training stages. Values are append-only. */
typedef enum gtl_stage {
    GTL_STAGE_B1 = 0, /**< base representation: L_rep on base data */
    GTL_STAGE_B2 = 1, /**< base classifier: L_cls on base data */
    GTL_STAGE_N1 = 2, /**< novel representation: L_rep on the support set, generator frozen */
    GTL_STAGE_N2 = 3  /**< novel classifier: L_cls on the support set */
} gtl_stage;

/** Indices into the statistics array a step fills. Terms a stage does not
 *  compute are 0. Values are append-only; pass GTL_STAT_COUNT entries (or
 *  fewer: only that many are written). */
typedef enum gtl_stat {
    GTL_STAT_LOSS = 0,      /**< the stage's total loss */
    GTL_STAT_MSE = 1,       /**< reconstruction MSE (B1, N1) */
    GTL_STAT_KL = 2,        /**< KL(q(z|x) || N(0, I)), batch mean (B1, N1) */
    GTL_STAT_CAPACITY = 3,  /**< C_t (B1, N1) */
    GTL_STAT_CE = 4,        /**< cross-entropy (B2, N2; B1, N1 with the classification term) */
    GTL_STAT_TRIPLET = 5,   /**< batch-hard triplet loss (B2, N2) */
    GTL_STAT_CENTER = 6,    /**< center loss (B2, N2) */
    GTL_STAT_ACCURACY = 7,  /**< training-batch accuracy in [0, 1] (as GTL_STAT_CE) */
    GTL_STAT_GRAD_NORM = 8, /**< global gradient norm before clipping */
    GTL_STAT_LR = 9,        /**< learning rate used by this step */
    GTL_STAT_COUNT = 10     /**< number of statistics in this version */
} gtl_stat;

/**
 * Progress callback of the whole-stage calls. Return 0 to continue, anything
 * else to stop: the call then returns ::GTL_STATUS_CANCELLED after the step
 * in progress, leaving the model consistent (every completed step applied).
 *
 * @param user_data the pointer given to the call.
 * @param stage     the stage running.
 * @param step      steps completed in this stage (1 .. n_steps).
 * @param n_steps   steps the stage will run.
 * @param stats     GTL_STAT_COUNT statistics of the last step.
 */
typedef int (*gtl_progress_fn)(void *user_data, gtl_stage stage, int64_t step, int64_t n_steps,
                               const float *stats);

/**
 * Selects the stage that the following steps train, and freezes the modules
 * that stage does not train. B2 and N2 replace the classifier by a fresh
 * one for @p n_classes classes (labels 0 .. n_classes-1). B1 and N1 with
 * @p n_classes >= 1 and GTL_MODEL_REP_CLS_WEIGHT > 0 do too, and their steps
 * then add the classification term (labels required); with 0 classes (or
 * gamma 0) they train L_rep alone and leave the classifier as it is. The
 * stage's step counter (t of C_t) starts at 0.
 *
 * @param[in,out] model     the model (initialised implicitly).
 * @param[in]     stage     a ::gtl_stage.
 * @param[in]     n_classes classes for B2/N2 (>= 1); for B1/N1 the classes of the
 *                          classification term (GTL_MODEL_REP_CLS_WEIGHT), or 0 for none.
 * @retval ::GTL_STATUS_OK            the stage is selected and its modules frozen.
 * @retval ::GTL_STATUS_INVALID_ARG   @p model is NULL, @p stage is unknown, @p n_classes < 1 for
 *                                    B2/N2, or (implicit initialisation) the sizes' product does
 *                                    not fit.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed; the previous stage and classifier are
 *                                    kept.
 *
 * Ownership: nothing is returned.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_set_stage(gtl_model *model, gtl_stage stage, int64_t n_classes);

/**
 * Forward and backward pass of the current stage on one batch: gradients
 * are zeroed first, then hold the batch's gradients (read them with
 * gtl_model_tensor_get(); apply them with gtl_model_apply()).
 *
 * @param[in,out] model       the model, with a stage set.
 * @param[in]     features    n * feature_dim floats (finite).
 * @param[in]     n           batch size, >= 2 (batch norm needs two rows).
 * @param[in]     feature_dim must equal GTL_MODEL_FEATURE_DIM.
 * @param[in]     labels      n labels in [0, C) for B2/N2 and for B1/N1 with the
 *                            classification term; otherwise may be NULL.
 * @param[out]    stats       statistics (see ::gtl_stat), or NULL.
 * @param[in]     n_stats     entries available in @p stats.
 * @retval ::GTL_STATUS_OK            the gradients of the batch are pending.
 * @retval ::GTL_STATUS_INVALID_ARG   a required pointer is NULL, n < 2, @p feature_dim mismatch, a
 *                                    non-finite feature, or labels missing or out of range in
 *                                    B2/N2 (or in B1/N1 with the classification term).
 * @retval ::GTL_STATUS_BAD_STATE     no stage is set.
 * @retval ::GTL_STATUS_NUMERIC       the loss is NaN or infinite: gradients are zeroed and
 *                                    batch-norm statistics restored; nothing else changed.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * Ownership: inputs are copied.
 * Thread safety: not concurrently with other calls on the same model.
 */
GTL_API gtl_status gtl_model_forward_backward(gtl_model *model, const float *features, int64_t n,
                                              int64_t feature_dim, const int64_t *labels,
                                              float *stats, size_t n_stats);

/**
 * Applies the gradients of the last gtl_model_forward_backward() with the
 * optimizer (clipping, schedule and weight decay as configured on it), and
 * moves the class centers in classifier stages. Advances the stage's step
 * counter.
 *
 * @param[in,out] model     the model.
 * @param[in,out] optimizer the optimizer; it binds to the stage's parameters
 *                          on first use and is reset when they change.
 * @param[out]    out_grad_norm global gradient norm before clipping; may be NULL.
 * @retval ::GTL_STATUS_OK            the update was applied and the step counter advanced.
 * @retval ::GTL_STATUS_INVALID_ARG   @p model or @p optimizer is NULL.
 * @retval ::GTL_STATUS_BAD_STATE     no gradients are pending.
 * @retval ::GTL_STATUS_NUMERIC       a gradient is not finite: nothing changed.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY the optimizer state cannot be allocated: nothing changed.
 *
 * Ownership: nothing is returned.
 * Thread safety: not concurrently with other calls on the model or optimizer.
 */
GTL_API gtl_status gtl_model_apply(gtl_model *model, gtl_optimizer *optimizer,
                                   float *out_grad_norm);

/**
 * One training step of the current stage: gtl_model_forward_backward()
 * followed by gtl_model_apply(). Statistics include GTL_STAT_GRAD_NORM and
 * GTL_STAT_LR.
 *
 * @param[in,out] model       the model, with a stage set.
 * @param[in,out] optimizer   the optimizer.
 * @param[in]     features    n * feature_dim floats.
 * @param[in]     n           batch size, >= 2.
 * @param[in]     feature_dim must equal GTL_MODEL_FEATURE_DIM.
 * @param[in]     labels      as for gtl_model_forward_backward().
 * @param[out]    stats       statistics, or NULL.
 * @param[in]     n_stats     entries available in @p stats.
 * @retval ::GTL_STATUS_OK            the step was applied.
 * @retval ::GTL_STATUS_INVALID_ARG   as gtl_model_forward_backward(), or @p optimizer is NULL.
 * @retval ::GTL_STATUS_BAD_STATE     no stage is set.
 * @retval ::GTL_STATUS_NUMERIC       the loss or a gradient is not finite: parameters, optimizer
 *                                    state and counters are unchanged.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * Ownership: inputs are copied.
 * Thread safety: not concurrently with other calls on the model or optimizer.
 */
GTL_API gtl_status gtl_model_train_step(gtl_model *model, gtl_optimizer *optimizer,
                                        const float *features, int64_t n, int64_t feature_dim,
                                        const int64_t *labels, float *stats, size_t n_stats);

/**
 * Runs a whole stage over a dataset: gtl_model_set_stage() (with the
 * dataset's class count for B2/N2, labels must be 0..C-1: see
 * gtl_dataset_remap_labels(); B1/N1 with GTL_MODEL_REP_CLS_WEIGHT > 0 take
 * the dataset's class count for the classification term, class k being the
 * k-th smallest label, so any labels work), then @p epochs epochs of identity batches
 * (GTL_MODEL_BATCH_CLASSES x GTL_MODEL_BATCH_SAMPLES; an epoch is
 * ceil(size / batch) steps, at least 1).
 *
 * The optimizer is used as configured; its schedule counts steps.
 *
 * @param[in,out] model     the model.
 * @param[in,out] optimizer the optimizer.
 * @param[in]     stage     a ::gtl_stage.
 * @param[in]     data      the data; its feature size must match the model's.
 * @param[in]     epochs    >= 1.
 * @param[in]     progress  called after every step, or NULL.
 * @param[in]     user_data passed to @p progress.
 * @retval ::GTL_STATUS_OK            every step ran (steps whose loss was not finite are skipped
 *                                    and counted in the log, not fatal).
 * @retval ::GTL_STATUS_INVALID_ARG   a pointer argument is NULL, @p stage is unknown, @p epochs <
 *                                    1, the feature size differs, fewer than 2 samples, or labels
 *                                    not 0..C-1 for B2/N2.
 * @retval ::GTL_STATUS_CANCELLED     the progress callback asked to stop; every completed step is
 *                                    applied.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * Ownership: @p data is read, not kept.
 * Thread safety: not concurrently with other calls on the model or optimizer.
 */
GTL_API gtl_status gtl_model_train_stage(gtl_model *model, gtl_optimizer *optimizer,
                                         gtl_stage stage, const gtl_dataset *data,
                                         int64_t epochs, gtl_progress_fn progress,
                                         void *user_data);

/**
 * Adapts the model to novel classes from a support set: stage N1
 * (GTL_MODEL_N1_EPOCHS epochs, Adam at GTL_MODEL_N1_LR) then stage N2
 * (GTL_MODEL_N2_EPOCHS epochs, Adam at GTL_MODEL_N2_LR), each with weight
 * decay GTL_MODEL_WEIGHT_DECAY, a GTL_MODEL_WARMUP_EPOCHS linear warm-up,
 * x0.1 decay at half the stage and clipping at GTL_MODEL_CLIP_NORM.
 * Afterwards the model classifies the support's C classes (labels 0..C-1).
 *
 * @param[in,out] model     the model (normally after B1 and B2).
 * @param[in]     support   the support set; labels 0..C-1, every class
 *                          present, at least 2 samples.
 * @param[in]     progress  called after every step, or NULL.
 * @param[in]     user_data passed to @p progress.
 * @retval ::GTL_STATUS_OK            the model classifies the support set's classes (non-finite
 *                                    steps are skipped and logged, not fatal).
 * @retval ::GTL_STATUS_INVALID_ARG   @p model or @p support is NULL, the support set is empty or
 *                                    has fewer than 2 samples, a class has no samples, labels are
 *                                    not 0..C-1, or the feature size differs.
 * @retval ::GTL_STATUS_CANCELLED     the progress callback asked to stop; every completed step is
 *                                    applied.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * Ownership: @p support is read, not kept.
 * Thread safety: not concurrently with other calls on the model.
 */
GTL_API gtl_status gtl_adapt(gtl_model *model, const gtl_dataset *support,
                             gtl_progress_fn progress, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* GTL_TRAIN_H */
