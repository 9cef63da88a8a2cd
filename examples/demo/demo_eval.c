/* demo_eval: every method runs as a host callback of libgtl's evaluator
 * (GTL_EVAL_CALLBACK), so that all of them see exactly the same episodes
 * (the first method draws them, the others replay the saved list) and so
 * that K-shot supports can be completed with augmented views: an episode is
 * drawn with one image per class and support modality, and a K-shot method
 * adds the K - 1 cached augmented views of each support image (found through
 * the pair id, which is the image index). Queries are always original,
 * un-augmented images of other styles (or the other modality).
 *
 * Shapes: F feature size, N way, S support rows, Q query rows, Nc concept size. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "demo_eval.h"

#define BIT(m) GTL_MODALITY_BIT(m)

const demo_protocol demo_protocols[DEMO_N_PROTOCOLS] = {
    {"cfsl", "CFSL", BIT(GTL_MODALITY_RGB) | BIT(GTL_MODALITY_SKETCH), BIT(GTL_MODALITY_RGB), 2},
    {"rgb2sketch", "RGB->sketch", BIT(GTL_MODALITY_RGB), BIT(GTL_MODALITY_SKETCH), 1},
    {"sketch2rgb", "sketch->RGB", BIT(GTL_MODALITY_SKETCH), BIT(GTL_MODALITY_RGB), 3},
};

void demo_gtl_cfg_none(demo_gtl_cfg *c)
{
    c->n1_epochs = -1;
    c->n2_epochs = -1;
    c->n1_lr = NAN;
    c->n2_lr = NAN;
    c->freeze_generator = -1;
    c->cls_use_mean = -1;
    c->beta = NAN;
    c->capacity_rate_novel = NAN;
    c->capacity_start = NAN;
    c->rep_cls_weight = NAN;
}

int demo_feats_failed(const demo_feats *f, int64_t i)
{
    const float *x = f->x + f->dim * i;
    for (int64_t k = 0; k < f->dim; k++)
        if (x[k] != 0.0f)
            return 0;
    return 1;
}

gtl_dataset *demo_novel_source(const demo_data *d, const demo_feats *f, const demo_feats *also)
{
    /* A class with an image that could not be loaded is left out whole (in
     * both feature sets alike): every protocol needs each class in both
     * modalities. */
    uint8_t *bad = ex_calloc((size_t)d->n_classes, 1);
    for (int64_t i = 0; i < d->n_images; i++)
        if (demo_feats_failed(f, i) || (also != NULL && demo_feats_failed(also, i)))
            bad[d->images[i].cls] = 1;
    gtl_dataset *ds = NULL;
    EX_CHECK(gtl_dataset_create(f->dim, &ds));
    for (int64_t i = 0; i < d->n_images; i++) {
        const demo_image *im = &d->images[i];
        if (d->classes[im->cls].split != DEMO_NOVEL || bad[im->cls])
            continue;
        int64_t y = im->cls, pair = i;
        int32_t mod = im->modality;
        EX_CHECK(gtl_dataset_add(ds, f->x + f->dim * i, 1, &y, &mod, &pair));
    }
    free(bad);
    return ds;
}

/* ---- helpers on datasets ---------------------------------------------------- */

typedef struct rows {
    int64_t n, dim;
    float *x;       /* (n, F) */
    int64_t *y;     /* (n) */
    int32_t *mod;   /* (n) */
    int64_t *pair;  /* (n) */
} rows;

static void rows_get(const gtl_dataset *ds, rows *r)
{
    EX_CHECK(gtl_dataset_size(ds, &r->n));
    EX_CHECK(gtl_dataset_feature_dim(ds, &r->dim));
    r->x = ex_malloc(sizeof(float) * (size_t)(r->n * r->dim));
    r->y = ex_malloc(sizeof(int64_t) * (size_t)r->n);
    r->mod = ex_malloc(sizeof(int32_t) * (size_t)r->n);
    r->pair = ex_malloc(sizeof(int64_t) * (size_t)r->n);
    for (int64_t i = 0; i < r->n; i++)
        EX_CHECK(gtl_dataset_get(ds, i, r->x + r->dim * i, (size_t)r->dim, &r->y[i], &r->mod[i],
                                 &r->pair[i]));
}

static void rows_free(rows *r)
{
    free(r->x);
    free(r->y);
    free(r->mod);
    free(r->pair);
}

