/*
 * vmfd_http.c - HTTP/1.1 server connections: reading, parsing with llhttp,
 * answering (see vmfd_http.h). The listening sockets are in
 * vmfd_http_listen.c.
 *
 * Design notes. Each connection owns one llhttp parser. Bytes are parsed
 * straight from libuv's read buffer; when a request completes the parser is
 * paused, the unparsed rest is kept in `pending`, reading stops and the
 * handler runs. Responding resumes the parser on `pending` and then reading,
 * in a loop rather than recursively, so a pipelined burst cannot grow the
 * stack. Limits are enforced while parsing: header bytes as they arrive,
 * the body at Content-Length (before any of it is read) and as chunks arrive.
 * Every byte of the request line and header section counts toward
 * max_header_bytes, including the whitespace llhttp skips without a callback
 * (the gaps between callback spans are added, see count_span), and chunk
 * extensions count toward it too. A second Authorization header is refused
 * (400) rather than letting the last one win, and a Transfer-Encoding other
 * than plain "chunked" is refused with 501, because vmfd implements no
 * content coding.
 * A refusal is answered with its status and a JSON error, then the
 * connection closes, because the rest of the stream cannot be trusted.
 */
#include "vmfd_http.h"

#include "vmfd_http_server.h"
#include "vmfd_log.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define READ_CHUNK 65536

struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t timer;
    vmfd_http *srv;
    conn *prev, *next;
    llhttp_t parser;
    vmfd_http_req req;
    int open_handles; /* stream and timer not yet closed */
    int closing;
    int busy;        /* a request is with the handler */
    int in_dispatch; /* inside the handler call (respond must not recurse) */
    int in_message;  /* a request has begun but not completed */
    int in_headers;  /* its request line and headers are incomplete: reads do not
                        extend the idle timer, so a trickling client (slowloris)
                        gets 408 idle_timeout_ms after its first header bytes */
    int keep_alive;
    int draining;   /* the last answer closes the connection: read nothing more */
    int err_status; /* a limit refusal found inside a parser callback */
    const char *err_error, *err_detail; /* its code and text (NULL: by status) */
    size_t header_bytes;
    const char *span_end; /* end of the last counted span in the buffer being parsed */
    size_t ext_bytes;     /* chunk-extension bytes of this request */
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
    char *pending;
    size_t pending_len;
    char readbuf[READ_CHUNK];
};

typedef struct write_req {
    uv_write_t w;
    conn *c;
    char *head;
    char *body;
    int close_after;
} write_req;

static llhttp_settings_t settings;
static uv_once_t settings_once = UV_ONCE_INIT;

static void conn_process(conn *c);
static void conn_close(conn *c);
static void start_reading(conn *c);

const char *vmfd_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 507:
        return "Insufficient Storage";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void maybe_free_conn(conn *c)
{
    if (c->open_handles > 0 || c->busy)
        return;
    vmfd_http *h = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->n_conns--;
    free(c->url);
    free(c->req.body);
    free(c->pending);
    free(c);
    if (h->freeing && !h->conns && h->open_listeners == 0)
        free(h);
}

static void on_conn_handle_closed(uv_handle_t *handle)
{
    conn *c = handle->data;
    c->open_handles--;
    maybe_free_conn(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    uv_close(&c->h.handle, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_write(uv_write_t *w, int status)
{
    write_req *wr = (write_req *)w;
    conn *c = wr->c;
    if (wr->close_after || status < 0 ||
        (c->draining && !c->busy && c->h.stream.write_queue_size == 0))
        conn_close(c);
    free(wr->head);
    free(wr->body);
    free(wr);
}

/* Queues status line, headers and body; takes over body. */
static void conn_send(conn *c, int status, const char *ctype, const char *extra, char *body,
                      size_t len, int close_after, int head_req)
{
    if (c->closing) {
        free(body);
        return;
    }
    write_req *wr = calloc(1, sizeof *wr);
    size_t hcap = 256 + (extra ? strlen(extra) : 0) + strlen(ctype ? ctype : "");
    char *head = malloc(hcap);
    if (!wr || !head) {
        free(wr);
        free(head);
        free(body);
        conn_close(c);
        return;
    }
    int n = snprintf(head, hcap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: %s\r\n\r\n",
                     status, vmfd_http_reason(status), ctype ? ctype : "application/json", len,
                     extra ? extra : "", close_after ? "close" : "keep-alive");
    wr->c = c;
    wr->head = head;
    wr->body = body;
    wr->close_after = close_after;
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)n), uv_buf_init(body, (unsigned)len)};
    /* RFC 9110 9.3.2: a HEAD answer has GET's headers (Content-Length too) and no body. */
    if (uv_write(&wr->w, &c->h.stream, bufs, len && !head_req ? 2 : 1, on_write) != 0) {
        free(head);
        free(body);
        free(wr);
        conn_close(c);
    }
}

