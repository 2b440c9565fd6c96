/*
 * vmfctl.c - the command-line client of vmfd: a plain blocking HTTP/1.1
 * client over TCP or a Unix socket.
 *
 *   vmfctl [--url URL | --socket PATH] [--token-file FILE] [--json] COMMAND
 *     status | ingest FILE [--key K] | predict FILE [--top-k K] |
 *     batch KEY | checkpoints | checkpoint | checkpoint export ID [--output FILE] |
 *     restore ID | model export [--output FILE]
 *   vmfctl [COMMAND] --help
 *
 * Exit codes (sysexits where one fits): 0 success, 1 ingest learned nothing
 * (the key is known as superseded or rejected), 64 usage, 65 the daemon
 * refused the data (4xx), 66 input file unreadable, 69 daemon unavailable
 * (cannot connect, 503), 70 daemon error (5xx), 73/74 cannot write the
 * output, 77 authentication refused (401/403).
 */
#include "httpc.h"
#include "vmfmm/io.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

/* Not a sysexits code: answered, but nothing was (or will be) learned. */
#define EX_NOTHING 1

static const char usage[] =
    "usage: vmfctl [--url URL | --socket PATH] [--token-file FILE] [--json] COMMAND\n"
    "\n"
    "commands:\n"
    "  status                       daemon and model state\n"
    "  ingest FILE [--key K]        send an .npz batch (X, y); key defaults to the file stem\n"
    "  predict FILE [--top-k K]     classify the rows of an .npy, .npz (X) or .json file\n"
    "  batch KEY                    state of one batch\n"
    "  checkpoints                  list checkpoints\n"
    "  checkpoint                   write a checkpoint now\n"
    "  checkpoint export ID [--output FILE]\n"
    "                               checkpoint ID as model JSON, without restoring it\n"
    "  restore ID                   roll the model back to checkpoint ID\n"
    "  model export [--output FILE] the model JSON (stdout by default)\n"
    "\n"
    "  --url URL         http://HOST:PORT of vmfd (default $VMFD_URL or http://127.0.0.1:8077)\n"
    "  --socket PATH     talk to vmfd over a Unix socket instead\n"
    "  --token-file FILE bearer token (default $VMFD_TOKEN)\n"
    "  --json            print the daemon's JSON answers unchanged\n"
    "\n"
    "  --help            this text; COMMAND --help: that command's\n"
    "\n"
    "exit codes: 0 ok, 1 ingest learned nothing (key superseded or rejected),\n"
    "64 usage, 65 data refused, 66 unreadable input, 69 vmfd unavailable,\n"
    "70 vmfd error, 73/74 cannot write the output, 77 not authorized\n";

/* `vmfctl COMMAND --help`. */
static const struct {
    const char *cmd, *sub, *text;
} command_help[] = {
    {"status", NULL,
     "usage: vmfctl [global options] status\n\n"
     "Daemon and model state (GET /v1/status): readiness, classes, components,\n"
     "rows seen, and the batches in the store by status (queued, applied,\n"
     "rejected, superseded), the same counts as vmfd_batches{status} in /metrics.\n"
     "Exit 0, or 69 when vmfd cannot be reached.\n"},
    {"ingest", NULL,
     "usage: vmfctl [global options] ingest FILE [--key K]\n\n"
     "Sends an .npz (X float32 [n][d], y labels) or .json batch as\n"
     "PUT /v1/batches/K; K defaults to the file's stem.\n"
     "  --key K   the batch key (1-128 of A-Z a-z 0-9 . _ -)\n\n"
     "exit 0: queued, or already known and learned (applied or queued);\n"
     "exit 1: the key is known but nothing will be learned from it (superseded\n"
     "        by a restore, or rejected): send it under a new key;\n"
     "exit 65: refused (409 same key with other content, 4xx bad input);\n"
     "exit 66: FILE unreadable; 69: vmfd unavailable or its queue full.\n"
     "A warning names an earlier key with the same content (learned twice).\n"},
    {"predict", NULL,
     "usage: vmfctl [global options] predict FILE [--top-k K]\n\n"
     "Classifies the rows of an .npy, .npz (X) or .json file (POST /v1/predict).\n"
     "Prints per row its labels with probabilities and its novelty score,\n"
     "marked UNKNOWN past vmfd's novelty_threshold.\n"
     "  --top-k K   classes per row (default 4)\n"},
    {"batch", NULL,
     "usage: vmfctl [global options] batch KEY\n\n"
     "The state of one batch: queued, applied, rejected or superseded, with its\n"
     "times, error and same_content_as. Exit 65 when the key is unknown.\n"},
    {"checkpoints", NULL,
     "usage: vmfctl [global options] checkpoints\n\nLists the checkpoints kept.\n"},
    {"checkpoint", "export",
     "usage: vmfctl [global options] checkpoint export ID [--output FILE]\n\n"
     "Checkpoint ID as model JSON (GET /v1/checkpoints/ID/model), read from the\n"
     "store without restoring it: the live model and the batches are untouched.\n"
     "  --output FILE   write there instead of stdout\n"
     "Exit 65 when there is no such checkpoint.\n"},
    {"checkpoint", NULL,
     "usage: vmfctl [global options] checkpoint\n\n"
     "Writes a checkpoint now (POST /v1/checkpoints).\n"
     "See also: vmfctl checkpoint export --help\n"},
    {"restore", NULL,
     "usage: vmfctl [global options] restore ID\n\n"
     "Rolls the model back to checkpoint ID; the batches learned after it become\n"
     "superseded (re-ingest them under new keys to learn them again).\n"},
    {"model", "export",
     "usage: vmfctl [global options] model export [--output FILE]\n\n"
     "The live model JSON (GET /v1/model).\n"
     "  --output FILE   write there instead of stdout\n"},
};

