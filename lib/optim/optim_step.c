/* One optimizer step over a parameter set: group resolution, the finite
 * check and global-norm clipping, then Adam / AdamW / SGD on each parameter's
 * slice of the flat blobs. See docs/optimizers.md for the formulas.
 *
 * The element loops follow the operation order of PyTorch 1.13's
 * single-tensor (for-loop) CPU implementations, with scalars formed in double
 * and rounded to float where PyTorch passes a Python float into a float32
 * kernel, so trajectories agree with torch to a few ulps. */
#include <math.h>
#include <string.h>

#include "optim/optim.h"

/* opt->group_of values besides a group index >= 0. */
#define GROUP_DEFAULT (-1) /* in no group: lr multiplier 1, the optimizer's decay */
#define GROUP_SKIP (-2)    /* frozen (in the paramset or by its group): left alone */

/* Element loops run in parallel only for slices large enough to pay for it;
 * every element is independent, so results do not depend on the thread count. */
#define PAR_MIN 32768

static gtl_status check_groups(const gtl__paramset *ps, const gtl__optim_group *groups,
                               int64_t n_groups)
{
    if (n_groups < 0 || n_groups > INT32_MAX)
        return gtl__error(GTL_STATUS_INVALID_ARG, "optimizer step: n_groups %lld out of range",
                          (long long)n_groups);
    if (n_groups > 0 && groups == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "optimizer step: groups is NULL but n_groups is %lld",
                          (long long)n_groups);
    for (int64_t g = 0; g < n_groups; g++) {
        const gtl__optim_group *gr = &groups[g];
        if (gr->n_indices < 0 || (gr->n_indices > 0 && gr->indices == NULL))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "optimizer step: group %lld has %lld indices and indices %s",
                              (long long)g, (long long)gr->n_indices,
                              gr->indices == NULL ? "NULL" : "set");
        if (!(gr->lr_mult >= 0.0f) || isinf(gr->lr_mult))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "optimizer step: group %lld lr_mult must be finite and >= 0 "
                              "(got %g)",
                              (long long)g, (double)gr->lr_mult);
        if (isnan(gr->weight_decay) || isinf(gr->weight_decay))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "optimizer step: group %lld weight_decay is not finite",
                              (long long)g);
        for (int64_t k = 0; k < gr->n_indices; k++)
            if (gr->indices[k] < 0 || gr->indices[k] >= ps->n_params)
                return gtl__error(GTL_STATUS_INVALID_ARG,
                                  "optimizer step: group %lld index %lld out of range "
                                  "[0, %lld)",
                                  (long long)g, (long long)gr->indices[k],
                                  (long long)ps->n_params);
    }
    return GTL_STATUS_OK;
}

/* Fills go[0..n_params) with each parameter's group, GROUP_DEFAULT or
 * GROUP_SKIP. Only the scratch array is written. */
static gtl_status resolve_groups(int32_t *go, const gtl__paramset *ps,
                                 const gtl__optim_group *groups, int64_t n_groups)
{
    for (int64_t i = 0; i < ps->n_params; i++)
        go[i] = GROUP_DEFAULT;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t k = 0; k < groups[g].n_indices; k++) {
            int64_t i = groups[g].indices[k];
            if (go[i] != GROUP_DEFAULT)
                return gtl__error(GTL_STATUS_INVALID_ARG,
                                  "optimizer step: parameter '%s' is in groups %d and %lld",
                                  ps->names[i], (int)go[i], (long long)g);
            go[i] = (int32_t)g;
        }
    for (int64_t i = 0; i < ps->n_params; i++)
        if (ps->frozen[i] || (go[i] >= 0 && groups[go[i]].frozen))
            go[i] = GROUP_SKIP;
    return GTL_STATUS_OK;
}

/* Sum of squares of the active gradients, in double: squares of finite floats
 * cannot overflow a double, so the result is finite iff every gradient is. */
