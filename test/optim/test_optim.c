/* The optimizer: Adam, AdamW and SGD trajectories, clipping and the schedule
 * against PyTorch reference values (optim_ref.h, made by gen_optim_ref.py);
 * the NaN guard, frozen groups, checkpoint state, zero allocations per step,
 * and the public API's argument checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gtl/gtl.h"
#include "optim/optim.h"
#include "tensor/tensor.h"

#include "optim_ref.h"

/* ---- helpers */

/* Copies a flat (concatenated) vector into a paramset blob and back. */
static void to_blob(const gtl__paramset *ps, float *blob, const float *flat)
{
    int64_t k = 0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        memcpy(blob + ps->offsets[i], flat + k, (size_t)ps->params[i].n * sizeof(float));
        k += ps->params[i].n;
    }
}

static void from_blob(const gtl__paramset *ps, const float *blob, float *flat)
{
    int64_t k = 0;
    for (int64_t i = 0; i < ps->n_params; i++) {
        memcpy(flat + k, blob + ps->offsets[i], (size_t)ps->params[i].n * sizeof(float));
        k += ps->params[i].n;
    }
}

/* The reference model: four parameters with oref_p0 and a gradient blob. */
static void make_ps(gtl__paramset *ps)
{
    gtl__paramset_init(ps);
    for (int i = 0; i < OREF_N_PARAMS; i++)
        assert_int_equal(gtl__paramset_add(ps, oref_names[i], oref_nd[i], oref_ne[i], NULL),
                         GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(ps), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(ps), GTL_STATUS_OK);
    to_blob(ps, ps->data, oref_p0);
}

/* Configures an optimizer through the public setters. */
static gtl_optimizer *make_opt(const oref_case *c)
{
    gtl_optimizer *opt = NULL;
    assert_int_equal(gtl_optimizer_create(c->kind, &opt), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, c->lr), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_BETA1, c->beta1), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_BETA2, c->beta2), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_EPS, c->eps), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, c->weight_decay),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, c->momentum),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_NESTEROV, c->nesterov),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, c->clip_norm),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, c->warmup_steps),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WARMUP_START_FACTOR,
                                           c->warmup_start_factor),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_DECAY_GAMMA, c->decay_gamma),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_milestones(opt, c->milestones, (size_t)c->n_milestones),
                     GTL_STATUS_OK);
    return opt;
}

/* The groups of step t: the case's groups, plus one frozen group holding the
 * parameters that are frozen at step t. */
typedef struct step_groups {
    int64_t idx[5][OREF_N_PARAMS];
    gtl__optim_group g[5];
    int64_t n;
} step_groups;

static void make_groups(const oref_case *c, int t, step_groups *sg)
{
    memset(sg, 0, sizeof *sg);
    for (int g = 0; g < c->n_groups; g++) {
        sg->g[g].indices = sg->idx[g];
        sg->g[g].lr_mult = c->group_lr_mult[g];
        sg->g[g].weight_decay = c->group_wd[g];
    }
    int fz = c->n_groups;
    sg->g[fz].indices = sg->idx[fz];
    sg->g[fz].lr_mult = 1.0f;
    sg->g[fz].weight_decay = -1.0f;
    sg->g[fz].frozen = true;
    for (int p = 0; p < OREF_N_PARAMS; p++) {
        int g = t < c->frozen_until[p] ? fz : c->param_group[p];
        if (g >= 0)
            sg->idx[g][sg->g[g].n_indices++] = p;
    }
    sg->n = c->n_groups + 1;
}

/* Loads oref_grads[t] into the gradient blob. */
static void load_grads(gtl__paramset *ps, int t)
{
    to_blob(ps, ps->grad, oref_grads[t]);
}

/* max |a - b| / (atol + rtol |b|) <= 1, printing the worst element. */
static double check_close(const float *a, const float *b, int64_t n, double atol, double rtol,
                          const char *what, const char *name, int t)
{
    double worst = 0.0;
    int64_t wi = 0;
    double max_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double r = d / (atol + rtol * fabs((double)b[i]));
        if (r > worst) {
            worst = r;
            wi = i;
        }
        if (d > max_abs)
            max_abs = d;
    }
    if (worst > 1.0) {
        print_error("%s %s step %d: element %lld is %.9g, torch %.9g\n", name, what, t,
                    (long long)wi, (double)a[wi], (double)b[wi]);
        fail();
    }
    return max_abs;
}

/* Trajectory tolerance: torch and libgtl do the same float32 operations in
 * the same order, so the remaining differences are a few ulps (vectorised
 * kernels, FMA); 20 steps stay well inside this. */
#define TRAJ_ATOL 5e-7
#define TRAJ_RTOL 2e-6

/* Runs steps [t0, t1) of case c; checks each against torch. */
static double run_steps(const oref_case *c, gtl_optimizer *opt, gtl__paramset *ps, int t0,
                        int t1)
{
    double max_abs = 0.0;
    for (int t = t0; t < t1; t++) {
        step_groups sg;
        make_groups(c, t, &sg);
        load_grads(ps, t);
        float norm = -1.0f;
        assert_int_equal(gtl__optim_step(opt, ps, sg.g, sg.n, &norm), GTL_STATUS_OK);
        check_close(&norm, &c->norms[t], 1, 0.0, 1e-6, "grad norm", c->name, t);
        float flat[OREF_N];
        from_blob(ps, ps->data, flat);
        double d = check_close(flat, c->traj[t], OREF_N, TRAJ_ATOL, TRAJ_RTOL, "params",
                               c->name, t);
        if (d > max_abs)
            max_abs = d;
    }
    return max_abs;
}

/* ---- trajectories against torch */

static void test_trajectories(void **state)
{
    (void)state;
    for (int k = 0; k < OREF_N_CASES; k++) {
        const oref_case *c = &oref_cases[k];
        gtl__paramset ps;
        make_ps(&ps);
        gtl_optimizer *opt = make_opt(c);
        double max_abs = run_steps(c, opt, &ps, 0, OREF_T);

        /* Final state against torch's optimizer.state. */
        gtl__optim_state st;
        gtl__optim_get_state(opt, &st);
        assert_int_equal(st.step, OREF_T);
        assert_int_equal(st.n_params, OREF_N_PARAMS);
        assert_int_equal(st.n_total, ps.n_total);
        float flat[OREF_N];
        if (c->kind == GTL_OPTIM_SGD && c->momentum == 0.0f) {
            assert_null(st.m);
        } else {
            from_blob(&ps, st.m, flat);
            check_close(flat, c->m, OREF_N, TRAJ_ATOL, TRAJ_RTOL, "first moment", c->name,
                        OREF_T);
        }
        if (c->kind == GTL_OPTIM_SGD) {
            assert_null(st.v);
        } else {
            from_blob(&ps, st.v, flat);
            check_close(flat, c->v, OREF_N, 1e-9, TRAJ_RTOL, "second moment", c->name, OREF_T);
        }
        for (int p = 0; p < OREF_N_PARAMS; p++)
            assert_int_equal(st.param_steps[p], c->param_steps[p]);
        printf("  %-15s 20 steps, max |param - torch| = %.3g\n", c->name, max_abs);
        gtl_optimizer_destroy(opt);
        gtl__paramset_fini(&ps);
    }
}

/* gtl_optimizer_reset() returns to the initial state: re-running the first
 * steps from the initial parameters reproduces torch's trajectory. */