/* The K-shot support: each support row followed by shots - 1 of its views. */
static gtl_dataset *expand_support(const demo_method *m, const rows *s)
{
    const demo_feats *f = m->feats;
    gtl_dataset *ds = NULL;
    EX_CHECK(gtl_dataset_create(f->dim, &ds));
    for (int64_t i = 0; i < s->n; i++) {
        EX_CHECK(gtl_dataset_add(ds, s->x + s->dim * i, 1, &s->y[i], &s->mod[i], &s->pair[i]));
        int64_t vr = s->pair[i] >= 0 ? f->view_row[s->pair[i]] : -1;
        for (int64_t v = 0; v + 1 < m->shots; v++) {
            if (vr < 0 || v >= f->n_views)
                ex_die("%lld-shot support needs %lld augmented views per image (have %lld)",
                       (long long)m->shots, (long long)m->shots - 1, (long long)f->n_views);
            EX_CHECK(gtl_dataset_add(ds, f->x + f->dim * (vr + v), 1, &s->y[i], &s->mod[i],
                                     &s->pair[i]));
        }
    }
    return ds;
}

static int64_t find_tensor(const gtl_model *model, const char *name, int64_t *out_numel)
{
    int64_t n = 0;
    EX_CHECK(gtl_model_num_tensors(model, &n));
    for (int64_t i = 0; i < n; i++) {
        char buf[96];
        int64_t numel = 0;
        EX_CHECK(gtl_model_tensor_info(model, i, buf, sizeof buf, &numel, NULL));
        if (!strcmp(buf, name)) {
            if (out_numel)
                *out_numel = numel;
            return i;
        }
    }
    ex_die("the GTL head has no tensor %s", name);
}

static void apply_cfg(gtl_model *c, const demo_gtl_cfg *g)
{
    if (g->n1_epochs >= 0)
        EX_CHECK(gtl_model_set_i64(c, GTL_MODEL_N1_EPOCHS, g->n1_epochs));
    if (g->n2_epochs >= 0)
        EX_CHECK(gtl_model_set_i64(c, GTL_MODEL_N2_EPOCHS, g->n2_epochs));
    if (!isnan(g->n1_lr))
        EX_CHECK(gtl_model_set_f32(c, GTL_MODEL_N1_LR, g->n1_lr));
    if (!isnan(g->n2_lr))
        EX_CHECK(gtl_model_set_f32(c, GTL_MODEL_N2_LR, g->n2_lr));
    if (g->freeze_generator >= 0)
        EX_CHECK(gtl_model_set_i64(c, GTL_MODEL_FREEZE_GENERATOR, g->freeze_generator));
    if (g->cls_use_mean >= 0)
        EX_CHECK(gtl_model_set_i64(c, GTL_MODEL_CLS_USE_MEAN, g->cls_use_mean));
    if (!isnan(g->beta))
        EX_CHECK(gtl_model_set_f32(c, GTL_MODEL_BETA, g->beta));
    if (!isnan(g->capacity_rate_novel))
        EX_CHECK(gtl_model_set_f32(c, GTL_MODEL_CAPACITY_RATE_NOVEL, g->capacity_rate_novel));
    if (!isnan(g->capacity_start))
        EX_CHECK(gtl_model_set_f32(c, GTL_MODEL_CAPACITY_START_NOVEL, g->capacity_start));
    if (!isnan(g->rep_cls_weight))
        EX_CHECK(gtl_model_set_f32(c, GTL_MODEL_REP_CLS_WEIGHT, g->rep_cls_weight));
}

/* An Adam optimizer with gtl_adapt's schedule (docs/method.md) for a stage of
 * n_steps steps of per_epoch steps each. */
static gtl_optimizer *adapt_optimizer(const gtl_model *m, float lr, int64_t n_steps,
                                      int64_t per_epoch)
{
    gtl_optimizer *opt = NULL;
    float wd = 0, clip = 0;
    int64_t warm_epochs = 0;
    EX_CHECK(gtl_model_get_f32(m, GTL_MODEL_WEIGHT_DECAY, &wd));
    EX_CHECK(gtl_model_get_f32(m, GTL_MODEL_CLIP_NORM, &clip));
    EX_CHECK(gtl_model_get_i64(m, GTL_MODEL_WARMUP_EPOCHS, &warm_epochs));
    EX_CHECK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, lr));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, wd));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, clip));
    int64_t warm = warm_epochs * per_epoch;
    if (warm >= n_steps)
        warm = n_steps / 4;
    EX_CHECK(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, warm));
    if (n_steps >= 2) {
        int64_t half = n_steps / 2;
        EX_CHECK(gtl_optimizer_set_milestones(opt, &half, 1));
    }
    return opt;
}

