/*
 * vmfd_http_parse.c - vmfd's HTTP/1.1 request parser: llhttp, the request
 * fields vmfd uses and the request limits, without sockets (see
 * vmfd_http_parse.h).
 *
 * Design notes. llhttp is a streaming parser, so its results do not depend
 * on how the input is split; the limits are enforced so that ours do not
 * either. The header section is bounded by never handing llhttp more header
 * bytes than the budget left: llhttp pauses at the start of each request
 * (on_message_begin returns HPE_PAUSED), from there each execute gets at
 * most max_header_bytes minus the bytes already seen, and a byte beyond the
 * budget while the section is still open is refused with 431. The section
 * therefore counts every byte from the method to the end of the blank line,
 * whitespace llhttp skips included (a megabyte of spaces before a header
 * value is refused after max_header_bytes of them), whatever the reads.
 * Leading empty lines before a request are not part of it.
 * Chunk extensions and trailer fields are counted by the bytes llhttp
 * reports in their spans; llhttp ends a span before it reports an error
 * inside it, so those counts are split-independent too (the fuzzer's
 * comparison of reads of different sizes holds this to account).
 * The request completes with on_message_complete returning HPE_PAUSED: the
 * caller deals with it before anything after it is parsed.
 */
#include "vmfd_http_parse.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Why llhttp paused: the start of a request, or its end. */
enum { PAUSE_NONE = 0, PAUSE_BEGIN, PAUSE_DONE };

struct vmfd_http_parser {
    llhttp_t parser;
    llhttp_settings_t settings; /* per parser: no shared state between threads */
    vmfd_http_parse_limits limits;
    vmfd_http_req *req;
    vmfd_http_continue_fn on_continue;
    void *ud;
    int pause;
    int failed;     /* refused: every later feed returns the same error */
    int in_message; /* a request has begun but not completed */
    int in_headers; /* its request line and headers are incomplete */
    int keep_alive;
    vmfd_http_parse_error err;
    uint64_t header_bytes;  /* bytes of the request line and header section so far */
    uint64_t trailer_bytes; /* bytes of trailer field names and values */
    uint64_t ext_bytes;     /* chunk-extension bytes of this request */
    int auth_seen;
    size_t url_len, url_cap;
    char *url;
    char hname[64];
    size_t hname_len;
    int hname_trunc;
    char hvalue[VMFD_AUTH_MAX + 1];
    size_t hvalue_len;
    int hvalue_trunc;
    int expect_continue;
    size_t body_cap;
    size_t body_expected; /* Content-Length, 0 when chunked */
};

/* A refusal found inside a callback; feed reports it once llhttp returns. */
static int refuse(vmfd_http_parser *h, int status, const char *error, const char *detail)
{
    if (!h->err.status) {
        h->err.status = status;
        h->err.error = error;
        h->err.detail = detail;
    }
    return -1;
}

static int too_large_headers(vmfd_http_parser *h)
{
    return refuse(h, 431, "headers_too_large", "the request headers exceed max_header_bytes");
}

static int too_large_body(vmfd_http_parser *h)
{
    return refuse(h, 413, "body_too_large", "the request body exceeds max_body_bytes");
}

/* Trailer fields arrive through the header callbacks after the section closed. */
static int count_trailer(vmfd_http_parser *h, size_t len)
{
    if (h->in_headers)
        return 0; /* the header section is bounded by feed's budget */
    h->trailer_bytes += len;
    return h->trailer_bytes > h->limits.max_header_bytes ? too_large_headers(h) : 0;
}

static int on_message_begin(llhttp_t *p)
{
    vmfd_http_parser *h = p->data;
    vmfd_http_req *r = h->req;
    h->in_message = 1;
    h->in_headers = 1;
    h->header_bytes = 0;
    h->trailer_bytes = 0;
    h->ext_bytes = 0;
    h->url_len = 0;
    h->hname_len = h->hvalue_len = 0;
    h->hname_trunc = h->hvalue_trunc = 0;
    h->expect_continue = 0;
    h->auth_seen = 0;
    h->keep_alive = 0;
    free(r->body);
    memset(r, 0, sizeof *r);
    h->body_cap = 0;
    h->body_expected = 0;
    h->pause = PAUSE_BEGIN;
    return HPE_PAUSED; /* feed starts the header budget here */
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    vmfd_http_parser *h = p->data;
    /* The budget bounds the URL by max_header_bytes, hence its buffer too. */
    if (h->url_len + len + 1 > h->url_cap) {
        size_t cap = (h->url_len + len + 1) * 2;
        char *u = realloc(h->url, cap);
        if (!u)
            return -1;
        h->url = u;
        h->url_cap = cap;
    }
    memcpy(h->url + h->url_len, at, len);
    h->url_len += len;
    h->url[h->url_len] = '\0';
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    vmfd_http_parser *h = p->data;
    if (count_trailer(h, len) != 0)
        return -1;
    if (h->hname_len + len >= sizeof h->hname) {
        h->hname_trunc = 1;
        return 0;
    }
    memcpy(h->hname + h->hname_len, at, len);
    h->hname_len += len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    vmfd_http_parser *h = p->data;
    if (count_trailer(h, len) != 0)
        return -1;
    if (h->hvalue_len + len >= sizeof h->hvalue) {
        h->hvalue_trunc = 1;
        return 0;
    }
    memcpy(h->hvalue + h->hvalue_len, at, len);
    h->hvalue_len += len;
    return 0;
}

