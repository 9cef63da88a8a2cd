/* demo_features: the image backbone (trained from scratch on the base
 * classes' RGB images, or imported CLIP weights), feature extraction with an
 * on-disk cache, and the raw-pixel features of the floor baseline.
 *
 * Shapes: N images, F feature size, V augmented views per novel image,
 * S the backbone's input side. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "demo_features.h"

/* splitmix64 step: per-image, per-view augmentation seeds. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void demo_bb_opts_default(demo_bb_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = DEMO_BB_STEPS;
    o->max_classes = 0;
    o->batch = 64;
    o->lr = 1e-3f;
    o->weight_decay = 5e-4f;
    o->cross_style = 1;
    o->edge_prob = 0.25f;
    o->aug_flags = GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_COLOR | GTL_AUGMENT_GRAY;
    o->seed = 0;
    o->optimizer = GTL_OPTIM_ADAM;
    o->loss = GTL_BACKBONE_LOSS_SUPCON;
    o->temperature = 0.1f;
}

uint64_t demo_bb_opts_key(const demo_bb_opts *o, uint64_t data_key)
{
    char buf[256];
    snprintf(buf, sizeof buf, "bb4|%d|%.4g|%lld|%lld|%.6g|%.6g|%d|%.4g|%u|%llu|%d|%lld|%llx",
             (int)o->loss, (double)o->temperature,
             (long long)o->steps, (long long)o->batch, (double)o->lr, (double)o->weight_decay,
             o->cross_style, (double)o->edge_prob, (unsigned)o->aug_flags,
             (unsigned long long)o->seed, (int)o->optimizer, (long long)o->max_classes,
             (unsigned long long)data_key);
    return ex_fnv(EX_FNV_INIT, buf, strlen(buf));
}

/* The training images: base classes, RGB styles. Labels 0..C-1 in class order. */
typedef struct bb_pool {
    int64_t n_classes;
    int64_t *cls_start;  /* (C + 1): images of class c are idx[cls_start[c] .. cls_start[c+1]) */
    int64_t *idx;        /* image indices */
    int64_t n;
} bb_pool;

static void pool_build(const demo_data *d, int64_t max_classes, bb_pool *p)
{
    memset(p, 0, sizeof *p);
    int64_t *label = ex_malloc(sizeof(int64_t) * (size_t)d->n_classes);
    int64_t n_base = 0;
    for (int64_t c = 0; c < d->n_classes; c++)
        n_base += d->classes[c].split == DEMO_BASE;
    /* a subset: the classes whose name hash falls below the quantile */
    uint64_t cut = UINT64_MAX;
    if (max_classes > 0 && max_classes < n_base)
        cut = (uint64_t)((double)UINT64_MAX * ((double)max_classes / (double)n_base));
    for (int64_t c = 0; c < d->n_classes; c++) {
        const char *nm = d->classes[c].name;
        int keep = d->classes[c].split == DEMO_BASE &&
                   mix64(ex_fnv(EX_FNV_INIT, nm, strlen(nm))) <= cut;
        label[c] = keep ? p->n_classes++ : -1;
    }
    p->cls_start = ex_calloc((size_t)p->n_classes + 1, sizeof(int64_t));
    p->idx = ex_malloc(sizeof(int64_t) * (size_t)d->n_images);
    for (int64_t i = 0; i < d->n_images; i++) {
        const demo_image *im = &d->images[i];
        if (label[im->cls] >= 0 && im->modality == GTL_MODALITY_RGB)
            p->cls_start[label[im->cls] + 1]++;
    }
    for (int64_t c = 0; c < p->n_classes; c++)
        p->cls_start[c + 1] += p->cls_start[c];
    int64_t *fill = ex_calloc((size_t)p->n_classes, sizeof(int64_t));
    for (int64_t i = 0; i < d->n_images; i++) {
        const demo_image *im = &d->images[i];
        int64_t c = label[im->cls];
        if (c >= 0 && im->modality == GTL_MODALITY_RGB)
            p->idx[p->cls_start[c] + fill[c]++] = i;
    }
    p->n = p->cls_start[p->n_classes];
    free(fill);
    free(label);
}

