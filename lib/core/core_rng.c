/* xoshiro256** (Blackman & Vigna), seeded with splitmix64. */
#include <math.h>

#include "core/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void gtl__rng_seed(gtl__rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
    rng->spare = 0.0;
    rng->has_spare = 0;
}

uint64_t gtl__rng_u64(gtl__rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float gtl__rng_uniform(gtl__rng *rng)
{
    return (float)(gtl__rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

double gtl__rng_uniform_f64(gtl__rng *rng)
{
    return (double)(gtl__rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t gtl__rng_below(gtl__rng *rng, uint64_t n)
{
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = gtl__rng_u64(rng);
    } while (x >= limit);
    return x % n;
}

float gtl__rng_normal(gtl__rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return (float)rng->spare;
    }
    double u1, u2;
    do {
        u1 = gtl__rng_uniform_f64(rng);
    } while (u1 <= 1e-300);
    u2 = gtl__rng_uniform_f64(rng);
    double r = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    rng->spare = r * sin(th);
    rng->has_spare = 1;
    return (float)(r * cos(th));
}

void gtl__rng_fill_normal(gtl__rng *rng, float *dst, int64_t n, float mean, float std)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = mean + std * gtl__rng_normal(rng);
}

void gtl__rng_fill_uniform(gtl__rng *rng, float *dst, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = lo + (hi - lo) * gtl__rng_uniform(rng);
}

void gtl__rng_shuffle_i64(gtl__rng *rng, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)gtl__rng_below(rng, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