static void test_reset(void **state)
{
    (void)state;
    const oref_case *c = &oref_cases[0];
    gtl__paramset ps;
    make_ps(&ps);
    gtl_optimizer *opt = make_opt(c);
    run_steps(c, opt, &ps, 0, 7);
    uint64_t n_alloc = gtl__alloc_count();
    assert_int_equal(gtl_optimizer_reset(opt), GTL_STATUS_OK);
    assert_int_equal(gtl__alloc_count(), n_alloc);
    int64_t n = -1;
    assert_int_equal(gtl_optimizer_num_steps(opt, &n), GTL_STATUS_OK);
    assert_int_equal(n, 0);
    to_blob(&ps, ps.data, oref_p0);
    run_steps(c, opt, &ps, 0, 5);
    gtl_optimizer_destroy(opt);
    gtl__paramset_fini(&ps);
}

/* ---- clipping */

static void test_clip_grad_norm(void **state)
{
    (void)state;
    gtl__paramset ps;
    make_ps(&ps);
    for (int k = 0; k < 2; k++) {
        to_blob(&ps, ps.grad, oref_clip_in);
        float norm = -1.0f;
        assert_int_equal(gtl__optim_clip_grad_norm(&ps, oref_clip_max[k], &norm), GTL_STATUS_OK);
        check_close(&norm, &oref_clip_norm[k], 1, 0.0, 1e-6, "clip norm", "clip", k);
        float flat[OREF_N];
        from_blob(&ps, ps.grad, flat);
        check_close(flat, oref_clip_out[k], OREF_N, 0.0, 2e-6, "clipped grads", "clip", k);
        if (k == 1) /* max_norm above the norm: gradients untouched, bitwise */
            assert_memory_equal(flat, oref_clip_in, sizeof flat);
    }
    /* Frozen parameters neither count in the norm nor get scaled. */
    to_blob(&ps, ps.grad, oref_clip_in);
    gtl__paramset_set_frozen(&ps, 0, true);
    float norm = 0.0f;
    assert_int_equal(gtl__optim_clip_grad_norm(&ps, 0.5f, &norm), GTL_STATUS_OK);
    double s = 0.0;
    for (int64_t j = oref_ne[0][0] * oref_ne[0][1]; j < OREF_N; j++)
        s += (double)oref_clip_in[j] * oref_clip_in[j];
    assert_float_equal(norm, sqrt(s), 1e-5 * sqrt(s));
    assert_memory_equal(ps.grad, oref_clip_in, 12 * sizeof(float));
    /* Bad arguments. */
    assert_int_equal(gtl__optim_clip_grad_norm(&ps, -1.0f, &norm), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_clip_grad_norm(&ps, NAN, &norm), GTL_STATUS_INVALID_ARG);
    ps.grad[ps.offsets[1]] = INFINITY;
    assert_int_equal(gtl__optim_clip_grad_norm(&ps, 1.0f, &norm), GTL_STATUS_NUMERIC);
    assert_true(norm == 0.0f);
    gtl__paramset_fini(&ps);
}

/* ---- schedule */

static void test_schedule(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        const oref_sched *s = &oref_scheds[k];
        gtl_optimizer *opt = NULL;
        assert_int_equal(gtl_optimizer_create(GTL_OPTIM_SGD, &opt), GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, s->lr), GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS,
                                               s->warmup_steps),
                         GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WARMUP_START_FACTOR,
                                               s->warmup_start_factor),
                         GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_DECAY_GAMMA, s->decay_gamma),
                         GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_milestones(opt, s->milestones,
                                                      (size_t)s->n_milestones),
                         GTL_STATUS_OK);
        for (int t = 0; t < 30; t++) {
            float lr = -1.0f;
            assert_int_equal(gtl_optimizer_lr_at(opt, t, &lr), GTL_STATUS_OK);
            double ref = s->lrs[t];
            double lr_d = gtl__optim_lr_at(&opt->cfg, t);
            if (fabs(lr_d - ref) > 1e-12 * fabs(ref) || fabs((double)lr - ref) > 1e-7 * fabs(ref)) {
                print_error("schedule %s step %d: lr %.17g (float %.9g), torch %.17g\n",
                            s->name, t, lr_d, (double)lr, ref);
                fail();
            }
        }
        gtl_optimizer_destroy(opt);
    }
}

/* ---- NaN guard */

typedef struct snapshot {
    float data[64];
    float grad[64];
    float m[64];
    float v[64];
    int64_t param_steps[OREF_N_PARAMS];
    int64_t step;
    int64_t n_total;
} snapshot;

static void take(snapshot *s, const gtl__paramset *ps, const gtl_optimizer *opt)
{
    memset(s, 0, sizeof *s);
    assert_true(ps->n_total <= 64);
    memcpy(s->data, ps->data, (size_t)ps->n_total * sizeof(float));
    memcpy(s->grad, ps->grad, (size_t)ps->n_total * sizeof(float));
    gtl__optim_state st;
    gtl__optim_get_state(opt, &st);
    s->step = st.step;
    s->n_total = st.n_total;
    if (st.m != NULL)
        memcpy(s->m, st.m, (size_t)st.n_total * sizeof(float));
    if (st.v != NULL)
        memcpy(s->v, st.v, (size_t)st.n_total * sizeof(float));
    if (st.param_steps != NULL)
        memcpy(s->param_steps, st.param_steps, (size_t)st.n_params * sizeof(int64_t));
}

static void test_nonfinite_changes_nothing(void **state)
{
    (void)state;
    const oref_case *c = &oref_cases[6]; /* adam_full: groups, clipping, schedule */
    assert_string_equal(c->name, "adam_full");
    static const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        gtl__paramset ps;
        make_ps(&ps);
        gtl_optimizer *opt = make_opt(c);

        /* At the very first step: no state is created either. */
        step_groups sg;
        make_groups(c, 0, &sg);
        load_grads(&ps, 3); /* a step whose norm would be clipped */
        ps.grad[ps.offsets[3] + 2] = bad[b];
        snapshot before, after;
        take(&before, &ps, opt);
        float norm = -1.0f;
        assert_int_equal(gtl__optim_step(opt, &ps, sg.g, sg.n, &norm), GTL_STATUS_NUMERIC);
        assert_true(norm == 0.0f);
        assert_non_null(strstr(gtl_last_error(), "cls.w"));
        take(&after, &ps, opt);
        assert_memory_equal(&before, &after, sizeof before);
        assert_int_equal(after.n_total, 0);

        /* After some steps: params, grads, moments and counters bitwise equal. */
        run_steps(c, opt, &ps, 0, 6);
        make_groups(c, 6, &sg);
        load_grads(&ps, 3);
        ps.grad[ps.offsets[0] + 7] = bad[b];
        take(&before, &ps, opt);
        assert_int_equal(gtl__optim_step(opt, &ps, sg.g, sg.n, &norm), GTL_STATUS_NUMERIC);
        take(&after, &ps, opt);
        assert_memory_equal(&before, &after, sizeof before);
        assert_int_equal(after.step, 6);

        /* A bad gradient in a frozen parameter (gen.w) is ignored; the
         * trajectory then continues exactly as torch's. */
        load_grads(&ps, 6);
        ps.grad[ps.offsets[2] + 1] = bad[b];
        float flat[OREF_N];
        assert_int_equal(gtl__optim_step(opt, &ps, sg.g, sg.n, &norm), GTL_STATUS_OK);
        from_blob(&ps, ps.data, flat);
        check_close(flat, c->traj[6], OREF_N, TRAJ_ATOL, TRAJ_RTOL, "params after NaN", c->name,
                    6);
        run_steps(c, opt, &ps, 7, OREF_T);
        gtl_optimizer_destroy(opt);
        gtl__paramset_fini(&ps);
    }
}

/* ---- frozen parameters */

