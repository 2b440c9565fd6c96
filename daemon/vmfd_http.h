/*
 * vmfd_http.h - a small HTTP/1.1 server on libuv with llhttp: keep-alive,
 * pipelining (one request in flight per connection, the rest buffered),
 * TCP, Unix sockets and inherited (socket-activated) listeners, and limits on
 * header bytes, body bytes, connections and idle time. Requests are parsed
 * by vmfd_http_parse.c, which also defines vmfd_http_req and the method enum.
 *
 * Everything runs on the loop thread. The handler receives each complete
 * request and must answer it exactly once with vmfd_http_respond, at once or
 * later (after threadpool work); the connection reads no further request
 * until then. A connection that closes meanwhile keeps the request alive, so
 * a late respond is always safe and simply discards the answer.
 */
#ifndef VMFD_HTTP_H
#define VMFD_HTTP_H

#include "vmfd_http_parse.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct vmfd_http vmfd_http;

typedef struct vmfd_http_limits {
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t max_connections;
    uint64_t idle_timeout_ms;
} vmfd_http_limits;

typedef void (*vmfd_http_handler)(void *ud, vmfd_http_req *req);

/* Reports limit refusals (413, 431, 408, 503, 400) for metrics; may be NULL. */
typedef void (*vmfd_http_refusal)(void *ud, int status);

int vmfd_http_new(uv_loop_t *loop, const vmfd_http_limits *limits, vmfd_http_handler handler,
                  vmfd_http_refusal refusal, void *ud, vmfd_http **out);
void vmfd_http_set_limits(vmfd_http *h, const vmfd_http_limits *limits);

/* Listens on host:port (port 0 picks one; *bound receives it). */
int vmfd_http_listen_tcp(vmfd_http *h, const char *host, int port, int *bound, char *err,
                         size_t errsize);
/* Listens on a Unix socket path (an existing socket file is replaced). */
int vmfd_http_listen_unix(vmfd_http *h, const char *path, char *err, size_t errsize);
/* Adopts an already listening socket (systemd socket activation). */
int vmfd_http_listen_fd(vmfd_http *h, int fd, char *err, size_t errsize);

/* Stops accepting; open connections continue. */
void vmfd_http_stop_listening(vmfd_http *h);

/*
 * Graceful shutdown, first step: idle connections close at once; a request
 * already with the handler is still answered, and every answer from now on
 * carries Connection: close. Listeners stay open, so a client arriving
 * during the drain gets the handler's answer (vmfd: 503 shutting_down)
 * instead of a reset.
 */
void vmfd_http_drain(vmfd_http *h);
/* Requests handed to the handler and not yet answered. */
size_t vmfd_http_busy(const vmfd_http *h);
/*
 * Closes every listener and connection and frees h once all handles closed.
 * Answers already queued are still written (a connection with pending
 * output closes after it, or after 2 s).
 */
void vmfd_http_free(vmfd_http *h);

size_t vmfd_http_connections(const vmfd_http *h);

/*
 * Answers req: status, content type, extra header lines (each ending in
 * "\r\n", may be NULL) and a body that is taken over (malloc'ed, may be NULL).
 */
void vmfd_http_respond(vmfd_http_req *req, int status, const char *content_type,
                       const char *extra_headers, char *body, size_t len);

const char *vmfd_http_reason(int status);

#endif
