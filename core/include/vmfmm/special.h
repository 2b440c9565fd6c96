/*
 * vmfmm/special.h - the special functions of the von Mises-Fisher density.
 *
 * The vMF density on the unit sphere S^{d-1} in R^d is
 *     f(x; mu, kappa) = C_d(kappa) exp(kappa mu^T x),
 *     log C_d(kappa) = (d/2 - 1) log kappa - (d/2) log(2 pi) - log I_{d/2-1}(kappa),
 * and the mean resultant length of the distribution is
 *     A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa).
 *
 * Accuracy contract (checked against mpmath vectors in tests/vectors/): 1e-12
 * relative for every integer d in [2, 4096] and kappa in [0, 1e6]; for log C_d,
 * which crosses zero for every d >= 19, the error is measured relative to
 * max(|log C_d|, 1), i.e. 1e-12 absolute near the zero. Measured: below 2e-15
 * for log C_d and A_d (docs/numerics.md). The results are finite everywhere in
 * that range: kappa -> 0 gives log C_d(0) = minus the log surface area of
 * S^{d-1}, and A_d(0) = 0. Above the range the functions keep returning finite
 * values from their asymptotic forms; kappa = +inf gives log C_d = -inf and
 * A_d = 1.
 *
 * All functions are pure and thread-safe. Bad arguments (d < 2, kappa < 0 or
 * NaN) return NaN; the model code validates before calling. A call costs well
 * under a microsecond to about one microsecond.
 */
#ifndef VMFMM_SPECIAL_H
#define VMFMM_SPECIAL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* log C_d(kappa), the log normalizer of the vMF density w.r.t. surface measure. */
VMF_API double vmf_log_norm_const(size_t d, double kappa);

/* A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa), in [0, 1). */
VMF_API double vmf_bessel_ratio(size_t d, double kappa);

/*
 * log I_nu(x), the log of the modified Bessel function of the first kind, for
 * any real, finite nu >= 0 and x >= 0 (x = 0 gives -inf for nu > 0 and 0 for
 * nu = 0; x = +inf gives +inf). Negative, NaN or infinite nu gives NaN.
 */
VMF_API double vmf_log_bessel_i(double nu, double x);

/* log of the surface area of S^{d-1}: log(2 pi^{d/2} / Gamma(d/2)). */
VMF_API double vmf_log_sphere_area(size_t d);

#ifdef __cplusplus
}
#endif
#endif