static int print_command_help(int nargs, const char *const *args)
{
    for (size_t i = 0; i < sizeof command_help / sizeof command_help[0]; i++) {
        if (strcmp(args[0], command_help[i].cmd) != 0)
            continue;
        if (command_help[i].sub && (nargs < 2 || strcmp(args[1], command_help[i].sub) != 0))
            continue;
        fputs(command_help[i].text, stdout);
        return 1;
    }
    return 0;
}

typedef struct client {
    char host[256];
    char port[16];
    const char *socket_path;
    char token[512];
    int json;
} client;

typedef struct response {
    int status;
    char *body;
    size_t len;
} response;

/* One request with Connection: close; reads the answer to EOF. */
static int request(const client *c, const char *method, const char *path, const char *ctype,
                   const void *body, size_t len, response *r)
{
    memset(r, 0, sizeof *r);
    int fd = httpc_connect(c->socket_path, c->host, c->port, HTTPC_CLOEXEC, 0, NULL);
    if (fd < 0) {
        if (c->socket_path)
            fprintf(stderr, "vmfctl: cannot connect to %s: %s (is vmfd running?)\n", c->socket_path,
                    strerror(errno));
        else
            fprintf(stderr, "vmfctl: cannot connect to %s:%s: %s (is vmfd running?)\n", c->host,
                    c->port, strerror(errno));
        return EX_UNAVAILABLE;
    }
    char head[2048], auth[600] = "";
    if (c->token[0])
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", c->token);
    int n = httpc_format_head(head, sizeof head, method, path,
                              c->socket_path ? "localhost" : c->host, ctype, len, auth);
    if (n < 0) {
        fprintf(stderr, "vmfctl: sending the request failed: %s\n", strerror(errno));
        close(fd);
        return EX_UNAVAILABLE;
    }
    /* A failed recv ends the answer like EOF: what came is judged below. */
    size_t got;
    char *buf;
    int rr = httpc_exchange(fd, head, (size_t)n, body, len, 0, 0, &buf, &got);
    if (rr == HTTPC_ESEND) {
        fprintf(stderr, "vmfctl: sending the request failed: %s\n", strerror(errno));
        return EX_UNAVAILABLE;
    }
    if (rr == HTTPC_ENOMEM) {
        fprintf(stderr, "vmfctl: out of memory\n");
        return EX_SOFTWARE;
    }
    char *hend = NULL;
    for (size_t i = 0; i + 3 < got; i++) {
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            hend = buf + i;
            break;
        }
    }
    if (!hend || got < 12 || strncmp(buf, "HTTP/1.", 7) != 0) {
        free(buf);
        fprintf(stderr, "vmfctl: the daemon closed the connection without a valid answer\n");
        return EX_UNAVAILABLE;
    }
    r->status = atoi(buf + 9);
    size_t off = (size_t)(hend + 4 - buf);
    r->len = got - off;
    r->body = malloc(r->len + 1);
    if (!r->body) {
        free(buf);
        return EX_SOFTWARE;
    }
    memcpy(r->body, buf + off, r->len);
    r->body[r->len] = '\0';
    free(buf);
    return 0;
}

