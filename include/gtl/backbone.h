/**
 * @file backbone.h
 * @brief Image backbones: CLIP-layout Vision Transformers (for imported CLIP
 *        weights) and a small residual CNN (trainable from scratch), image
 *        decoding, preprocessing, augmentation and feature extraction.
 *
 * A ::gtl_backbone turns images into the feature vectors the GTL head works on.
 * Images are decoded with Debian's libpng / libjpeg-turbo / libwebp (PNG, JPEG,
 * WebP; grayscale and RGBA become RGB, alpha composited on white) and
 * preprocessed as CLIP does: bicubic resize of the shorter side, centre crop,
 * CLIP's mean and standard deviation.
 *
 * Usage, features of a folder of images with imported CLIP weights:
 * @code
 *   gtl_backbone *bb = NULL;
 *   gtl_backbone_load("clip-vit-b16.safetensors", &bb);     // or gtl_backbone_create()
 *   int64_t f = 0;
 *   gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f);  // 1280
 *   gtl_status per_file[3];
 *   const char *paths[3] = {"a.png", "b.jpg", "c.webp"};
 *   gtl_backbone_embed_files(bb, paths, 3, feats, 3 * f, per_file);
 * @endcode
 */
#ifndef GTL_BACKBONE_H
#define GTL_BACKBONE_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/export.h"
#include "gtl/optim.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An image backbone. Opaque; created and destroyed by libgtl. */
typedef struct gtl_backbone gtl_backbone;

/** Architectures and sizes a backbone can be created with. Append-only. */
typedef enum gtl_backbone_preset {
    /** CLIP ViT-B/16: 224 px, patch 16, width 768, 12 layers, F = 1280 */
    GTL_BACKBONE_CLIP_VIT_B16 = 0,
    /** CLIP ViT-B/32: 224 px, patch 32, width 768, 12 layers, F = 1280 */
    GTL_BACKBONE_CLIP_VIT_B32 = 1,
    /** a small ViT for tests: 64 px, patch 8, width 64, 2 layers, 2 heads, D = 32, F = 96 */
    GTL_BACKBONE_VIT_TINY = 2,
    /** a residual CNN for training from scratch (64 px, stride-2 stem, 4 stages, F = 256) */
    GTL_BACKBONE_RESNET_SMALL = 3
} gtl_backbone_preset;

/** Backbone settings (i64 unless stated). Append-only. Defaults in parentheses. */
typedef enum gtl_backbone_param {
    /** read-only: input side in pixels */
    GTL_BACKBONE_IMAGE_SIZE = 0,
    /** read-only: F, size of the feature vector */
    GTL_BACKBONE_FEATURE_DIM = 1,
    /** ViT: 1 = CLS after ln_post, 2 = CLS @ proj, 3 = both (3); CNN: always 1 (the pooled
     *  map), not settable */
    GTL_BACKBONE_FEATURE_PARTS = 2,
    /** ViT: 1 = bf16 linear layers for inference (0); fp32 where the CPU lacks bf16, logged;
     *  not settable for the CNN */
    GTL_BACKBONE_BF16 = 3,
    /** seed of the initialisation and the head (0); on a backbone never trained nor loaded,
     *  setting it re-initialises the weights */
    GTL_BACKBONE_SEED = 4,
    /** last blocks (ViT, with ln_post and proj) or stages (CNN) that train; 0 = frozen (the
     *  ViT's default; all for a new CNN) */
    GTL_BACKBONE_TRAINABLE_BLOCKS = 5,
    /** classes of the supervised training head: 0 = none (default) or >= 2; a new value
     *  makes a fresh head */
    GTL_BACKBONE_NUM_CLASSES = 6,
    /** images per inference batch in the embed calls, 1 .. 4096 (8) */
    GTL_BACKBONE_BATCH_SIZE = 7,
    /** the loss of gtl_backbone_train_step(), a ::gtl_backbone_loss (GTL_BACKBONE_LOSS_CE) */
    GTL_BACKBONE_LOSS = 8,
    /** f32: temperature tau of the supervised contrastive loss, [0.01, 10] (0.1) */
    GTL_BACKBONE_TEMPERATURE = 9,
    /** f32: weight of the contrastive term in GTL_BACKBONE_LOSS_CE_SUPCON, [0, 100] (1) */
    GTL_BACKBONE_SUPCON_WEIGHT = 10
} gtl_backbone_param;

