/* adapt: a folder of your own labelled images -> a GTL model adapted to
 * their classes (docs/demo.md, "Your own images").
 *
 *   adapt --backbone BACKBONE [--model HEAD] --out MODEL IMAGES_DIR
 *   adapt --backbone BACKBONE [--model HEAD] --out MODEL --manifest LIST.csv
 *   adapt --make-demo DIR      (writes a small test folder, see below)
 *
 * IMAGES_DIR holds one folder per class, the images directly in it (RGB) or
 * in modality folders: IMAGES_DIR/<class>/{rgb,sketch,infrared,depth}/<file>.
 * PNG, JPEG and WebP; gray (e.g. infrared) images are fine. Files that cannot
 * be decoded are reported by name and skipped.
 *
 * BACKBONE is a libgtl backbone file (e.g. the one gtl-demo trains,
 * demo-out/cache/backbone-*.gtlbb) or CLIP weights (safetensors). HEAD is a
 * pretrained GTL head for that backbone's features (gtl-demo's
 * demo-out/cache/head-*.gtl, after stages B1 and B2); without it a fresh,
 * untrained head is adapted, which works far less well. The result MODEL is
 * a libgtl model file; MODEL.classes lists the class names in label order.
 *
 * Every image also gets --views augmented views (default 4: random crop,
 * colour jitter or stroke width), as extra support samples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ex_images.h"
#include "gtl/backbone.h"
#include "gtl/gtl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: adapt --backbone PATH [--model HEAD] --out MODEL (IMAGES_DIR | --manifest CSV)\n"
               "             [--views N] [--n1-epochs N] [--n2-epochs N] [--threads N]\n"
               "       adapt --make-demo DIR\n");
}

/* ---- the demo folder used by the example tests ------------------------------- */

/* A shape (0 disc, 1 square, 2 cross) in an s x s image: fill colour on a
 * background (rgb), black outline on white (sketch), or a warm blob on a
 * dark background, one channel (infrared). */
static void draw(uint8_t *px, int32_t s, int32_t ch, int shape, int variant, int modality)
{
    double c = s / 2.0 + (variant - 1) * s / 16.0, r = s * (0.28 + 0.03 * variant);
    for (int32_t y = 0; y < s; y++)
        for (int32_t x = 0; x < s; x++) {
            double dx = x - c, dy = y - c, d;
            if (shape == 0)
                d = sqrt(dx * dx + dy * dy) - r;
            else if (shape == 1)
                d = fmax(fabs(dx), fabs(dy)) - r;
            else
                d = fmin(fmax(fabs(dx), fabs(dy) * 4.0), fmax(fabs(dx) * 4.0, fabs(dy))) - r;
            uint8_t *p = px + ((size_t)y * (size_t)s + (size_t)x) * (size_t)ch;
            if (modality == GTL_MODALITY_SKETCH) {
                uint8_t v = fabs(d) < 1.5 ? 0 : 255;
                p[0] = p[1] = p[2] = v;
            } else if (modality == GTL_MODALITY_INFRARED) {
                double t = d < 0 ? 230 - 20 * variant : 30 + 10 * variant;
                p[0] = (uint8_t)t;
            } else {
                static const uint8_t col[3][3] = {{220, 40, 40}, {40, 160, 60}, {40, 60, 220}};
                for (int k = 0; k < 3; k++)
                    p[k] = d < 0 ? col[shape][k] : (uint8_t)(200 + 20 * variant - 10 * k);
            }
        }
}

