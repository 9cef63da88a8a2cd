/* CLIP preprocessing: Resize(S, BICUBIC) of the shorter side, CenterCrop(S),
 * ToTensor, Normalize(mean, std), as torchvision does it on PIL images.
 *
 * The resampler is PIL's (libImaging/Resample.c): a separable convolution
 * with the a = -0.5 bicubic kernel whose support is scaled by the reduction
 * factor when downsampling (antialiasing), horizontal pass first. For 8-bit
 * images PIL rounds the normalised weights to 22-bit fixed point and rounds
 * and clamps to 8 bits after each pass; we do exactly the same integer
 * arithmetic, so the bytes match PIL's. Only the crop window is computed:
 * every output pixel depends on its own weights alone, so this changes no
 * value. Float images follow PIL's mode "F": double weights and sums, float
 * intermediate, no rounding. See docs/images.md. */
#include <math.h>
#include <string.h>

#include "io/image.h"

#define PREC_BITS 22 /* PIL's PRECISION_BITS = 32 - 8 - 2 */

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void gtl__image_prep_opts_default(gtl__image_prep_opts *opts)
{
    opts->size = 224;
    memcpy(opts->mean, CLIP_MEAN, sizeof(CLIP_MEAN));
    memcpy(opts->std, CLIP_STD, sizeof(CLIP_STD));
}

void gtl__image_resized_size(int64_t h, int64_t w, int64_t size, int64_t *out_h, int64_t *out_w)
{
    /* torchvision: new_long = int(size * long / short), a true (double) division. */
    int64_t shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int64_t new_long = (int64_t)((double)(size * longer) / (double)shorter);
    *out_h = w <= h ? new_long : size;
    *out_w = w <= h ? size : new_long;
}

/* torchvision CenterCrop offset: int(round((n - s) / 2.0)), with Python's
 * round-half-to-even. */
static int64_t crop_offset(int64_t n, int64_t s)
{
    int64_t d = n - s;
    int64_t half = d / 2;
    if (d % 2 != 0 && half % 2 != 0)
        half++; /* (2k + 1) / 2 = k + 0.5 rounds to the even one of k, k + 1 */
    return half;
}

static double bicubic(double x)
{
    /* PIL's bicubic_filter with a = -0.5, same operation order. */
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Resampling weights along one axis, for outputs [o0, o0 + n) of out_size. */
struct axis {
    int64_t ksize;
    int64_t *lo;  /* (n) first input index */
    int64_t *cnt; /* (n) number of inputs */
    double *k;    /* (n, ksize) normalised weights */
    int32_t *kq;  /* (n, ksize) fixed-point weights (8-bit path only) */
};

static void axis_fini(struct axis *ax)
{
    gtl__free(ax->lo);
    gtl__free(ax->cnt);
    gtl__free(ax->k);
    gtl__free(ax->kq);
    memset(ax, 0, sizeof(*ax));
}

/* PIL's precompute_coeffs (+ normalize_coeffs_8bpc when fixed is true). */
static gtl_status axis_init(struct axis *ax, int64_t in_size, int64_t out_size, int64_t o0,
                            int64_t n, bool fixed)
{
    memset(ax, 0, sizeof(*ax));
    double scale = (double)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    ax->ksize = (int64_t)ceil(support) * 2 + 1;
    ax->lo = gtl__malloc(sizeof(*ax->lo) * (size_t)n);
    ax->cnt = gtl__malloc(sizeof(*ax->cnt) * (size_t)n);
    ax->k = gtl__calloc((size_t)(n * ax->ksize), sizeof(*ax->k));
    if (fixed)
        ax->kq = gtl__calloc((size_t)(n * ax->ksize), sizeof(*ax->kq));
    if (ax->lo == NULL || ax->cnt == NULL || ax->k == NULL || (fixed && ax->kq == NULL)) {
        axis_fini(ax);
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "image resize: out of memory for weights");
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t xx = o0 + i;
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int64_t xmin = (int64_t)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int64_t xmax = (int64_t)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double *k = ax->k + i * ax->ksize;
        for (int64_t x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int64_t x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        if (fixed)
            for (int64_t x = 0; x < xmax; x++)
                ax->kq[i * ax->ksize + x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << PREC_BITS))
                                                     : (int32_t)(0.5 + k[x] * (1 << PREC_BITS));
        ax->lo[i] = xmin;
        ax->cnt[i] = xmax;
    }
    return GTL_STATUS_OK;
}

