/* Public model functions: parameters, initialisation, prediction, latent
 * codes and tensor access. Training is in api_train.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_model.h"

typedef struct keydef {
    const char *name;
    bool is_int;
    bool structural;
    bool readonly;
    double lo, hi, def;
} keydef;

static const keydef keys[GTL__MODEL_NKEYS] = {
    [GTL_MODEL_FEATURE_DIM] = {"FEATURE_DIM", true, true, false, 1, 1 << 20, 1280},
    [GTL_MODEL_HIDDEN_DIM] = {"HIDDEN_DIM", true, true, false, 1, 1 << 20, 256},
    [GTL_MODEL_CONCEPT_DIM] = {"CONCEPT_DIM", true, true, false, 1, 1 << 20, 128},
    [GTL_MODEL_DISTURBANCE_DIM] = {"DISTURBANCE_DIM", true, true, false, 1, 1 << 20, 64},
    [GTL_MODEL_NUM_DOMAINS] = {"NUM_DOMAINS", true, true, false, 1, 65536, 128},
    [GTL_MODEL_NUM_CLASSES] = {"NUM_CLASSES", true, false, true, 1, 1 << 20, 2},
    [GTL_MODEL_ESTIMATOR] = {"ESTIMATOR", true, true, false, 0, 1, 1},
    [GTL_MODEL_SEED] = {"SEED", true, true, false, 0, 9.2e18, 0},
    [GTL_MODEL_DROPOUT] = {"DROPOUT", false, true, false, 0, 0.99, 0.5},
    [GTL_MODEL_BETA] = {"BETA", false, false, false, 0, 1e6, 1},
    [GTL_MODEL_CAPACITY_MAX] = {"CAPACITY_MAX", false, false, false, 0, 1e9, 20},
    [GTL_MODEL_CAPACITY_ITERS] = {"CAPACITY_ITERS", false, false, false, 1, 1e12, 5000},
    [GTL_MODEL_CAPACITY_RATE_BASE] = {"CAPACITY_RATE_BASE", false, false, false, 0, 1e9, 20},
    [GTL_MODEL_CAPACITY_RATE_NOVEL] = {"CAPACITY_RATE_NOVEL", false, false, false, 0, 1e9, 50},
    [GTL_MODEL_TRIPLET_MARGIN] = {"TRIPLET_MARGIN", false, false, false, 0, 2, 0.3},
    [GTL_MODEL_CE_WEIGHT] = {"CE_WEIGHT", false, false, false, 0, 1e6, 1},
    [GTL_MODEL_TRIPLET_WEIGHT] = {"TRIPLET_WEIGHT", false, false, false, 0, 1e6, 1},
    [GTL_MODEL_CENTER_WEIGHT] = {"CENTER_WEIGHT", false, false, false, 0, 1e6, 1},
    [GTL_MODEL_CENTER_LR] = {"CENTER_LR", false, false, false, 0, 1e3, 0.5},
    [GTL_MODEL_FREEZE_GENERATOR] = {"FREEZE_GENERATOR", true, false, false, 0, 1, 1},
    [GTL_MODEL_BATCH_CLASSES] = {"BATCH_CLASSES", true, false, false, 1, 65536, 16},
    [GTL_MODEL_BATCH_SAMPLES] = {"BATCH_SAMPLES", true, false, false, 1, 65536, 4},
    [GTL_MODEL_N1_EPOCHS] = {"N1_EPOCHS", true, false, false, 0, 1e7, 60},
    [GTL_MODEL_N2_EPOCHS] = {"N2_EPOCHS", true, false, false, 0, 1e7, 60},
    [GTL_MODEL_N1_LR] = {"N1_LR", false, false, false, 0, 10, 1e-3},
    [GTL_MODEL_N2_LR] = {"N2_LR", false, false, false, 0, 10, 1e-3},
    [GTL_MODEL_WEIGHT_DECAY] = {"WEIGHT_DECAY", false, false, false, 0, 10, 1e-4},
    [GTL_MODEL_WARMUP_EPOCHS] = {"WARMUP_EPOCHS", true, false, false, 0, 1e7, 5},
    [GTL_MODEL_CLIP_NORM] = {"CLIP_NORM", false, false, false, 0, 1e9, 2},
    [GTL_MODEL_CLS_USE_MEAN] = {"CLS_USE_MEAN", true, false, false, 0, 1, 1},
    [GTL_MODEL_CAPACITY_START_NOVEL] = {"CAPACITY_START_NOVEL", false, false, false, 0, 1, 1},
    [GTL_MODEL_REP_CLS_WEIGHT] = {"REP_CLS_WEIGHT", false, false, false, 0, 1e6, 1},
};

const char *gtl__model_key_name(int key, bool *out_is_int)
{
    if (key < 0 || key >= GTL__MODEL_NKEYS || keys[key].name == NULL)
        return NULL;
    *out_is_int = keys[key].is_int;
    return keys[key].name;
}

bool gtl__model_key_in_bounds(int key, double v)
{
    return v >= keys[key].lo && v <= keys[key].hi;
}

static bool key_valid(gtl_model_param key)
{
    return (int)key >= 0 && (int)key < GTL__MODEL_NKEYS && keys[key].name != NULL;
}

gtl_status gtl_model_create(gtl_model **out_model)
{
    gtl__clear_error();
    if (out_model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_create: out_model is NULL");
    *out_model = NULL;
    gtl_model *m = gtl__calloc(1, sizeof *m);
    if (m == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_model_create: out of memory");
    for (int k = 0; k < GTL__MODEL_NKEYS; k++) {
        if (keys[k].name == NULL)
            continue;
        if (keys[k].is_int)
            m->iv[k] = (int64_t)keys[k].def;
        else
            m->fv[k] = (float)keys[k].def;
    }
    m->stage = -1;
    gtl_status st = gtl__ctx_create(&m->ctx);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_create(m->ctx, &m->rng, &m->tape);
    if (st != GTL_STATUS_OK) {
        gtl_model_destroy(m);
        return st;
    }
    *out_model = m;
    return GTL_STATUS_OK;
}

void gtl_model_destroy(gtl_model *model)
{
    if (model == NULL)
        return;
    if (model->initialized)
        gtl__head_fini(&model->head);
    gtl__free(model->frozen_idx);
    gtl__free(model->bn_backup);
    gtl__optim_destroy(model->rep_opt);
    gtl__tape_destroy(model->tape);
    gtl__ctx_destroy(model->ctx);
    gtl__free(model);
}

gtl_status gtl_model_param_bounds(gtl_model_param key, double *out_lo, double *out_hi,
                                  int32_t *out_is_int)
{
    gtl__clear_error();
    if (out_lo != NULL)
        *out_lo = 0;
    if (out_hi != NULL)
        *out_hi = 0;
    if (out_is_int != NULL)
        *out_is_int = 0;
    if (out_lo == NULL || out_hi == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_param_bounds: NULL out pointer");
    if (!key_valid(key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_param_bounds: unknown key %d",
                          (int)key);
    *out_lo = keys[key].lo;
    *out_hi = keys[key].hi;
    if (out_is_int != NULL)
        *out_is_int = keys[key].is_int;
    return GTL_STATUS_OK;
}

static gtl_status check_set(const gtl_model *m, gtl_model_param key, bool want_int,
                            double value, const char *fn)
{
    if (m == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model is NULL", fn);
    if (!key_valid(key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown key %d", fn, (int)key);
    const keydef *k = &keys[key];
    if (k->is_int != want_int)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is %s; use gtl_model_set_%s", fn,
                          k->name, k->is_int ? "an integer" : "a float",
                          k->is_int ? "i64" : "f32");
    if (k->readonly)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is read-only", fn, k->name);
    if (!(value >= k->lo && value <= k->hi))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s = %g is outside [%g, %g]", fn,
                          k->name, value, k->lo, k->hi);
    if (k->structural && m->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: %s is structural and the model is already initialised", fn,
                          k->name);
    return GTL_STATUS_OK;
}

gtl_status gtl_model_set_i64(gtl_model *model, gtl_model_param key, int64_t value)
{
    gtl__clear_error();
    gtl_status st = check_set(model, key, true, (double)value, "gtl_model_set_i64");
    if (st == GTL_STATUS_OK)
        model->iv[key] = value;
    return st;
}

gtl_status gtl_model_set_f32(gtl_model *model, gtl_model_param key, float value)
{
    gtl__clear_error();
    if (!isfinite(value))
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_set_f32: value is not finite");
    gtl_status st = check_set(model, key, false, (double)value, "gtl_model_set_f32");
    if (st == GTL_STATUS_OK)
        model->fv[key] = value;
    return st;
}

gtl_status gtl_model_get_i64(const gtl_model *model, gtl_model_param key, int64_t *out_value)
{
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0;
    if (model == NULL || out_value == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_get_i64: NULL argument");
    if (!key_valid(key) || !keys[key].is_int)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_get_i64: key %d is not an integer "
                          "parameter", (int)key);
    *out_value = key == GTL_MODEL_NUM_CLASSES && model->initialized
                     ? model->head.cfg.n_classes
                     : model->iv[key];
    return GTL_STATUS_OK;
}

gtl_status gtl_model_get_f32(const gtl_model *model, gtl_model_param key, float *out_value)
{
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0;
    if (model == NULL || out_value == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_get_f32: NULL argument");
    if (!key_valid(key) || keys[key].is_int)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_get_f32: key %d is not a float "
                          "parameter", (int)key);
    *out_value = model->fv[key];
    return GTL_STATUS_OK;
}

/* The head configuration the current parameters describe. c may be
 * &m->head.cfg itself (the refresh in gtl__model_ensure_init), so the class
 * count is read before the defaults overwrite it. */
