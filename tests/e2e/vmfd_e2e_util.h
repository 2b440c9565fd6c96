/*
 * vmfd_e2e_util.h - helpers of the end-to-end tests: start and stop real
 * vmfd processes on loopback ports and temporary state directories, talk
 * HTTP to them, build .npz batches, and load the fmnist-cce64 test stream.
 */
#ifndef VMFD_E2E_UTIL_H
#define VMFD_E2E_UTIL_H

#include "vmf_test.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct e2e_proc {
    pid_t pid;
    int port;
    char dir[512];   /* temporary directory of the test */
    char state[600]; /* dir/state */
    char log[600];   /* dir/vmfd.log (appended by every start) */
} e2e_proc;

/* Path of the vmfd binary: $VMFD_TEST_BIN or VMF_BIN_DIR/vmfd. */
const char *e2e_vmfd_bin(void);

/* Makes p->dir (fresh) and the paths in it; does not start anything. */
void e2e_init(e2e_proc *p);

/*
 * Starts vmfd --state-dir p->state --listen 127.0.0.1:0 plus extra args
 * (NULL-terminated, may be NULL) with stderr appended to p->log, waits for
 * the port file and, when wait_ready, for /readyz. Fails the test on timeout.
 */
void e2e_start(e2e_proc *p, const char *const *extra, int wait_ready);

/*
 * The start under e2e_start: forks vmfd --state-dir p->state --listen
 * 127.0.0.1:0 plus extra args (NULL-terminated, may be NULL), with stderr
 * appended to p->log, OPENBLAS_NUM_THREADS=1 and env ("NAME=VALUE" strings,
 * NULL-terminated, may be NULL) in its environment, and waits up to
 * timeout_ms for its port file. Returns 0 with p->pid and p->port set, or -1
 * when vmfd exited first (p->pid is then 0 and *status its waitpid status).
 * Fails the test on timeout.
 */
int e2e_spawn(e2e_proc *p, const char *const *extra, const char *const *env, int timeout_ms,
              int *status);

/* Prints vmfd's log and fails the test: it exited at startup with status. */
void e2e_fail_startup(const e2e_proc *p, int status);

/* Sends sig and waits; returns the exit status (128+sig when killed). */
int e2e_stop(e2e_proc *p, int sig);

/* Runs a command line through sh; returns its exit code (-1 when it did not
   exit) and, when out is not NULL, its stdout and stderr in *out (the caller
   frees it). */
int e2e_run(const char *cmd, char **out);

/* splitmix64: a small, seeded, portable generator; the high 32 bits of the
   next draw from *state. */
uint32_t e2e_rand(uint64_t *state);

/* Waits up to timeout_ms for the process to exit on its own; -1 on timeout. */
int e2e_wait_exit(e2e_proc *p, int timeout_ms);

typedef struct e2e_resp {
    int status;
    char *headers; /* raw header block */
    char *body;    /* NUL-terminated */
    size_t len;
} e2e_resp;

/* One request on a new connection (Connection: close). Returns 0 or -1 (no answer). */
int e2e_http(int port, const char *method, const char *path, const char *ctype, const void *body,
             size_t len, const char *extra_headers, e2e_resp *r);
void e2e_resp_free(e2e_resp *r);

/*
 * Sends raw bytes (in pieces of `chunk` bytes with pause_ms between them when
 * chunk > 0) and reads until the server closes or timeout_ms passes. Returns
 * bytes read into *out (malloc'ed, NUL-terminated), -1 when connecting fails.
 */
long e2e_raw(int port, const void *data, size_t len, size_t chunk, int pause_ms, int timeout_ms,
             char **out);

/* Polls GET /v1/batches/key until its status is not "queued"; returns the JSON status. */
const char *e2e_wait_batch(int port, const char *key, char *status, size_t size, int timeout_ms);

/*
 * One seeded unit row [d] near axis `axis`: peak on that coordinate plus
 * noise times a uniform draw in [-0.5, 0.5) on every coordinate (from the
 * 64-bit LCG state *s, Knuth's MMIX constants), then normalized. The data of
 * the e2e tests' small, well separated classes.
 */
void e2e_axis_row(uint64_t *s, float *row, size_t d, size_t axis, double peak, double noise);

/* Builds an .npz (X float32 [n][d], y int64 [n] or none) in memory (free()). */
void e2e_npz(const float *x, size_t n, size_t d, const int64_t *y, void **buf, size_t *len);

/* The fmnist-cce64 stream: X [n][64] float32, y, split, day (all malloc'ed). */
typedef struct e2e_stream {
    float *x;
    int64_t *y;
    int *split;
    int *day;
    size_t n, d;
} e2e_stream;
void e2e_stream_load(e2e_stream *s);
void e2e_stream_free(e2e_stream *s);
/* Rows of split 0 and the given day: copies into x/y (malloc'ed), returns the count. */
size_t e2e_stream_day(const e2e_stream *s, int day, float **x, int64_t **y);

/* Newest checkpoint's model blob from the daemon's database (malloc'ed), or NULL. */
void *e2e_latest_model_blob(const char *state, size_t *len, long long *checkpoint_id);

/* Integer result of a single-value SQL query on the daemon's database (-1 on error). */
long long e2e_sql_int(const char *state, const char *sql);

/* The value of a counter or gauge on GET /metrics; fails the test when absent. */
long long e2e_metric(int port, const char *name);

/* Sleeps ms milliseconds. */
void e2e_sleep_ms(int ms);

/* Reads a whole file (malloc'ed, NUL-terminated) or NULL. */
char *e2e_read_file(const char *path, size_t *len);

/* A classifier with vmfd's default options (k_max 5, alpha 0.7, t0 2, minibatch 256, seed 42). */
vmf_classifier *e2e_ref_new(void);
/* Learns rows as vmfd does: a normalized copy, then partial_fit. */
void e2e_ref_learn(vmf_classifier *c, const float *x, size_t n, size_t d, const int64_t *y);
/* Asserts the daemon's newest checkpoint is bit-identical to c's saved state. */
void e2e_assert_model_equal(const char *state, const vmf_classifier *c);
/* Asserts that the daemon's database holds n batches, all applied, that its
 * newest checkpoint covers all n, and that this checkpoint is bit-identical
 * to ref's saved state. */
void e2e_assert_all_applied(const char *state, long long n, const vmf_classifier *ref);
/* PUT the .npz image npz [len] to /v1/batches/key; returns the HTTP status,
 * -1 when there was no answer. */
int e2e_put_npz(int port, const char *key, const void *npz, size_t len, const char *extra_headers);
/* PUT X [n][d] and y [n] (or none) as .npz to /v1/batches/key; returns the HTTP
 * status, -1 when there was no answer. */
int e2e_put_batch(int port, const char *key, const float *x, size_t n, size_t d, const int64_t *y,
                  const char *extra_headers);
/* PUT one day's batch (key "day-%03d") as .npz; returns the HTTP status. */
int e2e_put_day(int port, const e2e_stream *s, int day, const char *extra_headers);

#endif
