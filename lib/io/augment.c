/* Random augmentation of 8-bit images ending in CLIP preprocessing; the
 * pipeline and its constants are described in augment.h and
 * docs/augmentation.md.
 *
 * Working images are (S, S, 3) row-major: 8-bit after resizing, then float
 * in [0, 1]; the output is (3, S, S) normalised floats. */
#include <math.h>
#include <string.h>

#include "io/augment.h"

/* torchvision's rgb_to_grayscale weights. */
#define LUMA_R 0.2989f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

void gtl__augment_scratch_init(gtl__augment_scratch *s)
{
    memset(s, 0, sizeof *s);
}

void gtl__augment_scratch_fini(gtl__augment_scratch *s)
{
    if (s == NULL)
        return;
    gtl__free(s->rgb);
    gtl__free(s->small);
    gtl__free(s->px);
    memset(s, 0, sizeof *s);
}

/* Grows *buf to at least n bytes (contents not kept). */
static gtl_status reserve(void **buf, size_t *cap, size_t n)
{
    if (*cap >= n)
        return GTL_STATUS_OK;
    void *p = gtl__malloc(n);
    if (p == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "augment: out of memory (%zu bytes)", n);
    gtl__free(*buf);
    *buf = p;
    *cap = n;
    return GTL_STATUS_OK;
}

/* ---- geometry -------------------------------------------------------------- */

void gtl__augment_crop_box(int64_t h, int64_t w, gtl__rng *rng, int64_t *y, int64_t *x,
                           int64_t *ch, int64_t *cw)
{
    /* torchvision RandomResizedCrop.get_params. */
    double area = (double)h * (double)w;
    double lr0 = log(GTL__AUGMENT_RATIO_MIN), lr1 = log(GTL__AUGMENT_RATIO_MAX);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (GTL__AUGMENT_SCALE_MIN + (GTL__AUGMENT_SCALE_MAX -
                                                          GTL__AUGMENT_SCALE_MIN) *
                                                             gtl__rng_uniform_f64(rng));
        double aspect = exp(lr0 + (lr1 - lr0) * gtl__rng_uniform_f64(rng));
        int64_t bw = (int64_t)llround(sqrt(target * aspect));
        int64_t bh = (int64_t)llround(sqrt(target / aspect));
        if (bw > 0 && bw <= w && bh > 0 && bh <= h) {
            *y = (int64_t)gtl__rng_below(rng, (uint64_t)(h - bh + 1));
            *x = (int64_t)gtl__rng_below(rng, (uint64_t)(w - bw + 1));
            *ch = bh;
            *cw = bw;
            return;
        }
    }
    /* Fallback: a centre crop with the ratio clamped into range. */
    double in_ratio = (double)w / (double)h;
    int64_t bw = w, bh = h;
    if (in_ratio < GTL__AUGMENT_RATIO_MIN)
        bh = (int64_t)llround((double)w / GTL__AUGMENT_RATIO_MIN);
    else if (in_ratio > GTL__AUGMENT_RATIO_MAX)
        bw = (int64_t)llround((double)h * GTL__AUGMENT_RATIO_MAX);
    bh = bh < 1 ? 1 : (bh > h ? h : bh);
    bw = bw < 1 ? 1 : (bw > w ? w : bw);
    *y = (h - bh) / 2;
    *x = (w - bw) / 2;
    *ch = bh;
    *cw = bw;
}

/* torchvision CenterCrop offset int(round((n - s) / 2.0)), round half to even
 * (as image_preprocess.c, so no-flag output is identical). */
static int64_t center_offset(int64_t n, int64_t s)
{
    int64_t d = n - s, half = d / 2;
    if (d % 2 != 0 && half % 2 != 0)
        half++;
    return half;
}

/* Copies rows [y, y + ch) and columns [x, x + cw) of src (H, W, C) to dst as
 * RGB8: gray replicated, RGBA composited on white. */
