/**
 * @file eval.h
 * @brief Evaluation: baselines, metrics, the episodic and all-way protocols,
 *        episode replay and result reports.
 *
 * Everything here works on feature vectors (::gtl_dataset), so it does not
 * depend on a backbone. Three layers:
 *
 *  1. Baselines on one support/query pair: gtl_eval_nearest_centroid()
 *     (ProtoNet with cosine similarity, optionally centred) and
 *     gtl_eval_linear_probe() (multinomial logistic regression by L-BFGS).
 *  2. Metrics: gtl_eval_accuracy() (overall and per query modality),
 *     gtl_eval_mean_ci() (mean and 95% confidence interval over episodes,
 *     1.96 * std / sqrt(n) with the n-1 standard deviation) and
 *     gtl_eval_confusion().
 *  3. Protocol runners: a ::gtl_evaluator holds a METHOD (a baseline, a
 *     host callback, or GTL itself: gtl_adapt() on a fresh copy of a
 *     pretrained model, then gtl_model_predict()) and protocol settings, and
 *     runs the episodic protocol (N-way K-shot Q-query episodes, >= 600 of
 *     them), the all-way protocol (every class at once, K shots per class
 *     and support modality, the rest as test set) or a saved episode list.
 *     It records every episode's source indices so that a run can be
 *     replayed exactly, and writes its results as JSON or Markdown.
 *
 * Accuracies are fractions in [0, 1] in the API and JSON, percentages in
 * Markdown. A modality with no query sample has accuracy NaN (JSON null).
 *
 * Usage, nearest centroid against GTL on the same 600 episodes:
 * @code
 *   gtl_evaluator *ev = NULL;
 *   gtl_evaluator_create(GTL_EVAL_NEAREST_CENTROID, &ev);
 *   gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 5);
 *   gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, 1);
 *   gtl_evaluator_run_episodic(ev, novel);           // novel: a gtl_dataset
 *   double mean, ci;
 *   gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, NULL);
 *   gtl_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES, "nc.json");
 *
 *   gtl_evaluator *gev = NULL;                        // same settings and seed:
 *   gtl_evaluator_create(GTL_EVAL_GTL, &gev);         // the same episodes
 *   gtl_evaluator_set_model(gev, pretrained);         // copied
 *   gtl_evaluator_run_episodic(gev, novel);
 * @endcode
 */
#ifndef GTL_EVAL_H
#define GTL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/dataset.h"
#include "gtl/export.h"
#include "gtl/model.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A method plus protocol settings plus the results of its last run. Opaque. */
typedef struct gtl_evaluator gtl_evaluator;

/** The modality argument that selects every query sample. */
#define GTL_EVAL_TOTAL (-1)
/** Entries of the per-modality arrays: one per modality tag 0..31. */
#define GTL_EVAL_NUM_MODALITIES 32

/** What an evaluator runs on each episode. Values are append-only. */
typedef enum gtl_eval_method {
    /** Cosine similarity to class centroids of L2-normalised support features. */
    GTL_EVAL_NEAREST_CENTROID = 0,
    /** The same after subtracting the mean of the support features ("centred cosine"). */
    GTL_EVAL_CENTRED_CENTROID = 1,
    /** Multinomial logistic regression on L2-normalised support features. */
    GTL_EVAL_LINEAR_PROBE = 2,
    /** A host function set with gtl_evaluator_set_callback(). */
    GTL_EVAL_CALLBACK = 3,
    /** GTL: gtl_adapt() on a copy of the model given to
     *  gtl_evaluator_set_model(), then gtl_model_predict(). */
    GTL_EVAL_GTL = 4
} gtl_eval_method;

/**
 * Evaluator settings, set with gtl_evaluator_set_i64() / gtl_evaluator_set_f32()
 * (type, default and range are given for each). Values are append-only.
 */
