/*
 * http_parse_drive.c - feeds bytes to vmfd's request parser in chunks the
 * way the server does and records the outcome (see http_parse_drive.h).
 */
#include "http_parse_drive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_continue(void *ud)
{
    ((drive_result *)ud)->continues++;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int record(drive_result *out, const vmfd_http_req *r, int keep_alive)
{
    drive_req *q = &out->req[out->n_req];
    q->method = r->method;
    snprintf(q->method_name, sizeof q->method_name, "%s", r->method_name ? r->method_name : "");
    q->path = dup_bytes(r->path ? r->path : "", r->path ? strlen(r->path) : 0);
    q->query = dup_bytes(r->query ? r->query : "", r->query ? strlen(r->query) : 0);
    q->body = dup_bytes(r->body, r->body_len);
    memcpy(q->content_type, r->content_type, sizeof q->content_type);
    memcpy(q->authorization, r->authorization, sizeof q->authorization);
    q->body_len = r->body_len;
    q->head = r->head;
    q->keep_alive = keep_alive;
    out->n_req++;
    return q->path && q->query && q->body ? 0 : -1;
}

int drive_parse(const char *in, size_t len, const size_t *sizes, size_t n_sizes,
                const vmfd_http_parse_limits *limits, drive_result *out)
{
    memset(out, 0, sizeof *out);
    vmfd_http_req req;
    vmfd_http_parser *p = vmfd_http_parser_new(limits, &req, on_continue, out);
    if (!p)
        return -1;
    int rc = 0, stop = 0;
    size_t off = 0, k = 0;
    while (off < len && !stop) {
        size_t n = len - off;
        if (n_sizes) {
            size_t s = sizes[k++ % n_sizes];
            if (s == 0)
                s = 1;
            if (s < n)
                n = s;
        }
        const char *d = in + off;
        off += n;
        while (!stop) {
            size_t used;
            vmfd_http_parse_status st = vmfd_http_parser_feed(p, d, n, &used);
            if (used > n)
                abort(); /* the parser's contract */
            if (st == VMFD_HTTP_PARSE_ERROR) {
                const vmfd_http_parse_error *e = vmfd_http_parser_error(p);
                out->status = e->status;
                snprintf(out->error, sizeof out->error, "%s", e->error ? e->error : "");
                snprintf(out->detail, sizeof out->detail, "%s", e->detail ? e->detail : "");
                stop = 1;
            } else if (st == VMFD_HTTP_PARSE_REQUEST) {
                int ka = vmfd_http_parser_keep_alive(p);
                if (record(out, &req, ka) != 0) {
                    rc = -1;
                    stop = 1;
                }
                vmfd_http_parser_release_body(p);
                if (!ka || out->n_req == DRIVE_MAX_REQ)
                    stop = 1;
                d += used;
                n -= used;
                if (n == 0)
                    break;
            } else {
                break;
            }
        }
    }
    out->in_message = vmfd_http_parser_in_message(p);
    out->in_headers = vmfd_http_parser_in_headers(p);
    vmfd_http_parser_free(p);
    return rc;
}

static int same_req(const drive_req *a, const drive_req *b)
{
    return a->method == b->method && strcmp(a->method_name, b->method_name) == 0 &&
           strcmp(a->path, b->path) == 0 && strcmp(a->query, b->query) == 0 &&
           strcmp(a->content_type, b->content_type) == 0 &&
           strcmp(a->authorization, b->authorization) == 0 && a->body_len == b->body_len &&
           memcmp(a->body, b->body, a->body_len) == 0 && a->head == b->head &&
           a->keep_alive == b->keep_alive;
}

int drive_same(const drive_result *a, const drive_result *b)
{
    if (a->n_req != b->n_req || a->status != b->status || strcmp(a->error, b->error) != 0 ||
        strcmp(a->detail, b->detail) != 0 || a->in_message != b->in_message ||
        a->in_headers != b->in_headers || a->continues != b->continues)
        return 0;
    for (size_t i = 0; i < a->n_req; i++)
        if (!same_req(&a->req[i], &b->req[i]))
            return 0;
    return 1;
}

void drive_free(drive_result *r)
{
    for (size_t i = 0; i < r->n_req; i++) {
        free(r->req[i].path);
        free(r->req[i].query);
        free(r->req[i].body);
    }
    r->n_req = 0;
}