static int make_demo(const char *dir)
{
    static const char *const shapes[3] = {"disc", "square", "cross"};
    static const int mods[3] = {GTL_MODALITY_RGB, GTL_MODALITY_SKETCH, GTL_MODALITY_INFRARED};
    const int32_t s = 72;
    uint8_t *px = ex_malloc((size_t)(s * s * 3));
    ex_buf man = {0};
    ex_buf_printf(&man, "path,class,modality\n");
    for (int c = 0; c < 3; c++)
        for (int m = 0; m < 3; m++) {
            char *sub = ex_fmt("%s/images/%s/%s", dir, shapes[c], ex_modality_name(mods[m]));
            char *qdir = ex_fmt("%s/query", dir);
            if (ex_mkdirs(sub) != 0 || ex_mkdirs(qdir) != 0)
                return 1;
            int32_t ch = mods[m] == GTL_MODALITY_INFRARED ? 1 : 3;
            for (int v = 0; v < 3; v++) {
                draw(px, s, ch, c, v, mods[m]);
                /* variants 0, 1 are the labelled images; 2 is a query */
                char *p = v < 2 ? ex_fmt("%s/%d.png", sub, v)
                                : ex_fmt("%s/%s-%s.png", qdir, shapes[c], ex_modality_name(mods[m]));
                if (ex_png_write(p, s, s, ch, px) != 0)
                    return 1;
                if (v < 2)
                    ex_buf_printf(&man, "images/%s/%s/%d.png,%s,%s\n", shapes[c],
                                  ex_modality_name(mods[m]), v, shapes[c],
                                  ex_modality_name(mods[m]));
                free(p);
            }
            free(sub);
            free(qdir);
        }
    /* a corrupt file, an extreme size, a non-image file */
    char *p = ex_fmt("%s/images/disc/rgb/corrupt.png", dir);
    FILE *f = fopen(p, "wb");
    if (!f)
        return 1;
    fputs("\x89PNG\r\n\x1a\nthis is not really a PNG", f);
    fclose(f);
    free(p);
    ex_buf_printf(&man, "images/disc/rgb/corrupt.png,disc,rgb\n");
    uint8_t *wide = ex_malloc(3 * 600 * 2);
    for (int i = 0; i < 3 * 600 * 2; i++)
        wide[i] = (uint8_t)(i * 7);
    p = ex_fmt("%s/images/square/rgb/wide-600x2.png", dir);
    if (ex_png_write(p, 600, 2, 3, wide) != 0)
        return 1;
    free(p);
    free(wide);
    ex_buf_printf(&man, "images/square/rgb/wide-600x2.png,square,rgb\n");
    p = ex_fmt("%s/images/README.txt", dir);
    ex_write_file(p, "not an image\n", 13);
    free(p);
    p = ex_fmt("%s/query/corrupt.jpg", dir);
    ex_write_file(p, "\xff\xd8\xff truncated", 14);
    free(p);
    p = ex_fmt("%s/manifest.csv", dir);
    ex_write_file(p, man.s, man.len);
    free(p);
    ex_buf_free(&man);
    /* a backbone with random weights: enough to exercise the pipeline */
    gtl_backbone *bb = NULL;
    EX_CHECK(gtl_backbone_create(GTL_BACKBONE_RESNET_SMALL, &bb));
    p = ex_fmt("%s/backbone.gtlbb", dir);
    EX_CHECK(gtl_backbone_save(bb, p));
    free(p);
    gtl_backbone_destroy(bb);
    free(px);
    printf("adapt: demo folder %s (3 classes x rgb/sketch/infrared x 2 images, 1 corrupt PNG, "
           "1 600x2 image, manifest.csv, query/, backbone.gtlbb)\n", dir);
    return 0;
}

static int on_step(void *ud, gtl_stage stage, int64_t step, int64_t n_steps, const float *stats)
{
    ex_progress *pr = ud;
    if (step == 1)
        ex_progress_start(pr, stage == GTL_STAGE_N1 ? "adapt N1" : "adapt N2", n_steps);
    char extra[64];
    if (stage == GTL_STAGE_N1)
        snprintf(extra, sizeof extra, "loss %.4f", (double)stats[GTL_STAT_LOSS]);
    else
        snprintf(extra, sizeof extra, "ce %.3f acc %.2f", (double)stats[GTL_STAT_CE],
                 (double)stats[GTL_STAT_ACCURACY]);
    ex_progress_update(pr, step, extra);
    if (step == n_steps)
        ex_progress_end(pr);
    return 0;
}