/**
 * Training losses of gtl_backbone_train_step() (GTL_BACKBONE_LOSS).
 *
 * The supervised contrastive loss (SupCon, Khosla et al. 2020) needs no
 * classification head: with z_i the L2-normalised feature of image i and
 * P(i) the other images of the batch with the label of i,
 * L = mean over the anchors i with P(i) non-empty of
 * -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / tau) / sum_{a != i} exp(z_i.z_a / tau) ).
 * It pulls together the views of one class (e.g. the same object in several
 * renderings) and pushes the other classes of the batch away, whatever the
 * number of classes; batches need several images per label (e.g. 16 labels
 * x 4 images).
 */
typedef enum gtl_backbone_loss {
    /** cross-entropy of a linear head over GTL_BACKBONE_NUM_CLASSES classes (default) */
    GTL_BACKBONE_LOSS_CE = 0,
    /** supervised contrastive loss only; no head (labels are any ids >= 0) */
    GTL_BACKBONE_LOSS_SUPCON = 1,
    /** cross-entropy + GTL_BACKBONE_SUPCON_WEIGHT x supervised contrastive */
    GTL_BACKBONE_LOSS_CE_SUPCON = 2
} gtl_backbone_loss;

/**
 * Creates a backbone with freshly initialised weights.
 *
 * @param[in]  preset       a ::gtl_backbone_preset.
 * @param[out] out_backbone the backbone; NULL on failure.
 * @retval ::GTL_STATUS_OK            @p out_backbone holds the new backbone.
 * @retval ::GTL_STATUS_INVALID_ARG   @p out_backbone is NULL or @p preset is unknown.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN could not create its CPU engine.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN cannot create a CPU engine on this machine.
 *
 * Ownership: the caller destroys it with gtl_backbone_destroy().
 * Thread safety: distinct backbones may be used from distinct threads.
 */
GTL_API gtl_status gtl_backbone_create(gtl_backbone_preset preset, gtl_backbone **out_backbone);

/**
 * Loads a backbone from a file, recognised by its content: a libgtl backbone
 * checkpoint (gtl_backbone_save()), or a CLIP ViT vision tower in safetensors:
 * Hugging Face `CLIPVisionModelWithProjection` (or `CLIPModel`) names
 * (`vision_model.*` and `visual_projection.weight`), or OpenAI CLIP names with
 * or without `visual.` (what `bindings/python/tools/convert_clip.py` writes
 * from OpenAI CLIP and OpenCLIP checkpoints). F32, F16 and BF16 tensors are
 * accepted; other tensors in the file are ignored. The configuration is
 * inferred from the shapes; the head count, which the weights do not show,
 * comes from the file's metadata `num_attention_heads` (or `heads`), else the
 * environment variable `GTL_CLIP_HEADS`, else 16 for widths 1280, 1408 and
 * 1664 (OpenCLIP's ViT-H/14, g/14, bigG/14) and width / 64 otherwise; the
 * MLP activation is QuickGELU unless the metadata `hidden_act` is `gelu`.
 * docs/backbone.md has the name map. An imported backbone is frozen
 * (GTL_BACKBONE_TRAINABLE_BLOCKS = 0).
 *
 * @param[in]  path         the file.
 * @param[out] out_backbone the backbone; NULL on failure.
 * @retval ::GTL_STATUS_OK            @p out_backbone holds the loaded backbone.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL.
 * @retval ::GTL_STATUS_IO            the file is missing or unreadable.
 * @retval ::GTL_STATUS_FORMAT        unrecognised, corrupt or truncated file, missing or
 *                                    mis-shaped tensors (the message names them).
 * @retval ::GTL_STATUS_UNSUPPORTED   an unsupported dtype, architecture or format version, or
 *                                    oneDNN cannot create a CPU engine.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN could not create its CPU engine.
 * @retval ::GTL_STATUS_INTERNAL      zlib failed to initialise, or no network was built (a libgtl
 *                                    bug).
 *
 * Ownership: the caller destroys the backbone.
 * Thread safety: safe.
 */
GTL_API gtl_status gtl_backbone_load(const char *path, gtl_backbone **out_backbone);

/**
 * Saves the backbone (architecture, weights, normalisation statistics, the
 * supervised head, settings and random state) to a libgtl checkpoint,
 * atomically. gtl_backbone_load() of the file gives a bitwise identical
 * backbone.
 *
 * @param[in] backbone the backbone.
 * @param[in] path     the file to write.
 * @retval ::GTL_STATUS_OK            the file was written.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL.
 * @retval ::GTL_STATUS_IO            the file cannot be created, written or renamed (the message
 *                                    has the OS reason); an existing file is left untouched.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_INTERNAL      zlib failed to compress (a libgtl bug).
 *
 * Ownership: nothing is kept.
 * Thread safety: not concurrently with calls that modify the backbone.
 */