/* A refusal found by the server itself: JSON error and close. */
static void conn_refuse(conn *c, int status, const char *error, const char *detail)
{
    char *body = malloc(512);
    int n = 0;
    if (body)
        n = snprintf(body, 512, "{\"error\":\"%s\",\"detail\":\"%s\"}", error, detail);
    if (c->srv->refusal)
        c->srv->refusal(c->srv->ud, status);
    vmfd_log(VMFD_LOG_INFO, "http refused status=%d error=%s", status, error);
    conn_send(c, status, "application/json", NULL, body, body ? (size_t)n : 0, 1, 0);
    c->in_message = 0;
    c->draining = 1;
    uv_read_stop(&c->h.stream);
}

/* ---- parser callbacks ---- */

static int add_header_bytes(conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->limits.max_header_bytes) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

/*
 * Counts the span [at, at+len) of the header section plus the bytes llhttp
 * skipped since the previous span of the same buffer (optional whitespace
 * before a value, line ends, the method). The bytes of a buffer after its
 * last span are added by conn_feed while the headers are incomplete.
 */
static int count_span(conn *c, const char *at, size_t len)
{
    size_t gap = c->span_end && at >= c->span_end ? (size_t)(at - c->span_end) : 0;
    c->span_end = at + len;
    return add_header_bytes(c, gap + len);
}

static int on_message_begin(llhttp_t *p)
{
    conn *c = p->data;
    c->in_message = 1;
    c->in_headers = 1;
    c->header_bytes = 0;
    c->url_len = 0;
    c->hname_len = c->hvalue_len = 0;
    c->hname_trunc = c->hvalue_trunc = 0;
    c->expect_continue = 0;
    free(c->req.body);
    memset(&c->req, 0, sizeof c->req);
    c->body_cap = 0;
    c->body_expected = 0;
    c->ext_bytes = 0;
    c->auth_seen = 0;
    c->span_end = NULL; /* bytes before the request line belong to the previous message */
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (count_span(c, at, len) != 0)
        return -1;
    if (c->url_len + len + 1 > c->url_cap) {
        size_t cap = (c->url_len + len + 1) * 2;
        char *u = realloc(c->url, cap);
        if (!u)
            return -1;
        c->url = u;
        c->url_cap = cap;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (count_span(c, at, len) != 0)
        return -1;
    if (c->hname_len + len >= sizeof c->hname) {
        c->hname_trunc = 1;
        return 0;
    }
    memcpy(c->hname + c->hname_len, at, len);
    c->hname_len += len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (count_span(c, at, len) != 0)
        return -1;
    if (c->hvalue_len + len >= sizeof c->hvalue) {
        c->hvalue_trunc = 1;
        return 0;
    }
    memcpy(c->hvalue + c->hvalue_len, at, len);
    c->hvalue_len += len;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    conn *c = p->data;
    c->hname[c->hname_len] = '\0';
    c->hvalue[c->hvalue_len] = '\0';
    if (!c->hname_trunc) {
        if (strcasecmp(c->hname, "content-type") == 0 && c->hvalue_len < sizeof c->req.content_type)
            memcpy(c->req.content_type, c->hvalue, c->hvalue_len + 1);
        else if (strcasecmp(c->hname, "authorization") == 0) {
            if (c->auth_seen++) {
                c->err_status = 400;
                c->err_error = "duplicate_authorization";
                c->err_detail = "the request has more than one Authorization header";
                return -1;
            }
            /* A truncated token can never match; keep it marked as such. */
            snprintf(c->req.authorization, sizeof c->req.authorization, "%s",
                     c->hvalue_trunc ? "invalid" : c->hvalue);
        } else if (strcasecmp(c->hname, "transfer-encoding") == 0 &&
                   strcasecmp(c->hvalue, "chunked") != 0) {
            c->err_status = 501;
            c->err_error = "unsupported_transfer_coding";
            c->err_detail = "only Transfer-Encoding: chunked is implemented";
            return -1;
        } else if (strcasecmp(c->hname, "expect") == 0 &&
                   strcasecmp(c->hvalue, "100-continue") == 0)
            c->expect_continue = 1;
    }
    c->hname_len = c->hvalue_len = 0;
    c->hname_trunc = c->hvalue_trunc = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    conn *c = p->data;
    c->in_headers = 0;
    c->span_end = NULL;
    c->req.head = llhttp_get_method(p) == HTTP_HEAD;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->limits.max_body_bytes) {
        c->err_status = 413;
        return -1;
    }
    if (p->flags & F_CONTENT_LENGTH && p->content_length > 0) {
        /* Reserve at most 1 MiB up front: a client announcing a large body
         * and sending nothing must not pin that much memory. */
        size_t cap = p->content_length < (1u << 20) ? (size_t)p->content_length : (1u << 20);
        c->req.body = malloc(cap);
        if (!c->req.body) {
            c->err_status = 413;
            return -1;
        }
        c->body_cap = cap;
        c->body_expected = (size_t)p->content_length;
    }
    if (c->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)cont, sizeof cont - 1);
        uv_try_write(&c->h.stream, &b, 1);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->req.body_len + len > c->srv->limits.max_body_bytes) {
        c->err_status = 413;
        return -1;
    }
    if (c->req.body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap * 2 : 65536;
        while (cap < c->req.body_len + len)
            cap *= 2;
        if (c->body_expected && cap > c->body_expected)
            cap = c->body_expected; /* Content-Length known: grow to it, not beyond */
        if (cap > c->srv->limits.max_body_bytes)
            cap = (size_t)c->srv->limits.max_body_bytes;
        char *b = realloc(c->req.body, cap);
        if (!b) {
            c->err_status = 413;
            return -1;
        }
        c->req.body = b;
        c->body_cap = cap;
    }
    memcpy(c->req.body + c->req.body_len, at, len);
    c->req.body_len += len;
    return 0;
}

