/* Public training functions: stages, steps, whole stages and gtl_adapt(). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_model.h"

static const char *stage_name(int stage)
{
    static const char *names[4] = {"B1", "B2", "N1", "N2"};
    return stage >= 0 && stage < 4 ? names[stage] : "?";
}

/* Collects the active set's frozen parameters (and the centers, which follow
 * their own SGD) into the optimizer's skip group. */
static gtl_status build_skip_group(gtl_model *m)
{
    gtl__paramset *ps = m->active;
    int64_t *idx = gtl__realloc(m->frozen_idx, (size_t)(ps->n_params + 1) * sizeof(int64_t));
    if (idx == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_model_set_stage: out of memory");
    m->frozen_idx = idx;
    int64_t n = 0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        bool centers = ps == &m->head.cls && i == GTL__P_CLS_CENTERS;
        if (ps->frozen[i] || centers)
            idx[n++] = i;
    }
    m->n_frozen_idx = n;
    return GTL_STATUS_OK;
}

gtl_status gtl__model_configure_stage(gtl_model *model, gtl_stage stage)
{
    gtl__head *h = &model->head;
    bool cls_stage = stage == GTL_STAGE_B2 || stage == GTL_STAGE_N2;
    gtl_status st;
    bool est = h->cfg.estimator;
    bool fr[GTL__MOD_COUNT];
    bool rep_cls = !cls_stage && model->rep_cls;
    switch (stage) {
    case GTL_STAGE_B1:
        fr[GTL__MOD_ENCODER] = false;
        fr[GTL__MOD_ESTIMATOR] = !est;
        fr[GTL__MOD_GENERATOR] = false;
        fr[GTL__MOD_CLASSIFIER] = !rep_cls;
        break;
    case GTL_STAGE_N1:
        fr[GTL__MOD_ENCODER] = false;
        fr[GTL__MOD_ESTIMATOR] = !est;
        fr[GTL__MOD_GENERATOR] = model->iv[GTL_MODEL_FREEZE_GENERATOR] != 0;
        fr[GTL__MOD_CLASSIFIER] = !rep_cls;
        break;
    default: /* B2, N2 */
        fr[GTL__MOD_ENCODER] = true;
        fr[GTL__MOD_ESTIMATOR] = true;
        fr[GTL__MOD_GENERATOR] = true;
        fr[GTL__MOD_CLASSIFIER] = false;
        break;
    }
    for (int mod = 0; mod < GTL__MOD_COUNT; mod++)
        gtl__head_set_frozen(h, (gtl__module)mod, fr[mod]);
    model->active = cls_stage ? &h->cls : &h->body;
    st = gtl__paramset_alloc_grad(model->active);
    if (st == GTL_STATUS_OK && rep_cls) {
        /* The classification term trains projector, BNNeck and classifier;
         * the centers belong to L_cls only. */
        gtl__paramset_set_frozen(&h->cls, GTL__P_CLS_CENTERS, true);
        st = gtl__paramset_alloc_grad(&h->cls);
    }
    if (st == GTL_STATUS_OK)
        st = build_skip_group(model);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__paramset_zero_grad(model->active);
    if (rep_cls)
        gtl__paramset_zero_grad(&h->cls);
    return GTL_STATUS_OK;
}

