/* io/augment: random augmentation ending in CLIP preprocessing.
 *
 * - determinism per seed, with and without a reused scratch;
 * - no flags: bit-identical to gtl__image_preprocess_u8 (gray, RGB, RGBA,
 *   several sizes), and no random draw;
 * - flip: the output is the plain one or its exact mirror, both occur;
 * - edges: a white image stays white; a black square on white becomes dark
 *   lines on the square's border with white inside and outside;
 * - stroke: white stays exactly white (an all-white image, and pixels away
 *   from the strokes of line art); strokes get thicker or thinner;
 * - colour jitter and gray: values stay in [0, 1]; gray is R = G = B in about
 *   20 % of draws and the plain image otherwise;
 * - RandomResizedCrop boxes: inside the image, area 0.5-1, ratio 3/4-4/3
 *   (up to rounding), mean area as torchvision's (0.68 / 0.70 here);
 * - bad arguments.
 * GTL_AUGMENT_DUMP=<dir> also writes sheets of augmented views as PNGs. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"
#include "io/augment.h"

static gtl__image_prep_opts opts_of(int64_t size)
{
    gtl__image_prep_opts o;
    gtl__image_prep_opts_default(&o);
    o.size = size;
    return o;
}

/* Back from normalised (3, S, S) to [0, 1]. */
static float denorm(const gtl__image_prep_opts *o, const float *img, int64_t s, int k, int64_t i)
{
    return img[k * s * s + i] * o->std[k] + o->mean[k];
}

/* A synthetic emoji: a yellow disc with a dark outline, two eyes and a red
 * mouth on white, h x w RGB. */
static uint8_t *emoji(int64_t h, int64_t w)
{
    uint8_t *p = malloc((size_t)(h * w * 3));
    double cy = h / 2.0, cx = w / 2.0, r = 0.4 * (h < w ? h : w);
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) {
            double dy = i - cy, dx = j - cx, d = sqrt(dy * dy + dx * dx);
            uint8_t c[3] = {255, 255, 255};
            if (d < r) {
                c[0] = 250, c[1] = 200, c[2] = 40;
            }
            if (fabs(d - r) < 0.06 * r)
                c[0] = c[1] = c[2] = 30;
            double ex = fabs(dx) - 0.35 * r, ey = dy + 0.25 * r;
            if (ex * ex + ey * ey < 0.01 * r * r)
                c[0] = c[1] = c[2] = 20;
            if (dy > 0.25 * r && dy < 0.4 * r && fabs(dx) < 0.4 * r)
                c[0] = 200, c[1] = 30, c[2] = 40;
            memcpy(p + (i * w + j) * 3, c, 3);
        }
    return p;
}

/* Line art: black strokes 2 px wide on white (a rectangle outline and a
 * diagonal), h x w RGB. */
static uint8_t *line_art(int64_t h, int64_t w)
{
    uint8_t *p = malloc((size_t)(h * w * 3));
    memset(p, 255, (size_t)(h * w * 3));
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) {
            bool ink = ((i == 16 || i == 17 || i == h - 17 || i == h - 18) && j >= 16 &&
                        j < w - 16) ||
                       ((j == 16 || j == 17 || j == w - 17 || j == w - 18) && i >= 16 &&
                        i < h - 16) ||
                       (llabs(i - j) <= 0 && i > 24 && i < h - 24);
            if (ink)
                memset(p + (i * w + j) * 3, 0, 3);
        }
    return p;
}

static void run(const uint8_t *src, int64_t h, int64_t w, int64_t c, uint32_t flags,
                uint64_t seed, const gtl__image_prep_opts *o, gtl__augment_scratch *sc, float *dst)
{
    gtl__rng rng;
    gtl__rng_seed(&rng, seed);
    if (gtl__augment_u8(src, h, w, c, flags, &rng, o, sc, dst, 3 * o->size * o->size) !=
        GTL_STATUS_OK)
        fail_msg("augment: %s", gtl_last_error());
}

/* ---- PNG dump (GTL_AUGMENT_DUMP) ------------------------------------------------ */