/* Chunk extensions are request metadata: they count toward max_header_bytes. */
static int on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
    conn *c = p->data;
    (void)at;
    c->ext_bytes += len;
    if (c->ext_bytes > c->srv->limits.max_header_bytes) {
        c->err_status = 431;
        c->err_error = "chunk_extensions_too_large";
        c->err_detail = "the chunk extensions exceed max_header_bytes";
        return -1;
    }
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
    conn *c = p->data;
    c->in_message = 0;
    c->keep_alive = llhttp_should_keep_alive(p);
    c->req.method = method_of((llhttp_method_t)llhttp_get_method(p));
    c->req.method_name = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    c->req.start_ns = uv_hrtime();
    if (!c->url) {
        c->url = strdup("/");
        c->url_cap = c->url ? 2 : 0;
    }
    if (!c->url)
        return -1;
    c->req.path = c->url;
    char *q = strchr(c->url, '?');
    if (q) {
        *q = '\0';
        c->req.query = q + 1;
    } else {
        c->req.query = c->url + c->url_len; /* the terminating NUL: "" */
    }
    return HPE_PAUSED;
}

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    settings.on_chunk_extension_name = on_chunk_ext;
    settings.on_chunk_extension_value = on_chunk_ext;
}

/* ---- request flow ---- */

/* Parses data; returns 1 when a request is ready for the handler. */
static int conn_feed(conn *c, const char *data, size_t len)
{
    /* Still paused at the previous request's end when no bytes followed it
     * in the same read: a paused parser would return HPE_PAUSED at once. */
    if (llhttp_get_errno(&c->parser) == HPE_PAUSED)
        llhttp_resume(&c->parser);
    if (c->in_headers)
        c->span_end = data; /* a header section continued from the previous read */
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK) {
        /* The bytes after the last span still belong to the unfinished header
         * section (e.g. a megabyte of spaces before a value). */
        if (c->in_headers && c->span_end && c->span_end <= data + len &&
            add_header_bytes(c, (size_t)(data + len - c->span_end)) != 0) {
            conn_refuse(c, 431, "headers_too_large", "the request headers exceed max_header_bytes");
            return 0;
        }
        c->span_end = NULL;
        return 0;
    }
    c->span_end = NULL;
    if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        size_t rest = len - used;
        if (rest) {
            char *pend = malloc(rest);
            if (!pend) {
                conn_close(c);
                return 0;
            }
            memcpy(pend, data + used, rest);
            free(c->pending);
            c->pending = pend;
            c->pending_len = rest;
        }
        return 1;
    }
    if (c->err_status && c->err_error)
        conn_refuse(c, c->err_status, c->err_error, c->err_detail);
    else if (c->err_status == 413)
        conn_refuse(c, 413, "body_too_large", "the request body exceeds max_body_bytes");
    else if (c->err_status == 431)
        conn_refuse(c, 431, "headers_too_large", "the request headers exceed max_header_bytes");
    else
        conn_refuse(c, 400, "bad_request", llhttp_errno_name(e));
    return 0;
}

