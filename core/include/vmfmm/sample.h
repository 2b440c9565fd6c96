/*
 * vmfmm/sample.h - drawing unit vectors: from a vMF distribution with Wood's
 * (1994) rejection sampler for the component along the mean, rotated onto mu
 * with a Householder reflection; and uniformly on the sphere.
 *
 * Deterministic for a given generator state. Thread-safe with one generator
 * per thread.
 */
#ifndef VMFMM_SAMPLE_H
#define VMFMM_SAMPLE_H

#include "common.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Draws n points from vMF(mu, kappa) on S^{d-1} into out [n][d] (rows of unit
 * norm, float32). mu [d] must have unit norm (1e-3 tolerance); kappa in
 * [0, 1e8]; kappa = 0 draws uniformly. Returns VMF_OK or VMF_EINVAL.
 */
VMF_API int vmf_sample_vmf(const float *mu, size_t d, double kappa, size_t n, vmf_rng *rng,
                           float *out);

/* Draws n points uniformly on S^{d-1} into out [n][d]. d >= 2. */
VMF_API int vmf_sample_uniform(size_t d, size_t n, vmf_rng *rng, float *out);

#ifdef __cplusplus
}
#endif
#endif