static void test_frozen_unchanged(void **state)
{
    (void)state;
    for (int kind = GTL_OPTIM_ADAM; kind <= GTL_OPTIM_SGD; kind++) {
        gtl__paramset ps;
        make_ps(&ps);
        gtl__paramset_set_frozen(&ps, 1, true); /* enc.b frozen in the paramset */
        gtl_optimizer *opt = NULL;
        assert_int_equal(gtl_optimizer_create((gtl_optim_kind)kind, &opt), GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, 0.9f),
                         GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, 0.1f),
                         GTL_STATUS_OK);
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, 0.5f),
                         GTL_STATUS_OK);
        int64_t gen_idx[4];
        int64_t n_gen = 0;
        assert_int_equal(gtl__optim_select_prefix(&ps, "gen.", gen_idx, 4, &n_gen),
                         GTL_STATUS_OK);
        assert_int_equal(n_gen, 1);
        assert_int_equal(gen_idx[0], 2);
        gtl__optim_group g = {gen_idx, n_gen, 1.0f, -1.0f, true};
        for (int t = 0; t < 10; t++) {
            load_grads(&ps, t);
            assert_int_equal(gtl__optim_step(opt, &ps, &g, 1, NULL), GTL_STATUS_OK);
            /* Frozen gradients are not clipped either. */
            assert_memory_equal(ps.grad + ps.offsets[2], &oref_grads[t][16], 6 * sizeof(float));
        }
        /* enc.b occupies flat [12, 16), gen.w flat [16, 22). */
        assert_memory_equal(ps.data + ps.offsets[1], &oref_p0[12], 4 * sizeof(float));
        assert_memory_equal(ps.data + ps.offsets[2], &oref_p0[16], 6 * sizeof(float));
        assert_true(memcmp(ps.data + ps.offsets[0], &oref_p0[0], 12 * sizeof(float)) != 0);
        gtl__optim_state st;
        gtl__optim_get_state(opt, &st);
        assert_int_equal(st.param_steps[0], 10);
        assert_int_equal(st.param_steps[1], 0);
        assert_int_equal(st.param_steps[2], 0);
        for (int p = 1; p <= 2; p++)
            for (int64_t j = 0; j < ps.params[p].n; j++) {
                assert_true(st.m[ps.offsets[p] + j] == 0.0f);
                if (st.v != NULL)
                    assert_true(st.v[ps.offsets[p] + j] == 0.0f);
            }
        gtl_optimizer_destroy(opt);
        gtl__paramset_fini(&ps);
    }
}

/* ---- lazy rows (docs/optimizers.md) */

/* A paramset of a dense (5) vector, a tracked (4 rows x 24) matrix and a
 * dense (7) vector, optionally without tracking (the dense reference). */
enum { LZ_ROWS = 4, LZ_LEN = 24, LZ_STEPS = 8 };

static void lazy_ps(gtl__paramset *ps, bool track)
{
    const int64_t ne_a[1] = {5}, ne_w[2] = {LZ_ROWS, LZ_LEN}, ne_b[1] = {7};
    gtl__paramset_init(ps);
    assert_int_equal(gtl__paramset_add(ps, "a", 1, ne_a, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(ps, "w", 2, ne_w, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_add(ps, "b", 1, ne_b, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(ps), GTL_STATUS_OK);
    if (track)
        assert_int_equal(gtl__paramset_track_rows(ps, 1, LZ_ROWS), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(ps), GTL_STATUS_OK);
    uint32_t x = 12345u;
    for (int64_t j = 0; j < ps->n_total; j++) {
        x = x * 1664525u + 1013904223u;
        ps->data[j] = (float)((int32_t)(x >> 8) % 1000) / 1000.0f;
    }
}

/* The gradient of step t, written as a backward pass would: zero_grad, then
 * the dense parameters, then the rows of w in `rows` (marked). */
static void lazy_grads(gtl__paramset *ps, int t, unsigned rows)
{
    gtl__paramset_zero_grad(ps);
    uint32_t x = 777u + 31u * (uint32_t)t;
    for (int64_t j = 0; j < ps->n_total; j++) {
        x = x * 1664525u + 1013904223u;
        float g = (float)((int32_t)(x >> 8) % 2000) / 500.0f;
        int64_t jw = j - ps->offsets[1];
        bool in_w = jw >= 0 && jw < LZ_ROWS * LZ_LEN;
        if (in_w && !(rows & (1u << (jw / LZ_LEN))))
            continue;
        bool in_a = j < 5, in_b = j >= ps->offsets[2] && j < ps->offsets[2] + 7;
        if (in_a || in_b || in_w)
            ps->grad[j] = g;
    }
    for (int r = 0; r < LZ_ROWS; r++)
        if (rows & (1u << r))
            gtl__tensor_mark_row(&ps->params[1], r);
}

static gtl_optimizer *lazy_opt(gtl_optim_kind kind, float wd)
{
    gtl_optimizer *opt = NULL;
    assert_int_equal(gtl_optimizer_create(kind, &opt), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 0.05f), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, wd),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, 3.0f), GTL_STATUS_OK);
    if (kind == GTL_OPTIM_SGD)
        assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, 0.9f),
                         GTL_STATUS_OK);
    return opt;
}

static const gtl_optim_kind lazy_kinds[3] = {GTL_OPTIM_ADAM, GTL_OPTIM_ADAMW, GTL_OPTIM_SGD};

/* Every row active every step: the lazy update is the dense one, bitwise
 * (parameters, moments, norms), with weight decay and clipping that bites. */
static void test_lazy_all_active_is_dense(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        gtl__paramset lz, dn;
        lazy_ps(&lz, true);
        lazy_ps(&dn, false);
        gtl_optimizer *ol = lazy_opt(lazy_kinds[k], 0.1f), *od = lazy_opt(lazy_kinds[k], 0.1f);
        for (int t = 0; t < LZ_STEPS; t++) {
            lazy_grads(&lz, t, 0xfu);
            lazy_grads(&dn, t, 0xfu);
            float nl, nd;
            assert_int_equal(gtl__optim_step(ol, &lz, NULL, 0, &nl), GTL_STATUS_OK);
            assert_int_equal(gtl__optim_step(od, &dn, NULL, 0, &nd), GTL_STATUS_OK);
            assert_true(nl > 3.0f); /* clipping bites */
            assert_memory_equal(&nl, &nd, sizeof nl);
            assert_memory_equal(lz.data, dn.data, (size_t)lz.n_total * sizeof(float));
        }
        gtl__optim_state sl, sd;
        gtl__optim_get_state(ol, &sl);
        gtl__optim_get_state(od, &sd);
        assert_memory_equal(sl.m, sd.m, (size_t)lz.n_total * sizeof(float));
        if (lazy_kinds[k] != GTL_OPTIM_SGD)
            assert_memory_equal(sl.v, sd.v, (size_t)lz.n_total * sizeof(float));
        assert_int_equal(sl.n_rows, LZ_ROWS);
        assert_null(sd.live);
        gtl_optimizer_destroy(ol);
        gtl_optimizer_destroy(od);
        gtl__paramset_fini(&lz);
        gtl__paramset_fini(&dn);
    }
}

/* Row 3 never active: its weights and state stay exactly as they were. Row
 * 1 active at step 0 only: it keeps moving (momentum, decay) exactly as the
 * dense update of a zero gradient moves it. Rows 0 and 2: every step. */
