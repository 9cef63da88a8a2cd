/* Image decoding: format detection from magic bytes, and PNG (libpng), JPEG
 * (libjpeg-turbo) and WebP (libwebp) decoders producing 8-bit RGB (H, W, 3).
 *
 * libpng and libjpeg report errors by longjmp. Each decoder keeps all of its
 * state in a struct owned by the caller of the function that calls setjmp
 * (png_run, jpeg_run); that function only reads its pointer argument after
 * setjmp, so no local of the setjmp caller is changed between setjmp and
 * longjmp, and the caller frees everything from the struct on every path.
 * Neither library is ever allowed to print or exit: libpng gets our error and
 * warning functions, libjpeg our error_exit, emit_message and output_message. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h> /* before jerror.h: its message list depends on jconfig.h */
#include <jerror.h>
#include <png.h>
#include <webp/decode.h>

#include "io/image.h"

#define MEM_NAME "<memory>"
#define WHY_CAP 200

static const uint8_t PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

gtl__image_format gtl__image_detect_format(const void *buf, size_t n)
{
    const uint8_t *b = buf;
    if (b == NULL)
        return GTL__IMAGE_FORMAT_UNKNOWN;
    if (n >= 8 && memcmp(b, PNG_MAGIC, 8) == 0)
        return GTL__IMAGE_FORMAT_PNG;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return GTL__IMAGE_FORMAT_JPEG;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return GTL__IMAGE_FORMAT_WEBP;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return GTL__IMAGE_FORMAT_GIF;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M')
        return GTL__IMAGE_FORMAT_BMP;
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return GTL__IMAGE_FORMAT_TIFF;
    return GTL__IMAGE_FORMAT_UNKNOWN;
}

const char *gtl__image_format_name(gtl__image_format fmt)
{
    switch (fmt) {
    case GTL__IMAGE_FORMAT_PNG:
        return "PNG";
    case GTL__IMAGE_FORMAT_JPEG:
        return "JPEG";
    case GTL__IMAGE_FORMAT_WEBP:
        return "WebP";
    case GTL__IMAGE_FORMAT_GIF:
        return "GIF";
    case GTL__IMAGE_FORMAT_BMP:
        return "BMP";
    case GTL__IMAGE_FORMAT_TIFF:
        return "TIFF";
    case GTL__IMAGE_FORMAT_UNKNOWN:
        break;
    }
    return "unknown";
}

void gtl__image_fini(gtl__image *img)
{
    if (img == NULL)
        return;
    gtl__free(img->data);
    memset(img, 0, sizeof(*img));
}

/* Zero or oversized dimensions, checked before any pixel buffer exists. */
static gtl_status check_dims(const char *name, const char *fmt, int64_t w, int64_t h)
{
    if (w <= 0 || h <= 0)
        return gtl__error(GTL_STATUS_FORMAT, "%s: %s image has zero size (%lld x %lld)", name,
                          fmt, (long long)w, (long long)h);
    if (w > GTL__IMAGE_MAX_SIDE || h > GTL__IMAGE_MAX_SIDE || w * h > GTL__IMAGE_MAX_PIXELS)
        return gtl__error(GTL_STATUS_UNSUPPORTED,
                          "%s: %s image is %lld x %lld pixels; the limit is %d per side and "
                          "%lld in total",
                          name, fmt, (long long)w, (long long)h, GTL__IMAGE_MAX_SIDE,
                          (long long)GTL__IMAGE_MAX_PIXELS);
    return GTL_STATUS_OK;
}

/* RGBA (n pixels) to RGB on white, in place, then shrinks the block. */
static uint8_t *rgba_to_rgb_inplace(uint8_t *px, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = px[4 * i], g = px[4 * i + 1], b = px[4 * i + 2], a = px[4 * i + 3];
        px[3 * i] = gtl__image_over_white(r, a);
        px[3 * i + 1] = gtl__image_over_white(g, a);
        px[3 * i + 2] = gtl__image_over_white(b, a);
    }
    uint8_t *shrunk = gtl__realloc(px, (size_t)n * 3);
    return shrunk != NULL ? shrunk : px; /* a failed shrink keeps the larger block */
}

/* ---- PNG ---------------------------------------------------------------- */