static void pool_free(bb_pool *p)
{
    free(p->cls_start);
    free(p->idx);
}

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return mix64(*s);
}

static int64_t rng_below(uint64_t *s, int64_t n)
{
    return (int64_t)(rng_next(s) % (uint64_t)n);
}

static double rng_unif(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Fills one batch: image indices and labels. With cross_style, classes are
 * drawn without replacement and each contributes all its RGB renderings (3
 * styles) and then repeats, k = 4 views per class, so every batch holds the
 * same class in several styles; otherwise images are drawn uniformly. */
static void pool_batch(const bb_pool *p, int cross_style, int64_t n, uint64_t *rng,
                       int64_t *img, int64_t *lab)
{
    if (!cross_style) {
        for (int64_t i = 0; i < n; i++) {
            int64_t k = rng_below(rng, p->n);
            img[i] = p->idx[k];
            /* label: the class whose range holds k */
            int64_t lo = 0, hi = p->n_classes - 1;
            while (lo < hi) {
                int64_t mid = (lo + hi + 1) / 2;
                if (p->cls_start[mid] <= k)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            lab[i] = lo;
        }
        return;
    }
    const int64_t k = 4;
    int64_t i = 0;
    while (i < n) {
        int64_t c = rng_below(rng, p->n_classes);
        int dup = 0;
        for (int64_t j = 0; j < i; j++)
            dup |= lab[j] == c;
        if (dup && p->n_classes * k > n)
            continue;
        int64_t m = p->cls_start[c + 1] - p->cls_start[c];
        int64_t first = rng_below(rng, m);
        for (int64_t v = 0; v < k && i < n; v++, i++) {
            img[i] = p->idx[p->cls_start[c] + (first + v) % m];
            lab[i] = c;
        }
    }
}

typedef struct bb_loader {
    const demo_data *d;
    const demo_bb_opts *o;
    int32_t size;
    int64_t n_failed;
} bb_loader;

/* One augmented training view; a file that fails is reported and replaced
 * by zeros (it keeps its label). */
static void load_view(bb_loader *L, int64_t img, uint64_t *rng, float *dst, size_t cap)
{
    uint32_t flags = L->o->aug_flags;
    if (L->o->edge_prob > 0 && rng_unif(rng) < (double)L->o->edge_prob)
        flags = (flags & ~(uint32_t)(GTL_AUGMENT_COLOR | GTL_AUGMENT_GRAY)) | GTL_AUGMENT_EDGES;
    uint64_t s = rng_next(rng);
    gtl_status st = gtl_image_augment(L->d->images[img].path, flags, &s, L->size, dst, cap);
    if (st != GTL_STATUS_OK) {
        if (L->n_failed++ < 5)
            fprintf(stderr, "\nwarning: %s\n", gtl_last_error());
        memset(dst, 0, cap * sizeof(float));
    }
}

/* Centred nearest-centroid accuracy of the current backbone on the held-out
 * base classes (DEMO_VAL), 1-shot, 300 episodes per protocol, printed. */
static void val_eval(const demo_data *d, gtl_backbone *bb, int64_t step)
{
    int64_t size = 0, dim = 0;
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &size));
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &dim));
    size_t per = (size_t)(3 * size * size);
    const int64_t batch = 32;
    float *x = ex_malloc(sizeof(float) * per * batch);
    float *f = ex_malloc(sizeof(float) * (size_t)(dim * batch));
    gtl_dataset *ds = NULL;
    EX_CHECK(gtl_dataset_create(dim, &ds));
    int64_t idx[32], nb = 0;
    for (int64_t i = 0; i <= d->n_images; i++) {
        if (i < d->n_images && d->classes[d->images[i].cls].split == DEMO_VAL) {
            if (gtl_image_load(d->images[i].path, (int32_t)size, x + per * (size_t)nb, per) !=
                GTL_STATUS_OK)
                continue;
            idx[nb++] = i;
        }
        if (nb == batch || (i == d->n_images && nb > 0)) {
            EX_CHECK(gtl_backbone_embed(bb, x, nb, f, (size_t)(dim * nb)));
            for (int64_t k = 0; k < nb; k++) {
                const demo_image *im = &d->images[idx[k]];
                int64_t y = im->cls, pair = idx[k];
                int32_t mod = im->modality;
                EX_CHECK(gtl_dataset_add(ds, f + dim * k, 1, &y, &mod, &pair));
            }
            nb = 0;
        }
    }
    static const uint32_t masks[3][2] = {{3, 1}, {1, 2}, {2, 1}};
    static const int64_t q[3] = {2, 1, 3};
    double acc[3] = {0};
    for (int p = 0; p < 3; p++) {
        gtl_evaluator *ev = NULL;
        EX_CHECK(gtl_evaluator_create(GTL_EVAL_CENTRED_CENTROID, &ev));
        EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_EPISODES, 300));
        EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_Q_QUERY, q[p]));
        EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_SUPPORT_MODALITIES, masks[p][0]));
        EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_QUERY_MODALITIES, masks[p][1]));
        EX_CHECK(gtl_evaluator_run_episodic(ev, ds));
        EX_CHECK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &acc[p], NULL, NULL));
        gtl_evaluator_destroy(ev);
    }
    fprintf(stderr, "\nval (%lld held-out base classes, centred NC 1-shot) step %lld: "
                    "CFSL %.1f  RGB->sketch %.1f  sketch->RGB %.1f\n",
            (long long)d->n_val, (long long)step, 100 * acc[0], 100 * acc[1], 100 * acc[2]);
    gtl_dataset_destroy(ds);
    free(x);
    free(f);
}

