/**
 * @file optim.h
 * @brief The optimizer handle: Adam, AdamW or SGD, gradient clipping and the
 *        learning-rate schedule, configured with typed, enum-keyed setters.
 *
 * A ::gtl_optimizer holds settings (learning rate, betas, weight decay, ...)
 * and training state (step count and moment buffers). It updates a model's
 * parameters from their gradients; the model calls it once per training step.
 * Its update rules are those of PyTorch's `torch.optim.Adam`, `AdamW` and
 * `SGD`, its clipping is `torch.nn.utils.clip_grad_norm_`, and its schedule is
 * a linear warm-up followed by a multi-step decay (`LinearLR` chained with
 * `MultiStepLR`). docs/optimizers.md gives the formulas.
 *
 * The learning rate used by step k (k = 0 for the first step) is
 * @code
 *   lr_at(k) = LR * warmup(k) * DECAY_GAMMA ^ (number of milestones <= k)
 *   warmup(k) = WARMUP_START_FACTOR + (1 - WARMUP_START_FACTOR) * k / WARMUP_STEPS
 *               if k < WARMUP_STEPS, else 1
 * @endcode
 * Steps count optimizer updates, not epochs: to warm up over 5 epochs of 40
 * steps each, set WARMUP_STEPS to 200; to decay after epoch 60, put 2400 in
 * the milestones.
 *
 * Settings may be changed at any time; a change takes effect at the next
 * step. Settings that do not apply to the optimizer's kind (MOMENTUM for
 * Adam, BETA1 for SGD) are stored but ignored.
 *
 * Usage (the reference schedule of the GTL method: Adam, lr 1e-3, weight
 * decay 1e-4, 5-epoch warm-up, x0.1 at epoch 60, 40 steps per epoch):
 * @code
 *   gtl_optimizer *opt = NULL;
 *   gtl_status st = gtl_optimizer_create(GTL_OPTIM_ADAM, &opt);
 *   if (st == GTL_STATUS_OK)
 *       st = gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 1e-3f);
 *   if (st == GTL_STATUS_OK)
 *       st = gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, 1e-4f);
 *   if (st == GTL_STATUS_OK)
 *       st = gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, 5 * 40);
 *   const int64_t milestones[1] = {60 * 40};
 *   if (st == GTL_STATUS_OK)
 *       st = gtl_optimizer_set_milestones(opt, milestones, 1);
 *   if (st != GTL_STATUS_OK)
 *       fprintf(stderr, "%s: %s\n", gtl_strerror(st), gtl_last_error());
 *   ...
 *   gtl_optimizer_destroy(opt);
 * @endcode
 */
#ifndef GTL_OPTIM_H
#define GTL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/export.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An optimizer: settings plus training state. Opaque; made by
 *  gtl_optimizer_create(), released by gtl_optimizer_destroy(). */
typedef struct gtl_optimizer gtl_optimizer;

/**
 * The update rule. Values are explicit and append-only.
 */
typedef enum gtl_optim_kind {
    /** Adam with L2 weight decay: the decay term is added to the gradient
     *  before the moments (`torch.optim.Adam`, amsgrad off). */
    GTL_OPTIM_ADAM = 0,
    /** Adam with decoupled weight decay: parameters shrink by
     *  lr * weight_decay before the Adam update (`torch.optim.AdamW`). */
    GTL_OPTIM_ADAMW = 1,
    /** Stochastic gradient descent with optional momentum and Nesterov
     *  momentum, dampening 0, L2 weight decay (`torch.optim.SGD`). */
    GTL_OPTIM_SGD = 2
    /* New values are appended here; retired values stay as comments. */
} gtl_optim_kind;

