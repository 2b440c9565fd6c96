/*
 * rows.c - validation and normalization of embedding rows.
 */
#include "internal.h"

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

/* The sum of squares of row i into *s, or VMF_EINVAL for a NaN, infinite or zero row. */
static int row_nonzero_norm2(const float *x, size_t i, size_t d, double *s)
{
    *s = row_norm2(x + i * d, d);
    if (*s < 0.0)
        return vmf__error(VMF_EINVAL, "row %zu has a NaN or infinite value", i);
    if (*s == 0.0)
        return vmf__error(VMF_EINVAL, "row %zu is a zero vector", i);
    return VMF_OK;
}

int vmf_rows_check(const float *x, size_t n, size_t d)
{
    if (n == 0)
        return VMF_OK;
    if (!x || d == 0)
        return vmf__error(VMF_EINVAL, "no data (x is NULL or d is 0)");
    for (size_t i = 0; i < n; i++) {
        double s;
        int rc = row_nonzero_norm2(x, i, d, &s);
        if (rc != VMF_OK)
            return rc;
        double norm = sqrt(s);
        if (fabs(norm - 1.0) > VMF_ROWS_NORM_TOL)
            return vmf__error(VMF_EINVAL, "row %zu has norm %.6g, expected 1 (normalize first)", i,
                              norm);
    }
    return VMF_OK;
}

int vmf_rows_normalize(float *x, size_t n, size_t d)
{
    if (n == 0)
        return VMF_OK;
    if (!x || d == 0)
        return vmf__error(VMF_EINVAL, "no data (x is NULL or d is 0)");
    /* Check every row before changing any, so a rejected matrix is untouched. */
    for (size_t i = 0; i < n; i++) {
        double s;
        int rc = row_nonzero_norm2(x, i, d, &s);
        if (rc != VMF_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double inv = 1.0 / sqrt(row_norm2(r, d));
        for (size_t j = 0; j < d; j++)
            r[j] = (float)((double)r[j] * inv);
    }
    return VMF_OK;
}