static void write_png_rgb(const char *path, int64_t w, int64_t h, const uint8_t *rgb)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed on %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t i = 0; i < h; i++)
        png_write_row(png, (png_const_bytep)(rgb + i * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* A sheet of n views (the source in the first cell) of size s, one row. */
static void dump_sheet(const char *dir, const char *name, const uint8_t *src, int64_t h,
                       int64_t w, uint32_t flags, int64_t s, int n)
{
    gtl__image_prep_opts o = opts_of(s);
    int64_t sw = s * n;
    uint8_t *sheet = malloc((size_t)(sw * s * 3));
    float *v = malloc((size_t)(3 * s * s) * sizeof(float));
    for (int k = 0; k < n; k++) {
        run(src, h, w, 3, k == 0 ? 0 : flags, 100 + (uint64_t)k, &o, NULL, v);
        for (int64_t i = 0; i < s * s; i++)
            for (int ch = 0; ch < 3; ch++) {
                float x = denorm(&o, v, s, ch, i) * 255.0f + 0.5f;
                x = x < 0.0f ? 0.0f : (x > 255.0f ? 255.0f : x);
                sheet[((i / s) * sw + k * s + i % s) * 3 + ch] = (uint8_t)x;
            }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/augment_%s.png", dir, name);
    write_png_rgb(path, sw, s, sheet);
    printf("# wrote %s\n", path);
    free(v);
    free(sheet);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_determinism(void **state)
{
    (void)state;
    int64_t h = 90, w = 70, s = 48;
    uint8_t *img = emoji(h, w);
    gtl__image_prep_opts o = opts_of(s);
    float *a = malloc((size_t)(3 * s * s) * sizeof(float)), *b = malloc((size_t)(3 * s * s) *
                                                                         sizeof(float));
    gtl__augment_scratch sc;
    gtl__augment_scratch_init(&sc);
    uint32_t flag_sets[4] = {GTL__AUGMENT_ALL & ~(uint32_t)GTL_AUGMENT_EDGES, GTL__AUGMENT_ALL,
                             GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_COLOR,
                             GTL_AUGMENT_STROKE | GTL_AUGMENT_FLIP};
    for (int f = 0; f < 4; f++) {
        int n_diff = 0;
        for (uint64_t seed = 1; seed <= 6; seed++) {
            run(img, h, w, 3, flag_sets[f], seed, &o, NULL, a);
            run(img, h, w, 3, flag_sets[f], seed, &o, &sc, b); /* a reused scratch */
            assert_memory_equal(a, b, (size_t)(3 * s * s) * sizeof(float));
            run(img, h, w, 3, flag_sets[f], seed + 1000, &o, &sc, b);
            n_diff += memcmp(a, b, (size_t)(3 * s * s) * sizeof(float)) != 0;
        }
        assert_true(n_diff >= 4); /* other seeds, other views (mostly) */
    }
    gtl__augment_scratch_fini(&sc);
    free(a);
    free(b);
    free(img);
}

static void test_no_flags_is_preprocess(void **state)
{
    gt_env *env = *state;
    int64_t dims[4][2] = {{64, 64}, {90, 70}, {33, 120}, {7, 5}};
    int64_t sizes[3] = {64, 24, 100};
    gtl__augment_scratch sc;
    gtl__augment_scratch_init(&sc);
    for (int d = 0; d < 4; d++)
        for (int64_t c = 1; c <= 4; c++) {
            if (c == 2)
                continue;
            int64_t h = dims[d][0], w = dims[d][1];
            uint8_t *img = malloc((size_t)(h * w * c));
            for (int64_t i = 0; i < h * w * c; i++)
                img[i] = (uint8_t)gt_randint(env, 0, 255);
            for (int k = 0; k < 3; k++) {
                gtl__image_prep_opts o = opts_of(sizes[k]);
                int64_t n = 3 * o.size * o.size;
                float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n *
                                                                          sizeof(float));
                assert_int_equal(gtl__image_preprocess_u8(img, h, w, c, &o, a, n), GTL_STATUS_OK);
                gtl__rng rng, rng0;
                gtl__rng_seed(&rng, 5);
                rng0 = rng;
                assert_int_equal(gtl__augment_u8(img, h, w, c, 0, &rng, &o, k == 1 ? NULL : &sc,
                                                 b, n), GTL_STATUS_OK);
                if (memcmp(a, b, (size_t)n * sizeof(float)) != 0)
                    fail_msg("no-flag augment differs from preprocessing (%lldx%lldx%lld -> "
                             "%lld)", (long long)h, (long long)w, (long long)c,
                             (long long)o.size);
                assert_memory_equal(&rng, &rng0, sizeof rng); /* no draw */
                free(a);
                free(b);
            }
            free(img);
        }
    gtl__augment_scratch_fini(&sc);
}

static void test_flip_is_mirror(void **state)
{
    (void)state;
    int64_t h = 80, w = 60, s = 40, n = s * s;
    uint8_t *img = emoji(h, w);
    img[(10 * w + 5) * 3] = 0; /* break the left-right symmetry */
    gtl__image_prep_opts o = opts_of(s);
    float *plain = malloc((size_t)(3 * n) * sizeof(float));
    float *mirror = malloc((size_t)(3 * n) * sizeof(float));
    float *v = malloc((size_t)(3 * n) * sizeof(float));
    run(img, h, w, 3, 0, 1, &o, NULL, plain);
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < s; i++)
            for (int64_t j = 0; j < s; j++)
                mirror[k * n + i * s + j] = plain[k * n + i * s + (s - 1 - j)];
    assert_memory_not_equal(plain, mirror, (size_t)(3 * n) * sizeof(float));
    int n_flip = 0, n_same = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        run(img, h, w, 3, GTL_AUGMENT_FLIP, seed, &o, NULL, v);
        if (memcmp(v, plain, (size_t)(3 * n) * sizeof(float)) == 0)
            n_same++;
        else if (memcmp(v, mirror, (size_t)(3 * n) * sizeof(float)) == 0)
            n_flip++;
        else
            fail_msg("seed %llu: neither the image nor its mirror", (unsigned long long)seed);
    }
    printf("# flip: %d mirrored, %d not, of 40\n", n_flip, n_same);
    assert_true(n_flip >= 8 && n_same >= 8);
    free(v);
    free(mirror);
    free(plain);
    free(img);
}

static void test_edges(void **state)
{
    (void)state;
    int64_t s = 64, n = s * s;
    gtl__image_prep_opts o = opts_of(s);
    uint8_t *white = malloc((size_t)(3 * n));
    memset(white, 255, (size_t)(3 * n));
    float *v = malloc((size_t)(3 * n) * sizeof(float));
    for (uint64_t seed = 0; seed < 4; seed++) {
        run(white, s, s, 3, GTL_AUGMENT_EDGES, seed, &o, NULL, v);
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < n; i++)
                assert_true(v[k * n + i] == (1.0f - o.mean[k]) / o.std[k]);
    }
    /* A black square, rows and columns [20, 44), on white. */
    uint8_t *sq = malloc((size_t)(3 * n));
    memcpy(sq, white, (size_t)(3 * n));
    for (int64_t i = 20; i < 44; i++)
        for (int64_t j = 20; j < 44; j++)
            memset(sq + (i * s + j) * 3, 0, 3);
    for (uint64_t seed = 0; seed < 4; seed++) {
        run(sq, s, s, 3, GTL_AUGMENT_EDGES, seed, &o, NULL, v);
        for (int64_t i = 0; i < s; i++)
            for (int64_t j = 0; j < s; j++) {
                float g = denorm(&o, v, s, 0, i * s + j);
                assert_true(fabsf(g - denorm(&o, v, s, 1, i * s + j)) < 1e-5f);
                /* The Sobel response straddles the border: rows 19/20 and 43/44. */
                bool on_edge = ((i == 19 || i == 20 || i == 43 || i == 44) && j >= 20 && j < 44) ||
                               ((j == 19 || j == 20 || j == 43 || j == 44) && i >= 20 && i < 44);
                bool away = i < 17 || i > 46 || j < 17 || j > 46 ||
                            (i > 22 && i < 41 && j > 22 && j < 41);
                if (on_edge && !(g < 0.05f))
                    fail_msg("edge pixel (%lld, %lld) is %g, not dark", (long long)i,
                             (long long)j, (double)g);
                if (away && !(fabsf(g - 1.0f) < 1e-6f))
                    fail_msg("pixel (%lld, %lld) away from the border is %g, not white",
                             (long long)i, (long long)j, (double)g);
            }
    }
    free(sq);
    free(v);
    free(white);
}