/**
 * The optimizer settings. Values are explicit and append-only.
 *
 * Each key is either a float setting (use gtl_optimizer_set_f32() and
 * gtl_optimizer_get_f32()) or an integer setting (gtl_optimizer_set_i64(),
 * gtl_optimizer_get_i64()), as listed below; using the wrong type is an
 * error. gtl_optim_param_bounds() gives the closed range [lo, hi] each key
 * accepts. Defaults are PyTorch's where PyTorch has one.
 */
typedef enum gtl_optim_param {
    /** float, [0, 1000]. Base learning rate. Default 1e-3. */
    GTL_OPTIM_PARAM_LR = 0,
    /** float, [0, 1). Adam/AdamW first-moment decay. Default 0.9. */
    GTL_OPTIM_PARAM_BETA1 = 1,
    /** float, [0, 1). Adam/AdamW second-moment decay. Default 0.999. */
    GTL_OPTIM_PARAM_BETA2 = 2,
    /** float, [FLT_MIN, 1]. Adam/AdamW denominator term. Default 1e-8. */
    GTL_OPTIM_PARAM_EPS = 3,
    /** float, [0, 1000]. Weight decay: L2 for Adam and SGD, decoupled for
     *  AdamW. Default 0 for Adam and SGD, 1e-2 for AdamW. */
    GTL_OPTIM_PARAM_WEIGHT_DECAY = 4,
    /** float, [0, 1). SGD momentum; 0 turns momentum off. Default 0. */
    GTL_OPTIM_PARAM_MOMENTUM = 5,
    /** integer, [0, 1]. SGD: 1 for Nesterov momentum (needs MOMENTUM > 0
     *  at step time). Default 0. */
    GTL_OPTIM_PARAM_NESTEROV = 6,
    /** float, [0, FLT_MAX]. Maximum global L2 norm of the gradients; larger
     *  gradients are scaled down before the update. 0 turns clipping off.
     *  Default 0. */
    GTL_OPTIM_PARAM_CLIP_NORM = 7,
    /** integer, [0, 2^53]. Length of the linear warm-up in steps; 0 turns
     *  it off. Default 0. */
    GTL_OPTIM_PARAM_WARMUP_STEPS = 8,
    /** float, [0, 1]. Learning-rate factor at step 0 of the warm-up.
     *  Default 0.01. */
    GTL_OPTIM_PARAM_WARMUP_START_FACTOR = 9,
    /** float, [0, 1]. Factor applied to the learning rate at each
     *  milestone. Default 0.1. */
    GTL_OPTIM_PARAM_DECAY_GAMMA = 10
    /* New values are appended here; retired values stay as comments. */
} gtl_optim_param;

/** The largest number of decay milestones an optimizer holds. */
#define GTL_OPTIM_MAX_MILESTONES 64

/**
 * Creates an optimizer with the default settings of its kind and no state.
 *
 * @param[in]  kind    the update rule.
 * @param[out] out_opt the new optimizer; set to NULL on failure.
 * @retval ::GTL_STATUS_OK            @p out_opt holds the new optimizer.
 * @retval ::GTL_STATUS_INVALID_ARG   @p out_opt is NULL or @p kind is not a ::gtl_optim_kind
 *                                    value.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY the handle cannot be allocated.
 *
 * Ownership: the caller owns the optimizer and releases it with
 *   gtl_optimizer_destroy(). Moment buffers are allocated lazily by the first
 *   training step, sized to the model it updates.
 * Thread safety: safe from any thread; the new handle is not shared.
 */
GTL_API gtl_status gtl_optimizer_create(gtl_optim_kind kind, gtl_optimizer **out_opt);

/**
 * Destroys an optimizer and its state.
 *
 * @param[in] opt the optimizer, or NULL (then nothing happens).
 *
 * Ownership: frees everything the optimizer holds; @p opt is invalid after.
 * Thread safety: no other thread may use @p opt during or after the call.
 */
GTL_API void gtl_optimizer_destroy(gtl_optimizer *opt);