typedef enum gtl_eval_param {
    GTL_EVAL_N_WAY = 0,              /**< i64: classes per episode (5), 1 .. 65536 */
    GTL_EVAL_K_SHOT = 1,             /**< i64: support samples per class and support modality (1) */
    GTL_EVAL_Q_QUERY = 2,            /**< i64: query samples per class (15), 1 .. 65536 */
    GTL_EVAL_EPISODES = 3,           /**< i64: episodes of the episodic protocol (600) */
    GTL_EVAL_SEED = 4,               /**< i64: protocol seed (0), >= 0 */
    GTL_EVAL_SUPPORT_MODALITIES = 5, /**< i64: support modality mask (RGB | SKETCH = 3) */
    GTL_EVAL_QUERY_MODALITIES = 6,   /**< i64: query modality mask (0xffffffff: all) */
    GTL_EVAL_ALL_WAY_REPEATS = 7,    /**< i64: draws of the all-way split (1) */
    GTL_EVAL_PROBE_ITERS = 8,        /**< i64: linear probe L-BFGS iterations (100), 1 .. 10^6 */
    GTL_EVAL_PROBE_L2 = 9            /**< f32: linear probe L2 penalty lambda (0.01), 0 .. 10^6 */
} gtl_eval_param;

/** Report formats of gtl_evaluator_report() and gtl_evaluator_write_file(). */
typedef enum gtl_eval_format {
    GTL_EVAL_FORMAT_JSON = 0,    /**< one JSON object (UTF-8), ending in a newline */
    GTL_EVAL_FORMAT_MARKDOWN = 1 /**< a Markdown table (header, separator, one row), UTF-8 */
} gtl_eval_format;

/** Report flag: JSON includes the episode list (classes, support and query
 *  source indices) and each episode's accuracies. */
#define GTL_EVAL_REPORT_EPISODES 1u
/** Report flag: Markdown is the table row only, so rows of several
 *  evaluators can be stacked under one header. */
#define GTL_EVAL_REPORT_NO_HEADER 2u

/**
 * A METHOD supplied by the host. It classifies every query sample of one
 * episode from its support set.
 *
 * @param user_data the pointer given to gtl_evaluator_set_callback().
 * @param support   the support set (labels 0..N-1; borrowed for the call).
 * @param query     the query set (labels 0..N-1 are the truth: do not use
 *                  them to predict; borrowed for the call).
 * @param out_pred  one prediction in 0..N-1 per query sample (the query
 *                  size: gtl_dataset_size()); preset to -1, and every entry
 *                  must be written.
 * @return ::GTL_STATUS_OK, or any error status: the run stops and returns
 *         it, with gtl_last_error() prefixed by the episode number.
 */
typedef gtl_status (*gtl_eval_fn)(void *user_data, const gtl_dataset *support,
                                  const gtl_dataset *query, int64_t *out_pred);

/**
 * Progress callback of the runners, called after each episode. Return 0 to
 * continue, anything else to stop: the run then returns
 * ::GTL_STATUS_CANCELLED and its results cover the completed episodes.
 *
 * @param user_data  the pointer given to gtl_evaluator_set_progress().
 * @param episode    episodes completed (1 .. n_episodes).
 * @param n_episodes episodes the run will take.
 * @param accuracy   overall accuracy of the episode just completed.
 */
typedef int (*gtl_eval_progress_fn)(void *user_data, int64_t episode, int64_t n_episodes,
                                    double accuracy);

/* ---- baselines --------------------------------------------------------- */

/**
 * Nearest centroid (ProtoNet) with cosine similarity.
 *
 * Each support feature is L2-normalised; a class centroid is the mean of its
 * normalised support features; a query's score for a class is the cosine
 * similarity between the query and the centroid. With @p centred, the mean
 * of all support features is first subtracted from every support and query
 * feature ("centred cosine"). A zero vector has score 0 with every class.
 *
 * Classes are the distinct support labels in increasing order: score column
 * j belongs to the j-th smallest label; predictions are label values. Ties
 * go to the smaller label.
 *
 * @param[in]  support         the support set, >= 1 sample.
 * @param[in]  query           the query set, >= 1 sample, same feature size.
 * @param[in]  centred         1 to centre on the support mean, 0 not to.
 * @param[out] out_pred        one predicted label per query sample.
 * @param[in]  pred_capacity   entries available in @p out_pred.
 * @param[out] out_scores      query size * C cosine scores (row-major), or NULL.
 * @param[in]  scores_capacity floats available in @p out_scores.
 * @retval ::GTL_STATUS_OK            the predictions (and scores) were written.
 * @retval ::GTL_STATUS_INVALID_ARG   @p support, @p query or @p out_pred is NULL, a set is empty,
 *                                    the feature sizes differ, @p centred is not 0 or 1, or a
 *                                    capacity is too small; nothing is written.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * Ownership: the caller owns the output arrays; the sets are read, not kept.
 * Thread safety: safe; read-only on the sets.
 */
