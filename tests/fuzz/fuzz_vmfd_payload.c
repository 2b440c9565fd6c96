/*
 * fuzz_vmfd_payload.c - libFuzzer target for vmfd's request handling without
 * sockets: the HTTP/1.1 parser (llhttp, as vmfd configures it), the routing
 * of /v1/predict and /v1/batches/{key} to the body decoders, and the
 * decoders themselves (.npz, .npy, JSON) for ingest and predict.
 *
 * The first input byte chooses the mode: bit 0x80 feeds the rest to llhttp as
 * a raw request and decodes its body as the route and Content-Type say;
 * otherwise bits 0-1 pick the content type and bit 2 ingest or predict, and
 * the rest is the body. Anything must be decoded or refused with a 4xx/5xx
 * status and a message, never crash or leak; a decoded batch must have unit
 * rows, survive the store round trip (rows + labels JSON) with the same
 * content hash, and a decoded predict body must have finite unit rows.
 */
#include "vmfd_payload.h"

#include <llhttp.h>
#include <math.h>
#include <stdint.h>
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

/* ---- raw HTTP ---- */

typedef struct req {
    char url[512];
    size_t url_len;
    char field[64];
    size_t field_len;
    int in_ctype;
    char ctype[128];
    size_t ctype_len;
    char *body;
    size_t body_len;
    int complete;
} req;

static void append(char *dst, size_t *len, size_t cap, const char *at, size_t n)
{
    size_t room = cap - 1 - *len;
    if (n > room)
        n = room;
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    req *r = p->data;
    append(r->url, &r->url_len, sizeof r->url, at, n);
    return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
    req *r = p->data;
    append(r->field, &r->field_len, sizeof r->field, at, n);
    return 0;
}

static int on_field_done(llhttp_t *p)
{
    req *r = p->data;
    r->in_ctype = strcasecmp(r->field, "content-type") == 0;
    r->field_len = 0;
    r->field[0] = '\0';
    return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
    req *r = p->data;
    if (r->in_ctype)
        append(r->ctype, &r->ctype_len, sizeof r->ctype, at, n);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    req *r = p->data;
    char *q = realloc(r->body, r->body_len + n + 1);
    if (!q)
        return -1;
    memcpy(q + r->body_len, at, n);
    r->body = q;
    r->body_len += n;
    return 0;
}

static int on_complete(llhttp_t *p)
{
    req *r = p->data;
    r->complete = 1;
    return HPE_PAUSED; /* one request at a time, as vmfd does */
}

static void http(const char *data, size_t size)
{
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_url = on_url;
    s.on_header_field = on_field;
    s.on_header_field_complete = on_field_done;
    s.on_header_value = on_value;
    s.on_body = on_body;
    s.on_message_complete = on_complete;
    llhttp_t p;
    llhttp_init(&p, HTTP_REQUEST, &s);
    req r;
    memset(&r, 0, sizeof r);
    p.data = &r;
    llhttp_errno_t rc = llhttp_execute(&p, data, size);
    if (rc != HPE_OK && rc != HPE_PAUSED && llhttp_get_error_reason(&p) == NULL)
        abort();
    if (r.complete) {
        char *q = strchr(r.url, '?');
        if (q)
            *q = '\0';
        if (strcmp(r.url, "/v1/predict") == 0)
            predict(r.ctype, r.body, r.body_len);
        else if (strncmp(r.url, "/v1/batches/", 12) == 0)
            ingest(r.ctype, r.body, r.body_len);
        char media[64];
        vmfd_payload_media_type(r.ctype, media, sizeof media);
        if (strlen(media) >= sizeof media)
            abort();
    }
    free(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (mode & 0x80)
        http(body, len);
    else if (mode & 4)
        ingest(ctypes[mode & 3], body, len);
    else
        predict(ctypes[mode & 3], body, len);
    return 0;
}
