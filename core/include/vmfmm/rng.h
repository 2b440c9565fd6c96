/*
 * vmfmm/rng.h - the seeded random number generator every random algorithm in
 * libvmfmm takes from its caller.
 *
 * xoshiro256** seeded through splitmix64. The state is a plain value the caller
 * owns (on the stack or inside another object), so a model can store, copy and
 * serialize it; the same seed gives the same stream on every platform.
 * Not thread-safe: one generator per thread.
 */
#ifndef VMFMM_RNG_H
#define VMFMM_RNG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_rng {
    uint64_t s[4];
    /* Box-Muller yields normals in pairs; the spare one waits here. */
    double spare_normal;
    int has_spare;
} vmf_rng;

/* Seeds the generator; every seed (0 included) gives a valid, distinct stream. */
VMF_API void vmf_rng_seed(vmf_rng *rng, uint64_t seed);

/* Next raw 64-bit output. */
VMF_API uint64_t vmf_rng_u64(vmf_rng *rng);

/* Uniform double in [0, 1) with 53 random bits. */
VMF_API double vmf_rng_uniform(vmf_rng *rng);

/* Uniform integer in [0, n), unbiased (rejection); n must be > 0. */
VMF_API uint64_t vmf_rng_below(vmf_rng *rng, uint64_t n);

/* Standard normal N(0, 1). */
VMF_API double vmf_rng_normal(vmf_rng *rng);

/* Gamma(shape, 1), shape > 0 (Marsaglia & Tsang 2000). */
VMF_API double vmf_rng_gamma(vmf_rng *rng, double shape);

/* Beta(a, b), a > 0 and b > 0, as a ratio of gammas. */
VMF_API double vmf_rng_beta(vmf_rng *rng, double a, double b);

/*
 * Derives an independent generator (for a restart, a class, a thread) from
 * this one's stream. Advances `rng`.
 */
VMF_API void vmf_rng_split(vmf_rng *rng, vmf_rng *child);

#ifdef __cplusplus
}
#endif
#endif
