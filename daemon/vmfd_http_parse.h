/*
 * vmfd_http_parse.h - vmfd's HTTP/1.1 request parser without sockets: bytes
 * in (in chunks of any size), complete requests or a refusal out. It owns
 * llhttp and enforces the request limits; the server (vmfd_http.c) feeds it
 * read buffers, the fuzzer and the unit tests feed it memory, so all three
 * exercise the same code.
 *
 * What a caller sees does not depend on how the bytes are split: fed whole
 * or one byte at a time, the same input gives the same requests and the same
 * refusal (tests/daemon/test_vmfd_http_parse.c and the fuzzer check this).
 *
 * Limits and refusals, each with the status and error code vmfd answers:
 *  - the request line and header section (every byte from the method to the
 *    blank line that ends the section) over max_header_bytes: 431
 *    headers_too_large; trailer fields count the same way on their own;
 *  - chunk extensions over max_header_bytes: 431 chunk_extensions_too_large;
 *  - Content-Length over max_body_bytes (before any body byte is read), or
 *    the chunks adding up to more: 413 body_too_large;
 *  - a second Authorization header: 400 duplicate_authorization;
 *  - a Transfer-Encoding other than plain "chunked": 501
 *    unsupported_transfer_coding (vmfd implements no content coding);
 *  - anything llhttp rejects (malformed request line, smuggling-shaped
 *    framing, upgrades): 400 bad_request with llhttp's error name as the
 *    detail.
 * Bytes after a request that closes the connection never become a request.
 * A refusal is final: the rest of the stream cannot be trusted, so every
 * later feed returns the same error.
 *
 * Single-threaded: one parser per connection, used by one thread.
 */
#ifndef VMFD_HTTP_PARSE_H
#define VMFD_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Longest bearer token, bytes. The token file's limit (vmfd_main.c) and the
 * parser's Authorization buffer ("Bearer " + token) derive from this one
 * value, so every token the configuration accepts can also be presented.
 */
#define VMFD_TOKEN_MAX 511
#define VMFD_AUTH_MAX  (VMFD_TOKEN_MAX + 16)

/* The request methods vmfd routes on; any other is VMFD_METHOD_OTHER. */
typedef enum vmfd_http_method {
    VMFD_METHOD_OTHER = 0,
    VMFD_METHOD_GET,
    VMFD_METHOD_HEAD,
    VMFD_METHOD_POST,
    VMFD_METHOD_PUT,
} vmfd_http_method;

/* One parsed request. Its strings and body belong to the parser that filled it. */
typedef struct vmfd_http_req {
    vmfd_http_method method;
    const char *method_name; /* as received, e.g. "PATCH" (static storage) */
    char *path;              /* without the query */
    char *query;             /* after '?', "" when none */
    char content_type[128];
    char authorization[VMFD_AUTH_MAX + 1]; /* "invalid" when longer than VMFD_AUTH_MAX */
    char *body;
    size_t body_len;
    int head;          /* a HEAD request: answered like GET, the body is never sent */
    uint64_t start_ns; /* set by the server (uv_hrtime() when complete); the parser leaves 0 */
} vmfd_http_req;

typedef struct vmfd_http_parse_limits {
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
} vmfd_http_parse_limits;

typedef enum vmfd_http_parse_status {
    VMFD_HTTP_PARSE_MORE = 0, /* every byte consumed, no request complete yet */
    VMFD_HTTP_PARSE_REQUEST,  /* a request is complete in *req */
    VMFD_HTTP_PARSE_ERROR,    /* refused: see vmfd_http_parser_error */
} vmfd_http_parse_status;

/* A refusal: HTTP status, JSON error code and human-readable detail (static strings). */
typedef struct vmfd_http_parse_error {
    int status;
    const char *error;
    const char *detail;
} vmfd_http_parse_error;

/*
 * Called when a request's headers ask for "Expect: 100-continue" and were
 * accepted, before its body is parsed (the server writes "100 Continue").
 */
typedef void (*vmfd_http_continue_fn)(void *ud);

typedef struct vmfd_http_parser vmfd_http_parser;

/*
 * A parser that fills *req (borrowed: it must outlive the parser) and calls
 * on_continue(ud) (may be NULL). Returns NULL when out of memory.
 */
vmfd_http_parser *vmfd_http_parser_new(const vmfd_http_parse_limits *limits, vmfd_http_req *req,
                                       vmfd_http_continue_fn on_continue, void *ud);
/* Frees the parser, the request's path and its body. Accepts NULL. */
void vmfd_http_parser_free(vmfd_http_parser *p);

/* Replaces the limits (a configuration reload); they apply from the next byte. */
void vmfd_http_parser_set_limits(vmfd_http_parser *p, const vmfd_http_parse_limits *limits);

/*
 * Parses data[0..len). Stops after the first request that completes:
 * VMFD_HTTP_PARSE_REQUEST with *used the bytes that belong to it (and to
 * requests before it in this call); data[*used..len) is the start of what
 * follows (pipelining) and must be fed again once the request is dealt
 * with. Otherwise *used = len. The request in *req stays valid until the
 * next feed. On VMFD_HTTP_PARSE_ERROR nothing more is parsed, ever.
 */
vmfd_http_parse_status vmfd_http_parser_feed(vmfd_http_parser *p, const char *data, size_t len,
                                             size_t *used);

/* The refusal after VMFD_HTTP_PARSE_ERROR; status 0 before any. */
const vmfd_http_parse_error *vmfd_http_parser_error(const vmfd_http_parser *p);

/* After a request: 1 when the connection may carry another (HTTP/1.1 without
 * Connection: close, or HTTP/1.0 with keep-alive). */
int vmfd_http_parser_keep_alive(const vmfd_http_parser *p);

/* A request has begun and neither completed nor been refused. */
int vmfd_http_parser_in_message(const vmfd_http_parser *p);

/* Its request line or header section is still incomplete. */
int vmfd_http_parser_in_headers(const vmfd_http_parser *p);

/* Frees the current request's body once it has been dealt with (memory kept
 * by an idle keep-alive connection). */
void vmfd_http_parser_release_body(vmfd_http_parser *p);

#endif
