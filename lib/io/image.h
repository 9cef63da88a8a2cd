/* io/image: decoding PNG, JPEG and WebP into 8-bit RGB, and CLIP preprocessing.
 *
 * Decoding (image_decode.c) uses the system codecs (libpng, libjpeg-turbo,
 * libwebp). The format is found from the magic bytes, never from a file name.
 * Every decoded image is 8-bit RGB, (H, W, 3) row-major: grayscale is
 * replicated, palettes are expanded, 16-bit samples are scaled to 8 bits, and
 * alpha is composited on white. See docs/images.md for the full rules.
 *
 * Preprocessing (image_preprocess.c) reproduces CLIP's torchvision transform
 * on PIL images: Resize(size, BICUBIC) of the shorter side, CenterCrop(size),
 * ToTensor, Normalize(mean, std), giving a float (3, size, size) tensor. The
 * resize is PIL's separable fixed-point bicubic resampler, so uint8 inputs
 * give the same bytes PIL gives.
 *
 * Shape letters: H rows, W columns, C channels, S the output side (size). */
#ifndef GTL__IO_IMAGE_H
#define GTL__IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Decoding limits, checked from the header before any pixel buffer exists. */
#define GTL__IMAGE_MAX_SIDE 16384
#define GTL__IMAGE_MAX_PIXELS ((int64_t)1 << 28)
/* Largest file gtl__image_decode_file reads into memory (1 GiB). */
#define GTL__IMAGE_MAX_FILE_BYTES ((int64_t)1 << 30)

typedef enum gtl__image_format {
    GTL__IMAGE_FORMAT_UNKNOWN = 0,
    GTL__IMAGE_FORMAT_PNG,
    GTL__IMAGE_FORMAT_JPEG,
    GTL__IMAGE_FORMAT_WEBP,
    /* Recognised but not decoded: reported as UNSUPPORTED rather than FORMAT. */
    GTL__IMAGE_FORMAT_GIF,
    GTL__IMAGE_FORMAT_BMP,
    GTL__IMAGE_FORMAT_TIFF
} gtl__image_format;

/* A decoded image: h * w * 3 bytes of RGB, owned by the struct. */
typedef struct gtl__image {
    int64_t h;
    int64_t w;
    uint8_t *data; /* (H, W, 3), gtl__malloc'd; NULL when empty */
} gtl__image;

/* The format named by the first bytes of buf (n may be short: UNKNOWN). */
gtl__image_format gtl__image_detect_format(const void *buf, size_t n);
/* "PNG", "JPEG", ... or "unknown". Static string. */
const char *gtl__image_format_name(gtl__image_format fmt);

/* Decodes an in-memory file. name is used in messages only (NULL: "<memory>").
 * On success *out holds the image; on failure *out is zeroed and the status is
 * FORMAT (corrupt, truncated, not an image, zero size), UNSUPPORTED (a known
 * but undecoded format, an animated WebP, an image over the limits, an
 * unusual colour space), OUT_OF_MEMORY or INVALID_ARG (NULL pointers). */
gtl_status gtl__image_decode_mem(const void *buf, size_t n, const char *name, gtl__image *out);
/* Reads a whole file (pipes too) into a gtl__malloc'd block: IO (with the
 * path and strerror), UNSUPPORTED above GTL__IMAGE_MAX_FILE_BYTES,
 * OUT_OF_MEMORY. Callers that need the bytes too (content hashing) read with
 * this and decode with gtl__image_decode_mem. */
gtl_status gtl__image_read_file(const char *path, uint8_t **out_buf, size_t *out_n);
/* Reads path and decodes it. IO (with the path and strerror) when the file
 * cannot be opened or read; otherwise as gtl__image_decode_mem. */
gtl_status gtl__image_decode_file(const char *path, gtl__image *out);
/* Frees the pixels and zeroes the struct. NULL and empty images are fine. */
void gtl__image_fini(gtl__image *img);

/* ---- preprocessing ---------------------------------------------------- */

typedef struct gtl__image_prep_opts {
    int64_t size;  /* S: the shorter side after resizing and the crop side */
    float mean[3]; /* per-channel, applied after scaling to [0, 1] */
    float std[3];  /* per-channel, > 0 */
} gtl__image_prep_opts;

/* CLIP's defaults: S = 224, mean (0.48145466, 0.4578275, 0.40821073),
 * std (0.26862954, 0.26130258, 0.27577711). */
void gtl__image_prep_opts_default(gtl__image_prep_opts *opts);

/* torchvision's Resize(S) output size for an (h, w) image: the shorter side
 * becomes S, the longer int(S * long / short). */
void gtl__image_resized_size(int64_t h, int64_t w, int64_t size, int64_t *out_h, int64_t *out_w);

/* Resizes an 8-bit (H, W, C) image to (out_h, out_w) with PIL's BICUBIC
 * filter and copies the window of rows [y0, y0 + crop_h) and columns
 * [x0, x0 + crop_w) of the resized image to dst (crop_h, crop_w, C). Only the
 * window is computed; each value is the one PIL would give for the whole
 * image. C is 1 to 4; channels are resampled independently. */
gtl_status gtl__image_resize_crop_u8(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                     int64_t out_h, int64_t out_w, int64_t y0, int64_t x0,
                                     int64_t crop_h, int64_t crop_w, uint8_t *dst);
/* The same for float samples, with PIL's mode "F" arithmetic (double
 * coefficients and sums, float intermediate, no rounding or clamping). */
gtl_status gtl__image_resize_crop_f32(const float *src, int64_t h, int64_t w, int64_t c,
                                      int64_t out_h, int64_t out_w, int64_t y0, int64_t x0,
                                      int64_t crop_h, int64_t crop_w, float *dst);

/* CLIP preprocessing of a host buffer. src is (H, W, C) uint8 with C = 1
 * (gray, replicated), 3 (RGB) or 4 (RGBA, composited on white like decoded
 * images). dst receives (3, S, S) floats: n_dst must be at least 3 * S * S.
 * opts NULL means the CLIP defaults. INVALID_ARG for bad pointers, shapes,
 * channel counts, sizes or std <= 0; OUT_OF_MEMORY. */
gtl_status gtl__image_preprocess_u8(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                    const gtl__image_prep_opts *opts, float *dst, int64_t n_dst);
/* The same for float samples in [0, 1] (not checked; values pass through
 * the resampler unclamped). RGBA is composited as rgb * a + (1 - a). */
gtl_status gtl__image_preprocess_f32(const float *src, int64_t h, int64_t w, int64_t c,
                                     const gtl__image_prep_opts *opts, float *dst, int64_t n_dst);
/* Preprocesses a decoded image (RGB). */
gtl_status gtl__image_preprocess(const gtl__image *img, const gtl__image_prep_opts *opts,
                                 float *dst, int64_t n_dst);

/* Composites one 8-bit sample on white: round(v * a / 255 + (255 - a)).
 * Shared by the decoders and preprocessing so both give identical bytes. */
static inline uint8_t gtl__image_over_white(uint32_t v, uint32_t a)
{
    return (uint8_t)((v * a + 255u * (255u - a) + 127u) / 255u);
}

#endif /* GTL__IO_IMAGE_H */
