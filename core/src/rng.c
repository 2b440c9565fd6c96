/*
 * rng.c - xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64,
 * with the continuous distributions the samplers need.
 */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void vmf_rng_seed(vmf_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
    rng->spare_normal = 0.0;
    rng->has_spare = 0;
}

uint64_t vmf_rng_u64(vmf_rng *rng)
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

double vmf_rng_uniform(vmf_rng *rng)
{
    return (double)(vmf_rng_u64(rng) >> 11) * 0x1.0p-53;
}

uint64_t vmf_rng_below(vmf_rng *rng, uint64_t n)
{
    /* Reject the top partial block of 2^64 so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = vmf_rng_u64(rng);
    } while (r >= limit);
    return r % n;
}

double vmf_rng_normal(vmf_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare_normal;
    }
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    double u1 = 1.0 - vmf_rng_uniform(rng);
    double u2 = vmf_rng_uniform(rng);
    double r = sqrt(-2.0 * log(u1));
    double a = 2.0 * 3.14159265358979323846 * u2;
    rng->spare_normal = r * sin(a);
    rng->has_spare = 1;
    return r * cos(a);
}

double vmf_rng_gamma(vmf_rng *rng, double shape)
{
    /* Marsaglia & Tsang (2000); shape < 1 by the boost Gamma(a+1) * U^(1/a). */
    if (shape < 1.0) {
        double u = 1.0 - vmf_rng_uniform(rng);
        return vmf_rng_gamma(rng, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = vmf_rng_normal(rng);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = 1.0 - vmf_rng_uniform(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

double vmf_rng_beta(vmf_rng *rng, double a, double b)
{
    double x = vmf_rng_gamma(rng, a);
    double y = vmf_rng_gamma(rng, b);
    return x / (x + y);
}

void vmf_rng_split(vmf_rng *rng, vmf_rng *child)
{
    vmf_rng_seed(child, vmf_rng_u64(rng));
}
