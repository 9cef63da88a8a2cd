/* gtl-standin: the GTL head against nearest centroid and the linear probe on
 * stand-in features, raw 16 x 16 gray pixels (F = 256, the CNN's feature
 * size), so that the head can be studied without a trained backbone
 * (docs/demo.md, "Why GTL falls below nearest centroid").
 *
 *   gtl-standin --data data-cache [--episodes 100] [--b1-epochs 30]
 *               [--protocol cfsl|rgb2sketch|sketch2rgb] [--methods a,b,...]
 *               [--cache DIR] [--threads N] [--workers N]
 *
 * Features: gtl_image_load at 16 x 16 (CLIP-normalised RGB), averaged over
 * the channels. Heads: B1 + B2 (--b1-epochs each, Adam 1e-3, x0.1 at half)
 * on the base classes' RGB images, one with the classification term in B1
 * (GTL_MODEL_REP_CLS_WEIGHT 1) and one without (0); cached in --cache.
 * Every method runs on the same 5-way 1-shot episodes (the first method
 * draws them; a method list run in another process draws the same ones).
 * One line per method and protocol on stdout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "demo_eval.h"

enum { SIDE = 16, FD = SIDE * SIDE };

typedef struct mdef {
    const char *id;
    const char *name;
    demo_kind kind;
    int head;  /* 0: B1 without the classification term, 1: with it */
    demo_gtl_cfg cfg;
} mdef;

/* Raw 16 x 16 gray pixels of every image. */
static void standin_features(const demo_data *d, demo_feats *f)
{
    memset(f, 0, sizeof *f);
    f->dim = FD;
    f->n_rows = d->n_images;
    f->x = ex_calloc((size_t)(d->n_images * FD), sizeof(float));
    f->view_row = ex_malloc(sizeof(int64_t) * (size_t)d->n_images);
    float img[3 * FD];
    for (int64_t i = 0; i < d->n_images; i++) {
        f->view_row[i] = -1;
        int32_t split = d->classes[d->images[i].cls].split;
        if (split != DEMO_BASE && split != DEMO_NOVEL)
            continue;
        EX_CHECK(gtl_image_load(d->images[i].path, SIDE, img, 3 * FD));
        for (int64_t p = 0; p < FD; p++)
            f->x[i * FD + p] = (img[p] + img[FD + p] + img[2 * FD + p]) / 3.0f;
    }
}

static gtl_optimizer *adam(int64_t n_steps)
{
    gtl_optimizer *o = NULL;
    EX_CHECK(gtl_optimizer_create(GTL_OPTIM_ADAM, &o));
    EX_CHECK(gtl_optimizer_set_f32(o, GTL_OPTIM_PARAM_LR, 1e-3f));
    EX_CHECK(gtl_optimizer_set_f32(o, GTL_OPTIM_PARAM_WEIGHT_DECAY, 1e-4f));
    EX_CHECK(gtl_optimizer_set_f32(o, GTL_OPTIM_PARAM_CLIP_NORM, 2.0f));
    int64_t half = n_steps / 2;
    if (half >= 1)
        EX_CHECK(gtl_optimizer_set_milestones(o, &half, 1));
    return o;
}

static gtl_model *head(const demo_data *d, const demo_feats *f, float gamma, int64_t epochs,
                       const char *cache)
{
    char *path = ex_fmt("%s/head-standin16-g%g-%lld.gtl", cache, (double)gamma,
                        (long long)epochs);
    gtl_model *m = NULL;
    if (ex_file_exists(path) && gtl_model_load(path, &m, NULL) == GTL_STATUS_OK) {
        free(path);
        return m;
    }
    gtl_dataset *base = NULL;
    EX_CHECK(gtl_dataset_create(FD, &base));
    for (int64_t i = 0; i < d->n_images; i++) {
        const demo_image *im = &d->images[i];
        if (d->classes[im->cls].split != DEMO_BASE || im->modality != GTL_MODALITY_RGB)
            continue;
        int64_t y = im->cls;
        int32_t mod = im->modality;
        EX_CHECK(gtl_dataset_add(base, f->x + FD * i, 1, &y, &mod, NULL));
    }
    int64_t n = 0;
    EX_CHECK(gtl_dataset_remap_labels(base, NULL, 0, NULL));
    EX_CHECK(gtl_dataset_size(base, &n));
    EX_CHECK(gtl_model_create(&m));
    EX_CHECK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, FD));
    EX_CHECK(gtl_model_set_f32(m, GTL_MODEL_REP_CLS_WEIGHT, gamma));
    double t0 = ex_now();
    int64_t steps = epochs * ((n + 63) / 64);
    gtl_optimizer *o = adam(steps);
    EX_CHECK(gtl_model_train_stage(m, o, GTL_STAGE_B1, base, epochs, NULL, NULL));
    gtl_optimizer_destroy(o);
    o = adam(steps);
    EX_CHECK(gtl_model_train_stage(m, o, GTL_STAGE_B2, base, epochs, NULL, NULL));
    gtl_optimizer_destroy(o);
    gtl_dataset_destroy(base);
    fprintf(stderr, "head (B1 gamma %g): %.0f s\n", (double)gamma, ex_now() - t0);
    if (gtl_model_save(m, NULL, path) != GTL_STATUS_OK)
        fprintf(stderr, "warning: cannot cache the head: %s\n", gtl_last_error());
    free(path);
    return m;
}