gtl_status gtl_model_set_stage(gtl_model *model, gtl_stage stage, int64_t n_classes)
{
    gtl__clear_error();
    if (model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_set_stage: model is NULL");
    if ((int)stage < GTL_STAGE_B1 || (int)stage > GTL_STAGE_N2)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_set_stage: unknown stage %d",
                          (int)stage);
    bool cls_stage = stage == GTL_STAGE_B2 || stage == GTL_STAGE_N2;
    if (cls_stage && (n_classes < 1 || n_classes > ((int64_t)1 << 20)))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_model_set_stage: stage %s needs n_classes >= 1 (got %lld)",
                          stage_name(stage), (long long)n_classes);
    if (!cls_stage && (n_classes < 0 || n_classes > ((int64_t)1 << 20)))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_model_set_stage: n_classes %lld is out of range",
                          (long long)n_classes);
    gtl_status st = gtl__model_ensure_init(model, "gtl_model_set_stage");
    if (st != GTL_STATUS_OK)
        return st;
    gtl__head *h = &model->head;
    /* B1/N1 with classes and gamma > 0: the classification term, on a fresh
     * classifier for those classes. Otherwise L_rep alone (the classifier
     * stays as it is, frozen). */
    bool rep_cls = !cls_stage && n_classes >= 1 && model->fv[GTL_MODEL_REP_CLS_WEIGHT] > 0.0f;
    if (cls_stage || rep_cls) {
        st = gtl__head_reset_classifier(h, n_classes, &model->rng);
        if (st != GTL_STATUS_OK)
            return st;
    }
    model->rep_cls = rep_cls;
    st = gtl__model_configure_stage(model, stage);
    if (st != GTL_STATUS_OK)
        return st;
    if (model->rep_opt != NULL)
        gtl__optim_reset(model->rep_opt);
    model->stage = stage;
    model->stage_step = 0;
    model->grads_pending = false;
    return GTL_STATUS_OK;
}

static void bn_save(gtl_model *m, bool restore)
{
    gtl__bn_stats *s[3] = {&m->head.enc_bn, &m->head.gen_bn, &m->head.cls_bn};
    float *p = m->bn_backup;
    for (int i = 0; i < 3; i++) {
        size_t bytes = (size_t)s[i]->n * sizeof(float);
        if (restore) {
            memcpy(s[i]->mean, p, bytes);
            memcpy(s[i]->var, p + s[i]->n, bytes);
        } else {
            memcpy(p, s[i]->mean, bytes);
            memcpy(p + s[i]->n, s[i]->var, bytes);
        }
        p += 2 * s[i]->n;
    }
}

gtl_status gtl_model_forward_backward(gtl_model *model, const float *features, int64_t n,
                                      int64_t feature_dim, const int64_t *labels, float *stats,
                                      size_t n_stats)
{
    const char *fn = "gtl_model_forward_backward";
    gtl__clear_error();
    if (stats != NULL)
        memset(stats, 0, n_stats * sizeof(float));
    if (model == NULL || features == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model and features must not be NULL", fn);
    if (model->stage < 0)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: no stage set (gtl_model_set_stage)", fn);
    if (n < 2 || n > ((int64_t)1 << 31))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: batch size must be >= 2 (batch norm needs two rows; got %lld)", fn,
                          (long long)n);
    if (feature_dim != model->head.cfg.feat_dim)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: feature_dim %lld does not match the model's %lld", fn,
                          (long long)feature_dim, (long long)model->head.cfg.feat_dim);
    bool cls_stage = model->stage == GTL_STAGE_B2 || model->stage == GTL_STAGE_N2;
    bool rep_cls = !cls_stage && model->rep_cls;
    if (cls_stage || rep_cls) {
        if (labels == NULL)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: stage %s needs labels", fn,
                              stage_name(model->stage));
        for (int64_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= model->head.cfg.n_classes)
                return gtl__error(GTL_STATUS_INVALID_ARG,
                                  "%s: label %lld of row %lld is outside [0, %lld)", fn,
                                  (long long)labels[i], (long long)i,
                                  (long long)model->head.cfg.n_classes);
    }
    for (int64_t i = 0; i < n * feature_dim; i++)
        if (!isfinite(features[i]))
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: feature %lld of row %lld is not finite",
                              fn, (long long)(i % feature_dim), (long long)(i / feature_dim));
    gtl_status st = gtl__model_ensure_init(model, fn);
    if (st != GTL_STATUS_OK)
        return st;

    gtl__tape *t = model->tape;
    gtl__rng rng0 = model->rng;
    bn_save(model, false);
    gtl__tape_reset(t);
    t->grad_enabled = true;
    t->training = true;
    gtl__paramset_zero_grad(model->active);
    if (rep_cls)
        gtl__paramset_zero_grad(&model->head.cls);
    model->grads_pending = false;

    float local[GTL__STAT_COUNT] = {0};
    int64_t ne[2] = {n, feature_dim};
    gtl__tensor *x, *loss = NULL;
    st = gtl__tape_leaf(t, 2, ne, features, false, &x);
    if (st == GTL_STATUS_OK) {
        if (cls_stage)
            st = gtl__head_cls_loss(&model->head, t, x, labels,
                                    model->iv[GTL_MODEL_CLS_USE_MEAN] == 0, &loss, local);
        else {
            bool b1 = model->stage == GTL_STAGE_B1;
            double c0 = b1 ? 0.0
                           : (double)model->fv[GTL_MODEL_CAPACITY_START_NOVEL] *
                                 (double)model->fv[GTL_MODEL_CAPACITY_MAX];
            st = gtl__head_rep_loss(&model->head, t, x, (double)model->stage_step,
                                    b1 ? model->fv[GTL_MODEL_CAPACITY_RATE_BASE]
                                       : model->fv[GTL_MODEL_CAPACITY_RATE_NOVEL],
                                    c0, rep_cls ? labels : NULL,
                                    model->fv[GTL_MODEL_REP_CLS_WEIGHT], &loss, local);
        }
    }
    if (st == GTL_STATUS_OK && !isfinite(loss->data[0]))
        st = gtl__error(GTL_STATUS_NUMERIC, "%s: the loss is %s; the step was not taken", fn,
                        isnan(loss->data[0]) ? "NaN" : "infinite");
    if (st == GTL_STATUS_OK)
        st = gtl__tape_backward(t, loss);
    if (st != GTL_STATUS_OK) {
        /* Leave the model as it was: statistics, gradients and noise state. */
        bn_save(model, true);
        gtl__paramset_zero_grad(model->active);
        if (rep_cls)
            gtl__paramset_zero_grad(&model->head.cls);
        model->rng = rng0;
        gtl__tape_reset(t);
        return st;
    }
    if (stats != NULL)
        memcpy(stats, local, (n_stats < GTL__STAT_COUNT ? n_stats : GTL__STAT_COUNT) *
                                 sizeof(float));
    model->grads_pending = true;
    return GTL_STATUS_OK;
}

