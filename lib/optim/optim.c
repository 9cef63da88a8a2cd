/* Optimizer settings, schedule and checkpoint state. The update itself is in
 * optim_step.c. Formulas: docs/optimizers.md. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "optim/optim.h"

GTL_STATIC_ASSERT(GTL_OPTIM_PARAM_DECAY_GAMMA + 1 == GTL__OPTIM_N_PARAMS,
                  "GTL__OPTIM_N_PARAMS out of step with gtl_optim_param");

/* One row per gtl_optim_param: the closed range [lo, hi] it accepts.
 * "[0, 1)" ranges end at the largest float below 1. */
typedef struct param_info {
    const char *name;
    bool is_int;
    double lo;
    double hi;
} param_info;

#define BELOW_ONE 0x1.fffffep-1
#define MAX_STEPS 9007199254740992.0 /* 2^53: every integer up to it is a double */

static const param_info param_infos[GTL__OPTIM_N_PARAMS] = {
    [GTL_OPTIM_PARAM_LR] = {"LR", false, 0.0, 1000.0},
    [GTL_OPTIM_PARAM_BETA1] = {"BETA1", false, 0.0, BELOW_ONE},
    [GTL_OPTIM_PARAM_BETA2] = {"BETA2", false, 0.0, BELOW_ONE},
    [GTL_OPTIM_PARAM_EPS] = {"EPS", false, FLT_MIN, 1.0},
    [GTL_OPTIM_PARAM_WEIGHT_DECAY] = {"WEIGHT_DECAY", false, 0.0, 1000.0},
    [GTL_OPTIM_PARAM_MOMENTUM] = {"MOMENTUM", false, 0.0, BELOW_ONE},
    [GTL_OPTIM_PARAM_NESTEROV] = {"NESTEROV", true, 0.0, 1.0},
    [GTL_OPTIM_PARAM_CLIP_NORM] = {"CLIP_NORM", false, 0.0, FLT_MAX},
    [GTL_OPTIM_PARAM_WARMUP_STEPS] = {"WARMUP_STEPS", true, 0.0, MAX_STEPS},
    [GTL_OPTIM_PARAM_WARMUP_START_FACTOR] = {"WARMUP_START_FACTOR", false, 0.0, 1.0},
    [GTL_OPTIM_PARAM_DECAY_GAMMA] = {"DECAY_GAMMA", false, 0.0, 1.0},
};

bool gtl__optim_param_valid(gtl_optim_param key)
{
    return (int)key >= 0 && (int)key < GTL__OPTIM_N_PARAMS;
}

bool gtl__optim_param_is_int(gtl_optim_param key)
{
    GTL_ASSERT(gtl__optim_param_valid(key));
    return param_infos[key].is_int;
}

void gtl__optim_param_bounds(gtl_optim_param key, double *out_lo, double *out_hi)
{
    GTL_ASSERT(gtl__optim_param_valid(key));
    *out_lo = param_infos[key].lo;
    *out_hi = param_infos[key].hi;
}

const char *gtl__optim_param_name(gtl_optim_param key)
{
    return gtl__optim_param_valid(key) ? param_infos[key].name : "unknown";
}

void gtl__optim_config_default(gtl__optim_config *cfg, gtl_optim_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->lr = 1e-3f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    /* torch.optim.AdamW defaults to 1e-2; Adam and SGD to 0. */
    cfg->weight_decay = kind == GTL_OPTIM_ADAMW ? 1e-2f : 0.0f;
    cfg->momentum = 0.0f;
    cfg->nesterov = 0;
    cfg->clip_norm = 0.0f;
    cfg->warmup_steps = 0;
    cfg->warmup_start_factor = 0.01f;
    cfg->decay_gamma = 0.1f;
    cfg->n_milestones = 0;
}