int demo_backbone_train(const demo_data *d, const demo_bb_opts *o, const char *save_path,
                        gtl_backbone **out, double *out_seconds)
{
    *out = NULL;
    bb_pool pool;
    pool_build(d, o->max_classes, &pool);
    if (pool.n_classes < 2) {
        fprintf(stderr, "error: need at least 2 base classes to train a backbone\n");
        pool_free(&pool);
        return -1;
    }
    double t0 = ex_now();
    gtl_backbone *bb = NULL;
    EX_CHECK(gtl_backbone_create(GTL_BACKBONE_RESNET_SMALL, &bb));
    EX_CHECK(gtl_backbone_set_i64(bb, GTL_BACKBONE_SEED, (int64_t)o->seed));
    if (o->loss != GTL_BACKBONE_LOSS_SUPCON)
        EX_CHECK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, pool.n_classes));
    EX_CHECK(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, o->loss));
    EX_CHECK(gtl_backbone_set_f32(bb, GTL_BACKBONE_TEMPERATURE, o->temperature));
    int64_t size = 0;
    EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &size));

    gtl_optimizer *opt = NULL;
    EX_CHECK(gtl_optimizer_create(o->optimizer, &opt));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, o->lr));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, o->weight_decay));
    if (o->optimizer == GTL_OPTIM_SGD) {
        EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, 0.9f));
        EX_CHECK(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_NESTEROV, 1));
    }
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, 5.0f));
    int64_t warm = o->steps / 20;
    EX_CHECK(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, warm));
    int64_t ms[2] = {o->steps / 2, (o->steps * 3) / 4};
    if (ms[0] >= 1 && ms[1] > ms[0])
        EX_CHECK(gtl_optimizer_set_milestones(opt, ms, 2));

    size_t per = (size_t)(3 * size * size);
    float *x = ex_malloc(sizeof(float) * per * (size_t)o->batch);
    int64_t *img = ex_malloc(sizeof(int64_t) * (size_t)o->batch);
    int64_t *lab = ex_malloc(sizeof(int64_t) * (size_t)o->batch);
    uint64_t rng = mix64(o->seed ^ 0xb0b0ull);
    bb_loader L = {d, o, (int32_t)size, 0};
    fprintf(stderr, "backbone: %lld base classes, %lld images, %lld steps of %lld\n",
            (long long)pool.n_classes, (long long)pool.n, (long long)o->steps,
            (long long)o->batch);
    ex_progress pr;
    ex_progress_start(&pr, "backbone training", o->steps);
    double loss_avg = 0, acc_avg = 0;
    if (o->eval_every > 0 && d->n_val > 0)
        val_eval(d, bb, 0); /* the untrained network: what training adds */
    for (int64_t s = 0; s < o->steps; s++) {
        pool_batch(&pool, o->cross_style, o->batch, &rng, img, lab);
        for (int64_t i = 0; i < o->batch; i++)
            load_view(&L, img[i], &rng, x + per * (size_t)i, per);
        float stats[4] = {0};
        gtl_status st = gtl_backbone_train_step(bb, opt, x, o->batch, lab, stats, 4);
        if (st == GTL_STATUS_NUMERIC) {
            fprintf(stderr, "\nwarning: step %lld skipped: %s\n", (long long)s, gtl_last_error());
            continue;
        }
        EX_CHECK(st);
        double a = s < 10 ? 0.5 : 0.05;
        loss_avg = s == 0 ? stats[0] : (1 - a) * loss_avg + a * stats[0];
        acc_avg = s == 0 ? stats[1] : (1 - a) * acc_avg + a * stats[1];
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.3f acc %.2f lr %.3g", loss_avg, acc_avg,
                 (double)stats[3]);
        ex_progress_update(&pr, s + 1, extra);
        if (o->eval_every > 0 && d->n_val > 0 && ((s + 1) % o->eval_every == 0 ||
                                                  s + 1 == o->steps))
            val_eval(d, bb, s + 1);
    }
    ex_progress_end(&pr);
    free(x);
    free(img);
    free(lab);
    gtl_optimizer_destroy(opt);
    pool_free(&pool);
    if (L.n_failed)
        fprintf(stderr, "warning: %lld training views could not be loaded\n",
                (long long)L.n_failed);
    if (save_path) {
        gtl_status st = gtl_backbone_save(bb, save_path);
        if (st != GTL_STATUS_OK)
            fprintf(stderr, "warning: cannot cache the backbone: %s\n", gtl_last_error());
    }
    if (out_seconds)
        *out_seconds = ex_now() - t0;
    *out = bb;
    return 0;
}

