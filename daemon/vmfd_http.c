/*
 * vmfd_http.c - HTTP/1.1 server connections: reading, handing the bytes to
 * the request parser, answering (see vmfd_http.h). The parser and the
 * request limits are in vmfd_http_parse.c; the listening sockets are in
 * vmfd_http_listen.c.
 *
 * Design notes. Each connection owns one parser. Bytes are parsed straight
 * from libuv's read buffer; when a request completes, the unparsed rest is
 * kept in `pending`, reading stops and the handler runs. Responding feeds
 * `pending` to the parser and then resumes reading, in a loop rather than
 * recursively, so a pipelined burst cannot grow the stack. A refusal (the
 * parser's, or 408 and 503 found here) is answered with its status and a
 * JSON error, then the connection closes, because the rest of the stream
 * cannot be trusted.
 */
#include "vmfd_http.h"

#include "vmfd_http_server.h"
#include "vmfd_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    vmfd_http_parser *parser;
    vmfd_http_req req; /* filled by the parser */
    int open_handles;  /* stream and timer not yet closed */
    int closing;
    int busy;        /* a request is with the handler */
    int in_dispatch; /* inside the handler call (respond must not recurse) */
    int refused;     /* answered with a refusal: no request is in progress any more */
    int draining;    /* the last answer closes the connection: read nothing more */
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
    vmfd_http_parser_free(c->parser);
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
    c->refused = 1;
    c->draining = 1;
    uv_read_stop(&c->h.stream);
}

/*
 * A request is in progress (begun, neither complete nor refused): the idle
 * timer answers it with 408 and a drain waits for it.
 */
static int conn_in_message(const conn *c)
{
    return !c->refused && vmfd_http_parser_in_message(c->parser);
}

/* "Expect: 100-continue" accepted: the interim answer goes out before the body arrives. */
static void on_continue(void *ud)
{
    conn *c = ud;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)cont, sizeof cont - 1);
    uv_try_write(&c->h.stream, &b, 1);
}

static vmfd_http_parse_limits parse_limits(const vmfd_http *h)
{
    vmfd_http_parse_limits l = {h->limits.max_header_bytes, h->limits.max_body_bytes};
    return l;
}

/* ---- request flow ---- */

/* Parses data; returns 1 when a request is ready for the handler. */
static int conn_feed(conn *c, const char *data, size_t len)
{
    vmfd_http_parse_limits lim = parse_limits(c->srv);
    vmfd_http_parser_set_limits(c->parser, &lim); /* a reload applies from now */
    size_t used;
    vmfd_http_parse_status st = vmfd_http_parser_feed(c->parser, data, len, &used);
    if (st == VMFD_HTTP_PARSE_ERROR) {
        const vmfd_http_parse_error *e = vmfd_http_parser_error(c->parser);
        conn_refuse(c, e->status, e->error, e->detail);
        return 0;
    }
    if (st == VMFD_HTTP_PARSE_MORE)
        return 0;
    c->req.start_ns = uv_hrtime();
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
    /* Reads inside an unfinished request line and header section do not
     * extend the idle timer, so a trickling client (slowloris) gets 408
     * idle_timeout_ms after its first header bytes. */
    if (!vmfd_http_parser_in_headers(c->parser))
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
    if (conn_in_message(c))
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
    int close_after =
        !vmfd_http_parser_keep_alive(c->parser) || c->srv->freeing || c->srv->draining;
    conn_send(c, status, content_type, extra_headers, body, len, close_after, req->head);
    vmfd_http_parser_release_body(c->parser);
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
    vmfd_http_parse_limits lim = parse_limits(h);
    c->parser = vmfd_http_parser_new(&lim, &c->req, on_continue, c);
    if (!c->parser) {
        free(c);
        return;
    }
    int rc = server->type == UV_TCP ? uv_tcp_init(h->loop, &c->h.tcp)
                                    : uv_pipe_init(h->loop, &c->h.pipe, 0);
    if (rc != 0) {
        vmfd_http_parser_free(c->parser);
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
    if (uv_accept(server, &c->h.stream) != 0) {
        conn_close(c);
        return;
    }
    if (server->type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (h->n_conns > h->limits.max_connections) {
        conn_refuse(c, 503, "too_many_connections", "max_connections reached");
        return;
    }
    uv_timer_start(&c->timer, on_idle, h->limits.idle_timeout_ms, h->limits.idle_timeout_ms);
    start_reading(c);
}

int vmfd_http_new(uv_loop_t *loop, const vmfd_http_limits *limits, vmfd_http_handler handler,
                  vmfd_http_refusal refusal, void *ud, vmfd_http **out)
{
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
        if (!c->busy && !conn_in_message(c) && c->h.stream.write_queue_size == 0)
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
