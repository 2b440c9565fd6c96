/*
 * vmfmm/labels.h - class labels, integer or string, and the table that maps
 * them to dense class indices 0..C-1 in order of first appearance.
 *
 * All classifiers in libvmfmm (vMF, GMM, k-NN) take labels as a vmf_labels
 * view and report classes as indices into their own vmf_label_table. A table
 * holds one kind of label: mixing integers and strings is VMF_EINVAL.
 */
#ifndef VMFMM_LABELS_H
#define VMFMM_LABELS_H

#include "common.h"
#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A borrowed view of n labels: exactly one of ints / strs is non-NULL. */
typedef struct vmf_labels {
    size_t n;
    const int64_t *ints;     /* [n] */
    const char *const *strs; /* [n], UTF-8, NUL-terminated */
} vmf_labels;

/*
 * Makes a view of a 1-D label array (integer dtypes or strings). String arrays
 * are viewed in place; integer arrays are widened into *storage, a new buffer
 * the caller frees with free() (NULL when nothing was allocated). Float arrays
 * are VMF_EINVAL.
 */
VMF_API int vmf_labels_from_array(const vmf_array *a, vmf_labels *view, int64_t **storage);

typedef struct vmf_label_table vmf_label_table;

VMF_API int vmf_label_table_new(vmf_label_table **out);
VMF_API void vmf_label_table_free(vmf_label_table *t);
VMF_API int vmf_label_table_copy(const vmf_label_table *t, vmf_label_table **out);

/*
 * Maps each label of y to its class index into idx [n] (may be NULL), adding
 * unseen labels at the end. All-or-nothing: on error the table is unchanged.
 */
VMF_API int vmf_label_table_intern(vmf_label_table *t, const vmf_labels *y, int32_t *idx);

/* Like intern but never adds: unseen labels map to -1. */
VMF_API int vmf_label_table_lookup(const vmf_label_table *t, const vmf_labels *y, int32_t *idx);

VMF_API size_t vmf_label_table_size(const vmf_label_table *t);

/* 1 when the table holds string labels, 0 for integers (or when empty). */
VMF_API int vmf_label_table_is_str(const vmf_label_table *t);

/* The label of class i: an integer, or a string (borrowed). */
VMF_API int64_t vmf_label_table_int(const vmf_label_table *t, size_t i);
VMF_API const char *vmf_label_table_str(const vmf_label_table *t, size_t i);

/* Writes class i's label as text ("7" or the string) into buf; returns buf. */
VMF_API const char *vmf_label_table_format(const vmf_label_table *t, size_t i, char *buf,
                                           size_t size);

#ifdef __cplusplus
}
#endif
#endif
