/* io/image: decoding and CLIP preprocessing.
 *
 * Every test image is made here at run time with the codecs' own encoders
 * (libpng, libjpeg, libwebp) into a temporary directory; nothing binary is
 * committed. Lossless formats must decode exactly, lossy ones within a
 * tolerance. Truncated and corrupted files must give FORMAT (or OK for a
 * corruption the format cannot detect), never crash, and leave
 * gtl_memory_in_use where it was. Preprocessing is compared with PIL +
 * torchvision reference values in test/data/preprocess_ref.h (written by
 * test/io/gen_preprocess_ref.py from the same deterministic images). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>
#include <zlib.h>

#include "io/image.h"
#include "../data/preprocess_ref.h"

static char tmp_dir[256];
static char tmp_files[64][320];
static int n_tmp_files;

/* ---- helpers ---------------------------------------------------------- */

static const char *tmp_path(const char *name)
{
    assert_true(n_tmp_files < 64);
    char *p = tmp_files[n_tmp_files++];
    snprintf(p, sizeof(tmp_files[0]), "%s/%s", tmp_dir, name);
    return p;
}

static int group_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/gtl_test_image_XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < n_tmp_files; i++)
        remove(tmp_files[i]);
    rmdir(tmp_dir);
    return 0;
}

typedef struct mem_mark {
    uint64_t bytes, blocks;
} mem_mark;

static mem_mark mem_now(void)
{
    mem_mark m;
    assert_int_equal(gtl_memory_in_use(&m.bytes, &m.blocks), GTL_STATUS_OK);
    return m;
}

static void mem_expect(mem_mark start, const char *what)
{
    mem_mark m = mem_now();
    if (m.bytes != start.bytes || m.blocks != start.blocks)
        fail_msg("%s: leaked %lld bytes in %lld blocks", what,
                 (long long)(m.bytes - start.bytes), (long long)(m.blocks - start.blocks));
}

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* (h, w, c) deterministic test image; must match gen_u8() in
 * gen_preprocess_ref.py. Channel 3 is an alpha ramp from 40 to 239. */
static void gen_image(int64_t h, int64_t w, int64_t c, uint64_t seed, uint8_t *dst)
{
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            for (int64_t ch = 0; ch < c; ch++) {
                int64_t base = ch == 0 ? x * 256 / w
                             : ch == 1 ? y * 256 / h
                                       : (x + y) * 128 / (w + h);
                if (ch == 3)
                    base = 40 + x * 200 / w;
                else if ((x / 7 + y / 5) % 2 == 1)
                    base += 60;
                uint64_t idx = (uint64_t)((y * w + x) * c + ch);
                int64_t noise = (int64_t)(splitmix64(seed * 1000003ull + idx) % 61) - 30;
                if (ch == 3)
                    noise = noise >= 0 ? noise / 4 : -((-noise + 3) / 4); /* Python // */
                dst[(y * w + x) * c + ch] = (uint8_t)clampi(base + noise, 0, 255);
            }
}

/* A smooth image for lossy codecs: gradients only. */
static void gen_smooth(int64_t h, int64_t w, int64_t c, uint8_t *dst)
{
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            for (int64_t ch = 0; ch < c; ch++) {
                int64_t v = ch == 0 ? 30 + x * 190 / w
                          : ch == 1 ? 20 + y * 200 / h
                          : ch == 2 ? 60 + (x + y) * 120 / (w + h)
                                    : 255 * x / (w - 1);
                dst[(y * w + x) * c + ch] = (uint8_t)v;
            }
}

static void write_file(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_whole(const char *path, size_t *out_n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *out_n = (size_t)n;
    return buf;
}

/* Decodes path and checks size and exact RGB. */
static void expect_exact(const char *path, int64_t h, int64_t w, const uint8_t *rgb)
{
    gtl__image img;
    gtl_status st = gtl__image_decode_file(path, &img);
    if (st != GTL_STATUS_OK)
        fail_msg("%s: %s", path, gtl_last_error());
    assert_int_equal(img.h, h);
    assert_int_equal(img.w, w);
    for (int64_t i = 0; i < h * w * 3; i++)
        if (img.data[i] != rgb[i])
            fail_msg("%s: byte %lld (pixel %lld, channel %lld) is %d, expected %d", path,
                     (long long)i, (long long)(i / 3), (long long)(i % 3), img.data[i], rgb[i]);
    gtl__image_fini(&img);
}

/* Decodes path and checks size and RGB within a tolerance. */
static void expect_close(const char *path, int64_t h, int64_t w, const uint8_t *rgb,
                         double max_mean, int max_abs)
{
    gtl__image img;
    gtl_status st = gtl__image_decode_file(path, &img);
    if (st != GTL_STATUS_OK)
        fail_msg("%s: %s", path, gtl_last_error());
    assert_int_equal(img.h, h);
    assert_int_equal(img.w, w);
    double sum = 0;
    int worst = 0;
    for (int64_t i = 0; i < h * w * 3; i++) {
        int d = abs((int)img.data[i] - (int)rgb[i]);
        sum += d;
        worst = d > worst ? d : worst;
    }
    double mean = sum / (double)(h * w * 3);
    printf("  %s: mean |diff| %.3f, max %d\n", path, mean, worst);
    assert_true(mean <= max_mean);
    assert_true(worst <= max_abs);
    gtl__image_fini(&img);
}

static void rgba_to_rgb_white(const uint8_t *rgba, int64_t n, uint8_t *rgb)
{
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            rgb[3 * i + k] = gtl__image_over_white(rgba[4 * i + k], rgba[4 * i + 3]);
}

/* ---- encoders (test side) --------------------------------------------- */

static void write_png(const char *path, int w, int h, int color, int depth, const uint8_t *data,
                      size_t rowbytes, const png_color *pal, int n_pal, const png_byte *trns,
                      int n_trns, const png_color_16 *trns_color, bool interlace)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    png_bytep *rows = malloc(sizeof(*rows) * (size_t)h);
    assert_non_null(rows);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal != NULL)
        png_set_PLTE(png, info, pal, n_pal);
    if (trns != NULL || trns_color != NULL)
        png_set_tRNS(png, info, trns, n_trns, trns_color);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        rows[y] = (png_bytep)(data + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    assert_int_equal(fclose(f), 0);
}