GTL_API gtl_status gtl_eval_nearest_centroid(const gtl_dataset *support, const gtl_dataset *query,
                                             int32_t centred, int64_t *out_pred,
                                             size_t pred_capacity, float *out_scores,
                                             size_t scores_capacity);

/**
 * Linear probe: multinomial logistic regression on the L2-normalised
 * support features, then prediction of the L2-normalised query features.
 *
 * Minimises (1/n) sum_i CE(W x_i + b, y_i) + (l2 / 2) ||W||^2 (the bias is
 * not penalised) from W = 0, b = 0, full batch, by L-BFGS (memory 10,
 * backtracking Armijo line search), in double precision, for at most
 * @p n_iters iterations; it stops earlier when the largest gradient entry
 * falls below 1e-7. The result is deterministic: the same inputs give the
 * same bits.
 *
 * Classes and outputs are as for gtl_eval_nearest_centroid(): probability
 * column j belongs to the j-th smallest support label.
 *
 * @param[in]  support        the support set, >= 1 sample.
 * @param[in]  query          the query set, >= 1 sample, same feature size.
 * @param[in]  n_iters        L-BFGS iterations, 1 .. 10^6 (100 is the evaluator default).
 * @param[in]  l2             penalty lambda, finite, 0 .. 10^6 (0.01 by default).
 * @param[out] out_pred       one predicted label per query sample.
 * @param[in]  pred_capacity  entries available in @p out_pred.
 * @param[out] out_probs      query size * C softmax probabilities, or NULL.
 * @param[in]  probs_capacity floats available in @p out_probs.
 * @retval ::GTL_STATUS_OK            the predictions (and probabilities) were written.
 * @retval ::GTL_STATUS_INVALID_ARG   @p support, @p query or @p out_pred is NULL, a set is empty,
 *                                    the feature sizes differ, @p n_iters or @p l2 is out of
 *                                    range, or a capacity is too small; nothing is written.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * Ownership: the caller owns the output arrays; the sets are read, not kept.
 * Thread safety: safe; read-only on the sets.
 */
GTL_API gtl_status gtl_eval_linear_probe(const gtl_dataset *support, const gtl_dataset *query,
                                         int64_t n_iters, float l2, int64_t *out_pred,
                                         size_t pred_capacity, float *out_probs,
                                         size_t probs_capacity);

/* ---- metrics ----------------------------------------------------------- */

/**
 * Top-1 accuracy of predictions against the labels of @p query, overall and
 * per modality tag of the query samples.
 *
 * @param[in]  query                 the labelled set the predictions are for.
 * @param[in]  pred                  one predicted label per query sample.
 * @param[in]  n_pred                must equal the query size.
 * @param[out] out_accuracy          overall accuracy in [0, 1]; may be NULL.
 * @param[out] out_modality_accuracy accuracy per modality tag (entry m for
 *                                   tag m; NaN when no sample has tag m), or NULL.
 * @param[out] out_modality_count    samples per modality tag, or NULL.
 * @param[in]  modality_capacity     entries available in each non-NULL
 *                                   per-modality array: >= ::GTL_EVAL_NUM_MODALITIES.
 * @retval ::GTL_STATUS_OK          the accuracies were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p query or @p pred is NULL, the query set is empty, @p n_pred
 *                                  differs from its size, or @p modality_capacity is too small for
 *                                  a non-NULL array; nothing is written.
 *
 * Ownership: the caller owns the output arrays.
 * Thread safety: safe; read-only on the set.
 */
GTL_API gtl_status gtl_eval_accuracy(const gtl_dataset *query, const int64_t *pred,
                                     int64_t n_pred, double *out_accuracy,
                                     double *out_modality_accuracy, int64_t *out_modality_count,
                                     size_t modality_capacity);

/**
 * Mean and 95% confidence interval of per-episode values:
 * ci95 = 1.96 * std / sqrt(n), std the sample standard deviation (n - 1 in
 * the denominator). NaN values (a modality absent from an episode) are
 * skipped; n counts the others. With n = 1 the interval is NaN; with n = 0
 * the mean is NaN too.
 *
 * @param[in]  values     n values.
 * @param[in]  n          number of values, >= 1.
 * @param[out] out_mean   the mean; may be NULL.
 * @param[out] out_ci95   the half-width of the interval; may be NULL.
 * @param[out] out_n_used values that were not NaN; may be NULL.
 * @retval ::GTL_STATUS_OK          the statistics were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p values is NULL, n < 1, or a value is infinite.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe.
 */