/* Maps an error answer to a message and an exit code. */
static int http_failure(const response *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    const char *e = o ? json_string_value(json_object_get(o, "error")) : NULL;
    const char *d = o ? json_string_value(json_object_get(o, "detail")) : NULL;
    fprintf(stderr, "vmfctl: HTTP %d %s%s%s\n", r->status, e ? e : "", d ? ": " : "", d ? d : "");
    json_decref(o);
    if (r->status == 401 || r->status == 403)
        return EX_NOPERM;
    if (r->status == 503)
        return EX_UNAVAILABLE;
    if (r->status >= 500)
        return EX_SOFTWARE;
    return EX_DATAERR;
}

static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "vmfctl: cannot open %s: %s\n", path, strerror(errno));
        return EX_NOINPUT;
    }
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t rd = fread(b + n, 1, cap - n, f);
        n += rd;
        if (n < cap)
            break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        fprintf(stderr, "vmfctl: cannot read %s\n", path);
        return EX_NOINPUT;
    }
    *buf = b;
    *len = n;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void print_json_pretty(const char *body, size_t len)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    if (!o) {
        fwrite(body, 1, len, stdout);
        putchar('\n');
        return;
    }
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o);
}

static int finish(const client *c, response *r, int ok_status_lo, int ok_status_hi,
                  void (*human)(const response *r))
{
    int rc = 0;
    if (r->status < ok_status_lo || r->status > ok_status_hi)
        rc = http_failure(r);
    else if (c->json) {
        fwrite(r->body, 1, r->len, stdout);
        putchar('\n');
    } else if (human)
        human(r);
    else
        print_json_pretty(r->body, r->len);
    free(r->body);
    return rc;
}

static void human_status(const response *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    if (!o) {
        print_json_pretty(r->body, r->len);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                char *s = json_dumps(v2, JSON_ENCODE_ANY);
                printf("%s.%s: %s\n", k, k2, s ? s : "?");
                free(s);
            }
        } else {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            printf("%s: %s\n", k, s ? s : "?");
            free(s);
        }
    }
    json_decref(o);
}

static void human_predict(const response *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    json_t *preds = o ? json_object_get(o, "predictions") : NULL;
    if (!json_is_array(preds)) {
        print_json_pretty(r->body, r->len);
        json_decref(o);
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(preds, i, p)
    {
        json_t *labels = json_object_get(p, "labels"), *probs = json_object_get(p, "probabilities");
        printf("%zu:", i);
        for (size_t j = 0; j < json_array_size(labels); j++) {
            char *s = json_dumps(json_array_get(labels, j), JSON_ENCODE_ANY);
            printf(" %s (%.4f)", s ? s : "?", json_number_value(json_array_get(probs, j)));
            free(s);
        }
        /* vmfd's novelty score, and whether it is past the threshold (issue 12). */
        json_t *nov = json_object_get(p, "novelty");
        if (json_is_number(nov))
            printf("  novelty %.4f%s", json_number_value(nov),
                   json_is_true(json_object_get(p, "unknown")) ? " UNKNOWN" : "");
        putchar('\n');
    }
    json_decref(o);
}

static void human_checkpoints(const response *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    json_t *arr = o ? json_object_get(o, "checkpoints") : NULL;
    if (!json_is_array(arr)) {
        print_json_pretty(r->body, r->len);
        json_decref(o);
        return;
    }
    printf("%6s  %-24s  %-8s  %8s  %10s  %7s  %10s\n", "id", "created_at", "reason", "batches",
           "rows", "classes", "bytes");
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
    {
        printf("%6lld  %-24s  %-8s  %8lld  %10lld  %7lld  %10lld\n",
               (long long)json_integer_value(json_object_get(c, "id")),
               json_string_value(json_object_get(c, "created_at")),
               json_string_value(json_object_get(c, "reason")),
               (long long)json_integer_value(json_object_get(c, "batches")),
               (long long)json_integer_value(json_object_get(c, "rows_seen")),
               (long long)json_integer_value(json_object_get(c, "n_classes")),
               (long long)json_integer_value(json_object_get(c, "model_bytes")));
    }
    json_decref(o);
}

static void human_ingest(const response *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    const char *same = json_string_value(json_object_get(o, "same_content_as"));
    if (same)
        fprintf(stderr,
                "vmfctl: warning: batch '%s' has the same content as '%s'; its rows are "
                "learned again\n",
                json_string_value(json_object_get(o, "key")), same);
    printf("%s: %s (%lld rows)%s\n", json_string_value(json_object_get(o, "key")),
           json_string_value(json_object_get(o, "status")),
           (long long)json_integer_value(json_object_get(o, "rows")),
           r->status == 200 ? ", already known" : "");
    json_decref(o);
}

static int parse_url(client *c, const char *url)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (n == 0 || n >= sizeof hp)
        return -1;
    memcpy(hp, p, n);
    hp[n] = '\0';
    char *colon = strrchr(hp, ':');
    if (colon) {
        *colon = '\0';
        snprintf(c->port, sizeof c->port, "%s", colon + 1);
    } else {
        snprintf(c->port, sizeof c->port, "80");
    }
    snprintf(c->host, sizeof c->host, "%.255s", hp);
    return 0;
}

