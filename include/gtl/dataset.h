/**
 * @file dataset.h
 * @brief Labelled feature sets (datasets), few-shot episodes and samplers.
 *
 * A ::gtl_dataset holds feature vectors, each with a class label, a modality
 * tag and an optional pair/identity id. It is what the training stages read
 * (base data for B1/B2, a support set for N1/N2) and what the evaluation
 * protocols sample episodes from.
 *
 * A ::gtl_episode is a support set and a query set drawn from a dataset by an
 * N-way K-shot Q-query sampler. Labels inside an episode are remapped to
 * 0..N-1; the original label of each episode class is kept.
 *
 * Usage:
 * @code
 *   gtl_dataset *ds = NULL;
 *   gtl_dataset_create(1280, &ds);
 *   gtl_dataset_add(ds, feats, n, labels, modalities, NULL);   // copies
 *
 *   gtl_episode *ep = NULL;
 *   gtl_episode_create(&ep);
 *   // 5-way, 1 RGB + 1 sketch support image per class, 15 RGB queries per class
 *   gtl_episode_sample(ep, ds, 5, 1, 15,
 *                      GTL_MODALITY_BIT(GTL_MODALITY_RGB) | GTL_MODALITY_BIT(GTL_MODALITY_SKETCH),
 *                      GTL_MODALITY_BIT(GTL_MODALITY_RGB), 42);
 *   const gtl_dataset *support = gtl_episode_support(ep);
 * @endcode
 */
#ifndef GTL_DATASET_H
#define GTL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/export.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A labelled set of feature vectors. Opaque; created and destroyed by libgtl. */
typedef struct gtl_dataset gtl_dataset;
/** A support set and a query set sampled from a dataset. Opaque. */
typedef struct gtl_episode gtl_episode;

/**
 * Modality tags. Values 0..15 are reserved for libgtl; a host may use any
 * value from ::GTL_MODALITY_USER to 31 for its own modalities.
 */
typedef enum gtl_modality {
    GTL_MODALITY_RGB = 0,      /**< colour photographs and renders */
    GTL_MODALITY_SKETCH = 1,   /**< line drawings */
    GTL_MODALITY_INFRARED = 2, /**< thermal / near-infrared images */
    GTL_MODALITY_DEPTH = 3,    /**< depth maps */
    GTL_MODALITY_USER = 16     /**< first value free for host-defined modalities (up to 31) */
} gtl_modality;

/** The bit of a modality in a modality mask. */
#define GTL_MODALITY_BIT(m) (1u << (m))
/** A mask that selects every modality. */
#define GTL_MODALITY_ALL 0xffffffffu

/** No pair/identity id: the sample is unrelated to every other sample. */
#define GTL_NO_PAIR (-1)

/**
 * Creates an empty dataset of feature vectors of size @p feature_dim.
 *
 * @param[in]  feature_dim size of each feature vector, 1 .. 2^20.
 * @param[out] out_dataset the new dataset; NULL on failure.
 * @retval ::GTL_STATUS_OK            @p out_dataset holds the new dataset.
 * @retval ::GTL_STATUS_INVALID_ARG   @p out_dataset is NULL or @p feature_dim is out of range.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY the dataset cannot be allocated.
 *
 * Ownership: the caller owns the dataset and frees it with gtl_dataset_destroy().
 * Thread safety: safe; distinct datasets may be used from distinct threads.
 */
GTL_API gtl_status gtl_dataset_create(int64_t feature_dim, gtl_dataset **out_dataset);

/**
 * Destroys a dataset. NULL is accepted and ignored.
 *
 * @param[in] dataset the dataset, or NULL.
 *
 * Ownership: frees everything the dataset holds; borrowed pointers into it
 *   (none are handed out) become invalid.
 * Thread safety: the dataset must not be in use by another thread.
 */
GTL_API void gtl_dataset_destroy(gtl_dataset *dataset);