/* JPEG into a malloc'd buffer (free it). in_cs JCS_RGB, JCS_GRAYSCALE or JCS_CMYK;
 * file_cs the colour space stored in the file. */
static uint8_t *encode_jpeg(const uint8_t *data, int w, int h, J_COLOR_SPACE in_cs, int comps,
                            J_COLOR_SPACE file_cs, int quality, bool progressive, size_t *out_n)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *buf = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = in_cs;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, file_cs);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(data + (size_t)c.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *out_n = size;
    return buf;
}

/* ---- format detection and arguments ----------------------------------- */

static void test_detect_format(void **state)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    static const uint8_t jpg[4] = {0xff, 0xd8, 0xff, 0xe0};
    assert_int_equal(gtl__image_detect_format(png, 8), GTL__IMAGE_FORMAT_PNG);
    assert_int_equal(gtl__image_detect_format(png, 7), GTL__IMAGE_FORMAT_UNKNOWN);
    assert_int_equal(gtl__image_detect_format(jpg, 4), GTL__IMAGE_FORMAT_JPEG);
    assert_int_equal(gtl__image_detect_format("RIFF\x10\0\0\0WEBPVP8 ", 16),
                     GTL__IMAGE_FORMAT_WEBP);
    assert_int_equal(gtl__image_detect_format("RIFF\x10\0\0\0WAVEfmt ", 16),
                     GTL__IMAGE_FORMAT_UNKNOWN);
    assert_int_equal(gtl__image_detect_format("GIF89a..", 8), GTL__IMAGE_FORMAT_GIF);
    assert_int_equal(gtl__image_detect_format("BM......", 8), GTL__IMAGE_FORMAT_BMP);
    assert_int_equal(gtl__image_detect_format("II*\0....", 8), GTL__IMAGE_FORMAT_TIFF);
    assert_int_equal(gtl__image_detect_format(NULL, 8), GTL__IMAGE_FORMAT_UNKNOWN);

    mem_mark m0 = mem_now();
    gtl__image img = {1, 1, (uint8_t *)1};
    assert_int_equal(gtl__image_decode_mem("GIF89a\1\0\1\0", 10, "a.gif", &img),
                     GTL_STATUS_UNSUPPORTED);
    assert_non_null(strstr(gtl_last_error(), "a.gif"));
    assert_non_null(strstr(gtl_last_error(), "GIF"));
    assert_null(img.data);
    assert_int_equal(img.h, 0);
    assert_int_equal(gtl__image_decode_mem("hello world, not an image", 25, NULL, &img),
                     GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "<memory>"));
    assert_int_equal(gtl__image_decode_mem("", 0, "empty", &img), GTL_STATUS_FORMAT);
    assert_int_equal(gtl__image_decode_mem(NULL, 5, "x", &img), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_decode_mem(png, 8, "x", NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_decode_file(NULL, &img), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_decode_file("x", NULL), GTL_STATUS_INVALID_ARG);
    gtl__image_fini(NULL);
    gtl__image_fini(&img);
    mem_expect(m0, "detect_format");
}

static void test_missing_path(void **state)
{
    mem_mark m0 = mem_now();
    gtl__image img;
    char path[400];
    snprintf(path, sizeof(path), "%s/does/not/exist.png", tmp_dir);
    assert_int_equal(gtl__image_decode_file(path, &img), GTL_STATUS_IO);
    printf("  missing: %s\n", gtl_last_error());
    assert_non_null(strstr(gtl_last_error(), path));
    assert_non_null(strstr(gtl_last_error(), strerror(ENOENT)));
    assert_null(img.data);
    /* A directory opens but cannot be read. */
    assert_int_equal(gtl__image_decode_file(tmp_dir, &img), GTL_STATUS_IO);
    printf("  directory: %s\n", gtl_last_error());
    assert_non_null(strstr(gtl_last_error(), tmp_dir));
    /* An empty file is not an image. */
    const char *empty = tmp_path("empty.png");
    write_file(empty, "", 0);
    assert_int_equal(gtl__image_decode_file(empty, &img), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), empty));
    mem_expect(m0, "missing path");
}

/* ---- PNG ---------------------------------------------------------------- */