struct png_state {
    const char *name;
    const uint8_t *buf;
    size_t n;
    size_t pos;
    png_structp png;
    png_infop info;
    uint8_t *px;      /* (H, W, ch) decoded rows, one block */
    png_bytep *rows;  /* H pointers into px */
    int ch;           /* 3 or 4 after the transforms */
    int64_t w, h;
    bool oom;         /* an allocation by libpng failed */
    char why[WHY_CAP];
    char warn[WHY_CAP]; /* the last warning: often the real reason for an error */
};

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_state *s = png_get_error_ptr(png);
    snprintf(s->why, sizeof(s->why), "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    struct png_state *s = png_get_error_ptr(png);
    snprintf(s->warn, sizeof(s->warn), "%s", msg);
    gtl__log(GTL_LOG_DEBUG, "%s: libpng warning: %s", s->name, msg);
}

static png_voidp png_on_malloc(png_structp png, png_alloc_size_t size)
{
    void *p = gtl__malloc(size);
    if (p == NULL) {
        struct png_state *s = png_get_mem_ptr(png);
        s->oom = true;
    }
    return p;
}

static void png_on_free(png_structp png, png_voidp ptr)
{
    gtl__free(ptr);
}

static void png_on_read(png_structp png, png_bytep dst, size_t len)
{
    struct png_state *s = png_get_io_ptr(png);
    if (len > s->n - s->pos)
        png_error(png, "file is truncated");
    memcpy(dst, s->buf + s->pos, len);
    s->pos += len;
}

