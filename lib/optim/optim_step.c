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

/* The Adam inner loops and the norm. GTL_OPTIM_CLONES builds an AVX2 copy
 * next to the baseline one, chosen at load time by the CPU (GCC function
 * multiversioning); the file is compiled with -fno-math-errno so sqrtf
 * vectorises. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#  define GTL_OPTIM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#  define GTL_OPTIM_CLONES
#endif

/* Sums of squares in double, in 8 lanes: element j of a parameter goes to
 * lane j % 8 whatever slices it is visited in, so the sum over the dirty
 * rows of a tracked parameter equals, bitwise, the sum over the whole
 * parameter (the other rows add exact zeros). A fixed lane order also keeps
 * the result independent of vectorisation. */
enum { LANES = 8 };

GTL_OPTIM_CLONES
static void sumsq_lanes(double *restrict acc, const float *restrict g, int64_t j0, int64_t n)
{
    /* g[0] is element j0 of the parameter. */
    int64_t j = 0;
    for (; j < n && (j0 + j) % LANES != 0; j++)
        acc[(j0 + j) % LANES] += (double)g[j] * (double)g[j];
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++)
            acc[k] += (double)g[j + k] * (double)g[j + k];
    for (; j < n; j++)
        acc[(j0 + j) % LANES] += (double)g[j] * (double)g[j];
}

/* Sum of squares of parameter i's gradient (a tracked one: its dirty rows,
 * in row order; the other rows are zero). */
static double param_sumsq(const gtl__paramset *ps, int64_t i)
{
    double acc[LANES] = {0};
    const float *g = ps->grad + ps->offsets[i];
    const gtl__rowtrack *rt = ps->params[i].rows;
    if (rt == NULL) {
        sumsq_lanes(acc, g, 0, ps->params[i].n);
    } else if (rt->n_dirty > 0) {
        for (int64_t r = 0; r < rt->n_rows; r++)
            if (rt->is_dirty[r])
                sumsq_lanes(acc, g + r * rt->row_len, r * rt->row_len, rt->row_len);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
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
        s += param_sumsq(ps, i);
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

/* clip_grad_norm_'s factor: coef = max_norm / (norm + 1e-6), in float32 as
 * torch computes it on a float32 norm tensor; 1 when it would not shrink
 * (multiplying by 1 is exact, so "scale by 1" equals "leave alone"). */
static float clip_coef(float max_norm, double norm)
{
    float coef = max_norm / ((float)norm + 1e-6f);
    return coef < 1.0f ? coef : 1.0f;
}

/* In-place clipping for gtl__optim_clip_grad_norm (a tracked parameter's
 * unmarked rows are zero: scaling them changes nothing). */
static void clip_active(gtl__paramset *ps, float coef)
{
    if (!(coef < 1.0f))
        return;
    for (int64_t i = 0; i < ps->n_params; i++) {
        if (ps->frozen[i])
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
    clip_active(ps, clip_coef(max_norm, norm));
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


GTL_OPTIM_CLONES
static void adam_loop_plain(float *restrict p, const float *restrict grad, float *restrict m,
                            float *restrict v, int64_t n, float gs, float b1, float b2,
                            float omb1, float omb2, float neg_step, float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j] * gs;
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step * m[j] / denom;
    }
}

GTL_OPTIM_CLONES
static void adam_loop_l2(float *restrict p, const float *restrict grad, float *restrict m,
                         float *restrict v, int64_t n, float gs, float l2, float b1, float b2,
                         float omb1, float omb2, float neg_step, float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j] * gs + l2 * p[j];
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step * m[j] / denom;
    }
}

GTL_OPTIM_CLONES
static void adam_loop_decoupled(float *restrict p, const float *restrict grad, float *restrict m,
                                float *restrict v, int64_t n, float gs, float shrink, float b1,
                                float b2, float omb1, float omb2, float neg_step,
                                float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad[j] * gs;
        float pj = p[j] * shrink;
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = pj + neg_step * m[j] / denom;
    }
}

/* The same three loops for a span whose gradient is zero this step (live
 * rows of a tracked parameter that the step's batch did not use): they do
 * not read the gradient. The clipped gradient of such an element is
 * grad * gs = +0 exactly (zero_grad writes +0, gs > 0), so the terms that
 * add it, or (1 - b) times it, add +0.0f here: kept, not dropped, because
 * x + 0.0f differs from x when x is -0. Bitwise the loops above. */