gtl_status gtl__optim_create(gtl_optim_kind kind, gtl_optimizer **out_opt)
{
    *out_opt = NULL;
    if (kind != GTL_OPTIM_ADAM && kind != GTL_OPTIM_ADAMW && kind != GTL_OPTIM_SGD)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_optimizer_create: kind %d is not a gtl_optim_kind", (int)kind);
    gtl_optimizer *opt = gtl__calloc(1, sizeof *opt);
    if (opt == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_optimizer_create: out of memory");
    gtl__optim_config_default(&opt->cfg, kind);
    *out_opt = opt;
    return GTL_STATUS_OK;
}

void gtl__optim_free_state(gtl_optimizer *opt)
{
    gtl__free(opt->param_steps);
    gtl__free_aligned(opt->m);
    gtl__free_aligned(opt->v);
    gtl__free(opt->live);
    gtl__free(opt->row_span);
    opt->param_steps = NULL;
    opt->m = NULL;
    opt->v = NULL;
    opt->live = NULL;
    opt->row_span = NULL;
    opt->bound = false;
    opt->rows_unset = false;
    opt->n_params = 0;
    opt->n_total = 0;
    opt->n_rows = 0;
}

void gtl__optim_destroy(gtl_optimizer *opt)
{
    if (opt == NULL)
        return;
    gtl__optim_free_state(opt);
    gtl__free(opt->group_of);
    gtl__free(opt);
}

void gtl__optim_reset(gtl_optimizer *opt)
{
    /* Forget the state and the binding: the next step binds to whatever
     * parameter set it is given (a new stage may train other parameters).
     * The buffers stay as spares: a binding of the same layout reuses them
     * (ensure_state, optim_step.c), which saves the allocation and the page
     * faults of tens of megabytes per stage. */
    opt->step = 0;
    opt->bound = false;
}

void gtl__optim_zero_rows(gtl_optimizer *opt, uint8_t live)
{
    GTL_ASSERT(opt->row_span != NULL && opt->live != NULL);
    for (int64_t r = 0; r < opt->n_rows; r++) {
        if (opt->live[r] != live)
            continue;
        size_t bytes = (size_t)opt->row_span[2 * r + 1] * sizeof(float);
        if (opt->m != NULL)
            memset(opt->m + opt->row_span[2 * r], 0, bytes);
        if (opt->v != NULL)
            memset(opt->v + opt->row_span[2 * r], 0, bytes);
    }
}

/* ---- settings ------------------------------------------------------------ */

static gtl_status check_key(gtl_optim_param key, bool want_int, const char *fn)
{
    if (!gtl__optim_param_valid(key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: key %d is not a gtl_optim_param", fn,
                          (int)key);
    if (param_infos[key].is_int != want_int)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is %s setting; use gtl_optimizer_%s",
                          fn, param_infos[key].name,
                          want_int ? "a float" : "an integer",
                          want_int ? "set_f32/get_f32" : "set_i64/get_i64");
    return GTL_STATUS_OK;
}

gtl_status gtl__optim_set_f32(gtl_optimizer *opt, gtl_optim_param key, float value,
                              const char *fn)
{
    gtl_status st = check_key(key, false, fn);
    if (st != GTL_STATUS_OK)
        return st;
    const param_info *pi = &param_infos[key];
    /* Written so that NaN fails too. */
    if (!((double)value >= pi->lo && (double)value <= pi->hi))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s must be in [%.9g, %.9g] (got %.9g)",
                          fn, pi->name, pi->lo, pi->hi, (double)value);
    gtl__optim_config *c = &opt->cfg;
    switch (key) {
    case GTL_OPTIM_PARAM_LR:
        c->lr = value;
        break;
    case GTL_OPTIM_PARAM_BETA1:
        c->beta1 = value;
        break;
    case GTL_OPTIM_PARAM_BETA2:
        c->beta2 = value;
        break;
    case GTL_OPTIM_PARAM_EPS:
        c->eps = value;
        break;
    case GTL_OPTIM_PARAM_WEIGHT_DECAY:
        c->weight_decay = value;
        break;
    case GTL_OPTIM_PARAM_MOMENTUM:
        c->momentum = value;
        break;
    case GTL_OPTIM_PARAM_CLIP_NORM:
        c->clip_norm = value;
        break;
    case GTL_OPTIM_PARAM_WARMUP_START_FACTOR:
        c->warmup_start_factor = value;
        break;
    case GTL_OPTIM_PARAM_DECAY_GAMMA:
        c->decay_gamma = value;
        break;
    default:
        return gtl__error(GTL_STATUS_INTERNAL, "%s: no float field for %s", fn, pi->name);
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__optim_set_i64(gtl_optimizer *opt, gtl_optim_param key, int64_t value,
                              const char *fn)
{
    gtl_status st = check_key(key, true, fn);
    if (st != GTL_STATUS_OK)
        return st;
    const param_info *pi = &param_infos[key];
    /* Integer bounds are exact doubles (at most 2^53): compare as integers. */
    if (value < (int64_t)pi->lo || value > (int64_t)pi->hi)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s must be in [%lld, %lld] (got %lld)",
                          fn, pi->name, (long long)pi->lo, (long long)pi->hi,
                          (long long)value);
    switch (key) {
    case GTL_OPTIM_PARAM_NESTEROV:
        opt->cfg.nesterov = value;
        break;
    case GTL_OPTIM_PARAM_WARMUP_STEPS:
        opt->cfg.warmup_steps = value;
        break;
    default:
        return gtl__error(GTL_STATUS_INTERNAL, "%s: no integer field for %s", fn, pi->name);
    }
    return GTL_STATUS_OK;
}

float gtl__optim_get_f32(const gtl_optimizer *opt, gtl_optim_param key)
{
    const gtl__optim_config *c = &opt->cfg;
    switch (key) {
    case GTL_OPTIM_PARAM_LR:
        return c->lr;
    case GTL_OPTIM_PARAM_BETA1:
        return c->beta1;
    case GTL_OPTIM_PARAM_BETA2:
        return c->beta2;
    case GTL_OPTIM_PARAM_EPS:
        return c->eps;
    case GTL_OPTIM_PARAM_WEIGHT_DECAY:
        return c->weight_decay;
    case GTL_OPTIM_PARAM_MOMENTUM:
        return c->momentum;
    case GTL_OPTIM_PARAM_CLIP_NORM:
        return c->clip_norm;
    case GTL_OPTIM_PARAM_WARMUP_START_FACTOR:
        return c->warmup_start_factor;
    case GTL_OPTIM_PARAM_DECAY_GAMMA:
        return c->decay_gamma;
    default:
        GTL_ASSERT(!"not a float key");
        return 0.0f;
    }
}

int64_t gtl__optim_get_i64(const gtl_optimizer *opt, gtl_optim_param key)
{
    switch (key) {
    case GTL_OPTIM_PARAM_NESTEROV:
        return opt->cfg.nesterov;
    case GTL_OPTIM_PARAM_WARMUP_STEPS:
        return opt->cfg.warmup_steps;
    default:
        GTL_ASSERT(!"not an integer key");
        return 0;
    }
}

gtl_status gtl__optim_set_milestones(gtl_optimizer *opt, const int64_t *steps, int64_t n,
                                     const char *fn)
{
    if (n > GTL_OPTIM_MAX_MILESTONES)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %lld milestones; at most %d allowed", fn,
                          (long long)n, GTL_OPTIM_MAX_MILESTONES);
    if (n > 0 && steps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: steps is NULL but n_steps is %lld", fn,
                          (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (steps[i] < 0)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: milestone %lld is negative (%lld)",
                              fn, (long long)i, (long long)steps[i]);
        if (i > 0 && steps[i] <= steps[i - 1])
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "%s: milestones must be strictly increasing "
                              "(steps[%lld] = %lld after %lld)",
                              fn, (long long)i, (long long)steps[i], (long long)steps[i - 1]);
    }
    if (n > 0)
        memcpy(opt->cfg.milestones, steps, (size_t)n * sizeof *steps);
    opt->cfg.n_milestones = n;
    return GTL_STATUS_OK;
}

