/*
 * vmfd_http_server.h - private to the HTTP server (vmfd_http.c and
 * vmfd_http_listen.c): the server and listener structures shared by the
 * connection code and the listening sockets. Connections stay opaque here,
 * so their parser (vmfd_http_parse.c) stays inside vmfd_http.c. Loop thread
 * only.
 */
#ifndef VMFD_HTTP_SERVER_H
#define VMFD_HTTP_SERVER_H

#include "vmfd_http.h"

#include <stddef.h>
#include <uv.h>

typedef struct conn conn;

typedef struct listener {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    vmfd_http *srv;
    struct listener *next;
} listener;

struct vmfd_http {
    uv_loop_t *loop;
    vmfd_http_limits limits;
    vmfd_http_handler handler;
    vmfd_http_refusal refusal;
    void *ud;
    listener *listeners;
    conn *conns;
    size_t n_conns;
    int draining; /* vmfd_http_drain: every answer closes its connection */
    int freeing;
    int open_listeners;
};

/* Accepts a connection on a listener (its handle's data). vmfd_http.c. */
void vmfd_http_on_connection(uv_stream_t *server, int status);

#endif