/*
 * The fields vmfd acts on, from the header section only. Trailer fields
 * (after a chunked body) are counted against their budget and dropped, as
 * RFC 9110 section 6.5.1 allows: none of these may arrive there, and an
 * Authorization or Content-Type after the body must not stand in for a
 * missing one or override the one the request was routed by.
 */
static int on_header_value_complete(llhttp_t *p)
{
    vmfd_http_parser *h = p->data;
    vmfd_http_req *r = h->req;
    h->hname[h->hname_len] = '\0';
    h->hvalue[h->hvalue_len] = '\0';
    if (!h->hname_trunc && h->in_headers) {
        if (strcasecmp(h->hname, "content-type") == 0 && h->hvalue_len < sizeof r->content_type)
            memcpy(r->content_type, h->hvalue, h->hvalue_len + 1);
        else if (strcasecmp(h->hname, "authorization") == 0) {
            if (h->auth_seen++)
                return refuse(h, 400, "duplicate_authorization",
                              "the request has more than one Authorization header");
            /* A truncated token can never match; keep it marked as such. */
            snprintf(r->authorization, sizeof r->authorization, "%s",
                     h->hvalue_trunc ? "invalid" : h->hvalue);
        } else if (strcasecmp(h->hname, "transfer-encoding") == 0 &&
                   strcasecmp(h->hvalue, "chunked") != 0) {
            return refuse(h, 501, "unsupported_transfer_coding",
                          "only Transfer-Encoding: chunked is implemented");
        } else if (strcasecmp(h->hname, "expect") == 0 &&
                   strcasecmp(h->hvalue, "100-continue") == 0)
            h->expect_continue = 1;
    }
    h->hname_len = h->hvalue_len = 0;
    h->hname_trunc = h->hvalue_trunc = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    vmfd_http_parser *h = p->data;
    vmfd_http_req *r = h->req;
    h->in_headers = 0;
    r->head = llhttp_get_method(p) == HTTP_HEAD;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > h->limits.max_body_bytes)
        return too_large_body(h);
    if (p->flags & F_CONTENT_LENGTH && p->content_length > 0) {
        /* Reserve at most 1 MiB up front: a client announcing a large body
         * and sending nothing must not pin that much memory. */
        size_t cap = p->content_length < (1u << 20) ? (size_t)p->content_length : (1u << 20);
        r->body = malloc(cap);
        if (!r->body)
            return too_large_body(h);
        h->body_cap = cap;
        h->body_expected = (size_t)p->content_length;
    }
    if (h->expect_continue && h->on_continue)
        h->on_continue(h->ud);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    vmfd_http_parser *h = p->data;
    vmfd_http_req *r = h->req;
    if (r->body_len + len > h->limits.max_body_bytes)
        return too_large_body(h);
    if (r->body_len + len > h->body_cap) {
        size_t cap = h->body_cap ? h->body_cap * 2 : 65536;
        while (cap < r->body_len + len)
            cap *= 2;
        if (h->body_expected && cap > h->body_expected)
            cap = h->body_expected; /* Content-Length known: grow to it, not beyond */
        if (cap > h->limits.max_body_bytes)
            cap = (size_t)h->limits.max_body_bytes;
        char *b = realloc(r->body, cap);
        if (!b)
            return too_large_body(h);
        r->body = b;
        h->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

/* Chunk extensions are request metadata: they count toward max_header_bytes. */
static int on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
    vmfd_http_parser *h = p->data;
    (void)at;
    h->ext_bytes += len;
    if (h->ext_bytes > h->limits.max_header_bytes)
        return refuse(h, 431, "chunk_extensions_too_large",
                      "the chunk extensions exceed max_header_bytes");
    return 0;
}

/* Our own method enum, so llhttp stays inside this file. */
static vmfd_http_method method_of(llhttp_method_t m)
{
    switch (m) {
    case HTTP_GET:
        return VMFD_METHOD_GET;
    case HTTP_HEAD:
        return VMFD_METHOD_HEAD;
    case HTTP_POST:
        return VMFD_METHOD_POST;
    case HTTP_PUT:
        return VMFD_METHOD_PUT;
    default:
        return VMFD_METHOD_OTHER;
    }
}