static void test_lazy_inactive_rows(void **state)
{
    (void)state;
    const unsigned rows_at[2] = {0x7u, 0x5u}; /* step 0, steps >= 1 */
    for (int k = 0; k < 3; k++) {
        gtl__paramset lz, dn;
        lazy_ps(&lz, true);
        lazy_ps(&dn, false);
        float w0[LZ_ROWS * LZ_LEN], w_prev[LZ_LEN];
        memcpy(w0, lz.data + lz.offsets[1], sizeof w0);
        gtl_optimizer *ol = lazy_opt(lazy_kinds[k], 0.1f), *od = lazy_opt(lazy_kinds[k], 0.1f);
        for (int t = 0; t < LZ_STEPS; t++) {
            lazy_grads(&lz, t, rows_at[t > 0]);
            lazy_grads(&dn, t, rows_at[t > 0]);
            assert_int_equal(lz.params[1].rows->n_dirty, t > 0 ? 2 : 3);
            memcpy(w_prev, lz.data + lz.offsets[1] + LZ_LEN, sizeof w_prev);
            assert_int_equal(gtl__optim_step(ol, &lz, NULL, 0, NULL), GTL_STATUS_OK);
            assert_int_equal(gtl__optim_step(od, &dn, NULL, 0, NULL), GTL_STATUS_OK);
            /* Rows 0..2 and the dense parameters: as the dense update. */
            assert_memory_equal(lz.data, dn.data,
                                (size_t)(lz.offsets[1] + 3 * LZ_LEN) * sizeof(float));
            assert_memory_equal(lz.data + lz.offsets[2], dn.data + dn.offsets[2],
                                7 * sizeof(float));
            /* Row 1 moves at every step, also without a gradient. */
            assert_true(memcmp(w_prev, lz.data + lz.offsets[1] + LZ_LEN, sizeof w_prev) != 0);
            /* Row 3 never moves (the dense update decays it). */
            assert_memory_equal(lz.data + lz.offsets[1] + 3 * LZ_LEN, w0 + 3 * LZ_LEN,
                                LZ_LEN * sizeof(float));
            assert_true(memcmp(dn.data + dn.offsets[1] + 3 * LZ_LEN, w0 + 3 * LZ_LEN,
                               LZ_LEN * sizeof(float)) != 0);
        }
        gtl__optim_state sl;
        gtl__optim_get_state(ol, &sl);
        const uint8_t live_want[LZ_ROWS] = {1, 1, 1, 0};
        assert_memory_equal(sl.live, live_want, LZ_ROWS);
        for (int64_t j = 0; j < LZ_LEN; j++) {
            int64_t o = lz.offsets[1] + 3 * LZ_LEN + j;
            assert_true(sl.m[o] == 0.0f && !signbit(sl.m[o]));
            if (sl.v != NULL)
                assert_true(sl.v[o] == 0.0f && !signbit(sl.v[o]));
        }
        gtl_optimizer_destroy(ol);
        gtl_optimizer_destroy(od);
        gtl__paramset_fini(&lz);
        gtl__paramset_fini(&dn);
    }
}

/* The live map goes through get_state / set_state, and a state without one
 * (an older checkpoint) is rebuilt from the moments: both continue bitwise
 * as the uninterrupted run. Also: zero_grad clears the marked rows. */
static void test_lazy_state_resume(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        for (int with_live = 0; with_live < 2; with_live++) {
            gtl__paramset a, b;
            lazy_ps(&a, true);
            lazy_ps(&b, true);
            gtl_optimizer *oa = lazy_opt(lazy_kinds[k], 0.1f), *ob = NULL;
            for (int t = 0; t < LZ_STEPS; t++) {
                if (t == 3) {
                    /* Resume b from a's state after 3 steps. */
                    memcpy(b.data, a.data, (size_t)a.n_total * sizeof(float));
                    gtl__optim_state s;
                    gtl__optim_get_state(oa, &s);
                    assert_int_equal(s.n_rows, LZ_ROWS);
                    if (!with_live) {
                        s.n_rows = 0;
                        s.live = NULL;
                    }
                    ob = lazy_opt(lazy_kinds[k], 0.1f);
                    assert_int_equal(gtl__optim_set_state(ob, &s), GTL_STATUS_OK);
                }
                unsigned rows = t == 0 ? 0x3u : 0x1u; /* rows 2, 3 never */
                lazy_grads(&a, t, rows);
                assert_int_equal(gtl__optim_step(oa, &a, NULL, 0, NULL), GTL_STATUS_OK);
                if (ob != NULL) {
                    lazy_grads(&b, t, rows);
                    assert_int_equal(gtl__optim_step(ob, &b, NULL, 0, NULL), GTL_STATUS_OK);
                    assert_memory_equal(a.data, b.data, (size_t)a.n_total * sizeof(float));
                }
            }
            /* zero_grad: the marked row's gradient is cleared. */
            gtl__paramset_zero_grad(&a);
            for (int64_t j = 0; j < a.n_total; j++)
                assert_true(a.grad[j] == 0.0f);
            assert_int_equal(a.params[1].rows->n_dirty, 0);
            gtl_optimizer_destroy(oa);
            gtl_optimizer_destroy(ob);
            gtl__paramset_fini(&a);
            gtl__paramset_fini(&b);
        }
    }
    /* Bad live maps are refused. */
    gtl_optimizer *o = lazy_opt(GTL_OPTIM_ADAM, 0.0f);
    const uint8_t bad[2] = {0, 2};
    gtl__optim_state s = {1, 0, 16, NULL, NULL, NULL, 2, bad};
    assert_int_equal(gtl__optim_set_state(o, &s), GTL_STATUS_INVALID_ARG);
    s.live = NULL;
    assert_int_equal(gtl__optim_set_state(o, &s), GTL_STATUS_INVALID_ARG);
    gtl_optimizer_destroy(o);
}

/* ---- uninitialised and reused moment buffers
 *
 * main() installs an allocator that fills every new block with NaN bytes,
 * so a moment the optimizer forgot to zero shows. */

/* Runs LZ_STEPS steps on a fresh lazy paramset with a live-row schedule:
 * rows 0 and 2 at step 0, row 1 from step 3 on, row 3 never. Returns the
 * paramset (caller finis it). */
static void lazy_run(gtl_optimizer *opt, gtl__paramset *ps)
{
    lazy_ps(ps, true);
    for (int t = 0; t < LZ_STEPS; t++) {
        lazy_grads(ps, t, t == 0 ? 0x5u : t >= 3 ? 0x3u : 0x1u);
        assert_int_equal(gtl__optim_step(opt, ps, NULL, 0, NULL), GTL_STATUS_OK);
    }
}

/* An optimizer reset after training on other gradients (every row live and
 * non-zero moments everywhere: "garbage" for the next binding) rebinds to a
 * paramset of the same layout without allocating, and the run is bitwise the
 * one of a fresh optimizer: parameters, moments (zero in the never-live row),
 * live map and step counts. */