static double active_sumsq(const gtl__paramset *ps, const int32_t *go)
{
    double s = 0.0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        if (go != NULL && go[i] == GROUP_SKIP)
            continue;
        if (go == NULL && ps->frozen[i])
            continue;
        const float *g = ps->grad + ps->offsets[i];
        double si = 0.0;
        for (int64_t j = 0; j < ps->params[i].n; j++)
            si += (double)g[j] * (double)g[j];
        s += si;
    }
    return s;
}

/* The NUMERIC message, naming the first non-finite gradient element. */
static gtl_status non_finite_error(const gtl__paramset *ps, const int32_t *go, const char *what)
{
    for (int64_t i = 0; i < ps->n_params; i++) {
        if (go != NULL ? go[i] == GROUP_SKIP : ps->frozen[i])
            continue;
        const float *g = ps->grad + ps->offsets[i];
        for (int64_t j = 0; j < ps->params[i].n; j++)
            if (!isfinite(g[j]))
                return gtl__error(GTL_STATUS_NUMERIC,
                                  "%s: gradient of '%s' is %s at element %lld; "
                                  "nothing was changed",
                                  what, ps->names[i], isnan(g[j]) ? "NaN" : "infinite",
                                  (long long)j);
    }
    return gtl__error(GTL_STATUS_NUMERIC, "%s: gradient norm is not finite; nothing was changed",
                      what);
}

/* clip_grad_norm_: coef = max_norm / (norm + 1e-6), in float32 as torch
 * computes it on a float32 norm tensor; applied only when it shrinks. */
static void clip_active(gtl__paramset *ps, const int32_t *go, float max_norm, double norm)
{
    float coef = max_norm / ((float)norm + 1e-6f);
    if (!(coef < 1.0f))
        return;
    for (int64_t i = 0; i < ps->n_params; i++) {
        if (go != NULL ? go[i] == GROUP_SKIP : ps->frozen[i])
            continue;
        float *g = ps->grad + ps->offsets[i];
        int64_t n = ps->params[i].n;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t j = 0; j < n; j++)
            g[j] *= coef;
    }
}