int main(int argc, char **argv)
{
    client c;
    memset(&c, 0, sizeof c);
    const char *url = getenv("VMFD_URL");
    const char *token_file = NULL;
    const char *env_token = getenv("VMFD_TOKEN");
    const char *args[8];
    int nargs = 0;
    const char *key = NULL, *output = NULL;
    long top_k = 0;
    int help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
        } else if (strcmp(a, "--json") == 0) {
            c.json = 1;
        } else if (strcmp(a, "--url") == 0 && has_val) {
            url = argv[++i];
        } else if (strcmp(a, "--socket") == 0 && has_val) {
            c.socket_path = argv[++i];
        } else if (strcmp(a, "--token-file") == 0 && has_val) {
            token_file = argv[++i];
        } else if (strcmp(a, "--key") == 0 && has_val) {
            key = argv[++i];
        } else if (strcmp(a, "--output") == 0 && has_val) {
            output = argv[++i];
        } else if (strcmp(a, "--top-k") == 0 && has_val) {
            char *end;
            top_k = strtol(argv[++i], &end, 10);
            if (*end || top_k < 1) {
                fprintf(stderr, "vmfctl: --top-k needs a positive integer\n");
                return EX_USAGE;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "vmfctl: unknown option or missing value: %s\n%s", a, usage);
            return EX_USAGE;
        } else if (nargs < 8) {
            args[nargs++] = a;
        } else {
            fprintf(stderr, "vmfctl: too many arguments\n");
            return EX_USAGE;
        }
    }
    if (help) {
        if (nargs == 0 || !print_command_help(nargs, args))
            fputs(usage, stdout);
        return 0;
    }
    if (nargs == 0) {
        fputs(usage, stderr);
        return EX_USAGE;
    }
    if (parse_url(&c, url && *url ? url : "http://127.0.0.1:8077") != 0) {
        fprintf(stderr, "vmfctl: bad --url\n");
        return EX_USAGE;
    }
    if (token_file) {
        FILE *f = fopen(token_file, "r");
        if (!f || !fgets(c.token, sizeof c.token, f)) {
            fprintf(stderr, "vmfctl: cannot read the token file %s\n", token_file);
            if (f)
                fclose(f);
            return EX_NOINPUT;
        }
        fclose(f);
        c.token[strcspn(c.token, "\r\n \t")] = '\0';
    } else if (env_token) {
        snprintf(c.token, sizeof c.token, "%s", env_token);
    }
    const char *cmd = args[0];
    response r;
    int rc;
    char path[512];
    if (strcmp(cmd, "status") == 0 && nargs == 1) {
        if ((rc = request(&c, "GET", "/v1/status", NULL, NULL, 0, &r)) != 0)
            return rc;
        return finish(&c, &r, 200, 200, human_status);
    }
    if (strcmp(cmd, "checkpoints") == 0 && nargs == 1) {
        if ((rc = request(&c, "GET", "/v1/checkpoints", NULL, NULL, 0, &r)) != 0)
            return rc;
        return finish(&c, &r, 200, 200, human_checkpoints);
    }
    if (strcmp(cmd, "checkpoint") == 0 && nargs == 1) {
        if ((rc = request(&c, "POST", "/v1/checkpoints", NULL, NULL, 0, &r)) != 0)
            return rc;
        return finish(&c, &r, 200, 201, NULL);
    }
    if (strcmp(cmd, "batch") == 0 && nargs == 2) {
        snprintf(path, sizeof path, "/v1/batches/%s", args[1]);
        if ((rc = request(&c, "GET", path, NULL, NULL, 0, &r)) != 0)
            return rc;
        return finish(&c, &r, 200, 200, NULL);
    }
    if (strcmp(cmd, "restore") == 0 && nargs == 2) {
        char *end;
        long long id = strtoll(args[1], &end, 10);
        if (*end || id <= 0) {
            fprintf(stderr, "vmfctl: restore needs a checkpoint id\n");
            return EX_USAGE;
        }
        snprintf(path, sizeof path, "/v1/checkpoints/%lld/restore", id);
        if ((rc = request(&c, "POST", path, NULL, NULL, 0, &r)) != 0)
            return rc;
        return finish(&c, &r, 200, 200, NULL);
    }
    int ckpt_export =
        strcmp(cmd, "checkpoint") == 0 && nargs == 3 && strcmp(args[1], "export") == 0;
    if (ckpt_export ||
        (strcmp(cmd, "model") == 0 && nargs == 2 && strcmp(args[1], "export") == 0)) {
        if (ckpt_export) {
            char *end;
            long long id = strtoll(args[2], &end, 10);
            if (*end || id <= 0) {
                fprintf(stderr, "vmfctl: checkpoint export needs a checkpoint id\n");
                return EX_USAGE;
            }
            snprintf(path, sizeof path, "/v1/checkpoints/%lld/model", id);
        } else {
            snprintf(path, sizeof path, "/v1/model");
        }
        if ((rc = request(&c, "GET", path, NULL, NULL, 0, &r)) != 0)
            return rc;
        if (r.status != 200) {
            rc = http_failure(&r);
            free(r.body);
            return rc;
        }
        /* --output is replaced atomically: a reader never sees half a model. */
        vmf_atomic_file *af = NULL;
        if (output && vmf_atomic_file_open(output, &af) != VMF_OK) {
            fprintf(stderr, "vmfctl: %s\n", vmf_last_error());
            free(r.body);
            return EX_CANTCREAT;
        }
        FILE *f = af ? vmf_atomic_file_stream(af) : stdout;
        fwrite(r.body, 1, r.len, f);
        fputc('\n', f);
        free(r.body);
        if (af && vmf_atomic_file_commit(af) != VMF_OK) {
            fprintf(stderr, "vmfctl: %s\n", vmf_last_error());
            return EX_IOERR;
        }
        return 0;
    }
    if (strcmp(cmd, "ingest") == 0 && nargs == 2) {
        char *buf;
        size_t len;
        if ((rc = read_file(args[1], &buf, &len)) != 0)
            return rc;
        char stem[256];
        if (!key) {
            const char *base = strrchr(args[1], '/');
            base = base ? base + 1 : args[1];
            snprintf(stem, sizeof stem, "%s", base);
            char *dot = strrchr(stem, '.');
            if (dot && dot != stem)
                *dot = '\0';
            key = stem;
        }
        snprintf(path, sizeof path, "/v1/batches/%s", key);
        const char *ctype = ends_with(args[1], ".json") ? "application/json" : "application/x-npz";
        rc = request(&c, "PUT", path, ctype, buf, len, &r);
        free(buf);
        if (rc != 0)
            return rc;
        int learned = 1;
        if (r.status == 200) {
            json_t *o = json_loadb(r.body, r.len, 0, NULL);
            const char *st = json_string_value(json_object_get(o, "status"));
            learned = !st || (strcmp(st, "superseded") != 0 && strcmp(st, "rejected") != 0);
            if (!learned)
                fprintf(stderr,
                        "vmfctl: '%s' is known as %s: nothing is learned from it; send it "
                        "under a new key to learn it\n",
                        key, st);
            json_decref(o);
        }
        rc = finish(&c, &r, 200, 202, human_ingest);
        return rc == 0 && !learned ? EX_NOTHING : rc;
    }
    if (strcmp(cmd, "predict") == 0 && nargs == 2) {
        char *buf = NULL;
        size_t len = 0;
        const char *ctype = "application/x-npy";
        if (ends_with(args[1], ".npz")) {
            vmf_array a;
            memset(&a, 0, sizeof a);
            void *npy = NULL;
            if (vmf_npz_read(args[1], "X", &a) != VMF_OK) {
                fprintf(stderr, "vmfctl: %s: %s\n", args[1], vmf_last_error());
                return EX_NOINPUT;
            }
            rc = vmf_npy_write_mem(&a, &npy, &len);
            vmf_array_free(&a);
            if (rc != VMF_OK) {
                fprintf(stderr, "vmfctl: %s\n", vmf_last_error());
                return EX_SOFTWARE;
            }
            buf = npy;
        } else {
            if ((rc = read_file(args[1], &buf, &len)) != 0)
                return rc;
            if (ends_with(args[1], ".json"))
                ctype = "application/json";
        }
        snprintf(path, sizeof path, "/v1/predict?top_k=%ld", top_k ? top_k : 4);
        rc = request(&c, "POST", path, ctype, buf, len, &r);
        free(buf);
        if (rc != 0)
            return rc;
        return finish(&c, &r, 200, 200, human_predict);
    }
    fprintf(stderr, "vmfctl: unknown command or wrong arguments: %s\n%s", cmd, usage);
    return EX_USAGE;
}
