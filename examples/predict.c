/* predict: classifies images with a model adapted by `adapt`.
 *
 *   predict --backbone BACKBONE --model MODEL [--classes FILE] [--top K] PATH...
 *
 * PATH: image files or folders (searched recursively for .png, .jpg, .jpeg,
 * .webp). Prints one line per image: the path, then the top-K classes with
 * their probabilities (tab-separated). Files that cannot be decoded are
 * reported by name on stderr and skipped. BACKBONE must be the one the model
 * was adapted with; class names come from MODEL.classes unless --classes. */
#include <stdlib.h>
#include <string.h>

#include "ex_images.h"
#include "gtl/backbone.h"
#include "gtl/gtl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: predict --backbone PATH --model MODEL [--classes FILE] [--top K] "
               "[--threads N] IMAGE_OR_DIR...\n");
}

int main(int argc, char **argv)
{
    const char *backbone = NULL, *model = NULL, *classes = NULL;
    int64_t top = 3;
    int threads = 0;
    char **inputs = calloc((size_t)argc, sizeof(char *));
    int64_t n_inputs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--backbone") && v)
            backbone = argv[++i];
        else if (!strcmp(a, "--model") && v)
            model = argv[++i];
        else if (!strcmp(a, "--classes") && v)
            classes = argv[++i];
        else if (!strcmp(a, "--top") && v)
            top = atoll(argv[++i]);
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++i]);
        else if (a[0] != '-')
            inputs[n_inputs++] = argv[i];
        else {
            fprintf(stderr, "predict: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!backbone || !model || n_inputs == 0 || top < 1) {
        usage(stderr);
        return 2;
    }
    if (threads > 0)
        EX_CHECK(gtl_set_num_threads(threads));
    gtl_model *m = NULL;
    if (gtl_model_load(model, &m, NULL) != GTL_STATUS_OK) {
        fprintf(stderr, "predict: cannot load the model %s: %s\n", model, gtl_last_error());
        return 1;
    }
    int64_t n_cls = 0, fdim = 0;
    EX_CHECK(gtl_model_get_i64(m, GTL_MODEL_NUM_CLASSES, &n_cls));
    EX_CHECK(gtl_model_get_i64(m, GTL_MODEL_FEATURE_DIM, &fdim));
    /* class names: one per line */
    char *cpath = classes ? ex_strdup(classes) : ex_fmt("%s.classes", model);
    char *ctext = ex_read_file(cpath, NULL, classes == NULL);
    char **names = ex_calloc((size_t)n_cls, sizeof(char *));
    int64_t n_names = 0;
    for (char *s = ctext; s && *s && n_names < n_cls;) {
        char *e = strchr(s, '\n');
        if (e)
            *e = '\0';
        names[n_names++] = s;
        s = e ? e + 1 : s + strlen(s);
    }
    if (n_names != n_cls)
        fprintf(stderr, "warning: %s: %lld class names for %lld classes; numbering them\n", cpath,
                (long long)n_names, (long long)n_cls);
    char **fallback = ex_calloc((size_t)n_cls, sizeof(char *));
    for (int64_t c = 0; c < n_cls; c++)
        if (c >= n_names || !names[c])
            names[c] = fallback[c] = ex_fmt("class%lld", (long long)c);

    gtl_backbone *bb = NULL;
    if (gtl_backbone_load(backbone, &bb) != GTL_STATUS_OK) {
        fprintf(stderr, "predict: cannot load the backbone: %s\n", gtl_last_error());
        return 1;
    }
    int64_t dim = 0;
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &dim));
    if (dim != fdim) {
        fprintf(stderr, "predict: the model works on %lld-dimensional features, the backbone "
                        "gives %lld: use the backbone the model was adapted with\n",
                (long long)fdim, (long long)dim);
        return 1;
    }
    char **files = NULL;
    int64_t n_files = 0, n_ignored = 0;
    ex_collect_files(inputs, n_inputs, &files, &n_files, &n_ignored);
    if (n_files == 0) {
        fprintf(stderr, "predict: no image files found\n");
        return 1;
    }
    float *feat = ex_malloc(sizeof(float) * (size_t)(n_files * dim));
    int32_t *ok = ex_malloc(sizeof(int32_t) * (size_t)n_files);
    int64_t n_ok = ex_embed_files(bb, files, NULL, n_files, feat, ok, 0, NULL, 0);
    float *probs = ex_malloc(sizeof(float) * (size_t)n_cls);
    int64_t *order = ex_malloc(sizeof(int64_t) * (size_t)n_cls);
    if (top > n_cls)
        top = n_cls;
    for (int64_t i = 0; i < n_files; i++) {
        if (!ok[i])
            continue;
        EX_CHECK(gtl_model_predict(m, feat + dim * i, 1, dim, NULL, probs, (size_t)n_cls));
        for (int64_t c = 0; c < n_cls; c++)
            order[c] = c;
        for (int64_t a = 0; a < top; a++) /* partial selection sort: top is small */
            for (int64_t b = a + 1; b < n_cls; b++)
                if (probs[order[b]] > probs[order[a]]) {
                    int64_t t = order[a];
                    order[a] = order[b];
                    order[b] = t;
                }
        printf("%s", files[i]);
        for (int64_t a = 0; a < top; a++)
            printf("\t%s %.3f", names[order[a]], (double)probs[order[a]]);
        printf("\n");
    }
    fprintf(stderr, "predicted %lld of %lld images (%lld skipped)\n", (long long)n_ok,
            (long long)n_files, (long long)(n_files - n_ok));
    for (int64_t c = 0; c < n_cls; c++)
        free(fallback[c]);
    free(fallback);
    free(names);
    free(ctext);
    free(cpath);
    ex_free_list(files, n_files);
    free(feat);
    free(ok);
    free(probs);
    free(order);
    free(inputs);
    gtl_backbone_destroy(bb);
    gtl_model_destroy(m);
    return 0;
}