GTL_OPTIM_CLONES
static void adam_loop_plain_nograd(float *restrict p, float *restrict m, float *restrict v,
                                   int64_t n, float b1, float b2, float neg_step,
                                   float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        m[j] = m[j] * b1 + 0.0f;
        v[j] = v[j] * b2 + 0.0f;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step * m[j] / denom;
    }
}

GTL_OPTIM_CLONES
static void adam_loop_l2_nograd(float *restrict p, float *restrict m, float *restrict v,
                                int64_t n, float l2, float b1, float b2, float omb1, float omb2,
                                float neg_step, float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = 0.0f + l2 * p[j];
        m[j] = m[j] * b1 + omb1 * g;
        v[j] = v[j] * b2 + omb2 * g * g;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = p[j] + neg_step * m[j] / denom;
    }
}

GTL_OPTIM_CLONES
static void adam_loop_decoupled_nograd(float *restrict p, float *restrict m, float *restrict v,
                                       int64_t n, float shrink, float b1, float b2,
                                       float neg_step, float bc2_sqrt, float eps)
{
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float pj = p[j] * shrink;
        m[j] = m[j] * b1 + 0.0f;
        v[j] = v[j] * b2 + 0.0f;
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;
        p[j] = pj + neg_step * m[j] / denom;
    }
}

/* The per-step constants of one parameter's update. */
typedef struct upd_args {
    const gtl__optim_config *c;
    double lr;       /* lr_at(step) * lr_mult */
    float wd;
    float gs;        /* clipping factor (1: none) */
    int64_t t;       /* Adam: this parameter's update count, this step included */
} upd_args;

/* torch.optim.Adam / AdamW (_single_tensor_adam/_adamw, amsgrad off), on the
 * clipped gradient g = gs * grad:
 *   Adam:  g += wd * p                      AdamW: p *= 1 - lr * wd
 *   m = m * b1 + (1 - b1) * g
 *   v = v * b2 + (1 - b2) * g * g
 *   p += (-lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * grad NULL: a zero gradient (the loops that do not read it). */
static void adam_update(float *p, const float *grad, float *m, float *v, int64_t n,
                        const upd_args *a)
{
    const gtl__optim_config *c = a->c;
    bool decoupled = c->kind == GTL_OPTIM_ADAMW;
    float l2 = decoupled ? 0.0f : a->wd;
    float shrink = (float)(1.0 - a->lr * (double)a->wd);
    float b1 = c->beta1;
    float b2 = c->beta2;
    float omb1 = (float)(1.0 - (double)c->beta1);
    float omb2 = (float)(1.0 - (double)c->beta2);
    double bc1 = 1.0 - pow((double)c->beta1, (double)a->t);
    double bc2 = 1.0 - pow((double)c->beta2, (double)a->t);
    float neg_step = (float)(-(a->lr / bc1));
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = c->eps;
    float gs = a->gs;
    /* Three specialised loops (no branch inside, so they vectorise; each
     * element's arithmetic is exactly the scalar formula's, so results are
     * bit-identical to it; with -ffp-contract=off (ISO C) g * gs is rounded
     * as the old in-place clipping rounded it). */
    if (grad == NULL) {
        if (decoupled)
            adam_loop_decoupled_nograd(p, m, v, n, shrink, b1, b2, neg_step, bc2_sqrt, eps);
        else if (l2 != 0.0f)
            adam_loop_l2_nograd(p, m, v, n, l2, b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps);
        else
            adam_loop_plain_nograd(p, m, v, n, b1, b2, neg_step, bc2_sqrt, eps);
    } else if (decoupled) {
        adam_loop_decoupled(p, grad, m, v, n, gs, shrink, b1, b2, omb1, omb2, neg_step,
                            bc2_sqrt, eps);
    } else if (l2 != 0.0f) {
        adam_loop_l2(p, grad, m, v, n, gs, l2, b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps);
    } else {
        adam_loop_plain(p, grad, m, v, n, gs, b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps);
    }
}

/* torch.optim.SGD (_single_tensor_sgd, dampening 0), on g = gs * grad:
 *   g += wd * p
 *   momentum: buf = buf * mu + g (buf starts at zero, which equals torch's
 *             clone of the first g); g = nesterov ? g + mu * buf : buf
 *   p += -lr * g
 * grad NULL: a zero gradient. */
