/*
 * cli.h - helpers shared by the command-line tools (vmfmm, vmfsim): sysexits
 * exit codes and the mapping of VMF_E* codes onto them, one-line error
 * messages, progress on stderr when it is a terminal, a small option parser
 * (long and short options, no permutation surprises), number parsing with
 * range checks, mkdir -p and atomic file writes.
 *
 * Conventions every tool follows:
 *   - results go to stdout (a table, or one JSON object with --json);
 *   - errors are ONE line on stderr, "<prog>: <message>", and the process exits
 *     with a sysexits code (usage 64, data 65, unreadable input 66, software
 *     70, OS/memory 71, cannot create output 73, I/O 74, config 78);
 *   - progress is written to stderr only when stderr is a terminal, so logs and
 *     test captures stay clean.
 * No global state: the program name and the progress state live in a
 * simc_cli value owned by main().
 */
#ifndef SIMC_CLI_H
#define SIMC_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Per-process CLI context. */
typedef struct simc_cli {
    const char *prog;   /* "vmfmm" */
    int progress;       /* nonzero when stderr is a terminal (and not --quiet) */
    int progress_dirty; /* a progress line is on screen and must be erased */
} simc_cli;

/* Sets prog and detects whether stderr is a terminal. */
void simc_cli_init(simc_cli *cli, const char *prog);

/*
 * Exit code for a libvmfmm status: VMF_EINVAL, VMF_EFORMAT, VMF_ERANGE ->
 * 65, VMF_ENOTFOUND -> 66, VMF_EIO -> 74, VMF_ENOMEM -> 71, anything else
 * negative -> 70. VMF_OK -> 0.
 */
int simc_cli_exit_code(int vmf_rc);

/*
 * Prints "<prog>: <message>\n" to stderr as exactly one line (newlines and
 * control characters inside the message become spaces), after erasing any
 * progress line. Returns `code` so callers can write `return simc_cli_fail(...)`.
 */
int simc_cli_fail(simc_cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Like simc_cli_fail with the exit code from simc_cli_exit_code(rc) and the
 * message "<context>: <vmf_last_error() or vmf_strerror(rc)>" ("<context>:
 * out of memory" for VMF_ENOMEM). Call it right after the failing libvmfmm
 * call, so that vmf_last_error() is that call's message.
 */
int simc_cli_fail_vmf(simc_cli *cli, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A warning line "<prog>: warning: ..." on stderr (does not change the exit code). */
void simc_cli_warn(simc_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Progress: rewrites one status line on stderr ("\r...\033[K") when progress
 * is enabled, else does nothing. simc_cli_progress_done erases it.
 */
void simc_cli_progress(simc_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void simc_cli_progress_done(simc_cli *cli);

/* ---- option parsing ---------------------------------------------------- */

enum { SIMC_CLI_NO_ARG = 0, SIMC_CLI_REQ_ARG = 1 };

/* One option: --long_name, or -short_name when short_name != 0. */
typedef struct simc_cli_opt {
    const char *long_name;
    char short_name;
    int has_arg;
    int id; /* returned by simc_cli_next; must be > 0 */
} simc_cli_opt;

/*
 * Parser over argv[first..argc). Accepts "--name value", "--name=value",
 * "-k value", "-kvalue", and "--" ending options. Other arguments are
 * positional; they are collected in order into positional[] (pointers into
 * argv; at most SIMC_CLI_MAX_POSITIONAL).
 */
#define SIMC_CLI_MAX_POSITIONAL 8
typedef struct simc_cli_parser {
    int argc;
    char **argv;
    int i;
    int only_positional;
    const char *command; /* for messages: "fit" */
    const char *positional[SIMC_CLI_MAX_POSITIONAL];
    size_t n_positional;
} simc_cli_parser;

void simc_cli_parser_init(simc_cli_parser *p, int argc, char **argv, int first,
                          const char *command);

/*
 * Next option: returns its id (> 0) and sets *arg (NULL for flags); 0 when
 * argv is exhausted; or -1 after printing a one-line usage error (unknown
 * option, missing value, too many positional arguments): exit 64.
 */
int simc_cli_next(simc_cli *cli, simc_cli_parser *p, const simc_cli_opt *opts, const char **arg);

/*
 * Parses a number for option `name` (used in messages) within [lo, hi].
 * Return EX_OK or EX_USAGE after printing the error.
 */
int simc_cli_parse_size(simc_cli *cli, const char *name, const char *arg, size_t lo, size_t hi,
                        size_t *out);
int simc_cli_parse_u64(simc_cli *cli, const char *name, const char *arg, uint64_t *out);
int simc_cli_parse_double(simc_cli *cli, const char *name, const char *arg, double lo, double hi,
                          double *out);

/* ---- files --------------------------------------------------------------- */

/*
 * mkdir -p: creates path and its missing parents (mode 0777 & ~umask).
 * Returns 0, or -1 with errno set (EEXIST when a component is not a directory).
 */
int simc_cli_mkdirs(const char *path);

/*
 * Writes len bytes to path atomically through vmf_file_write_atomic (a
 * temporary file in the same directory, fsync, rename, directory fsync).
 * Returns 0, or -1 with errno set and vmf_last_error() naming the path (no
 * partial file is left).
 */
int simc_cli_write_file(const char *path, const void *data, size_t len);

/*
 * Reads a whole file (at most max_bytes) into a new NUL-terminated buffer
 * (*data, caller frees). Returns 0, or -1 with errno set (EFBIG when larger).
 */
int simc_cli_read_file(const char *path, size_t max_bytes, char **data, size_t *len);

/* path = dir + "/" + name into buf; returns buf, or NULL when it does not fit. */
const char *simc_cli_join(char *buf, size_t size, const char *dir, const char *name);

/* The part of path after its last '/' (all of it when there is none); borrowed. */
const char *simc_cli_basename(const char *path);

/* The file name extension after the last '.', lower-cased into buf ("" when none). */
const char *simc_cli_extension(const char *path, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