int main(int argc, char **argv)
{
    const char *backbone = NULL, *head = NULL, *out = NULL, *manifest = NULL, *dir = NULL;
    int64_t views = 4, n1 = -1, n2 = -1;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--make-demo") && v)
            return make_demo(v);
        if (!strcmp(a, "--backbone") && v)
            backbone = argv[++i];
        else if (!strcmp(a, "--model") && v)
            head = argv[++i];
        else if (!strcmp(a, "--out") && v)
            out = argv[++i];
        else if (!strcmp(a, "--manifest") && v)
            manifest = argv[++i];
        else if (!strcmp(a, "--views") && v)
            views = atoll(argv[++i]);
        else if (!strcmp(a, "--n1-epochs") && v)
            n1 = atoll(argv[++i]);
        else if (!strcmp(a, "--n2-epochs") && v)
            n2 = atoll(argv[++i]);
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++i]);
        else if (a[0] != '-' && !dir)
            dir = a;
        else {
            fprintf(stderr, "adapt: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!backbone || !out || (!dir && !manifest) || views < 0 || views > 64) {
        usage(stderr);
        return 2;
    }
    if (threads > 0)
        EX_CHECK(gtl_set_num_threads(threads));
    ex_itemset set;
    if ((manifest ? ex_scan_manifest(manifest, &set) : ex_scan_folder(dir, &set)) != 0)
        return 1;
    gtl_backbone *bb = NULL;
    gtl_status st = gtl_backbone_load(backbone, &bb);
    if (st != GTL_STATUS_OK) {
        fprintf(stderr, "adapt: cannot load the backbone: %s\n", gtl_last_error());
        return 1;
    }
    int64_t dim = 0;
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &dim));

    char **paths = ex_malloc(sizeof(char *) * (size_t)set.n);
    int32_t *mods = ex_malloc(sizeof(int32_t) * (size_t)set.n);
    for (int64_t i = 0; i < set.n; i++) {
        paths[i] = set.items[i].path;
        mods[i] = set.items[i].modality;
    }
    float *feat = ex_malloc(sizeof(float) * (size_t)(set.n * dim));
    float *vfeat = ex_malloc(sizeof(float) * (size_t)(set.n * (views ? views : 1) * dim));
    int32_t *ok = ex_malloc(sizeof(int32_t) * (size_t)set.n);
    int64_t n_ok = ex_embed_files(bb, paths, mods, set.n, feat, ok, views, vfeat, 0);
    int64_t n_skipped = set.n - n_ok;

    gtl_dataset *support = NULL;
    EX_CHECK(gtl_dataset_create(dim, &support));
    int64_t *per_class = ex_calloc((size_t)set.n_classes, sizeof(int64_t));
    for (int64_t i = 0; i < set.n; i++) {
        if (!ok[i])
            continue;
        const ex_item *it = &set.items[i];
        int64_t pair = i;
        EX_CHECK(gtl_dataset_add(support, feat + dim * i, 1, &it->label, &it->modality, &pair));
        for (int64_t v = 0; v < views; v++)
            EX_CHECK(gtl_dataset_add(support, vfeat + dim * (i * views + v), 1, &it->label,
                                     &it->modality, &pair));
        per_class[it->label]++;
    }
    /* classes whose every image failed are dropped; labels stay 0..C-1 */
    int64_t n_cls = 0;
    char *classes_txt = NULL;
    ex_buf names = {0};
    int64_t *map = ex_malloc(sizeof(int64_t) * (size_t)set.n_classes);
    if (n_ok < 1) {
        fprintf(stderr, "adapt: no usable image\n");
        return 1;
    }
    EX_CHECK(gtl_dataset_remap_labels(support, map, (size_t)set.n_classes, &n_cls));
    for (int64_t c = 0; c < set.n_classes; c++)
        if (!per_class[c])
            fprintf(stderr, "warning: class %s has no usable image: dropped\n", set.classes[c]);
    for (int64_t c = 0; c < n_cls; c++)
        ex_buf_printf(&names, "%s\n", set.classes[map[c]]);
    classes_txt = names.s;

    gtl_model *m = NULL;
    if (head) {
        st = gtl_model_load(head, &m, NULL);
        if (st != GTL_STATUS_OK) {
            fprintf(stderr, "adapt: cannot load the head %s: %s\n", head, gtl_last_error());
            return 1;
        }
        int64_t f = 0;
        EX_CHECK(gtl_model_get_i64(m, GTL_MODEL_FEATURE_DIM, &f));
        if (f != dim) {
            fprintf(stderr, "adapt: the head %s works on %lld-dimensional features, the "
                            "backbone %s gives %lld: use the head trained on this backbone\n",
                    head, (long long)f, backbone, (long long)dim);
            return 1;
        }
    } else {
        fprintf(stderr, "warning: no pretrained head (--model): adapting a fresh, untrained "
                        "GTL head; gtl-demo's demo-out/cache/head-*.gtl works much better\n");
        EX_CHECK(gtl_model_create(&m));
        EX_CHECK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, dim));
    }
    if (n1 >= 0)
        EX_CHECK(gtl_model_set_i64(m, GTL_MODEL_N1_EPOCHS, n1));
    if (n2 >= 0)
        EX_CHECK(gtl_model_set_i64(m, GTL_MODEL_N2_EPOCHS, n2));
    ex_progress pr;
    double t0 = ex_now();
    st = gtl_adapt(m, support, on_step, &pr);
    if (st != GTL_STATUS_OK) {
        fprintf(stderr, "adapt: %s: %s\n", gtl_strerror(st), gtl_last_error());
        return 1;
    }
    st = gtl_model_save(m, NULL, out);
    if (st != GTL_STATUS_OK) {
        fprintf(stderr, "adapt: cannot save %s: %s\n", out, gtl_last_error());
        return 1;
    }
    char *cpath = ex_fmt("%s.classes", out);
    if (ex_write_file(cpath, classes_txt, strlen(classes_txt)) != 0)
        return 1;
    int64_t n_rows = 0;
    EX_CHECK(gtl_dataset_size(support, &n_rows));
    printf("adapted %lld classes from %lld images (%lld skipped, %lld other files ignored; "
           "%lld support rows with %lld views each) in %.1f s\nwrote %s and %s\n",
           (long long)n_cls, (long long)n_ok, (long long)n_skipped, (long long)set.n_ignored,
           (long long)n_rows, (long long)views, ex_now() - t0, out, cpath);
    free(cpath);
    gtl_model_destroy(m);
    gtl_dataset_destroy(support);
    gtl_backbone_destroy(bb);
    ex_buf_free(&names);
    free(map);
    free(per_class);
    free(ok);
    free(feat);
    free(vfeat);
    free(paths);
    free(mods);
    ex_itemset_free(&set);
    return 0;
}