/**
 * Forgets the training state: the step count returns to 0, the moments
 * are forgotten, and the optimizer is no longer bound to a parameter set
 * (its next step binds to the parameters it is given, so one optimizer can
 * serve several stages). Settings are kept. gtl_model_apply() does this by
 * itself when the stage's parameters differ from the ones the state is for.
 * The moment buffers are kept: a next step on parameters of the same layout
 * reuses them without allocating; other parameters get new buffers.
 *
 * @param[in,out] opt the optimizer.
 * @retval ::GTL_STATUS_OK          the state is forgotten.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt is NULL.
 *
 * Ownership: the state memory is kept until gtl_optimizer_destroy() or a
 *   step on parameters of another layout (which replaces it).
 * Thread safety: not thread-safe on the same @p opt.
 */
GTL_API gtl_status gtl_optimizer_reset(gtl_optimizer *opt);

/**
 * The algorithm an optimizer was created with (also for one loaded from a
 * checkpoint).
 *
 * @param[in]  opt      the optimizer.
 * @param[out] out_kind the ::gtl_optim_kind.
 * @retval ::GTL_STATUS_OK          the kind was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same @p opt.
 */
GTL_API gtl_status gtl_optimizer_kind(const gtl_optimizer *opt, gtl_optim_kind *out_kind);

/**
 * Sets a float setting.
 *
 * @param[in,out] opt   the optimizer.
 * @param[in]     key   a float key (see ::gtl_optim_param).
 * @param[in]     value the new value, inside gtl_optim_param_bounds(@p key).
 * @retval ::GTL_STATUS_OK          the setting is changed.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt is NULL, @p key is not a ::gtl_optim_param value or is
 *                                  an integer key, or @p value is NaN or outside the bounds (the
 *                                  setting is left unchanged).
 * @retval ::GTL_STATUS_INTERNAL    a libgtl bug: an internal consistency check failed.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not thread-safe on the same @p opt.
 */
GTL_API gtl_status gtl_optimizer_set_f32(gtl_optimizer *opt, gtl_optim_param key, float value);

/**
 * Reads a float setting.
 *
 * @param[in]  opt       the optimizer.
 * @param[in]  key       a float key.
 * @param[out] out_value the value; set to 0 on failure.
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt or @p out_value is NULL, or @p key is not a
 *                                  ::gtl_optim_param value or is an integer key.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe concurrently with other reads of @p opt.
 */
GTL_API gtl_status gtl_optimizer_get_f32(const gtl_optimizer *opt, gtl_optim_param key,
                                         float *out_value);

/**
 * Sets an integer setting.
 *
 * @param[in,out] opt   the optimizer.
 * @param[in]     key   an integer key (see ::gtl_optim_param).
 * @param[in]     value the new value, inside gtl_optim_param_bounds(@p key).
 * @retval ::GTL_STATUS_OK          the setting is changed.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt is NULL, @p key is not a ::gtl_optim_param value or is a
 *                                  float key, or @p value is outside the bounds (the setting is
 *                                  left unchanged).
 * @retval ::GTL_STATUS_INTERNAL    a libgtl bug: an internal consistency check failed.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not thread-safe on the same @p opt.
 */
GTL_API gtl_status gtl_optimizer_set_i64(gtl_optimizer *opt, gtl_optim_param key, int64_t value);

/**
 * Reads an integer setting.
 *
 * @param[in]  opt       the optimizer.
 * @param[in]  key       an integer key.
 * @param[out] out_value the value; set to 0 on failure.
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt or @p out_value is NULL, or @p key is not a
 *                                  ::gtl_optim_param value or is a float key.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe concurrently with other reads of @p opt.
 */
GTL_API gtl_status gtl_optimizer_get_i64(const gtl_optimizer *opt, gtl_optim_param key,
                                         int64_t *out_value);