/* Everything that may longjmp. Returns with s->px holding the rows. */
static gtl_status png_run(struct png_state *s)
{
    if (setjmp(png_jmpbuf(s->png))) {
        if (s->oom)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory decoding PNG (%s)",
                              s->name, s->why);
        return gtl__error(GTL_STATUS_FORMAT, "%s: corrupt or truncated PNG: %s%s%s%s", s->name,
                          s->why, s->warn[0] != '\0' ? " (after: " : "", s->warn,
                          s->warn[0] != '\0' ? ")" : "");
    }
    png_set_read_fn(s->png, s, png_on_read);
    /* Our own limits apply (check_dims); lift libpng's default 1e6 limit so
     * large images get our message, not "exceeds user limit". */
    png_set_user_limits(s->png, 0x7fffffff, 0x7fffffff);
    png_read_info(s->png, s->info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, color = 0;
    png_get_IHDR(s->png, s->info, &w, &h, &depth, &color, NULL, NULL, NULL);
    s->w = w;
    s->h = h;
    gtl_status st = check_dims(s->name, "PNG", s->w, s->h);
    if (st != GTL_STATUS_OK)
        return st;

    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(s->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(s->png);
    if (png_get_valid(s->png, s->info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(s->png);
    if (depth == 16)
        png_set_scale_16(s->png); /* rounds v * 255 / 65535, unlike strip_16 */
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);

    s->ch = png_get_channels(s->png, s->info);
    size_t rowbytes = png_get_rowbytes(s->png, s->info);
    if ((s->ch != 3 && s->ch != 4) || rowbytes != (size_t)s->w * (size_t)s->ch)
        return gtl__error(GTL_STATUS_INTERNAL, "%s: PNG transforms gave %d channels, %zu bytes "
                          "per row", s->name, s->ch, rowbytes);
    s->px = gtl__malloc(rowbytes * (size_t)s->h);
    s->rows = gtl__malloc(sizeof(*s->rows) * (size_t)s->h);
    if (s->px == NULL || s->rows == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory for a %lld x %lld PNG",
                          s->name, (long long)s->w, (long long)s->h);
    for (int64_t y = 0; y < s->h; y++)
        s->rows[y] = s->px + (size_t)y * rowbytes;
    png_read_image(s->png, s->rows);
    png_read_end(s->png, NULL);
    return GTL_STATUS_OK;
}

static gtl_status decode_png(const uint8_t *buf, size_t n, const char *name, gtl__image *out)
{
    struct png_state s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.buf = buf;
    s.n = n;
    s.png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &s, png_on_error, png_on_warning, &s,
                                     png_on_malloc, png_on_free);
    if (s.png == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: cannot create a PNG decoder", name);
    s.info = png_create_info_struct(s.png);
    gtl_status st = GTL_STATUS_OUT_OF_MEMORY;
    if (s.info == NULL) {
        gtl__error(st, "%s: cannot create a PNG decoder", name);
        goto out_destroy;
    }
    st = png_run(&s);
    if (st != GTL_STATUS_OK)
        goto out_destroy;
    if (s.ch == 4)
        s.px = rgba_to_rgb_inplace(s.px, s.w * s.h);
    out->h = s.h;
    out->w = s.w;
    out->data = s.px;
    s.px = NULL;
out_destroy:
    png_destroy_read_struct(&s.png, s.info != NULL ? &s.info : NULL, NULL);
    gtl__free(s.rows);
    gtl__free(s.px);
    return st;
}

/* ---- JPEG --------------------------------------------------------------- */

/* Scans beyond this mean a hostile progressive file (decoding time explodes). */
#define JPEG_MAX_SCANS 1000

struct jpeg_state {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    const char *name;
    uint8_t *px;   /* (H, W, 3) output */
    uint8_t *cmyk; /* (W, 4) one CMYK row, for CMYK/YCCK files */
    bool unsupported; /* libjpeg refused a valid feature (12-bit, arithmetic) */
    char why[JMSG_LENGTH_MAX];
};

static struct jpeg_state *jpeg_state_of(j_common_ptr cinfo)
{
    return cinfo->client_data;
}

static void jpeg_on_error_exit(j_common_ptr cinfo)
{
    struct jpeg_state *s = jpeg_state_of(cinfo);
    int code = cinfo->err->msg_code;
    s->unsupported = code == JERR_BAD_PRECISION || code == JERR_NOT_COMPILED ||
                     code == JERR_ARITH_NOTIMPL;
    cinfo->err->format_message(cinfo, s->why);
    longjmp(s->jb, 1);
}

static void jpeg_on_output_message(j_common_ptr cinfo)
{
    /* Never print: libgtl reports through gtl_last_error() and gtl__log. */
}

/* Warnings (level -1) that mean the pixel data was lost or replaced are
 * errors: libjpeg would otherwise pad a truncated file with gray and succeed.
 * Other warnings (unknown JFIF revision, extraneous bytes after the image
 * data) leave a complete image and are only logged. Trace messages
 * (level >= 0) are dropped. */
static void jpeg_on_emit_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
#if JPEG_LIB_VERSION >= 70 || defined(C_ARITH_CODING_SUPPORTED) || \
    defined(D_ARITH_CODING_SUPPORTED)
    case JWRN_ARITH_BAD_CODE: /* jerror.h declares it only in these builds */
#endif
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
        jpeg_on_error_exit(cinfo);
        break;
    default: {
        char msg[JMSG_LENGTH_MAX];
        cinfo->err->format_message(cinfo, msg);
        gtl__log(GTL_LOG_DEBUG, "%s: libjpeg warning: %s", jpeg_state_of(cinfo)->name, msg);
        cinfo->err->num_warnings++;
        break;
    }
    }
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (cinfo->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        struct jpeg_state *s = jpeg_state_of(cinfo);
        snprintf(s->why, sizeof(s->why), "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(s->jb, 1);
    }
}

/* CMYK row to RGB. Adobe files store inverted inks (255 = no ink); then
 * r = c' * k' / 255, else r = (255 - c) * (255 - k) / 255 (what PIL does). */
static void cmyk_row_to_rgb(const uint8_t *src, int64_t w, bool inverted, uint8_t *dst)
{
    for (int64_t x = 0; x < w; x++) {
        uint32_t v[4];
        for (int k = 0; k < 4; k++)
            v[k] = inverted ? src[4 * x + k] : 255u - src[4 * x + k];
        for (int k = 0; k < 3; k++)
            dst[3 * x + k] = (uint8_t)((v[k] * v[3] + 127u) / 255u);
    }
}

static gtl_status jpeg_run(struct jpeg_state *s, const uint8_t *buf, size_t n)
{
    if (setjmp(s->jb)) {
        if (s->unsupported)
            return gtl__error(GTL_STATUS_UNSUPPORTED, "%s: JPEG not supported by libjpeg: %s",
                              s->name, s->why);
        return gtl__error(GTL_STATUS_FORMAT, "%s: corrupt or truncated JPEG: %s", s->name,
                          s->why);
    }
    jpeg_create_decompress(&s->cinfo);
    s->cinfo.progress = &s->progress;
    jpeg_mem_src(&s->cinfo, buf, (unsigned long)n);
    jpeg_read_header(&s->cinfo, TRUE);

    gtl_status st = check_dims(s->name, "JPEG", s->cinfo.image_width, s->cinfo.image_height);
    if (st != GTL_STATUS_OK)
        return st;
    bool cmyk = false;
    switch (s->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        s->cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        s->cinfo.out_color_space = JCS_CMYK;
        cmyk = true;
        break;
    default:
        return gtl__error(GTL_STATUS_UNSUPPORTED,
                          "%s: JPEG colour space %d with %d components is not supported",
                          s->name, (int)s->cinfo.jpeg_color_space, s->cinfo.num_components);
    }
    jpeg_start_decompress(&s->cinfo);
    int64_t w = s->cinfo.output_width, h = s->cinfo.output_height;
    if (s->cinfo.output_components != (cmyk ? 4 : 3) || w != s->cinfo.image_width ||
        h != s->cinfo.image_height)
        return gtl__error(GTL_STATUS_INTERNAL, "%s: libjpeg gave %d components, %lld x %lld",
                          s->name, s->cinfo.output_components, (long long)w, (long long)h);
    s->px = gtl__malloc((size_t)(w * h * 3));
    if (cmyk)
        s->cmyk = gtl__malloc((size_t)(w * 4));
    if (s->px == NULL || (cmyk && s->cmyk == NULL))
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory for a %lld x %lld JPEG",
                          s->name, (long long)w, (long long)h);
    while (s->cinfo.output_scanline < s->cinfo.output_height) {
        int64_t y = s->cinfo.output_scanline;
        JSAMPROW row = cmyk ? s->cmyk : s->px + y * w * 3;
        if (jpeg_read_scanlines(&s->cinfo, &row, 1) != 1)
            return gtl__error(GTL_STATUS_FORMAT, "%s: JPEG decoder stopped at row %lld",
                              s->name, (long long)y);
        if (cmyk)
            cmyk_row_to_rgb(s->cmyk, w, s->cinfo.saw_Adobe_marker, s->px + y * w * 3);
    }
    jpeg_finish_decompress(&s->cinfo);
    return GTL_STATUS_OK;
}