static void test_stroke(void **state)
{
    (void)state;
    int64_t s = 64, n = s * s;
    gtl__image_prep_opts o = opts_of(s);
    uint8_t *white = malloc((size_t)(3 * n));
    memset(white, 255, (size_t)(3 * n));
    float *v = malloc((size_t)(3 * n) * sizeof(float));
    for (uint64_t seed = 0; seed < 6; seed++) {
        run(white, s, s, 3, GTL_AUGMENT_STROKE, seed, &o, NULL, v);
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < n; i++)
                assert_true(v[k * n + i] == (1.0f - o.mean[k]) / o.std[k]);
    }
    uint8_t *art = line_art(s, s);
    int n_thicker = 0, n_thinner = 0;
    int64_t ink0 = 0;
    for (int64_t i = 0; i < n; i++)
        ink0 += art[3 * i] < 128;
    for (uint64_t seed = 0; seed < 12; seed++) {
        run(art, s, s, 3, GTL_AUGMENT_STROKE, seed, &o, NULL, v);
        int64_t ink = 0;
        for (int64_t i = 0; i < s; i++)
            for (int64_t j = 0; j < s; j++) {
                float g = denorm(&o, v, s, 0, i * s + j);
                ink += g < 0.5f;
                /* 4 px from any stroke: the 1-px morphology and the 2-px
                 * blur cannot reach; the pixel stays exactly white. */
                bool near = false;
                for (int64_t a = i - 4; a <= i + 4 && !near; a++)
                    for (int64_t b = j - 4; b <= j + 4 && !near; b++)
                        near = a >= 0 && a < s && b >= 0 && b < s && art[(a * s + b) * 3] == 0;
                if (!near)
                    for (int k = 0; k < 3; k++)
                        if (v[k * n + i * s + j] != (1.0f - o.mean[k]) / o.std[k])
                            fail_msg("white pixel (%lld, %lld) changed", (long long)i,
                                     (long long)j);
            }
        n_thicker += ink > ink0 + ink0 / 5;
        n_thinner += ink < ink0 - ink0 / 5;
    }
    printf("# stroke: %d of 12 thicker, %d thinner (ink %lld px before)\n", n_thicker,
           n_thinner, (long long)ink0);
    assert_true(n_thicker >= 2 && n_thinner >= 2);
    free(art);
    free(v);
    free(white);
}