static void test_png_variants(void **state)
{
    mem_mark m0 = mem_now();
    enum { W = 37, H = 23 };
    uint8_t rgba[H * W * 4], rgb[H * W * 3], expect[H * W * 3], gray[H * W], ga[H * W * 2];
    gen_image(H, W, 4, 21, rgba);
    gen_image(H, W, 3, 22, rgb);
    gen_image(H, W, 1, 23, gray);
    for (int i = 0; i < H * W; i++) {
        ga[2 * i] = gray[i];
        ga[2 * i + 1] = (uint8_t)(i % 7 == 0 ? 0 : i % 7 == 1 ? 255 : rgba[4 * i + 3]);
    }

    /* RGB 8-bit, plain and interlaced. */
    const char *p = tmp_path("rgb8.png");
    write_png(p, W, H, PNG_COLOR_TYPE_RGB, 8, rgb, W * 3, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, rgb);
    p = tmp_path("rgb8_adam7.png");
    write_png(p, W, H, PNG_COLOR_TYPE_RGB, 8, rgb, W * 3, NULL, 0, NULL, 0, NULL, true);
    expect_exact(p, H, W, rgb);

    /* RGBA: composited on white. */
    p = tmp_path("rgba8.png");
    write_png(p, W, H, PNG_COLOR_TYPE_RGBA, 8, rgba, W * 4, NULL, 0, NULL, 0, NULL, false);
    rgba_to_rgb_white(rgba, H * W, expect);
    expect_exact(p, H, W, expect);

    /* Gray: replicated. */
    for (int i = 0; i < H * W; i++)
        expect[3 * i] = expect[3 * i + 1] = expect[3 * i + 2] = gray[i];
    p = tmp_path("gray8.png");
    write_png(p, W, H, PNG_COLOR_TYPE_GRAY, 8, gray, W, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, expect);

    /* Gray with a tRNS colour: that gray level becomes transparent -> white. */
    png_color_16 key = {0};
    key.gray = gray[5];
    for (int i = 0; i < H * W; i++)
        if (gray[i] == gray[5])
            expect[3 * i] = expect[3 * i + 1] = expect[3 * i + 2] = 255;
    p = tmp_path("gray8_trns.png");
    write_png(p, W, H, PNG_COLOR_TYPE_GRAY, 8, gray, W, NULL, 0, NULL, 0, &key, false);
    expect_exact(p, H, W, expect);

    /* Gray 1-bit: expanded to 0 / 255. */
    uint8_t bits[H * ((W + 7) / 8)];
    memset(bits, 0, sizeof(bits));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int on = gray[y * W + x] >= 128;
            bits[y * ((W + 7) / 8) + x / 8] |= (uint8_t)(on << (7 - x % 8));
            uint8_t v = on ? 255 : 0;
            expect[3 * (y * W + x)] = expect[3 * (y * W + x) + 1] = v;
            expect[3 * (y * W + x) + 2] = v;
        }
    p = tmp_path("gray1.png");
    write_png(p, W, H, PNG_COLOR_TYPE_GRAY, 1, bits, (W + 7) / 8, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, expect);

    /* Gray + alpha (incl. fully transparent and opaque pixels). */
    for (int i = 0; i < H * W; i++)
        expect[3 * i] = expect[3 * i + 1] = expect[3 * i + 2] =
            gtl__image_over_white(ga[2 * i], ga[2 * i + 1]);
    p = tmp_path("ga8.png");
    write_png(p, W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, W * 2, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, expect);

    /* Palette 8-bit with per-entry alpha, and 4-bit packed palette. */
    png_color pal[16];
    png_byte pal_a[16];
    for (int i = 0; i < 16; i++) {
        pal[i].red = (png_byte)(i * 17);
        pal[i].green = (png_byte)(255 - i * 13);
        pal[i].blue = (png_byte)(i * 5 + 3);
        pal_a[i] = (png_byte)(i == 0 ? 0 : i == 1 ? 128 : 255);
    }
    uint8_t idx8[H * W], idx4[H * ((W + 1) / 2)];
    memset(idx4, 0, sizeof(idx4));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t v = (uint8_t)(rgb[3 * (y * W + x)] % 16);
            idx8[y * W + x] = v;
            idx4[y * ((W + 1) / 2) + x / 2] |= (uint8_t)(x % 2 == 0 ? v << 4 : v);
        }
    for (int i = 0; i < H * W; i++) {
        const png_color *c = &pal[idx8[i]];
        expect[3 * i] = gtl__image_over_white(c->red, pal_a[idx8[i]]);
        expect[3 * i + 1] = gtl__image_over_white(c->green, pal_a[idx8[i]]);
        expect[3 * i + 2] = gtl__image_over_white(c->blue, pal_a[idx8[i]]);
    }
    p = tmp_path("pal8_trns.png");
    write_png(p, W, H, PNG_COLOR_TYPE_PALETTE, 8, idx8, W, pal, 16, pal_a, 16, NULL, false);
    expect_exact(p, H, W, expect);
    for (int i = 0; i < H * W; i++) {
        expect[3 * i] = pal[idx8[i]].red;
        expect[3 * i + 1] = pal[idx8[i]].green;
        expect[3 * i + 2] = pal[idx8[i]].blue;
    }
    p = tmp_path("pal4.png");
    write_png(p, W, H, PNG_COLOR_TYPE_PALETTE, 4, idx4, (W + 1) / 2, pal, 16, NULL, 0, NULL,
              false);
    expect_exact(p, H, W, expect);

    /* 16-bit RGB and gray+alpha: v8 * 257 + d with |d| < 128 must scale
     * (round) back to v8; truncating to the high byte would not. */
    uint8_t rgb16[H * W * 6], ga16[H * W * 4];
    for (int i = 0; i < H * W * 3; i++) {
        int d = (int)(splitmix64(77 + (uint64_t)i) % 255) - 127;
        int v = (int)clampi(rgb[i] * 257 + d, 0, 65535);
        rgb16[2 * i] = (uint8_t)(v >> 8);
        rgb16[2 * i + 1] = (uint8_t)(v & 0xff);
    }
    p = tmp_path("rgb16.png");
    write_png(p, W, H, PNG_COLOR_TYPE_RGB, 16, rgb16, W * 6, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, rgb);
    for (int i = 0; i < H * W; i++) {
        int g = gray[i] * 257 + 100, a = ga[2 * i + 1] * 257 - 90;
        g = (int)clampi(g, 0, 65535);
        a = (int)clampi(a, 0, 65535);
        ga16[4 * i] = (uint8_t)(g >> 8);
        ga16[4 * i + 1] = (uint8_t)g;
        ga16[4 * i + 2] = (uint8_t)(a >> 8);
        ga16[4 * i + 3] = (uint8_t)a;
        expect[3 * i] = expect[3 * i + 1] = expect[3 * i + 2] =
            gtl__image_over_white(gray[i], ga[2 * i + 1]);
    }
    p = tmp_path("ga16.png");
    write_png(p, W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 16, ga16, W * 4, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, expect);

    /* The extension is ignored: a PNG named .jpg decodes as PNG. */
    p = tmp_path("actually_png.jpg");
    write_png(p, W, H, PNG_COLOR_TYPE_RGB, 8, rgb, W * 3, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, H, W, rgb);
    mem_expect(m0, "png variants");
}

