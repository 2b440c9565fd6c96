/*
 * rows.c - validation and normalization of embedding rows.
 */
#include "internal.h"
#include "vecmath.h"

#include <math.h>

/* Sum of squares of one row in double; -1 when a value is NaN or Inf. */
static double row_norm2(const float *r, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        double v = (double)r[j];
        if (!isfinite(v))
            return -1.0;
        s += v * v;
    }
    return s;
}

/*
 * Sum of squares of one row in double over VMF_LANES lanes, for the checks
 * only (prediction checks every row it is given, so this loop must keep up
 * with the GEMM): not finite when a value is NaN or Inf, since squares of
 * finite floats cannot overflow a double sum and nothing cancels an Inf.
 * Normalisation divides by row_norm2's sequential sum instead, so its bits
 * do not depend on the lane count.
 */
static VMF_CLONES VMF_VECTORIZE double row_norm2_lanes(const float *r, size_t d)
{
    double sl[VMF_LANES] = {0};
    size_t dl = d - d % VMF_LANES;
    for (size_t j = 0; j < dl; j += VMF_LANES)
        for (size_t l = 0; l < VMF_LANES; l++)
            sl[l] += (double)r[j + l] * (double)r[j + l];
    double s = 0.0;
    for (size_t l = 0; l < VMF_LANES; l++)
        s += sl[l];
    for (size_t j = dl; j < d; j++)
        s += (double)r[j] * (double)r[j];
    return s;
}

/*
 * The sum of squares of one row in float over 16 lanes (one AVX-512
 * register), for the fast path of the unit check: four times fewer
 * operations than row_norm2_lanes, which converts every value to double.
 * Its relative error is below (d / 16 + 16) 2^-24, under 7e-5 for
 * d <= FAST_NORM_MAX_D; a square of a huge finite value overflows to Inf.
 */
#define FAST_LANES      16
#define FAST_NORM_MAX_D 16384
#define FAST_NORM_ZONE  1e-3f /* |s - 1| within this: the norm is within 1e-3 of 1 by a margin */

static VMF_CLONES VMF_VECTORIZE float row_norm2_fast(const float *r, size_t d)
{
    float sl[FAST_LANES] = {0};
    size_t dl = d - d % FAST_LANES;
    for (size_t j = 0; j < dl; j += FAST_LANES)
        for (size_t l = 0; l < FAST_LANES; l++)
            sl[l] += r[j + l] * r[j + l];
    float s = 0.0f;
    for (size_t l = 0; l < FAST_LANES; l++)
        s += sl[l];
    for (size_t j = dl; j < d; j++)
        s += r[j] * r[j];
    return s;
}

/*
 * Checks rows [n][d]: every value finite, no zero row and, when unit is set,
 * every norm within VMF_ROWS_NORM_TOL of 1. Returns VMF_OK or VMF_EINVAL
 * naming the first bad row, numbered from `first`.
 */
static int rows_scan(const float *x, size_t n, size_t d, int unit, size_t first)
{
    if (n == 0)
        return VMF_OK;
    if (!x || d == 0)
        return vmf__error(VMF_EINVAL, "no data (x is NULL or d is 0)");
    int fast = unit && d <= FAST_NORM_MAX_D;
    for (size_t i = 0; i < n; i++) {
        /*
         * A float sum within FAST_NORM_ZONE of 1 puts the exact norm within
         * about 5e-4 of 1, well inside VMF_ROWS_NORM_TOL, so the row passes
         * as the double check would pass it; any other row (NaN, Inf, zero,
         * off the sphere or near the tolerance) is decided in double.
         */
        if (fast && fabsf(row_norm2_fast(x + i * d, d) - 1.0f) <= FAST_NORM_ZONE)
            continue;
        double s = row_norm2_lanes(x + i * d, d);
        if (!isfinite(s))
            return vmf__error(VMF_EINVAL, "row %zu has a NaN or infinite value", first + i);
        if (s == 0.0)
            return vmf__error(VMF_EINVAL, "row %zu is a zero vector", first + i);
        if (unit && fabs(sqrt(s) - 1.0) > VMF_ROWS_NORM_TOL)
            return vmf__error(VMF_EINVAL, "row %zu has norm %.6g, expected 1 (normalize first)",
                              first + i, sqrt(s));
    }
    return VMF_OK;
}

int vmf_rows_check(const float *x, size_t n, size_t d)
{
    return rows_scan(x, n, d, 1, 0);
}

int vmf__rows_check_from(const float *x, size_t n, size_t d, size_t first)
{
    return rows_scan(x, n, d, 1, first);
}

int vmf_rows_normalize(float *x, size_t n, size_t d)
{
    /* Check every row before changing any, so a rejected matrix is untouched. */
    int rc = rows_scan(x, n, d, 0, 0);
    if (rc != VMF_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double inv = 1.0 / sqrt(row_norm2(r, d));
        for (size_t j = 0; j < d; j++)
            r[j] = (float)((double)r[j] * inv);
    }
    return VMF_OK;
}

int vmf_rows_normalized(const float *x, size_t n, size_t d)
{
    if (n == 0)
        return 1;
    if (!x || d == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        /*
         * The same sum, in the same order, as row_norm2 (so the same bits),
         * without its per-value finiteness test: a NaN or Inf makes the sum
         * non-finite, which is refused below.
         */
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += (double)r[j] * (double)r[j];
        if (!(s > 0.0) || !isfinite(s))
            return 0;
        double inv = 1.0 / sqrt(s);
        for (size_t j = 0; j < d; j++)
            if ((float)((double)r[j] * inv) != r[j])
                return 0;
    }
    return 1;
}