/**
 * Appends @p n samples, copying them.
 *
 * Every value is checked before anything is appended: a failed call leaves
 * the dataset unchanged.
 *
 * @param[in,out] dataset    the dataset.
 * @param[in]     features   n * feature_dim floats, row-major; all finite.
 * @param[in]     n          number of samples, >= 1.
 * @param[in]     labels     n class labels, each >= 0.
 * @param[in]     modalities n modality tags in 0..31, or NULL for all ::GTL_MODALITY_RGB.
 * @param[in]     pair_ids   n pair/identity ids (>= 0, or ::GTL_NO_PAIR), or NULL
 *                           for none. Samples sharing an id (for example the
 *                           photo and the sketch of one object) are never split
 *                           between the support and the query side of an episode.
 * @retval ::GTL_STATUS_OK            the samples were appended.
 * @retval ::GTL_STATUS_INVALID_ARG   @p dataset, @p features or @p labels is NULL; n < 1; a NaN or
 *                                    infinite feature; a negative label; a modality outside 0..31;
 *                                    a pair id < -1 (nothing is appended).
 * @retval ::GTL_STATUS_OUT_OF_MEMORY growing the dataset failed; it is unchanged.
 *
 * Ownership: the data are copied; the caller keeps its arrays.
 * Thread safety: not concurrently with other calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_add(gtl_dataset *dataset, const float *features, int64_t n,
                                   const int64_t *labels, const int32_t *modalities,
                                   const int64_t *pair_ids);

/**
 * Number of samples.
 *
 * @param[in]  dataset the dataset.
 * @param[out] out_n   number of samples.
 * @retval ::GTL_STATUS_OK          the size was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_size(const gtl_dataset *dataset, int64_t *out_n);

/**
 * Feature size the dataset was created with.
 *
 * @param[in]  dataset         the dataset.
 * @param[out] out_feature_dim the feature size.
 * @retval ::GTL_STATUS_OK          the feature size was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_feature_dim(const gtl_dataset *dataset, int64_t *out_feature_dim);

/**
 * Number of distinct class labels, and the largest label plus one.
 *
 * @param[in]  dataset       the dataset.
 * @param[out] out_n_classes number of distinct labels.
 * @param[out] out_label_end largest label + 1 (0 when empty); may be NULL.
 * @retval ::GTL_STATUS_OK          the counts were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p dataset or @p out_n_classes is NULL.
 *
 * Ownership: nothing is returned that needs freeing.
 * Thread safety: safe with other read-only calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_num_classes(const gtl_dataset *dataset, int64_t *out_n_classes,
                                           int64_t *out_label_end);

/**
 * Copies sample @p index out.
 *
 * @param[in]  dataset      the dataset.
 * @param[in]  index        0 .. size - 1.
 * @param[out] dst          feature_dim floats, or NULL to skip the features.
 * @param[in]  dst_capacity capacity of @p dst in floats (ignored when dst is NULL).
 * @param[out] out_label    the label; may be NULL.
 * @param[out] out_modality the modality; may be NULL.
 * @param[out] out_pair_id  the pair id or ::GTL_NO_PAIR; may be NULL.
 * @retval ::GTL_STATUS_OK          the sample was copied.
 * @retval ::GTL_STATUS_INVALID_ARG @p dataset is NULL, @p index is out of range, or @p
 *                                  dst_capacity < feature_dim (nothing is written to @p dst; the
 *                                  other out parameters are zeroed).
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe with other read-only calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_get(const gtl_dataset *dataset, int64_t index, float *dst,
                                   size_t dst_capacity, int64_t *out_label, int32_t *out_modality,
                                   int64_t *out_pair_id);

/**
 * Remaps the labels to 0 .. C-1 in increasing order of the original labels.
 *
 * @param[in,out] dataset       the dataset.
 * @param[out]    map           map[new] = old label for each of the C classes;
 *                              may be NULL.
 * @param[in]     map_capacity  entries available in @p map.
 * @param[out]    out_n_classes C; may be NULL.
 * @retval ::GTL_STATUS_OK          the labels are remapped.
 * @retval ::GTL_STATUS_INVALID_ARG @p dataset is NULL, or @p map is not NULL and @p map_capacity <
 *                                  C (nothing is changed).
 *
 * Ownership: the caller owns @p map.
 * Thread safety: not concurrently with other calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_remap_labels(gtl_dataset *dataset, int64_t *map,
                                            size_t map_capacity, int64_t *out_n_classes);

/**
 * Draws an identity batch: @p p_classes distinct classes, @p k_samples samples
 * of each (drawn without replacement while a class has enough samples, then
 * repeated), shuffled within each class. This is the batch shape the triplet
 * loss needs (default 16 x 4).
 *
 * @param[in]     dataset       the dataset (at least one sample).
 * @param[in,out] rng_state     the sampler's random state; any value is a
 *                              valid seed; it advances with each call.
 * @param[in]     p_classes     classes per batch, >= 1 (capped at the number
 *                              of classes present).
 * @param[in]     k_samples     samples per class, >= 1.
 * @param[out]    out_indices   sample indices, p_classes * k_samples entries.
 * @param[in]     capacity      entries available in out_indices.
 * @param[out]    out_n         entries written.
 * @retval ::GTL_STATUS_OK          the batch was written and @p rng_state advanced.
 * @retval ::GTL_STATUS_INVALID_ARG a pointer argument is NULL, the dataset is empty, p or k < 1,
 *                                  or @p capacity < p * k (@p rng_state is unchanged).
 *
 * Ownership: the caller owns the output array.
 * Thread safety: safe with other read-only calls on the same dataset.
 */