static void test_alpha_on_white(void **state)
{
    mem_mark m0 = mem_now();
    /* transparent black, opaque red, half green, 25% blue over white */
    const uint8_t px[4 * 4] = {0, 0, 0, 0, 255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 64};
    const uint8_t want[4 * 3] = {255, 255, 255, 255, 0, 0, 127, 255, 127, 191, 191, 255};
    const char *p = tmp_path("alpha.png");
    write_png(p, 4, 1, PNG_COLOR_TYPE_RGBA, 8, px, 16, NULL, 0, NULL, 0, NULL, false);
    expect_exact(p, 1, 4, want);
    /* The same through WebP lossless. */
    uint8_t *enc = NULL;
    size_t n = WebPEncodeLosslessRGBA(px, 4, 1, 16, &enc);
    assert_true(n > 0);
    p = tmp_path("alpha.webp");
    write_file(p, enc, n);
    WebPFree(enc);
    expect_exact(p, 1, 4, want);
    /* And through preprocessing of a raw RGBA buffer (1 x 4 -> 224 x 896,
     * centre crop): every value lies between the composited extremes. */
    float *t = malloc(sizeof(float) * 3 * 224 * 224);
    assert_non_null(t);
    gtl__image_prep_opts o;
    gtl__image_prep_opts_default(&o);
    o.mean[0] = o.mean[1] = o.mean[2] = 0.0f;
    o.std[0] = o.std[1] = o.std[2] = 1.0f;
    assert_int_equal(gtl__image_preprocess_u8(px, 1, 4, 4, &o, t, 3 * 224 * 224),
                     GTL_STATUS_OK);
    for (int64_t i = 0; i < 3 * 224 * 224; i++)
        assert_true(t[i] >= 0.0f && t[i] <= 1.0f);
    free(t);
    mem_expect(m0, "alpha on white");
}

/* ---- JPEG --------------------------------------------------------------- */

static void test_jpeg(void **state)
{
    mem_mark m0 = mem_now();
    enum { W = 96, H = 64 };
    uint8_t rgb[H * W * 3], expect[H * W * 3], gray[H * W], cmyk[H * W * 4];
    gen_smooth(H, W, 3, rgb);
    for (int i = 0; i < H * W; i++)
        gray[i] = rgb[3 * i + 1];
    size_t n = 0;

    uint8_t *enc = encode_jpeg(rgb, W, H, JCS_RGB, 3, JCS_YCbCr, 95, false, &n);
    const char *p = tmp_path("rgb.jpg");
    write_file(p, enc, n);
    free(enc);
    expect_close(p, H, W, rgb, 1.5, 12);

    enc = encode_jpeg(rgb, W, H, JCS_RGB, 3, JCS_YCbCr, 90, true, &n);
    p = tmp_path("rgb_progressive.jpg");
    write_file(p, enc, n);
    free(enc);
    expect_close(p, H, W, rgb, 2.0, 16);

    enc = encode_jpeg(rgb, W, H, JCS_RGB, 3, JCS_RGB, 95, false, &n);
    p = tmp_path("rgb_rgbspace.jpg");
    write_file(p, enc, n);
    free(enc);
    expect_close(p, H, W, rgb, 1.5, 12);

    for (int i = 0; i < H * W; i++)
        expect[3 * i] = expect[3 * i + 1] = expect[3 * i + 2] = gray[i];
    enc = encode_jpeg(gray, W, H, JCS_GRAYSCALE, 1, JCS_GRAYSCALE, 95, false, &n);
    p = tmp_path("gray.jpg");
    write_file(p, enc, n);
    free(enc);
    expect_close(p, H, W, expect, 1.0, 8);
    gtl__image img;
    assert_int_equal(gtl__image_decode_file(p, &img), GTL_STATUS_OK);
    for (int64_t i = 0; i < H * W; i++)
        assert_true(img.data[3 * i] == img.data[3 * i + 1] &&
                    img.data[3 * i] == img.data[3 * i + 2]);
    gtl__image_fini(&img);

    /* CMYK and YCCK (Adobe marker: inverted inks, as Photoshop writes them):
     * r = c' * k' / 255. */
    for (int i = 0; i < H * W; i++) {
        cmyk[4 * i] = rgb[3 * i];
        cmyk[4 * i + 1] = rgb[3 * i + 1];
        cmyk[4 * i + 2] = rgb[3 * i + 2];
        cmyk[4 * i + 3] = (uint8_t)(200 + (i % W) * 55 / W);
        for (int k = 0; k < 3; k++)
            expect[3 * i + k] = (uint8_t)((cmyk[4 * i + k] * cmyk[4 * i + 3] + 127) / 255);
    }
    enc = encode_jpeg(cmyk, W, H, JCS_CMYK, 4, JCS_CMYK, 98, false, &n);
    p = tmp_path("cmyk.jpg");
    write_file(p, enc, n);
    free(enc);
    expect_close(p, H, W, expect, 1.5, 12);
    enc = encode_jpeg(cmyk, W, H, JCS_CMYK, 4, JCS_YCCK, 98, false, &n);
    p = tmp_path("ycck.jpg");
    write_file(p, enc, n);
    free(enc);
    expect_close(p, H, W, expect, 1.5, 12);
    mem_expect(m0, "jpeg");
}

/* ---- WebP --------------------------------------------------------------- */

static void test_webp(void **state)
{
    mem_mark m0 = mem_now();
    enum { W = 80, H = 52 };
    uint8_t rgb[H * W * 3], rgba[H * W * 4], expect[H * W * 3], smooth[H * W * 4];
    gen_image(H, W, 3, 31, rgb);
    gen_image(H, W, 4, 32, rgba);
    for (int i = 0; i < W; i++)
        rgba[4 * i + 3] = 0; /* a fully transparent first row */
    uint8_t *enc = NULL;

    size_t n = WebPEncodeLosslessRGB(rgb, W, H, W * 3, &enc);
    assert_true(n > 0);
    const char *p = tmp_path("lossless.webp");
    write_file(p, enc, n);
    WebPFree(enc);
    expect_exact(p, H, W, rgb);

    n = WebPEncodeLosslessRGBA(rgba, W, H, W * 4, &enc);
    assert_true(n > 0);
    p = tmp_path("lossless_alpha.webp");
    write_file(p, enc, n);
    WebPFree(enc);
    rgba_to_rgb_white(rgba, H * W, expect);
    expect_exact(p, H, W, expect);

    gen_smooth(H, W, 3, smooth);
    n = WebPEncodeRGB(smooth, W, H, W * 3, 95.0f, &enc);
    assert_true(n > 0);
    p = tmp_path("lossy.webp");
    write_file(p, enc, n);
    WebPFree(enc);
    expect_close(p, H, W, smooth, 2.0, 16);

    gen_smooth(H, W, 4, smooth); /* alpha ramps 0 -> 255 left to right */
    n = WebPEncodeRGBA(smooth, W, H, W * 4, 95.0f, &enc);
    assert_true(n > 0);
    p = tmp_path("lossy_alpha.webp");
    write_file(p, enc, n);
    WebPFree(enc);
    rgba_to_rgb_white(smooth, H * W, expect);
    expect_close(p, H, W, expect, 2.0, 16);
    mem_expect(m0, "webp");
}

