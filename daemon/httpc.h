/*
 * httpc.h - the blocking HTTP/1.1 client plumbing shared by vmfd's clients:
 * vmfctl, vmfsim --via, bench_vmfd and the e2e tests. One connection per
 * request ("Connection: close"): connect, send the request, read the answer
 * to EOF. httpc_format_head writes the request head they all send; each
 * caller reads the status line its own way and words its own error
 * messages; apart from the head, this file only moves bytes.
 * No global state; every function is safe to call from any thread.
 */
#ifndef VMF_HTTPC_H
#define VMF_HTTPC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results of httpc_read_all and httpc_exchange (0 or negative). */
enum {
    HTTPC_OK = 0,
    HTTPC_ERECV = -1,    /* recv failed; errno says why; the bytes read so far are returned */
    HTTPC_ETIMEOUT = -2, /* no byte for poll_timeout_ms; the bytes read so far are returned */
    HTTPC_ENOMEM = -3,   /* out of memory; nothing is returned */
    HTTPC_ETOOBIG = -4,  /* the answer exceeds max bytes; nothing is returned */
    HTTPC_ESEND = -5     /* (httpc_exchange) a send failed; errno says why */
};

/* Flags of httpc_connect. */
#define HTTPC_NODELAY 1 /* set TCP_NODELAY (TCP only) */
#define HTTPC_CLOEXEC 2 /* open the socket with SOCK_CLOEXEC */

/*
 * Connects a stream socket to the Unix socket unix_path when it is not NULL,
 * else to host:port (a name or a numeric address; port as a decimal string),
 * trying every address getaddrinfo returns in turn. io_timeout_s > 0 sets
 * SO_RCVTIMEO and SO_SNDTIMEO to that many seconds. Returns the descriptor,
 * or -1: then *gai_rc (when not NULL) is getaddrinfo's nonzero code if the
 * name did not resolve, else 0 and errno is the last connect error.
 */
int httpc_connect(const char *unix_path, const char *host, const char *port, int flags,
                  int io_timeout_s, int *gai_rc);

/* Sends all n bytes (retrying on EINTR, no SIGPIPE). 0, or -1 with errno set. */
int httpc_send_all(int fd, const void *p, size_t n);

/*
 * Reads fd to EOF into a malloc'ed, NUL-terminated buffer (*out, *got bytes
 * before the NUL; the caller frees it). poll_timeout_ms > 0 gives up when no
 * byte comes for that long; max > 0 refuses an answer of max bytes or more.
 * Returns HTTPC_OK, or an HTTPC_E* code as documented above.
 */
int httpc_read_all(int fd, int poll_timeout_ms, size_t max, char **out, size_t *got);

/*
 * One exchange on a connected fd: sends head (head_len bytes) and then body
 * (len bytes, may be NULL when len is 0), reads the answer as httpc_read_all
 * does, and closes fd in every case. Returns HTTPC_ESEND (errno set, nothing
 * returned) when a send fails, else what httpc_read_all returned.
 */
int httpc_exchange(int fd, const void *head, size_t head_len, const void *body, size_t len,
                   int poll_timeout_ms, size_t max, char **out, size_t *got);

/*
 * Formats a request head into buf (size bytes): "METHOD TARGET HTTP/1.1",
 * Host, "Connection: close", Content-Type when ctype is not NULL,
 * Content-Length (also when 0), the caller's extra header lines (each ending
 * in CRLF; NULL for none) and the blank line. Returns its length, or -1 when
 * it does not fit.
 */
int httpc_format_head(char *buf, size_t size, const char *method, const char *target,
                      const char *host, const char *ctype, size_t len, const char *extra);

#ifdef __cplusplus
}
#endif

#endif