GTL_API gtl_status gtl_dataset_identity_batch(const gtl_dataset *dataset, uint64_t *rng_state,
                                              int64_t p_classes, int64_t k_samples,
                                              int64_t *out_indices, size_t capacity,
                                              int64_t *out_n);

/**
 * Creates an empty episode.
 *
 * @param[out] out_episode the new episode; NULL on failure.
 * @retval ::GTL_STATUS_OK            @p out_episode holds the new episode.
 * @retval ::GTL_STATUS_INVALID_ARG   @p out_episode is NULL.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY the episode cannot be allocated.
 *
 * Ownership: the caller frees it with gtl_episode_destroy().
 * Thread safety: safe.
 */
GTL_API gtl_status gtl_episode_create(gtl_episode **out_episode);

/**
 * Destroys an episode and its two sets. NULL is accepted and ignored.
 *
 * @param[in] episode the episode, or NULL.
 *
 * Ownership: the datasets returned by gtl_episode_support() and
 *   gtl_episode_query() become invalid.
 * Thread safety: the episode must not be in use by another thread.
 */
GTL_API void gtl_episode_destroy(gtl_episode *episode);

/**
 * Samples an N-way K-shot Q-query episode from @p source, replacing the
 * episode's previous contents.
 *
 * N classes are drawn among those that can fill the episode. For each class,
 * the support set receives K samples of EACH modality in @p support_modalities
 * (so "1-shot" with RGB and sketch support gives 1 + 1 images per class), and
 * the query set Q samples drawn from the class's remaining samples whose
 * modality is in @p query_modalities. A pair/identity id used on the support
 * side is never used on the query side. Within a class, samples are shuffled
 * with the seeded sampler. Labels are remapped to 0..N-1.
 *
 * @param[in,out] episode            the episode.
 * @param[in]     source             the dataset to draw from.
 * @param[in]     n_way              classes, >= 1.
 * @param[in]     k_shot             support samples per class and modality, >= 1.
 * @param[in]     q_query            query samples per class, >= 0.
 * @param[in]     support_modalities mask of modalities (GTL_MODALITY_BIT) for the support set, != 0.
 * @param[in]     query_modalities   mask of modalities for the query set.
 * @param[in]     seed               the sampler seed: the same seed gives the same episode.
 * @retval ::GTL_STATUS_OK            the episode holds the new support and query sets.
 * @retval ::GTL_STATUS_INVALID_ARG   a pointer argument is NULL, a size is out of range, the
 *                                    support mask is empty, or fewer than @p n_way classes can
 *                                    provide the requested samples (the message says how many
 *                                    can).
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * On failure the episode is unchanged.
 *
 * Ownership: the episode copies what it draws; @p source is not referenced
 *   afterwards.
 * Thread safety: not concurrently with other calls on the same episode;
 *   read-only on @p source.
 */
GTL_API gtl_status gtl_episode_sample(gtl_episode *episode, const gtl_dataset *source,
                                      int64_t n_way, int64_t k_shot, int64_t q_query,
                                      uint32_t support_modalities, uint32_t query_modalities,
                                      uint64_t seed);

/**
 * The support set of an episode (labels 0..N-1), or NULL if @p episode is NULL.
 *
 * @param[in] episode the episode.
 * @return the support set (borrowed), or NULL if @p episode is NULL. This call cannot fail
 *         otherwise and does not touch gtl_last_error().
 *
 * Ownership: borrowed; owned by the episode and valid until it is destroyed
 *   or sampled again. Do not destroy it.
 * Thread safety: as for the episode.
 */