/* ---- schedule ------------------------------------------------------------ */

double gtl__optim_lr_at(const gtl__optim_config *cfg, int64_t step)
{
    GTL_ASSERT(step >= 0);
    double f = 1.0;
    if (step < cfg->warmup_steps) {
        /* torch LinearLR closed form: start + (end - start) * min(T, k) / T. */
        double s = cfg->warmup_start_factor;
        f = s + (1.0 - s) * (double)step / (double)cfg->warmup_steps;
    }
    int64_t k = 0;
    while (k < cfg->n_milestones && cfg->milestones[k] <= step)
        k++;
    for (int64_t i = 0; i < k; i++)
        f *= cfg->decay_gamma;
    return (double)cfg->lr * f;
}

/* ---- checkpoint state ------------------------------------------------------ */

void gtl__optim_get_state(const gtl_optimizer *opt, gtl__optim_state *out)
{
    memset(out, 0, sizeof *out);
    out->step = opt->step;
    if (!opt->bound)
        return;
    /* A state has zero moments in never-live rows; the buffers may still
     * hold uninitialised memory there. Zeroing them is invisible to every
     * other reader (no step reads a dead row), so a const optimizer may do it;
     * the lock keeps two concurrent exports (saves) from racing. */
#pragma omp critical(gtl__optim_export)
    {
        if (opt->rows_unset) {
            gtl_optimizer *w = (gtl_optimizer *)opt;
            gtl__optim_zero_rows(w, 0);
            w->rows_unset = false;
        }
    }
    out->n_params = opt->n_params;
    out->n_total = opt->n_total;
    out->param_steps = opt->param_steps;
    out->m = opt->m;
    out->v = opt->v;
    out->n_rows = opt->live != NULL ? opt->n_rows : 0;
    out->live = opt->live;
}

