/* Model checkpoints: gtl_model_save() and gtl_model_load() on the libgtl
 * checkpoint format (lib/io/ckpt.h). Layout of a model file:
 *   meta  "format" = "libgtl-model", "format.version" = 1, "libgtl.version"
 *         "model.<KEY>" for every model parameter (i64 or f64)
 *         "model.n_classes", "model.stage", "model.stage_step", "model.frozen"
 *         "rng.spare", "rng.has_spare"
 *         "optim.kind", "optim.<KEY>", "optim.step" when an optimizer is saved
 *   tensors every parameter by name (f32), "bn.<layer>.mean|var" (f32),
 *         "rng.state" (4 x i64), "optim.milestones" (i64),
 *         "optim.param_steps" (i64), "optim.m", "optim.v" (f32), "optim.live" (i64 0/1 per
 *         tracked row, when the optimizer has lazy rows)
 *         and the same under "rep_optim." for the classifier's optimizer of
 *         B1/N1 with the classification term, when the model is in such a
 *         stage and has stepped */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_model.h"
#include "gtl/version.h"
#include "io/ckpt.h"

#define MODEL_FORMAT "libgtl-model"
#define MODEL_FORMAT_VERSION 1

static gtl_status add_f32(gtl__ckpt_writer *w, const char *name, int32_t nd, const int64_t *ne,
                          const float *data)
{
    return gtl__ckpt_add_tensor(w, name, GTL__CKPT_F32, nd, ne, data);
}

static gtl_status save_paramset(gtl__ckpt_writer *w, const gtl__paramset *ps)
{
    for (int64_t i = 0; i < ps->n_params; i++) {
        const gtl__tensor *t = &ps->params[i];
        gtl_status st = add_f32(w, t->name, t->nd, t->ne, t->data);
        if (st != GTL_STATUS_OK)
            return st;
    }
    return GTL_STATUS_OK;
}

static const char *bn_names[3] = {"bn.encoder", "bn.generator", "bn.classifier"};

static gtl__bn_stats *bn_at(gtl_model *m, int i)
{
    return i == 0 ? &m->head.enc_bn : i == 1 ? &m->head.gen_bn : &m->head.cls_bn;
}

/* prefix + name into buf (64 bytes). */
static const char *pk(char *buf, const char *prefix, const char *name)
{
    snprintf(buf, 64, "%s%s", prefix, name);
    return buf;
}

/* An optimizer's settings and state under keys "<pre>kind", "<pre><KEY>",
 * ... (pre "optim." for the host's optimizer, "rep_optim." for the
 * classifier's optimizer of the classification term in B1/N1). */
static gtl_status save_optimizer(gtl__ckpt_writer *w, const gtl_optimizer *opt, const char *pre)
{
    char key[64], kb[64];
    gtl_status st = gtl__ckpt_add_meta_i64(w, pk(kb, pre, "kind"), opt->cfg.kind);
    for (int k = 0; k < GTL__OPTIM_N_PARAMS && st == GTL_STATUS_OK; k++) {
        snprintf(key, sizeof key, "%s%s", pre, gtl__optim_param_name((gtl_optim_param)k));
        if (gtl__optim_param_is_int((gtl_optim_param)k))
            st = gtl__ckpt_add_meta_i64(w, key, gtl__optim_get_i64(opt, (gtl_optim_param)k));
        else
            st = gtl__ckpt_add_meta_f64(w, key, gtl__optim_get_f32(opt, (gtl_optim_param)k));
    }
    int64_t nm = opt->cfg.n_milestones;
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_tensor(w, pk(kb, pre, "milestones"), GTL__CKPT_I64, 1, &nm,
                                  opt->cfg.milestones);
    gtl__optim_state s;
    gtl__optim_get_state(opt, &s);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, pk(kb, pre, "step"), s.step);
    /* Absent moments (before the first step) are stored as empty tensors. */
    int64_t np = s.param_steps ? s.n_params : 0, nt = s.m ? s.n_total : 0,
            nv = s.v ? s.n_total : 0;
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, pk(kb, pre, "n_params"), s.n_params);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, pk(kb, pre, "n_total"), s.n_total);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_tensor(w, pk(kb, pre, "param_steps"), GTL__CKPT_I64, 1, &np,
                                  s.param_steps);
    if (st == GTL_STATUS_OK)
        st = add_f32(w, pk(kb, pre, "m"), 1, &nt, s.m);
    if (st == GTL_STATUS_OK)
        st = add_f32(w, pk(kb, pre, "v"), 1, &nv, s.v);
    if (st == GTL_STATUS_OK && s.live != NULL) {
        /* Lazy rows (docs/optimizers.md): which tracked rows are live. */
        int64_t *live = gtl__malloc((size_t)s.n_rows * sizeof *live);
        if (live == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_model_save: out of memory");
        for (int64_t r = 0; r < s.n_rows; r++)
            live[r] = s.live[r];
        st = gtl__ckpt_add_tensor(w, pk(kb, pre, "live"), GTL__CKPT_I64, 1, &s.n_rows, live);
        gtl__free(live);
    }
    return st;
}

