/* ex_images: labelled image folders and embedding for adapt / predict. */
#include "ex_images.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    int32_t modality;
} modality_names[] = {
    {"rgb", GTL_MODALITY_RGB},           {"photo", GTL_MODALITY_RGB},
    {"color", GTL_MODALITY_RGB},         {"colour", GTL_MODALITY_RGB},
    {"sketch", GTL_MODALITY_SKETCH},     {"drawing", GTL_MODALITY_SKETCH},
    {"lineart", GTL_MODALITY_SKETCH},    {"infrared", GTL_MODALITY_INFRARED},
    {"ir", GTL_MODALITY_INFRARED},       {"thermal", GTL_MODALITY_INFRARED},
    {"depth", GTL_MODALITY_DEPTH},
};

int32_t ex_modality_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof modality_names / sizeof modality_names[0]; i++)
        if (!strcasecmp(name, modality_names[i].name))
            return modality_names[i].modality;
    return -1;
}

const char *ex_modality_name(int32_t modality)
{
    switch (modality) {
    case GTL_MODALITY_RGB:
        return "rgb";
    case GTL_MODALITY_SKETCH:
        return "sketch";
    case GTL_MODALITY_INFRARED:
        return "infrared";
    case GTL_MODALITY_DEPTH:
        return "depth";
    }
    return "other";
}

int ex_is_image_name(const char *name)
{
    const char *e = ex_path_ext(name);
    return !strcasecmp(e, "png") || !strcasecmp(e, "jpg") || !strcasecmp(e, "jpeg") ||
           !strcasecmp(e, "webp");
}

static void add_item(ex_itemset *s, int64_t *cap, const char *path, int64_t label, int32_t mod)
{
    if (s->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        s->items = ex_realloc(s->items, sizeof(ex_item) * (size_t)*cap);
    }
    s->items[s->n++] = (ex_item){ex_strdup(path), label, mod};
}