static int on_message_complete(llhttp_t *p)
{
    vmfd_http_parser *h = p->data;
    vmfd_http_req *r = h->req;
    h->in_message = 0;
    h->keep_alive = llhttp_should_keep_alive(p);
    r->method = method_of((llhttp_method_t)llhttp_get_method(p));
    r->method_name = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    if (!h->url) {
        h->url = strdup("/");
        h->url_cap = h->url ? 2 : 0;
    }
    if (!h->url)
        return -1;
    r->path = h->url;
    char *q = strchr(h->url, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    } else {
        r->query = h->url + h->url_len; /* the terminating NUL: "" */
    }
    h->pause = PAUSE_DONE;
    return HPE_PAUSED;
}

static void settings_init(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
    s->on_chunk_extension_name = on_chunk_ext;
    s->on_chunk_extension_value = on_chunk_ext;
}

vmfd_http_parser *vmfd_http_parser_new(const vmfd_http_parse_limits *limits, vmfd_http_req *req,
                                       vmfd_http_continue_fn on_continue, void *ud)
{
    vmfd_http_parser *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->limits = *limits;
    h->req = req;
    h->on_continue = on_continue;
    h->ud = ud;
    memset(req, 0, sizeof *req);
    settings_init(&h->settings);
    llhttp_init(&h->parser, HTTP_REQUEST, &h->settings);
    h->parser.data = h;
    return h;
}

void vmfd_http_parser_free(vmfd_http_parser *h)
{
    if (!h)
        return;
    free(h->req->body);
    h->req->body = NULL;
    h->req->path = h->req->query = NULL;
    free(h->url);
    free(h);
}

void vmfd_http_parser_set_limits(vmfd_http_parser *h, const vmfd_http_parse_limits *limits)
{
    h->limits = *limits;
}

static vmfd_http_parse_status fail(vmfd_http_parser *h, llhttp_errno_t e)
{
    if (!h->err.status)
        refuse(h, 400, "bad_request", llhttp_errno_name(e));
    h->failed = 1;
    h->in_message = 0;
    h->in_headers = 0;
    return VMFD_HTTP_PARSE_ERROR;
}

vmfd_http_parse_status vmfd_http_parser_feed(vmfd_http_parser *h, const char *data, size_t len,
                                             size_t *used)
{
    size_t off = 0;
    *used = len;
    if (h->failed)
        return VMFD_HTTP_PARSE_ERROR;
    llhttp_resume(&h->parser); /* still paused at the previous request's end */
    for (;;) {
        if (off == len)
            return VMFD_HTTP_PARSE_MORE;
        size_t n = len - off;
        int counting = h->in_headers;
        if (counting) {
            if (h->header_bytes >= h->limits.max_header_bytes) {
                too_large_headers(h); /* one byte more than the section may have */
                return fail(h, HPE_USER);
            }
            if (n > h->limits.max_header_bytes - h->header_bytes)
                n = (size_t)(h->limits.max_header_bytes - h->header_bytes);
        }
        h->pause = PAUSE_NONE;
        llhttp_errno_t e = llhttp_execute(&h->parser, data + off, n);
        size_t done = n;
        if (e == HPE_PAUSED && h->pause != PAUSE_NONE) {
            const char *pos = llhttp_get_error_pos(&h->parser);
            done = pos ? (size_t)(pos - (data + off)) : n;
        } else if (e != HPE_OK) {
            return fail(h, e);
        }
        if (counting && h->in_headers)
            h->header_bytes += done; /* the section is still open: all of it counts */
        off += done;
        if (h->pause == PAUSE_DONE) {
            *used = off;
            return VMFD_HTTP_PARSE_REQUEST;
        }
        if (h->pause == PAUSE_BEGIN)
            llhttp_resume(&h->parser); /* the header budget starts here */
    }
}

const vmfd_http_parse_error *vmfd_http_parser_error(const vmfd_http_parser *h)
{
    return &h->err;
}

int vmfd_http_parser_keep_alive(const vmfd_http_parser *h)
{
    return h->keep_alive;
}

int vmfd_http_parser_in_message(const vmfd_http_parser *h)
{
    return h->in_message;
}

int vmfd_http_parser_in_headers(const vmfd_http_parser *h)
{
    return h->in_headers;
}

void vmfd_http_parser_release_body(vmfd_http_parser *h)
{
    free(h->req->body);
    h->req->body = NULL;
    h->req->body_len = 0;
    h->body_cap = 0;
}