static void test_color_and_gray(void **state)
{
    (void)state;
    int64_t h = 50, w = 50, s = 50, n = s * s;
    uint8_t *img = emoji(h, w);
    gtl__image_prep_opts o = opts_of(s);
    float *plain = malloc((size_t)(3 * n) * sizeof(float));
    float *v = malloc((size_t)(3 * n) * sizeof(float));
    run(img, h, w, 3, 0, 0, &o, NULL, plain);
    int n_gray = 0, n_diff = 0;
    for (uint64_t seed = 0; seed < 200; seed++) {
        run(img, h, w, 3, GTL_AUGMENT_GRAY, seed, &o, NULL, v);
        bool gray = true;
        for (int64_t i = 0; i < n && gray; i++)
            gray = denorm(&o, v, s, 0, i) - denorm(&o, v, s, 1, i) < 1e-5f &&
                   denorm(&o, v, s, 1, i) - denorm(&o, v, s, 2, i) < 1e-5f;
        if (gray)
            n_gray++;
        else
            assert_memory_equal(v, plain, (size_t)(3 * n) * sizeof(float));
        if (seed < 40) {
            run(img, h, w, 3, GTL_AUGMENT_COLOR, seed, &o, NULL, v);
            n_diff += memcmp(v, plain, (size_t)(3 * n) * sizeof(float)) != 0;
            for (int k = 0; k < 3; k++)
                for (int64_t i = 0; i < n; i++) {
                    float x = denorm(&o, v, s, k, i);
                    assert_true(x > -1e-5f && x < 1.0f + 1e-5f);
                }
        }
    }
    printf("# gray: %d of 200 (p = 0.2); colour jitter changed %d of 40\n", n_gray, n_diff);
    assert_true(n_gray >= 22 && n_gray <= 60);
    assert_int_equal(n_diff, 40);
    free(v);
    free(plain);
    free(img);
}

