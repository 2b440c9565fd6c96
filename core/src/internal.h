/*
 * internal.h - declarations shared by libvmfmm's sources and its white-box
 * tests, never installed: allocation, error reporting, the BLAS wrapper,
 * small numeric helpers, the JSON helpers, and the I/O layers from the
 * bottom up (files, the array container, the .npy reader).
 */
#ifndef VMFMM_INTERNAL_H
#define VMFMM_INTERNAL_H

#include "vmfmm.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The largest dimension a model, state or classifier may have (2^24): the
 * bound every loader checks before it allocates from a stored size.
 */
#define VMF__MAX_DIM ((size_t)1 << 24)

/* ---- errors (error.c) ---- */

/*
 * Records the calling thread's detailed message and returns rc, so that a
 * failure reads: return vmf__error(VMF_EINVAL, "row %zu has NaN", i);
 */
int vmf__error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* vmf__error with "what: " in front, so that every message names its source
 * (a path, "X.npy in a.npz", "<memory>"). */
int vmf__fail(int rc, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Re-raises the calling thread's last message as rc, prefixed by "a: " or
 * "a: b: " (b may be NULL). The message is copied first: vmf__error writes
 * the buffer that vmf_last_error() points to.
 */
int vmf__error_wrap(int rc, const char *a, const char *b);

/* ---- options ---- */

/*
 * The options rule of vmfmm.h, written once: VMF__OPTS_OR_DEFAULTS(T, o);
 * at the top of a public function taking `const T *o` points a NULL o at
 * T's defaults (filled by T##_init), which live until the function returns.
 */
#define VMF__OPTS_OR_DEFAULTS(T, o)                                                                \
    T o##_defaults_;                                                                               \
    if (!(o)) {                                                                                    \
        T##_init(&o##_defaults_);                                                                  \
        (o) = &o##_defaults_;                                                                      \
    }                                                                                              \
    (void)0

/* ---- allocation (alloc.c): every core allocation goes through these ---- */

void *vmf__malloc(size_t size);
void *vmf__calloc(size_t count, size_t size);
void *vmf__realloc(void *p, size_t size);
void vmf__free(void *p);
/* malloc of count * size with an overflow check; NULL on overflow. */
void *vmf__malloc_array(size_t count, size_t size);
/* a * b into *out; returns 0, or -1 (and leaves *out) when it overflows. */
int vmf__mul_overflow(size_t a, size_t b, size_t *out);
char *vmf__strdup(const char *s);

/* ---- BLAS (blas.c): the one wrapper, always row-major ---- */

/*
 * C [m][n] = alpha * op(A) · op(B) + beta * C, with op(A) [m][kk] and
 * op(B) [kk][n]; trans_a / trans_b select transposition; lda/ldb/ldc are the
 * row strides of the stored matrices.
 */
void vmf__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t kk, float alpha,
                const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                size_t ldc);

/* ---- rows (rows.c) ---- */

/*
 * vmf_rows_check of rows x [n][d] that are rows first .. first + n - 1 of a
 * larger matrix, so the message names the row by its place there: a caller
 * that checks a block at a time, just before using it, reads its rows from
 * memory once (prediction).
 */
int vmf__rows_check_from(const float *x, size_t n, size_t d, size_t first);

/* ---- kappa (kappa.c) ---- */

/* Validates kappa options; `fn` prefixes the message: VMF_EINVAL. */
int vmf__kappa_opts_check(const vmf_kappa_opts *k, const char *fn);

/* ---- numerics ---- */

/* log(sum_i exp(v[i])) over n values, stable; -inf for n == 0 or all -inf. */
double vmf__logsumexp(const double *v, size_t n);

/* Seconds from a monotonic clock. */
double vmf__now(void);

/* ---- JSON (json.c); a json_t * travels as void * so this needs no jansson ---- */

/*
 * Serializes a jansson value (json_t *, passed as void * so this header needs
 * no jansson) compactly with 17 significant digits, so every double and every
 * float widened to double parses back to the same bits, into a new
 * vmf__malloc'ed NUL-terminated string *json (caller frees). Does not release
 * obj. `what` names the caller in the error message.
 */
int vmf__json_dump(void *obj, char **json, const char *what);

/*
 * The argument checks every state format's public JSON functions share, so
 * they word them alike. vmf__json_out_args (a to_json function `fn`): json
 * must not be NULL (then *json = NULL), nor obj (named obj_name).
 * vmf__json_parse_args (a from_json function; the caller clears its *out
 * first): have_out and json must be set, and the len bytes at json must
 * parse (duplicate keys refused) into *root (a json_t *, which the caller
 * releases), else VMF_EFORMAT naming `what`, the line and the column.
 */
int vmf__json_out_args(const char *fn, char **json, const void *obj, const char *obj_name);
int vmf__json_parse_args(const char *fn, int have_out, const char *json, size_t len,
                         const char *what, void **root);

