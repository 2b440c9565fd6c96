/*
 * vmfmm/io.h - reading and writing arrays: NumPy .npy (format versions 1, 2
 * and 3), .npz archives (stored or deflated, through libzip) and CSV of floats;
 * and the atomic file writer that every output of the project goes through.
 *
 * Supported dtypes: <f4 <f8 <i2 <i4 <i8 |u1 and <U* (UTF-32 strings, converted
 * to UTF-8 on load), and <f2 (float16) on reading only, widened exactly to
 * VMF_DTYPE_F32 (the array in memory is float32). Only C order; a Fortran-order, object, big-endian
 * or structured array is an error naming the problem. Every size read from a file is checked before
 * it is trusted: a shape whose product overflows, a header longer than the file, data shorter than
 * the shape, or an array larger than `VMF_IO_MAX_BYTES` is VMF_EFORMAT with a message, never a
 * crash or an unbounded allocation. Errors leave *out zeroed (nothing to free).
 *
 * Thread-safe: no shared state.
 */
#ifndef VMFMM_IO_H
#define VMFMM_IO_H

#include "common.h"

#include <stdio.h>

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
 * Writes `a` as a version 1.0 .npy file (version 2.0 when the header needs it),
 * byte for byte as numpy.save (1.24) writes the same array. Strings must be
 * valid UTF-8 and are written as <U with the width of the longest one (at
 * least 1). The file is written to a temporary name beside `path`, fsynced and
 * renamed into place: readers see the old file or the new one, and a failure
 * leaves nothing behind. VMF_EINVAL for an inconsistent array, VMF_EIO when
 * the system refuses.
 */
VMF_API int vmf_npy_write(const char *path, const vmf_array *a);

/*
 * Serializes `a` as .npy into a new buffer *buf of *len bytes (caller frees
 * with free()).
 */
VMF_API int vmf_npy_write_mem(const vmf_array *a, void **buf, size_t *len);

/*
 * Reads member `name` ("X" reads "X.npy", or "X" when there is no "X.npy") of
 * an .npz archive whose members are stored or deflated. VMF_ENOTFOUND when the
 * archive has no such member (the message lists the members). A member's
 * declared size must be within VMF_IO_MAX_BYTES and possible for its
 * compressed size, and must equal what it decompresses to (zip bombs and
 * corrupt archives are VMF_EFORMAT). The _mem form reads an archive held in
 * memory (borrowed for the call).
 */
VMF_API int vmf_npz_read(const char *path, const char *name, vmf_array *out);
VMF_API int vmf_npz_read_mem(const void *buf, size_t len, const char *name, vmf_array *out);

/*
 * As vmf_npz_read_mem, with a caller's bound: a member that declares more
 * than max_bytes uncompressed bytes (.npy header included) is VMF_ERANGE,
 * found from the zip directory before anything is inflated. A server passes
 * what one request may legitimately hold (rows x dim x 8, say), so a body
 * that inflates to gigabytes never reaches an allocation.
 */
VMF_API int vmf_npz_read_mem_max(const void *buf, size_t len, const char *name, uint64_t max_bytes,
                                 vmf_array *out);

/*
 * Writes an .npz archive (deflated) with members names[i] + ".npy" (a name
 * already ending in ".npy" is used as is) holding arrays[i], i < count. Names
 * must be distinct and non-empty. Timestamps are fixed (1980-01-01), so equal
 * arrays give equal bytes. The file form is atomic like vmf_npy_write; the
 * _mem form returns a new buffer *buf of *len bytes (caller frees with free()).
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

/*
 * CSV with an id column and/or a label column among the numbers: each is
 * named by its header field (exact, after trimming blanks) or, when no
 * header field matches, by a 1-based index ("1" is the first column).
 * NULL means no such column. Filled by vmf_csv_opts_init (both NULL).
 */
typedef struct vmf_csv_opts {
    const char *id_column;
    const char *label_column;
} vmf_csv_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_csv_opts_init(vmf_csv_opts *o);

