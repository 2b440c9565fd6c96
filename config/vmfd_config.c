/*
 * vmfd_config.c - defaults, validation and INI loading of the vmfd
 * configuration.
 *
 * One table describes every key: its section, name, type, accepted range and
 * where it lives in struct vmfd_config. The INI loader, the command-line
 * overrides and --check-config all go through vmfd_config_set, so a value is
 * validated the same way wherever it comes from. Unknown sections and keys,
 * duplicate keys and values out of range are errors naming the line.
 */
#include "vmfd_config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum key_type { T_STR, T_U64, T_I64, T_F64, T_BOOL, T_MODE, T_LEVEL, T_LISTEN };

typedef struct key_def {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* strings: buffer size */
    double lo, hi;
} key_def;

#define OFF(f) offsetof(vmfd_config, f)
#define SZ(f)  sizeof(((vmfd_config *)0)->f)

static const key_def keys[] = {
    {"server", "listen", T_LISTEN, OFF(listen), SZ(listen), 0, 0},
    {"server", "socket", T_STR, OFF(socket_path), SZ(socket_path), 0, 0},
    {"server", "token_file", T_STR, OFF(token_file), SZ(token_file), 0, 0},
    {"server", "max_body_bytes", T_U64, OFF(max_body_bytes), 0, 1024, 17179869184.0},
    {"server", "max_header_bytes", T_U64, OFF(max_header_bytes), 0, 1024, 1048576},
    {"server", "max_connections", T_U64, OFF(max_connections), 0, 1, 65536},
    {"server", "idle_timeout_ms", T_U64, OFF(idle_timeout_ms), 0, 100, 86400000},
    {"server", "predict_max_rows", T_U64, OFF(predict_max_rows), 0, 1, 10000000},
    {"server", "max_batch_rows", T_U64, OFF(max_batch_rows), 0, 1, 100000000},
    {"server", "max_dim", T_U64, OFF(max_dim), 0, 1, 65536},
    {"server", "max_decoded_bytes", T_U64, OFF(max_decoded_bytes), 0, 4096, 17179869184.0},
    {"server", "max_json_body_bytes", T_U64, OFF(max_json_body_bytes), 0, 1024, 17179869184.0},
    {"server", "max_label_bytes", T_U64, OFF(max_label_bytes), 0, 1, 4096},
    {"server", "max_classes", T_U64, OFF(max_classes), 0, 1, 10000000},
    {"server", "drain_timeout_ms", T_U64, OFF(drain_timeout_ms), 0, 100, 3600000},
    {"store", "state_dir", T_STR, OFF(state_dir), SZ(state_dir), 0, 0},
    {"store", "queue_length", T_U64, OFF(queue_length), 0, 1, 1000000},
    {"store", "checkpoint_every", T_U64, OFF(checkpoint_every), 0, 1, 1000000},
    {"store", "keep_checkpoints", T_U64, OFF(keep_checkpoints), 0, 1, 1000000},
    {"store", "payload_retention_days", T_I64, OFF(payload_retention_days), 0, -1, 36500},
    {"store", "quick_check", T_BOOL, OFF(quick_check), 0, 0, 0},
    {"model", "mode", T_MODE, OFF(mode), 0, 0, 0},
    {"model", "dim", T_U64, OFF(dim), 0, 0, 65536},
    {"model", "k_max", T_U64, OFF(k_max), 0, 1, 1000},
    {"model", "alpha", T_F64, OFF(alpha), 0, 0.5, 1.0},
    {"model", "t0", T_F64, OFF(t0), 0, 0.0, 1e9},
    {"model", "eta_floor", T_F64, OFF(eta_floor), 0, 0.0, 1.0},
    {"model", "minibatch", T_U64, OFF(minibatch), 0, 1, 1000000},
    {"model", "seed", T_U64, OFF(seed), 0, 0, 18446744073709551615.0},
    {"model", "refine_rows", T_U64, OFF(refine_rows), 0, 0, 1048576},
    {"model", "novelty_threshold", T_F64, OFF(novelty_threshold), 0, 0.0, 2.0},
    {"inbox", "enabled", T_BOOL, OFF(inbox_enabled), 0, 0, 0},
    {"inbox", "scan_interval_ms", T_U64, OFF(inbox_scan_ms), 0, 50, 86400000},
    {"log", "level", T_LEVEL, OFF(log_level), 0, 0, 0},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void vmfd_config_defaults(vmfd_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8077");
    snprintf(c->state_dir, sizeof c->state_dir, "/var/lib/vmfd");
    c->max_body_bytes = 256u << 20;
    c->max_header_bytes = 16384;
    c->max_connections = 1024;
    c->idle_timeout_ms = 30000;
    c->predict_max_rows = 100000;
    c->max_batch_rows = 1000000;
    c->max_dim = 4096;
    c->max_decoded_bytes = 1u << 30;
    c->max_json_body_bytes = 16u << 20;
    c->max_label_bytes = 255;
    c->max_classes = 100000;
    c->drain_timeout_ms = 30000;
    c->quick_check = 1;
    c->queue_length = 1024;
    c->checkpoint_every = 1;
    c->keep_checkpoints = 10;
    c->payload_retention_days = 0;
    c->mode = VMFD_MODE_CLASSIFIER;
    c->dim = 0;
    c->k_max = 5;
    c->alpha = 0.7;
    c->t0 = 2.0;
    c->eta_floor = 0.0;
    c->minibatch = 256;
    c->seed = 42;
    c->refine_rows = 256;
    c->novelty_threshold = 2.0;
    c->inbox_enabled = 1;
    c->inbox_scan_ms = 1000;
    c->log_level = 6;
}

static void set_err(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    if (!err || errsize == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}

int vmfd_config_parse_level(const char *s, int *level)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                        "warning", "notice", "info", "debug"};
    for (int i = 0; i < 8; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    if (strcasecmp(s, "error") == 0) {
        *level = 3;
        return 0;
    }
    if (strcasecmp(s, "warn") == 0) {
        *level = 4;
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0') {
        *level = s[0] - '0';
        return 0;
    }
    return -1;
}

int vmfd_config_split_listen(const char *listen, char *host, size_t hostsize, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            return -1;
        h = listen + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= hostsize)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end;
    if (*v == '-' || *v == '\0')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = (uint64_t)x;
    return 0;
}

