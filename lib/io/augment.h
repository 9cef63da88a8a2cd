/* io/augment: random image augmentation for training with few images per
 * class, on decoded 8-bit images, ending in CLIP preprocessing.
 *
 * Pipeline (each step only when its flag is set; flags are gtl_augment from
 * include/gtl/backbone.h):
 *   1. geometry, in 8-bit: RESIZED_CROP picks a box as torchvision's
 *      RandomResizedCrop (scale [0.5, 1] of the area, aspect ratio
 *      [3/4, 4/3] log-uniform, 10 tries then a centre crop) and resizes it to
 *      S x S with PIL's bicubic filter; without it the image is resized and
 *      centre-cropped exactly as gtl__image_preprocess_u8 does. FLIP mirrors
 *      the result left-right with probability 0.5.
 *   2. pixels, in float [0, 1] at S x S:
 *      EDGES   replaces the image by a sketch-like edge map: Sobel magnitude
 *              of the luma, divided by max(its maximum, 1), inverted and
 *              softly thresholded (smoothstep between t and t + 0.2, t drawn
 *              in [0.05, 0.15]) to dark lines on white, gray in all channels;
 *      STROKE  line thickness for line art on white: a 2x2 min filter
 *              (dark strokes 1 px thicker) or max filter (1 px thinner),
 *              50 / 50,
 *              then a Gaussian blur with sigma in [0.3, 0.8] (5 taps,
 *              normalised, edges clamped);
 *      COLOR   colour jitter as torchvision's ColorJitter(0.3, 0.3, 0.3):
 *              brightness, contrast (around the mean luma) and saturation
 *              factors in [0.7, 1.3], applied in a random order, clamped;
 *      GRAY    with probability 0.2, luma (0.299, 0.587, 0.114) in all channels.
 *   3. Normalize with the CLIP mean and standard deviation: (3, S, S) floats.
 * With no flag set the output is bit-identical to gtl__image_preprocess_u8.
 *
 * Randomness comes only from the gtl__rng passed in (no global state): the
 * same seed, image and flags give the same output. Steps are applied at the
 * output resolution, so one pixel of stroke or edge is one output pixel.
 *
 * Memory: a gtl__augment_scratch holds the working buffers and grows to the
 * largest image seen; with a scratch reused across calls, a call allocates
 * only inside the bicubic resampler (its weight tables and one intermediate
 * image, sized by the image). */
#ifndef GTL__IO_AUGMENT_H
#define GTL__IO_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "gtl/backbone.h"
#include "io/image.h"

/* Every flag gtl__augment_u8 knows. */
#define GTL__AUGMENT_ALL                                                                \
    ((uint32_t)(GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_FLIP | GTL_AUGMENT_COLOR |      \
                GTL_AUGMENT_STROKE | GTL_AUGMENT_EDGES | GTL_AUGMENT_GRAY))

/* Constants of the pipeline (see above). */
#define GTL__AUGMENT_SCALE_MIN 0.5
#define GTL__AUGMENT_SCALE_MAX 1.0
#define GTL__AUGMENT_RATIO_MIN (3.0 / 4.0)
#define GTL__AUGMENT_RATIO_MAX (4.0 / 3.0)
#define GTL__AUGMENT_JITTER 0.3f
#define GTL__AUGMENT_GRAY_P 0.2f

typedef struct gtl__augment_scratch {
    uint8_t *rgb;     /* the (cropped) source as RGB8 */
    size_t cap_rgb;
    uint8_t *small;   /* S x S x 3 after resizing */
    size_t cap_small;
    float *px;        /* S x S x 3 working image in [0, 1], then temporaries */
    size_t cap_px;
} gtl__augment_scratch;

void gtl__augment_scratch_init(gtl__augment_scratch *s);
void gtl__augment_scratch_fini(gtl__augment_scratch *s);

/* The RandomResizedCrop box of an h x w image: rows [*y, *y + *ch), columns
 * [*x, *x + *cw). Exposed for tests. */
void gtl__augment_crop_box(int64_t h, int64_t w, gtl__rng *rng, int64_t *y, int64_t *x,
                           int64_t *ch, int64_t *cw);

/* Augments src (H, W, C) uint8 (C = 1 gray, 3 RGB, 4 RGBA composited on
 * white) into dst (3, S, S) floats, S = opts->size (opts NULL: CLIP defaults,
 * S = 224). scratch may be NULL (buffers are then made and freed inside the
 * call). INVALID_ARG for NULL src, dst or rng, bad sizes or channels, unknown
 * flags, n_dst < 3 S^2; OUT_OF_MEMORY. */
gtl_status gtl__augment_u8(const uint8_t *src, int64_t h, int64_t w, int64_t c, uint32_t flags,
                           gtl__rng *rng, const gtl__image_prep_opts *opts,
                           gtl__augment_scratch *scratch, float *dst, int64_t n_dst);

/* The same for a decoded image. */
gtl_status gtl__augment_image(const gtl__image *img, uint32_t flags, gtl__rng *rng,
                              const gtl__image_prep_opts *opts, gtl__augment_scratch *scratch,
                              float *dst, int64_t n_dst);

#endif /* GTL__IO_AUGMENT_H */