GTL_API gtl_status gtl_eval_mean_ci(const double *values, int64_t n, double *out_mean,
                                    double *out_ci95, int64_t *out_n_used);

/**
 * Confusion matrix: entry [t * n_classes + p] counts query samples of label
 * t predicted as p.
 *
 * @param[in]  query      the labelled set; every label < n_classes.
 * @param[in]  pred       one prediction per query sample, each in 0 .. n_classes-1.
 * @param[in]  n_pred     must equal the query size.
 * @param[in]  n_classes  1 .. 65536.
 * @param[out] out_matrix n_classes * n_classes counts.
 * @param[in]  capacity   entries available in @p out_matrix.
 * @retval ::GTL_STATUS_OK          the matrix was written.
 * @retval ::GTL_STATUS_INVALID_ARG a pointer argument is NULL, @p n_pred differs from the query
 *                                  size, @p n_classes is out of range, a label or prediction is
 *                                  out of range, or @p capacity is too small; nothing is written.
 *
 * Ownership: the caller owns @p out_matrix.
 * Thread safety: safe; read-only on the set.
 */
GTL_API gtl_status gtl_eval_confusion(const gtl_dataset *query, const int64_t *pred,
                                      int64_t n_pred, int64_t n_classes, int64_t *out_matrix,
                                      size_t capacity);

/* ---- evaluator ---------------------------------------------------------- */

/**
 * Creates an evaluator for @p method with default settings (5-way 1-shot
 * 15-query, 600 episodes, seed 0, RGB + sketch support, every modality as
 * query; linear probe 100 iterations, lambda 0.01).
 *
 * @param[in]  method        a ::gtl_eval_method.
 * @param[out] out_evaluator the new evaluator; NULL on failure.
 * @retval ::GTL_STATUS_OK            @p out_evaluator holds the new evaluator.
 * @retval ::GTL_STATUS_INVALID_ARG   @p out_evaluator is NULL or @p method is unknown.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY the evaluator cannot be allocated.
 *
 * Ownership: the caller frees it with gtl_evaluator_destroy().
 * Thread safety: distinct evaluators may be used from distinct threads.
 */
GTL_API gtl_status gtl_evaluator_create(gtl_eval_method method, gtl_evaluator **out_evaluator);

/**
 * Destroys an evaluator, its model copies and its results. NULL is accepted
 * and ignored.
 *
 * @param[in] evaluator the evaluator, or NULL.
 *
 * Ownership: frees everything the evaluator holds; the host's callback
 *   user data and model are not touched.
 * Thread safety: the evaluator must not be in use by another thread.
 */
GTL_API void gtl_evaluator_destroy(gtl_evaluator *evaluator);

/**
 * Sets an integer setting.
 *
 * @param[in,out] evaluator the evaluator.
 * @param[in]     key       a ::gtl_eval_param whose type is i64.
 * @param[in]     value     within the documented range (masks: 1 .. 2^32-1).
 * @retval ::GTL_STATUS_OK          the setting is changed.
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator is NULL, @p key is unknown or an f32 key, or @p
 *                                  value is out of range; nothing changes.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not concurrently with other calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_set_i64(gtl_evaluator *evaluator, gtl_eval_param key,
                                         int64_t value);

/**
 * Reads an integer setting.
 *
 * @param[in]  evaluator the evaluator.
 * @param[in]  key       a ::gtl_eval_param whose type is i64.
 * @param[out] out_value the value.
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL, or @p key is unknown or an f32 key.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_get_i64(const gtl_evaluator *evaluator, gtl_eval_param key,
                                         int64_t *out_value);

/**
 * Sets a floating-point setting.
 *
 * @param[in,out] evaluator the evaluator.
 * @param[in]     key       a ::gtl_eval_param whose type is f32.
 * @param[in]     value     finite, within the documented range.
 * @retval ::GTL_STATUS_OK          the setting is changed.
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator is NULL, @p key is unknown or an i64 key, or @p
 *                                  value is not finite or out of range; nothing changes.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not concurrently with other calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_set_f32(gtl_evaluator *evaluator, gtl_eval_param key,
                                         float value);

/**
 * Reads a floating-point setting.
 *
 * @param[in]  evaluator the evaluator.
 * @param[in]  key       a ::gtl_eval_param whose type is f32.
 * @param[out] out_value the value.
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL, or @p key is unknown or an i64 key.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_get_f32(const gtl_evaluator *evaluator, gtl_eval_param key,
                                         float *out_value);

/**
 * Sets the host function of a ::GTL_EVAL_CALLBACK evaluator.
 *
 * @param[in,out] evaluator the evaluator.
 * @param[in]     fn        the method; NULL unsets it.
 * @param[in]     user_data passed to @p fn.
 * @retval ::GTL_STATUS_OK          the callback is set (or unset).
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator is NULL.
 * @retval ::GTL_STATUS_BAD_STATE   the evaluator's method is not ::GTL_EVAL_CALLBACK.
 *
 * Ownership: @p user_data stays the host's; it must outlive the runs.
 * Thread safety: not concurrently with other calls on the same evaluator.
 *   @p fn is called on the thread that runs the evaluator.
 */
