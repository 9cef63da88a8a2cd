/* extract_features: the features of every image in a folder (recursively),
 * with a CLIP ViT or another libgtl backbone, through the public API only.
 *
 *   extract_features [options] FOLDER
 *     --weights PATH   CLIP safetensors (Hugging Face CLIPVisionModelWithProjection,
 *                      or bindings/python/tools/convert_clip.py output) or a
 *                      libgtl backbone checkpoint
 *     --preset NAME    fresh weights instead: vit-b16, vit-b32, vit-tiny, resnet-small
 *     --out PREFIX     writes PREFIX.npy (float32, rows x F) and PREFIX.csv
 *                      ("row,path"); default "features"
 *     --cache DIR      the feature cache (gtl_backbone_set_cache_dir)
 *     --batch N        images per inference batch (default 8)
 *     --parts N        ViT feature parts: 1 CLS, 2 projection, 3 both (default 3)
 *     --strict         exit with status 1 if any image could not be used
 *   extract_features --make-demo DIR
 *     writes a small folder to try it on: PNGs in DIR and DIR/sub, one
 *     corrupt PNG and a text file (ignored: not an image extension)
 *
 * Files are taken by extension (.png, .jpg, .jpeg, .webp, any case) and
 * sorted by path. A file that cannot be decoded is reported by name and
 * skipped: it gets no row. The exit status is 0 when the output was written
 * (1 with --strict and skipped files, 2 for usage or library errors). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <gtl/gtl.h>

#include "ex_util.h"

#define GTL_CHECK(call)                                                                \
    do {                                                                               \
        gtl_status st_ = (call);                                                       \
        if (st_ != GTL_STATUS_OK) {                                                    \
            fprintf(stderr, "extract_features: %s: %s (%s)\n", #call, gtl_last_error(), \
                    gtl_strerror(st_));                                                \
            exit(2);                                                                   \
        }                                                                              \
    } while (0)

#define CHUNK 256 /* files per gtl_backbone_embed_files call */

typedef struct path_list {
    char **v;
    size_t n, cap;
} path_list;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "extract_features: out of memory\n");
        exit(2);
    }
    return p;
}

static void push(path_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, l->cap * sizeof *v);
        if (v == NULL) {
            fprintf(stderr, "extract_features: out of memory\n");
            exit(2);
        }
        l->v = v;
    }
    l->v[l->n] = xmalloc(strlen(s) + 1);
    strcpy(l->v[l->n++], s);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".webp"};
    for (size_t i = 0; dot != NULL && i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot, ext[i]) == 0)
            return 1;
    return 0;
}

/* Appends the image files under dir, recursively (symlinks are followed for
 * files, not for directories). */
static void walk(const char *dir, path_list *out)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "extract_features: cannot open folder %s: %s\n", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            walk(p, out);
        else if (is_image_name(e->d_name))
            push(out, p);
        free(p);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A .npy (format 1.0) header for a float32 (rows, cols) C-order array,
 * always 128 bytes, so it can be rewritten in place with the final count. */
static void write_npy_header(FILE *f, int64_t rows, int64_t cols)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, "
                     "'shape': (%lld, %lld), }", (long long)rows, (long long)cols);
    int pad = 128 - (10 + n + 1);
    unsigned short hl = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char le[2] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    fwrite(le, 1, 2, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
}

/* ---- the demo folder ------------------------------------------------------ */