static void sgd_update(float *p, const float *grad, float *buf, int64_t n, const upd_args *a)
{
    const gtl__optim_config *c = a->c;
    float mu = c->momentum;
    bool nesterov = c->nesterov != 0;
    float neg_lr = (float)(-a->lr);
    float wd = a->wd;
    float gs = a->gs;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float g = grad != NULL ? grad[j] * gs : 0.0f; /* +0 either way when zero */
        if (wd != 0.0f)
            g = g + wd * p[j];
        if (mu != 0.0f) {
            buf[j] = buf[j] * mu + g;
            g = nesterov ? g + mu * buf[j] : buf[j];
        }
        p[j] = p[j] + neg_lr * g;
    }
}

/* Updates elements [off, off + n) of the blob; has_grad false: their
 * gradient is zero this step and is not read. */
static void update_span(gtl_optimizer *opt, gtl__paramset *ps, int64_t off, int64_t n,
                        bool has_grad, const upd_args *a)
{
    const float *g = has_grad ? ps->grad + off : NULL;
    if (opt->cfg.kind == GTL_OPTIM_SGD)
        sgd_update(ps->data + off, g, opt->m != NULL ? opt->m + off : NULL, n, a);
    else
        adam_update(ps->data + off, g, opt->m + off, opt->v + off, n, a);
}

/* Updates tracked parameter i (its rows are base .. base + n_rows - 1 of
 * the live map): its rows marked this step become live (their moments are
 * zeroed first if they may hold garbage), then every run of consecutive
 * live rows that all have, or all lack, a gradient this step is one span.
 * Rows that never had a gradient are skipped: docs/optimizers.md, "Lazy
 * rows". */
static void update_rows(gtl_optimizer *opt, gtl__paramset *ps, int64_t i, int64_t base,
                        const upd_args *a)
{
    const gtl__rowtrack *rt = ps->params[i].rows;
    uint8_t *live = opt->live + base;
    for (int64_t k = 0; k < rt->n_dirty; k++) {
        int64_t r = rt->dirty[k];
        if (live[r])
            continue;
        live[r] = 1;
        if (opt->rows_unset) {
            size_t bytes = (size_t)rt->row_len * sizeof(float);
            int64_t off = ps->offsets[i] + r * rt->row_len;
            if (opt->m != NULL)
                memset(opt->m + off, 0, bytes);
            if (opt->v != NULL)
                memset(opt->v + off, 0, bytes);
        }
    }
    int64_t r = 0;
    while (r < rt->n_rows) {
        if (!live[r]) {
            r++;
            continue;
        }
        bool dirty = rt->is_dirty[r] != 0;
        int64_t r1 = r + 1;
        while (r1 < rt->n_rows && live[r1] && (rt->is_dirty[r1] != 0) == dirty)
            r1++;
        update_span(opt, ps, ps->offsets[i] + r * rt->row_len, (r1 - r) * rt->row_len, dirty,
                    a);
        r = r1;
    }
}

/* Rows tracked in a paramset (all its tracked parameters together). */
static int64_t tracked_rows(const gtl__paramset *ps)
{
    int64_t n = 0;
    for (int64_t i = 0; i < ps->n_params; i++)
        if (ps->params[i].rows != NULL)
            n += ps->params[i].rows->n_rows;
    return n;
}

/* A live map for a state restored without one: rows whose moments are
 * non-zero somewhere had a gradient; without moments, every row is live
 * (the dense update, the conservative choice). */
static void rebuild_live(gtl_optimizer *opt, const gtl__paramset *ps)
{
    const float *st = opt->m != NULL ? opt->m : opt->v;
    int64_t base = 0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        const gtl__rowtrack *rt = ps->params[i].rows;
        if (rt == NULL)
            continue;
        for (int64_t r = 0; r < rt->n_rows; r++) {
            int64_t off = ps->offsets[i] + r * rt->row_len;
            bool any = st == NULL;
            for (int64_t j = 0; j < rt->row_len && !any; j++)
                any = (opt->m != NULL && opt->m[off + j] != 0.0f) ||
                      (opt->v != NULL && opt->v[off + j] != 0.0f);
            opt->live[base + r] = any ? 1 : 0;
        }
        base += rt->n_rows;
    }
}