gtl_status gtl_model_save(const gtl_model *model, const gtl_optimizer *optimizer,
                          const char *path)
{
    const char *fn = "gtl_model_save";
    gtl__clear_error();
    if (model == NULL || path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: model and path must not be NULL", fn);
    if (!model->initialized)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: model not initialised", fn);
    if (model->grads_pending)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: gradients are pending; call gtl_model_apply() first", fn);
    gtl_model *m = (gtl_model *)model; /* read only */
    gtl__ckpt_writer *w = NULL;
    gtl_status st = gtl__ckpt_writer_create(-1, &w);
    if (st != GTL_STATUS_OK)
        return st;
    char key[64];
    st = gtl__ckpt_add_meta_str(w, "format", MODEL_FORMAT);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "format.version", MODEL_FORMAT_VERSION);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_str(w, "libgtl.version", GTL_VERSION_STRING);
    for (int k = 0; k < GTL__MODEL_NKEYS && st == GTL_STATUS_OK; k++) {
        bool is_int;
        const char *name = gtl__model_key_name(k, &is_int);
        if (name == NULL)
            continue;
        snprintf(key, sizeof key, "model.%s", name);
        st = is_int ? gtl__ckpt_add_meta_i64(w, key, m->iv[k])
                    : gtl__ckpt_add_meta_f64(w, key, m->fv[k]);
    }
    int64_t frozen = 0;
    for (int i = 0; i < GTL__MOD_COUNT; i++)
        frozen |= (int64_t)m->head.frozen[i] << i;
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "model.n_classes", m->head.cfg.n_classes);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "model.stage", m->stage);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "model.stage_step", m->stage_step);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "model.frozen", frozen);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_f64(w, "rng.spare", m->rng.spare);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_meta_i64(w, "rng.has_spare", m->rng.has_spare);
    int64_t four = 4;
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_add_tensor(w, "rng.state", GTL__CKPT_I64, 1, &four, m->rng.s);
    if (st == GTL_STATUS_OK)
        st = save_paramset(w, &m->head.body);
    if (st == GTL_STATUS_OK)
        st = save_paramset(w, &m->head.cls);
    for (int i = 0; i < 3 && st == GTL_STATUS_OK; i++) {
        gtl__bn_stats *b = bn_at(m, i);
        snprintf(key, sizeof key, "%s.mean", bn_names[i]);
        st = add_f32(w, key, 1, &b->n, b->mean);
        snprintf(key, sizeof key, "%s.var", bn_names[i]);
        if (st == GTL_STATUS_OK)
            st = add_f32(w, key, 1, &b->n, b->var);
    }
    if (st == GTL_STATUS_OK && optimizer != NULL)
        st = save_optimizer(w, optimizer, "optim.");
    if (st == GTL_STATUS_OK && m->rep_cls && m->rep_opt != NULL)
        st = save_optimizer(w, m->rep_opt, "rep_optim.");
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_write(w, path);
    gtl__ckpt_writer_destroy(w);
    return st;
}

