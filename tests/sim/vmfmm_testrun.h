/*
 * vmfmm_testrun.h - helpers of the vmfmm tool tests (tests/sim/test_vmfmm_*.c):
 * run build/bin/vmfmm with captured stdout and stderr, read its outputs.
 */
#ifndef VMFMM_TESTRUN_H
#define VMFMM_TESTRUN_H

#include "vmfmm.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define VMFMM_BIN VMF_BIN_DIR "/vmfmm"

/* What one run printed and returned. Free with vmfmm_result_free. */
typedef struct vmfmm_result {
    int code;  /* exit status, or 128 + signal */
    char *out; /* stdout, NUL-terminated */
    char *err; /* stderr, NUL-terminated */
} vmfmm_result;

/*
 * Runs vmfmm with the NULL-terminated argument list (after the program name),
 * OPENBLAS_NUM_THREADS=1, stdin from /dev/null; scratch files go to dir.
 */
vmfmm_result vmfmm_run(const char *dir, ...);
vmfmm_result vmfmm_runv(const char *dir, char *const *args);

/* What vmfmm_run_with adds to vmfmm_runv's way of running vmfmm. */
typedef struct vmfmm_run_opts {
    const char *const *prefix; /* a launcher and its arguments before vmfmm (NULL-terminated;
                                  prefix[0] is a path), e.g. mpirun -np 2; NULL: none */
    const char *const *env;    /* "NAME=VALUE" strings set in the child (NULL-terminated) */
    uint64_t as_limit;         /* RLIMIT_AS of the child in bytes (0: unlimited); a child
                                  that cannot set it exits 126 */
} vmfmm_run_opts;

/* vmfmm_runv with a launcher, more environment and a memory limit (o may be NULL). */
vmfmm_result vmfmm_run_with(const char *dir, char *const *args, const vmfmm_run_opts *o);
void vmfmm_result_free(vmfmm_result *r);

/* Number of '\n'-terminated lines (a last line without '\n' counts too). */
size_t vmfmm_count_lines(const char *s);

/* Fails the test unless r exited with `code` and printed exactly one stderr line. */
void vmfmm_expect_error(const vmfmm_result *r, int code, const char *what);

/* Loads a JSON file (fails the test when it cannot). */
json_t *vmfmm_load_json(const char *path);

/* What r printed on stdout (a --json run) parsed as JSON (fails the test when it is not). */
json_t *vmfmm_result_json(const vmfmm_result *r);

/* Writes x [n][d] as float32 .npy / labels as int32 .npy (fails the test on error). */
void vmfmm_write_f32(const char *path, const float *x, size_t n, size_t d);
void vmfmm_write_i32(const char *path, const int32_t *v, size_t n);

/* Reads an int32 .npy into a new buffer (fails the test on error or another dtype). */
int32_t *vmfmm_read_i32(const char *path, size_t *n);

/*
 * The in-memory reference of a tool fit: copies init [k][d] (it may point
 * into x), normalizes the copy and x [n][d] (in place, so a large x is not
 * doubled) as the tool does, and runs core's batch EM from those means with
 * tol 0 for max_iter iterations, the seed given, and block_rows when not 0.
 * Fails the test on error; the caller frees the mixture and *rep.
 */
vmf_mixture *vmfmm_reference_fit(float *x, size_t n, size_t d, const float *init, size_t k,
                                 size_t max_iter, uint64_t seed, size_t block_rows,
                                 vmf_em_report *rep);

/* Fails the test unless m's weights and kappas are within 1e-6 relative of
   ref's, and its means within 1e-6 relative plus 1e-7 absolute. */
void vmfmm_assert_mixture_near(const vmf_mixture *m, const vmf_mixture *ref);

/* argv wants char *: s as one (the strings are never written). */
char *vmfmm_mut(const char *s);

/* dir + "/" + name into buf. */
const char *vmfmm_path(char *buf, size_t size, const char *dir, const char *name);

/* 1 when path exists as a regular file of at least min_bytes bytes. */
int vmfmm_file_ok(const char *path, size_t min_bytes);

#endif
