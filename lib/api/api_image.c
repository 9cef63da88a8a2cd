/* Public image functions (include/gtl/backbone.h): decoding and CLIP
 * preprocessing on lib/io/image.h, augmentation on lib/io/augment.h. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "gtl/backbone.h"
#include "io/augment.h"
#include "io/image.h"

#define MAX_SIZE 4096

/* Shared checks: dst, size and capacity. */
static gtl_status check_out(const float *dst, int32_t size, size_t capacity, const char *fn)
{
    if (dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: dst is NULL", fn);
    if (size < 1 || size > MAX_SIZE)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: size %d is outside [1, %d]", fn,
                          (int)size, MAX_SIZE);
    size_t need = 3 * (size_t)size * (size_t)size;
    if (capacity < need)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < 3 * size * size = %zu",
                          fn, capacity, need);
    return GTL_STATUS_OK;
}

static gtl_status prefixed(gtl_status st, const char *fn)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", gtl__error_message());
    return gtl__error(st, "%s: %s", fn, msg);
}

gtl_status gtl_image_load(const char *path, int32_t size, float *dst, size_t capacity)
{
    const char *fn = "gtl_image_load";
    gtl__clear_error();
    if (path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: path is NULL", fn);
    gtl_status st = check_out(dst, size, capacity, fn);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__image img = {0};
    st = gtl__image_decode_file(path, &img);
    if (st != GTL_STATUS_OK)
        return prefixed(st, fn);
    gtl__image_prep_opts prep;
    gtl__image_prep_opts_default(&prep);
    prep.size = size;
    st = gtl__image_preprocess(&img, &prep, dst, (int64_t)(3 * (size_t)size * (size_t)size));
    gtl__image_fini(&img);
    return st == GTL_STATUS_OK ? st : prefixed(st, fn);
}

gtl_status gtl_image_preprocess(const uint8_t *pixels, int32_t height, int32_t width,
                                int32_t channels, int32_t size, float *dst, size_t capacity)
{
    const char *fn = "gtl_image_preprocess";
    gtl__clear_error();
    if (pixels == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: pixels is NULL", fn);
    if (height < 1 || width < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: height %d and width %d must be >= 1", fn,
                          (int)height, (int)width);
    if (channels != 1 && channels != 3 && channels != 4)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: channels must be 1, 3 or 4 (got %d)", fn,
                          (int)channels);
    gtl_status st = check_out(dst, size, capacity, fn);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__image_prep_opts prep;
    gtl__image_prep_opts_default(&prep);
    prep.size = size;
    st = gtl__image_preprocess_u8(pixels, height, width, channels, &prep, dst,
                                  (int64_t)(3 * (size_t)size * (size_t)size));
    return st == GTL_STATUS_OK ? st : prefixed(st, fn);
}

gtl_status gtl_image_augment(const char *path, uint32_t flags, uint64_t *rng_state, int32_t size,
                             float *dst, size_t capacity)
{
    const char *fn = "gtl_image_augment";
    gtl__clear_error();
    if (path == NULL || rng_state == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is NULL", fn,
                          path == NULL ? "path" : "rng_state");
    if ((flags & ~GTL__AUGMENT_ALL) != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown flags 0x%x", fn,
                          (unsigned)(flags & ~GTL__AUGMENT_ALL));
    gtl_status st = check_out(dst, size, capacity, fn);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__image img = {0};
    st = gtl__image_decode_file(path, &img);
    if (st != GTL_STATUS_OK)
        return prefixed(st, fn);
    /* The caller's state seeds this view's generator; the state handed back
     * is the generator's next draw, so a chain of calls gives distinct views
     * and replaying a state replays its view. Nothing changes on failure. */
    gtl__rng rng;
    gtl__rng_seed(&rng, *rng_state);
    gtl__image_prep_opts prep;
    gtl__image_prep_opts_default(&prep);
    prep.size = size;
    st = gtl__augment_image(&img, flags, &rng, &prep, NULL, dst,
                            (int64_t)(3 * (size_t)size * (size_t)size));
    gtl__image_fini(&img);
    if (st != GTL_STATUS_OK)
        return prefixed(st, fn);
    *rng_state = gtl__rng_u64(&rng);
    return GTL_STATUS_OK;
}