static void head_config(const gtl_model *m, gtl__head_config *c)
{
    int64_t n_classes = m->initialized ? m->head.cfg.n_classes : m->iv[GTL_MODEL_NUM_CLASSES];
    gtl__head_config_default(c);
    c->feat_dim = m->iv[GTL_MODEL_FEATURE_DIM];
    c->hidden = m->iv[GTL_MODEL_HIDDEN_DIM];
    c->concept_dim = m->iv[GTL_MODEL_CONCEPT_DIM];
    c->disturb_dim = m->iv[GTL_MODEL_DISTURBANCE_DIM];
    c->n_domains = m->iv[GTL_MODEL_NUM_DOMAINS];
    c->n_classes = n_classes;
    c->estimator = m->iv[GTL_MODEL_ESTIMATOR] != 0;
    c->dropout = m->fv[GTL_MODEL_DROPOUT];
    c->beta = m->fv[GTL_MODEL_BETA];
    c->c_max = m->fv[GTL_MODEL_CAPACITY_MAX];
    c->c_iters = m->fv[GTL_MODEL_CAPACITY_ITERS];
    c->triplet_margin = m->fv[GTL_MODEL_TRIPLET_MARGIN];
    c->w_ce = m->fv[GTL_MODEL_CE_WEIGHT];
    c->w_triplet = m->fv[GTL_MODEL_TRIPLET_WEIGHT];
    c->w_center = m->fv[GTL_MODEL_CENTER_WEIGHT];
}

