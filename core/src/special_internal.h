/*
 * special_internal.h - private entry points of special.c used by kappa.c and
 * the white-box tests; never installed.
 */
#ifndef VMFMM_SPECIAL_INTERNAL_H
#define VMFMM_SPECIAL_INTERNAL_H

#include <stddef.h>

/*
 * A_d(kappa) and its complement 1 - A_d(kappa), both to full relative
 * accuracy: the complement is not formed as 1 - A (which loses all digits as
 * A -> 1 for kappa >> d) but from its own cancellation-free expression.
 * Returns A and writes 1 - A to *one_minus (which must not be NULL).
 * Same argument rules as vmf_bessel_ratio: NaN for d < 2, kappa < 0 or NaN.
 */
double vmf__bessel_ratio_pair(size_t d, double kappa, double *one_minus);

/*
 * The exact kappa inversion of kappa.c: solves A_d(kappa) = rbar for rbar in
 * (0, 1), given crbar = 1 - rbar computed exactly by the caller. When
 * `evaluations` is not NULL it receives the number of A_d evaluations used
 * (the tests bound it).
 */
double vmf__kappa_exact(size_t d, double rbar, double crbar, int *evaluations);

#endif