/* The moment buffers the settings need. */
static bool needs_m(const gtl__optim_config *c)
{
    return c->kind != GTL_OPTIM_SGD || c->momentum != 0.0f;
}

static bool needs_v(const gtl__optim_config *c)
{
    return c->kind != GTL_OPTIM_SGD;
}

/* Zeroes buf outside the tracked rows (untracked parameters and padding). */
static void zero_outside_rows(const gtl_optimizer *opt, float *buf)
{
    int64_t pos = 0; /* rows are in blob order */
    for (int64_t r = 0; r < opt->n_rows; r++) {
        int64_t off = opt->row_span[2 * r];
        if (off > pos)
            memset(buf + pos, 0, (size_t)(off - pos) * sizeof(float));
        pos = off + opt->row_span[2 * r + 1];
    }
    if (opt->n_total > pos)
        memset(buf + pos, 0, (size_t)(opt->n_total - pos) * sizeof(float));
}

/* Records each tracked row's blob span. */
static void fill_row_span(gtl_optimizer *opt, const gtl__paramset *ps)
{
    int64_t k = 0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        const gtl__rowtrack *rt = ps->params[i].rows;
        if (rt == NULL)
            continue;
        for (int64_t r = 0; r < rt->n_rows; r++, k++) {
            opt->row_span[2 * k] = ps->offsets[i] + r * rt->row_len;
            opt->row_span[2 * k + 1] = rt->row_len;
        }
    }
}

/* A new binding to ps: a fresh state (no steps, no moments, no live rows),
 * in the spare buffers if reset left some of this layout, else in new ones.
 * The moments are not zero-filled: only outside the tracked rows (and in
 * the live rows, all of them if the step count is already > 0: see below).
 * Dead rows hold garbage until they go live (update_rows) or are exported
 * (get_state). On failure the optimizer is left unbound without buffers. */
static gtl_status bind_state(gtl_optimizer *opt, const gtl__paramset *ps)
{
    int64_t n_rows = tracked_rows(ps);
    bool same = opt->n_params == ps->n_params && opt->n_total == ps->n_total &&
                opt->n_rows == n_rows && (n_rows == 0 || opt->live != NULL);
    if (!same) {
        int64_t step = opt->step;
        gtl__optim_free_state(opt);
        opt->step = step;
    }
    opt->n_params = ps->n_params;
    opt->n_total = ps->n_total;
    opt->n_rows = n_rows;
    size_t blob_bytes = (size_t)(opt->n_total ? opt->n_total : 16) * sizeof(float);
    if (opt->param_steps == NULL)
        opt->param_steps = gtl__malloc((size_t)(opt->n_params ? opt->n_params : 1) *
                                       sizeof *opt->param_steps);
    if (opt->param_steps == NULL)
        goto out_oom;
    if (n_rows > 0 && opt->live == NULL)
        opt->live = gtl__malloc((size_t)n_rows);
    if (n_rows > 0 && opt->row_span == NULL)
        opt->row_span = gtl__malloc((size_t)n_rows * 2 * sizeof *opt->row_span);
    if (n_rows > 0 && (opt->live == NULL || opt->row_span == NULL))
        goto out_oom;
    if (opt->m == NULL && needs_m(&opt->cfg))
        opt->m = gtl__malloc_aligned(blob_bytes);
    if (opt->v == NULL && needs_v(&opt->cfg))
        opt->v = gtl__malloc_aligned(blob_bytes);
    if ((opt->m == NULL && needs_m(&opt->cfg)) || (opt->v == NULL && needs_v(&opt->cfg)))
        goto out_oom;

    memset(opt->param_steps, 0, (size_t)opt->n_params * sizeof *opt->param_steps);
    if (n_rows > 0) {
        fill_row_span(opt, ps);
        /* A step count restored without arrays (set_state of an empty
         * layout) has no live map to go by: every row live, the dense
         * update, as rebuild_live decides without moments. */
        memset(opt->live, opt->step > 0 ? 1 : 0, (size_t)n_rows);
    }
    float *bufs[2] = {opt->m, opt->v};
    for (int b = 0; b < 2; b++) {
        if (bufs[b] == NULL)
            continue;
        if (n_rows == 0) {
            memset(bufs[b], 0, (size_t)opt->n_total * sizeof(float));
            continue;
        }
        zero_outside_rows(opt, bufs[b]);
    }
    opt->rows_unset = n_rows > 0;
    if (n_rows > 0)
        gtl__optim_zero_rows(opt, 1);
    opt->bound = true;
    return GTL_STATUS_OK;

out_oom:
    {
        int64_t step = opt->step;
        gtl__optim_free_state(opt);
        opt->step = step;
    }
    return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                      "optimizer step: out of memory for the state of %lld floats",
                      (long long)ps->n_total);
}