static uint8_t clip8(int32_t v)
{
    if (v < 0)
        return 0;
    v >>= PREC_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

static gtl_status check_window(const char *fn, const void *src, const void *dst, int64_t h,
                               int64_t w, int64_t c, int64_t out_h, int64_t out_w, int64_t y0,
                               int64_t x0, int64_t crop_h, int64_t crop_w)
{
    if (src == NULL || dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: src and dst must not be NULL", fn);
    if (h <= 0 || w <= 0 || h > GTL__IMAGE_MAX_SIDE || w > GTL__IMAGE_MAX_SIDE)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: image size %lld x %lld out of range "
                          "[1, %d]", fn, (long long)h, (long long)w, GTL__IMAGE_MAX_SIDE);
    if (c < 1 || c > 4)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %lld channels (1 to 4 allowed)", fn,
                          (long long)c);
    if (out_h <= 0 || out_w <= 0 || out_h > INT32_MAX || out_w > INT32_MAX)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: output size %lld x %lld out of range",
                          fn, (long long)out_h, (long long)out_w);
    if (crop_h <= 0 || crop_w <= 0 || y0 < 0 || x0 < 0 || y0 + crop_h > out_h ||
        x0 + crop_w > out_w || crop_h > GTL__IMAGE_MAX_SIDE || crop_w > GTL__IMAGE_MAX_SIDE)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: crop %lld x %lld at (%lld, %lld) is not inside %lld x %lld", fn,
                          (long long)crop_h, (long long)crop_w, (long long)y0, (long long)x0,
                          (long long)out_h, (long long)out_w);
    return GTL_STATUS_OK;
}

/* The source rows [r0, r1) that the vertical pass reads for the window. */
static void rows_needed(const struct axis *av, bool need_v, int64_t y0, int64_t crop_h,
                        int64_t *r0, int64_t *r1)
{
    if (!need_v) {
        *r0 = y0;
        *r1 = y0 + crop_h;
        return;
    }
    *r0 = av->lo[0];
    *r1 = av->lo[crop_h - 1] + av->cnt[crop_h - 1]; /* bounds grow with the index */
}

gtl_status gtl__image_resize_crop_u8(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                     int64_t out_h, int64_t out_w, int64_t y0, int64_t x0,
                                     int64_t crop_h, int64_t crop_w, uint8_t *dst)
{
    gtl_status st = check_window("gtl__image_resize_crop_u8", src, dst, h, w, c, out_h, out_w, y0,
                                 x0, crop_h, crop_w);
    if (st != GTL_STATUS_OK)
        return st;
    bool need_h = out_w != w, need_v = out_h != h;
    struct axis ah = {0}, av = {0};
    uint8_t *tmp = NULL;
    if (need_h && (st = axis_init(&ah, w, out_w, x0, crop_w, true)) != GTL_STATUS_OK)
        goto out_free;
    if (need_v && (st = axis_init(&av, h, out_h, y0, crop_h, true)) != GTL_STATUS_OK)
        goto out_free;
    int64_t r0 = 0, r1 = 0;
    rows_needed(&av, need_v, y0, crop_h, &r0, &r1);
    tmp = gtl__malloc((size_t)((r1 - r0) * crop_w * c));
    if (tmp == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "image resize: out of memory");
        goto out_free;
    }

    /* Horizontal pass: rows [r0, r1), window columns, rounded to 8 bits. */
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *in = src + r * w * c;
        uint8_t *o = tmp + (r - r0) * crop_w * c;
        if (!need_h) {
            memcpy(o, in + x0 * c, (size_t)(crop_w * c));
            continue;
        }
        for (int64_t i = 0; i < crop_w; i++) {
            const int32_t *k = ah.kq + i * ah.ksize;
            const uint8_t *p = in + ah.lo[i] * c;
            for (int64_t ch = 0; ch < c; ch++) {
                int32_t ss = 1 << (PREC_BITS - 1);
                for (int64_t x = 0; x < ah.cnt[i]; x++)
                    ss += p[x * c + ch] * k[x];
                o[i * c + ch] = clip8(ss);
            }
        }
    }
    /* Vertical pass into dst. */
    for (int64_t i = 0; i < crop_h; i++) {
        uint8_t *o = dst + i * crop_w * c;
        if (!need_v) {
            memcpy(o, tmp + i * crop_w * c, (size_t)(crop_w * c));
            continue;
        }
        const int32_t *k = av.kq + i * av.ksize;
        const uint8_t *base = tmp + (av.lo[i] - r0) * crop_w * c;
        for (int64_t j = 0; j < crop_w * c; j++) {
            int32_t ss = 1 << (PREC_BITS - 1);
            for (int64_t y = 0; y < av.cnt[i]; y++)
                ss += base[y * crop_w * c + j] * k[y];
            o[j] = clip8(ss);
        }
    }