GTL_API const gtl_dataset *gtl_episode_support(const gtl_episode *episode);

/**
 * The query set of an episode (labels 0..N-1), or NULL if @p episode is NULL.
 *
 * @param[in] episode the episode.
 * @return the query set (borrowed), or NULL if @p episode is NULL. This call cannot fail
 *         otherwise and does not touch gtl_last_error().
 *
 * Ownership: borrowed, as for gtl_episode_support().
 * Thread safety: as for the episode.
 */
GTL_API const gtl_dataset *gtl_episode_query(const gtl_episode *episode);

/**
 * The original label (in the source dataset) of episode class @p cls.
 *
 * @param[in]  episode   the episode.
 * @param[in]  cls       0 .. N-1.
 * @param[out] out_label the source label.
 * @retval ::GTL_STATUS_OK          the label was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL or @p cls is out of range.
 * @retval ::GTL_STATUS_BAD_STATE   the episode was never sampled.
 *
 * Ownership: nothing is allocated.
 * Thread safety: as for the episode.
 */
GTL_API gtl_status gtl_episode_class_label(const gtl_episode *episode, int64_t cls,
                                           int64_t *out_label);

/**
 * Builds an episode from explicit source rows, replacing the episode's
 * contents: the inverse of gtl_episode_source_indices(). Support row i is
 * source row support_indices[i], query row i is source row
 * query_indices[i], in that order; the label of a row becomes the position
 * of its source label in @p class_labels (0..N-1). Feeding back the indices
 * and class labels of a sampled episode gives an identical episode.
 *
 * Not checked: that support and query rows are disjoint or share no pair
 * id, or that every class has a support sample (the sampler guarantees
 * those; a hand-made list may differ on purpose).
 *
 * @param[in,out] episode         the episode.
 * @param[in]     source          the dataset the indices refer to.
 * @param[in]     class_labels    n_way distinct source labels, in episode class order.
 * @param[in]     n_way           1 .. 65536.
 * @param[in]     support_indices n_support source rows.
 * @param[in]     n_support       1 .. source size.
 * @param[in]     query_indices   n_query source rows (may be NULL when n_query is 0).
 * @param[in]     n_query         0 .. source size.
 * @retval ::GTL_STATUS_OK            the episode holds the given rows.
 * @retval ::GTL_STATUS_INVALID_ARG   a required pointer is NULL, a count is out of range, a class
 *                                    label repeats, an index is outside the source, or a row's
 *                                    label is not in @p class_labels (the message names it).
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * On failure the episode is unchanged.
 *
 * Ownership: the episode copies the rows; @p source is not referenced afterwards.
 * Thread safety: not concurrently with other calls on the same episode;
 *   read-only on @p source.
 */
GTL_API gtl_status gtl_episode_from_indices(gtl_episode *episode, const gtl_dataset *source,
                                            const int64_t *class_labels, int64_t n_way,
                                            const int64_t *support_indices, int64_t n_support,
                                            const int64_t *query_indices, int64_t n_query);

/**
 * The source rows of an episode's support (side 0) or query (side 1) set,
 * in row order, as recorded by gtl_episode_sample() or
 * gtl_episode_from_indices(). With gtl_episode_class_label() this is all
 * that is needed to rebuild the episode.
 *
 * @param[in]  episode  the episode.
 * @param[in]  side     0 for the support set, 1 for the query set.
 * @param[out] dst      the indices, or NULL to query the count.
 * @param[in]  capacity entries available in @p dst.
 * @param[out] out_n    rows on that side.
 * @retval ::GTL_STATUS_OK          the count (and the indices, if @p dst is given) were written.
 * @retval ::GTL_STATUS_INVALID_ARG @p episode or @p out_n is NULL, @p side is not 0 or 1, or @p
 *                                  capacity is too small (nothing is written).
 * @retval ::GTL_STATUS_BAD_STATE   the episode was never filled.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: as for the episode.
 */
GTL_API gtl_status gtl_episode_source_indices(const gtl_episode *episode, int32_t side,
                                              int64_t *dst, size_t capacity, int64_t *out_n);

#ifdef __cplusplus
}
#endif

#endif /* GTL_DATASET_H */