int ex_scan_folder(const char *dir, ex_itemset *out)
{
    memset(out, 0, sizeof *out);
    char **cls = NULL;
    int64_t n_cls = 0, cap = 0;
    if (ex_list_dir(dir, &cls, &n_cls) != 0) {
        fprintf(stderr, "error: cannot read the folder %s\n", dir);
        return -1;
    }
    out->classes = ex_malloc(sizeof(char *) * (size_t)(n_cls + 1));
    for (int64_t c = 0; c < n_cls; c++) {
        char *cdir = ex_path_join(dir, cls[c]);
        if (!ex_is_dir(cdir)) {
            out->n_ignored++;
            free(cdir);
            continue;
        }
        int64_t label = out->n_classes;
        int64_t before = out->n;
        char **ent = NULL;
        int64_t n_ent = 0;
        ex_list_dir(cdir, &ent, &n_ent);
        for (int64_t e = 0; e < n_ent; e++) {
            char *p = ex_path_join(cdir, ent[e]);
            if (ex_is_dir(p)) {
                int32_t mod = ex_modality_from_name(ent[e]);
                if (mod < 0) {
                    fprintf(stderr, "warning: %s: unknown modality folder '%s' (use rgb, "
                                    "sketch, infrared or depth): skipped\n", p, ent[e]);
                    free(p);
                    continue;
                }
                char **img = NULL;
                int64_t n_img = 0;
                ex_list_dir(p, &img, &n_img);
                for (int64_t k = 0; k < n_img; k++) {
                    char *ip = ex_path_join(p, img[k]);
                    if (ex_is_image_name(img[k]) && !ex_is_dir(ip))
                        add_item(out, &cap, ip, label, mod);
                    else
                        out->n_ignored++;
                    free(ip);
                }
                ex_free_list(img, n_img);
            } else if (ex_is_image_name(ent[e])) {
                add_item(out, &cap, p, label, GTL_MODALITY_RGB);
            } else {
                out->n_ignored++;
            }
            free(p);
        }
        ex_free_list(ent, n_ent);
        if (out->n > before)
            out->classes[out->n_classes++] = ex_strdup(cls[c]);
        else
            fprintf(stderr, "warning: class folder %s has no images: skipped\n", cdir);
        free(cdir);
    }
    ex_free_list(cls, n_cls);
    if (out->n_classes < 1) {
        fprintf(stderr, "error: %s has no class folders with images (expected "
                        "%s/<class>/[<modality>/]<image>)\n", dir, dir);
        return -1;
    }
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ex_scan_manifest(const char *csv_path, ex_itemset *out)
{
    memset(out, 0, sizeof *out);
    ex_csv csv;
    if (ex_csv_read(csv_path, &csv) != 0)
        return -1;
    int64_t cp = ex_csv_col(&csv, "path"), cc = ex_csv_col(&csv, "class");
    int64_t cm = ex_csv_col(&csv, "modality");
    if (cp < 0 || cc < 0) {
        fprintf(stderr, "error: %s: the header needs the columns path and class (and "
                        "optionally modality)\n", csv_path);
        ex_csv_free(&csv);
        return -1;
    }
    char *base = ex_strdup(csv_path);
    char *slash = strrchr(base, '/');
    if (slash)
        slash[1] = '\0';
    else
        base[0] = '\0';
    /* classes: sorted distinct names */
    char **names = ex_malloc(sizeof(char *) * (size_t)(csv.n_rows + 1));
    for (int64_t r = 0; r < csv.n_rows; r++)
        names[r] = (char *)ex_csv_get(&csv, r, cc);
    qsort(names, (size_t)csv.n_rows, sizeof(char *), cmp_cstr);
    out->classes = ex_malloc(sizeof(char *) * (size_t)(csv.n_rows + 1));
    for (int64_t r = 0; r < csv.n_rows; r++)
        if (names[r][0] && (out->n_classes == 0 ||
                            strcmp(out->classes[out->n_classes - 1], names[r]) != 0))
            out->classes[out->n_classes++] = ex_strdup(names[r]);
    free(names);
    int64_t cap = 0;
    for (int64_t r = 0; r < csv.n_rows; r++) {
        const char *p = ex_csv_get(&csv, r, cp), *c = ex_csv_get(&csv, r, cc);
        if (!p[0] || !c[0]) {
            fprintf(stderr, "warning: %s line %lld: empty path or class: skipped\n", csv_path,
                    (long long)r + 2);
            continue;
        }
        int32_t mod = GTL_MODALITY_RGB;
        if (cm >= 0 && ex_csv_get(&csv, r, cm)[0]) {
            mod = ex_modality_from_name(ex_csv_get(&csv, r, cm));
            if (mod < 0) {
                fprintf(stderr, "warning: %s line %lld: unknown modality '%s': skipped\n",
                        csv_path, (long long)r + 2, ex_csv_get(&csv, r, cm));
                continue;
            }
        }
        int64_t label = 0;
        while (strcmp(out->classes[label], c) != 0)
            label++;
        char *full = p[0] == '/' ? ex_strdup(p) : ex_fmt("%s%s", base, p);
        add_item(out, &cap, full, label, mod);
        free(full);
    }
    free(base);
    ex_csv_free(&csv);
    if (out->n < 1) {
        fprintf(stderr, "error: %s lists no images\n", csv_path);
        return -1;
    }
    return 0;
}

void ex_itemset_free(ex_itemset *s)
{
    for (int64_t i = 0; i < s->n; i++)
        free(s->items[i].path);
    for (int64_t c = 0; c < s->n_classes; c++)
        free(s->classes[c]);
    free(s->items);
    free(s->classes);
    memset(s, 0, sizeof *s);
}

static void collect(const char *path, char ***files, int64_t *n, int64_t *cap, int64_t *ignored,
                    int explicit_file)
{
    if (ex_is_dir(path)) {
        char **ent = NULL;
        int64_t n_ent = 0;
        if (ex_list_dir(path, &ent, &n_ent) != 0) {
            fprintf(stderr, "warning: cannot read the folder %s: skipped\n", path);
            return;
        }
        for (int64_t e = 0; e < n_ent; e++) {
            char *p = ex_path_join(path, ent[e]);
            collect(p, files, n, cap, ignored, 0);
            free(p);
        }
        ex_free_list(ent, n_ent);
        return;
    }
    if (!explicit_file && !ex_is_image_name(path)) {
        (*ignored)++;
        return;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *files = ex_realloc(*files, sizeof(char *) * (size_t)*cap);
    }
    (*files)[(*n)++] = ex_strdup(path);
}

int ex_collect_files(char *const *paths, int64_t n_paths, char ***out_files, int64_t *out_n,
                     int64_t *out_ignored)
{
    *out_files = NULL;
    *out_n = 0;
    *out_ignored = 0;
    int64_t cap = 0;
    for (int64_t i = 0; i < n_paths; i++)
        collect(paths[i], out_files, out_n, &cap, out_ignored, 1);
    return 0;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

typedef struct embed_batch {
    gtl_backbone *bb;
    int64_t dim, nb, cap;
    size_t per;
    float *x;    /* (cap, 3, S, S) */
    float *f;    /* (cap, F) */
    float **dst; /* where each row's feature goes */
} embed_batch;

static void batch_flush(embed_batch *b)
{
    if (b->nb == 0)
        return;
    EX_CHECK(gtl_backbone_embed(b->bb, b->x, b->nb, b->f, (size_t)(b->dim * b->nb)));
    for (int64_t k = 0; k < b->nb; k++)
        memcpy(b->dst[k], b->f + b->dim * k, sizeof(float) * (size_t)b->dim);
    b->nb = 0;
}

/* The next free image slot (flushing a full batch first). */
static float *batch_slot(embed_batch *b)
{
    if (b->nb == b->cap)
        batch_flush(b);
    return b->x + b->per * (size_t)b->nb;
}

int64_t ex_embed_files(gtl_backbone *bb, char *const *paths, const int32_t *modalities,
                       int64_t n, float *out_feat, int32_t *ok, int64_t n_views,
                       float *out_views, uint64_t seed)
{
    int64_t size = 0;
    embed_batch b = {.bb = bb, .cap = 16};
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &size));
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &b.dim));
    b.per = (size_t)(3 * size * size);
    b.x = ex_malloc(sizeof(float) * b.per * (size_t)b.cap);
    b.f = ex_malloc(sizeof(float) * (size_t)(b.dim * b.cap));
    b.dst = ex_malloc(sizeof(float *) * (size_t)b.cap);
    int64_t n_ok = 0;
    ex_progress pr;
    ex_progress_start(&pr, "embedding images", n);
    for (int64_t i = 0; i < n; i++) {
        ok[i] = 0;
        float *slot = batch_slot(&b);
        gtl_status st = gtl_image_load(paths[i], (int32_t)size, slot, b.per);
        if (st != GTL_STATUS_OK) {
            fprintf(stderr, "%sskipped %s: %s\n", pr.tty ? "\n" : "", paths[i], gtl_last_error());
            memset(out_feat + b.dim * i, 0, sizeof(float) * (size_t)b.dim);
            ex_progress_update(&pr, i + 1, NULL);
            continue;
        }
        ok[i] = 1;
        n_ok++;
        b.dst[b.nb++] = out_feat + b.dim * i;
        int32_t mod = modalities ? modalities[i] : GTL_MODALITY_RGB;
        uint32_t flags = GTL_AUGMENT_RESIZED_CROP;
        if (mod == GTL_MODALITY_SKETCH)
            flags |= GTL_AUGMENT_STROKE;
        else if (mod == GTL_MODALITY_RGB)
            flags |= GTL_AUGMENT_COLOR;
        for (int64_t v = 0; v < n_views; v++) {
            slot = batch_slot(&b);
            uint64_t s = mix(seed ^ mix((uint64_t)i * 1024 + (uint64_t)v));
            if (gtl_image_augment(paths[i], flags, &s, (int32_t)size, slot, b.per) !=
                GTL_STATUS_OK)
                EX_CHECK(gtl_image_load(paths[i], (int32_t)size, slot, b.per));
            b.dst[b.nb++] = out_views + b.dim * (i * n_views + v);
        }
        ex_progress_update(&pr, i + 1, NULL);
    }
    batch_flush(&b);
    ex_progress_end(&pr);
    free(b.x);
    free(b.f);
    free(b.dst);
    return n_ok;
}
