/*
 * cli.c - shared command-line helpers (see cli.h).
 */
#include "cli.h"

#include "vmfmm/common.h"
#include "vmfmm/io.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void simc_cli_init(simc_cli *cli, const char *prog)
{
    cli->prog = prog;
    cli->progress = isatty(STDERR_FILENO);
    cli->progress_dirty = 0;
}

int simc_cli_exit_code(int vmf_rc)
{
    switch (vmf_rc) {
    case VMF_OK:
        return EX_OK;
    case VMF_EINVAL:
    case VMF_EFORMAT:
    case VMF_ERANGE:
        return EX_DATAERR;
    case VMF_ENOTFOUND:
        return EX_NOINPUT;
    case VMF_EIO:
        return EX_IOERR;
    case VMF_ENOMEM:
        return EX_OSERR;
    default:
        return EX_SOFTWARE;
    }
}

/* Writes "<prog>: <prefix><msg>\n" with control characters flattened to spaces. */
static void print_line(simc_cli *cli, const char *prefix, const char *msg)
{
    simc_cli_progress_done(cli);
    char line[2048];
    snprintf(line, sizeof line, "%s: %s%s", cli->prog, prefix, msg);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ' || line[n - 1] == '\r'))
        line[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = ' ';
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

int simc_cli_fail(simc_cli *cli, int code, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_line(cli, "", msg);
    return code;
}

int simc_cli_fail_vmf(simc_cli *cli, int rc, const char *fmt, ...)
{
    char ctx[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    /* Out of memory may come from the tool's own allocations, which leave no
       message: say it plainly rather than repeat an older, unrelated one. */
    const char *detail = rc == VMF_ENOMEM ? "out of memory" : vmf_last_error();
    if (detail == NULL || detail[0] == '\0')
        detail = vmf_strerror(rc);
    char msg[1536];
    snprintf(msg, sizeof msg, "%s: %s", ctx, detail);
    print_line(cli, "", msg);
    return simc_cli_exit_code(rc);
}

void simc_cli_warn(simc_cli *cli, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_line(cli, "warning: ", msg);
}

void simc_cli_progress(simc_cli *cli, const char *fmt, ...)
{
    if (!cli->progress)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r%s: %s\033[K", cli->prog, msg);
    fflush(stderr);
    cli->progress_dirty = 1;
}

void simc_cli_progress_done(simc_cli *cli)
{
    if (cli->progress_dirty) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        cli->progress_dirty = 0;
    }
}

/* ---- option parsing ---------------------------------------------------- */

void simc_cli_parser_init(simc_cli_parser *p, int argc, char **argv, int first, const char *command)
{
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->i = first;
    p->command = command;
}

static int usage_error(simc_cli *cli, const simc_cli_parser *p, const char *fmt, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, what);
    simc_cli_fail(cli, EX_USAGE, "%s (see '%s %s --help')", msg, cli->prog,
                  p->command ? p->command : "");
    return -1;
}

int simc_cli_next(simc_cli *cli, simc_cli_parser *p, const simc_cli_opt *opts, const char **arg)
{
    *arg = NULL;
    while (p->i < p->argc) {
        char *a = p->argv[p->i++];
        if (p->only_positional || a[0] != '-' || a[1] == '\0') {
            if (p->n_positional == SIMC_CLI_MAX_POSITIONAL)
                return usage_error(cli, p, "unexpected argument '%s'", a);
            p->positional[p->n_positional++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            p->only_positional = 1;
            continue;
        }
        const simc_cli_opt *o = NULL;
        const char *value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (const simc_cli_opt *q = opts; q->id > 0; q++)
                if (q->long_name && strlen(q->long_name) == len &&
                    strncmp(q->long_name, name, len) == 0) {
                    o = q;
                    break;
                }
            if (o == NULL) {
                char shown[128];
                snprintf(shown, sizeof shown, "--%.*s", (int)(len < 100 ? len : 100), name);
                return usage_error(cli, p, "unknown option '%s'", shown);
            }
            if (eq) {
                if (o->has_arg == SIMC_CLI_NO_ARG)
                    return usage_error(cli, p, "option '--%s' takes no value", o->long_name);
                value = eq + 1;
            }
        } else {
            for (const simc_cli_opt *q = opts; q->id > 0; q++)
                if (q->short_name && q->short_name == a[1]) {
                    o = q;
                    break;
                }
            /* A negative number where a value was expected is handled by the caller's
               option consuming it; here "-x" with an unknown letter is an error. */
            if (o == NULL) {
                char shown[8] = {'-', a[1], '\0'};
                return usage_error(cli, p, "unknown option '%s'", shown);
            }
            if (a[2] != '\0') {
                if (o->has_arg == SIMC_CLI_NO_ARG) {
                    char shown[128];
                    snprintf(shown, sizeof shown, "%.100s", a);
                    return usage_error(cli, p, "unknown option '%s'", shown);
                }
                value = a + 2;
            }
        }
        if (o->has_arg == SIMC_CLI_REQ_ARG && value == NULL) {
            if (p->i >= p->argc) {
                char shown[128];
                snprintf(shown, sizeof shown, "%s%s", o->long_name ? "--" : "-",
                         o->long_name ? o->long_name : (char[]){o->short_name, '\0'});
                return usage_error(cli, p, "option '%s' needs a value", shown);
            }
            value = p->argv[p->i++];
        }
        *arg = value;
        return o->id;
    }
    return 0;
}

/* arg as an unsigned integer in `base` (0: with C prefixes) when it is nothing
 * else: no sign, no blanks, no trailing text, no overflow; 0 on success, else -1.
 * strtoull skips leading blanks and then takes a sign, negating "-1" into
 * ULLONG_MAX, so the text must start with a digit. */
static int parse_ull(const char *arg, int base, unsigned long long *v)
{
    char *end = NULL;
    errno = 0;
    if (arg == NULL || arg[0] < '0' || arg[0] > '9')
        return -1;
    *v = strtoull(arg, &end, base);
    return errno != 0 || end == arg || *end != '\0' ? -1 : 0;
}

int simc_cli_parse_size(simc_cli *cli, const char *name, const char *arg, size_t lo, size_t hi,
                        size_t *out)
{
    unsigned long long v;
    if (parse_ull(arg, 10, &v) != 0)
        goto bad;
    if (v < lo || v > hi) {
        simc_cli_fail(cli, EX_USAGE, "%s must be in [%zu, %zu], got %s", name, lo, hi, arg);
        return EX_USAGE;
    }
    *out = (size_t)v;
    return EX_OK;
bad:
    simc_cli_fail(cli, EX_USAGE, "%s expects a non-negative integer, got '%.60s'", name,
                  arg ? arg : "");
    return EX_USAGE;
}

int simc_cli_parse_u64(simc_cli *cli, const char *name, const char *arg, uint64_t *out)
{
    unsigned long long v;
    if (parse_ull(arg, 0, &v) != 0)
        goto bad;
    *out = (uint64_t)v;
    return EX_OK;
bad:
    simc_cli_fail(cli, EX_USAGE, "%s expects an unsigned 64-bit integer, got '%.60s'", name,
                  arg ? arg : "");
    return EX_USAGE;
}

int simc_cli_parse_double(simc_cli *cli, const char *name, const char *arg, double lo, double hi,
                          double *out)
{
    char *end = NULL;
    errno = 0;
    if (arg == NULL || arg[0] == '\0')
        goto bad;
    double v = strtod(arg, &end);
    if (errno == ERANGE || end == arg || *end != '\0' || !isfinite(v))
        goto bad;
    if (v < lo || v > hi) {
        simc_cli_fail(cli, EX_USAGE, "%s must be in [%g, %g], got %s", name, lo, hi, arg);
        return EX_USAGE;
    }
    *out = v;
    return EX_OK;
bad:
    simc_cli_fail(cli, EX_USAGE, "%s expects a number, got '%.60s'", name, arg ? arg : "");
    return EX_USAGE;
}

/* ---- files --------------------------------------------------------------- */

int simc_cli_mkdirs(const char *path)
{
    size_t len = strlen(path);
    if (len == 0) {
        errno = ENOENT;
        return -1;
    }
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            free(buf);
            errno = ENOTDIR;
            return -1;
        }
        buf[i] = saved;
    }
    free(buf);
    return 0;
}

int simc_cli_write_file(const char *path, const void *data, size_t len)
{
    /* libvmfmm's writer, the one every output goes through; it leaves errno
     * as the failing call set it. */
    return vmf_file_write_atomic(path, data, len) == VMF_OK ? 0 : -1;
}

int simc_cli_read_file(const char *path, size_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        goto fail;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                errno = EFBIG;
                goto fail;
            }
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (nb == NULL)
                goto fail;
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (n > max_bytes) {
            errno = EFBIG;
            goto fail;
        }
        if (r == 0) {
            if (ferror(f)) {
                errno = EIO;
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
fail : {
    int e = errno;
    free(buf);
    fclose(f);
    errno = e;
    return -1;
}
}

const char *simc_cli_join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    return buf;
}

const char *simc_cli_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

const char *simc_cli_extension(const char *path, char *buf, size_t size)
{
    const char *base = simc_cli_basename(path);
    const char *dot = strrchr(base, '.');
    size_t i = 0;
    if (dot && dot != base)
        for (const char *p = dot + 1; *p && i + 1 < size; p++)
            buf[i++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
    if (size > 0)
        buf[i] = '\0';
    return buf;
}
