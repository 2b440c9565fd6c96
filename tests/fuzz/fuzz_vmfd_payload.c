/*
 * fuzz_vmfd_payload.c - libFuzzer target for vmfd's request handling without
 * sockets: vmfd's own request parser (daemon/vmfd_http_parse.c, llhttp and
 * the request limits), the routing of /v1/predict and /v1/batches/{key} to
 * the body decoders, and the decoders themselves (.npz, .npy, JSON) for
 * ingest and predict.
 *
 * The first input byte chooses the mode: bit 0x80 feeds the rest to the
 * parser as a raw connection stream (with limits and a read pattern taken
 * from its first two bytes, see http()) and decodes the requests' bodies as
 * their route and Content-Type say; otherwise bits 0-1 pick the content type
 * and bit 2 ingest or predict, and the rest is the body. Anything must be
 * decoded or refused with a 4xx/5xx status and a message, never crash or
 * leak; the parser must give the same requests and refusal however the
 * stream is split into reads, refuse only with the statuses vmfd uses, and
 * never return a body over max_body_bytes; a decoded batch must have unit
 * rows, survive the store round trip (rows + labels JSON) with the same
 * content hash, and a decoded predict body must have finite unit rows.
 */
#include "http_parse_drive.h"
#include "vmfd_payload.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ctypes[4] = {"application/x-npz", "application/x-npy", "application/json",
                                      "Application/JSON; charset=utf-8"};

static void check_rows(const float *x, size_t n, size_t d)
{
    if (n == 0 || d == 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < d; j++) {
            if (!isfinite(x[i * d + j]))
                abort();
            s += (double)x[i * d + j] * x[i * d + j];
        }
        if (fabs(s - 1.0) > 1e-4)
            abort();
    }
}

static void check_error(const vmfd_payload_error *e)
{
    if (e->status < 400 || e->status > 599 || e->error[0] == '\0')
        abort();
}

static void ingest(const char *ctype, const void *body, size_t len)
{
    vmfd_batch b;
    vmfd_payload_error e;
    memset(&e, 0, sizeof e);
    if (vmfd_payload_parse_ingest(ctype, body, len, &b, &e) != 0) {
        check_error(&e);
        return;
    }
    check_rows(b.x, b.n, b.d);
    if (strlen(b.sha256) != 64)
        abort();
    /* What the store keeps must give back the same batch. */
    char *labels = vmfd_batch_labels_json(&b);
    if (b.label_kind != VMFD_LABELS_NONE && !labels)
        abort();
    vmfd_batch r;
    char err[256];
    if (vmfd_batch_from_store(b.x, b.n, b.d, labels, &r, err, sizeof err) != 0)
        abort();
    vmfd_batch_hash(&r);
    if (r.label_kind != b.label_kind || strcmp(r.sha256, b.sha256) != 0)
        abort();
    vmfd_batch_free(&r);
    free(labels);
    vmfd_batch_free(&b);
}

static void predict(const char *ctype, const void *body, size_t len)
{
    float *x = NULL;
    size_t n = 0, d = 0;
    long top_k = 4;
    vmfd_payload_error e;
    memset(&e, 0, sizeof e);
    if (vmfd_payload_parse_predict(ctype, body, len, &x, &n, &d, &top_k, &e) != 0) {
        check_error(&e);
        if (x)
            abort();
        return;
    }
    check_rows(x, n, d);
    if (top_k < 1)
        abort();
    free(x);
}

/* ---- raw HTTP, through vmfd's own parser ---- */

static const uint64_t header_limits[8] = {1, 16, 64, 128, 512, 4096, 16384, 1u << 20};
static const uint64_t body_limits[8] = {0, 1, 16, 256, 4096, 65536, 1u << 20, 16u << 20};

static void check_result(const drive_result *r, const vmfd_http_parse_limits *lim)
{
    if (r->status != 0 && r->status != 400 && r->status != 413 && r->status != 431 &&
        r->status != 501)
        abort();
    if (r->status && (r->error[0] == '\0' || r->detail[0] == '\0' || r->in_message))
        abort();
    if (r->n_req > DRIVE_MAX_REQ || r->continues > (int)r->n_req + 1)
        abort();
    for (size_t i = 0; i < r->n_req; i++) {
        const drive_req *q = &r->req[i];
        if (q->body_len > lim->max_body_bytes || q->method_name[0] == '\0' ||
            q->head != (q->method == VMFD_METHOD_HEAD) || (q->keep_alive & ~1) != 0)
            abort();
        /* Only the last request may close the connection. */
        if (!q->keep_alive && i + 1 != r->n_req)
            abort();
    }
}

static void report(const char *what, const drive_result *a, const drive_result *b)
{
    fprintf(stderr,
            "%s: %zu requests, status %d %s %s, in_message %d, continues %d\n"
            "     against %zu requests, status %d %s %s, in_message %d, continues %d\n",
            what, a->n_req, a->status, a->error, a->detail, a->in_message, a->continues, b->n_req,
            b->status, b->error, b->detail, b->in_message, b->continues);
}

/*
 * data[0]: limits (bits 0-2 max_header_bytes, 3-5 max_body_bytes);
 * data[1]: how the bytes are split into reads; the rest is the stream.
 * Fed whole, then in reads of pseudo-random sizes, then (short inputs) one
 * byte at a time: every split must give the same requests and refusal.
 */
static void http(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    vmfd_http_parse_limits lim = {header_limits[data[0] & 7], body_limits[(data[0] >> 3) & 7]};
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    size_t sizes[32];
    uint32_t x = 0x9e3779b9u ^ data[1] ^ ((uint32_t)len << 8);
    size_t span = (size_t)1 << ((data[1] >> 5) + 1); /* reads of 1..4..512 bytes */
    for (size_t i = 0; i < 32; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        sizes[i] = 1 + x % span;
    }
    drive_result whole, split;
    if (drive_parse(in, len, NULL, 0, &lim, &whole) != 0) {
        drive_free(&whole);
        return;
    }
    check_result(&whole, &lim);
    if (drive_parse(in, len, sizes, 32, &lim, &split) == 0) {
        if (!drive_same(&whole, &split)) {
            report("split reads differ", &split, &whole);
            abort();
        }
    }
    drive_free(&split);
    size_t one = 1;
    if (len <= 4096 && drive_parse(in, len, &one, 1, &lim, &split) == 0) {
        if (!drive_same(&whole, &split)) {
            report("one-byte reads differ", &split, &whole);
            abort();
        }
    }
    drive_free(&split);
    /* The bodies go on to the decoders, routed as vmfd routes them. */
    for (size_t i = 0; i < whole.n_req; i++) {
        const drive_req *q = &whole.req[i];
        if (strcmp(q->path, "/v1/predict") == 0)
            predict(q->content_type, q->body, q->body_len);
        else if (strncmp(q->path, "/v1/batches/", 12) == 0)
            ingest(q->content_type, q->body, q->body_len);
        char media[64];
        vmfd_payload_media_type(q->content_type, media, sizeof media);
        if (strlen(media) >= sizeof media)
            abort();
    }
    drive_free(&whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (mode & 0x80)
        http(data + 1, size - 1);
    else if (mode & 4)
        ingest(ctypes[mode & 3], body, len);
    else
        predict(ctypes[mode & 3], body, len);
    return 0;
}