static void test_crop_statistics(void **state)
{
    (void)state;
    int64_t dims[3][2] = {{100, 80}, {64, 64}, {30, 200}};
    /* Mean area fraction of torchvision's get_params on these sizes (10^5
     * draws in Python): below 0.75 because large boxes of the wrong shape
     * do not fit and are drawn again. */
    const double want_mean[2] = {0.681, 0.698};
    for (int d = 0; d < 3; d++) {
        int64_t h = dims[d][0], w = dims[d][1];
        gtl__rng rng;
        gtl__rng_seed(&rng, 77);
        double sum_area = 0.0, min_area = 2.0, max_area = 0.0, min_r = 10.0, max_r = 0.0;
        int64_t min_y = h, max_y = 0, min_x = w, max_x = 0;
        const int n = 4000;
        for (int k = 0; k < n; k++) {
            int64_t y, x, ch, cw;
            gtl__augment_crop_box(h, w, &rng, &y, &x, &ch, &cw);
            assert_true(y >= 0 && x >= 0 && ch >= 1 && cw >= 1 && y + ch <= h && x + cw <= w);
            double a = (double)(ch * cw) / (double)(h * w), r = (double)cw / (double)ch;
            sum_area += a;
            min_area = fmin(min_area, a);
            max_area = fmax(max_area, a);
            min_r = fmin(min_r, r);
            max_r = fmax(max_r, r);
            min_y = y < min_y ? y : min_y;
            max_y = y > max_y ? y : max_y;
            min_x = x < min_x ? x : min_x;
            max_x = x > max_x ? x : max_x;
        }
        printf("# crop %lldx%lld: area %.3f..%.3f (mean %.3f), ratio %.3f..%.3f, y %lld..%lld, "
               "x %lld..%lld\n", (long long)h, (long long)w, min_area, max_area, sum_area / n,
               min_r, max_r, (long long)min_y, (long long)max_y, (long long)min_x,
               (long long)max_x);
        /* Rounding the box sides moves area and ratio by about a pixel. */
        double tol_a = 2.5 / (double)(h < w ? h : w), tol_r = 2.5 / (double)(h < w ? h : w);
        assert_true(max_area <= 1.0);
        if (d == 2) {
            /* 30 x 200: no 0.5..1 box has a ratio in range, so every draw
             * falls back to the centred 30 x 40 box (torchvision's rule). */
            assert_true(min_area == max_area && fabs(max_r - 4.0 / 3.0) < 1e-9);
            assert_true(min_x == 80 && max_x == 80 && max_y == 0);
        } else {
            assert_true(min_area >= 0.5 - tol_a);
            assert_true(min_r >= 0.75 - tol_r && max_r <= 4.0 / 3.0 + tol_r);
            assert_true(fabs(sum_area / n - want_mean[d]) < 0.015);
            assert_true(min_y == 0 && min_x == 0 && max_y > h / 4 && max_x > w / 4);
        }
    }
}

static void test_bad_args(void **state)
{
    (void)state;
    uint8_t img[4 * 4 * 3] = {0};
    float dst[3 * 8 * 8];
    gtl__image_prep_opts o = opts_of(8);
    gtl__rng rng;
    gtl__rng_seed(&rng, 1);
    assert_int_equal(gtl__augment_u8(NULL, 4, 4, 3, 0, &rng, &o, NULL, dst, 192),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__augment_u8(img, 4, 4, 3, 0, NULL, &o, NULL, dst, 192),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__augment_u8(img, 4, 4, 3, 1u << 6, &rng, &o, NULL, dst, 192),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "unknown flags"));
    assert_int_equal(gtl__augment_u8(img, 4, 4, 2, 0, &rng, &o, NULL, dst, 192),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__augment_u8(img, 0, 4, 3, 0, &rng, &o, NULL, dst, 192),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__augment_u8(img, 4, 4, 3, 0, &rng, &o, NULL, dst, 191),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "192"));
    gtl__image empty = {0};
    assert_int_equal(gtl__augment_image(&empty, 0, &rng, &o, NULL, dst, 192),
                     GTL_STATUS_INVALID_ARG);
    /* A 1 x 1 image and a 1 x 1 output work with every flag. */
    gtl__image_prep_opts o1 = opts_of(1);
    assert_int_equal(gtl__augment_u8(img, 1, 1, 3, GTL__AUGMENT_ALL, &rng, &o1, NULL, dst, 3),
                     GTL_STATUS_OK);
}

static void test_dump_pngs(void **state)
{
    (void)state;
    const char *dir = getenv("GTL_AUGMENT_DUMP");
    if (dir == NULL || *dir == '\0')
        skip();
    uint8_t *e = emoji(160, 140), *l = line_art(96, 96);
    dump_sheet(dir, "crop_flip_color_gray", e, 160, 140,
               GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_FLIP | GTL_AUGMENT_COLOR |
                   GTL_AUGMENT_GRAY, 96, 8);
    dump_sheet(dir, "edges", e, 160, 140, GTL_AUGMENT_EDGES | GTL_AUGMENT_RESIZED_CROP, 96, 6);
    dump_sheet(dir, "edges_64", e, 160, 140, GTL_AUGMENT_EDGES, 64, 3);
    dump_sheet(dir, "stroke", l, 96, 96, GTL_AUGMENT_STROKE, 96, 6);
    dump_sheet(dir, "stroke_emoji", e, 160, 140, GTL_AUGMENT_STROKE, 96, 6);
    free(l);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_determinism, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_no_flags_is_preprocess, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_flip_is_mirror, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_edges, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_stroke, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_color_and_gray, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_crop_statistics, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_dump_pngs, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
