/*
 * array.c - the vmf_array container: release, dtype names and sizes, and the
 * conversion of any numeric array to the float32 matrix every model consumes.
 * It calls no format reader (they build arrays; load_matrix.c sits above
 * both).
 *
 * Taking a matrix hands a float32 array's own buffer to the caller instead of
 * copying it, so a 10-million-row file costs the matrix and nothing more.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void vmf_array_free(vmf_array *a)
{
    if (!a)
        return;
    if (a->dtype == VMF_DTYPE_STR && a->data) {
        char **s = a->data;
        for (size_t i = 0; i < a->count; i++)
            vmf__free(s[i]);
    }
    vmf__free(a->data);
    memset(a, 0, sizeof *a);
}

size_t vmf_dtype_size(vmf_dtype t)
{
    switch (t) {
    case VMF_DTYPE_F32:
        return 4;
    case VMF_DTYPE_F64:
        return 8;
    case VMF_DTYPE_I16:
        return 2;
    case VMF_DTYPE_I32:
        return 4;
    case VMF_DTYPE_I64:
        return 8;
    case VMF_DTYPE_U8:
        return 1;
    case VMF_DTYPE_STR:
        return sizeof(char *);
    }
    return 0;
}

const char *vmf_dtype_name(vmf_dtype t)
{
    switch (t) {
    case VMF_DTYPE_F32:
        return "<f4";
    case VMF_DTYPE_F64:
        return "<f8";
    case VMF_DTYPE_I16:
        return "<i2";
    case VMF_DTYPE_I32:
        return "<i4";
    case VMF_DTYPE_I64:
        return "<i8";
    case VMF_DTYPE_U8:
        return "|u1";
    case VMF_DTYPE_STR:
        return "<U";
    }
    return "invalid";
}

const char *vmf__array_shape_text(const vmf_array *a, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "(");
    for (size_t i = 0; i < a->ndim && i < VMF_IO_MAX_NDIM && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %zu" : "%zu", a->shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, a->ndim == 1 ? ",)" : ")");
    return buf;
}

/* Checks that `a` is a 2-D numeric array whose count matches its shape. */
static int check_matrix(const vmf_array *a, const char *what)
{
    char sh[200];
    if (a->dtype == VMF_DTYPE_STR)
        return vmf__error(VMF_EINVAL, "%s: expected a numeric array, got strings", what);
    if ((unsigned)a->dtype > VMF_DTYPE_STR)
        return vmf__error(VMF_EINVAL, "%s: unknown dtype %d", what, (int)a->dtype);
    if (a->ndim != 2)
        return vmf__error(VMF_EINVAL, "%s: expected a 2-D array (rows, columns), got shape %s",
                          what, vmf__array_shape_text(a, sh, sizeof sh));
    size_t count;
    if (vmf__mul_overflow(a->shape[0], a->shape[1], &count) != 0 || count != a->count)
        return vmf__error(VMF_EINVAL, "%s: count %zu disagrees with shape %s", what, a->count,
                          vmf__array_shape_text(a, sh, sizeof sh));
    if (count > 0 && !a->data)
        return vmf__error(VMF_EINVAL, "%s: array data is NULL", what);
    return VMF_OK;
}

/*
 * Converts a's elements into dst (which may be a->data itself when a is
 * float32), rejecting NaN/Inf (VMF_EINVAL) and values beyond float32
 * (VMF_ERANGE) with the row and column.
 */