out_free:
    gtl__free(tmp);
    axis_fini(&av);
    axis_fini(&ah);
    return st;
}

gtl_status gtl__image_resize_crop_f32(const float *src, int64_t h, int64_t w, int64_t c,
                                      int64_t out_h, int64_t out_w, int64_t y0, int64_t x0,
                                      int64_t crop_h, int64_t crop_w, float *dst)
{
    gtl_status st = check_window("gtl__image_resize_crop_f32", src, dst, h, w, c, out_h, out_w,
                                 y0, x0, crop_h, crop_w);
    if (st != GTL_STATUS_OK)
        return st;
    bool need_h = out_w != w, need_v = out_h != h;
    struct axis ah = {0}, av = {0};
    float *tmp = NULL;
    if (need_h && (st = axis_init(&ah, w, out_w, x0, crop_w, false)) != GTL_STATUS_OK)
        goto out_free;
    if (need_v && (st = axis_init(&av, h, out_h, y0, crop_h, false)) != GTL_STATUS_OK)
        goto out_free;
    int64_t r0 = 0, r1 = 0;
    rows_needed(&av, need_v, y0, crop_h, &r0, &r1);
    tmp = gtl__malloc(sizeof(*tmp) * (size_t)((r1 - r0) * crop_w * c));
    if (tmp == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "image resize: out of memory");
        goto out_free;
    }

    for (int64_t r = r0; r < r1; r++) {
        const float *in = src + r * w * c;
        float *o = tmp + (r - r0) * crop_w * c;
        if (!need_h) {
            memcpy(o, in + x0 * c, sizeof(*o) * (size_t)(crop_w * c));
            continue;
        }
        for (int64_t i = 0; i < crop_w; i++) {
            const double *k = ah.k + i * ah.ksize;
            const float *p = in + ah.lo[i] * c;
            for (int64_t ch = 0; ch < c; ch++) {
                double ss = 0.0;
                for (int64_t x = 0; x < ah.cnt[i]; x++)
                    ss += p[x * c + ch] * k[x];
                o[i * c + ch] = (float)ss;
            }
        }
    }
    for (int64_t i = 0; i < crop_h; i++) {
        float *o = dst + i * crop_w * c;
        if (!need_v) {
            memcpy(o, tmp + i * crop_w * c, sizeof(*o) * (size_t)(crop_w * c));
            continue;
        }
        const double *k = av.k + i * av.ksize;
        const float *base = tmp + (av.lo[i] - r0) * crop_w * c;
        for (int64_t j = 0; j < crop_w * c; j++) {
            double ss = 0.0;
            for (int64_t y = 0; y < av.cnt[i]; y++)
                ss += base[y * crop_w * c + j] * k[y];
            o[j] = (float)ss;
        }
    }
out_free:
    gtl__free(tmp);
    axis_fini(&av);
    axis_fini(&ah);
    return st;
}

/* Argument checks shared by the preprocess entry points; fills *o. */
static gtl_status check_prep(const char *fn, const void *src, int64_t h, int64_t w, int64_t c,
                             const gtl__image_prep_opts *opts, const float *dst, int64_t n_dst,
                             gtl__image_prep_opts *o)
{
    if (opts != NULL)
        *o = *opts;
    else
        gtl__image_prep_opts_default(o);
    if (src == NULL || dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: src and dst must not be NULL", fn);
    if (h <= 0 || w <= 0 || h > GTL__IMAGE_MAX_SIDE || w > GTL__IMAGE_MAX_SIDE ||
        h * w > GTL__IMAGE_MAX_PIXELS)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: image size %lld x %lld out of range (1 to %d per side)", fn,
                          (long long)h, (long long)w, GTL__IMAGE_MAX_SIDE);
    if (c != 1 && c != 3 && c != 4)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %lld channels (1, 3 or 4 allowed)", fn,
                          (long long)c);
    if (o->size < 1 || o->size > GTL__IMAGE_MAX_SIDE)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: size %lld out of range [1, %d]", fn,
                          (long long)o->size, GTL__IMAGE_MAX_SIDE);
    for (int ch = 0; ch < 3; ch++)
        if (!(o->std[ch] > 0.0f) || !isfinite(o->std[ch]) || !isfinite(o->mean[ch]))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "%s: channel %d needs a finite mean and std > 0 (got %g, %g)", fn,
                              ch, (double)o->mean[ch], (double)o->std[ch]);
    if (n_dst < 3 * o->size * o->size)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: dst holds %lld floats, %lld needed", fn,
                          (long long)n_dst, (long long)(3 * o->size * o->size));
    return GTL_STATUS_OK;
}

