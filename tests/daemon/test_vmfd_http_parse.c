/*
 * test_vmfd_http_parse.c - vmfd's socket-free request parser
 * (daemon/vmfd_http_parse.c): the parsed fields of concrete requests, each
 * limit and refusal with the status vmfd answers, pipelining and
 * keep-alive, and that every split of the input into reads gives the same
 * result as the whole (checked for each case at every byte boundary and one
 * byte at a time).
 */
#include "http_parse_drive.h"
#include "vmf_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const vmfd_http_parse_limits roomy = {4096, 1 << 20};

/* Parses in whole; asserts that two-piece splits at every boundary and
 * one-byte reads give the same result. */
static void parse(const char *in, size_t len, const vmfd_http_parse_limits *lim, drive_result *out)
{
    assert_int_equal(drive_parse(in, len, NULL, 0, lim, out), 0);
    drive_result o;
    for (size_t k = 1; k < len; k++) {
        size_t sizes[2] = {k, len};
        assert_int_equal(drive_parse(in, len, sizes, 2, lim, &o), 0);
        if (!drive_same(out, &o)) {
            print_error("split at byte %zu of %zu differs: %zu requests, status %d (%s) against "
                        "%zu, %d (%s)\n",
                        k, len, o.n_req, o.status, o.error, out->n_req, out->status, out->error);
            fail();
        }
        drive_free(&o);
    }
    size_t one = 1;
    assert_int_equal(drive_parse(in, len, &one, 1, lim, &o), 0);
    assert_true(drive_same(out, &o));
    drive_free(&o);
}

static void parse_str(const char *in, const vmfd_http_parse_limits *lim, drive_result *out)
{
    parse(in, strlen(in), lim, out);
}

