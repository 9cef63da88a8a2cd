/* optim: Adam, AdamW and SGD over a parameter set's flat blobs, with global
 * gradient-norm clipping, a warm-up + multi-step learning-rate schedule and
 * parameter groups. The formulas and their PyTorch equivalents are in
 * docs/optimizers.md.
 *
 * The optimizer is not bound to a model: a model passes its gtl__paramset
 * (data blob, grad blob, per-parameter offsets and frozen flags) and its
 * groups to every gtl__optim_step(). The first step sizes the state to that
 * parameter set; later steps must pass one of the same layout.
 *
 * State: the number of completed steps, a per-parameter step count (Adam's
 * bias correction counts only the steps in which a parameter was updated,
 * as PyTorch's per-parameter state['step'] does), and up to two moment blobs
 * laid out exactly like the parameter blob (m: Adam's first moment or SGD's
 * momentum buffer; v: Adam's second moment). Buffers are allocated on the
 * first step that needs them; a steady-state step allocates nothing.
 * gtl__optim_reset() unbinds but keeps the buffers: the next binding to a
 * parameter set of the same layout reuses them without allocating.
 *
 * Uninitialised moments: m and v are allocated without zero-filling, and a
 * new binding zeroes only the untracked parameters (and the blob padding).
 * The rows of a tracked parameter hold whatever was there until the row goes
 * live, when its m and v are zeroed. This saves writing (and faulting in)
 * the moments of adapters that are never used. gtl__optim_get_state() zeroes
 * the never-live rows before exporting, so a checkpoint is what a
 * zero-filled state would give, bitwise.
 *
 * Lazy rows: a parameter with row tracking (gtl__paramset_track_rows; the
 * gated adapters) is updated row by row, and a row that has had no gradient
 * since the optimizer was reset or bound is skipped entirely (no decay, no
 * moment update), as PyTorch skips a parameter whose .grad is None. Once a
 * row has had a gradient it is "live" and is updated every step exactly as
 * dense Adam / AdamW / SGD would. Untracked parameters are always dense. With
 * zero weight decay the two are identical; docs/optimizers.md, "Lazy rows". */
#ifndef GTL__OPTIM_H
#define GTL__OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "gtl/optim.h"
#include "tensor/tensor.h"

/* Number of gtl_optim_param keys (one past the last value). */
#define GTL__OPTIM_N_PARAMS 11

typedef struct gtl__optim_config {
    gtl_optim_kind kind;
    float lr;
    float beta1;
    float beta2;
    float eps;
    float weight_decay;
    float momentum;
    float clip_norm;             /* 0: off */
    float warmup_start_factor;
    float decay_gamma;
    int64_t nesterov;            /* 0 or 1 */
    int64_t warmup_steps;        /* 0: no warm-up */
    int64_t milestones[GTL_OPTIM_MAX_MILESTONES]; /* strictly increasing */
    int64_t n_milestones;
} gtl__optim_config;

struct gtl_optimizer {
    gtl__optim_config cfg;
    int64_t step;                /* completed steps */
    bool bound;                  /* the buffers below hold the state of a binding; when
                                  * false they are spare (kept by reset) or absent */
    int64_t n_params;            /* parameters of the layout the buffers are for */
    int64_t n_total;             /* floats in its blob */
    int64_t *param_steps;        /* (n_params) per-parameter update count, or NULL */
    float *m;                    /* (n_total) first moment / momentum, or NULL = zeros */
    float *v;                    /* (n_total) second moment, or NULL = zeros */
    int64_t n_rows;              /* tracked rows of the layout (0: none yet) */
    uint8_t *live;               /* (n_rows) 1 once a tracked row had a gradient, or NULL */
    int64_t *row_span;           /* (2 n_rows) blob offset and length of each tracked row,
                                  * or NULL until the first step of a binding */
    bool rows_unset;             /* m and v of never-live rows may hold garbage (zeroed
                                  * when a row goes live, or by get_state) */
    int32_t *group_of;           /* (cap_group_of) step scratch: group per parameter */
    int64_t cap_group_of;
};

/* A parameter group: parameters (by index in the paramset) that share an lr
 * multiplier and a weight decay, or that the optimizer must leave alone.
 * Parameters in no group use multiplier 1 and the optimizer's WEIGHT_DECAY.
 * A parameter may be in at most one group. */
typedef struct gtl__optim_group {
    const int64_t *indices;      /* (n_indices) parameter indices */
    int64_t n_indices;
    float lr_mult;               /* >= 0, finite: lr = lr_at(step) * lr_mult */
    float weight_decay;          /* >= 0: this group's decay; < 0: the optimizer's */
    bool frozen;                 /* true: no update, no state, gradient ignored */
} gtl__optim_group;

/* Lifecycle. create returns INVALID_ARG for an unknown kind, OUT_OF_MEMORY. */
gtl_status gtl__optim_create(gtl_optim_kind kind, gtl_optimizer **out_opt);
void gtl__optim_destroy(gtl_optimizer *opt);
/* Step count back to zero and the state forgotten (unbound); the buffers
 * are kept, and the next binding reuses them if the layout matches. */
void gtl__optim_reset(gtl_optimizer *opt);
/* Frees the state buffers and unbinds (the step count is kept). */
void gtl__optim_free_state(gtl_optimizer *opt);
/* Zeroes m and v (those present) in every tracked row whose live flag is
 * `live` (needs row_span). */
void gtl__optim_zero_rows(gtl_optimizer *opt, uint8_t live);

/* The default settings of a kind. */
void gtl__optim_config_default(gtl__optim_config *cfg, gtl_optim_kind kind);