GTL_API gtl_status gtl_evaluator_set_callback(gtl_evaluator *evaluator, gtl_eval_fn fn,
                                              void *user_data);

/**
 * Sets the pretrained model of a ::GTL_EVAL_GTL evaluator (normally after
 * stages B1 and B2). The model is copied now (gtl_model_clone()); each
 * episode starts from that copy, adapts a working copy with gtl_adapt()
 * (schedule: the model's GTL_MODEL_N1_* / N2_* settings) and predicts with
 * gtl_model_predict(). Episodes are therefore independent of each other.
 *
 * @param[in,out] evaluator the evaluator.
 * @param[in]     model     the pretrained model, initialised, no gradients pending.
 * @retval ::GTL_STATUS_OK            the evaluator holds a copy of @p model.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL.
 * @retval ::GTL_STATUS_BAD_STATE     the method is not ::GTL_EVAL_GTL, or the model is not
 *                                    initialised or has gradients pending.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed; the previous copy is kept.
 * @retval ::GTL_STATUS_BACKEND       oneDNN could not create its CPU engine; the previous copy is
 *                                    kept.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN cannot create a CPU engine on this machine.
 *
 * Ownership: the model is copied; the caller keeps and destroys its own.
 * Thread safety: read-only on @p model; not concurrently with other calls
 *   on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_set_model(gtl_evaluator *evaluator, const gtl_model *model);

/**
 * Sets the progress callback of the runners.
 *
 * @param[in,out] evaluator the evaluator.
 * @param[in]     fn        called after each episode, or NULL for none.
 * @param[in]     user_data passed to @p fn.
 * @retval ::GTL_STATUS_OK          the callback is set (or unset).
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator is NULL.
 *
 * Ownership: @p user_data stays the host's.
 * Thread safety: not concurrently with other calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_set_progress(gtl_evaluator *evaluator, gtl_eval_progress_fn fn,
                                              void *user_data);

/**
 * Runs the episodic protocol: GTL_EVAL_EPISODES episodes, episode e drawn by
 * gtl_episode_sample() from @p source with N_WAY, K_SHOT, Q_QUERY, the two
 * modality masks and the seed splitmix64(SEED + (e + 1) * 0x9E3779B97F4A7C15)
 * (so the first E episodes of a longer run are the same E episodes, and two
 * evaluators with equal settings see the same episodes). For each episode
 * the method predicts the query set; the run records the overall and
 * per-modality accuracy and the episode's source indices.
 *
 * @param[in,out] evaluator the evaluator; its previous results are replaced.
 * @param[in]     source    the dataset of novel classes.
 * @retval ::GTL_STATUS_OK            the results of every episode are recorded.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, the sampler cannot fill an episode (the
 *                                    message says why), or a callback prediction is out of range
 *                                    or unset.
 * @retval ::GTL_STATUS_BAD_STATE     no callback (::GTL_EVAL_CALLBACK) or model (::GTL_EVAL_GTL)
 *                                    is set.
 * @retval ::GTL_STATUS_CANCELLED     the progress callback stopped the run: results cover the
 *                                    completed episodes.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       (::GTL_EVAL_GTL) oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   (::GTL_EVAL_GTL) oneDNN has no kernel for one of the
 *                                    operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * With ::GTL_EVAL_CALLBACK, an error status the host function returns is returned as it is,
 * whatever its value. The message of every failure inside an episode names the episode. On
 * failures other than ::GTL_STATUS_CANCELLED the evaluator has no results.
 *
 * Ownership: @p source is read, not kept.
 * Thread safety: not concurrently with other calls on the same evaluator;
 *   read-only on @p source.
 */