static void test_simple_get(void **state)
{
    (void)state;
    drive_result r;
    parse_str("GET /v1/status?top_k=3 HTTP/1.1\r\nHost: x\r\nAuthorization: bearer abc\r\n\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_int_equal(r.req[0].method, VMFD_METHOD_GET);
    assert_string_equal(r.req[0].method_name, "GET");
    assert_string_equal(r.req[0].path, "/v1/status");
    assert_string_equal(r.req[0].query, "top_k=3");
    /* The scheme is matched case-insensitively by the API; the parser keeps the value as sent. */
    assert_string_equal(r.req[0].authorization, "bearer abc");
    assert_string_equal(r.req[0].content_type, "");
    assert_int_equal(r.req[0].body_len, 0);
    assert_int_equal(r.req[0].head, 0);
    assert_int_equal(r.req[0].keep_alive, 1);
    assert_int_equal(r.in_message, 0);
    assert_int_equal(r.continues, 0);
    drive_free(&r);
}

static void test_post_content_length(void **state)
{
    (void)state;
    drive_result r;
    parse_str("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              "Content-Length: 17\r\n\r\n{\"embeddings\":[]}",
              &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_int_equal(r.req[0].method, VMFD_METHOD_POST);
    assert_string_equal(r.req[0].path, "/v1/predict");
    assert_string_equal(r.req[0].query, "");
    assert_string_equal(r.req[0].content_type, "application/json");
    assert_int_equal(r.req[0].body_len, 17);
    assert_memory_equal(r.req[0].body, "{\"embeddings\":[]}", 17);
    drive_free(&r);
    /* Incomplete: the request stays open. */
    parse_str("PUT /v1/batches/a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 0);
    assert_int_equal(r.in_message, 1);
    assert_int_equal(r.in_headers, 0);
    drive_free(&r);
}

static const char chunked[] =
    "PUT /v1/batches/day-1 HTTP/1.1\r\nHost: x\r\n"
    "Transfer-Encoding: chunked\r\nContent-Type: application/x-npz\r\n\r\n"
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";

static void test_chunked_body(void **state)
{
    (void)state;
    drive_result r;
    /* parse() also checks every split point and one-byte reads. */
    parse_str(chunked, &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_int_equal(r.req[0].method, VMFD_METHOD_PUT);
    assert_string_equal(r.req[0].path, "/v1/batches/day-1");
    assert_string_equal(r.req[0].content_type, "application/x-npz");
    assert_int_equal(r.req[0].body_len, 11);
    assert_memory_equal(r.req[0].body, "hello world", 11);
    assert_int_equal(r.in_message, 0);
    drive_free(&r);
}

/*
 * Trailer fields are dropped: an Authorization or Content-Type after the body
 * neither supplies a missing one nor replaces the header's, and a second
 * Authorization there is not a duplicate.
 */
static void test_trailers_ignored(void **state)
{
    (void)state;
    drive_result r;
    parse_str("PUT /v1/batches/t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
              "Content-Type: application/x-npz\r\n\r\n"
              "2\r\nhi\r\n0\r\nAuthorization: Bearer sneaky\r\n"
              "Content-Type: application/json\r\n\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_string_equal(r.req[0].authorization, "");
    assert_string_equal(r.req[0].content_type, "application/x-npz");
    assert_int_equal(r.req[0].body_len, 2);
    drive_free(&r);
    parse_str("PUT /v1/batches/t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
              "Authorization: Bearer real\r\n\r\n"
              "0\r\nAuthorization: Bearer other\r\n\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_string_equal(r.req[0].authorization, "Bearer real");
    drive_free(&r);
}

static void test_chunked_split_everywhere(void **state)
{
    (void)state;
    /* Three pipelined requests, chunked in the middle, fed in reads of 1..7 bytes. */
    char in[1024];
    int n = snprintf(in, sizeof in, "%s%s%s", "GET /healthz HTTP/1.1\r\n\r\n", chunked,
                     "POST /v1/predict HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    drive_result whole, r;
    parse(in, (size_t)n, &roomy, &whole);
    assert_int_equal(whole.n_req, 3);
    assert_int_equal(whole.status, 0);
    assert_memory_equal(whole.req[1].body, "hello world", 11);
    assert_memory_equal(whole.req[2].body, "{}", 2);
    for (size_t s = 1; s <= 7; s++) {
        size_t sizes[3] = {s, s + 3, 1};
        assert_int_equal(drive_parse(in, (size_t)n, sizes, 3, &roomy, &r), 0);
        assert_true(drive_same(&whole, &r));
        drive_free(&r);
    }
    drive_free(&whole);
}

static void test_header_limit_exact(void **state)
{
    (void)state;
    /* The request line and header section: every byte up to the blank line. */
    static const char req[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad:      v\r\n\r\n";
    size_t len = sizeof req - 1;
    vmfd_http_parse_limits lim = {len, 1 << 20};
    drive_result r;
    parse(req, len, &lim, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_string_equal(r.req[0].path, "/v1/status");
    drive_free(&r);
    lim.max_header_bytes = len - 1;
    parse(req, len, &lim, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.error, "headers_too_large");
    assert_int_equal(r.n_req, 0);
    assert_int_equal(r.in_message, 0);
    drive_free(&r);
    /* The budget starts again for the next pipelined request. */
    char two[256];
    int n = snprintf(two, sizeof two, "%s%s", req, req);
    lim.max_header_bytes = len;
    parse(two, (size_t)n, &lim, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 2);
    drive_free(&r);
    /* Whitespace llhttp skips counts too: 8 KiB of spaces before a value. */
    char *pad = malloc(9000);
    assert_non_null(pad);
    n = snprintf(pad, 9000, "GET / HTTP/1.1\r\nX-Pad:");
    memset(pad + n, ' ', 8192);
    n += 8192;
    n += snprintf(pad + n, 9000 - (size_t)n, "v\r\n\r\n");
    lim.max_header_bytes = 4096;
    assert_int_equal(drive_parse(pad, (size_t)n, NULL, 0, &lim, &r), 0);
    assert_int_equal(r.status, 431);
    drive_free(&r);
    size_t sizes[1] = {1000};
    assert_int_equal(drive_parse(pad, (size_t)n, sizes, 1, &lim, &r), 0);
    assert_int_equal(r.status, 431);
    drive_free(&r);
    free(pad);
}

static void test_body_limit(void **state)
{
    (void)state;
    vmfd_http_parse_limits lim = {4096, 10};
    drive_result r;
    /* At the limit: accepted. */
    parse_str("PUT /v1/batches/k HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", &lim, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_int_equal(r.req[0].body_len, 10);
    drive_free(&r);
    /* Content-Length one over: refused before any body byte, and no 100 Continue. */
    parse_str("PUT /v1/batches/k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
              &lim, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.error, "body_too_large");
    assert_int_equal(r.continues, 0);
    drive_free(&r);
    /* Chunks adding up to one over. */
    parse_str("PUT /v1/batches/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              "6\r\n012345\r\n5\r\n6789a\r\n0\r\n\r\n",
              &lim, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.error, "body_too_large");
    assert_int_equal(r.n_req, 0);
    drive_free(&r);
    /* Expect: 100-continue within the limit is reported once. */
    parse_str("PUT /v1/batches/k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
              &lim, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.continues, 1);
    drive_free(&r);
}

static void test_chunk_extensions_limit(void **state)
{
    (void)state;
    vmfd_http_parse_limits lim = {64, 1 << 20};
    char in[512];
    int n = snprintf(in, sizeof in,
                     "PUT /v1/batches/e HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;%s=%s\r\n"
                     "x\r\n0\r\n\r\n",
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    drive_result r;
    parse(in, (size_t)n, &lim, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.error, "chunk_extensions_too_large");
    drive_free(&r);
    lim.max_header_bytes = 65; /* the 65 extension bytes fit */
    parse(in, (size_t)n, &lim, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.req[0].body_len, 1);
    drive_free(&r);
}

static void test_two_authorization(void **state)
{
    (void)state;
    drive_result r;
    parse_str("GET /v1/status HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n"
              "\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error, "duplicate_authorization");
    assert_int_equal(r.n_req, 0);
    drive_free(&r);
    /* An over-long value is kept as "invalid", which no token matches. */
    char in[1024];
    int n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nAuthorization: Bearer %0600d\r\n\r\n", 7);
    parse(in, (size_t)n, &roomy, &r);
    assert_int_equal(r.n_req, 1);
    assert_string_equal(r.req[0].authorization, "invalid");
    drive_free(&r);
}

static void test_transfer_coding(void **state)
{
    (void)state;
    drive_result r;
    parse_str("PUT /v1/batches/gz HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
              "2\r\n{}\r\n0\r\n\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 501);
    assert_string_equal(r.error, "unsupported_transfer_coding");
    drive_free(&r);
    /* The coding's name is case-insensitive. */
    parse_str(
        "PUT /v1/batches/c HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_memory_equal(r.req[0].body, "{}", 2);
    drive_free(&r);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET / HTTX/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad\x01Header: x\r\n\r\n",
        /* smuggling-shaped framing */
        "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 6\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drive_result r;
        parse_str(bad[i], &roomy, &r);
        if (r.status != 400 || strcmp(r.error, "bad_request") != 0 ||
            strncmp(r.detail, "HPE_", 4) != 0) {
            print_error("case %zu: %d %s %s\n", i, r.status, r.error, r.detail);
            fail();
        }
        assert_int_equal(r.n_req, 0);
        drive_free(&r);
    }
}

static void test_head(void **state)
{
    (void)state;
    drive_result r;
    parse_str("HEAD /v1/model HTTP/1.1\r\nHost: x\r\n\r\n", &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_int_equal(r.req[0].method, VMFD_METHOD_HEAD);
    assert_string_equal(r.req[0].method_name, "HEAD");
    assert_int_equal(r.req[0].head, 1);
    assert_string_equal(r.req[0].path, "/v1/model");
    drive_free(&r);
    parse_str("PATCH /v1/model HTTP/1.1\r\n\r\n", &roomy, &r);
    assert_int_equal(r.req[0].method, VMFD_METHOD_OTHER);
    assert_string_equal(r.req[0].method_name, "PATCH");
    assert_int_equal(r.req[0].head, 0);
    drive_free(&r);
}

static void test_pipelined(void **state)
{
    (void)state;
    drive_result r;
    parse_str("POST /v1/predict?top_k=2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
              "GET /metrics HTTP/1.1\r\n\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 2);
    assert_string_equal(r.req[0].path, "/v1/predict");
    assert_string_equal(r.req[0].query, "top_k=2");
    assert_memory_equal(r.req[0].body, "abc", 3);
    assert_int_equal(r.req[1].method, VMFD_METHOD_GET);
    assert_string_equal(r.req[1].path, "/metrics");
    assert_int_equal(r.req[1].body_len, 0);
    assert_int_equal(r.req[1].keep_alive, 1);
    drive_free(&r);

    /* The parser stops after each request and reports the bytes it used. */
    static const char two[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    vmfd_http_req req;
    vmfd_http_parser *p = vmfd_http_parser_new(&roomy, &req, NULL, NULL);
    assert_non_null(p);
    size_t used;
    assert_int_equal(vmfd_http_parser_feed(p, two, sizeof two - 1, &used), VMFD_HTTP_PARSE_REQUEST);
    assert_int_equal(used, 19);
    assert_string_equal(req.path, "/a");
    assert_int_equal(vmfd_http_parser_feed(p, two + used, sizeof two - 1 - used, &used),
                     VMFD_HTTP_PARSE_REQUEST);
    assert_int_equal(used, 19);
    assert_string_equal(req.path, "/b");
    assert_int_equal(vmfd_http_parser_feed(p, "", 0, &used), VMFD_HTTP_PARSE_MORE);
    vmfd_http_parser_free(p);
}

static void test_connection_close(void **state)
{
    (void)state;
    drive_result r;
    /* The driver, like the server, reads nothing after a closing request. */
    parse_str("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
              &roomy, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_req, 1);
    assert_string_equal(r.req[0].path, "/healthz");
    assert_int_equal(r.req[0].keep_alive, 0);
    drive_free(&r);
    /* HTTP/1.0 closes unless asked to keep the connection alive. */
    parse_str("GET /healthz HTTP/1.0\r\n\r\n", &roomy, &r);
    assert_int_equal(r.req[0].keep_alive, 0);
    drive_free(&r);
    parse_str("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &roomy, &r);
    assert_int_equal(r.req[0].keep_alive, 1);
    drive_free(&r);
    /* Bytes after Connection: close never become a request, even if fed. */
    static const char closing[] =
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    vmfd_http_req req;
    vmfd_http_parser *p = vmfd_http_parser_new(&roomy, &req, NULL, NULL);
    assert_non_null(p);
    size_t used;
    assert_int_equal(vmfd_http_parser_feed(p, closing, sizeof closing - 1, &used),
                     VMFD_HTTP_PARSE_REQUEST);
    assert_int_equal(vmfd_http_parser_keep_alive(p), 0);
    assert_int_equal(vmfd_http_parser_feed(p, closing + used, sizeof closing - 1 - used, &used),
                     VMFD_HTTP_PARSE_MORE);
    assert_int_equal(vmfd_http_parser_in_message(p), 0);
    vmfd_http_parser_free(p);
}

static void test_refusal_is_final(void **state)
{
    (void)state;
    vmfd_http_req req;
    vmfd_http_parser *p = vmfd_http_parser_new(&roomy, &req, NULL, NULL);
    assert_non_null(p);
    size_t used;
    static const char bad[] = "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_int_equal(vmfd_http_parser_feed(p, bad, sizeof bad - 1, &used), VMFD_HTTP_PARSE_ERROR);
    assert_int_equal(vmfd_http_parser_error(p)->status, 501);
    assert_int_equal(vmfd_http_parser_in_message(p), 0);
    assert_int_equal(vmfd_http_parser_feed(p, "GET / HTTP/1.1\r\n\r\n", 18, &used),
                     VMFD_HTTP_PARSE_ERROR);
    assert_int_equal(vmfd_http_parser_error(p)->status, 501);
    vmfd_http_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_trailers_ignored),
        cmocka_unit_test(test_chunked_split_everywhere),
        cmocka_unit_test(test_header_limit_exact),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_chunk_extensions_limit),
        cmocka_unit_test(test_two_authorization),
        cmocka_unit_test(test_transfer_coding),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_refusal_is_final),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
