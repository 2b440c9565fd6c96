/*
 * load_matrix.c - vmf_load_matrix, the top of the I/O stack: it picks the
 * format reader (npy.c, npz.c, csv.c) by file extension and takes the array
 * as a float32 matrix (array.c), with the labels "y" of an .npz beside it.
 * Nothing below calls back up here.
 */
#include "internal.h"

#include <string.h>
#include <strings.h>

int vmf_load_matrix(const char *path, float **x, size_t *n, size_t *d, vmf_array *labels)
{
    if (labels)
        memset(labels, 0, sizeof *labels);
    if (!path || !x || !n || !d)
        return vmf__error(VMF_EINVAL, "vmf_load_matrix: NULL argument");
    *x = NULL;
    *n = *d = 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *ext = strrchr(base, '.');
    vmf_array a = {0};
    int rc;
    if (ext && strcasecmp(ext, ".npy") == 0) {
        rc = vmf_npy_read(path, &a);
    } else if (ext && strcasecmp(ext, ".npz") == 0) {
        rc = vmf_npz_read(path, "X", &a);
    } else if (ext && strcasecmp(ext, ".csv") == 0) {
        rc = vmf_csv_read(path, &a);
    } else {
        return vmf__error(VMF_EINVAL, "%s: unknown file type; expected .npy, .npz or .csv", path);
    }
    if (rc != VMF_OK)
        return rc;
    if ((rc = vmf__array_take_matrix(&a, path, x, n, d)) != VMF_OK)
        goto fail;
    vmf_array_free(&a);
    if (labels && ext && strcasecmp(ext, ".npz") == 0) {
        rc = vmf_npz_read(path, "y", labels);
        if (rc == VMF_ENOTFOUND) {
            rc = VMF_OK;
        } else if (rc != VMF_OK) {
            goto fail;
        } else if (labels->ndim != 1 || labels->shape[0] != *n) {
            char sh[200];
            rc = vmf__error(VMF_EFORMAT, "%s: y has shape %s but X has %zu rows", path,
                            vmf__array_shape_text(labels, sh, sizeof sh), *n);
            goto fail;
        }
    }
    return VMF_OK;

fail:
    vmf_array_free(&a);
    if (labels)
        vmf_array_free(labels);
    vmf__free(*x);
    *x = NULL;
    *n = *d = 0;
    return rc;
}