/* Imprinting: after N1 (gtl_adapt with N2_EPOCHS = 0, which leaves a fresh
 * N2 classifier), the classifier rows are set to the normalised class means
 * of the support's standardised projections BN(W_r z_c) (batch statistics of
 * the support, as batch norm sees them in training), the class centers to
 * the class means of f = W_r z_c, then N2 trains from there with gtl_adapt's
 * schedule. */
static void imprint_and_train(gtl_model *c, const gtl_dataset *sup, int64_t n2_epochs, float lr)
{
    rows s;
    rows_get(sup, &s);
    int64_t n_cls = 0, nc = 0, F = s.dim;
    EX_CHECK(gtl_dataset_num_classes(sup, &n_cls, NULL));
    EX_CHECK(gtl_model_get_i64(c, GTL_MODEL_CONCEPT_DIM, &nc));
    float *z = ex_malloc(sizeof(float) * (size_t)(s.n * nc));                 /* (S, Nc) */
    EX_CHECK(gtl_model_latent(c, GTL_LATENT_CONCEPT, s.x, s.n, F, z, (size_t)(s.n * nc)));
    int64_t n_wr = 0, n_fc = 0, n_ce = 0;
    int64_t i_wr = find_tensor(c, "classifier.proj.weight", &n_wr);         /* (F, Nc) */
    int64_t i_fc = find_tensor(c, "classifier.fc.weight", &n_fc);           /* (C, F) */
    int64_t i_ce = find_tensor(c, "classifier.centers", &n_ce);             /* (C, F) */
    if (n_wr != F * nc || n_fc != n_cls * F || n_ce != n_cls * F)
        ex_die("imprint: unexpected classifier shapes");
    float *wr = ex_malloc(sizeof(float) * (size_t)n_wr);
    EX_CHECK(gtl_model_tensor_get(c, i_wr, 0, wr, (size_t)n_wr));
    float *f = ex_calloc((size_t)(s.n * F), sizeof(float));                  /* (S, F) */
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < F; o++) {
            double acc = 0;
            for (int64_t k = 0; k < nc; k++)
                acc += (double)wr[o * nc + k] * z[i * nc + k];
            f[i * F + o] = (float)acc;
        }
    double *mean = ex_calloc((size_t)F, sizeof(double)), *var = ex_calloc((size_t)F, sizeof(double));
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < F; o++)
            mean[o] += f[i * F + o] / (double)s.n;
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < F; o++)
            var[o] += (f[i * F + o] - mean[o]) * (f[i * F + o] - mean[o]) / (double)s.n;
    float *fc = ex_calloc((size_t)n_fc, sizeof(float));
    float *ce = ex_calloc((size_t)n_ce, sizeof(float));
    int64_t *cnt = ex_calloc((size_t)n_cls, sizeof(int64_t));
    for (int64_t i = 0; i < s.n; i++) {
        int64_t y = s.y[i];
        cnt[y]++;
        for (int64_t o = 0; o < F; o++) {
            fc[y * F + o] += (float)((f[i * F + o] - mean[o]) / sqrt(var[o] + 1e-5));
            ce[y * F + o] += f[i * F + o];
        }
    }
    for (int64_t y = 0; y < n_cls; y++) {
        double nrm = 0;
        for (int64_t o = 0; o < F; o++) {
            ce[y * F + o] /= (float)(cnt[y] ? cnt[y] : 1);
            nrm += (double)fc[y * F + o] * fc[y * F + o];
        }
        nrm = sqrt(nrm) + 1e-12;
        for (int64_t o = 0; o < F; o++)
            fc[y * F + o] = (float)(fc[y * F + o] / nrm);
    }
    EX_CHECK(gtl_model_tensor_set(c, i_fc, fc, (size_t)n_fc));
    EX_CHECK(gtl_model_tensor_set(c, i_ce, ce, (size_t)n_ce));
    if (n2_epochs > 0) {
        int64_t p = 0, k = 0;
        EX_CHECK(gtl_model_get_i64(c, GTL_MODEL_BATCH_CLASSES, &p));
        EX_CHECK(gtl_model_get_i64(c, GTL_MODEL_BATCH_SAMPLES, &k));
        if (p > n_cls)
            p = n_cls;
        int64_t bs = p * k < 2 ? 2 : p * k;
        int64_t per_epoch = (s.n + bs - 1) / bs, n_steps = n2_epochs * per_epoch;
        gtl_optimizer *opt = adapt_optimizer(c, lr, n_steps, per_epoch);
        int64_t *idx = ex_malloc(sizeof(int64_t) * (size_t)bs);
        int64_t *y = ex_malloc(sizeof(int64_t) * (size_t)bs);
        float *x = ex_malloc(sizeof(float) * (size_t)(bs * F));
        uint64_t rng = 0x1234;
        for (int64_t st = 0; st < n_steps; st++) {
            int64_t nb = 0;
            EX_CHECK(gtl_dataset_identity_batch(sup, &rng, p, k, idx, (size_t)bs, &nb));
            for (int64_t i = 0; i < nb; i++) {
                memcpy(x + F * i, s.x + F * idx[i], sizeof(float) * (size_t)F);
                y[i] = s.y[idx[i]];
            }
            gtl_status r = gtl_model_train_step(c, opt, x, nb, F, y, NULL, 0);
            if (r != GTL_STATUS_NUMERIC)
                EX_CHECK(r);
        }
        gtl_optimizer_destroy(opt);
        free(idx);
        free(y);
        free(x);
    }
    free(z);
    free(wr);
    free(f);
    free(mean);
    free(var);
    free(fc);
    free(ce);
    free(cnt);
    rows_free(&s);
}

