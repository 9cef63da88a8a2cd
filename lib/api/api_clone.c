/* gtl_model_clone() and gtl__model_copy_state(): an in-memory copy of a
 * model, the same state gtl_model_save() writes (without a file). */
#include <string.h>

#include "api/api_clone.h"
#include "api/api_model.h"
#include "gtl/eval.h"

/* Settings fixed by initialisation: a copy into an initialised model needs
 * them equal. */
static const gtl_model_param structural[] = {
    GTL_MODEL_FEATURE_DIM, GTL_MODEL_HIDDEN_DIM, GTL_MODEL_CONCEPT_DIM,
    GTL_MODEL_DISTURBANCE_DIM, GTL_MODEL_NUM_DOMAINS, GTL_MODEL_ESTIMATOR,
};

static void copy_bn(gtl__bn_stats *dst, const gtl__bn_stats *src)
{
    memcpy(dst->mean, src->mean, (size_t)src->n * sizeof(float));
    memcpy(dst->var, src->var, (size_t)src->n * sizeof(float));
}

gtl_status gtl__model_copy_state(gtl_model *dst, const gtl_model *src, const char *fn)
{
    if (!src->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: model not initialised", fn);
    if (src->grads_pending)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: gradients are pending; call gtl_model_apply() first", fn);
    if (dst->initialized) {
        for (size_t i = 0; i < sizeof structural / sizeof structural[0]; i++)
            if (dst->iv[structural[i]] != src->iv[structural[i]])
                return gtl__error(GTL_STATUS_INVALID_ARG,
                                  "%s: the models differ in structural parameter %d", fn,
                                  (int)structural[i]);
        if (dst->fv[GTL_MODEL_DROPOUT] != src->fv[GTL_MODEL_DROPOUT])
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the models differ in dropout", fn);
    }
    memcpy(dst->iv, src->iv, sizeof dst->iv);
    memcpy(dst->fv, src->fv, sizeof dst->fv);
    dst->iv[GTL_MODEL_NUM_CLASSES] = src->head.cfg.n_classes;
    gtl_status st = gtl__model_ensure_init(dst, fn);
    if (st == GTL_STATUS_OK && dst->head.cfg.n_classes != src->head.cfg.n_classes)
        st = gtl__head_reset_classifier(&dst->head, src->head.cfg.n_classes, &dst->rng);
    if (st != GTL_STATUS_OK)
        return st;
    GTL_ASSERT(dst->head.body.n_total == src->head.body.n_total);
    GTL_ASSERT(dst->head.cls.n_total == src->head.cls.n_total);
    memcpy(dst->head.body.data, src->head.body.data,
           (size_t)src->head.body.n_total * sizeof(float));
    memcpy(dst->head.cls.data, src->head.cls.data, (size_t)src->head.cls.n_total * sizeof(float));
    copy_bn(&dst->head.enc_bn, &src->head.enc_bn);
    copy_bn(&dst->head.gen_bn, &src->head.gen_bn);
    copy_bn(&dst->head.cls_bn, &src->head.cls_bn);
    dst->head.cfg = src->head.cfg;
    dst->rng = src->rng;
    dst->grads_pending = false;
    dst->rep_cls = src->rep_cls;
    if (src->stage >= 0) {
        st = gtl__model_configure_stage(dst, (gtl_stage)src->stage);
        if (st != GTL_STATUS_OK)
            return st;
    } else {
        dst->active = NULL;
    }
    dst->stage = src->stage;
    dst->stage_step = src->stage_step;
    for (int i = 0; i < GTL__MOD_COUNT; i++)
        if (dst->head.frozen[i] != src->head.frozen[i])
            gtl__head_set_frozen(&dst->head, (gtl__module)i, src->head.frozen[i]);
    if (dst->rep_cls)
        gtl__paramset_set_frozen(&dst->head.cls, GTL__P_CLS_CENTERS, true);
    /* The classifier's optimizer of the classification term (B1/N1). */
    gtl__optim_destroy(dst->rep_opt);
    dst->rep_opt = NULL;
    if (src->rep_opt != NULL) {
        st = gtl__optim_create(src->rep_opt->cfg.kind, &dst->rep_opt);
        if (st != GTL_STATUS_OK)
            return st;
        dst->rep_opt->cfg = src->rep_opt->cfg;
        gtl__optim_state os;
        gtl__optim_get_state(src->rep_opt, &os);
        st = gtl__optim_set_state(dst->rep_opt, &os);
        if (st != GTL_STATUS_OK)
            return st;
    }
    return GTL_STATUS_OK;
}

gtl_status gtl_model_clone(const gtl_model *model, gtl_model **out_model)
{
    const char *fn = "gtl_model_clone";
    gtl__clear_error();
    if (out_model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_model is NULL", fn);
    *out_model = NULL;
    if (model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model is NULL", fn);
    if (!model->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: model not initialised", fn);
    gtl_model *m = NULL;
    gtl_status st = gtl_model_create(&m);
    if (st == GTL_STATUS_OK)
        st = gtl__model_copy_state(m, model, fn);
    if (st != GTL_STATUS_OK) {
        gtl_model_destroy(m);
        return st;
    }
    *out_model = m;
    return GTL_STATUS_OK;
}