static gtl_status check_paramset(const gtl__paramset *ps, const char *what)
{
    if (!ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: parameter set not finalized", what);
    if (ps->grad == NULL)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: no gradients yet (run a backward pass before stepping)", what);
    return GTL_STATUS_OK;
}

gtl_status gtl__optim_clip_grad_norm(gtl__paramset *ps, float max_norm, float *out_norm)
{
    *out_norm = 0.0f;
    if (!(max_norm >= 0.0f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "clip_grad_norm: max_norm must be >= 0 (got %g)",
                          (double)max_norm);
    gtl_status st = check_paramset(ps, "clip_grad_norm");
    if (st != GTL_STATUS_OK)
        return st;
    double norm = sqrt(active_sumsq(ps, NULL));
    if (!isfinite(norm))
        return non_finite_error(ps, NULL, "clip_grad_norm");
    clip_active(ps, NULL, max_norm, norm);
    *out_norm = (float)norm;
    return GTL_STATUS_OK;
}

gtl_status gtl__optim_select_prefix(const gtl__paramset *ps, const char *prefix, int64_t *dst,
                                    int64_t cap, int64_t *out_n)
{
    *out_n = 0;
    size_t len = strlen(prefix);
    int64_t n = 0;
    for (int64_t i = 0; i < ps->n_params; i++)
        if (strncmp(ps->names[i], prefix, len) == 0)
            n++;
    *out_n = n;
    if (n > cap || (n > 0 && dst == NULL))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "select_prefix: %lld parameters match '%s' but cap is %lld",
                          (long long)n, prefix, (long long)cap);
    n = 0;
    for (int64_t i = 0; i < ps->n_params; i++)
        if (strncmp(ps->names[i], prefix, len) == 0)
            dst[n++] = i;
    return GTL_STATUS_OK;
}

/* ---- per-parameter updates -------------------------------------------------- */

/* The Adam inner loops. GTL_OPTIM_CLONES builds an AVX2 copy next to the
 * baseline one, chosen at load time by the CPU (GCC function multiversioning);
 * the file is compiled with -fno-math-errno so sqrtf vectorises. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#  define GTL_OPTIM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#  define GTL_OPTIM_CLONES
#endif

GTL_OPTIM_CLONES
static void adam_loop_plain(float *restrict p, const float *restrict grad, float *restrict m,
                            float *restrict v, int64_t n, float b1, float b2, float omb1,
                            float omb2, float neg_step, float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j];
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step * m[j] / denom;
    }
}

GTL_OPTIM_CLONES
static void adam_loop_l2(float *restrict p, const float *restrict grad, float *restrict m,
                         float *restrict v, int64_t n, float l2, float b1, float b2, float omb1,
                         float omb2, float neg_step, float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j] + l2 * p[j];
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step * m[j] / denom;
    }
}

GTL_OPTIM_CLONES
static void adam_loop_decoupled(float *restrict p, const float *restrict grad, float *restrict m,
                                float *restrict v, int64_t n, float shrink, float b1, float b2,
                                float omb1, float omb2, float neg_step, float bc2_sqrt,
                                float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j];
        float pj = p[j] * shrink;
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = pj + neg_step * m[j] / denom;
    }
}

/* torch.optim.Adam / AdamW (_single_tensor_adam/_adamw, amsgrad off):
 *   Adam:  g += wd * p                      AdamW: p *= 1 - lr * wd
 *   m = m * b1 + (1 - b1) * g
 *   v = v * b2 + (1 - b2) * g * g
 *   p += (-lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static void adam_update(float *p, const float *grad, float *m, float *v, int64_t n,
                        const gtl__optim_config *c, double lr, float wd, int64_t t)
{
    bool decoupled = c->kind == GTL_OPTIM_ADAMW;
    float l2 = decoupled ? 0.0f : wd;
    float shrink = (float)(1.0 - lr * (double)wd);
    float b1 = c->beta1;
    float b2 = c->beta2;
    float omb1 = (float)(1.0 - (double)c->beta1);
    float omb2 = (float)(1.0 - (double)c->beta2);
    double bc1 = 1.0 - pow((double)c->beta1, (double)t);
    double bc2 = 1.0 - pow((double)c->beta2, (double)t);
    float neg_step = (float)(-(lr / bc1));
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = c->eps;
    /* Three specialised loops (no branch inside, so they vectorise; each
     * element's arithmetic is exactly the scalar formula's, so results are
     * bit-identical to it). */
    if (decoupled)
        adam_loop_decoupled(p, grad, m, v, n, shrink, b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps);
    else if (l2 != 0.0f)
        adam_loop_l2(p, grad, m, v, n, l2, b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps);
    else
        adam_loop_plain(p, grad, m, v, n, b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps);
}

/* torch.optim.SGD (_single_tensor_sgd, dampening 0):
 *   g += wd * p
 *   momentum: buf = buf * mu + g (buf starts at zero, which equals torch's
 *             clone of the first g); g = nesterov ? g + mu * buf : buf
 *   p += -lr * g */
static void sgd_update(float *p, const float *grad, float *buf, int64_t n,
                       const gtl__optim_config *c, double lr, float wd)
{
    float mu = c->momentum;
    bool nesterov = c->nesterov != 0;
    float neg_lr = (float)(-lr);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j];
        if (wd != 0.0f)
            g = g + wd * p[j];
        if (mu != 0.0f) {
            buf[j] = buf[j] * mu + g;
            g = nesterov ? g + mu * buf[j] : buf[j];
        }
        p[j] = p[j] + neg_lr * g;
    }
}

/* Allocates what the current settings need and the layout is missing. Only
 * zero-filled buffers are added, which equal "no state yet". */