/* Nearest centroid in the head's z_c space (mu_c of the encoder). */
static gtl_status zc_nearest_centroid(gtl_model *model, const gtl_dataset *sup, const rows *q,
                                      int64_t *pred)
{
    rows s;
    rows_get(sup, &s);
    int64_t nc = 0;
    EX_CHECK(gtl_model_get_i64(model, GTL_MODEL_CONCEPT_DIM, &nc));
    float *zs = ex_malloc(sizeof(float) * (size_t)(s.n * nc));
    float *zq = ex_malloc(sizeof(float) * (size_t)(q->n * nc));
    EX_CHECK(gtl_model_latent(model, GTL_LATENT_CONCEPT, s.x, s.n, s.dim, zs, (size_t)(s.n * nc)));
    EX_CHECK(gtl_model_latent(model, GTL_LATENT_CONCEPT, q->x, q->n, q->dim, zq,
                              (size_t)(q->n * nc)));
    gtl_dataset *ds = NULL, *dq = NULL;
    EX_CHECK(gtl_dataset_create(nc, &ds));
    EX_CHECK(gtl_dataset_create(nc, &dq));
    EX_CHECK(gtl_dataset_add(ds, zs, s.n, s.y, s.mod, NULL));
    EX_CHECK(gtl_dataset_add(dq, zq, q->n, q->y, q->mod, NULL));
    gtl_status st = gtl_eval_nearest_centroid(ds, dq, 1, pred, (size_t)q->n, NULL, 0);
    gtl_dataset_destroy(ds);
    gtl_dataset_destroy(dq);
    free(zs);
    free(zq);
    rows_free(&s);
    return st;
}

static gtl_status method_cb(void *ud, const gtl_dataset *support, const gtl_dataset *query,
                            int64_t *out_pred)
{
    demo_method *m = ud;
    double t0 = ex_now();
    rows s, q;
    rows_get(support, &s);
    rows_get(query, &q);
    gtl_dataset *sup = expand_support(m, &s);
    gtl_status st = GTL_STATUS_OK;
    switch (m->kind) {
    case DEMO_M_NC:
    case DEMO_M_NC_CENTRED:
        st = gtl_eval_nearest_centroid(sup, query, m->kind == DEMO_M_NC_CENTRED, out_pred,
                                       (size_t)q.n, NULL, 0);
        break;
    case DEMO_M_PROBE:
        st = gtl_eval_linear_probe(sup, query, 100, 0.01f, out_pred, (size_t)q.n, NULL, 0);
        break;
    case DEMO_M_GTL_ZC_NC:
        st = zc_nearest_centroid(m->model, sup, &q, out_pred);
        break;
    case DEMO_M_GTL:
    case DEMO_M_GTL_IMPRINT: {
        gtl_model *c = NULL;
        st = gtl_model_clone(m->model, &c);
        if (st != GTL_STATUS_OK)
            break;
        apply_cfg(c, &m->gtl);
        int64_t e2 = 0;
        float lr2 = 0;
        if (m->kind == DEMO_M_GTL_IMPRINT) {
            EX_CHECK(gtl_model_get_i64(c, GTL_MODEL_N2_EPOCHS, &e2));
            EX_CHECK(gtl_model_get_f32(c, GTL_MODEL_N2_LR, &lr2));
            EX_CHECK(gtl_model_set_i64(c, GTL_MODEL_N2_EPOCHS, 0));
        }
        st = gtl_adapt(c, sup, NULL, NULL);
        if (st == GTL_STATUS_OK && m->kind == DEMO_M_GTL_IMPRINT)
            imprint_and_train(c, sup, e2, lr2);
        if (st == GTL_STATUS_OK)
            st = gtl_model_predict(c, q.x, q.n, q.dim, out_pred, NULL, 0);
        gtl_model_destroy(c);
        break;
    }
    }
    gtl_dataset_destroy(sup);
    rows_free(&s);
    rows_free(&q);
    m->seconds += ex_now() - t0;
    return st;
}