GTL_API gtl_status gtl_evaluator_run_episodic(gtl_evaluator *evaluator,
                                              const gtl_dataset *source);

/**
 * Runs the all-way protocol: every class of @p source at once. For each
 * class, K_SHOT samples of each support modality (drawn with the seeded
 * sampler) form the support set; every remaining sample of the class whose
 * modality is in the query mask and whose pair id is not used on the
 * support side is a test sample. GTL_EVAL_ALL_WAY_REPEATS draws are run
 * (draw r uses the seed derivation of gtl_evaluator_run_episodic() with
 * e = r); with one draw the confidence interval is NaN. N_WAY, Q_QUERY and
 * EPISODES are ignored.
 *
 * @param[in,out] evaluator the evaluator; its previous results are replaced.
 * @param[in]     source    the dataset of novel classes (>= 1 class).
 * @retval ::GTL_STATUS_OK            the results of every draw are recorded.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, a class lacks K_SHOT samples of a
 *                                    support modality, no test sample is left, or a callback
 *                                    prediction is out of range or unset.
 * @retval ::GTL_STATUS_BAD_STATE     no callback (::GTL_EVAL_CALLBACK) or model (::GTL_EVAL_GTL)
 *                                    is set.
 * @retval ::GTL_STATUS_CANCELLED     the progress callback stopped the run: results cover the
 *                                    completed episodes.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       (::GTL_EVAL_GTL) oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   (::GTL_EVAL_GTL) oneDNN has no kernel for one of the
 *                                    operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * With ::GTL_EVAL_CALLBACK, an error status the host function returns is returned as it is,
 * whatever its value. The message of every failure inside an episode names the episode. On
 * failures other than ::GTL_STATUS_CANCELLED the evaluator has no results.
 *
 * Ownership: @p source is read, not kept.
 * Thread safety: as gtl_evaluator_run_episodic().
 */
GTL_API gtl_status gtl_evaluator_run_all_way(gtl_evaluator *evaluator,
                                             const gtl_dataset *source);

/**
 * Runs the method on a saved episode list (gtl_evaluator_episode_list()),
 * rebuilding each episode with gtl_episode_from_indices(): the same source
 * and list give the same support and query sets, row for row, hence the
 * same predictions for deterministic methods.
 *
 * List format, int64 values, episode after episode:
 * `n_way, n_support, n_query, class_labels[n_way], support[n_support], query[n_query]`,
 * with source labels and source row indices.
 *
 * @param[in,out] evaluator the evaluator; its previous results are replaced.
 * @param[in]     source    the dataset the list was drawn from.
 * @param[in]     list      the episode list.
 * @param[in]     n         values in @p list.
 * @retval ::GTL_STATUS_OK            the results of every listed episode are recorded.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, the list is malformed (truncated, counts
 *                                    out of range, an index or label that does not fit @p source,
 *                                    an episode without query samples), or a callback prediction
 *                                    is out of range or unset.
 * @retval ::GTL_STATUS_BAD_STATE     no callback (::GTL_EVAL_CALLBACK) or model (::GTL_EVAL_GTL)
 *                                    is set.
 * @retval ::GTL_STATUS_CANCELLED     the progress callback stopped the run: results cover the
 *                                    completed episodes.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       (::GTL_EVAL_GTL) oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   (::GTL_EVAL_GTL) oneDNN has no kernel for one of the
 *                                    operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * With ::GTL_EVAL_CALLBACK, an error status the host function returns is returned as it is,
 * whatever its value. The message of every failure inside an episode names the episode. On
 * failures other than ::GTL_STATUS_CANCELLED the evaluator has no results.
 *
 * Ownership: @p source and @p list are read, not kept.
 * Thread safety: as gtl_evaluator_run_episodic().
 */
GTL_API gtl_status gtl_evaluator_run_episode_list(gtl_evaluator *evaluator,
                                                  const gtl_dataset *source, const int64_t *list,
                                                  size_t n);

