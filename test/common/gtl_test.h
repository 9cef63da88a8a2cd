/* Test helpers shared by the unit tests: a fixture with a compute context,
 * tape and seeded RNG; a central finite-difference gradient checker; and a
 * forward comparison against a plain reference.
 *
 * Seeds: every test prints the seed it uses. GTL_TEST_SEED=<n> replays one;
 * GTL_TEST_SEED=time picks a fresh one (for fuzzing locally). The default is
 * fixed so CI is reproducible. */
#ifndef GTL_TEST_H
#define GTL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ops/ops.h"

typedef struct gt_env {
    gtl__ctx *ctx;
    gtl__tape *tape;
    gtl__rng rng;    /* the tape's RNG (dropout, reparam) */
    gtl__rng data;   /* the test's own RNG for shapes and values */
    uint64_t seed;
} gt_env;

/* cmocka fixtures: *state becomes a gt_env. */
int gt_setup(void **state);
int gt_teardown(void **state);
uint64_t gt_base_seed(void);

/* Random integer in [lo, hi]. */
int64_t gt_randint(gt_env *env, int64_t lo, int64_t hi);
/* Fills with uniform values in [lo, hi]. */
void gt_fill(gt_env *env, float *dst, int64_t n, float lo, float hi);
/* Fills with uniform values in [lo, hi] but at least `gap` away from each of
 * the kinks (for ops that are not differentiable there). */
void gt_fill_away(gt_env *env, float *dst, int64_t n, float lo, float hi, const float *kinks,
                  int n_kinks, float gap);

/* A leaf on the env's tape. data NULL: uniform [-1, 1]. */
gtl__tensor *gt_leaf(gt_env *env, int32_t nd, const int64_t *ne, const float *data,
                     bool requires_grad);

/* Asserts |a - b| <= atol + rtol * |b| elementwise; prints the worst. */
void gt_assert_close(const float *a, const float *b, int64_t n, double atol, double rtol,
                     const char *what);

/* ---- gradient check --------------------------------------------------- */

typedef struct gt_input {
    int32_t nd;
    int64_t ne[GTL__MAX_DIMS];
    const float *data;    /* NULL: uniform [lo, hi] (default [-1, 1]) */
    float lo, hi;
    bool no_grad;         /* true: a constant input, not checked */
} gt_input;

/* Builds the op's output from leaves made of the inputs. */
typedef gtl_status (*gt_fn)(gtl__tape *tape, gtl__tensor **in, void *ud, gtl__tensor **out);

typedef struct gt_gradcheck_opts {
    double eps;           /* finite-difference step (default 1e-2) */
    double tol;           /* max relative error (default 2e-2) */
    double floor;         /* denominator floor: err = |n - a| / (floor + max|.|) (default 1e-1) */
    int64_t max_checks;   /* coordinates checked per input (default 48) */
    bool training;        /* tape->training during the check (default false -> eval) */
} gt_gradcheck_opts;

/* Checks d(sum(out * r))/d(input) for a fixed random r against central
 * differences, for every input that is not no_grad. The tape RNG is
 * restored before every evaluation so random ops see the same draws.
 * Fails the cmocka test on mismatch and returns the max error. */
double gt_gradcheck(gt_env *env, const char *name, gt_fn fn, void *ud, int n_in,
                    const gt_input *in, const gt_gradcheck_opts *opts);

#endif /* GTL_TEST_H */