GTL_API gtl_status gtl_backbone_save(const gtl_backbone *backbone, const char *path);

/**
 * Destroys a backbone. NULL is accepted and ignored.
 *
 * @param[in] backbone the backbone, or NULL.
 *
 * Ownership: frees everything the backbone holds.
 * Thread safety: the backbone must not be in use by another thread.
 */
GTL_API void gtl_backbone_destroy(gtl_backbone *backbone);

/**
 * Sets an integer setting.
 *
 * @param[in,out] backbone the backbone.
 * @param[in]     key      a writable ::gtl_backbone_param.
 * @param[in]     value    see the key's description.
 * @retval ::GTL_STATUS_OK            the setting is changed.
 * @retval ::GTL_STATUS_INVALID_ARG   @p backbone is NULL, @p key is unknown or read-only, @p value
 *                                    is out of range, or the key does not apply to this
 *                                    architecture.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY rebuilding the training head (GTL_BACKBONE_NUM_CLASSES,
 *                                    GTL_BACKBONE_FEATURE_PARTS) failed; the setting is unchanged.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not concurrently with other calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_set_i64(gtl_backbone *backbone, gtl_backbone_param key,
                                        int64_t value);

/**
 * Reads an integer setting.
 *
 * @param[in]  backbone  the backbone.
 * @param[in]  key       a ::gtl_backbone_param.
 * @param[out] out_value the value.
 * @retval ::GTL_STATUS_OK          the value was written.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL or @p key is unknown.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_get_i64(const gtl_backbone *backbone, gtl_backbone_param key,
                                        int64_t *out_value);

/**
 * Sets a floating-point setting (the keys marked f32 in ::gtl_backbone_param).
 *
 * @param[in,out] backbone the backbone.
 * @param[in]     key      GTL_BACKBONE_TEMPERATURE or GTL_BACKBONE_SUPCON_WEIGHT.
 * @param[in]     value    finite and within the key's bounds.
 * @retval ::GTL_STATUS_OK          the setting was changed.
 * @retval ::GTL_STATUS_INVALID_ARG @p backbone is NULL, @p key is unknown or an integer
 *                                  setting, or @p value is not finite or out of the key's range.
 *
 * Ownership: nothing is allocated.
 * Thread safety: not concurrently with other calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_set_f32(gtl_backbone *backbone, gtl_backbone_param key,
                                        float value);

/**
 * Reads a floating-point setting.
 *
 * @param[in]  backbone  the backbone.
 * @param[in]  key       GTL_BACKBONE_TEMPERATURE or GTL_BACKBONE_SUPCON_WEIGHT.
 * @param[out] out_value the value (0 on failure).
 * @retval ::GTL_STATUS_OK          @p out_value holds the setting.
 * @retval ::GTL_STATUS_INVALID_ARG an argument is NULL, or @p key is unknown or an integer
 *                                  setting.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe with other read-only calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_get_f32(const gtl_backbone *backbone, gtl_backbone_param key,
                                        float *out_value);

/**
 * Features of preprocessed images (inference: no gradients, normalisation
 * layers on running statistics).
 *
 * @param[in,out] backbone the backbone.
 * @param[in]     images   n images, each 3 x S x S floats (CHW), preprocessed
 *                         (gtl_image_load() or gtl_image_preprocess()), S =
 *                         GTL_BACKBONE_IMAGE_SIZE.
 * @param[in]     n        number of images, >= 1.
 * @param[out]    dst      n * F floats.
 * @param[in]     capacity floats available in @p dst.
 * @retval ::GTL_STATUS_OK            the features were written.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, n < 1, @p capacity < n * F, or an input
 *                                    value is not finite.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: not concurrently with other calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_embed(gtl_backbone *backbone, const float *images, int64_t n,
                                      float *dst, size_t capacity);

/**
 * Decodes, preprocesses and embeds image files. A file that cannot be used
 * (missing, corrupt, unsupported) gets its own status in @p out_status and a
 * zero feature row; the others are embedded. With a cache directory set
 * (gtl_backbone_set_cache_dir()), features are looked up and stored by image
 * content hash, backbone checksum and preprocessing.
 *
 * @param[in,out] backbone   the backbone.
 * @param[in]     paths      n file paths.
 * @param[in]     n          number of files, >= 1.
 * Features are those of gtl_image_load() + gtl_backbone_embed(), up to
 * rounding (the ViT's kernels may round differently for other batch sizes).
 *
 * @param[out]    dst        n * F floats.
 * @param[in]     capacity   floats available in @p dst.
 * @param[out]    out_status n statuses (::GTL_STATUS_OK for each file used), or NULL.
 * @retval ::GTL_STATUS_OK            every file was embedded.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument or one of the paths is NULL, n < 1, or @p
 *                                    capacity is too small: nothing is written.
 * @retval ::GTL_STATUS_IO            the first file that failed is missing or unreadable (the
 *                                    other rows are still filled; gtl_last_error() names the
 *                                    file).
 * @retval ::GTL_STATUS_FORMAT        the first file that failed is corrupt, truncated or
 *                                    zero-sized.
 * @retval ::GTL_STATUS_UNSUPPORTED   the first file that failed is in another format or too large,
 *                                    or oneDNN has no kernel for an operation on this CPU.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed (for one file, or for the batch).
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * A failing file gets its own status in @p out_status and a zero row; the call returns the first
 * failing file's status.
 *
 * Ownership: the caller owns @p dst and @p out_status.
 * Thread safety: not concurrently with other calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_embed_files(gtl_backbone *backbone, const char *const *paths,
                                            int64_t n, float *dst, size_t capacity,
                                            gtl_status *out_status);

/**
 * Sets (or with NULL clears) the directory of the on-disk feature cache used
 * by gtl_backbone_embed_files(). The directory is created if missing. One
 * small file per (image content, backbone checksum, preprocessing); entries
 * are checked when read (a corrupt one is recomputed) and written atomically.
 * See docs/backbone.md.
 *
 * @param[in,out] backbone the backbone.
 * @param[in]     dir      a directory path, or NULL.
 * @retval ::GTL_STATUS_OK            the cache directory is set (or cleared).
 * @retval ::GTL_STATUS_INVALID_ARG   @p backbone is NULL.
 * @retval ::GTL_STATUS_IO            the directory cannot be created.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY copying the path failed.
 *
 * Ownership: the path is copied.
 * Thread safety: not concurrently with other calls on the same backbone.
 */
