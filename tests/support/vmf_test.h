/*
 * vmf_test.h - helpers shared by the cmocka tests: float comparison with a
 * message, the test data paths, temporary directories and synthetic data.
 *
 * Include after <setjmp.h>, <stdarg.h>, <stddef.h> (cmocka's requirements);
 * this header does that itself.
 */
#ifndef VMF_TEST_H
#define VMF_TEST_H

#include "vmfmm.h"

/* cmocka needs these three first; keep the order. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

/*
 * Fails the test unless |a - b| <= atol + rtol * |b| (and both are NaN-free),
 * printing both values, the difference and the call site.
 */
#define vmf_assert_close(a, b, rtol, atol)                                                         \
    vmf_test_assert_close((double)(a), (double)(b), (rtol), (atol), #a, #b, __FILE__, __LINE__)
void vmf_test_assert_close(double a, double b, double rtol, double atol, const char *sa,
                           const char *sb, const char *file, int line);

/* Fails the test with vmf_last_error() unless rc == VMF_OK. */
#define vmf_assert_ok(rc) vmf_test_assert_ok((rc), #rc, __FILE__, __LINE__)
void vmf_test_assert_ok(int rc, const char *expr, const char *file, int line);

/* Path of a file under tests/data (static buffer per call site is not needed: caller's buf). */
const char *vmf_test_data_path(const char *name, char *buf, size_t size);

/* Creates a fresh temporary directory; the path is written to buf. */
const char *vmf_test_tmpdir(char *buf, size_t size);

/* Removes a directory tree (rm -rf); used in teardown. */
void vmf_test_rmtree(const char *path);

/*
 * cmocka setup and teardown for tests that each want a fresh temporary
 * directory: setup puts its path (a malloc'ed char *) in *state, teardown
 * removes the tree and frees the path.
 */
int vmf_test_tmpdir_setup(void **state);
int vmf_test_tmpdir_teardown(void **state);
#define vmf_test_with_tmpdir(f)                                                                    \
    cmocka_unit_test_setup_teardown(f, vmf_test_tmpdir_setup, vmf_test_tmpdir_teardown)

/*
 * The whole file at path, malloc'ed with a NUL after the last byte (so text
 * can be used as a string), its length in *len when len is not NULL. Fails
 * the test when the file cannot be opened or read. The caller frees it.
 */
void *vmf_test_read_file(const char *path, size_t *len);

/* Creates or truncates path with the len bytes of data / with text; fails the
 * test when the file cannot be written. */
void vmf_test_write_file(const char *path, const void *data, size_t len);
void vmf_test_write_text(const char *path, const char *text);

/* Fails the test unless dir holds exactly one entry (besides . and ..), named
 * name: after an atomic write, no temporary file is left beside the target. */
void vmf_test_assert_only_file(const char *dir, const char *name);

/* Fails the test unless a and b have the same shape and tying and bit-identical
 * weights, kappas and means. */
void vmf_test_assert_same_mixture(const vmf_mixture *a, const vmf_mixture *b);

/* Fails the test unless a [la] and b [lb] have the same length and bytes
 * (e.g. two saved states). */
void vmf_test_assert_same_bytes(const void *a, size_t la, const void *b, size_t lb);

/* A borrowed 1-D view of data [n] as a vmf_array (nothing to free). */
vmf_array vmf_test_vector(vmf_dtype t, const void *data, size_t n);

/*
 * An .npz in memory (the caller frees *buf) holding X float32 [n][d] and,
 * when y is not NULL, the labels y (any dtype, e.g. strings). Fails the test
 * when writing fails.
 */
void vmf_test_npz_labelled(const float *x, size_t n, size_t d, const vmf_array *y, void **buf,
                           size_t *len);

/*
 * An .npz in memory (the caller frees *buf) holding X float32 [n][d] and,
 * when y is not NULL, y int64 [ny]; ny may differ from n to build bad
 * batches. Fails the test when writing fails.
 */
void vmf_test_npz_xy(const float *x, size_t n, size_t d, const int64_t *y, size_t ny, void **buf,
                     size_t *len);

/*
 * Draws n rows from a random mixture of k vMF components in dimension d with
 * kappas uniform in [kappa_lo, kappa_hi] and weights from a Dirichlet(5)
 * draw. Outputs (all malloc'ed by the caller, may be NULL except x):
 * x [n][d], comp [n], means [k][d], kappas [k], weights [k].
 */
void vmf_test_mixture_data(uint64_t seed, size_t n, size_t d, size_t k, double kappa_lo,
                           double kappa_hi, float *x, int32_t *comp, float *means, double *kappas,
                           double *weights);

#endif