typedef struct prog_ud {
    ex_progress pr;
    pthread_mutex_t mu;  /* workers share one bar */
    int64_t done;        /* episodes finished by all workers */
    double acc_sum;
} prog_ud;

static int on_episode(void *ud, int64_t episode, int64_t n_episodes, double accuracy)
{
    (void)episode;
    (void)n_episodes;
    prog_ud *p = ud;
    pthread_mutex_lock(&p->mu);
    p->acc_sum += accuracy;
    p->done++;
    char extra[64];
    snprintf(extra, sizeof extra, "acc %.1f%%", 100.0 * p->acc_sum / (double)p->done);
    ex_progress_update(&p->pr, p->done, extra);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static gtl_evaluator *make_evaluator(demo_method *m, const demo_protocol *p, int64_t n_episodes,
                                     uint64_t seed, prog_ud *pu)
{
    gtl_evaluator *ev = NULL;
    EX_CHECK(gtl_evaluator_create(GTL_EVAL_CALLBACK, &ev));
    EX_CHECK(gtl_evaluator_set_callback(ev, method_cb, m));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 5));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, 1));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_Q_QUERY, p->q_query));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_EPISODES, n_episodes));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_SEED, (int64_t)(seed & INT64_MAX)));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_SUPPORT_MODALITIES, p->support_mask));
    EX_CHECK(gtl_evaluator_set_i64(ev, GTL_EVAL_QUERY_MODALITIES, p->query_mask));
    EX_CHECK(gtl_evaluator_set_progress(ev, on_episode, pu));
    return ev;
}

/* One worker of a parallel replay: its share of the episode list, its own
 * copy of the method (timing) and evaluator, one compute thread. */
typedef struct worker {
    demo_method m;
    const demo_protocol *p;
    const int64_t *list;
    size_t list_n;
    int64_t n_episodes;
    uint64_t seed;
    prog_ud *pu;
    gtl_evaluator *ev;
    gtl_status st;
    char err[512];
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    EX_CHECK(gtl_set_num_threads(1));
    w->ev = make_evaluator(&w->m, w->p, w->n_episodes, w->seed, w->pu);
    w->st = gtl_evaluator_run_episode_list(w->ev, w->m.src, w->list, w->list_n);
    if (w->st != GTL_STATUS_OK)
        snprintf(w->err, sizeof w->err, "%s", gtl_last_error());
    return NULL;
}

/* Episodes in a list (format: eval.h) and the offset of episode e. */
static size_t list_offset(const int64_t *list, size_t len, int64_t e, int64_t *out_count)
{
    size_t pos = 0, at = len;
    int64_t k = 0;
    while (pos + 3 <= len) {
        if (k == e)
            at = pos;
        pos += 3 + (size_t)(list[pos] + list[pos + 1] + list[pos + 2]);
        k++;
    }
    if (out_count)
        *out_count = k;
    return e >= k ? len : at;
}

/* Mean and CI of concatenated per-episode accuracies of the workers. */
static void merge_results(worker *w, int n_workers, int32_t modality, double *mean, double *ci,
                          int64_t *n_used)
{
    int64_t total = 0;
    for (int i = 0; i < n_workers; i++) {
        int64_t n = 0;
        EX_CHECK(gtl_evaluator_accuracies(w[i].ev, modality, NULL, 0, &n));
        total += n;
    }
    double *acc = ex_malloc(sizeof(double) * (size_t)(total ? total : 1));
    int64_t at = 0;
    for (int i = 0; i < n_workers; i++) {
        int64_t n = 0;
        EX_CHECK(gtl_evaluator_accuracies(w[i].ev, modality, acc + at, (size_t)(total - at), &n));
        at += n;
    }
    *mean = NAN;
    *ci = NAN;
    if (n_used)
        *n_used = 0;
    if (total > 0 && gtl_eval_mean_ci(acc, total, mean, ci, n_used) != GTL_STATUS_OK)
        ex_die("merge_results: %s", gtl_last_error());
    free(acc);
}