gtl_status gtl_model_apply(gtl_model *model, gtl_optimizer *optimizer, float *out_grad_norm)
{
    const char *fn = "gtl_model_apply";
    gtl__clear_error();
    if (out_grad_norm != NULL)
        *out_grad_norm = 0.0f;
    if (model == NULL || optimizer == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model and optimizer must not be NULL", fn);
    if (!model->grads_pending)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: no gradients pending (call gtl_model_forward_backward first)", fn);
    gtl__paramset *ps = model->active;
    bool cls_stage = ps == &model->head.cls;
    gtl__tensor *centers = cls_stage ? &ps->params[GTL__P_CLS_CENTERS] : NULL;
    if (centers != NULL)
        for (int64_t i = 0; i < centers->n; i++)
            if (!isfinite(centers->grad[i]))
                return gtl__error(GTL_STATUS_NUMERIC,
                                  "%s: non-finite center gradient; nothing changed", fn);
    if (optimizer->bound &&
        (optimizer->n_params != ps->n_params || optimizer->n_total != ps->n_total)) {
        /* The optimizer last trained another parameter set (another stage):
         * its moments mean nothing here. */
        gtl__log(GTL_LOG_INFO, "%s: the optimizer's state was for other parameters; reset", fn);
        gtl__optim_reset(optimizer);
    }
    gtl__paramset *cps = model->rep_cls && !cls_stage ? &model->head.cls : NULL;
    if (cps != NULL) {
        for (int64_t i = 0; i < cps->n_total; i++)
            if (!isfinite(cps->grad[i]))
                return gtl__error(GTL_STATUS_NUMERIC,
                                  "%s: non-finite classifier gradient; nothing changed", fn);
        if (model->rep_opt != NULL && model->rep_opt->cfg.kind != optimizer->cfg.kind) {
            gtl__optim_destroy(model->rep_opt);
            model->rep_opt = NULL;
        }
        if (model->rep_opt == NULL) {
            gtl_status st = gtl__optim_create(optimizer->cfg.kind, &model->rep_opt);
            if (st != GTL_STATUS_OK)
                return st;
        }
    }
    gtl__optim_group skip = {model->frozen_idx, model->n_frozen_idx, 1.0f, -1.0f, true};
    float norm = 0.0f;
    int64_t step0 = optimizer->step;
    gtl_status st = gtl__optim_step(optimizer, ps, &skip, model->n_frozen_idx > 0 ? 1 : 0, &norm);
    if (st != GTL_STATUS_OK)
        return st;
    if (cps != NULL) {
        /* The classifier of the classification term: the host optimizer's
         * settings and schedule position, its own moments, and no clipping
         * (the reference code clips the model's parameters only). */
        gtl_optimizer *co = model->rep_opt;
        co->cfg = optimizer->cfg;
        co->cfg.clip_norm = 0.0f;
        co->step = step0;
        st = gtl__optim_step(co, cps, NULL, 0, NULL);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (centers != NULL) {
        /* Centers: plain SGD at their own rate, undoing the loss weight as the
         * reference implementation does. */
        float w = model->fv[GTL_MODEL_CENTER_WEIGHT];
        float lr = model->fv[GTL_MODEL_CENTER_LR] / (w > 0.0f ? w : 1.0f);
        for (int64_t i = 0; i < centers->n; i++)
            centers->data[i] -= lr * centers->grad[i];
    }
    model->stage_step++;
    model->grads_pending = false;
    if (out_grad_norm != NULL)
        *out_grad_norm = norm;
    return GTL_STATUS_OK;
}

gtl_status gtl_model_train_step(gtl_model *model, gtl_optimizer *optimizer,
                                const float *features, int64_t n, int64_t feature_dim,
                                const int64_t *labels, float *stats, size_t n_stats)
{
    gtl__clear_error();
    if (stats != NULL)
        memset(stats, 0, n_stats * sizeof(float));
    if (optimizer == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_train_step: optimizer is NULL");
    float local[GTL__STAT_COUNT];
    gtl_status st = gtl_model_forward_backward(model, features, n, feature_dim, labels, local,
                                               GTL__STAT_COUNT);
    if (st != GTL_STATUS_OK) {
        if (stats != NULL)
            memset(stats, 0, n_stats * sizeof(float));
        return st;
    }
    local[GTL__STAT_LR] = (float)gtl__optim_lr_at(&optimizer->cfg, optimizer->step);
    st = gtl_model_apply(model, optimizer, &local[GTL__STAT_GRAD_NORM]);
    if (st != GTL_STATUS_OK) {
        gtl__paramset_zero_grad(model->active);
        model->grads_pending = false;
    }
    if (stats != NULL)
        memcpy(stats, local, (n_stats < GTL__STAT_COUNT ? n_stats : GTL__STAT_COUNT) *
                                 sizeof(float));
    return st;
}

/* ---- whole stages ---- */

static gtl_status check_dataset(gtl_model *m, const gtl_dataset *data, bool cls, const char *fn)
{
    if (data->dim != m->iv[GTL_MODEL_FEATURE_DIM])
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: the data's feature size %lld does not match the model's %lld", fn,
                          (long long)data->dim, (long long)m->iv[GTL_MODEL_FEATURE_DIM]);
    if (data->n < 2)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: need at least 2 samples (got %lld)", fn,
                          (long long)data->n);
    if (cls && (data->n_cls < 1 || data->cls_label[data->n_cls - 1] != data->n_cls - 1))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: labels must be 0..C-1 with every class present (found %lld "
                          "classes, largest label %lld); see gtl_dataset_remap_labels",
                          fn, (long long)data->n_cls,
                          (long long)(data->n_cls ? data->cls_label[data->n_cls - 1] : -1));
    return GTL_STATUS_OK;
}

/* Position of label y among the dataset's sorted distinct labels. */
static int64_t class_index(const gtl_dataset *data, int64_t y)
{
    int64_t lo = 0, hi = data->n_cls - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (data->cls_label[mid] < y)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static gtl_status run_stage(gtl_model *m, gtl_optimizer *opt, gtl_stage stage,
                            const gtl_dataset *data, int64_t epochs, gtl_progress_fn progress,
                            void *user_data, const char *fn)
{
    bool cls = stage == GTL_STAGE_B2 || stage == GTL_STAGE_N2;
    /* B1/N1 use the labels too when the classification term is on: class
     * k of the term is the k-th smallest label, so any labels work. */
    bool rep_cls = !cls && m->fv[GTL_MODEL_REP_CLS_WEIGHT] > 0.0f;
    gtl_status st = check_dataset(m, data, cls, fn);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl_model_set_stage(m, stage, cls || rep_cls ? data->n_cls : 0);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t p = m->iv[GTL_MODEL_BATCH_CLASSES], k = m->iv[GTL_MODEL_BATCH_SAMPLES];
    if (p > data->n_cls)
        p = data->n_cls;
    int64_t bs = p * k;
    if (bs < 2) {
        k = 2; /* one class, one sample per batch cannot train batch norm */
        bs = p * k;
    }
    int64_t per_epoch = (data->n + bs - 1) / bs;
    int64_t n_steps = epochs * per_epoch;
    float *x = gtl__malloc((size_t)bs * (size_t)data->dim * sizeof(float));
    int64_t *y = gtl__malloc((size_t)bs * sizeof(int64_t));
    int64_t *idx = gtl__malloc((size_t)bs * sizeof(int64_t));
    if (x == NULL || y == NULL || idx == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out_free;
    }
    int64_t n_skipped = 0;
    for (int64_t s = 0; s < n_steps; s++) {
        int64_t nb;
        st = gtl__dataset_identity_batch(data, &m->rng, p, k, idx, &nb);
        if (st != GTL_STATUS_OK)
            goto out_free;
        for (int64_t i = 0; i < nb; i++) {
            memcpy(x + i * data->dim, data->x + idx[i] * data->dim,
                   (size_t)data->dim * sizeof(float));
            y[i] = rep_cls ? class_index(data, data->y[idx[i]]) : data->y[idx[i]];
        }
        float stats[GTL__STAT_COUNT];
        st = gtl_model_train_step(m, opt, x, nb, data->dim, cls || rep_cls ? y : NULL, stats,
                                  GTL__STAT_COUNT);
        if (st == GTL_STATUS_NUMERIC) {
            n_skipped++;
            gtl__log(GTL_LOG_WARN, "%s: stage %s step %lld skipped: %s", fn, stage_name(stage),
                     (long long)s, gtl_last_error());
            st = GTL_STATUS_OK;
        }
        if (st != GTL_STATUS_OK)
            goto out_free;
        if (progress != NULL && progress(user_data, stage, s + 1, n_steps, stats) != 0) {
            st = gtl__error(GTL_STATUS_CANCELLED, "%s: cancelled by the progress callback after "
                            "step %lld of %lld", fn, (long long)(s + 1), (long long)n_steps);
            goto out_free;
        }
    }
    if (n_skipped > 0)
        gtl__log(GTL_LOG_WARN, "%s: stage %s: %lld of %lld steps skipped (non-finite loss)", fn,
                 stage_name(stage), (long long)n_skipped, (long long)n_steps);
out_free:
    gtl__free(x);
    gtl__free(y);
    gtl__free(idx);
    return st;
}

gtl_status gtl_model_train_stage(gtl_model *model, gtl_optimizer *optimizer, gtl_stage stage,
                                 const gtl_dataset *data, int64_t epochs,
                                 gtl_progress_fn progress, void *user_data)
{
    const char *fn = "gtl_model_train_stage";
    gtl__clear_error();
    if (model == NULL || optimizer == NULL || data == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if ((int)stage < GTL_STAGE_B1 || (int)stage > GTL_STAGE_N2)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown stage %d", fn, (int)stage);
    if (epochs < 1 || epochs > 10000000)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: epochs must be >= 1 (got %lld)", fn,
                          (long long)epochs);
    gtl_status st = run_stage(model, optimizer, stage, data, epochs, progress, user_data, fn);
    /* A progress callback may have made a failing libgtl call of its own:
     * a successful stage still leaves no message behind. */
    if (st == GTL_STATUS_OK)
        gtl__clear_error();
    return st;
}

/* An Adam optimizer with the adapt schedule for a stage of n_steps. */
static gtl_status adapt_optimizer(gtl_model *m, float lr, int64_t n_steps, int64_t per_epoch,
                                  gtl_optimizer **out)
{
    gtl_optimizer *opt = NULL;
    gtl_status st = gtl__optim_create(GTL_OPTIM_ADAM, &opt);
    if (st != GTL_STATUS_OK)
        return st;
    const char *fn = "gtl_adapt";
    st = gtl__optim_set_f32(opt, GTL_OPTIM_PARAM_LR, lr, fn);
    if (st == GTL_STATUS_OK)
        st = gtl__optim_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY,
                                m->fv[GTL_MODEL_WEIGHT_DECAY], fn);
    if (st == GTL_STATUS_OK)
        st = gtl__optim_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, m->fv[GTL_MODEL_CLIP_NORM], fn);
    int64_t warm = m->iv[GTL_MODEL_WARMUP_EPOCHS] * per_epoch;
    if (warm >= n_steps)
        warm = n_steps / 4;
    if (st == GTL_STATUS_OK)
        st = gtl__optim_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, warm, fn);
    if (st == GTL_STATUS_OK && n_steps >= 2) {
        int64_t half = n_steps / 2;
        st = gtl__optim_set_milestones(opt, &half, 1, fn);
    }
    if (st != GTL_STATUS_OK) {
        gtl__optim_destroy(opt);
        return st;
    }
    *out = opt;
    return GTL_STATUS_OK;
}