/* ---- robustness --------------------------------------------------------- */

struct sample_file {
    const char *name;
    uint8_t *buf; /* malloc'd */
    size_t n;
};

/* One small file of each kind, in memory. */
static int make_samples(struct sample_file *s)
{
    enum { W = 48, H = 40 };
    static uint8_t rgb[H * W * 3], rgba[H * W * 4];
    gen_image(H, W, 3, 41, rgb);
    gen_image(H, W, 4, 42, rgba);
    int k = 0;
    const char *p = tmp_path("robust.png");
    write_png(p, W, H, PNG_COLOR_TYPE_RGB, 8, rgb, W * 3, NULL, 0, NULL, 0, NULL, false);
    s[k].name = "robust.png";
    s[k].buf = read_whole(p, &s[k].n);
    k++;
    p = tmp_path("robust_adam7_rgba.png");
    write_png(p, W, H, PNG_COLOR_TYPE_RGBA, 8, rgba, W * 4, NULL, 0, NULL, 0, NULL, true);
    s[k].name = "robust_adam7_rgba.png";
    s[k].buf = read_whole(p, &s[k].n);
    k++;
    s[k].name = "robust.jpg";
    s[k].buf = encode_jpeg(rgb, W, H, JCS_RGB, 3, JCS_YCbCr, 90, false, &s[k].n);
    k++;
    s[k].name = "robust_progressive.jpg";
    s[k].buf = encode_jpeg(rgb, W, H, JCS_RGB, 3, JCS_YCbCr, 90, true, &s[k].n);
    k++;
    uint8_t *enc = NULL;
    size_t n = WebPEncodeLosslessRGBA(rgba, W, H, W * 4, &enc);
    s[k].name = "robust_lossless.webp";
    s[k].buf = malloc(n);
    memcpy(s[k].buf, enc, n);
    s[k].n = n;
    WebPFree(enc);
    k++;
    n = WebPEncodeRGBA(rgba, W, H, W * 4, 80.0f, &enc);
    s[k].name = "robust_lossy_alpha.webp";
    s[k].buf = malloc(n);
    memcpy(s[k].buf, enc, n);
    s[k].n = n;
    WebPFree(enc);
    k++;
    n = WebPEncodeRGB(rgb, W, H, W * 3, 80.0f, &enc);
    s[k].name = "robust_lossy.webp";
    s[k].buf = malloc(n);
    memcpy(s[k].buf, enc, n);
    s[k].n = n;
    WebPFree(enc);
    k++;
    return k;
}

static void test_truncated(void **state)
{
    struct sample_file s[8];
    int n_s = make_samples(s);
    mem_mark m0 = mem_now();
    for (int i = 0; i < n_s; i++) {
        gtl__image img;
        assert_int_equal(gtl__image_decode_mem(s[i].buf, s[i].n, s[i].name, &img),
                         GTL_STATUS_OK);
        gtl__image_fini(&img);
        size_t n = s[i].n;
        size_t cuts[] = {1, 2, 3, 7, 11, 12, 16, 20, 30, 33, 50, 100, n / 4, n / 2, 3 * n / 4,
                         n - 16, n - 8, n - 3, n - 2, n - 1};
        for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
            if (cuts[c] == 0 || cuts[c] >= n)
                continue;
            gtl_status st = gtl__image_decode_mem(s[i].buf, cuts[c], s[i].name, &img);
            if (st != GTL_STATUS_FORMAT)
                fail_msg("%s cut at %zu of %zu: status %d (%s), expected FORMAT", s[i].name,
                         cuts[c], n, (int)st, gtl_last_error());
            assert_null(img.data);
            assert_non_null(strstr(gtl_last_error(), s[i].name));
            if (c == 14)
                printf("  %s cut at %zu: %s\n", s[i].name, cuts[c], gtl_last_error());
        }
        mem_expect(m0, s[i].name);
    }
    /* And through a file. */
    const char *p = tmp_path("truncated.jpg");
    write_file(p, s[2].buf, s[2].n / 2);
    gtl__image img;
    assert_int_equal(gtl__image_decode_file(p, &img), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), p));
    mem_expect(m0, "truncated file");
    for (int i = 0; i < n_s; i++)
        free(s[i].buf);
}

static void test_corrupt(void **state)
{
    struct sample_file s[8];
    int n_s = make_samples(s);
    mem_mark m0 = mem_now();
    uint64_t rng = 12345;
    for (int i = 0; i < n_s; i++) {
        uint8_t *buf = malloc(s[i].n);
        assert_non_null(buf);
        int count[GTL_STATUS_INTERNAL + 1] = {0};
        for (int trial = 0; trial < 150; trial++) {
            memcpy(buf, s[i].buf, s[i].n);
            int n_flip = 1 + (int)(splitmix64(rng++) % 4);
            for (int f = 0; f < n_flip; f++) {
                /* Half the hits land in the first 64 bytes (the headers). */
                uint64_t r = splitmix64(rng++);
                size_t at = (r & 1) ? (size_t)(r >> 8) % (s[i].n < 64 ? s[i].n : 64)
                                    : (size_t)(r >> 8) % s[i].n;
                buf[at] ^= (uint8_t)(1 + splitmix64(rng++) % 255);
            }
            gtl__image img;
            gtl_status st = gtl__image_decode_mem(buf, s[i].n, s[i].name, &img);
            assert_true(st <= GTL_STATUS_INTERNAL);
            count[st]++;
            if (st == GTL_STATUS_OK) {
                /* Undetectable corruption (lossy entropy data has no checksum):
                 * a well-formed image is still required. */
                assert_non_null(img.data);
                assert_true(img.h > 0 && img.w > 0 && img.h <= GTL__IMAGE_MAX_SIDE);
            } else {
                assert_true(st == GTL_STATUS_FORMAT || st == GTL_STATUS_UNSUPPORTED);
                assert_null(img.data);
                assert_true(strlen(gtl_last_error()) > 0);
            }
            gtl__image_fini(&img);
        }
        printf("  %-24s 150 corruptions: %d ok, %d format, %d unsupported\n", s[i].name,
               count[GTL_STATUS_OK], count[GTL_STATUS_FORMAT], count[GTL_STATUS_UNSUPPORTED]);
        mem_expect(m0, s[i].name);
        free(buf);
    }
    for (int i = 0; i < n_s; i++)
        free(s[i].buf);
}