GTL_API gtl_status gtl_backbone_set_cache_dir(gtl_backbone *backbone, const char *dir);

/**
 * One supervised training step of the backbone: features -> the loss chosen
 * with GTL_BACKBONE_LOSS (cross-entropy of a linear head over
 * GTL_BACKBONE_NUM_CLASSES classes, the supervised contrastive loss of
 * ::gtl_backbone_loss, or both), backward through the trainable blocks,
 * optimizer step. Statistics are [loss, accuracy, gradient norm, learning
 * rate]; the accuracy is the head's on the batch, or with
 * GTL_BACKBONE_LOSS_SUPCON the fraction of images whose most similar other
 * image of the batch (cosine) has the same label.
 * The head trains whenever the loss uses it; the backbone's trainable blocks
 * are set by GTL_BACKBONE_TRAINABLE_BLOCKS, which must be >= 1.
 *
 * @param[in,out] backbone  the backbone (GTL_BACKBONE_NUM_CLASSES >= 2 unless
 *                          the loss is GTL_BACKBONE_LOSS_SUPCON).
 * @param[in,out] optimizer the optimizer (binds to the backbone's parameters).
 * @param[in]     images    n preprocessed images (3 x S x S each).
 * @param[in]     n         batch size, >= 2.
 * @param[in]     labels    n labels in [0, NUM_CLASSES) (SUPCON: any values >= 0).
 * @param[out]    stats     up to 4 statistics, or NULL.
 * @param[in]     n_stats   entries available in @p stats.
 * @retval ::GTL_STATUS_OK            the step was applied.
 * @retval ::GTL_STATUS_INVALID_ARG   a pointer argument is NULL, n < 2, a label is out of range,
 *                                    or an input value is not finite (with GTL_BACKBONE_LOSS_SUPCON:
 *                                    a label is negative).
 * @retval ::GTL_STATUS_BAD_STATE     no classes are set for a loss with a head, or
 *                                    GTL_BACKBONE_TRAINABLE_BLOCKS = 0.
 * @retval ::GTL_STATUS_NUMERIC       the loss or a gradient is not finite: nothing changed.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_BACKEND       oneDNN reported an error.
 * @retval ::GTL_STATUS_UNSUPPORTED   oneDNN has no kernel for one of the operations on this CPU.
 * @retval ::GTL_STATUS_INTERNAL      a libgtl bug: an internal consistency check failed.
 *
 * Ownership: inputs are copied.
 * Thread safety: not concurrently with other calls on the backbone or optimizer.
 */
GTL_API gtl_status gtl_backbone_train_step(gtl_backbone *backbone, gtl_optimizer *optimizer,
                                           const float *images, int64_t n,
                                           const int64_t *labels, float *stats, size_t n_stats);

/* ------------------------------------------------------------------------ */
/* Images                                                                   */
/* ------------------------------------------------------------------------ */