static void test_rebind_reuses_buffers(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        gtl_optimizer *fresh = lazy_opt(lazy_kinds[k], 0.1f);
        gtl_optimizer *used = lazy_opt(lazy_kinds[k], 0.1f);
        gtl__paramset pu, pf, pr;
        lazy_ps(&pu, true);
        for (int t = 0; t < 5; t++) {
            lazy_grads(&pu, 100 + t, 0xfu);
            assert_int_equal(gtl__optim_step(used, &pu, NULL, 0, NULL), GTL_STATUS_OK);
        }
        gtl__optim_state s0;
        gtl__optim_get_state(used, &s0);
        const float *m_before = s0.m;
        assert_true(s0.m[pu.offsets[1] + 3 * LZ_LEN] != 0.0f); /* row 3 has moments */
        assert_int_equal(gtl_optimizer_reset(used), GTL_STATUS_OK);

        lazy_run(fresh, &pf);
        uint64_t n0 = gtl__alloc_count();
        lazy_run(used, &pr);
        /* lazy_ps allocates the paramset; the optimizer allocates nothing. */
        gtl__paramset probe;
        uint64_t n_ps0 = gtl__alloc_count();
        lazy_ps(&probe, true);
        uint64_t n_ps = gtl__alloc_count() - n_ps0;
        gtl__paramset_fini(&probe);
        assert_int_equal(n0 + n_ps, n_ps0);

        assert_memory_equal(pf.data, pr.data, (size_t)pf.n_total * sizeof(float));
        gtl__optim_state sf, sr;
        gtl__optim_get_state(fresh, &sf);
        gtl__optim_get_state(used, &sr);
        assert_ptr_equal(sr.m, m_before); /* the same buffer */
        assert_int_equal(sf.step, sr.step);
        assert_int_equal(sf.n_total, sr.n_total);
        assert_memory_equal(sf.param_steps, sr.param_steps,
                            (size_t)sf.n_params * sizeof(int64_t));
        assert_memory_equal(sf.m, sr.m, (size_t)sf.n_total * sizeof(float));
        if (lazy_kinds[k] != GTL_OPTIM_SGD)
            assert_memory_equal(sf.v, sr.v, (size_t)sf.n_total * sizeof(float));
        const uint8_t live_want[LZ_ROWS] = {1, 1, 1, 0};
        assert_memory_equal(sf.live, live_want, LZ_ROWS);
        assert_memory_equal(sr.live, live_want, LZ_ROWS);
        for (int64_t j = 0; j < LZ_LEN; j++) {
            int64_t o = pf.offsets[1] + 3 * LZ_LEN + j;
            assert_true(sf.m[o] == 0.0f && !signbit(sf.m[o]));
            assert_true(sr.m[o] == 0.0f && !signbit(sr.m[o]));
        }
        /* A paramset of another layout: the spare buffers are replaced. */
        assert_int_equal(gtl_optimizer_reset(used), GTL_STATUS_OK);
        gtl__paramset other;
        make_ps(&other);
        load_grads(&other, 0);
        assert_int_equal(gtl__optim_step(used, &other, NULL, 0, NULL), GTL_STATUS_OK);
        gtl__optim_get_state(used, &sr);
        assert_int_equal(sr.n_total, other.n_total);
        assert_int_equal(sr.n_rows, 0);
        gtl__paramset_fini(&other);
        gtl_optimizer_destroy(fresh);
        gtl_optimizer_destroy(used);
        gtl__paramset_fini(&pu);
        gtl__paramset_fini(&pf);
        gtl__paramset_fini(&pr);
    }
}

/* Live rows without a gradient this step take the loops that do not read
 * the gradient; they must be bitwise the dense update of a zero gradient,
 * also for the sign of zero: parameters of -0 and +0 with and without decay
 * (x + 0.0f is not x for x = -0). Row 1 (live from step 0) has no gradient
 * at steps >= 1; row 0 has one at every step; the dense run takes both from
 * the loops that read the gradient. */
static void test_nograd_rows_signed_zero(void **state)
{
    (void)state;
    const float wds[2] = {0.0f, 0.1f};
    for (int k = 0; k < 3; k++) {
        for (int w = 0; w < 2; w++) {
            gtl__paramset lz, dn;
            lazy_ps(&lz, true);
            lazy_ps(&dn, false);
            for (int64_t j = 0; j < LZ_LEN; j += 2) {
                float z = (j % 4 == 0) ? -0.0f : 0.0f;
                lz.data[lz.offsets[1] + LZ_LEN + j] = z;
                dn.data[dn.offsets[1] + LZ_LEN + j] = z;
            }
            gtl_optimizer *ol = lazy_opt(lazy_kinds[k], wds[w]);
            gtl_optimizer *od = lazy_opt(lazy_kinds[k], wds[w]);
            for (int t = 0; t < LZ_STEPS; t++) {
                lazy_grads(&lz, t, t == 0 ? 0xfu : 0x1u);
                lazy_grads(&dn, t, t == 0 ? 0xfu : 0x1u);
                if (t == 0) /* the -0 / +0 entries get a zero gradient too */
                    for (int64_t j = 0; j < LZ_LEN; j += 2) {
                        lz.grad[lz.offsets[1] + LZ_LEN + j] = 0.0f;
                        dn.grad[dn.offsets[1] + LZ_LEN + j] = 0.0f;
                    }
                assert_int_equal(gtl__optim_step(ol, &lz, NULL, 0, NULL), GTL_STATUS_OK);
                assert_int_equal(gtl__optim_step(od, &dn, NULL, 0, NULL), GTL_STATUS_OK);
                assert_memory_equal(lz.data, dn.data, (size_t)lz.n_total * sizeof(float));
            }
            gtl__optim_state sl, sd;
            gtl__optim_get_state(ol, &sl);
            gtl__optim_get_state(od, &sd);
            assert_memory_equal(sl.m, sd.m, (size_t)lz.n_total * sizeof(float));
            if (lazy_kinds[k] != GTL_OPTIM_SGD)
                assert_memory_equal(sl.v, sd.v, (size_t)lz.n_total * sizeof(float));
            gtl_optimizer_destroy(ol);
            gtl_optimizer_destroy(od);
            gtl__paramset_fini(&lz);
            gtl__paramset_fini(&dn);
        }
    }
}

/* ---- zero allocations per step */

static void test_no_alloc_per_step(void **state)
{
    (void)state;
    for (int k = 0; k < OREF_N_CASES; k++) {
        const oref_case *c = &oref_cases[k];
        gtl__paramset ps;
        make_ps(&ps);
        gtl_optimizer *opt = make_opt(c);
        step_groups sg;
        make_groups(c, 0, &sg);
        load_grads(&ps, 0);
        assert_int_equal(gtl__optim_step(opt, &ps, sg.g, sg.n, NULL), GTL_STATUS_OK);
        uint64_t n0 = gtl__alloc_count();
        for (int t = 1; t < OREF_T; t++) {
            make_groups(c, t, &sg);
            load_grads(&ps, t);
            float norm;
            assert_int_equal(gtl__optim_step(opt, &ps, sg.g, sg.n, &norm), GTL_STATUS_OK);
        }
        /* Failed steps allocate nothing either. */
        ps.grad[0] = NAN;
        assert_int_equal(gtl__optim_step(opt, &ps, sg.g, sg.n, NULL), GTL_STATUS_NUMERIC);
        if (gtl__alloc_count() != n0) {
            print_error("%s: %llu allocations in steps 1..19\n", c->name,
                        (unsigned long long)(gtl__alloc_count() - n0));
            fail();
        }
        gtl_optimizer_destroy(opt);
        gtl__paramset_fini(&ps);
    }
}

/* Slices large enough for the OpenMP loops: the same result with 1 and 2
 * threads, bitwise, for every kind (and clipping). */
static void test_large_param_threads(void **state)
{
    (void)state;
    int32_t n_threads0 = 1;
    assert_int_equal(gtl_num_threads(&n_threads0), GTL_STATUS_OK);
    static const gtl_optim_kind kinds[3] = {GTL_OPTIM_ADAM, GTL_OPTIM_ADAMW, GTL_OPTIM_SGD};
    for (int k = 0; k < 3; k++) {
        float *res[2] = {NULL, NULL};
        for (int r = 0; r < 2; r++) {
            assert_int_equal(gtl_set_num_threads(r + 1), GTL_STATUS_OK);
            gtl__paramset ps;
            gtl__paramset_init(&ps);
            int64_t ne[2] = {300, 250};
            assert_int_equal(gtl__paramset_add(&ps, "big", 2, ne, NULL), GTL_STATUS_OK);
            assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
            assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_OK);
            gtl_optimizer *opt = NULL;
            assert_int_equal(gtl_optimizer_create(kinds[k], &opt), GTL_STATUS_OK);
            assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, 0.9f),
                             GTL_STATUS_OK);
            assert_int_equal(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, 10.0f),
                             GTL_STATUS_OK);
            int64_t n = ps.params[0].n;
            for (int t = 0; t < 3; t++) {
                for (int64_t j = 0; j < n; j++) {
                    ps.data[j] = t == 0 ? 0.001f * (float)(j % 997) : ps.data[j];
                    ps.grad[j] = sinf(0.01f * (float)j + (float)t);
                }
                assert_int_equal(gtl__optim_step(opt, &ps, NULL, 0, NULL), GTL_STATUS_OK);
            }
            res[r] = malloc((size_t)n * sizeof(float));
            memcpy(res[r], ps.data, (size_t)n * sizeof(float));
            gtl_optimizer_destroy(opt);
            gtl__paramset_fini(&ps);
        }
        assert_memory_equal(res[0], res[1], 75000 * sizeof(float));
        free(res[0]);
        free(res[1]);
    }
    assert_int_equal(gtl_set_num_threads(n_threads0), GTL_STATUS_OK);
}