/* A PNG made of a signature, an IHDR with the given size, an empty IDAT and
 * an IEND. */
static size_t craft_png(uint8_t *out, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    size_t n = 0;
    memcpy(out, sig, 8);
    n = 8;
    uint8_t ihdr[4 + 4 + 13] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    uint32_t v[2] = {w, h};
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < 4; b++)
            ihdr[8 + 4 * k + b] = (uint8_t)(v[k] >> (24 - 8 * b));
    ihdr[16] = 8; /* depth */
    ihdr[17] = 2; /* RGB */
    memcpy(out + n, ihdr, sizeof(ihdr));
    uint32_t crc = (uint32_t)crc32(0, ihdr + 4, 17);
    n += sizeof(ihdr);
    for (int b = 0; b < 4; b++)
        out[n++] = (uint8_t)(crc >> (24 - 8 * b));
    static const uint8_t idat[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e};
    memcpy(out + n, idat, 12);
    n += 12;
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(out + n, iend, 12);
    return n + 12;
}

/* Patches the SOF0 frame size of a baseline JPEG. */
static void patch_jpeg_size(uint8_t *buf, size_t n, int w, int h)
{
    for (size_t i = 2; i + 9 < n; i++)
        if (buf[i] == 0xff && buf[i + 1] == 0xc0) {
            buf[i + 5] = (uint8_t)(h >> 8);
            buf[i + 6] = (uint8_t)h;
            buf[i + 7] = (uint8_t)(w >> 8);
            buf[i + 8] = (uint8_t)w;
            return;
        }
    fail_msg("no SOF0 marker");
}

static void test_size_limits(void **state)
{
    mem_mark m0 = mem_now();
    uint8_t buf[64];
    gtl__image img;
    size_t n = craft_png(buf, 0, 10);
    assert_int_equal(gtl__image_decode_mem(buf, n, "zero.png", &img), GTL_STATUS_FORMAT);
    printf("  %s\n", gtl_last_error());
    n = craft_png(buf, 20000, 10);
    gtl_status st = gtl__image_decode_mem(buf, n, "wide.png", &img);
    printf("  %s\n", gtl_last_error());
    assert_int_equal(st, GTL_STATUS_UNSUPPORTED);
    assert_non_null(strstr(gtl_last_error(), "wide.png"));
    assert_non_null(strstr(gtl_last_error(), "16384"));
    n = craft_png(buf, 16384, 16385);
    assert_int_equal(gtl__image_decode_mem(buf, n, "tall.png", &img), GTL_STATUS_UNSUPPORTED);
    /* Within the limits, the crafted file fails only for its missing pixels. */
    n = craft_png(buf, 3000, 2000);
    assert_int_equal(gtl__image_decode_mem(buf, n, "ok_size.png", &img), GTL_STATUS_FORMAT);
    printf("  %s\n", gtl_last_error());

    uint8_t rgb[8 * 8 * 3];
    gen_image(8, 8, 3, 5, rgb);
    uint8_t *enc = encode_jpeg(rgb, 8, 8, JCS_RGB, 3, JCS_YCbCr, 90, false, &n);
    patch_jpeg_size(enc, n, 20000, 8);
    assert_int_equal(gtl__image_decode_mem(enc, n, "wide.jpg", &img), GTL_STATUS_UNSUPPORTED);
    printf("  %s\n", gtl_last_error());
    patch_jpeg_size(enc, n, 8, 0);
    assert_int_equal(gtl__image_decode_mem(enc, n, "zero.jpg", &img), GTL_STATUS_FORMAT);
    printf("  %s\n", gtl_last_error());
    patch_jpeg_size(enc, n, 0, 8);
    assert_int_equal(gtl__image_decode_mem(enc, n, "zero_w.jpg", &img), GTL_STATUS_FORMAT);
    /* A 12-bit frame header: valid JPEG, but this libjpeg decodes 8 bits only. */
    patch_jpeg_size(enc, n, 8, 8);
    for (size_t i = 2; i + 9 < n; i++)
        if (enc[i] == 0xff && enc[i + 1] == 0xc0) {
            enc[i + 4] = 12;
            break;
        }
    assert_int_equal(gtl__image_decode_mem(enc, n, "twelve.jpg", &img), GTL_STATUS_UNSUPPORTED);
    printf("  %s\n", gtl_last_error());
    free(enc);

    /* WebP with a VP8X canvas of 20000 x 20000 around a small lossy image. */
    uint8_t rgba[8 * 8 * 4];
    gen_image(8, 8, 4, 6, rgba);
    size_t m = WebPEncodeRGBA(rgba, 8, 8, 32, 80.0f, &enc);
    assert_true(m > 30 && memcmp(enc + 12, "VP8X", 4) == 0);
    uint8_t *big = malloc(m);
    memcpy(big, enc, m);
    WebPFree(enc);
    for (int b = 0; b < 3; b++) {
        big[24 + b] = (uint8_t)((20000 - 1) >> (8 * b));
        big[27 + b] = (uint8_t)((20000 - 1) >> (8 * b));
    }
    st = gtl__image_decode_mem(big, m, "canvas.webp", &img);
    printf("  %s\n", gtl_last_error());
    assert_true(st == GTL_STATUS_UNSUPPORTED || st == GTL_STATUS_FORMAT);
    free(big);
    mem_expect(m0, "size limits");
}