int vmfd_config_set(vmfd_config *c, const char *section, const char *key, const char *value,
                    char *err, size_t errsize)
{
    const key_def *k = NULL;
    int section_known = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].section, section) == 0) {
            section_known = 1;
            if (strcmp(keys[i].name, key) == 0) {
                k = &keys[i];
                break;
            }
        }
    }
    if (!section_known) {
        set_err(err, errsize, "unknown section [%s]", section);
        return -1;
    }
    if (!k) {
        set_err(err, errsize, "unknown key '%s' in section [%s]", key, section);
        return -1;
    }
    char *field = (char *)c + k->offset;
    switch (k->type) {
    case T_STR:
        if (strlen(value) >= k->size) {
            set_err(err, errsize, "%s: value longer than %zu bytes", key, k->size - 1);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case T_LISTEN: {
        char host[256];
        int port;
        if (value[0] != '\0' && vmfd_config_split_listen(value, host, sizeof host, &port) != 0) {
            set_err(err, errsize,
                    "%s: '%s' is not HOST:PORT with a port in 0..65535 (empty "
                    "disables TCP)",
                    key, value);
            return -1;
        }
        if (strlen(value) >= k->size) {
            set_err(err, errsize, "%s: value too long", key);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }
    case T_U64: {
        uint64_t x;
        if (parse_u64(value, &x) != 0) {
            set_err(err, errsize, "%s: '%s' is not a non-negative integer", key, value);
            return -1;
        }
        if ((double)x < k->lo || (double)x > k->hi) {
            set_err(err, errsize, "%s: %s is outside [%.0f, %.0f]", key, value, k->lo, k->hi);
            return -1;
        }
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case T_I64: {
        char *end;
        errno = 0;
        long long x = strtoll(value, &end, 10);
        if (errno || *value == '\0' || *end != '\0' || (double)x < k->lo || (double)x > k->hi) {
            set_err(err, errsize, "%s: '%s' is not an integer in [%.0f, %.0f]", key, value, k->lo,
                    k->hi);
            return -1;
        }
        int64_t v = (int64_t)x;
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case T_F64: {
        char *end;
        errno = 0;
        double x = strtod(value, &end);
        if (errno || *value == '\0' || *end != '\0' || !isfinite(x) || x < k->lo || x > k->hi) {
            set_err(err, errsize, "%s: '%s' is not a number in [%g, %g]", key, value, k->lo, k->hi);
            return -1;
        }
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case T_BOOL: {
        int b;
        if (strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0 ||
            strcasecmp(value, "on") == 0 || strcmp(value, "1") == 0)
            b = 1;
        else if (strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0 ||
                 strcasecmp(value, "off") == 0 || strcmp(value, "0") == 0)
            b = 0;
        else {
            set_err(err, errsize, "%s: '%s' is not a boolean (true/false)", key, value);
            return -1;
        }
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case T_MODE: {
        vmfd_mode m;
        if (strcmp(value, "classifier") == 0)
            m = VMFD_MODE_CLASSIFIER;
        else if (strcmp(value, "clustering") == 0)
            m = VMFD_MODE_CLUSTERING;
        else {
            set_err(err, errsize, "%s: '%s' is not one of classifier, clustering", key, value);
            return -1;
        }
        memcpy(field, &m, sizeof m);
        return 0;
    }
    case T_LEVEL: {
        int l;
        if (vmfd_config_parse_level(value, &l) != 0) {
            set_err(err, errsize, "%s: '%s' is not one of err, warning, notice, info, debug", key,
                    value);
            return -1;
        }
        memcpy(field, &l, sizeof l);
        return 0;
    }
    }
    return -1;
}

typedef struct load_ctx {
    vmfd_config *c;
    char msg[512];
    int failed;
    int line;      /* lines handed to inih so far: the line being handled */
    int fail_line; /* line of the first handler error */
    FILE *f;
    unsigned char seen[N_KEYS];
} load_ctx;

/* Feeds inih line by line so that the handler knows its line number. */
static char *reader(char *str, int num, void *stream)
{
    load_ctx *ctx = stream;
    char *r = fgets(str, num, ctx->f);
    if (r && (strchr(r, '\n') || feof(ctx->f)))
        ctx->line++;
    return r;
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *ctx = user;
    if (ctx->failed)
        return 1; /* report only the first error; later lines are still read by inih */
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0) {
            if (ctx->seen[i]) {
                snprintf(ctx->msg, sizeof ctx->msg, "duplicate key '%s' in section [%s]", name,
                         section);
                ctx->failed = 1;
                ctx->fail_line = ctx->line;
                return 0;
            }
            ctx->seen[i] = 1;
        }
    }
    if (vmfd_config_set(ctx->c, section, name, value, ctx->msg, sizeof ctx->msg) != 0) {
        ctx->failed = 1;
        ctx->fail_line = ctx->line;
        return 0;
    }
    return 1;
}

int vmfd_config_load(vmfd_config *c, const char *path, char *err, size_t errsize)
{
    load_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.c = c;
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errsize, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    ctx.f = f;
    int rc = ini_parse_stream(reader, &ctx, ini_cb, &ctx);
    fclose(f);
    if (rc != 0) {
        if (!ctx.failed || ctx.fail_line != rc)
            snprintf(ctx.msg, sizeof ctx.msg, "syntax error (expected [section] or key = value)");
        set_err(err, errsize, "%s:%d: %s", path, rc, ctx.msg);
        return -1;
    }
    return 0;
}

int vmfd_config_validate(const vmfd_config *c, char *err, size_t errsize)
{
    if (c->state_dir[0] == '\0') {
        set_err(err, errsize, "state_dir: must not be empty");
        return -1;
    }
    if (c->listen[0] == '\0' && c->socket_path[0] == '\0') {
        set_err(err, errsize, "listen and socket are both empty: nothing to listen on");
        return -1;
    }
    if (c->socket_path[0] != '\0' && strlen(c->socket_path) >= 108) {
        set_err(err, errsize, "socket: path longer than 107 bytes");
        return -1;
    }
    if (c->max_header_bytes > c->max_body_bytes) {
        set_err(err, errsize, "max_header_bytes: larger than max_body_bytes");
        return -1;
    }
    return 0;
}
