/* demo_data: the prepared emoji data set (docs/data.md): manifest.csv (one
 * row per image), splits.json (base / novel classes) and sketch_twins.csv
 * (classes whose line art is near-identical to another class's). */
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static const char *const style_names[DEMO_N_STYLES] = {"openmoji-color", "fluent-3d", "noto",
                                                       "openmoji-black"};

const char *demo_style_name(int32_t style)
{
    return style >= 0 && style < DEMO_N_STYLES ? style_names[style] : "?";
}

const char *demo_twins_name(demo_twins t)
{
    switch (t) {
    case DEMO_TWINS_KEEP_ONE:
        return "keep-one";
    case DEMO_TWINS_EXCLUDE:
        return "exclude";
    case DEMO_TWINS_KEEP:
        return "keep";
    }
    return "?";
}

/* qsort has no context argument: the data being sorted. */
static const demo_data *g_sort_data;

static int cmp_idx(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    return strcmp(g_sort_data->classes[i].name, g_sort_data->classes[j].name);
}

static int64_t find_class(const demo_data *d, const int64_t *sorted, const char *name)
{
    int64_t lo = 0, hi = d->n_classes - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strcmp(d->classes[sorted[mid]].name, name);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Calls fn for each string of the JSON array that follows "key": in text.
 * Enough for splits.json (written by prepare_emoji.py: plain ASCII strings). */
static int json_string_array(const char *text, const char *key,
                             void (*fn)(void *ud, const char *s), void *ud)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(text, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ':')
        p++;
    if (*p != '[')
        return -1;
    p++;
    char buf[256];
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',')
            p++;
        if (*p == ']')
            return 0;
        if (*p != '"')
            return -1;
        p++;
        size_t n = 0;
        while (*p && *p != '"' && n + 1 < sizeof buf)
            buf[n++] = *p++;
        if (*p != '"')
            return -1;
        p++;
        buf[n] = '\0';
        fn(ud, buf);
    }
}

typedef struct split_ctx {
    demo_data *d;
    const int64_t *sorted;
    int32_t split;
    int64_t n_unknown;
} split_ctx;

static void set_split(void *ud, const char *s)
{
    split_ctx *c = ud;
    int64_t k = find_class(c->d, c->sorted, s);
    if (k < 0)
        c->n_unknown++;
    else
        c->d->classes[k].split = c->split;
}

/* splitmix64: a stable, seeded order for the --quick class subsets. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Moves about n classes of split `from` to split `to`, in the order of a
 * salted hash of their names (stable across runs). Twin groups move whole. */
static void move_classes(demo_data *d, int32_t from, int64_t n, int32_t to, uint64_t salt)
{
    if (n <= 0)
        return;
    uint64_t *h = ex_malloc(sizeof(uint64_t) * (size_t)d->n_classes);
    for (int64_t i = 0; i < d->n_classes; i++) {
        const demo_class *c = &d->classes[i];
        uint64_t key = c->twin >= 0 ? 0x7717000000ull + (uint64_t)c->twin
                                    : ex_fnv(EX_FNV_INIT, c->name, strlen(c->name));
        h[i] = c->split == from ? mix64(key ^ salt) : UINT64_MAX;
    }
    int64_t moved = 0;
    while (moved < n) {
        uint64_t best = UINT64_MAX;
        for (int64_t i = 0; i < d->n_classes; i++)
            if (h[i] < best)
                best = h[i];
        if (best == UINT64_MAX)
            break;
        for (int64_t i = 0; i < d->n_classes; i++)
            if (h[i] == best) {
                d->classes[i].split = to;
                h[i] = UINT64_MAX;
                moved++;
            }
    }
    free(h);
}

static int64_t count_split(const demo_data *d, int32_t split)
{
    int64_t n = 0;
    for (int64_t i = 0; i < d->n_classes; i++)
        n += d->classes[i].split == split;
    return n;
}