/* Where the S x S crop lies in the resized image. */
struct plan {
    int64_t out_h, out_w, y0, x0;
};

static struct plan make_plan(int64_t h, int64_t w, int64_t size)
{
    struct plan p;
    gtl__image_resized_size(h, w, size, &p.out_h, &p.out_w);
    p.y0 = crop_offset(p.out_h, size);
    p.x0 = crop_offset(p.out_w, size);
    return p;
}

gtl_status gtl__image_preprocess_u8(const uint8_t *src, int64_t h, int64_t w, int64_t c,
                                    const gtl__image_prep_opts *opts, float *dst, int64_t n_dst)
{
    static const char fn[] = "gtl__image_preprocess_u8";
    gtl__image_prep_opts o;
    gtl_status st = check_prep(fn, src, h, w, c, opts, dst, n_dst, &o);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t s = o.size, n = s * s;
    uint8_t *rgb = NULL, *crop = NULL;
    const uint8_t *in = src;
    int64_t cin = c;
    if (c == 4) {
        rgb = gtl__malloc((size_t)(h * w * 3));
        if (rgb == NULL) {
            st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
            goto out_free;
        }
        for (int64_t i = 0; i < h * w; i++)
            for (int k = 0; k < 3; k++)
                rgb[3 * i + k] = gtl__image_over_white(src[4 * i + k], src[4 * i + 3]);
        in = rgb;
        cin = 3;
    }
    crop = gtl__malloc((size_t)(n * cin));
    if (crop == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out_free;
    }
    struct plan p = make_plan(h, w, s);
    st = gtl__image_resize_crop_u8(in, h, w, cin, p.out_h, p.out_w, p.y0, p.x0, s, s, crop);
    if (st != GTL_STATUS_OK)
        goto out_free;
    /* ToTensor then Normalize, in float32 like torch: (v / 255 - mean) / std.
     * Gray (cin = 1) is replicated to the three channels. */
    for (int ch = 0; ch < 3; ch++) {
        float *d = dst + ch * n; // (S, S) plane
        int64_t off = cin == 1 ? 0 : ch;
        for (int64_t i = 0; i < n; i++)
            d[i] = ((float)crop[i * cin + off] / 255.0f - o.mean[ch]) / o.std[ch];
    }
out_free:
    gtl__free(crop);
    gtl__free(rgb);
    return st;
}

gtl_status gtl__image_preprocess_f32(const float *src, int64_t h, int64_t w, int64_t c,
                                     const gtl__image_prep_opts *opts, float *dst, int64_t n_dst)
{
    static const char fn[] = "gtl__image_preprocess_f32";
    gtl__image_prep_opts o;
    gtl_status st = check_prep(fn, src, h, w, c, opts, dst, n_dst, &o);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t s = o.size, n = s * s;
    float *rgb = NULL, *crop = NULL;
    const float *in = src;
    int64_t cin = c;
    if (c == 4) {
        rgb = gtl__malloc(sizeof(*rgb) * (size_t)(h * w * 3));
        if (rgb == NULL) {
            st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
            goto out_free;
        }
        for (int64_t i = 0; i < h * w; i++) {
            float a = src[4 * i + 3];
            for (int k = 0; k < 3; k++)
                rgb[3 * i + k] = src[4 * i + k] * a + (1.0f - a);
        }
        in = rgb;
        cin = 3;
    }
    crop = gtl__malloc(sizeof(*crop) * (size_t)(n * cin));
    if (crop == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out_free;
    }
    struct plan p = make_plan(h, w, s);
    st = gtl__image_resize_crop_f32(in, h, w, cin, p.out_h, p.out_w, p.y0, p.x0, s, s, crop);
    if (st != GTL_STATUS_OK)
        goto out_free;
    for (int ch = 0; ch < 3; ch++) {
        float *d = dst + ch * n; // (S, S) plane
        int64_t off = cin == 1 ? 0 : ch;
        for (int64_t i = 0; i < n; i++)
            d[i] = (crop[i * cin + off] - o.mean[ch]) / o.std[ch];
    }
out_free:
    gtl__free(crop);
    gtl__free(rgb);
    return st;
}

gtl_status gtl__image_preprocess(const gtl__image *img, const gtl__image_prep_opts *opts,
                                 float *dst, int64_t n_dst)
{
    if (img == NULL || img->data == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__image_preprocess: image is NULL or empty");
    return gtl__image_preprocess_u8(img->data, img->h, img->w, 3, opts, dst, n_dst);
}
