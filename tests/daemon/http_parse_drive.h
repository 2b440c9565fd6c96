/*
 * http_parse_drive.h - feeds bytes to vmfd's request parser
 * (daemon/vmfd_http_parse.h) the way the server does, in chunks of given
 * sizes, and records what came out, so that a unit test and the HTTP fuzzer
 * can compare one split of the same bytes with another.
 *
 * The loop is the server's: a completed request is taken, the rest of the
 * chunk is fed again, and feeding stops after a request that does not keep
 * the connection alive or at a refusal.
 */
#ifndef HTTP_PARSE_DRIVE_H
#define HTTP_PARSE_DRIVE_H

#include "vmfd_http_parse.h"

#include <stddef.h>

#define DRIVE_MAX_REQ 16

typedef struct drive_req {
    vmfd_http_method method;
    char method_name[32];
    char *path;
    char *query;
    char content_type[128];
    char authorization[VMFD_AUTH_MAX + 1];
    char *body;
    size_t body_len;
    int head;
    int keep_alive;
} drive_req;

typedef struct drive_result {
    size_t n_req;
    drive_req req[DRIVE_MAX_REQ];
    int status; /* the refusal's status, 0 when none */
    char error[64];
    char detail[128];
    int in_message; /* after the last byte: a request was still incomplete */
    int in_headers;
    int continues; /* "100 Continue" callbacks */
} drive_result;

/*
 * Parses in[0..len) fed as chunks of sizes[0], sizes[1], ... (cycling; NULL
 * or n_sizes 0: one chunk; a zero size counts as 1). Returns 0, or -1 when
 * out of memory. Free *out with drive_free.
 */
int drive_parse(const char *in, size_t len, const size_t *sizes, size_t n_sizes,
                const vmfd_http_parse_limits *limits, drive_result *out);

/* 1 when both saw the same requests (every field, body bytes) and the same end. */
int drive_same(const drive_result *a, const drive_result *b);

void drive_free(drive_result *r);

#endif