static void copy_rgb(const uint8_t *src, int64_t w, int64_t c, int64_t y, int64_t x, int64_t ch,
                     int64_t cw, uint8_t *dst)
{
    for (int64_t i = 0; i < ch; i++) {
        const uint8_t *s = src + ((y + i) * w + x) * c;
        uint8_t *d = dst + i * cw * 3;
        if (c == 3) {
            memcpy(d, s, (size_t)(cw * 3));
            continue;
        }
        for (int64_t j = 0; j < cw; j++) {
            if (c == 1) {
                d[3 * j] = d[3 * j + 1] = d[3 * j + 2] = s[j];
            } else {
                for (int k = 0; k < 3; k++)
                    d[3 * j + k] = gtl__image_over_white(s[4 * j + k], s[4 * j + 3]);
            }
        }
    }
}

static void flip_u8(uint8_t *img, int64_t s)
{
    for (int64_t i = 0; i < s; i++) {
        uint8_t *row = img + i * s * 3; // (S, 3)
        for (int64_t a = 0, b = s - 1; a < b; a++, b--)
            for (int k = 0; k < 3; k++) {
                uint8_t t = row[3 * a + k];
                row[3 * a + k] = row[3 * b + k];
                row[3 * b + k] = t;
            }
    }
}

/* ---- pixel operations on (S, S, 3) floats in [0, 1] -------------------------- */

