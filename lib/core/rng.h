/* Seeded random numbers with explicit state (no global RNG anywhere).
 * xoshiro256** seeded through splitmix64; normals by Box-Muller. */
#ifndef GTL__RNG_H
#define GTL__RNG_H

#include <stdint.h>

typedef struct gtl__rng {
    uint64_t s[4];
    /* A spare normal from Box-Muller, valid when has_spare is 1. */
    double spare;
    int32_t has_spare;
} gtl__rng;

void gtl__rng_seed(gtl__rng *rng, uint64_t seed);
uint64_t gtl__rng_u64(gtl__rng *rng);
/* Uniform in [0, 1) with 24 random bits (float) or 53 (double). */
float gtl__rng_uniform(gtl__rng *rng);
double gtl__rng_uniform_f64(gtl__rng *rng);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t gtl__rng_below(gtl__rng *rng, uint64_t n);
/* Standard normal. */
float gtl__rng_normal(gtl__rng *rng);
/* Fill helpers. */
void gtl__rng_fill_normal(gtl__rng *rng, float *dst, int64_t n, float mean, float std);
void gtl__rng_fill_uniform(gtl__rng *rng, float *dst, int64_t n, float lo, float hi);
/* Fisher-Yates shuffle of an int64 array. */
void gtl__rng_shuffle_i64(gtl__rng *rng, int64_t *a, int64_t n);

#endif /* GTL__RNG_H */