/* ---- checkpoint state */

static void test_state_roundtrip(void **state)
{
    (void)state;
    for (int k = 0; k < OREF_N_CASES; k++) {
        const oref_case *c = &oref_cases[k];
        gtl__paramset ps;
        make_ps(&ps);
        gtl_optimizer *a = make_opt(c);
        run_steps(c, a, &ps, 0, 10);

        /* "Save": the state as flat arrays, and the parameters. */
        gtl__optim_state st;
        gtl__optim_get_state(a, &st);
        float saved_m[64] = {0}, saved_v[64] = {0}, saved_p[64];
        int64_t saved_steps[OREF_N_PARAMS];
        gtl__optim_state saved = st;
        memcpy(saved_p, ps.data, (size_t)ps.n_total * sizeof(float));
        memcpy(saved_steps, st.param_steps, sizeof saved_steps);
        saved.param_steps = saved_steps;
        if (st.m != NULL) {
            memcpy(saved_m, st.m, (size_t)st.n_total * sizeof(float));
            saved.m = saved_m;
        }
        if (st.v != NULL) {
            memcpy(saved_v, st.v, (size_t)st.n_total * sizeof(float));
            saved.v = saved_v;
        }
        run_steps(c, a, &ps, 10, OREF_T);
        float end_a[64];
        memcpy(end_a, ps.data, (size_t)ps.n_total * sizeof(float));

        /* "Load" into a fresh optimizer and continue: bitwise the same. */
        gtl_optimizer *b = make_opt(c);
        assert_int_equal(gtl__optim_set_state(b, &saved), GTL_STATUS_OK);
        memcpy(ps.data, saved_p, (size_t)ps.n_total * sizeof(float));
        for (int t = 10; t < OREF_T; t++) {
            step_groups sg;
            make_groups(c, t, &sg);
            load_grads(&ps, t);
            assert_int_equal(gtl__optim_step(b, &ps, sg.g, sg.n, NULL), GTL_STATUS_OK);
        }
        assert_memory_equal(ps.data, end_a, (size_t)ps.n_total * sizeof(float));
        gtl__optim_state sa, sb;
        gtl__optim_get_state(a, &sa);
        gtl__optim_get_state(b, &sb);
        assert_int_equal(sa.step, sb.step);
        assert_memory_equal(sa.param_steps, sb.param_steps, sizeof saved_steps);
        if (sa.m != NULL)
            assert_memory_equal(sa.m, sb.m, (size_t)sa.n_total * sizeof(float));
        if (sa.v != NULL)
            assert_memory_equal(sa.v, sb.v, (size_t)sa.n_total * sizeof(float));
        gtl_optimizer_destroy(b);
        gtl_optimizer_destroy(a);
        gtl__paramset_fini(&ps);
    }
}

static void test_state_bad(void **state)
{
    (void)state;
    gtl_optimizer *opt = NULL;
    assert_int_equal(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt), GTL_STATUS_OK);
    float m[32] = {0};
    int64_t steps[4] = {3, 3, 3, 4};
    gtl__optim_state st = {.step = 3, .n_params = 4, .n_total = 32, .param_steps = steps,
                           .m = m, .v = m};
    /* A per-parameter count above the step count. */
    assert_int_equal(gtl__optim_set_state(opt, &st), GTL_STATUS_INVALID_ARG);
    steps[3] = 3;
    st.step = -1;
    assert_int_equal(gtl__optim_set_state(opt, &st), GTL_STATUS_INVALID_ARG);
    st.step = 3;
    st.n_total = 0;
    assert_int_equal(gtl__optim_set_state(opt, &st), GTL_STATUS_INVALID_ARG);
    st.n_total = 32;
    /* Nothing was changed by the failures. */
    int64_t n = -1;
    assert_int_equal(gtl_optimizer_num_steps(opt, &n), GTL_STATUS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gtl__optim_set_state(opt, &st), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_num_steps(opt, &n), GTL_STATUS_OK);
    assert_int_equal(n, 3);
    /* A restored state fixes the layout: a different paramset is refused. */
    gtl__paramset ps;
    make_ps(&ps); /* 4 parameters, 64 floats */
    float before[64];
    memcpy(before, ps.data, sizeof before);
    assert_int_equal(gtl__optim_step(opt, &ps, NULL, 0, NULL), GTL_STATUS_BAD_STATE);
    assert_memory_equal(before, ps.data, sizeof before);
    /* An empty state unbinds again. */
    gtl__optim_state empty = {.step = 0};
    assert_int_equal(gtl__optim_set_state(opt, &empty), GTL_STATUS_OK);
    assert_int_equal(gtl__optim_step(opt, &ps, NULL, 0, NULL), GTL_STATUS_OK);
    gtl__paramset_fini(&ps);
    gtl_optimizer_destroy(opt);
}

/* ---- step argument checks */