static float clamp01(float v)
{
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

static float luma(const float *p)
{
    return LUMA_R * p[0] + LUMA_G * p[1] + LUMA_B * p[2];
}

/* Sobel edge map: px becomes dark lines on white (gray). tmp holds 2 S^2. */
static void edges(float *px, int64_t s, float *tmp, gtl__rng *rng)
{
    float *y = tmp, *mag = tmp + s * s; // (S, S) each
    for (int64_t i = 0; i < s * s; i++)
        y[i] = luma(px + 3 * i);
    float mmax = 0.0f;
    for (int64_t i = 0; i < s; i++) {
        int64_t i0 = i > 0 ? i - 1 : 0, i1 = i < s - 1 ? i + 1 : s - 1;
        for (int64_t j = 0; j < s; j++) {
            int64_t j0 = j > 0 ? j - 1 : 0, j1 = j < s - 1 ? j + 1 : s - 1;
            float gx = (y[i0 * s + j1] + 2.0f * y[i * s + j1] + y[i1 * s + j1]) -
                       (y[i0 * s + j0] + 2.0f * y[i * s + j0] + y[i1 * s + j0]);
            float gy = (y[i1 * s + j0] + 2.0f * y[i1 * s + j] + y[i1 * s + j1]) -
                       (y[i0 * s + j0] + 2.0f * y[i0 * s + j] + y[i0 * s + j1]);
            float m = sqrtf(gx * gx + gy * gy);
            mag[i * s + j] = m;
            mmax = m > mmax ? m : mmax;
        }
    }
    /* Normalised by the strongest edge, but never amplified more than a
     * full black-white step would be (4), so flat noise stays faint. */
    float norm = mmax > 1.0f ? mmax : 1.0f;
    float t0 = 0.05f + 0.1f * gtl__rng_uniform(rng), t1 = t0 + 0.2f;
    for (int64_t i = 0; i < s * s; i++) {
        float e = (mag[i] / norm - t0) / (t1 - t0);
        e = clamp01(e);
        float v = 1.0f - e * e * (3.0f - 2.0f * e); /* 1 - smoothstep */
        px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = v;
    }
}

/* 2x2 min (dark strokes grow by one pixel) or max (they shrink by one) filter
 * per channel over the pixel and its right, lower and lower-right
 * neighbours, edges clamped. A 3x3 window would move each side by a pixel,
 * erasing the 2-px lines of line art at 64 px. */
static void morph(float *px, int64_t s, float *tmp, bool dilate_dark)
{
    memcpy(tmp, px, (size_t)(s * s * 3) * sizeof(float));
    for (int64_t i = 0; i < s; i++)
        for (int64_t j = 0; j < s; j++)
            for (int k = 0; k < 3; k++) {
                int64_t i1 = i + 1 < s ? i + 1 : i, j1 = j + 1 < s ? j + 1 : j;
                float a = tmp[(i * s + j) * 3 + k], b = tmp[(i * s + j1) * 3 + k];
                float c = tmp[(i1 * s + j) * 3 + k], d = tmp[(i1 * s + j1) * 3 + k];
                float ab = dilate_dark ? fminf(a, b) : fmaxf(a, b);
                float cd = dilate_dark ? fminf(c, d) : fmaxf(c, d);
                px[(i * s + j) * 3 + k] = dilate_dark ? fminf(ab, cd) : fmaxf(ab, cd);
            }
}

/* Separable 5-tap Gaussian, edges clamped. Each output is sum(w v) / sum(w)
 * over the same taps in the same order, so a constant image (white) stays
 * exactly constant. */
static void blur(float *px, int64_t s, float *tmp, float sigma)
{
    float wt[5];
    for (int k = -2; k <= 2; k++)
        wt[k + 2] = expf(-(float)(k * k) / (2.0f * sigma * sigma));
    for (int pass = 0; pass < 2; pass++) {
        const float *in = pass == 0 ? px : tmp;
        float *out = pass == 0 ? tmp : px;
        for (int64_t i = 0; i < s; i++)
            for (int64_t j = 0; j < s; j++)
                for (int c = 0; c < 3; c++) {
                    float acc = 0.0f, ws = 0.0f;
                    for (int k = -2; k <= 2; k++) {
                        int64_t a = pass == 0 ? i : i + k, b = pass == 0 ? j + k : j;
                        a = a < 0 ? 0 : (a >= s ? s - 1 : a);
                        b = b < 0 ? 0 : (b >= s ? s - 1 : b);
                        acc += wt[k + 2] * in[(a * s + b) * 3 + c];
                        ws += wt[k + 2];
                    }
                    out[(i * s + j) * 3 + c] = acc / ws;
                }
    }
}

/* torchvision ColorJitter(0.3, 0.3, 0.3) on a float image: three factors in
 * [0.7, 1.3], applied in a random order. */
static void color_jitter(float *px, int64_t n, gtl__rng *rng)
{
    int order[3] = {0, 1, 2};
    for (int i = 2; i > 0; i--) {
        int j = (int)gtl__rng_below(rng, (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    float f[3];
    for (int i = 0; i < 3; i++)
        f[i] = 1.0f - GTL__AUGMENT_JITTER + 2.0f * GTL__AUGMENT_JITTER * gtl__rng_uniform(rng);
    for (int o = 0; o < 3; o++) {
        int op = order[o];
        float a = f[op];
        if (op == 0) {          /* brightness: blend with black */
            for (int64_t i = 0; i < 3 * n; i++)
                px[i] = clamp01(a * px[i]);
        } else if (op == 1) {   /* contrast: blend with the mean luma */
            double m = 0.0;
            for (int64_t i = 0; i < n; i++)
                m += luma(px + 3 * i);
            float mean = (float)(m / (double)n);
            for (int64_t i = 0; i < 3 * n; i++)
                px[i] = clamp01(a * px[i] + (1.0f - a) * mean);
        } else {                /* saturation: blend with the pixel's luma */
            for (int64_t i = 0; i < n; i++) {
                float g = luma(px + 3 * i);
                for (int k = 0; k < 3; k++)
                    px[3 * i + k] = clamp01(a * px[3 * i + k] + (1.0f - a) * g);
            }
        }
    }
}

/* ---- the pipeline ------------------------------------------------------------ */

static gtl_status check_args(const uint8_t *src, int64_t h, int64_t w, int64_t c, uint32_t flags,
                             const gtl__rng *rng, const gtl__image_prep_opts *o, const float *dst,
                             int64_t n_dst)
{
    static const char fn[] = "gtl__augment_u8";
    if (src == NULL || dst == NULL || rng == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: src, dst and rng must not be NULL", fn);
    if (h <= 0 || w <= 0 || h > GTL__IMAGE_MAX_SIDE || w > GTL__IMAGE_MAX_SIDE ||
        h * w > GTL__IMAGE_MAX_PIXELS)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: image size %lld x %lld out of range (1 to %d per side)", fn,
                          (long long)h, (long long)w, GTL__IMAGE_MAX_SIDE);
    if (c != 1 && c != 3 && c != 4)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %lld channels (1, 3 or 4 allowed)", fn,
                          (long long)c);
    if ((flags & ~GTL__AUGMENT_ALL) != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown flags 0x%x", fn,
                          (unsigned)(flags & ~GTL__AUGMENT_ALL));
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

gtl_status gtl__augment_u8(const uint8_t *src, int64_t h, int64_t w, int64_t c, uint32_t flags,
                           gtl__rng *rng, const gtl__image_prep_opts *opts,
                           gtl__augment_scratch *scratch, float *dst, int64_t n_dst)
{
    gtl__image_prep_opts o;
    if (opts != NULL)
        o = *opts;
    else
        gtl__image_prep_opts_default(&o);
    gtl_status st = check_args(src, h, w, c, flags, rng, &o, dst, n_dst);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__augment_scratch local;
    gtl__augment_scratch *sc = scratch != NULL ? scratch : &local;
    if (scratch == NULL)
        gtl__augment_scratch_init(&local);
    int64_t s = o.size, n = s * s;

    /* 1. Geometry. */
    int64_t y = 0, x = 0, ch = h, cw = w;
    if (flags & GTL_AUGMENT_RESIZED_CROP)
        gtl__augment_crop_box(h, w, rng, &y, &x, &ch, &cw);
    const uint8_t *rgb = src;
    if (c != 3 || ch != h || cw != w) {
        st = reserve((void **)&sc->rgb, &sc->cap_rgb, (size_t)(ch * cw * 3));
        if (st != GTL_STATUS_OK)
            goto out;
        copy_rgb(src, w, c, y, x, ch, cw, sc->rgb);
        rgb = sc->rgb;
    }
    st = reserve((void **)&sc->small, &sc->cap_small, (size_t)(n * 3));
    if (st == GTL_STATUS_OK)
        st = reserve((void **)&sc->px, &sc->cap_px, (size_t)(2 * n * 3) * sizeof(float));
    if (st != GTL_STATUS_OK)
        goto out;
    if (flags & GTL_AUGMENT_RESIZED_CROP) {
        /* The box, stretched to S x S (torchvision resizes to (S, S)). */
        st = gtl__image_resize_crop_u8(rgb, ch, cw, 3, s, s, 0, 0, s, s, sc->small);
    } else {
        /* Resize the shorter side to S, centre crop: CLIP preprocessing. */
        int64_t oh, ow;
        gtl__image_resized_size(h, w, s, &oh, &ow);
        st = gtl__image_resize_crop_u8(rgb, h, w, 3, oh, ow, center_offset(oh, s),
                                       center_offset(ow, s), s, s, sc->small);
    }
    if (st != GTL_STATUS_OK)
        goto out;
    if ((flags & GTL_AUGMENT_FLIP) && gtl__rng_uniform(rng) < 0.5f)
        flip_u8(sc->small, s);

    /* 2. Pixels, as ToTensor does: v / 255 in float. */
    float *px = sc->px, *tmp = sc->px + n * 3; // (S, S, 3) each
    for (int64_t i = 0; i < n * 3; i++)
        px[i] = (float)sc->small[i] / 255.0f;
    if (flags & GTL_AUGMENT_EDGES)
        edges(px, s, tmp, rng);
    if (flags & GTL_AUGMENT_STROKE) {
        morph(px, s, tmp, gtl__rng_uniform(rng) < 0.5f);
        blur(px, s, tmp, 0.3f + 0.5f * gtl__rng_uniform(rng));
    }
    if (flags & GTL_AUGMENT_COLOR)
        color_jitter(px, n, rng);
    if ((flags & GTL_AUGMENT_GRAY) && gtl__rng_uniform(rng) < GTL__AUGMENT_GRAY_P)
        for (int64_t i = 0; i < n; i++)
            px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = luma(px + 3 * i);

    /* 3. Normalize into (3, S, S). */
    for (int k = 0; k < 3; k++) {
        float *d = dst + k * n; // (S, S) plane
        for (int64_t i = 0; i < n; i++)
            d[i] = (px[3 * i + k] - o.mean[k]) / o.std[k];
    }
out:
    if (scratch == NULL)
        gtl__augment_scratch_fini(&local);
    return st;
}

gtl_status gtl__augment_image(const gtl__image *img, uint32_t flags, gtl__rng *rng,
                              const gtl__image_prep_opts *opts, gtl__augment_scratch *scratch,
                              float *dst, int64_t n_dst)
{
    if (img == NULL || img->data == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__augment_image: image is NULL or empty");
    return gtl__augment_u8(img->data, img->h, img->w, 3, flags, rng, opts, scratch, dst, n_dst);
}