/* ---- load ---- */

static gtl_status read_exact(gtl__ckpt_reader *r, const char *path, const char *name, int32_t nd,
                             const int64_t *ne, float *dst)
{
    const gtl__ckpt_tensor_info *ti = gtl__ckpt_find(r, name);
    if (ti == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s is missing", path, name);
    bool ok = ti->nd == nd && ti->dtype == GTL__CKPT_F32;
    for (int32_t i = 0; ok && i < nd; i++)
        ok = ti->ne[i] == ne[i];
    if (!ok)
        return gtl__error(GTL_STATUS_FORMAT, "%s: tensor %s has the wrong type or shape", path,
                          name);
    int64_t n = 1;
    for (int32_t i = 0; i < nd; i++)
        n *= ne[i];
    return gtl__ckpt_read_f32(r, name, dst, n);
}

static gtl_status load_optimizer(gtl__ckpt_reader *r, const char *path, const char *pre,
                                 gtl_optimizer **out)
{
    char kb[64];
    const char *fn = "gtl_model_load";
    int64_t kind, step, n_params, n_total;
    gtl_status st = gtl__ckpt_meta_i64(r, pk(kb, pre, "kind"), &kind);
    if (st != GTL_STATUS_OK)
        return st;
    if (kind < GTL_OPTIM_ADAM || kind > GTL_OPTIM_SGD)
        return gtl__error(GTL_STATUS_FORMAT, "%s: unknown optimizer kind %lld", path,
                          (long long)kind);
    gtl_optimizer *opt = NULL;
    st = gtl__optim_create((gtl_optim_kind)kind, &opt);
    if (st != GTL_STATUS_OK)
        return st;
    char key[64];
    int64_t *ibuf = NULL, *lbuf = NULL;
    float *m = NULL, *v = NULL;
    uint8_t *live = NULL;
    int64_t n_rows = 0;
    for (int k = 0; k < GTL__OPTIM_N_PARAMS && st == GTL_STATUS_OK; k++) {
        snprintf(key, sizeof key, "%s%s", pre, gtl__optim_param_name((gtl_optim_param)k));
        if (gtl__optim_param_is_int((gtl_optim_param)k)) {
            int64_t val;
            st = gtl__ckpt_meta_i64(r, key, &val);
            if (st == GTL_STATUS_OK)
                st = gtl__optim_set_i64(opt, (gtl_optim_param)k, val, fn);
        } else {
            double val;
            st = gtl__ckpt_meta_f64(r, key, &val);
            if (st == GTL_STATUS_OK)
                st = gtl__optim_set_f32(opt, (gtl_optim_param)k, (float)val, fn);
        }
        if (st == GTL_STATUS_INVALID_ARG)
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s", path, gtl__error_message());
    }
    const gtl__ckpt_tensor_info *ti = gtl__ckpt_find(r, pk(kb, pre, "milestones"));
    if (st == GTL_STATUS_OK && (ti == NULL || ti->dtype != GTL__CKPT_I64 || ti->nd != 1 ||
                                ti->ne[0] > GTL_OPTIM_MAX_MILESTONES))
        st = gtl__error(GTL_STATUS_FORMAT, "%s: optim.milestones is missing or malformed", path);
    if (st == GTL_STATUS_OK) {
        int64_t ms[GTL_OPTIM_MAX_MILESTONES];
        st = gtl__ckpt_read(r, pk(kb, pre, "milestones"), ms, sizeof ms);
        if (st == GTL_STATUS_OK)
            st = gtl__optim_set_milestones(opt, ms, ti->ne[0], fn);
        if (st == GTL_STATUS_INVALID_ARG)
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s", path, gtl__error_message());
    }
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, pk(kb, pre, "step"), &step);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, pk(kb, pre, "n_params"), &n_params);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, pk(kb, pre, "n_total"), &n_total);
    const gtl__ckpt_tensor_info *tp = gtl__ckpt_find(r, pk(kb, pre, "param_steps"));
    const gtl__ckpt_tensor_info *tm = gtl__ckpt_find(r, pk(kb, pre, "m"));
    const gtl__ckpt_tensor_info *tv = gtl__ckpt_find(r, pk(kb, pre, "v"));
    if (st == GTL_STATUS_OK &&
        (tp == NULL || tm == NULL || tv == NULL || tp->dtype != GTL__CKPT_I64 ||
         tm->dtype != GTL__CKPT_F32 || tv->dtype != GTL__CKPT_F32 || tp->nd != 1 ||
         tm->nd != 1 || tv->nd != 1 || n_params < 0 || n_total < 0 ||
         (tp->ne[0] != 0 && tp->ne[0] != n_params) || (tm->ne[0] != 0 && tm->ne[0] != n_total) ||
         (tv->ne[0] != 0 && tv->ne[0] != n_total)))
        st = gtl__error(GTL_STATUS_FORMAT, "%s: the optimizer state is inconsistent", path);
    if (st == GTL_STATUS_OK) {
        ibuf = tp->ne[0] ? gtl__malloc((size_t)tp->ne[0] * sizeof(int64_t)) : NULL;
        m = tm->ne[0] ? gtl__malloc_aligned((size_t)tm->ne[0] * sizeof(float)) : NULL;
        v = tv->ne[0] ? gtl__malloc_aligned((size_t)tv->ne[0] * sizeof(float)) : NULL;
        if ((tp->ne[0] && !ibuf) || (tm->ne[0] && !m) || (tv->ne[0] && !v))
            st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if (st == GTL_STATUS_OK && ibuf)
        st = gtl__ckpt_read(r, pk(kb, pre, "param_steps"), ibuf,
                            (size_t)tp->ne[0] * sizeof(int64_t));
    if (st == GTL_STATUS_OK && m)
        st = gtl__ckpt_read_f32(r, pk(kb, pre, "m"), m, tm->ne[0]);
    if (st == GTL_STATUS_OK && v)
        st = gtl__ckpt_read_f32(r, pk(kb, pre, "v"), v, tv->ne[0]);
    /* The live rows of lazy updates; absent in files written before them
     * (the optimizer then rebuilds the map from the moments). */
    const gtl__ckpt_tensor_info *tl = gtl__ckpt_find(r, pk(kb, pre, "live"));
    if (st == GTL_STATUS_OK && tl != NULL) {
        if (tl->dtype != GTL__CKPT_I64 || tl->nd != 1 || tl->ne[0] < 1 ||
            tl->ne[0] > n_total)
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %slive is malformed", path, pre);
        if (st == GTL_STATUS_OK) {
            n_rows = tl->ne[0];
            lbuf = gtl__malloc((size_t)n_rows * sizeof *lbuf);
            live = gtl__malloc((size_t)n_rows);
            if (lbuf == NULL || live == NULL)
                st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        }
        if (st == GTL_STATUS_OK)
            st = gtl__ckpt_read(r, pk(kb, pre, "live"), lbuf, (size_t)n_rows * sizeof *lbuf);
        for (int64_t k = 0; st == GTL_STATUS_OK && k < n_rows; k++) {
            if (lbuf[k] != 0 && lbuf[k] != 1)
                st = gtl__error(GTL_STATUS_FORMAT, "%s: %slive[%lld] is %lld", path, pre,
                                (long long)k, (long long)lbuf[k]);
            else
                live[k] = (uint8_t)lbuf[k];
        }
    }
    if (st == GTL_STATUS_OK) {
        gtl__optim_state s = {step, n_params, n_total, ibuf, m, v, n_rows, live};
        st = gtl__optim_set_state(opt, &s);
        if (st == GTL_STATUS_INVALID_ARG)
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s", path, gtl__error_message());
    }
    gtl__free(ibuf);
    gtl__free(lbuf);
    gtl__free(live);
    gtl__free_aligned(m);
    gtl__free_aligned(v);
    if (st != GTL_STATUS_OK) {
        gtl__optim_destroy(opt);
        return st;
    }
    *out = opt;
    return GTL_STATUS_OK;
}