/* An RGB PNG of a coloured disc on a gradient (ex_png_write, examples/common). */
static void write_demo_png(const char *path, int w, int h, int seed)
{
    unsigned char *px = xmalloc(3 * (size_t)w * (size_t)h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dx = x - w / 2, dy = y - h / 2, r = (w < h ? w : h) / 3;
            int in = dx * dx + dy * dy < r * r;
            unsigned char *p = px + 3 * ((size_t)y * (size_t)w + (size_t)x);
            p[0] = (unsigned char)(in ? 60 * seed : x * 255 / w);
            p[1] = (unsigned char)(in ? 255 - 50 * seed : y * 255 / h);
            p[2] = (unsigned char)(in ? 128 : (x + y) * 127 / (w + h));
        }
    if (ex_png_write(path, w, h, 3, px) != 0) {
        fprintf(stderr, "extract_features: cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    free(px);
}

static int make_demo(const char *dir)
{
    char p[4096];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        goto fail;
    snprintf(p, sizeof p, "%s/sub", dir);
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        goto fail;
    snprintf(p, sizeof p, "%s/a.png", dir);
    write_demo_png(p, 96, 80, 1);
    snprintf(p, sizeof p, "%s/b.PNG", dir);
    write_demo_png(p, 50, 120, 2);
    snprintf(p, sizeof p, "%s/sub/c.png", dir);
    write_demo_png(p, 64, 64, 3);
    snprintf(p, sizeof p, "%s/sub/d.png", dir);
    write_demo_png(p, 200, 40, 4);
    snprintf(p, sizeof p, "%s/sub/corrupt.png", dir);
    FILE *f = fopen(p, "wb");
    if (f == NULL)
        goto fail;
    fputs("\x89PNG\r\n\x1a\nthis file is not really a PNG", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    f = fopen(p, "wb");
    if (f == NULL)
        goto fail;
    fputs("not an image: ignored by extension\n", f);
    fclose(f);
    printf("extract_features: demo folder %s (4 images, 1 corrupt PNG, 1 text file)\n", dir);
    return 0;
fail:
    fprintf(stderr, "extract_features: cannot make %s: %s\n", dir, strerror(errno));
    return 2;
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: extract_features [--weights PATH | --preset NAME] [--out PREFIX] "
            "[--cache DIR] [--batch N] [--parts N] [--strict] FOLDER\n"
            "       extract_features --make-demo DIR\n"
            "presets: vit-b16, vit-b32, vit-tiny, resnet-small\n");
}

int main(int argc, char **argv)
{
    const char *weights = NULL, *preset = NULL, *out = "features", *cache = NULL, *folder = NULL;
    long batch = 8, parts = 0;
    int strict = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--make-demo") == 0 && val != NULL)
            return make_demo(val);
        if (strcmp(a, "--strict") == 0) {
            strict = 1;
            continue;
        }
        if (a[0] == '-' && val == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--weights") == 0)
            weights = argv[++i];
        else if (strcmp(a, "--preset") == 0)
            preset = argv[++i];
        else if (strcmp(a, "--out") == 0)
            out = argv[++i];
        else if (strcmp(a, "--cache") == 0)
            cache = argv[++i];
        else if (strcmp(a, "--batch") == 0)
            batch = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--parts") == 0)
            parts = strtol(argv[++i], NULL, 10);
        else if (a[0] != '-' && folder == NULL)
            folder = a;
        else {
            usage();
            return 2;
        }
    }
    if (folder == NULL || (weights == NULL) == (preset == NULL)) {
        usage();
        return 2;
    }

    gtl_backbone *bb = NULL;
    if (weights != NULL) {
        GTL_CHECK(gtl_backbone_load(weights, &bb));
    } else {
        static const struct {
            const char *name;
            gtl_backbone_preset p;
        } presets[] = {{"vit-b16", GTL_BACKBONE_CLIP_VIT_B16},
                       {"vit-b32", GTL_BACKBONE_CLIP_VIT_B32},
                       {"vit-tiny", GTL_BACKBONE_VIT_TINY},
                       {"resnet-small", GTL_BACKBONE_RESNET_SMALL}};
        size_t k = 0;
        while (k < 4 && strcmp(presets[k].name, preset) != 0)
            k++;
        if (k == 4) {
            usage();
            return 2;
        }
        GTL_CHECK(gtl_backbone_create(presets[k].p, &bb));
        fprintf(stderr, "extract_features: preset %s has random weights (use --weights for "
                "trained ones)\n", preset);
    }
    GTL_CHECK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, batch));
    if (parts != 0)
        GTL_CHECK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, parts));
    if (cache != NULL)
        GTL_CHECK(gtl_backbone_set_cache_dir(bb, cache));
    int64_t f = 0, s = 0;
    GTL_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f));
    GTL_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &s));

    path_list files = {0};
    walk(folder, &files);
    qsort(files.v, files.n, sizeof *files.v, cmp_str);
    printf("extract_features: %zu image files under %s; %lld px, F = %lld\n", files.n, folder,
           (long long)s, (long long)f);

    size_t plen = strlen(out) + 8;
    char *npy_path = xmalloc(plen), *csv_path = xmalloc(plen);
    snprintf(npy_path, plen, "%s.npy", out);
    snprintf(csv_path, plen, "%s.csv", out);
    FILE *npy = fopen(npy_path, "wb"), *csv = fopen(csv_path, "w");
    if (npy == NULL || csv == NULL) {
        fprintf(stderr, "extract_features: cannot write %s / %s: %s\n", npy_path, csv_path,
                strerror(errno));
        return 2;
    }
    /* The row count is known at the end: the header is rewritten then (same size). */
    write_npy_header(npy, (int64_t)files.n, f);
    fprintf(csv, "row,path\n");
    float *feat = xmalloc((size_t)CHUNK * (size_t)f * sizeof(float));
    gtl_status st[CHUNK];
    int64_t rows = 0, skipped = 0;
    for (size_t i = 0; i < files.n; i += CHUNK) {
        size_t m = files.n - i < CHUNK ? files.n - i : CHUNK;
        gtl_status all = gtl_backbone_embed_files(bb, (const char *const *)files.v + i,
                                                  (int64_t)m, feat, m * (size_t)f, st);
        if (all == GTL_STATUS_INVALID_ARG || all == GTL_STATUS_OUT_OF_MEMORY) {
            fprintf(stderr, "extract_features: %s\n", gtl_last_error());
            return 2;
        }
        for (size_t k = 0; k < m; k++) {
            if (st[k] != GTL_STATUS_OK) {
                fprintf(stderr, "extract_features: skipped %s (%s)\n", files.v[i + k],
                        gtl_strerror(st[k]));
                skipped++;
                continue;
            }
            fwrite(feat + k * (size_t)f, sizeof(float), (size_t)f, npy);
            fprintf(csv, "%lld,%s\n", (long long)rows++, files.v[i + k]);
        }
    }
    fseek(npy, 0, SEEK_SET);
    write_npy_header(npy, rows, f);
    int io_err = fclose(npy) != 0;
    io_err |= fclose(csv) != 0;
    if (io_err) {
        fprintf(stderr, "extract_features: write error on %s or %s\n", npy_path, csv_path);
        return 2;
    }
    printf("extract_features: embedded %lld of %zu files (%lld skipped) -> %s (%lld x %lld), "
           "%s\n", (long long)rows, files.n, (long long)skipped, npy_path, (long long)rows,
           (long long)f, csv_path);
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i]);
    free(files.v);
    free(feat);
    free(npy_path);
    free(csv_path);
    gtl_backbone_destroy(bb);
    return strict && skipped > 0 ? 1 : 0;
}
