/*
 * vmfmm/rows.h - checking and normalizing rows of embeddings.
 *
 * Every model in libvmfmm works on unit vectors. Model functions validate
 * their input with vmf_rows_check and reject, with VMF_EINVAL and a message
 * naming the row, NaN or Inf values, zero rows and rows whose norm is off 1 by
 * more than VMF_ROWS_NORM_TOL; they never normalize silently. Loaders and the
 * daemon call vmf_rows_normalize on their own copy first.
 */
#ifndef VMFMM_ROWS_H
#define VMFMM_ROWS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VMF_ROWS_NORM_TOL 1e-3

/*
 * Checks x [n][d]: all values finite, every row norm within VMF_ROWS_NORM_TOL
 * of 1. Returns VMF_OK or VMF_EINVAL (message names the first bad row).
 * n = 0 is VMF_OK; d = 0 or x = NULL with n > 0 is VMF_EINVAL.
 */
VMF_API int vmf_rows_check(const float *x, size_t n, size_t d);

/*
 * Scales each row of x [n][d] to unit norm in place (norm in double).
 * Returns VMF_EINVAL, changing nothing, if a value is NaN/Inf or a row is zero
 * (message names the row).
 */
VMF_API int vmf_rows_normalize(float *x, size_t n, size_t d);

/*
 * 1 when vmf_rows_normalize would leave x [n][d] bit-identical (every row
 * is exactly the normalized form of itself), else 0, also for NaN/Inf or
 * zero rows or x = NULL with n > 0; n = 0 gives 1. Reads only, one pass: a
 * caller that must see the rows vmf_rows_normalize makes (as the CLIs and
 * vmfd do) can use such an array as it is instead of normalizing a copy.
 * Thread-safe.
 */
VMF_API int vmf_rows_normalized(const float *x, size_t n, size_t d);

#ifdef __cplusplus
}
#endif
#endif