static gtl_status load_into(gtl_model *m, gtl__ckpt_reader *r, const char *path)
{
    char key[64];
    const char *fmt;
    int64_t ver;
    gtl_status st = gtl__ckpt_meta_str(r, "format", &fmt);
    if (st == GTL_STATUS_OK && strcmp(fmt, MODEL_FORMAT) != 0)
        st = gtl__error(GTL_STATUS_FORMAT, "%s: not a libgtl model (format \"%s\")", path, fmt);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "format.version", &ver);
    if (st == GTL_STATUS_OK && ver != MODEL_FORMAT_VERSION)
        st = gtl__error(ver > MODEL_FORMAT_VERSION ? GTL_STATUS_UNSUPPORTED : GTL_STATUS_FORMAT,
                        "%s: model format version %lld (this libgtl reads %d)", path,
                        (long long)ver, MODEL_FORMAT_VERSION);
    for (int k = 0; k < GTL__MODEL_NKEYS && st == GTL_STATUS_OK; k++) {
        bool is_int;
        const char *name = gtl__model_key_name(k, &is_int);
        if (name == NULL)
            continue;
        snprintf(key, sizeof key, "model.%s", name);
        /* Keys added after format version 1 was first written: a file
         * without them keeps the defaults. */
        if (k >= GTL_MODEL_CAPACITY_START_NOVEL && !gtl__ckpt_has_meta(r, key, NULL))
            continue;
        double v;
        if (is_int) {
            int64_t iv;
            st = gtl__ckpt_meta_i64(r, key, &iv);
            v = (double)iv;
            if (st == GTL_STATUS_OK)
                m->iv[k] = iv;
        } else {
            st = gtl__ckpt_meta_f64(r, key, &v);
            if (st == GTL_STATUS_OK)
                m->fv[k] = (float)v;
        }
        if (st == GTL_STATUS_OK && !gtl__model_key_in_bounds(k, v))
            st = gtl__error(GTL_STATUS_FORMAT, "%s: %s = %g is out of range", path, key, v);
    }
    int64_t n_classes, stage, stage_step, frozen, has_spare;
    double spare;
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "model.n_classes", &n_classes);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "model.stage", &stage);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "model.stage_step", &stage_step);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "model.frozen", &frozen);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_f64(r, "rng.spare", &spare);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_meta_i64(r, "rng.has_spare", &has_spare);
    if (st == GTL_STATUS_OK &&
        (n_classes < 1 || n_classes > ((int64_t)1 << 20) || stage < -1 || stage > GTL_STAGE_N2 ||
         stage_step < 0 || frozen < 0 || frozen >= (1 << GTL__MOD_COUNT) || has_spare < 0 ||
         has_spare > 1))
        st = gtl__error(GTL_STATUS_FORMAT, "%s: model state out of range", path);
    if (st != GTL_STATUS_OK)
        return st;
    m->iv[GTL_MODEL_NUM_CLASSES] = n_classes;
    st = gtl__model_ensure_init(m, "gtl_model_load");
    if (st == GTL_STATUS_OK && n_classes != m->head.cfg.n_classes)
        st = gtl__head_reset_classifier(&m->head, n_classes, &m->rng);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__paramset *sets[2] = {&m->head.body, &m->head.cls};
    for (int s = 0; s < 2 && st == GTL_STATUS_OK; s++)
        for (int64_t i = 0; i < sets[s]->n_params && st == GTL_STATUS_OK; i++) {
            gtl__tensor *t = &sets[s]->params[i];
            st = read_exact(r, path, t->name, t->nd, t->ne, t->data);
        }
    for (int i = 0; i < 3 && st == GTL_STATUS_OK; i++) {
        gtl__bn_stats *b = bn_at(m, i);
        snprintf(key, sizeof key, "%s.mean", bn_names[i]);
        st = read_exact(r, path, key, 1, &b->n, b->mean);
        snprintf(key, sizeof key, "%s.var", bn_names[i]);
        if (st == GTL_STATUS_OK)
            st = read_exact(r, path, key, 1, &b->n, b->var);
    }
    const gtl__ckpt_tensor_info *ti = gtl__ckpt_find(r, "rng.state");
    if (st == GTL_STATUS_OK &&
        (ti == NULL || ti->dtype != GTL__CKPT_I64 || ti->nd != 1 || ti->ne[0] != 4))
        st = gtl__error(GTL_STATUS_FORMAT, "%s: rng.state is missing or malformed", path);
    if (st == GTL_STATUS_OK)
        st = gtl__ckpt_read(r, "rng.state", m->rng.s, sizeof m->rng.s);
    if (st != GTL_STATUS_OK)
        return st;
    m->rng.spare = spare;
    m->rng.has_spare = (int32_t)has_spare;
    /* B1/N1 with a trainable classifier: the classification term was on. */
    m->rep_cls = (stage == GTL_STAGE_B1 || stage == GTL_STAGE_N1) &&
                 ((frozen >> GTL__MOD_CLASSIFIER) & 1) == 0;
    if (stage >= 0) {
        st = gtl__model_configure_stage(m, (gtl_stage)stage);
        if (st != GTL_STATUS_OK)
            return st;
        m->stage = (int32_t)stage;
        m->stage_step = stage_step;
    }
    for (int i = 0; i < GTL__MOD_COUNT; i++)
        if (((frozen >> i) & 1) != m->head.frozen[i])
            gtl__head_set_frozen(&m->head, (gtl__module)i, (frozen >> i) & 1);
    if (m->rep_cls)
        gtl__paramset_set_frozen(&m->head.cls, GTL__P_CLS_CENTERS, true);
    return GTL_STATUS_OK;
}