static gtl_status decode_jpeg(const uint8_t *buf, size_t n, const char *name, gtl__image *out)
{
    struct jpeg_state *s = gtl__calloc(1, sizeof(*s));
    if (s == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: cannot create a JPEG decoder", name);
    s->name = name;
    s->cinfo.err = jpeg_std_error(&s->err);
    s->err.error_exit = jpeg_on_error_exit;
    s->err.emit_message = jpeg_on_emit_message;
    s->err.output_message = jpeg_on_output_message;
    s->cinfo.client_data = s;
    s->progress.progress_monitor = jpeg_on_progress;

    gtl_status st = jpeg_run(s, buf, n);
    if (st == GTL_STATUS_OK) {
        out->h = s->cinfo.output_height;
        out->w = s->cinfo.output_width;
        out->data = s->px;
        s->px = NULL;
    }
    /* Safe in every state: a zeroed cinfo (create never ran) has mem == NULL. */
    jpeg_destroy_decompress(&s->cinfo);
    gtl__free(s->cmyk);
    gtl__free(s->px);
    gtl__free(s);
    return st;
}

/* ---- WebP --------------------------------------------------------------- */

static const char *webp_status_text(VP8StatusCode vs)
{
    switch (vs) {
    case VP8_STATUS_OK:
        return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
        return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
        return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
        return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
        return "suspended";
    case VP8_STATUS_USER_ABORT:
        return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return "not enough data (truncated)";
    }
    return "unknown error";
}

static gtl_status webp_failure(const char *name, VP8StatusCode vs)
{
    if (vs == VP8_STATUS_OUT_OF_MEMORY)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory decoding WebP", name);
    if (vs == VP8_STATUS_UNSUPPORTED_FEATURE)
        return gtl__error(GTL_STATUS_UNSUPPORTED, "%s: WebP uses an unsupported feature", name);
    return gtl__error(GTL_STATUS_FORMAT, "%s: corrupt or truncated WebP: %s", name,
                      webp_status_text(vs));
}

static gtl_status decode_webp(const uint8_t *buf, size_t n, const char *name, gtl__image *out)
{
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg))
        return gtl__error(GTL_STATUS_INTERNAL, "%s: libwebp version mismatch", name);
    VP8StatusCode vs = WebPGetFeatures(buf, n, &cfg.input);
    if (vs != VP8_STATUS_OK)
        return webp_failure(name, vs);
    if (cfg.input.has_animation)
        return gtl__error(GTL_STATUS_UNSUPPORTED, "%s: animated WebP is not supported", name);
    int64_t w = cfg.input.width, h = cfg.input.height;
    gtl_status st = check_dims(name, "WebP", w, h);
    if (st != GTL_STATUS_OK)
        return st;

    int ch = cfg.input.has_alpha ? 4 : 3;
    size_t size = (size_t)(w * h * ch);
    uint8_t *px = gtl__malloc(size);
    if (px == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory for a %lld x %lld WebP",
                          name, (long long)w, (long long)h);
    cfg.output.colorspace = ch == 4 ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = px;
    cfg.output.u.RGBA.stride = (int)(w * ch);
    cfg.output.u.RGBA.size = size;
    vs = WebPDecode(buf, n, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* external memory: releases nothing of ours */
    if (vs != VP8_STATUS_OK) {
        gtl__free(px);
        return webp_failure(name, vs);
    }
    if (ch == 4)
        px = rgba_to_rgb_inplace(px, w * h);
    out->h = h;
    out->w = w;
    out->data = px;
    return GTL_STATUS_OK;
}