int demo_data_load(const char *dir, demo_twins twins, int64_t max_base, int64_t max_novel,
                   int64_t n_val, demo_data *d)
{
    memset(d, 0, sizeof *d);
    d->dir = ex_strdup(dir);
    char *path = ex_path_join(dir, "manifest.csv");
    ex_csv csv;
    if (ex_csv_read(path, &csv) != 0) {
        fprintf(stderr, "error: %s is missing: prepare the data first with\n"
                        "  /usr/bin/python3 examples/data/prepare_emoji.py --cache %s\n",
                path, dir);
        free(path);
        return -1;
    }
    d->key = ex_fnv_file(EX_FNV_INIT, path);
    free(path);
    int64_t c_path = ex_csv_col(&csv, "path"), c_class = ex_csv_col(&csv, "class");
    int64_t c_id = ex_csv_col(&csv, "class_id"), c_mod = ex_csv_col(&csv, "modality");
    int64_t c_style = ex_csv_col(&csv, "style"), c_group = ex_csv_col(&csv, "group");
    if (c_path < 0 || c_class < 0 || c_id < 0 || c_mod < 0 || c_style < 0) {
        fprintf(stderr, "error: %s/manifest.csv lacks a column (path, class, class_id, "
                        "modality, style)\n", dir);
        ex_csv_free(&csv);
        return -1;
    }
    /* classes: class_id is 0..N-1 */
    int64_t n_cls = 0;
    for (int64_t r = 0; r < csv.n_rows; r++) {
        int64_t id = atoll(ex_csv_get(&csv, r, c_id));
        if (id + 1 > n_cls)
            n_cls = id + 1;
    }
    d->n_classes = n_cls;
    d->classes = ex_calloc((size_t)n_cls, sizeof(demo_class));
    d->images = ex_calloc((size_t)csv.n_rows, sizeof(demo_image));
    for (int64_t r = 0; r < csv.n_rows; r++) {
        int64_t id = atoll(ex_csv_get(&csv, r, c_id));
        demo_class *c = &d->classes[id];
        if (!c->name) {
            c->name = ex_strdup(ex_csv_get(&csv, r, c_class));
            c->group = ex_strdup(c_group >= 0 ? ex_csv_get(&csv, r, c_group) : "");
            c->split = DEMO_DROPPED;
            c->twin = -1;
        }
        const char *style = ex_csv_get(&csv, r, c_style);
        int32_t s = -1;
        for (int32_t k = 0; k < DEMO_N_STYLES; k++)
            if (!strcmp(style, style_names[k]))
                s = k;
        if (s < 0) {
            fprintf(stderr, "warning: manifest row %lld: unknown style '%s', skipped\n",
                    (long long)r + 2, style);
            continue;
        }
        demo_image *im = &d->images[d->n_images++];
        im->path = ex_path_join(dir, ex_csv_get(&csv, r, c_path));
        im->cls = (int32_t)id;
        im->style = s;
        im->modality = !strcmp(ex_csv_get(&csv, r, c_mod), "sketch") ? GTL_MODALITY_SKETCH
                                                                      : GTL_MODALITY_RGB;
    }
    ex_csv_free(&csv);
    for (int64_t i = 0; i < n_cls; i++)
        if (!d->classes[i].name) {
            d->classes[i].name = ex_fmt("#%lld", (long long)i);
            d->classes[i].group = ex_strdup("");
            d->classes[i].twin = -1;
            d->classes[i].split = DEMO_DROPPED;
        }
    int64_t *sorted = ex_malloc(sizeof(int64_t) * (size_t)n_cls);
    for (int64_t i = 0; i < n_cls; i++)
        sorted[i] = i;
    g_sort_data = d;
    qsort(sorted, (size_t)n_cls, sizeof(int64_t), cmp_idx);

    /* splits */
    path = ex_path_join(dir, "splits.json");
    char *js = ex_read_file(path, NULL, 0);
    if (!js) {
        free(path);
        free(sorted);
        return -1;
    }
    d->key = ex_fnv(d->key, js, strlen(js));
    d->quick = strstr(js, "\"quick\": true") != NULL;
    split_ctx sc = {d, sorted, DEMO_BASE, 0};
    int rc = json_string_array(js, "base", set_split, &sc);
    sc.split = DEMO_NOVEL;
    if (rc == 0)
        rc = json_string_array(js, "novel", set_split, &sc);
    free(js);
    if (rc != 0) {
        fprintf(stderr, "error: %s: no \"base\" / \"novel\" class lists\n", path);
        free(path);
        free(sorted);
        return -1;
    }
    if (sc.n_unknown)
        fprintf(stderr, "warning: %s names %lld classes that are not in the manifest\n", path,
                (long long)sc.n_unknown);
    free(path);

    /* sketch twins */
    path = ex_path_join(dir, "sketch_twins.csv");
    if (ex_csv_read(path, &csv) == 0) {
        int64_t t_class = ex_csv_col(&csv, "class"), t_group = ex_csv_col(&csv, "twin_group");
        for (int64_t r = 0; t_class >= 0 && t_group >= 0 && r < csv.n_rows; r++) {
            int64_t k = find_class(d, sorted, ex_csv_get(&csv, r, t_class));
            if (k >= 0)
                d->classes[k].twin = (int32_t)atoi(ex_csv_get(&csv, r, t_group));
        }
        ex_csv_free(&csv);
    } else {
        fprintf(stderr, "warning: no sketch_twins.csv: twin classes are not handled\n");
    }
    free(path);
    free(sorted);

    if (max_base > 0)
        move_classes(d, DEMO_BASE, count_split(d, DEMO_BASE) - max_base, DEMO_DROPPED, 1);
    if (max_novel > 0)
        move_classes(d, DEMO_NOVEL, count_split(d, DEMO_NOVEL) - max_novel, DEMO_DROPPED, 2);
    move_classes(d, DEMO_BASE, n_val, DEMO_VAL, 3);
    d->n_val = count_split(d, DEMO_VAL);

    /* twin policy, on the novel side (base training uses RGB only, where twins
     * differ in colour) */
    int32_t *seen = ex_calloc((size_t)n_cls + 1, sizeof(int32_t));
    for (int64_t i = 0; i < n_cls; i++) {
        demo_class *c = &d->classes[i];
        if (c->split != DEMO_NOVEL || c->twin < 0)
            continue;
        d->n_twin_classes++;
        int32_t g = c->twin < n_cls ? c->twin : (int32_t)n_cls;
        int drop = twins == DEMO_TWINS_EXCLUDE || (twins == DEMO_TWINS_KEEP_ONE && seen[g]);
        seen[g] = 1;
        if (drop) {
            c->split = DEMO_DROPPED;
            d->n_twin_dropped++;
        }
    }
    free(seen);
    for (int64_t i = 0; i < n_cls; i++) {
        d->n_base += d->classes[i].split == DEMO_BASE;
        d->n_novel += d->classes[i].split == DEMO_NOVEL;
    }
    char tag[64];
    snprintf(tag, sizeof tag, "%d/%lld/%lld/%lld", (int)twins, (long long)max_base,
             (long long)max_novel, (long long)n_val);
    d->key = ex_fnv(d->key, tag, strlen(tag));
    return 0;
}

void demo_data_free(demo_data *d)
{
    for (int64_t i = 0; i < d->n_classes; i++) {
        free(d->classes[i].name);
        free(d->classes[i].group);
    }
    for (int64_t i = 0; i < d->n_images; i++)
        free(d->images[i].path);
    free(d->classes);
    free(d->images);
    free(d->dir);
    memset(d, 0, sizeof *d);
}