/* ---- preprocessing ------------------------------------------------------ */

/* torchvision CenterCrop offset with Python's round-half-even. */
static int64_t py_crop(int64_t n, int64_t s)
{
    double v = (double)(n - s) / 2.0;
    double r = nearbyint(v); /* default rounding mode: half to even */
    return (int64_t)r;
}

static void test_preprocess_reference(void **state)
{
    mem_mark m0 = mem_now();
    double worst_all = 0.0;
    for (int r = 0; r < N_PREP_REFS; r++) {
        const prep_ref *ref = &PREP_REFS[r];
        int64_t h = ref->h, w = ref->w, c = ref->c, s = ref->size, n = 3 * s * s;
        uint8_t *img = malloc((size_t)(h * w * c));
        float *out = malloc(sizeof(float) * (size_t)n);
        assert_non_null(img);
        assert_non_null(out);
        gen_image(h, w, c, ref->seed, img);
        gtl__image_prep_opts o;
        o.size = s;
        memcpy(o.mean, ref->mean, sizeof(o.mean));
        memcpy(o.std, ref->std, sizeof(o.std));
        gtl_status st;
        uint32_t crc = 0;
        if (ref->is_float) {
            float *f = malloc(sizeof(float) * (size_t)(h * w * c));
            assert_non_null(f);
            for (int64_t i = 0; i < h * w * c; i++)
                f[i] = (float)img[i] / 255.0f;
            st = gtl__image_preprocess_f32(f, h, w, c, &o, out, n);
            free(f);
        } else {
            st = gtl__image_preprocess_u8(img, h, w, c, &o, out, n);
            /* The uint8 resize + crop on its own, as RGB, against PIL's bytes. */
            uint8_t *rgb = malloc((size_t)(h * w * 3)), *small = malloc((size_t)(s * s * 3));
            assert_non_null(rgb);
            assert_non_null(small);
            for (int64_t i = 0; i < h * w; i++)
                for (int k = 0; k < 3; k++)
                    rgb[3 * i + k] = c == 1 ? img[i]
                                   : c == 4 ? gtl__image_over_white(img[4 * i + k],
                                                                    img[4 * i + 3])
                                            : img[3 * i + k];
            int64_t oh, ow;
            gtl__image_resized_size(h, w, s, &oh, &ow);
            assert_int_equal(gtl__image_resize_crop_u8(rgb, h, w, 3, oh, ow, py_crop(oh, s),
                                                       py_crop(ow, s), s, s, small),
                             GTL_STATUS_OK);
            crc = (uint32_t)crc32(0, small, (uInt)(s * s * 3));
            free(rgb);
            free(small);
        }
        if (st != GTL_STATUS_OK)
            fail_msg("%s: %s", ref->name, gtl_last_error());
        double worst = 0.0, worst_stat = 0.0;
        for (int i = 0; i < ref->n_samples; i++) {
            double d = fabs((double)out[ref->idx[i]] - (double)ref->val[i]);
            worst = d > worst ? d : worst;
        }
        for (int ch = 0; ch < 3; ch++) {
            double sum = 0, sq = 0;
            for (int64_t i = 0; i < s * s; i++) {
                double v = out[ch * s * s + i];
                sum += v;
                sq += v * v;
            }
            /* The sums are over S*S values: compare them per value. */
            double d1 = fabs(sum - ref->sum[ch]) / (double)(s * s);
            double d2 = fabs(sq - ref->sumsq[ch]) / (double)(s * s);
            worst_stat = fmax(worst_stat, fmax(d1, d2));
        }
        printf("  %-20s %3lldx%-3lld c=%lld %s: max |diff| %.3g over %d samples, "
               "stats %.3g, crc %s\n",
               ref->name, (long long)h, (long long)w, (long long)c,
               ref->is_float ? "f32" : "u8 ", worst, ref->n_samples, worst_stat,
               ref->is_float ? "n/a" : crc == ref->crc ? "match" : "DIFFERS");
        if (!ref->is_float)
            assert_int_equal(crc, ref->crc);
        assert_true(worst <= 1e-5);
        assert_true(worst_stat <= 1e-5);
        worst_all = fmax(worst_all, worst);
        free(img);
        free(out);
    }
    printf("  max |diff| over all cases: %.3g\n", worst_all);
    mem_expect(m0, "preprocess reference");
}

/* Decode from a file, then preprocess: must equal the reference exactly. */
static void test_preprocess_decoded(void **state)
{
    mem_mark m0 = mem_now();
    const prep_ref *ref = NULL;
    for (int r = 0; r < N_PREP_REFS; r++)
        if (strcmp(PREP_REFS[r].name, "down_479x640") == 0)
            ref = &PREP_REFS[r];
    assert_non_null(ref);
    uint8_t *rgb = malloc((size_t)(ref->h * ref->w * 3));
    assert_non_null(rgb);
    gen_image(ref->h, ref->w, 3, ref->seed, rgb);
    const char *p = tmp_path("prep.png");
    write_png(p, ref->w, ref->h, PNG_COLOR_TYPE_RGB, 8, rgb, (size_t)ref->w * 3, NULL, 0, NULL,
              0, NULL, false);
    gtl__image img;
    assert_int_equal(gtl__image_decode_file(p, &img), GTL_STATUS_OK);
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    assert_non_null(out);
    assert_int_equal(gtl__image_preprocess(&img, NULL, out, 3 * 224 * 224), GTL_STATUS_OK);
    for (int i = 0; i < ref->n_samples; i++)
        assert_float_equal(out[ref->idx[i]], ref->val[i], 1e-6);
    gtl__image_fini(&img);
    free(out);
    free(rgb);
    mem_expect(m0, "preprocess decoded");
}

/* Float input u8 / 255 against the uint8 path: only PIL's 8-bit rounding
 * between and after the passes differs (about one gray level). */
