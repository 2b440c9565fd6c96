/*
 * httpc.c - blocking HTTP/1.1 client plumbing (see httpc.h): one place for
 * the connect, send-everything and read-to-EOF loops that vmfctl, vmfsim
 * --via, bench_vmfd and the e2e tests each used to carry.
 */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int httpc_connect(const char *unix_path, const char *host, const char *port, int flags,
                  int io_timeout_s, int *gai_rc)
{
    int cloexec = (flags & HTTPC_CLOEXEC) ? SOCK_CLOEXEC : 0, fd = -1;
    if (gai_rc)
        *gai_rc = 0;
    if (unix_path) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        if (strlen(unix_path) >= sizeof sa.sun_path)
            return -1;
        strcpy(sa.sun_path, unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | cloexec, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            fd = -1;
        }
    } else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int g = getaddrinfo(host, port, &hints, &res);
        if (g != 0) {
            if (gai_rc)
                *gai_rc = g;
            return -1;
        }
        int last = 0;
        for (struct addrinfo *a = res; a; a = a->ai_next) {
            fd = socket(a->ai_family, a->ai_socktype | cloexec, a->ai_protocol);
            if (fd < 0) {
                last = errno;
                continue;
            }
            if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                break;
            last = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0) {
            errno = last;
            return -1;
        }
        if (flags & HTTPC_NODELAY) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    if (fd >= 0 && io_timeout_s > 0) {
        struct timeval tv = {.tv_sec = io_timeout_s, .tv_usec = 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

int httpc_send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int httpc_read_all(int fd, int poll_timeout_ms, size_t max, char **out, size_t *got_out)
{
    size_t cap = 65536, got = 0;
    int rc = HTTPC_OK;
    char *buf = malloc(cap + 1);
    *out = NULL;
    *got_out = 0;
    if (!buf)
        return HTTPC_ENOMEM;
    for (;;) {
        if (poll_timeout_ms > 0) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int pr = poll(&pfd, 1, poll_timeout_ms);
            if (pr == 0) {
                rc = HTTPC_ETIMEOUT;
                break;
            }
            if (pr < 0) {
                rc = HTTPC_ERECV;
                break;
            }
        }
        if (got == cap) {
            if (max && cap >= max) {
                free(buf);
                return HTTPC_ETOOBIG;
            }
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                return HTTPC_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = HTTPC_ERECV;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *got_out = got;
    return rc;
}

int httpc_exchange(int fd, const void *head, size_t head_len, const void *body, size_t len,
                   int poll_timeout_ms, size_t max, char **out, size_t *got)
{
    *out = NULL;
    *got = 0;
    if (httpc_send_all(fd, head, head_len) != 0 || (len && httpc_send_all(fd, body, len) != 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return HTTPC_ESEND;
    }
    int rc = httpc_read_all(fd, poll_timeout_ms, max, out, got);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int httpc_format_head(char *buf, size_t size, const char *method, const char *target,
                      const char *host, const char *ctype, size_t len, const char *extra)
{
    int n = snprintf(buf, size,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s%s"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, target, host, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", len, extra ? extra : "");
    return n < 0 || (size_t)n >= size ? -1 : n;
}