static gtl_status ensure_state(gtl_optimizer *opt, const gtl__paramset *ps)
{
    if (!opt->bound) {
        GTL_ASSERT(opt->param_steps == NULL && opt->m == NULL && opt->v == NULL);
        opt->n_params = ps->n_params;
        opt->n_total = ps->n_total;
        opt->bound = true;
    }
    size_t blob_bytes = (size_t)(opt->n_total ? opt->n_total : 16) * sizeof(float);
    if (opt->param_steps == NULL) {
        opt->param_steps = gtl__calloc((size_t)(opt->n_params ? opt->n_params : 1),
                                       sizeof *opt->param_steps);
        if (opt->param_steps == NULL)
            goto out_oom;
    }
    bool adam = opt->cfg.kind != GTL_OPTIM_SGD;
    if (opt->m == NULL && (adam || opt->cfg.momentum != 0.0f)) {
        opt->m = gtl__calloc_aligned(blob_bytes);
        if (opt->m == NULL)
            goto out_oom;
    }
    if (opt->v == NULL && adam) {
        opt->v = gtl__calloc_aligned(blob_bytes);
        if (opt->v == NULL)
            goto out_oom;
    }
    return GTL_STATUS_OK;

out_oom:
    return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                      "optimizer step: out of memory for the state of %lld floats",
                      (long long)opt->n_total);
}

gtl_status gtl__optim_step(gtl_optimizer *opt, gtl__paramset *ps, const gtl__optim_group *groups,
                           int64_t n_groups, float *out_grad_norm)
{
    static const char what[] = "optimizer step";
    if (out_grad_norm != NULL)
        *out_grad_norm = 0.0f;
    if (opt == NULL || ps == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is NULL", what,
                          opt == NULL ? "optimizer" : "parameter set");
    gtl_status st = check_paramset(ps, what);
    if (st != GTL_STATUS_OK)
        return st;
    if (opt->bound && (ps->n_params != opt->n_params || ps->n_total != opt->n_total))
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: the state is for %lld parameters (%lld floats) but the "
                          "parameter set has %lld (%lld floats)",
                          what, (long long)opt->n_params, (long long)opt->n_total,
                          (long long)ps->n_params, (long long)ps->n_total);
    const gtl__optim_config *c = &opt->cfg;
    if (c->kind == GTL_OPTIM_SGD && c->nesterov && c->momentum == 0.0f)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: Nesterov momentum needs MOMENTUM > 0",
                          what);
    st = check_groups(ps, groups, n_groups);
    if (st != GTL_STATUS_OK)
        return st;

    /* The group scratch is not state: growing it changes nothing observable. */
    if (opt->cap_group_of < ps->n_params) {
        int32_t *go = gtl__realloc(opt->group_of, (size_t)ps->n_params * sizeof *go);
        if (go == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", what);
        opt->group_of = go;
        opt->cap_group_of = ps->n_params;
    }
    int32_t *go = opt->group_of;
    st = resolve_groups(go, ps, groups, n_groups);
    if (st != GTL_STATUS_OK)
        return st;

    /* Everything that can fail happens before the first write below. */
    double norm = sqrt(active_sumsq(ps, go));
    if (!isfinite(norm))
        return non_finite_error(ps, go, what);
    st = ensure_state(opt, ps);
    if (st != GTL_STATUS_OK)
        return st;

    if (c->clip_norm > 0.0f)
        clip_active(ps, go, c->clip_norm, norm);

    double lr = gtl__optim_lr_at(c, opt->step);
    for (int64_t i = 0; i < ps->n_params; i++) {
        if (go[i] == GROUP_SKIP)
            continue;
        const gtl__optim_group *gr = go[i] >= 0 ? &groups[go[i]] : NULL;
        double lr_i = gr != NULL ? lr * (double)gr->lr_mult : lr;
        float wd = gr != NULL && gr->weight_decay >= 0.0f ? gr->weight_decay : c->weight_decay;
        int64_t off = ps->offsets[i];
        int64_t n = ps->params[i].n;
        int64_t t = ++opt->param_steps[i];
        if (c->kind == GTL_OPTIM_SGD)
            sgd_update(ps->data + off, ps->grad + off, opt->m != NULL ? opt->m + off : NULL, n,
                       c, lr_i, wd);
        else
            adam_update(ps->data + off, ps->grad + off, opt->m + off, opt->v + off, n, c, lr_i,
                        wd, t);
    }
    opt->step++;
    if (out_grad_norm != NULL)
        *out_grad_norm = (float)norm;
    return GTL_STATUS_OK;
}
