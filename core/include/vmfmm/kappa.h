/*
 * vmfmm/kappa.h - estimating the concentration kappa of a vMF component from
 * its sufficient statistics: the mass n (sum of responsibilities) and the norm
 * R of the weighted vector sum. The mean resultant length is rbar = R / n and
 * the maximum-likelihood kappa solves A_d(kappa) = rbar.
 *
 * Estimators:
 *   VMF_KAPPA_BANERJEE  kappa = rbar (d - rbar^2) / (1 - rbar^2)   (Banerjee et al. 2005)
 *   VMF_KAPPA_SRA       Banerjee followed by one Newton step      (Sra 2012)
 *   VMF_KAPPA_SONG      Banerjee followed by two Halley steps     (Song et al. 2012)
 *   VMF_KAPPA_EXACT     A_d(kappa) = rbar solved to 1e-12 relative (in practice
 *                       ~1e-15; near rbar = 1 it matches 1 - A_d to 1 - rbar)
 *
 * Small-sample shrinkage: a component seen through few points has rbar near 1
 * (one point gives rbar = 1 exactly, hence kappa = infinity). The estimate uses
 *     rbar* = (R + n0 * rbar0) / (n + n0),
 * i.e. n0 pseudo-observations whose mean resultant length is rbar0. With the
 * defaults (n0 = 1, rbar0 = 0: one point of "no direction") one sample gives
 * rbar* = 1/2, a finite kappa, and the relative bias on 1 - rbar vanishes as
 * 1/n. The result is finally clamped to [kappa_min, kappa_max].
 */
#ifndef VMFMM_KAPPA_H
#define VMFMM_KAPPA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vmf_kappa_estimator {
    VMF_KAPPA_BANERJEE = 0,
    VMF_KAPPA_SRA = 1,
    VMF_KAPPA_SONG = 2,
    VMF_KAPPA_EXACT = 3
} vmf_kappa_estimator;

typedef struct vmf_kappa_opts {
    vmf_kappa_estimator estimator; /* default VMF_KAPPA_EXACT */
    double prior_count;            /* n0 >= 0, default 1.0 */
    double prior_rbar;             /* rbar0 in [0, 1), default 0.0 */
    double kappa_min;              /* default 0.0 */
    double kappa_max;              /* default 1e6 */
} vmf_kappa_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_kappa_opts_init(vmf_kappa_opts *o);

/*
 * Solves for kappa given rbar in [0, 1) with the chosen estimator, with no
 * shrinkage and no clamping. rbar = 0 gives 0; rbar >= 1 gives +inf; NaN or d < 2 gives NaN.
 */
VMF_API double vmf_kappa_from_rbar(vmf_kappa_estimator est, size_t d, double rbar);

/*
 * The estimate with shrinkage and clamping, from mass n >= 0 and resultant norm
 * 0 <= R <= n (R up to n (1 + VMF_ROWS_NORM_TOL) is taken as rounding and
 * treated as n). 1 - rbar* is formed from n - R, so a tight component keeps
 * its digits. Writes *kappa, always finite. Returns VMF_OK, or VMF_EINVAL
 * (with a message) for a NULL kappa, an unknown estimator, d < 2, negative
 * or non-finite n or R, R above that tolerance, prior_count < 0, prior_rbar
 * outside [0, 1), kappa_min < 0, kappa_max infinite or below kappa_min, or
 * n + n0 == 0 (no data and no prior). VMF_ERANGE is reserved for a solver
 * that yields no number, which no valid input is known to cause. Thread-safe.
 */
VMF_API int vmf_kappa_estimate(const vmf_kappa_opts *o, size_t d, double n, double resultant_norm,
                               double *kappa);

/* "banerjee", "sra", "song", "exact"; parse returns VMF_EINVAL for others. */
VMF_API const char *vmf_kappa_estimator_name(vmf_kappa_estimator est);
VMF_API int vmf_kappa_estimator_parse(const char *name, vmf_kappa_estimator *out);

#ifdef __cplusplus
}
#endif
#endif