/* Settings, validated against the bounds table. Messages name `fn` (the
 * public function the call came through). */
bool gtl__optim_param_valid(gtl_optim_param key);
bool gtl__optim_param_is_int(gtl_optim_param key);
void gtl__optim_param_bounds(gtl_optim_param key, double *out_lo, double *out_hi);
const char *gtl__optim_param_name(gtl_optim_param key);
gtl_status gtl__optim_set_f32(gtl_optimizer *opt, gtl_optim_param key, float value,
                              const char *fn);
gtl_status gtl__optim_set_i64(gtl_optimizer *opt, gtl_optim_param key, int64_t value,
                              const char *fn);
float gtl__optim_get_f32(const gtl_optimizer *opt, gtl_optim_param key);
int64_t gtl__optim_get_i64(const gtl_optimizer *opt, gtl_optim_param key);
gtl_status gtl__optim_set_milestones(gtl_optimizer *opt, const int64_t *steps, int64_t n,
                                     const char *fn);

/* The schedule's learning rate for step `step` (>= 0), in double precision
 * (the step uses it unrounded, as PyTorch's param_group['lr'] is a double). */
double gtl__optim_lr_at(const gtl__optim_config *cfg, int64_t step);

/* One update of every parameter that is neither frozen in the paramset nor
 * in a frozen group:
 *   1. the global L2 norm of their gradients is computed (of a tracked
 *      parameter: over the rows marked since the last zero_grad; the others
 *      are zero); if it is not finite (some gradient is NaN or Inf) the call
 *      returns GTL_STATUS_NUMERIC and changes nothing: parameters, gradients,
 *      moments and step counts;
 *   2. if CLIP_NORM > 0 the update uses the gradients scaled by
 *      min(1, CLIP_NORM / (norm + 1e-6)) (fused into the update: the gradient
 *      blob itself is left as the backward pass wrote it);
 *   3. each parameter is updated with lr_at(step) * lr_mult of its group
 *      (tracked parameters: their live rows only, see "Lazy rows" above);
 *   4. the step count advances.
 * out_grad_norm (may be NULL) receives the norm before clipping; 0 on failure.
 * Returns OK; INVALID_ARG (NULL opt/ps, bad groups: NULL indices, index out
 * of range, a parameter in two groups, lr_mult < 0 or not finite, NaN decay;
 * Nesterov with MOMENTUM 0); BAD_STATE (paramset not finalized, no gradient
 * blob yet, or a layout (floats, parameters or tracked rows) different from
 * the one the state was made for);
 * OUT_OF_MEMORY (first step only); NUMERIC. Nothing changes on failure. */
gtl_status gtl__optim_step(gtl_optimizer *opt, gtl__paramset *ps, const gtl__optim_group *groups,
                           int64_t n_groups, float *out_grad_norm);

/* torch.nn.utils.clip_grad_norm_ over the gradients of every non-frozen
 * parameter of ps: out_norm gets the pre-clip norm. Returns NUMERIC (and
 * leaves the gradients alone) if the norm is not finite, INVALID_ARG for a
 * negative or NaN max_norm, BAD_STATE without a gradient blob. */
gtl_status gtl__optim_clip_grad_norm(gtl__paramset *ps, float max_norm, float *out_norm);

/* Fills dst with the indices of the parameters whose name starts with
 * prefix, in paramset order. INVALID_ARG if more than cap match (then
 * *out_n is the number needed and dst is not written). */
gtl_status gtl__optim_select_prefix(const gtl__paramset *ps, const char *prefix, int64_t *dst,
                                    int64_t cap, int64_t *out_n);

/* ---- Checkpoint state ------------------------------------------------------
 * A view of the training state as flat arrays and counters. A checkpoint
 * writes what get_state reports and gives it back to set_state, which
 * restores the optimizer bitwise (the next step computes exactly what it
 * would have computed without the save/restore). Settings are not part of
 * the state: a checkpoint saves them through the getters. */
typedef struct gtl__optim_state {
    int64_t step;                /* completed steps */
    int64_t n_params;            /* length of param_steps; 0 before the first step */
    int64_t n_total;             /* floats in m and v; 0 before the first step */
    const int64_t *param_steps;  /* (n_params) or NULL = all zero */
    const float *m;              /* (n_total) or NULL = all zero */
    const float *v;              /* (n_total) or NULL = all zero */
    int64_t n_rows;              /* length of live; 0 = none (see set_state) */
    const uint8_t *live;         /* (n_rows) 0/1 per tracked row, or NULL */
} gtl__optim_state;

/* Pointers stay valid until the next step, set_state, reset or destroy.
 * The first call after a binding writes to the optimizer although it is
 * const: it zeroes the moments of the never-live rows (uninitialised until
 * then; a state has them zero). The write happens under a lock and changes
 * nothing observable, so concurrent get_state calls are safe. */
void gtl__optim_get_state(const gtl_optimizer *opt, gtl__optim_state *out);
/* Copies st in. INVALID_ARG if the counters are inconsistent (negative,
 * a per-parameter count above step, arrays given for an empty layout, a
 * live value other than 0 or 1); OUT_OF_MEMORY. On failure the optimizer is
 * unchanged. Without a live map (a state saved before lazy rows existed) the
 * next step rebuilds it: a row is live if its m or v is non-zero anywhere
 * (every row, if the kind keeps no moments). */
gtl_status gtl__optim_set_state(gtl_optimizer *opt, const gtl__optim_state *st);

#endif /* GTL__OPTIM_H */