gtl_status gtl_model_load(const char *path, gtl_model **out_model, gtl_optimizer **out_optimizer)
{
    const char *fn = "gtl_model_load";
    gtl__clear_error();
    if (out_optimizer != NULL)
        *out_optimizer = NULL;
    if (out_model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_model is NULL", fn);
    *out_model = NULL;
    if (path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: path is NULL", fn);
    gtl__ckpt_reader *r = NULL;
    gtl_status st = gtl__ckpt_open(path, &r);
    if (st != GTL_STATUS_OK)
        return st;
    gtl_model *m = NULL;
    gtl_optimizer *opt = NULL;
    st = gtl_model_create(&m);
    if (st == GTL_STATUS_OK)
        st = load_into(m, r, path);
    if (st == GTL_STATUS_OK && out_optimizer != NULL && gtl__ckpt_has_meta(r, "optim.kind", NULL))
        st = load_optimizer(r, path, "optim.", &opt);
    if (st == GTL_STATUS_OK && m->rep_cls && gtl__ckpt_has_meta(r, "rep_optim.kind", NULL))
        st = load_optimizer(r, path, "rep_optim.", &m->rep_opt);
    gtl__ckpt_close(r);
    if (st != GTL_STATUS_OK) {
        gtl_model_destroy(m);
        return st;
    }
    gtl__clear_error();
    *out_model = m;
    if (out_optimizer != NULL)
        *out_optimizer = opt;
    return GTL_STATUS_OK;
}