gtl_status gtl_adapt(gtl_model *model, const gtl_dataset *support, gtl_progress_fn progress,
                     void *user_data)
{
    const char *fn = "gtl_adapt";
    gtl__clear_error();
    if (model == NULL || support == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model and support must not be NULL", fn);
    gtl_status st = check_dataset(model, support, true, fn);
    if (st != GTL_STATUS_OK)
        return st;
    st = gtl__model_ensure_init(model, fn);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t p = model->iv[GTL_MODEL_BATCH_CLASSES], k = model->iv[GTL_MODEL_BATCH_SAMPLES];
    if (p > support->n_cls)
        p = support->n_cls;
    int64_t bs = p * k < 2 ? 2 : p * k;
    int64_t per_epoch = (support->n + bs - 1) / bs;
    int64_t e1 = model->iv[GTL_MODEL_N1_EPOCHS], e2 = model->iv[GTL_MODEL_N2_EPOCHS];
    gtl_optimizer *opt = NULL;
    if (e1 > 0) {
        st = adapt_optimizer(model, model->fv[GTL_MODEL_N1_LR], e1 * per_epoch, per_epoch, &opt);
        if (st == GTL_STATUS_OK)
            st = run_stage(model, opt, GTL_STAGE_N1, support, e1, progress, user_data, fn);
        gtl__optim_destroy(opt);
        opt = NULL;
        if (st != GTL_STATUS_OK)
            return st;
    }
    if (e2 > 0) {
        st = adapt_optimizer(model, model->fv[GTL_MODEL_N2_LR], e2 * per_epoch, per_epoch, &opt);
        if (st == GTL_STATUS_OK)
            st = run_stage(model, opt, GTL_STAGE_N2, support, e2, progress, user_data, fn);
        gtl__optim_destroy(opt);
        if (st != GTL_STATUS_OK)
            return st;
    } else {
        /* Without N2 the model still needs a classifier for these classes. */
        st = gtl_model_set_stage(model, GTL_STAGE_N2, support->n_cls);
    }
    if (st == GTL_STATUS_OK)
        gtl__clear_error(); /* see gtl_model_train_stage */
    return st;
}