/* ---- features ---------------------------------------------------------------- */

/* Augmentation of the extra support views (K-shot with K > 1). */
static uint32_t view_flags(int32_t modality)
{
    return modality == GTL_MODALITY_SKETCH ? GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_STROKE
                                           : GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_COLOR;
}

/* Produces one preprocessed image (view < 0: the original) of side size. */
typedef gtl_status (*embed_fn)(void *ud, const float *imgs, int64_t n, float *dst,
                               size_t cap);

static gtl_status embed_backbone(void *ud, const float *imgs, int64_t n, float *dst, size_t cap)
{
    return gtl_backbone_embed((gtl_backbone *)ud, imgs, n, dst, cap);
}

/* Raw pixels: the preprocessed image itself is the feature. */
static gtl_status embed_raw(void *ud, const float *imgs, int64_t n, float *dst, size_t cap)
{
    (void)ud;
    memcpy(dst, imgs, sizeof(float) * cap);
    return GTL_STATUS_OK;
}

typedef struct job {
    int64_t img;
    int32_t view; /* -1: original */
    float *dst;
} job;

static int run_jobs(const demo_data *d, job *jobs, int64_t n_jobs, int32_t size, int64_t dim,
                    embed_fn fn, void *ud, int64_t batch, uint64_t seed, const char *label)
{
    size_t per = (size_t)(3 * size * size);
    float *x = ex_malloc(sizeof(float) * per * (size_t)batch);
    float *f = ex_malloc(sizeof(float) * (size_t)(dim * batch));
    ex_progress pr;
    ex_progress_start(&pr, label, n_jobs);
    int64_t n_failed = 0;
    for (int64_t j0 = 0; j0 < n_jobs; j0 += batch) {
        int64_t nb = n_jobs - j0 < batch ? n_jobs - j0 : batch;
        for (int64_t k = 0; k < nb; k++) {
            const job *jb = &jobs[j0 + k];
            const demo_image *im = &d->images[jb->img];
            gtl_status st;
            if (jb->view < 0) {
                st = gtl_image_load(im->path, size, x + per * (size_t)k, per);
            } else {
                uint64_t s = mix64(seed ^ mix64((uint64_t)jb->img * 64 + (uint64_t)jb->view));
                st = gtl_image_augment(im->path, view_flags(im->modality), &s, size,
                                       x + per * (size_t)k, per);
            }
            if (st != GTL_STATUS_OK) {
                if (n_failed++ < 5)
                    fprintf(stderr, "\nwarning: %s\n", gtl_last_error());
                memset(x + per * (size_t)k, 0, sizeof(float) * per);
            }
        }
        gtl_status st = fn(ud, x, nb, f, (size_t)(dim * nb));
        if (st != GTL_STATUS_OK) {
            fprintf(stderr, "\nerror: feature extraction: %s\n", gtl_last_error());
            free(x);
            free(f);
            return -1;
        }
        for (int64_t k = 0; k < nb; k++)
            memcpy(jobs[j0 + k].dst, f + dim * k, sizeof(float) * (size_t)dim);
        ex_progress_update(&pr, j0 + nb, NULL);
    }
    ex_progress_end(&pr);
    if (n_failed)
        fprintf(stderr, "warning: %lld images could not be loaded: they (and, for novel "
                        "classes, their whole class) are left out of the evaluation and the "
                        "GTL heads' training\n",
                (long long)n_failed);
    free(x);
    free(f);
    return 0;
}