/** Augmentations for gtl_image_augment(), combinable as bit flags. */
typedef enum gtl_augment {
    GTL_AUGMENT_NONE = 0,              /**< no augmentation: a plain preprocessed view */
    GTL_AUGMENT_RESIZED_CROP = 1 << 0, /**< random resized crop (scale 0.5-1, ratio 3/4-4/3) */
    GTL_AUGMENT_FLIP = 1 << 1,         /**< horizontal flip with probability 0.5 */
    GTL_AUGMENT_COLOR = 1 << 2,        /**< colour jitter (brightness, contrast, saturation 0.3) */
    GTL_AUGMENT_STROKE = 1 << 3,       /**< line thickness (dilate/erode dark strokes) and blur, for sketches */
    GTL_AUGMENT_EDGES = 1 << 4,        /**< replace the image by a sketch-like edge map (Sobel, dark lines on white) */
    GTL_AUGMENT_GRAY = 1 << 5          /**< grayscale with probability 0.2 */
} gtl_augment;

/**
 * Decodes an image file and preprocesses it CLIP-style to 3 x size x size floats.
 *
 * @param[in]  path     PNG, JPEG or WebP file (detected by content).
 * @param[in]  size     output side, 1 .. 4096.
 * @param[out] dst      3 * size * size floats, CHW.
 * @param[in]  capacity floats available in @p dst.
 * @retval ::GTL_STATUS_OK            the preprocessed image was written.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, @p size is out of range, or @p capacity
 *                                    is too small.
 * @retval ::GTL_STATUS_IO            the file is missing or unreadable.
 * @retval ::GTL_STATUS_FORMAT        the image is corrupt, truncated or zero-sized.
 * @retval ::GTL_STATUS_UNSUPPORTED   another file format, or larger than 16384 px per side.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_INTERNAL      a decoder returned an unexpected layout (a libgtl bug).
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe from any thread.
 */
GTL_API gtl_status gtl_image_load(const char *path, int32_t size, float *dst, size_t capacity);

/**
 * Preprocesses a host image buffer CLIP-style to 3 x size x size floats.
 *
 * @param[in]  pixels   height * width * channels bytes, row-major, interleaved.
 * @param[in]  height   rows, >= 1.
 * @param[in]  width    columns, >= 1.
 * @param[in]  channels 1 (gray or infrared), 3 (RGB) or 4 (RGBA, composited on white).
 * @param[in]  size     output side, 1 .. 4096.
 * @param[out] dst      3 * size * size floats.
 * @param[in]  capacity floats available in @p dst.
 * @retval ::GTL_STATUS_OK            the preprocessed image was written.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL, the dimensions or channel count are
 *                                    invalid, or @p capacity is too small.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 *
 * Ownership: the caller owns both buffers.
 * Thread safety: safe from any thread.
 */
GTL_API gtl_status gtl_image_preprocess(const uint8_t *pixels, int32_t height, int32_t width,
                                        int32_t channels, int32_t size, float *dst,
                                        size_t capacity);

/**
 * Decodes an image file and produces a randomly augmented, preprocessed view
 * (3 x size x size floats), for training with few images per class.
 *
 * @param[in]     path      the image file.
 * @param[in]     flags     a combination of ::gtl_augment flags.
 * @param[in,out] rng_state the augmentation's random state; any value is a
 *                          valid seed; it advances with each successful call
 *                          (the same state, image and flags give the same
 *                          view); unchanged on failure.
 * @param[in]     size      output side, 1 .. 4096.
 * @param[out]    dst       3 * size * size floats.
 * @param[in]     capacity  floats available in @p dst.
 * @retval ::GTL_STATUS_OK            the view was written and @p rng_state advanced.
 * @retval ::GTL_STATUS_INVALID_ARG   an argument is NULL (including @p rng_state), an unknown
 *                                    flag, @p size is out of range, or @p capacity is too small.
 * @retval ::GTL_STATUS_IO            the file is missing or unreadable.
 * @retval ::GTL_STATUS_FORMAT        the image is corrupt, truncated or zero-sized.
 * @retval ::GTL_STATUS_UNSUPPORTED   another file format, or larger than 16384 px per side.
 * @retval ::GTL_STATUS_OUT_OF_MEMORY an allocation failed.
 * @retval ::GTL_STATUS_INTERNAL      a decoder returned an unexpected layout (a libgtl bug).
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe from any thread (with distinct rng_state variables).
 */
GTL_API gtl_status gtl_image_augment(const char *path, uint32_t flags, uint64_t *rng_state,
                                     int32_t size, float *dst, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif /* GTL_BACKBONE_H */
