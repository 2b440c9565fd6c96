/*
 * vmfmm/io.h - reading and writing arrays: NumPy .npy (format versions 1, 2
 * and 3), .npz archives (stored or deflated, through libzip) and CSV of floats.
 *
 * Supported dtypes: <f4 <f8 <i2 <i4 <i8 |u1 and <U* (UTF-32 strings, converted
 * to UTF-8 on load). Only C order; a Fortran-order, object, big-endian or
 * structured array is an error naming the problem. Every size read from a file
 * is checked before it is trusted: a shape whose product overflows, a header
 * longer than the file, data shorter than the shape, or an array larger than
 * `VMF_IO_MAX_BYTES` is VMF_EFORMAT with a message, never a crash or an
 * unbounded allocation. Errors leave *out zeroed (nothing to free).
 *
 * Thread-safe: no shared state.
 */
#ifndef VMFMM_IO_H
#define VMFMM_IO_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest array the readers accept, in bytes (64 GiB). */
#define VMF_IO_MAX_BYTES ((uint64_t)1 << 36)
#define VMF_IO_MAX_NDIM  8

typedef enum vmf_dtype {
    VMF_DTYPE_F32 = 0,
    VMF_DTYPE_F64 = 1,
    VMF_DTYPE_I16 = 2,
    VMF_DTYPE_I32 = 3,
    VMF_DTYPE_I64 = 4,
    VMF_DTYPE_U8 = 5,
    VMF_DTYPE_STR = 6 /* strings: data is char *[count], each UTF-8, NUL-terminated */
} vmf_dtype;

/*
 * An n-dimensional array in C order. Owns `data` (and, for VMF_DTYPE_STR, each
 * string); release with vmf_array_free. A zero-initialised vmf_array is empty
 * and may be freed.
 */
typedef struct vmf_array {
    vmf_dtype dtype;
    size_t ndim;
    size_t shape[VMF_IO_MAX_NDIM];
    size_t count; /* product of shape (1 for ndim 0) */
    void *data;
} vmf_array;

VMF_API void vmf_array_free(vmf_array *a);

/* Size in bytes of one element of a numeric dtype (sizeof(char *) for strings). */
VMF_API size_t vmf_dtype_size(vmf_dtype t);

/* The numpy spelling ("<f4", "|u1", "<U") of a dtype. */
VMF_API const char *vmf_dtype_name(vmf_dtype t);

/* Reads a .npy file / an in-memory .npy image into *out. */
VMF_API int vmf_npy_read(const char *path, vmf_array *out);
VMF_API int vmf_npy_read_mem(const void *buf, size_t len, vmf_array *out);

/*
 * Writes `a` as a version 1.0 .npy file (version 2.0 when the header needs it).
 * Strings are written as <U with the width of the longest one. The file is
 * written to a temporary name and renamed into place.
 */
VMF_API int vmf_npy_write(const char *path, const vmf_array *a);

/*
 * Serializes `a` as .npy into a new buffer *buf of *len bytes (caller frees
 * with free()).
 */
VMF_API int vmf_npy_write_mem(const vmf_array *a, void **buf, size_t *len);

/*
 * Reads member `name` ("X" reads "X.npy") of an .npz archive. VMF_ENOTFOUND
 * when the archive has no such member.
 */
VMF_API int vmf_npz_read(const char *path, const char *name, vmf_array *out);
VMF_API int vmf_npz_read_mem(const void *buf, size_t len, const char *name, vmf_array *out);

/*
 * Writes an .npz archive (deflated) with members names[i] + ".npy" holding
 * arrays[i], i < count; written to a temporary name and renamed into place.
 */
VMF_API int vmf_npz_write(const char *path, const char *const *names,
                          const vmf_array *const *arrays, size_t count);
VMF_API int vmf_npz_write_mem(const char *const *names, const vmf_array *const *arrays,
                              size_t count, void **buf, size_t *len);

/*
 * Reads a CSV of floats: one row per line, comma-separated, an optional header
 * line of non-numeric fields, '#' comment lines and blank lines skipped. All
 * rows must have the same number of fields. Produces a 2-D VMF_DTYPE_F32 array
 * [rows][fields]. Empty fields, text that is not wholly a number, NaN/Inf,
 * values beyond float32 (VMF_ERANGE), ragged rows and a file without data
 * rows are errors naming the line and field. Numbers follow strtod in the C
 * locale (the library never calls setlocale).
 */
VMF_API int vmf_csv_read(const char *path, vmf_array *out);
/* The same from an in-memory CSV text of len bytes. */
VMF_API int vmf_csv_read_mem(const void *buf, size_t len, vmf_array *out);

/* Writes a 1-D or 2-D numeric array as CSV ("%.9g" for f32, "%.17g" for f64). */
VMF_API int vmf_csv_write(const char *path, const vmf_array *a);

/*
 * Converts a 2-D numeric array to a newly allocated float32 matrix x [n][d]
 * (caller frees with free()). Values that do not fit float32 are VMF_ERANGE.
 * NaN or Inf are VMF_EINVAL naming the first offending row.
 */
VMF_API int vmf_array_to_f32(const vmf_array *a, float **x, size_t *n, size_t *d);

/*
 * Loads a data matrix from .npy, .npz (member "X") or .csv, chosen by the file
 * name's extension, as float32 [n][d]; when `labels` is non-NULL and the file is
 * an .npz with a member "y", *labels receives it (else is zeroed).
 */
VMF_API int vmf_load_matrix(const char *path, float **x, size_t *n, size_t *d, vmf_array *labels);

#ifdef __cplusplus
}
#endif
#endif