/* Whether id is one of the comma-separated names in list. */
static int listed(const char *list, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = list; (p = strstr(p, id)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = "data-cache", *cache = "standin-out", *only = NULL, *proto = NULL;
    int64_t n_ep = 100, epochs = 30;
    int threads = 0, workers = 1; /* --workers: GTL episodes in parallel (gtl-demo's) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            ex_die("%s needs a value (see the comment at the top of gtl_standin.c)", a);
        if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--cache"))
            cache = v;
        else if (!strcmp(a, "--methods"))
            only = v;
        else if (!strcmp(a, "--protocol"))
            proto = v;
        else if (!strcmp(a, "--episodes"))
            n_ep = atoll(v);
        else if (!strcmp(a, "--b1-epochs"))
            epochs = atoll(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--workers"))
            workers = atoi(v);
        else
            ex_die("unknown option %s", a);
        i++;
    }
    if (threads > 0)
        EX_CHECK(gtl_set_num_threads(threads));
    if (ex_mkdirs(cache) != 0)
        return 1;
    demo_data d;
    if (demo_data_load(data, DEMO_TWINS_KEEP_ONE, 0, 0, 0, &d) != 0)
        return 1;
    demo_feats f;
    standin_features(&d, &f);
    gtl_model *heads[2] = {head(&d, &f, 0.0f, epochs, cache), head(&d, &f, 1.0f, epochs, cache)};
    gtl_dataset *src = demo_novel_source(&d, &f, NULL);

    /* "old": the library before the fixes (C_t from 0 in N1, no
     * classification term); fix 1: C_t = C_max from N1's first step; fix 2:
     * the classification term in B1 and N1 (gamma 1). */
    demo_gtl_cfg old, fix1, fix2, both, c;
    demo_gtl_cfg_none(&old);
    old.capacity_start = 0.0f;
    old.rep_cls_weight = 0.0f;
    fix1 = old;
    fix1.capacity_start = 1.0f;
    fix2 = old;
    fix2.rep_cls_weight = 1.0f;
    both = fix1;
    both.rep_cls_weight = 1.0f;
    mdef M[24];
    int nm = 0;
    M[nm++] = (mdef){"nc", "nearest centroid (cosine)", DEMO_M_NC, 0, old};
    M[nm++] = (mdef){"nc_centred", "centred nearest centroid", DEMO_M_NC_CENTRED, 0, old};
    M[nm++] = (mdef){"probe", "linear probe", DEMO_M_PROBE, 0, old};
    M[nm++] = (mdef){"zc_nc", "NC on z_c (B1, gamma 0)", DEMO_M_GTL_ZC_NC, 0, old};
    M[nm++] = (mdef){"zc_nc_g1", "NC on z_c (B1, gamma 1)", DEMO_M_GTL_ZC_NC, 1, old};
    M[nm++] = (mdef){"gtl_old", "GTL, old defaults", DEMO_M_GTL, 0, old};
    M[nm++] = (mdef){"gtl_fix1", "GTL, fix 1 (C_t = C_max)", DEMO_M_GTL, 0, fix1};
    M[nm++] = (mdef){"gtl_fix2", "GTL, fix 2 (gamma 1)", DEMO_M_GTL, 1, fix2};
    M[nm++] = (mdef){"gtl_both", "GTL, fixes 1 + 2", DEMO_M_GTL, 1, both};
    c = old;
    c.capacity_start = 0.25f;
    M[nm++] = (mdef){"gtl_start025", "GTL, C_t from C_max/4", DEMO_M_GTL, 0, c};
    c = old;
    c.beta = 0.0f;
    M[nm++] = (mdef){"gtl_beta0", "GTL, N1 without KL", DEMO_M_GTL, 0, c};
    c = both;
    c.n1_epochs = 0;
    M[nm++] = (mdef){"gtl_both_n2", "GTL, B1 gamma 1, N2 only", DEMO_M_GTL, 1, c};
    c = fix1;
    c.rep_cls_weight = 1.0f;
    M[nm++] = (mdef){"gtl_b1g0_n1g1", "GTL, B1 gamma 0, N1 gamma 1 + fix 1", DEMO_M_GTL, 0, c};
    for (int p = 0; p < DEMO_N_PROTOCOLS; p++) {
        if (proto && strcmp(proto, demo_protocols[p].id) != 0)
            continue;
        demo_setting s = {p, 1, 0};
        int64_t *list = NULL;
        size_t ln = 0;
        for (int k = 0; k < nm; k++) {
            /* nearest centroid always runs first: it draws the episodes */
            if (only && k > 0 && !listed(only, M[k].id))
                continue;
            demo_method m = {0};
            m.id = M[k].id;
            m.name = M[k].name;
            m.kind = M[k].kind;
            m.feats = &f;
            m.src = src;
            m.model = heads[M[k].head];
            m.gtl = M[k].cfg;
            demo_result r;
            char lab[96];
            snprintf(lab, sizeof lab, "%s %s", demo_protocols[p].id, M[k].id);
            int par = m.kind == DEMO_M_GTL || m.kind == DEMO_M_GTL_IMPRINT ? workers : 1;
            if (demo_run(&m, &s, n_ep, 0, &list, &ln, &r, lab, par) != 0)
                return 1;
            printf("%-12s %-16s %-36s %5.1f +- %4.1f  (%lld episodes, %.2f s/episode)\n",
                   demo_protocols[p].name, M[k].id, M[k].name, 100 * r.mean, 100 * r.ci,
                   (long long)r.n_episodes, r.seconds / (double)n_ep);
            fflush(stdout);
        }
        free(list);
    }
    gtl_dataset_destroy(src);
    gtl_model_destroy(heads[0]);
    gtl_model_destroy(heads[1]);
    demo_feats_free(&f);
    demo_data_free(&d);
    return 0;
}