gtl_status gtl__optim_set_state(gtl_optimizer *opt, const gtl__optim_state *st)
{
    if (st->step < 0 || st->n_params < 0 || st->n_total < 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "optimizer state: negative counter (step %lld, n_params %lld, "
                          "n_total %lld)",
                          (long long)st->step, (long long)st->n_params,
                          (long long)st->n_total);
    if (st->n_total == 0 && (st->m != NULL || st->v != NULL))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "optimizer state: moment blobs given for an empty layout");
    if (st->n_params == 0 && st->param_steps != NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "optimizer state: per-parameter steps given for an empty layout");
    if (st->param_steps != NULL)
        for (int64_t i = 0; i < st->n_params; i++)
            if (st->param_steps[i] < 0 || st->param_steps[i] > st->step)
                return gtl__error(GTL_STATUS_INVALID_ARG,
                                  "optimizer state: parameter %lld has step count %lld, "
                                  "outside [0, %lld]",
                                  (long long)i, (long long)st->param_steps[i],
                                  (long long)st->step);
    if (st->n_rows < 0 || (st->n_rows == 0) != (st->live == NULL) ||
        (st->n_rows > 0 && st->n_total == 0))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "optimizer state: %lld tracked rows for a %s live map and a layout "
                          "of %lld floats",
                          (long long)st->n_rows, st->live != NULL ? "given" : "missing",
                          (long long)st->n_total);
    for (int64_t r = 0; r < st->n_rows; r++)
        if (st->live[r] > 1)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "optimizer state: live flag of row %lld is %d (not 0 or 1)",
                              (long long)r, (int)st->live[r]);

    if (st->n_params == 0 && st->n_total == 0) {
        gtl__optim_free_state(opt);
        opt->step = st->step;
        return GTL_STATUS_OK;
    }

    /* Allocate everything first so that a failure leaves opt unchanged. */
    int64_t *steps = NULL;
    float *m = NULL;
    float *v = NULL;
    uint8_t *live = NULL;
    size_t blob_bytes = (size_t)st->n_total * sizeof(float);
    steps = gtl__calloc((size_t)(st->n_params ? st->n_params : 1), sizeof *steps);
    if (steps == NULL)
        goto out_oom;
    if (st->m != NULL) {
        m = gtl__malloc_aligned(blob_bytes);
        if (m == NULL)
            goto out_oom;
        memcpy(m, st->m, blob_bytes);
    }
    if (st->v != NULL) {
        v = gtl__malloc_aligned(blob_bytes);
        if (v == NULL)
            goto out_oom;
        memcpy(v, st->v, blob_bytes);
    }
    if (st->live != NULL) {
        live = gtl__malloc((size_t)st->n_rows);
        if (live == NULL)
            goto out_oom;
        memcpy(live, st->live, (size_t)st->n_rows);
    }
    if (st->param_steps != NULL)
        memcpy(steps, st->param_steps, (size_t)st->n_params * sizeof *steps);

    gtl__optim_free_state(opt);
    opt->bound = true;
    opt->n_params = st->n_params;
    opt->n_total = st->n_total;
    opt->param_steps = steps;
    opt->m = m;
    opt->v = v;
    opt->n_rows = st->n_rows;
    opt->live = live;
    opt->step = st->step;
    return GTL_STATUS_OK;

out_oom:
    gtl__free(live);
    gtl__free_aligned(v);
    gtl__free_aligned(m);
    gtl__free(steps);
    return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                      "optimizer state: out of memory for %lld parameters, %lld floats",
                      (long long)st->n_params, (long long)st->n_total);
}