/*
 * Sets the members of the kappa options object both state formats carry
 * ("estimator", "prior_count", "prior_rbar", "kappa_min", "kappa_max", in
 * that order) on the JSON object kap. Returns 0, nonzero when memory ran out.
 */
int vmf__json_set_kappa_opts(void *kap, const vmf_kappa_opts *k);

/*
 * Sets a generator's state on the JSON object obj: "state" (its four words
 * as hex strings), "spare_normal" and "has_spare". Returns 0, nonzero when
 * memory ran out.
 */
int vmf__json_set_rng(void *obj, const vmf_rng *r);

/* uint64 as "0x%016llx" JSON strings and back (jansson integers are signed). */
void *vmf__json_u64(uint64_t v);
int vmf__json_get_u64(const void *obj, uint64_t *v);

/*
 * The opening every model JSON carries: obj must be an object whose "format"
 * is the string `format` and whose "version" is the integer `version`.
 * VMF_EFORMAT with a message naming `where` otherwise.
 */
int vmf__json_check_header(const void *obj, const char *where, const char *format, int version);

/* Flags of the typed readers: an absent member is an error unless optional. */
enum { VMF__JSON_REQUIRED = 0, VMF__JSON_OPTIONAL = 1 };

/*
 * The typed reader of object members: member `key` of obj as a finite number,
 * a non-negative integer, or a "0x" + 16 hex digit string. An absent optional
 * member leaves *out as it was; an absent required member or one of another
 * type is VMF_EFORMAT with a message naming `where` and `key`.
 */
int vmf__json_get_f64(const void *obj, const char *key, int flags, const char *where, double *out);
int vmf__json_get_size(const void *obj, const char *key, int flags, const char *where, size_t *out);
int vmf__json_get_hex64(const void *obj, const char *key, int flags, const char *where,
                        uint64_t *out);

/*
 * A JSON array of exactly n finite numbers into outd [n] or, when outd is
 * NULL, outf [n] (a value beyond float's range is an error); `name` names
 * the array in messages. VMF_EFORMAT otherwise.
 */
int vmf__json_get_numbers(const void *arr, size_t n, const char *where, const char *name,
                          double *outd, float *outf);

/* ---- the array container (array.c), used by the readers above it ---- */

/* "(2, 3)" for messages: a's shape in buf [cap]; returns buf. */
const char *vmf__array_shape_text(const vmf_array *a, char *buf, size_t cap);

/*
 * Moves a 2-D numeric array into *x [n][d] as float32, reusing a float32
 * array's buffer (a->data then becomes NULL); `what` names the source in
 * messages. Rejects NaN, infinities and values beyond float32.
 */
int vmf__array_take_matrix(vmf_array *a, const char *what, float **x, size_t *n, size_t *d);

/* ---- the .npy reader (npy.c), shared by npz.c and rowstream.c ---- */

/*
 * Reads exactly n bytes into dst, or returns a negative VMF_E* code having
 * recorded a message with vmf__error (short data included).
 */
typedef int (*vmf__read_fn)(void *ctx, void *dst, size_t n);

/*
 * Decodes one .npy image of exactly `total` bytes delivered by `read`; `what`
 * names the source in messages (a path, "X.npy in a.npz"). Every size in the
 * header is checked against `total` before anything is allocated from it.
 */
int vmf__npy_read_stream(vmf__read_fn read, void *ctx, uint64_t total, const char *what,
                         vmf_array *out);

/*
 * Reads and checks only the header of an .npy image of `total` bytes: dtype,
 * ndim, shape [VMF_IO_MAX_NDIM] and the byte offset of the first element.
 * The data size is checked against `total` (not against VMF_IO_MAX_BYTES:
 * the row reader of rowstream.c never loads the whole array).
 */
int vmf__npy_read_header(vmf__read_fn read, void *ctx, uint64_t total, const char *what,
                         vmf_dtype *dtype, size_t *ndim, size_t *shape, uint64_t *offset);

/* ---- files (fileio.c): below every format reader and writer ---- */

/*
 * Opens `path` for binary reading and checks that it is a regular file (a
 * directory fails only on the first read, and a FIFO or device may never
 * end); *size receives its length. On failure nothing is left open.
 */
int vmf__open_regular(const char *path, FILE **fp, uint64_t *size);

/*
 * Atomic file replacement: vmf__atomic_open creates a temporary file beside
 * `path` (mode 0666 less the umask) and returns it as *fp with its name in
 * *tmp; vmf__atomic_commit flushes, fsyncs, closes and renames it over `path`
 * (then fsyncs the directory); vmf__atomic_abort closes and removes it. Both
 * release fp and tmp whatever happens.
 */
int vmf__atomic_open(const char *path, FILE **fp, char **tmp);
int vmf__atomic_commit(FILE *fp, char *tmp, const char *path);
void vmf__atomic_abort(FILE *fp, char *tmp);

#endif