static void test_step_bad_args(void **state)
{
    (void)state;
    gtl__paramset ps;
    make_ps(&ps);
    gtl_optimizer *opt = NULL;
    assert_int_equal(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt), GTL_STATUS_OK);
    load_grads(&ps, 0);
    float before[64];
    memcpy(before, ps.data, sizeof before);

    int64_t idx_a[2] = {0, 1}, idx_b[2] = {1, 2}, idx_bad[1] = {4};
    gtl__optim_group dup[2] = {{idx_a, 2, 1.0f, -1.0f, false}, {idx_b, 2, 1.0f, -1.0f, false}};
    gtl__optim_group oob = {idx_bad, 1, 1.0f, -1.0f, false};
    gtl__optim_group null_idx = {NULL, 1, 1.0f, -1.0f, false};
    gtl__optim_group neg_mult = {idx_a, 2, -1.0f, -1.0f, false};
    gtl__optim_group nan_mult = {idx_a, 2, NAN, -1.0f, false};
    gtl__optim_group nan_wd = {idx_a, 2, 1.0f, NAN, false};
    float norm = 5.0f;
    assert_int_equal(gtl__optim_step(NULL, &ps, NULL, 0, &norm), GTL_STATUS_INVALID_ARG);
    assert_true(norm == 0.0f);
    assert_int_equal(gtl__optim_step(opt, NULL, NULL, 0, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, dup, 2, NULL), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "enc.b"));
    assert_int_equal(gtl__optim_step(opt, &ps, &oob, 1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, &null_idx, 1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, &neg_mult, 1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, &nan_mult, 1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, &nan_wd, 1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, NULL, 1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__optim_step(opt, &ps, dup, -1, NULL), GTL_STATUS_INVALID_ARG);
    assert_memory_equal(before, ps.data, sizeof before);
    int64_t n = -1;
    assert_int_equal(gtl_optimizer_num_steps(opt, &n), GTL_STATUS_OK);
    assert_int_equal(n, 0);

    /* Nesterov without momentum. */
    gtl_optimizer *sgd = NULL;
    assert_int_equal(gtl_optimizer_create(GTL_OPTIM_SGD, &sgd), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_i64(sgd, GTL_OPTIM_PARAM_NESTEROV, 1), GTL_STATUS_OK);
    assert_int_equal(gtl__optim_step(sgd, &ps, NULL, 0, NULL), GTL_STATUS_INVALID_ARG);
    assert_memory_equal(before, ps.data, sizeof before);

    /* No gradient blob yet: step before backward. */
    gtl__paramset nograd;
    gtl__paramset_init(&nograd);
    int64_t ne[1] = {3};
    assert_int_equal(gtl__paramset_add(&nograd, "x", 1, ne, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__optim_step(opt, &nograd, NULL, 0, NULL), GTL_STATUS_BAD_STATE);
    assert_int_equal(gtl__paramset_finalize(&nograd), GTL_STATUS_OK);
    assert_int_equal(gtl__optim_step(opt, &nograd, NULL, 0, NULL), GTL_STATUS_BAD_STATE);
    assert_int_equal(gtl__paramset_alloc_grad(&nograd), GTL_STATUS_OK);
    /* Bound to the first paramset it stepped: another layout is refused. */
    assert_int_equal(gtl__optim_step(opt, &ps, NULL, 0, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__optim_step(opt, &nograd, NULL, 0, NULL), GTL_STATUS_BAD_STATE);

    int64_t sel[1];
    int64_t n_sel = 0;
    assert_int_equal(gtl__optim_select_prefix(&ps, "enc.", sel, 1, &n_sel),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(n_sel, 2);

    gtl__paramset_fini(&nograd);
    gtl_optimizer_destroy(sgd);
    gtl_optimizer_destroy(opt);
    gtl__paramset_fini(&ps);
}

/* ---- public API */

#define EXPECT_FAIL(call, status)                          \
    do {                                                   \
        assert_int_equal((call), (status));                \
        assert_true(strlen(gtl_last_error()) > 0);         \
    } while (0)

static void test_api_defaults(void **state)
{
    (void)state;
    static const gtl_optim_kind kinds[3] = {GTL_OPTIM_ADAM, GTL_OPTIM_ADAMW, GTL_OPTIM_SGD};
    for (int k = 0; k < 3; k++) {
        gtl_optimizer *opt = NULL;
        assert_int_equal(gtl_optimizer_create(kinds[k], &opt), GTL_STATUS_OK);
        assert_string_equal(gtl_last_error(), "");
        float f = -1.0f;
        int64_t i = -1;
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_LR, &f), GTL_STATUS_OK);
        assert_true(f == 1e-3f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_BETA1, &f), GTL_STATUS_OK);
        assert_true(f == 0.9f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_BETA2, &f), GTL_STATUS_OK);
        assert_true(f == 0.999f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_EPS, &f), GTL_STATUS_OK);
        assert_true(f == 1e-8f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, &f),
                         GTL_STATUS_OK);
        assert_true(f == (kinds[k] == GTL_OPTIM_ADAMW ? 1e-2f : 0.0f));
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, &f), GTL_STATUS_OK);
        assert_true(f == 0.0f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, &f), GTL_STATUS_OK);
        assert_true(f == 0.0f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_WARMUP_START_FACTOR, &f),
                         GTL_STATUS_OK);
        assert_true(f == 0.01f);
        assert_int_equal(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_DECAY_GAMMA, &f),
                         GTL_STATUS_OK);
        assert_true(f == 0.1f);
        assert_int_equal(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_NESTEROV, &i), GTL_STATUS_OK);
        assert_int_equal(i, 0);
        assert_int_equal(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, &i),
                         GTL_STATUS_OK);
        assert_int_equal(i, 0);
        size_t n = 99;
        assert_int_equal(gtl_optimizer_get_milestones(opt, NULL, 0, &n), GTL_STATUS_OK);
        assert_int_equal(n, 0);
        /* No schedule: every step gets LR. */
        assert_int_equal(gtl_optimizer_lr_at(opt, 123456789, &f), GTL_STATUS_OK);
        assert_true(f == 1e-3f);
        gtl_optimizer_destroy(opt);
    }
}

static void test_api_set_get_bounds(void **state)
{
    (void)state;
    gtl_optimizer *opt = NULL;
    assert_int_equal(gtl_optimizer_create(GTL_OPTIM_ADAMW, &opt), GTL_STATUS_OK);
    for (int key = 0; key < GTL__OPTIM_N_PARAMS; key++) {
        double lo = -7, hi = -7;
        assert_int_equal(gtl_optim_param_bounds((gtl_optim_param)key, &lo, &hi), GTL_STATUS_OK);
        assert_true(lo <= hi);
        if (gtl__optim_param_is_int((gtl_optim_param)key)) {
            /* Both ends accepted and read back; one past either end refused. */
            int64_t ends[2] = {(int64_t)lo, (int64_t)hi};
            for (int e = 0; e < 2; e++) {
                int64_t got = -1;
                assert_int_equal(gtl_optimizer_set_i64(opt, key, ends[e]), GTL_STATUS_OK);
                assert_int_equal(gtl_optimizer_get_i64(opt, key, &got), GTL_STATUS_OK);
                assert_int_equal(got, ends[e]);
            }
            EXPECT_FAIL(gtl_optimizer_set_i64(opt, key, (int64_t)lo - 1), GTL_STATUS_INVALID_ARG);
            EXPECT_FAIL(gtl_optimizer_set_i64(opt, key, (int64_t)hi + 1), GTL_STATUS_INVALID_ARG);
            int64_t got = -1;
            assert_int_equal(gtl_optimizer_get_i64(opt, key, &got), GTL_STATUS_OK);
            assert_int_equal(got, (int64_t)hi); /* unchanged by the failures */
            /* Wrong type. */
            float f = 1.0f;
            EXPECT_FAIL(gtl_optimizer_set_f32(opt, key, 0.0f), GTL_STATUS_INVALID_ARG);
            EXPECT_FAIL(gtl_optimizer_get_f32(opt, key, &f), GTL_STATUS_INVALID_ARG);
            assert_true(f == 0.0f);
        } else {
            float ends[2] = {(float)lo, (float)hi};
            assert_true((double)ends[0] == lo && (double)ends[1] == hi); /* exact floats */
            for (int e = 0; e < 2; e++) {
                float got = -1.0f;
                assert_int_equal(gtl_optimizer_set_f32(opt, key, ends[e]), GTL_STATUS_OK);
                assert_int_equal(gtl_optimizer_get_f32(opt, key, &got), GTL_STATUS_OK);
                assert_true(got == ends[e]);
            }
            EXPECT_FAIL(gtl_optimizer_set_f32(opt, key, nextafterf(ends[0], -INFINITY)),
                        GTL_STATUS_INVALID_ARG);
            EXPECT_FAIL(gtl_optimizer_set_f32(opt, key, nextafterf(ends[1], INFINITY)),
                        GTL_STATUS_INVALID_ARG);
            EXPECT_FAIL(gtl_optimizer_set_f32(opt, key, NAN), GTL_STATUS_INVALID_ARG);
            assert_non_null(strstr(gtl_last_error(), gtl__optim_param_name(key)));
            float got = -1.0f;
            assert_int_equal(gtl_optimizer_get_f32(opt, key, &got), GTL_STATUS_OK);
            assert_true(got == ends[1]);
            int64_t i = 1;
            EXPECT_FAIL(gtl_optimizer_set_i64(opt, key, 0), GTL_STATUS_INVALID_ARG);
            EXPECT_FAIL(gtl_optimizer_get_i64(opt, key, &i), GTL_STATUS_INVALID_ARG);
            assert_int_equal(i, 0);
        }
    }
    /* Unknown keys, NULL handles and out pointers. */
    double lo = 1, hi = 1;
    EXPECT_FAIL(gtl_optim_param_bounds((gtl_optim_param)GTL__OPTIM_N_PARAMS, &lo, &hi),
                GTL_STATUS_INVALID_ARG);
    assert_true(lo == 0.0 && hi == 0.0);
    EXPECT_FAIL(gtl_optim_param_bounds((gtl_optim_param)-1, &lo, &hi), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optim_param_bounds(GTL_OPTIM_PARAM_LR, NULL, &hi), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optim_param_bounds(GTL_OPTIM_PARAM_LR, &lo, NULL), GTL_STATUS_INVALID_ARG);
    float f = 0.0f;
    int64_t i = 0;
    EXPECT_FAIL(gtl_optimizer_set_f32(opt, (gtl_optim_param)99, 1.0f), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_i64(opt, (gtl_optim_param)99, 1), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_f32(opt, (gtl_optim_param)99, &f), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_i64(opt, (gtl_optim_param)-3, &i), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_f32(NULL, GTL_OPTIM_PARAM_LR, 1.0f), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_i64(NULL, GTL_OPTIM_PARAM_NESTEROV, 1), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_f32(NULL, GTL_OPTIM_PARAM_LR, &f), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_LR, NULL), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_i64(NULL, GTL_OPTIM_PARAM_NESTEROV, &i),
                GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_NESTEROV, NULL),
                GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, INFINITY),
                GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_EPS, 0.0f), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_BETA2, 1.0f), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, -1),
                GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, INT64_MAX),
                GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_NESTEROV, 2), GTL_STATUS_INVALID_ARG);
    gtl_optimizer_destroy(opt);
}