static int convert(const vmf_array *a, float *dst, const char *what)
{
    size_t n = a->count, d = a->shape[1];
    switch (a->dtype) {
    case VMF_DTYPE_F32: {
        const float *s = a->data;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(s[i]))
                return vmf__error(VMF_EINVAL, "%s: row %zu, column %zu is %s", what, i / d, i % d,
                                  isnan(s[i]) ? "NaN" : "infinite");
        if (dst != s && n > 0) /* in place (vmf_load_matrix) there is nothing to move */
            memcpy(dst, s, n * sizeof *dst);
        break;
    }
    case VMF_DTYPE_F64: {
        const double *s = a->data;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(s[i]))
                return vmf__error(VMF_EINVAL, "%s: row %zu, column %zu is %s", what, i / d, i % d,
                                  isnan(s[i]) ? "NaN" : "infinite");
            /* Round to nearest; only a result that overflows is out of range. */
            float f = (float)s[i];
            if (isinf(f))
                return vmf__error(VMF_ERANGE,
                                  "%s: row %zu, column %zu holds %.9g, outside the float32 "
                                  "range",
                                  what, i / d, i % d, s[i]);
            dst[i] = f;
        }
        break;
    }
    case VMF_DTYPE_I16: {
        const int16_t *s = a->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case VMF_DTYPE_I32: {
        const int32_t *s = a->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case VMF_DTYPE_I64: {
        const int64_t *s = a->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case VMF_DTYPE_U8: {
        const uint8_t *s = a->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    case VMF_DTYPE_STR:
        return vmf__error(VMF_EINVAL, "%s: expected a numeric array, got strings", what);
    }
    return VMF_OK;
}

int vmf_array_to_f32(const vmf_array *a, float **x, size_t *n, size_t *d)
{
    if (!a || !x || !n || !d)
        return vmf__error(VMF_EINVAL, "vmf_array_to_f32: NULL argument");
    *x = NULL;
    *n = *d = 0;
    int rc = check_matrix(a, "array");
    if (rc != VMF_OK)
        return rc;
    float *out = vmf__malloc_array(a->count, sizeof(float));
    if (!out)
        return vmf__error(VMF_ENOMEM, "array: out of memory for a %zu x %zu float32 matrix",
                          a->shape[0], a->shape[1]);
    if ((rc = convert(a, out, "array")) != VMF_OK) {
        vmf__free(out);
        return rc;
    }
    *x = out;
    *n = a->shape[0];
    *d = a->shape[1];
    return VMF_OK;
}

int vmf_array_take_f32(vmf_array *a, float **x, size_t *n, size_t *d)
{
    if (!a || !x || !n || !d)
        return vmf__error(VMF_EINVAL, "vmf_array_take_f32: NULL argument");
    *x = NULL;
    *n = *d = 0;
    if (a->dtype != VMF_DTYPE_F64)
        return a->dtype == VMF_DTYPE_F32 ? vmf__array_take_matrix(a, "array", x, n, d)
                                         : vmf_array_to_f32(a, x, n, d);
    int rc = check_matrix(a, "array");
    if (rc != VMF_OK)
        return rc;
    unsigned char *buf = a->data;
    size_t count = a->count, cols = a->shape[1];
    /* Check everything first, so a failure leaves a unchanged. */
    for (size_t i = 0; i < count; i++) {
        double v;
        memcpy(&v, buf + i * sizeof v, sizeof v);
        if (!isfinite(v))
            return vmf__error(VMF_EINVAL, "array: row %zu, column %zu is %s", i / cols, i % cols,
                              isnan(v) ? "NaN" : "infinite");
        if (isinf((float)v))
            return vmf__error(VMF_ERANGE,
                              "array: row %zu, column %zu holds %.9g, outside the float32 range",
                              i / cols, i % cols, v);
    }
    /* Front to back: float i lands at byte 4i, below double i+1 at 8i+8, which
     * is read later; byte copies keep the aliasing rules. */
    for (size_t i = 0; i < count; i++) {
        double v;
        memcpy(&v, buf + i * sizeof v, sizeof v);
        float f = (float)v;
        memcpy(buf + i * sizeof f, &f, sizeof f);
    }
    void *shrunk = count ? vmf__realloc(buf, count * sizeof(float)) : NULL;
    *x = shrunk ? shrunk : (float *)(void *)buf;
    a->data = NULL;
    a->dtype = VMF_DTYPE_F32;
    *n = a->shape[0];
    *d = a->shape[1];
    return VMF_OK;
}

int vmf__array_take_matrix(vmf_array *a, const char *what, float **x, size_t *n, size_t *d)
{
    int rc = check_matrix(a, what);
    if (rc != VMF_OK)
        return rc;
    if (a->dtype == VMF_DTYPE_F32) {
        if ((rc = convert(a, a->data, what)) != VMF_OK)
            return rc;
        *x = a->data;
        a->data = NULL;
    } else {
        float *out = vmf__malloc_array(a->count, sizeof(float));
        if (!out)
            return vmf__error(VMF_ENOMEM, "%s: out of memory for a %zu x %zu float32 matrix", what,
                              a->shape[0], a->shape[1]);
        if ((rc = convert(a, out, what)) != VMF_OK) {
            vmf__free(out);
            return rc;
        }
        *x = out;
    }
    *n = a->shape[0];
    *d = a->shape[1];
    return VMF_OK;
}