/**
 * Gives the closed range [lo, hi] of values a setting accepts. A bound
 * written "[0, 1)" above is reported as hi = the largest float below 1.
 *
 * @param[in]  key    any ::gtl_optim_param value.
 * @param[out] out_lo the smallest accepted value; set to 0 on failure.
 * @param[out] out_hi the largest accepted value; set to 0 on failure.
 * @retval ::GTL_STATUS_OK          the bounds were written.
 * @retval ::GTL_STATUS_INVALID_ARG an out pointer is NULL or @p key is not a ::gtl_optim_param
 *                                  value.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe from any thread at any time.
 */
GTL_API gtl_status gtl_optim_param_bounds(gtl_optim_param key, double *out_lo, double *out_hi);

/**
 * Sets the steps at which the learning rate is multiplied by DECAY_GAMMA.
 *
 * A milestone m takes effect from step m on: lr_at(k) carries one factor
 * DECAY_GAMMA for every milestone m <= k (PyTorch's `MultiStepLR`). Steps
 * are counted from the start of training, warm-up included.
 *
 * @param[in,out] opt     the optimizer.
 * @param[in]     steps   @p n_steps strictly increasing steps, each >= 0;
 *                        may be NULL when @p n_steps is 0.
 * @param[in]     n_steps number of milestones, at most
 *                        ::GTL_OPTIM_MAX_MILESTONES; 0 removes them all.
 * @retval ::GTL_STATUS_OK          the milestones are replaced.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt is NULL, @p steps is NULL while @p n_steps > 0, @p
 *                                  n_steps is too large, or the steps are negative or not strictly
 *                                  increasing (the milestones are left unchanged).
 *
 * Ownership: the milestones are copied; @p steps stays the caller's.
 * Thread safety: not thread-safe on the same @p opt.
 */
GTL_API gtl_status gtl_optimizer_set_milestones(gtl_optimizer *opt, const int64_t *steps,
                                                size_t n_steps);

/**
 * Copies the decay milestones out.
 *
 * @param[in]  opt          the optimizer.
 * @param[out] dst          buffer for the milestones; may be NULL if
 *                          @p dst_capacity is 0 (to query the count).
 * @param[in]  dst_capacity number of elements @p dst holds.
 * @param[out] out_n        number of milestones; set even when @p dst is too
 *                          small, and to 0 on other failures.
 * @retval ::GTL_STATUS_OK          the milestones and their count were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt or @p out_n is NULL, @p dst_capacity is smaller than the
 *                                  number of milestones (nothing is written to @p dst), or @p dst
 *                                  is NULL with a nonzero capacity.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe concurrently with other reads of @p opt.
 */
GTL_API gtl_status gtl_optimizer_get_milestones(const gtl_optimizer *opt, int64_t *dst,
                                                size_t dst_capacity, size_t *out_n);

/**
 * Computes the learning rate the schedule gives to step @p step (0 = the
 * first step), from the current settings. Per-group multipliers are not
 * included.
 *
 * @param[in]  opt    the optimizer.
 * @param[in]  step   a step index, >= 0.
 * @param[out] out_lr the learning rate; set to 0 on failure.
 * @retval ::GTL_STATUS_OK          the learning rate was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt or @p out_lr is NULL or @p step is negative.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe concurrently with other reads of @p opt.
 */
GTL_API gtl_status gtl_optimizer_lr_at(const gtl_optimizer *opt, int64_t step, float *out_lr);

/**
 * Reports how many updates the optimizer has applied since it was created,
 * reset or restored. Step k of the schedule is the one applied when this
 * count is k; failed steps do not count.
 *
 * @param[in]  opt         the optimizer.
 * @param[out] out_n_steps the count; set to 0 on failure.
 * @retval ::GTL_STATUS_OK          the count was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p opt or @p out_n_steps is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe concurrently with other reads of @p opt.
 */
GTL_API gtl_status gtl_optimizer_num_steps(const gtl_optimizer *opt, int64_t *out_n_steps);

#ifdef __cplusplus
}
#endif

#endif /* GTL_OPTIM_H */