gtl_status gtl_model_init(gtl_model *model)
{
    gtl__clear_error();
    if (model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_init: model is NULL");
    if (model->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "gtl_model_init: already initialised");
    return gtl__model_ensure_init(model, "gtl_model_init");
}

gtl_status gtl__model_ensure_init(gtl_model *m, const char *fn)
{
    if (m->initialized) {
        /* Loss weights may change at any time: refresh them. Through a copy:
         * head_config() starts from the defaults, so writing into
         * m->head.cfg directly reset the class count it then reads to 2. */
        gtl__head_config c;
        head_config(m, &c);
        m->head.cfg = c;
        return GTL_STATUS_OK;
    }
    gtl__head_config c;
    head_config(m, &c);
    gtl__rng_seed(&m->rng, (uint64_t)m->iv[GTL_MODEL_SEED]);
    gtl_status st = gtl__head_init(&m->head, &c, &m->rng);
    if (st != GTL_STATUS_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", gtl__error_message());
        return gtl__error(st, "%s: %s", fn, msg);
    }
    int64_t nb = 2 * (m->head.enc_bn.n + m->head.gen_bn.n + c.feat_dim);
    m->bn_backup = gtl__malloc((size_t)nb * sizeof(float));
    if (m->bn_backup == NULL) {
        gtl__head_fini(&m->head);
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    m->n_bn_backup = nb;
    /* Nothing trains until a stage is chosen. */
    for (int mod = 0; mod < GTL__MOD_COUNT; mod++)
        gtl__head_set_frozen(&m->head, (gtl__module)mod, true);
    m->initialized = true;
    return GTL_STATUS_OK;
}

gtl_status gtl_model_num_params(const gtl_model *model, int64_t *out_n)
{
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (model == NULL || out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_num_params: NULL argument");
    if (!model->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "gtl_model_num_params: model not initialised");
    int64_t n = 0;
    for (int64_t i = 0; i < model->head.body.n_params; i++)
        n += model->head.body.params[i].n;
    for (int64_t i = 0; i < model->head.cls.n_params; i++)
        n += model->head.cls.params[i].n;
    *out_n = n;
    return GTL_STATUS_OK;
}

/* Shared input checks of predict/latent. */
static gtl_status check_features(gtl_model *m, const float *x, int64_t n, int64_t dim,
                                 const char *fn)
{
    if (m == NULL || x == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model and features must not be NULL", fn);
    if (n < 1 || n > ((int64_t)1 << 31))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n must be >= 1 (got %lld)", fn,
                          (long long)n);
    if (dim != m->iv[GTL_MODEL_FEATURE_DIM])
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: feature_dim %lld does not match the model's %lld", fn,
                          (long long)dim, (long long)m->iv[GTL_MODEL_FEATURE_DIM]);
    for (int64_t i = 0; i < n * dim; i++)
        if (!isfinite(x[i]))
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: feature %lld of row %lld is not finite",
                              fn, (long long)(i % dim), (long long)(i / dim));
    return gtl__model_ensure_init(m, fn);
}

gtl_status gtl_model_predict(gtl_model *model, const float *features, int64_t n,
                             int64_t feature_dim, int64_t *out_labels, float *out_probs,
                             size_t probs_capacity)
{
    gtl__clear_error();
    gtl_status st = check_features(model, features, n, feature_dim, "gtl_model_predict");
    if (st != GTL_STATUS_OK)
        return st;
    int64_t C = model->head.cfg.n_classes;
    if (out_probs != NULL && probs_capacity < (size_t)(n * C))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_model_predict: probs_capacity %zu < n * classes = %lld",
                          probs_capacity, (long long)(n * C));
    gtl__tape_reset(model->tape);
    int64_t ne[2] = {n, feature_dim};
    gtl__tensor *x, *probs;
    st = gtl__tape_leaf(model->tape, 2, ne, features, false, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__head_predict(&model->head, model->tape, x, &probs);
    if (st != GTL_STATUS_OK)
        return st;
    if (out_probs != NULL)
        memcpy(out_probs, probs->data, (size_t)(n * C) * sizeof(float));
    if (out_labels != NULL)
        for (int64_t i = 0; i < n; i++) {
            const float *row = probs->data + i * C;
            int64_t best = 0;
            for (int64_t k = 1; k < C; k++)
                if (row[k] > row[best])
                    best = k;
            out_labels[i] = best;
        }
    gtl__tape_reset(model->tape);
    return GTL_STATUS_OK;
}

gtl_status gtl_model_latent(gtl_model *model, gtl_latent which, const float *features,
                            int64_t n, int64_t feature_dim, float *dst, size_t capacity)
{
    gtl__clear_error();
    if (dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_latent: dst is NULL");
    if ((int)which < GTL_LATENT_CONCEPT || (int)which > GTL_LATENT_GATE)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_latent: unknown latent %d",
                          (int)which);
    gtl_status st = check_features(model, features, n, feature_dim, "gtl_model_latent");
    if (st != GTL_STATUS_OK)
        return st;
    const gtl__head_config *c = &model->head.cfg;
    int64_t width = which == GTL_LATENT_CONCEPT      ? c->concept_dim
                    : which == GTL_LATENT_DISTURBANCE ? c->disturb_dim
                                                      : c->n_domains;
    if (capacity < (size_t)(n * width))
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_latent: capacity %zu < %lld",
                          capacity, (long long)(n * width));
    gtl__tape *t = model->tape;
    bool g0 = t->grad_enabled, t0 = t->training;
    t->grad_enabled = false;
    t->training = false;
    gtl__tape_reset(t);
    int64_t ne[2] = {n, feature_dim};
    gtl__tensor *x, *zt = NULL, *gate = NULL;
    gtl__enc_out e;
    st = gtl__tape_leaf(t, 2, ne, features, false, &x);
    if (st == GTL_STATUS_OK)
        st = gtl__head_encode(&model->head, t, x, false, &e);
    if (st == GTL_STATUS_OK && which != GTL_LATENT_CONCEPT)
        st = gtl__head_disturb(&model->head, t, x, e.z_m, &zt, &gate);
    if (st == GTL_STATUS_OK) {
        if (which == GTL_LATENT_CONCEPT)
            memcpy(dst, e.z_c->data, (size_t)(n * width) * sizeof(float));
        else if (which == GTL_LATENT_DISTURBANCE)
            memcpy(dst, zt->data, (size_t)(n * width) * sizeof(float));
        else if (gate != NULL)
            memcpy(dst, gate->data, (size_t)(n * width) * sizeof(float));
        else
            memset(dst, 0, (size_t)(n * width) * sizeof(float));
    }
    gtl__tape_reset(t);
    t->grad_enabled = g0;
    t->training = t0;
    return st;
}