static void test_preprocess_float_vs_u8(void **state)
{
    mem_mark m0 = mem_now();
    const int64_t shapes[][3] = {{61, 45, 3}, {300, 257, 1}, {90, 130, 4}, {224, 224, 3}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        int64_t h = shapes[k][0], w = shapes[k][1], c = shapes[k][2], n = 3 * 224 * 224;
        uint8_t *u = malloc((size_t)(h * w * c));
        float *f = malloc(sizeof(float) * (size_t)(h * w * c));
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
        assert_true(u && f && a && b);
        gen_image(h, w, c, 100 + k, u);
        for (int64_t i = 0; i < h * w * c; i++)
            f[i] = u[i] / 255.0f;
        assert_int_equal(gtl__image_preprocess_u8(u, h, w, c, NULL, a, n), GTL_STATUS_OK);
        assert_int_equal(gtl__image_preprocess_f32(f, h, w, c, NULL, b, n), GTL_STATUS_OK);
        double worst = 0, mean = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)a[i] - (double)b[i]);
            worst = fmax(worst, d);
            mean += d / (double)n;
        }
        printf("  %lldx%lld c=%lld: u8 vs f32 max |diff| %.4f, mean %.5f\n", (long long)h,
               (long long)w, (long long)c, worst, mean);
        /* Identity (224 x 224): no resampling, so no rounding difference. */
        if (h == 224 && w == 224)
            assert_true(worst <= 1e-6);
        /* Elsewhere float sums are not clamped: overshoot at edges can pass
         * 0 or 1 by a few levels, rounding adds one level (1/255/std ~ 0.015). */
        assert_true(mean <= 0.01);
        free(u);
        free(f);
        free(a);
        free(b);
    }
    mem_expect(m0, "float vs u8");
}

static void test_preprocess_bad_args(void **state)
{
    mem_mark m0 = mem_now();
    uint8_t u[4 * 4 * 3] = {0};
    float f[4 * 4 * 3] = {0};
    float out[3 * 8 * 8];
    gtl__image_prep_opts o;
    gtl__image_prep_opts_default(&o);
    assert_int_equal(o.size, 224);
    assert_float_equal(o.mean[0], 0.48145466f, 0);
    assert_float_equal(o.std[2], 0.27577711f, 0);
    o.size = 8;
    const int64_t n = 3 * 8 * 8;
    assert_int_equal(gtl__image_preprocess_u8(u, 4, 4, 3, &o, out, n), GTL_STATUS_OK);
    assert_int_equal(gtl__image_preprocess_f32(f, 4, 4, 3, &o, out, n), GTL_STATUS_OK);

    assert_int_equal(gtl__image_preprocess_u8(NULL, 4, 4, 3, &o, out, n), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "gtl__image_preprocess_u8"));
    assert_int_equal(gtl__image_preprocess_u8(u, 4, 4, 3, &o, NULL, n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_preprocess_u8(u, 0, 4, 3, &o, out, n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_preprocess_u8(u, 4, -1, 3, &o, out, n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_preprocess_u8(u, 16385, 4, 3, &o, out, n),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_preprocess_u8(u, 4, 4, 2, &o, out, n), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "channels"));
    assert_int_equal(gtl__image_preprocess_f32(f, 4, 4, 5, &o, out, n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_preprocess_u8(u, 4, 4, 3, &o, out, n - 1),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "dst"));
    gtl__image_prep_opts bad = o;
    bad.size = 0;
    assert_int_equal(gtl__image_preprocess_u8(u, 4, 4, 3, &bad, out, n), GTL_STATUS_INVALID_ARG);
    bad = o;
    bad.std[1] = 0.0f;
    assert_int_equal(gtl__image_preprocess_u8(u, 4, 4, 3, &bad, out, n), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "std"));
    bad = o;
    bad.mean[2] = NAN;
    assert_int_equal(gtl__image_preprocess_f32(f, 4, 4, 3, &bad, out, n),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_preprocess(NULL, &o, out, n), GTL_STATUS_INVALID_ARG);
    gtl__image empty = {0};
    assert_int_equal(gtl__image_preprocess(&empty, &o, out, n), GTL_STATUS_INVALID_ARG);

    uint8_t small[2 * 2];
    assert_int_equal(gtl__image_resize_crop_u8(u, 4, 4, 1, 8, 8, 7, 0, 2, 2, small),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_resize_crop_u8(u, 4, 4, 1, 8, 8, 0, 0, 2, 2, NULL),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__image_resize_crop_u8(u, 4, 4, 1, 8, 8, 6, 6, 2, 2, small),
                     GTL_STATUS_OK);
    mem_expect(m0, "preprocess bad args");
}

static void test_resized_size(void **state)
{
    int64_t oh, ow;
    gtl__image_resized_size(480, 640, 224, &oh, &ow);
    assert_int_equal(oh, 224);
    assert_int_equal(ow, 298); /* int(224 * 640 / 480) = int(298.67) */
    gtl__image_resized_size(640, 480, 224, &oh, &ow);
    assert_int_equal(oh, 298);
    assert_int_equal(ow, 224);
    gtl__image_resized_size(100, 100, 224, &oh, &ow);
    assert_int_equal(oh, 224);
    assert_int_equal(ow, 224);
    gtl__image_resized_size(1, 16384, 224, &oh, &ow);
    assert_int_equal(oh, 224);
    assert_int_equal(ow, 224 * 16384);
    /* An extreme aspect ratio still preprocesses (only the crop is computed). */
    uint8_t *u = calloc(16384, 1);
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    assert_true(u && out);
    assert_int_equal(gtl__image_preprocess_u8(u, 1, 16384, 1, NULL, out, 3 * 224 * 224),
                     GTL_STATUS_OK);
    assert_float_equal(out[0], -0.48145466f / 0.26862954f, 1e-6);
    free(u);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_format),
        cmocka_unit_test(test_missing_path),
        cmocka_unit_test(test_png_variants),
        cmocka_unit_test(test_alpha_on_white),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_webp),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_resized_size),
        cmocka_unit_test(test_preprocess_reference),
        cmocka_unit_test(test_preprocess_decoded),
        cmocka_unit_test(test_preprocess_float_vs_u8),
        cmocka_unit_test(test_preprocess_bad_args),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