int demo_run(demo_method *m, const demo_setting *s, int64_t n_episodes, uint64_t seed,
             int64_t **list, size_t *list_n, demo_result *out, const char *label, int workers)
{
    memset(out, 0, sizeof *out);
    const demo_protocol *p = &demo_protocols[s->protocol];
    prog_ud pu;
    memset(&pu, 0, sizeof pu);
    pthread_mutex_init(&pu.mu, NULL);
    m->shots = s->shots;
    m->seconds = 0;
    int64_t n_in_list = 0;
    if (*list)
        list_offset(*list, *list_n, 0, &n_in_list);
    if (workers > n_in_list)
        workers = (int)n_in_list;
    ex_progress_start(&pu.pr, label, s->all_way ? 1 : n_episodes);
    double t0 = ex_now();
    if (*list && workers >= 2) {
        /* Replay in parallel: contiguous shares of the list, one thread each
         * (handles are per worker; the pretrained head is only read). */
        worker *w = ex_calloc((size_t)workers, sizeof(worker));
        pthread_t *tid = ex_calloc((size_t)workers, sizeof(pthread_t));
        for (int i = 0; i < workers; i++) {
            int64_t e0 = n_in_list * i / workers, e1 = n_in_list * (i + 1) / workers;
            size_t a = list_offset(*list, *list_n, e0, NULL);
            size_t b = list_offset(*list, *list_n, e1, NULL);
            w[i].m = *m;
            w[i].p = p;
            w[i].list = *list + a;
            w[i].list_n = b - a;
            w[i].n_episodes = e1 - e0;
            w[i].seed = seed;
            w[i].pu = &pu;
            if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0)
                ex_die("cannot start an evaluation thread");
        }
        for (int i = 0; i < workers; i++)
            pthread_join(tid[i], NULL);
        ex_progress_end(&pu.pr);
        for (int i = 0; i < workers; i++)
            if (w[i].st != GTL_STATUS_OK) {
                fprintf(stderr, "error: %s: %s: %s\n", label, gtl_strerror(w[i].st), w[i].err);
                return -1;
            }
        merge_results(w, workers, GTL_EVAL_TOTAL, &out->mean, &out->ci, &out->n_episodes);
        for (int32_t k = 0; k < 2; k++)
            merge_results(w, workers, k, &out->mod_mean[k], &out->mod_ci[k], NULL);
        for (int i = 0; i < workers; i++) {
            m->seconds += w[i].m.seconds;
            gtl_evaluator_destroy(w[i].ev);
        }
        free(w);
        free(tid);
        out->seconds = ex_now() - t0;
        out->valid = 1;
        pthread_mutex_destroy(&pu.mu);
        return 0;
    }
    gtl_evaluator *ev = make_evaluator(m, p, n_episodes, seed, &pu);
    gtl_status st;
    if (*list)
        st = gtl_evaluator_run_episode_list(ev, m->src, *list, *list_n);
    else if (s->all_way)
        st = gtl_evaluator_run_all_way(ev, m->src);
    else
        st = gtl_evaluator_run_episodic(ev, m->src);
    ex_progress_end(&pu.pr);
    pthread_mutex_destroy(&pu.mu);
    if (st != GTL_STATUS_OK) {
        fprintf(stderr, "error: %s: %s: %s\n", label, gtl_strerror(st), gtl_last_error());
        gtl_evaluator_destroy(ev);
        return -1;
    }
    out->seconds = ex_now() - t0;
    if (!*list) {
        size_t n = 0;
        EX_CHECK(gtl_evaluator_episode_list(ev, NULL, 0, &n));
        *list = ex_malloc(sizeof(int64_t) * n);
        EX_CHECK(gtl_evaluator_episode_list(ev, *list, n, &n));
        *list_n = n;
    }
    EX_CHECK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &out->mean, &out->ci, &out->n_episodes));
    for (int32_t k = 0; k < 2; k++)
        EX_CHECK(gtl_evaluator_result(ev, k, &out->mod_mean[k], &out->mod_ci[k], NULL));
    out->valid = 1;
    gtl_evaluator_destroy(ev);
    return 0;
}