/* ---- tensor access ---- */

static gtl__tensor *tensor_at(const gtl_model *m, int64_t index, gtl__paramset **out_ps)
{
    gtl__paramset *body = (gtl__paramset *)&m->head.body, *cls = (gtl__paramset *)&m->head.cls;
    if (index < 0)
        return NULL;
    if (index < body->n_params) {
        *out_ps = body;
        return &body->params[index];
    }
    index -= body->n_params;
    if (index < cls->n_params) {
        *out_ps = cls;
        return &cls->params[index];
    }
    return NULL;
}

gtl_status gtl_model_num_tensors(const gtl_model *model, int64_t *out_n)
{
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (model == NULL || out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_num_tensors: NULL argument");
    if (!model->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "gtl_model_num_tensors: model not initialised");
    *out_n = model->head.body.n_params + model->head.cls.n_params;
    return GTL_STATUS_OK;
}

static gtl_status lookup(const gtl_model *model, int64_t index, const char *fn, gtl__tensor **t,
                         gtl__paramset **ps)
{
    if (model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model is NULL", fn);
    if (!model->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: model not initialised", fn);
    *t = tensor_at(model, index, ps);
    if (*t == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: index %lld out of range [0, %lld)", fn,
                          (long long)index,
                          (long long)(model->head.body.n_params + model->head.cls.n_params));
    return GTL_STATUS_OK;
}

gtl_status gtl_model_tensor_info(const gtl_model *model, int64_t index, char *name,
                                 size_t name_capacity, int64_t *out_numel, int32_t *out_trainable)
{
    gtl__clear_error();
    if (out_numel != NULL)
        *out_numel = 0;
    if (out_trainable != NULL)
        *out_trainable = 0;
    gtl__tensor *t;
    gtl__paramset *ps;
    gtl_status st = lookup(model, index, "gtl_model_tensor_info", &t, &ps);
    if (st != GTL_STATUS_OK)
        return st;
    size_t len = strlen(t->name);
    if (name != NULL && name_capacity < len + 1)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_model_tensor_info: name_capacity %zu < %zu", name_capacity,
                          len + 1);
    if (name != NULL)
        memcpy(name, t->name, len + 1);
    if (out_numel != NULL)
        *out_numel = t->n;
    if (out_trainable != NULL)
        *out_trainable = gtl__requires_grad(t) ? 1 : 0;
    return GTL_STATUS_OK;
}

gtl_status gtl_model_tensor_get(const gtl_model *model, int64_t index, int32_t grad, float *dst,
                                size_t capacity)
{
    gtl__clear_error();
    gtl__tensor *t;
    gtl__paramset *ps;
    if (dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_tensor_get: dst is NULL");
    gtl_status st = lookup(model, index, "gtl_model_tensor_get", &t, &ps);
    if (st != GTL_STATUS_OK)
        return st;
    if (capacity < (size_t)t->n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_tensor_get: capacity %zu < %lld",
                          capacity, (long long)t->n);
    const float *src = grad ? t->grad : t->data;
    if (src != NULL)
        memcpy(dst, src, (size_t)t->n * sizeof(float));
    else
        memset(dst, 0, (size_t)t->n * sizeof(float));
    return GTL_STATUS_OK;
}

gtl_status gtl_model_tensor_set(gtl_model *model, int64_t index, const float *src, size_t n)
{
    gtl__clear_error();
    gtl__tensor *t;
    gtl__paramset *ps;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_tensor_set: src is NULL");
    gtl_status st = lookup(model, index, "gtl_model_tensor_set", &t, &ps);
    if (st != GTL_STATUS_OK)
        return st;
    if (n != (size_t)t->n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_model_tensor_set: %s has %lld values, "
                          "got %zu", t->name, (long long)t->n, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "gtl_model_tensor_set: value %zu is not finite", i);
    memcpy(t->data, src, n * sizeof(float));
    return GTL_STATUS_OK;
}