static void test_api_lifecycle_and_schedule_args(void **state)
{
    (void)state;
    uint64_t bytes0 = 0, blocks0 = 0;
    assert_int_equal(gtl_memory_in_use(&bytes0, &blocks0), GTL_STATUS_OK);
    gtl_optimizer *opt = (gtl_optimizer *)&opt; /* non-NULL garbage: must be cleared */
    EXPECT_FAIL(gtl_optimizer_create((gtl_optim_kind)3, &opt), GTL_STATUS_INVALID_ARG);
    assert_null(opt);
    EXPECT_FAIL(gtl_optimizer_create((gtl_optim_kind)-1, &opt), GTL_STATUS_INVALID_ARG);
    assert_null(opt);
    EXPECT_FAIL(gtl_optimizer_create(GTL_OPTIM_ADAM, NULL), GTL_STATUS_INVALID_ARG);
    gtl_optimizer_destroy(NULL);
    EXPECT_FAIL(gtl_optimizer_reset(NULL), GTL_STATUS_INVALID_ARG);

    assert_int_equal(gtl_optimizer_create(GTL_OPTIM_SGD, &opt), GTL_STATUS_OK);
    int64_t ok[3] = {10, 20, 30};
    int64_t unsorted[3] = {10, 30, 20};
    int64_t dup[2] = {10, 10};
    int64_t neg[2] = {-1, 10};
    int64_t many[GTL_OPTIM_MAX_MILESTONES + 1];
    for (int k = 0; k <= GTL_OPTIM_MAX_MILESTONES; k++)
        many[k] = k;
    assert_int_equal(gtl_optimizer_set_milestones(opt, ok, 3), GTL_STATUS_OK);
    EXPECT_FAIL(gtl_optimizer_set_milestones(NULL, ok, 3), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_milestones(opt, NULL, 3), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_milestones(opt, unsorted, 3), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_milestones(opt, dup, 2), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_milestones(opt, neg, 2), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_milestones(opt, many, GTL_OPTIM_MAX_MILESTONES + 1),
                GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_set_milestones(opt, many, SIZE_MAX), GTL_STATUS_INVALID_ARG);
    /* The failures left the milestones as they were. */
    int64_t got[4] = {0};
    size_t n = 0;
    assert_int_equal(gtl_optimizer_get_milestones(opt, got, 4, &n), GTL_STATUS_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(got, ok, sizeof ok);
    EXPECT_FAIL(gtl_optimizer_get_milestones(opt, got, 2, &n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(n, 3); /* the size needed */
    EXPECT_FAIL(gtl_optimizer_get_milestones(opt, NULL, 4, &n), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_milestones(opt, got, 4, NULL), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_get_milestones(NULL, got, 4, &n), GTL_STATUS_INVALID_ARG);
    assert_int_equal(n, 0);
    assert_int_equal(gtl_optimizer_set_milestones(opt, many, GTL_OPTIM_MAX_MILESTONES),
                     GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_set_milestones(opt, NULL, 0), GTL_STATUS_OK);
    assert_int_equal(gtl_optimizer_get_milestones(opt, NULL, 0, &n), GTL_STATUS_OK);
    assert_int_equal(n, 0);

    float lr = 1.0f;
    EXPECT_FAIL(gtl_optimizer_lr_at(opt, -1, &lr), GTL_STATUS_INVALID_ARG);
    assert_true(lr == 0.0f);
    EXPECT_FAIL(gtl_optimizer_lr_at(NULL, 0, &lr), GTL_STATUS_INVALID_ARG);
    EXPECT_FAIL(gtl_optimizer_lr_at(opt, 0, NULL), GTL_STATUS_INVALID_ARG);
    int64_t ns = 7;
    EXPECT_FAIL(gtl_optimizer_num_steps(NULL, &ns), GTL_STATUS_INVALID_ARG);
    assert_int_equal(ns, 0);
    EXPECT_FAIL(gtl_optimizer_num_steps(opt, NULL), GTL_STATUS_INVALID_ARG);
    /* A success clears the message. */
    assert_int_equal(gtl_optimizer_lr_at(opt, 0, &lr), GTL_STATUS_OK);
    assert_string_equal(gtl_last_error(), "");
    gtl_optimizer_destroy(opt);

    /* No leaks: everything this test allocated was freed. */
    uint64_t bytes = 1, blocks = 1;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    assert_int_equal(blocks, blocks0);
    assert_int_equal(bytes, bytes0);
}

/* The NaN-filling allocator (a size header in front of each block, so that
 * realloc can fill the part it adds). */
typedef struct poison_hdr {
    size_t size;
    size_t pad; /* keeps the block 16-byte aligned */
} poison_hdr;

static void *poison_malloc(void *ud, size_t size)
{
    (void)ud;
    poison_hdr *h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    memset(h + 1, 0xff, size); /* 0xffffffff is a NaN */
    return h + 1;
}

static void poison_free(void *ud, void *p)
{
    (void)ud;
    if (p != NULL)
        free((poison_hdr *)p - 1);
}

static void *poison_realloc(void *ud, void *p, size_t size)
{
    if (p == NULL)
        return poison_malloc(ud, size);
    poison_hdr *h = (poison_hdr *)p - 1;
    size_t old = h->size;
    poison_hdr *n = realloc(h, sizeof *n + size);
    if (n == NULL)
        return NULL;
    if (size > old)
        memset((char *)(n + 1) + old, 0xff, size - old);
    n->size = size;
    return n + 1;
}

int main(void)
{
    if (gtl_set_allocator(poison_malloc, poison_realloc, poison_free, NULL) != GTL_STATUS_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trajectories),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_nonfinite_changes_nothing),
        cmocka_unit_test(test_frozen_unchanged),
        cmocka_unit_test(test_no_alloc_per_step),
        cmocka_unit_test(test_lazy_all_active_is_dense),
        cmocka_unit_test(test_lazy_inactive_rows),
        cmocka_unit_test(test_lazy_state_resume),
        cmocka_unit_test(test_rebind_reuses_buffers),
        cmocka_unit_test(test_nograd_rows_signed_zero),
        cmocka_unit_test(test_large_param_threads),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_state_bad),
        cmocka_unit_test(test_step_bad_args),
        cmocka_unit_test(test_api_defaults),
        cmocka_unit_test(test_api_set_get_bounds),
        cmocka_unit_test(test_api_lifecycle_and_schedule_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
