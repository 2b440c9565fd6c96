/*
 * vmfd_http_listen.c - the listening sockets of the HTTP server: TCP,
 * Unix sockets and inherited (socket-activated) descriptors, and closing
 * them. Accepted connections go to vmfd_http.c.
 */
#include "vmfd_http.h"
#include "vmfd_http_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static listener *new_listener(vmfd_http *h)
{
    listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->srv = h;
    return l;
}

static int start_listener(vmfd_http *h, listener *l, char *err, size_t errsize)
{
    l->h.handle.data = l;
    int rc = uv_listen(&l->h.stream, 511, vmfd_http_on_connection);
    if (rc != 0) {
        snprintf(err, errsize, "listen: %s", uv_strerror(rc));
        return -1;
    }
    l->next = h->listeners;
    h->listeners = l;
    h->open_listeners++;
    return 0;
}

static void on_listener_closed(uv_handle_t *handle)
{
    listener *l = handle->data;
    vmfd_http *h = l->srv;
    free(l);
    h->open_listeners--;
    if (h->freeing && !h->conns && h->open_listeners == 0)
        free(h);
}

static void free_unlistened(uv_handle_t *handle)
{
    free(handle->data);
}

int vmfd_http_listen_tcp(vmfd_http *h, const char *host, int port, int *bound, char *err,
                         size_t errsize)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        snprintf(err, errsize, "listen: '%s' is not an IPv4 or IPv6 address", host);
        return -1;
    }
    listener *l = new_listener(h);
    if (!l) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    uv_tcp_init(h->loop, &l->h.tcp);
    l->h.handle.data = l;
    rc = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&addr, 0);
    if (rc == 0) {
        char e2[128];
        if (start_listener(h, l, e2, sizeof e2) != 0)
            rc = UV_EADDRINUSE;
    }
    if (rc != 0) {
        snprintf(err, errsize, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        uv_close(&l->h.handle, free_unlistened);
        return -1;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&got, &len);
    if (bound)
        *bound = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

int vmfd_http_listen_unix(vmfd_http *h, const char *path, char *err, size_t errsize)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    listener *l = new_listener(h);
    if (!l) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    uv_pipe_init(h->loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    int rc = uv_pipe_bind(&l->h.pipe, path);
    if (rc != 0 || start_listener(h, l, err, errsize) != 0) {
        if (rc != 0)
            snprintf(err, errsize, "cannot bind %s: %s", path, uv_strerror(rc));
        uv_close(&l->h.handle, free_unlistened);
        return -1;
    }
    chmod(path, 0660);
    return 0;
}

int vmfd_http_listen_fd(vmfd_http *h, int fd, char *err, size_t errsize)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        snprintf(err, errsize, "fd %d is not a socket: %s", fd, strerror(errno));
        return -1;
    }
    listener *l = new_listener(h);
    if (!l) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    int rc;
    if (sa.ss_family == AF_UNIX) {
        uv_pipe_init(h->loop, &l->h.pipe, 0);
        rc = uv_pipe_open(&l->h.pipe, fd);
    } else {
        uv_tcp_init(h->loop, &l->h.tcp);
        rc = uv_tcp_open(&l->h.tcp, fd);
    }
    l->h.handle.data = l;
    if (rc != 0 || start_listener(h, l, err, errsize) != 0) {
        if (rc != 0)
            snprintf(err, errsize, "cannot adopt fd %d: %s", fd, uv_strerror(rc));
        uv_close(&l->h.handle, free_unlistened);
        return -1;
    }
    return 0;
}

void vmfd_http_stop_listening(vmfd_http *h)
{
    listener *l = h->listeners;
    h->listeners = NULL;
    while (l) {
        listener *next = l->next;
        uv_close(&l->h.handle, on_listener_closed);
        l = next;
    }
}