/* ---- entry points ------------------------------------------------------- */

gtl_status gtl__image_decode_mem(const void *buf, size_t n, const char *name, gtl__image *out)
{
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__image_decode_mem: out is NULL");
    memset(out, 0, sizeof(*out));
    if (name == NULL)
        name = MEM_NAME;
    if (buf == NULL && n != 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__image_decode_mem: %s: buf is NULL", name);
    if (n == 0)
        return gtl__error(GTL_STATUS_FORMAT, "%s: empty file, not an image", name);

    gtl__image_format fmt = gtl__image_detect_format(buf, n);
    switch (fmt) {
    case GTL__IMAGE_FORMAT_PNG:
        return decode_png(buf, n, name, out);
    case GTL__IMAGE_FORMAT_JPEG:
        return decode_jpeg(buf, n, name, out);
    case GTL__IMAGE_FORMAT_WEBP:
        return decode_webp(buf, n, name, out);
    case GTL__IMAGE_FORMAT_GIF:
    case GTL__IMAGE_FORMAT_BMP:
    case GTL__IMAGE_FORMAT_TIFF:
        return gtl__error(GTL_STATUS_UNSUPPORTED,
                          "%s: %s images are not supported (PNG, JPEG and WebP are)", name,
                          gtl__image_format_name(fmt));
    case GTL__IMAGE_FORMAT_UNKNOWN:
        break;
    }
    return gtl__error(GTL_STATUS_FORMAT, "%s: not a PNG, JPEG or WebP file (unknown magic bytes)",
                      name);
}

static const char *errno_text(int err, char *buf, size_t n)
{
    if (strerror_r(err, buf, n) != 0)
        snprintf(buf, n, "error %d", err);
    return buf;
}

gtl_status gtl__image_read_file(const char *path, uint8_t **out_buf, size_t *out_n)
{
    char ebuf[128];
    *out_buf = NULL;
    *out_n = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gtl__error(GTL_STATUS_IO, "%s: cannot open: %s", path,
                          errno_text(errno, ebuf, sizeof(ebuf)));
    gtl_status st = GTL_STATUS_OK;
    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= (size_t)GTL__IMAGE_MAX_FILE_BYTES) {
                st = gtl__error(GTL_STATUS_UNSUPPORTED, "%s: file is larger than %lld bytes",
                                path, (long long)GTL__IMAGE_MAX_FILE_BYTES);
                goto out_free;
            }
            size_t ncap = cap == 0 ? (size_t)1 << 16 : cap * 2;
            uint8_t *nbuf = gtl__realloc(buf, ncap);
            if (nbuf == NULL) {
                st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory reading the file",
                                path);
                goto out_free;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                st = gtl__error(GTL_STATUS_IO, "%s: read error: %s", path,
                                errno_text(errno, ebuf, sizeof(ebuf)));
                goto out_free;
            }
            break;
        }
    }
    fclose(f);
    *out_buf = buf;
    *out_n = n;
    return GTL_STATUS_OK;
out_free:
    gtl__free(buf);
    fclose(f);
    return st;
}

gtl_status gtl__image_decode_file(const char *path, gtl__image *out)
{
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__image_decode_file: out is NULL");
    memset(out, 0, sizeof(*out));
    if (path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__image_decode_file: path is NULL");
    uint8_t *buf = NULL;
    size_t n = 0;
    gtl_status st = gtl__image_read_file(path, &buf, &n);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__image_decode_mem(buf, n, path, out);
    gtl__free(buf);
    return st;
}