static void conn_process(conn *c)
{
    while (!c->closing && !c->busy && !c->draining) {
        if (c->pending_len == 0) {
            start_reading(c);
            return;
        }
        char *data = c->pending;
        size_t len = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        llhttp_resume(&c->parser);
        int ready = conn_feed(c, data, len);
        free(data);
        if (!ready)
            continue;
        c->busy = 1;
        c->in_dispatch = 1;
        c->srv->handler(c->srv->ud, &c->req);
        c->in_dispatch = 0;
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    conn *c = handle->data;
    (void)suggested;
    *buf = uv_buf_init(c->readbuf, sizeof c->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        if (nread == UV_EOF && c->h.stream.write_queue_size > 0) {
            /* The client half-closed after its request: finish writing the
             * answer (a large one may still be queued), then close. */
            c->draining = 1;
            uv_read_stop(&c->h.stream);
            return;
        }
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (!c->in_headers)
        uv_timer_again(&c->timer);
    if (conn_feed(c, c->readbuf, (size_t)nread)) {
        uv_read_stop(&c->h.stream);
        c->busy = 1;
        c->in_dispatch = 1;
        c->srv->handler(c->srv->ud, &c->req);
        c->in_dispatch = 0;
        if (!c->busy)
            conn_process(c);
    }
}

static void start_reading(conn *c)
{
    if (!c->closing && !c->draining)
        uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void on_idle(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->busy)
        return; /* the handler is working; the timer restarts after the answer */
    if (c->in_message)
        conn_refuse(c, 408, "request_timeout",
                    "the request was not completed within "
                    "idle_timeout_ms");
    else
        conn_close(c);
}

void vmfd_http_respond(vmfd_http_req *req, int status, const char *content_type,
                       const char *extra_headers, char *body, size_t len)
{
    conn *c = (conn *)((char *)req - offsetof(conn, req));
    int close_after = !c->keep_alive || c->srv->freeing || c->srv->draining;
    conn_send(c, status, content_type, extra_headers, body, len, close_after, req->head);
    free(c->req.body);
    c->req.body = NULL;
    c->req.body_len = 0;
    c->body_cap = 0;
    c->busy = 0;
    if (c->closing) {
        maybe_free_conn(c);
        return;
    }
    if (close_after) {
        c->draining = 1;
        uv_read_stop(&c->h.stream);
        return;
    }
    uv_timer_again(&c->timer);
    if (c->in_dispatch)
        return;      /* the dispatch loop continues */
    conn_process(c); /* first what is already buffered, then the socket */
}

/* ---- accepting ---- */

void vmfd_http_on_connection(uv_stream_t *server, int status)
{
    listener *l = server->data;
    vmfd_http *h = l->srv;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    int rc = server->type == UV_TCP ? uv_tcp_init(h->loop, &c->h.tcp)
                                    : uv_pipe_init(h->loop, &c->h.pipe, 0);
    if (rc != 0) {
        free(c);
        return;
    }
    c->srv = h;
    c->h.handle.data = c;
    c->timer.data = c;
    uv_timer_init(h->loop, &c->timer);
    c->open_handles = 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    if (uv_accept(server, &c->h.stream) != 0) {
        conn_close(c);
        return;
    }
    if (server->type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (h->n_conns > h->limits.max_connections) {
        c->in_message = 1;
        conn_refuse(c, 503, "too_many_connections", "max_connections reached");
        return;
    }
    uv_timer_start(&c->timer, on_idle, h->limits.idle_timeout_ms, h->limits.idle_timeout_ms);
    start_reading(c);
}

int vmfd_http_new(uv_loop_t *loop, const vmfd_http_limits *limits, vmfd_http_handler handler,
                  vmfd_http_refusal refusal, void *ud, vmfd_http **out)
{
    uv_once(&settings_once, settings_init);
    vmfd_http *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->loop = loop;
    h->limits = *limits;
    h->handler = handler;
    h->refusal = refusal;
    h->ud = ud;
    *out = h;
    return 0;
}

void vmfd_http_set_limits(vmfd_http *h, const vmfd_http_limits *limits)
{
    h->limits = *limits;
}

size_t vmfd_http_connections(const vmfd_http *h)
{
    return h->n_conns;
}

void vmfd_http_drain(vmfd_http *h)
{
    h->draining = 1;
    for (conn *c = h->conns; c; c = c->next) {
        if (!c->busy && !c->in_message && c->h.stream.write_queue_size == 0)
            conn_close(c);
    }
}

size_t vmfd_http_busy(const vmfd_http *h)
{
    size_t n = 0;
    for (const conn *c = h->conns; c; c = c->next)
        n += c->busy && !c->closing;
    return n;
}

static void on_flush_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

void vmfd_http_free(vmfd_http *h)
{
    if (!h)
        return;
    vmfd_http_stop_listening(h);
    h->freeing = 1;
    for (conn *c = h->conns; c; c = c->next) {
        if (c->closing)
            continue;
        if (c->h.stream.write_queue_size > 0) {
            /* Let the answer reach the client: on_write closes when it is out. */
            c->draining = 1;
            uv_read_stop(&c->h.stream);
            uv_timer_start(&c->timer, on_flush_timeout, 2000, 0);
        } else {
            conn_close(c);
        }
    }
    if (!h->conns && h->open_listeners == 0)
        free(h);
}
