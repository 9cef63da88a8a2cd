/* Public optimizer functions (include/gtl/optim.h): argument checks, then the
 * internal optimizer in lib/optim/. Binding to a model (the public step)
 * comes with the model handle. */
#include "core/core.h"
#include "gtl/optim.h"
#include "optim/optim.h"

gtl_status gtl_optimizer_create(gtl_optim_kind kind, gtl_optimizer **out_opt)
{
    gtl__clear_error();
    if (out_opt == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_create: out_opt is NULL");
    return gtl__optim_create(kind, out_opt);
}

void gtl_optimizer_destroy(gtl_optimizer *opt)
{
    gtl__optim_destroy(opt);
}

gtl_status gtl_optimizer_reset(gtl_optimizer *opt)
{
    gtl__clear_error();
    if (opt == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_reset: opt is NULL");
    gtl__optim_reset(opt);
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_set_f32(gtl_optimizer *opt, gtl_optim_param key, float value)
{
    gtl__clear_error();
    if (opt == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_set_f32: opt is NULL");
    return gtl__optim_set_f32(opt, key, value, "gtl_optimizer_set_f32");
}

gtl_status gtl_optimizer_set_i64(gtl_optimizer *opt, gtl_optim_param key, int64_t value)
{
    gtl__clear_error();
    if (opt == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_set_i64: opt is NULL");
    return gtl__optim_set_i64(opt, key, value, "gtl_optimizer_set_i64");
}

/* Shared checks of the two getters: NULL handle or out pointer, unknown key,
 * key of the other type. */
static gtl_status check_get(const gtl_optimizer *opt, gtl_optim_param key, const void *out,
                            bool want_int, const char *fn)
{
    if (opt == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: opt is NULL", fn);
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_value is NULL", fn);
    if (!gtl__optim_param_valid(key))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: key %d is not a gtl_optim_param", fn,
                          (int)key);
    if (gtl__optim_param_is_int(key) != want_int)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is %s setting", fn,
                          gtl__optim_param_name(key), want_int ? "a float" : "an integer");
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_get_f32(const gtl_optimizer *opt, gtl_optim_param key,
                                 float *out_value)
{
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0.0f;
    gtl_status st = check_get(opt, key, out_value, false, "gtl_optimizer_get_f32");
    if (st != GTL_STATUS_OK)
        return st;
    *out_value = gtl__optim_get_f32(opt, key);
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_get_i64(const gtl_optimizer *opt, gtl_optim_param key,
                                 int64_t *out_value)
{
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0;
    gtl_status st = check_get(opt, key, out_value, true, "gtl_optimizer_get_i64");
    if (st != GTL_STATUS_OK)
        return st;
    *out_value = gtl__optim_get_i64(opt, key);
    return GTL_STATUS_OK;
}

gtl_status gtl_optim_param_bounds(gtl_optim_param key, double *out_lo, double *out_hi)
{
    gtl__clear_error();
    if (out_lo != NULL)
        *out_lo = 0.0;
    if (out_hi != NULL)
        *out_hi = 0.0;
    if (out_lo == NULL || out_hi == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optim_param_bounds: %s is NULL",
                          out_lo == NULL ? "out_lo" : "out_hi");
    if (!gtl__optim_param_valid(key))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_optim_param_bounds: key %d is not a gtl_optim_param", (int)key);
    gtl__optim_param_bounds(key, out_lo, out_hi);
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_set_milestones(gtl_optimizer *opt, const int64_t *steps,
                                        size_t n_steps)
{
    gtl__clear_error();
    if (opt == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_set_milestones: opt is NULL");
    if (n_steps > GTL_OPTIM_MAX_MILESTONES)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_optimizer_set_milestones: %zu milestones; at most %d allowed",
                          n_steps, GTL_OPTIM_MAX_MILESTONES);
    return gtl__optim_set_milestones(opt, steps, (int64_t)n_steps, "gtl_optimizer_set_milestones");
}

gtl_status gtl_optimizer_get_milestones(const gtl_optimizer *opt, int64_t *dst,
                                        size_t dst_capacity, size_t *out_n)
{
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (opt == NULL || out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_get_milestones: %s is NULL",
                          opt == NULL ? "opt" : "out_n");
    if (dst == NULL && dst_capacity > 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_optimizer_get_milestones: dst is NULL but dst_capacity is %zu",
                          dst_capacity);
    size_t n = (size_t)opt->cfg.n_milestones;
    *out_n = n;
    if (dst_capacity < n)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_optimizer_get_milestones: dst_capacity %zu is too small "
                          "(need %zu)",
                          dst_capacity, n);
    for (size_t i = 0; i < n; i++)
        dst[i] = opt->cfg.milestones[i];
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_lr_at(const gtl_optimizer *opt, int64_t step, float *out_lr)
{
    gtl__clear_error();
    if (out_lr != NULL)
        *out_lr = 0.0f;
    if (opt == NULL || out_lr == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_lr_at: %s is NULL",
                          opt == NULL ? "opt" : "out_lr");
    if (step < 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_optimizer_lr_at: step must be >= 0 (got %lld)", (long long)step);
    *out_lr = (float)gtl__optim_lr_at(&opt->cfg, step);
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_kind(const gtl_optimizer *opt, gtl_optim_kind *out_kind)
{
    gtl__clear_error();
    if (out_kind != NULL)
        *out_kind = GTL_OPTIM_ADAM;
    if (opt == NULL || out_kind == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_kind: NULL argument");
    *out_kind = opt->cfg.kind;
    return GTL_STATUS_OK;
}

gtl_status gtl_optimizer_num_steps(const gtl_optimizer *opt, int64_t *out_n_steps)
{
    gtl__clear_error();
    if (out_n_steps != NULL)
        *out_n_steps = 0;
    if (opt == NULL || out_n_steps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_optimizer_num_steps: %s is NULL",
                          opt == NULL ? "opt" : "out_n_steps");
    *out_n_steps = opt->step;
    return GTL_STATUS_OK;
}