/*
 * vmf_csv_read whose id and label columns are kept as text: x receives the
 * other columns as a 2-D VMF_DTYPE_F32 array [rows][fields - text columns];
 * ids and labels (each may be NULL to discard it) receive 1-D VMF_DTYPE_STR
 * arrays [rows] of the trimmed fields (empty when that column is not asked
 * for). A name that matches no header field and is not an index within the
 * row width, or a name given when the file has no header, is VMF_EFORMAT
 * naming it. Everything else as vmf_csv_read. Release with vmf_array_free.
 */
VMF_API int vmf_csv_read_columns(const char *path, const vmf_csv_opts *o, vmf_array *x,
                                 vmf_array *ids, vmf_array *labels);

/*
 * Writes a 1-D (one value per line) or 2-D numeric array as CSV without a
 * header ("%.9g" for f32, "%.17g" for f64: both parse back to the same bits);
 * NaN/Inf are VMF_EINVAL. Atomic like vmf_npy_write.
 */
VMF_API int vmf_csv_write(const char *path, const vmf_array *a);

/*
 * Converts a 2-D numeric array to a newly allocated float32 matrix x [n][d]
 * (caller frees with free()), rounding to nearest. Values that do not fit
 * float32 are VMF_ERANGE; NaN or Inf are VMF_EINVAL naming the first offending
 * row and column; strings or another rank are VMF_EINVAL.
 */
VMF_API int vmf_array_to_f32(const vmf_array *a, float **x, size_t *n, size_t *d);

/*
 * As vmf_array_to_f32 for a float32 or float64 matrix, but without a second
 * buffer: a float32 array's data is handed over and a float64 array's is
 * narrowed in place and shrunk, so peak memory is the array's own size. On
 * success a->data is NULL (vmf_array_free(a) stays safe); on failure a is
 * unchanged. Other dtypes are converted through a new buffer.
 */
VMF_API int vmf_array_take_f32(vmf_array *a, float **x, size_t *n, size_t *d);

/*
 * Loads a data matrix from .npy, .npz (member "X") or .csv, chosen by the file
 * name's extension (case-insensitive), as float32 [n][d] (caller frees *x with
 * free()); the checks of vmf_array_to_f32 apply. A float32 file's buffer is
 * handed over without a copy. When `labels` is non-NULL and the file is an .npz
 * with a member "y", *labels receives it (release with vmf_array_free; it must
 * be 1-D with n entries, else VMF_EFORMAT); otherwise *labels is zeroed.
 */
VMF_API int vmf_load_matrix(const char *path, float **x, size_t *n, size_t *d, vmf_array *labels);

/*
 * ---- Writing any file atomically ----
 * Every file the library and its tools write goes through these: the bytes
 * go to a new temporary file beside `path` (same directory, so the rename
 * cannot cross file systems; mode 0666 less the umask), which is flushed,
 * fsynced and renamed over `path`, and then the directory is fsynced. A
 * reader sees the old file or the whole new one, never a torn one, and a
 * crash leaves at most a stray "<path>.tmp<pid>.<hex>" beside it. Failures
 * are VMF_EIO (VMF_ENOMEM when memory runs out) with vmf_last_error() naming
 * `path` and the step that failed; errno is left as the failing call set
 * it; nothing is left behind.
 *
 * vmf_file_write_atomic writes the n bytes at `data` (borrowed) to `path`.
 */
VMF_API int vmf_file_write_atomic(const char *path, const void *data, size_t n);

/*
 * The streaming form, for writers that print as they go (CSV, plots):
 * vmf_atomic_file_open creates the temporary file and hands back *out;
 * vmf_atomic_file_stream gives its stdio stream (borrowed: write to it, never
 * close it); vmf_atomic_file_commit checks the stream for an earlier write
 * error, flushes, fsyncs and renames it into place; vmf_atomic_file_abort
 * removes it, leaving `path` as it was. Commit and abort both free the
 * handle whatever happens; abort accepts NULL. One thread per handle.
 */
typedef struct vmf_atomic_file vmf_atomic_file;

VMF_API int vmf_atomic_file_open(const char *path, vmf_atomic_file **out);
VMF_API FILE *vmf_atomic_file_stream(vmf_atomic_file *f);
VMF_API int vmf_atomic_file_commit(vmf_atomic_file *f);
VMF_API void vmf_atomic_file_abort(vmf_atomic_file *f);

#ifdef __cplusplus
}
#endif
#endif