/**
 * Mean accuracy and its 95% confidence interval over the episodes of the
 * last run (gtl_eval_mean_ci() on gtl_evaluator_accuracies()).
 *
 * @param[in]  evaluator    the evaluator.
 * @param[in]  modality     ::GTL_EVAL_TOTAL, or a modality tag 0..31.
 * @param[out] out_mean     mean accuracy in [0, 1] (NaN if no episode had
 *                          a query sample of that modality); may be NULL.
 * @param[out] out_ci95     half-width of the interval (NaN for fewer than 2
 *                          episodes); may be NULL.
 * @param[out] out_n        episodes that contributed; may be NULL.
 * @retval ::GTL_STATUS_OK          the statistics were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator is NULL or @p modality is out of range.
 * @retval ::GTL_STATUS_BAD_STATE   the evaluator has no results.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_result(const gtl_evaluator *evaluator, int32_t modality,
                                        double *out_mean, double *out_ci95, int64_t *out_n);

/**
 * Per-episode accuracies of the last run.
 *
 * @param[in]  evaluator the evaluator.
 * @param[in]  modality  ::GTL_EVAL_TOTAL, or a modality tag 0..31.
 * @param[out] dst       one accuracy per episode (NaN where the episode had
 *                       no query sample of that modality), or NULL to query the count.
 * @param[in]  capacity  entries available in @p dst.
 * @param[out] out_n     the number of episodes.
 * @retval ::GTL_STATUS_OK          the count (and accuracies, if @p dst is given) were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator or @p out_n is NULL, @p modality is out of range,
 *                                  or @p capacity is too small (nothing is written).
 * @retval ::GTL_STATUS_BAD_STATE   the evaluator has no results.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_accuracies(const gtl_evaluator *evaluator, int32_t modality,
                                            double *dst, size_t capacity, int64_t *out_n);

/**
 * The episode list of the last run, in the format of
 * gtl_evaluator_run_episode_list(): save it (it is plain int64 values) to
 * replay the run.
 *
 * @param[in]  evaluator the evaluator.
 * @param[out] dst       the list, or NULL to query its length.
 * @param[in]  capacity  entries available in @p dst.
 * @param[out] out_n     the length of the list.
 * @retval ::GTL_STATUS_OK          the length (and list, if @p dst is given) were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p evaluator or @p out_n is NULL, or @p capacity is too small
 *                                  (nothing is written).
 * @retval ::GTL_STATUS_BAD_STATE   the evaluator has no results.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_episode_list(const gtl_evaluator *evaluator, int64_t *dst,
                                              size_t capacity, size_t *out_n);

/**
 * Writes the results of the last run as text: JSON (method, protocol,
 * settings, mean / ci95 / n overall and per query modality; with
 * ::GTL_EVAL_REPORT_EPISODES the episode list and per-episode accuracies)
 * or a Markdown table (percentages, "mean ± ci95").
 *
 * @param[in]  evaluator the evaluator.
 * @param[in]  format    a ::gtl_eval_format.
 * @param[in]  flags     ::GTL_EVAL_REPORT_EPISODES, ::GTL_EVAL_REPORT_NO_HEADER or 0.
 * @param[out] dst       the NUL-terminated text, or NULL to query the size.
 * @param[in]  capacity  bytes available in @p dst: at least *out_len + 1.
 * @param[out] out_len   length of the text without the NUL.
 * @retval ::GTL_STATUS_OK            the length (and text, if @p dst is given) were written.
 * @retval ::GTL_STATUS_INVALID_ARG   @p evaluator or @p out_len is NULL, the format or a flag is
 *                                    unknown, or @p capacity is too small (nothing is written;
 *                                    *out_len is still set).
 * @retval ::GTL_STATUS_BAD_STATE     the evaluator has no results.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_report(const gtl_evaluator *evaluator, gtl_eval_format format,
                                        uint32_t flags, char *dst, size_t capacity,
                                        size_t *out_len);

/**
 * Writes gtl_evaluator_report() text to a file (created or truncated).
 *
 * @param[in] evaluator the evaluator.
 * @param[in] format    a ::gtl_eval_format.
 * @param[in] flags     as for gtl_evaluator_report().
 * @param[in] path      the file.
 * @retval ::GTL_STATUS_OK            the file was written.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, or the format or a flag is unknown.
 * @retval ::GTL_STATUS_BAD_STATE     the evaluator has no results.
 * @retval ::GTL_STATUS_IO            the file cannot be written (the message has the OS reason).
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * Ownership: nothing is kept.
 * Thread safety: safe with other read-only calls on the same evaluator.
 */
GTL_API gtl_status gtl_evaluator_write_file(const gtl_evaluator *evaluator,
                                            gtl_eval_format format, uint32_t flags,
                                            const char *path);

#ifdef __cplusplus
}
#endif

#endif /* GTL_EVAL_H */