int demo_features_compute(const demo_data *d, gtl_backbone *bb, int32_t raw_size,
                          int64_t n_views, uint64_t key, const char *cache_path,
                          const char *label, demo_feats *out)
{
    memset(out, 0, sizeof *out);
    int64_t size = raw_size, dim = 3 * (int64_t)raw_size * raw_size;
    if (bb) {
        EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &size));
        EX_CHECK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &dim));
    }
    /* rows: every image's original, then V views of each novel image */
    out->view_row = ex_malloc(sizeof(int64_t) * (size_t)d->n_images);
    int64_t n_rows = d->n_images;
    for (int64_t i = 0; i < d->n_images; i++) {
        int novel = d->classes[d->images[i].cls].split == DEMO_NOVEL;
        out->view_row[i] = novel && n_views > 0 ? n_rows : -1;
        if (novel)
            n_rows += n_views;
    }
    out->dim = dim;
    out->n_views = n_views;
    out->n_rows = n_rows;
    char buf[96];
    snprintf(buf, sizeof buf, "feat1|%lld|%lld|%d", (long long)n_views, (long long)dim,
             raw_size);
    key = ex_fnv(key, buf, strlen(buf));
    int64_t r = 0, c = 0;
    out->x = cache_path ? ex_mat_read(cache_path, key, &r, &c) : NULL;
    if (out->x && r == n_rows && c == dim) {
        fprintf(stderr, "%-22s cached (%s)\n", label, cache_path);
        out->cached = 1;
        return 0;
    }
    free(out->x);
    out->x = ex_calloc((size_t)(n_rows * dim), sizeof(float));
    job *jobs = ex_malloc(sizeof(job) * (size_t)n_rows);
    int64_t n_jobs = 0;
    for (int64_t i = 0; i < d->n_images; i++) {
        int32_t split = d->classes[d->images[i].cls].split;
        if (split != DEMO_BASE && split != DEMO_NOVEL)
            continue; /* not used: the row stays zero */
        jobs[n_jobs++] = (job){i, -1, out->x + dim * i};
        for (int64_t v = 0; out->view_row[i] >= 0 && v < n_views; v++)
            jobs[n_jobs++] = (job){i, (int32_t)v, out->x + dim * (out->view_row[i] + v)};
    }
    double t0 = ex_now();
    int rc = run_jobs(d, jobs, n_jobs, (int32_t)size, dim, bb ? embed_backbone : embed_raw, bb,
                      bb ? 32 : 64, 0x5eedull, label);
    free(jobs);
    out->seconds = ex_now() - t0;
    if (rc != 0) {
        demo_feats_free(out);
        return -1;
    }
    if (cache_path)
        ex_mat_write(cache_path, key, out->x, n_rows, dim);
    return 0;
}

void demo_feats_free(demo_feats *f)
{
    free(f->x);
    free(f->view_row);
    memset(f, 0, sizeof *f);
}