/* Binds on the first step after create / reset; afterwards allocates what
 * the current settings need and a restored state is missing (zero-filled:
 * "no state yet"), and the live map of a state restored without one. */
static gtl_status ensure_state(gtl_optimizer *opt, const gtl__paramset *ps)
{
    if (!opt->bound)
        return bind_state(opt, ps);
    size_t blob_bytes = (size_t)(opt->n_total ? opt->n_total : 16) * sizeof(float);
    if (opt->param_steps == NULL) {
        opt->param_steps = gtl__calloc((size_t)(opt->n_params ? opt->n_params : 1),
                                       sizeof *opt->param_steps);
        if (opt->param_steps == NULL)
            goto out_oom;
    }
    int64_t n_rows = tracked_rows(ps);
    if (n_rows > 0 && opt->row_span == NULL) {
        /* A restored state: set_state does not know the paramset. */
        opt->row_span = gtl__malloc((size_t)n_rows * 2 * sizeof *opt->row_span);
        if (opt->row_span == NULL)
            goto out_oom;
        fill_row_span(opt, ps);
    }
    if (opt->live == NULL && n_rows > 0) {
        /* Before m and v are added: a restored state may have moments to
         * rebuild from. */
        opt->live = gtl__calloc((size_t)n_rows, 1);
        if (opt->live == NULL)
            goto out_oom;
        opt->n_rows = n_rows;
        if (opt->m != NULL || opt->v != NULL || opt->step > 0)
            rebuild_live(opt, ps);
    }
    if (opt->m == NULL && needs_m(&opt->cfg)) {
        opt->m = gtl__calloc_aligned(blob_bytes);
        if (opt->m == NULL)
            goto out_oom;
    }
    if (opt->v == NULL && needs_v(&opt->cfg)) {
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
    if (opt->bound && opt->live != NULL && tracked_rows(ps) != opt->n_rows)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: the state is for %lld tracked rows but the parameter set has "
                          "%lld",
                          what, (long long)opt->n_rows, (long long)tracked_rows(ps));
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

    /* Everything that can fail happens before the first write below. The
     * norm pass also is the finite check, so it runs with clipping off too
     * (it reads the gradients only; the update then reads them once more). */
    double norm = sqrt(active_sumsq(ps, go));
    if (!isfinite(norm))
        return non_finite_error(ps, go, what);
    st = ensure_state(opt, ps);
    if (st != GTL_STATUS_OK)
        return st;

    upd_args a = {c, 0.0, 0.0f, 1.0f, 0};
    if (c->clip_norm > 0.0f)
        a.gs = clip_coef(c->clip_norm, norm);
    double lr = gtl__optim_lr_at(c, opt->step);
    int64_t row_base = 0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        const gtl__rowtrack *rt = ps->params[i].rows;
        int64_t base = row_base;
        if (rt != NULL)
            row_base += rt->n_rows;
        if (go[i] == GROUP_SKIP)
            continue;
        const gtl__optim_group *gr = go[i] >= 0 ? &groups[go[i]] : NULL;
        a.lr = gr != NULL ? lr * (double)gr->lr_mult : lr;
        a.wd = gr != NULL && gr->weight_decay >= 0.0f ? gr->weight_decay : c->weight_decay;
        /* A tracked parameter counts every step, as a dense one does, so a
         * row that becomes live later gets the bias correction it would have
         * had densely. */
        a.t = ++opt->param_steps[i];
        if (rt != NULL)
            update_rows(opt, ps, i, base, &a);
        else
            update_span(opt, ps, ps->offsets[i], ps->params[i].n, true, &a);
    }
    opt->step++;
    if (out_grad_norm != NULL)
        *out_grad_norm = (float)norm;
    return GTL_STATUS_OK;
}
