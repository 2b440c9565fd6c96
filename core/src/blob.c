/*
 * blob.c - the little-endian byte buffers, the FNV-1a checksum and the
 * versioned blob framing that the binary state formats (stepwise_io.c,
 * classifier_io.c) are written in.
 */
#include "blob.h"

#include "internal.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

/* ---- byte buffers ---- */

static void wbuf_reserve(vmf__wbuf *b, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) {
        if (cap > SIZE_MAX / 2) {
            cap = b->len + n;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = vmf__realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void vmf__wbuf_bytes(vmf__wbuf *b, const void *src, size_t n)
{
    wbuf_reserve(b, n);
    if (b->oom || n == 0)
        return;
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void vmf__wbuf_u32(vmf__wbuf *b, uint32_t v)
{
    uint8_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    vmf__wbuf_bytes(b, t, 4);
}

void vmf__wbuf_u64(vmf__wbuf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    vmf__wbuf_bytes(b, t, 8);
}

void vmf__wbuf_f64(vmf__wbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    vmf__wbuf_u64(b, u);
}

void vmf__wbuf_f64s(vmf__wbuf *b, const double *v, size_t n)
{
    for (size_t i = 0; i < n && !b->oom; i++)
        vmf__wbuf_f64(b, v[i]);
}

void vmf__wbuf_f32s(vmf__wbuf *b, const float *v, size_t n)
{
    for (size_t i = 0; i < n && !b->oom; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        vmf__wbuf_u32(b, u);
    }
}

int vmf__rbuf_has(const vmf__rbuf *b, size_t count, size_t size)
{
    size_t bytes;
    if (b->bad || vmf__mul_overflow(count, size, &bytes) != 0)
        return 0;
    return bytes <= b->len - b->pos;
}

int vmf__rbuf_bytes(vmf__rbuf *b, void *dst, size_t n)
{
    if (b->bad || n > b->len - b->pos) {
        b->bad = 1;
        memset(dst, 0, n);
        return -1;
    }
    memcpy(dst, b->p + b->pos, n);
    b->pos += n;
    return 0;
}

uint32_t vmf__rbuf_u32(vmf__rbuf *b)
{
    uint8_t t[4];
    vmf__rbuf_bytes(b, t, 4);
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)t[i] << (8 * i);
    return v;
}

uint64_t vmf__rbuf_u64(vmf__rbuf *b)
{
    uint8_t t[8];
    vmf__rbuf_bytes(b, t, 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)t[i] << (8 * i);
    return v;
}

double vmf__rbuf_f64(vmf__rbuf *b)
{
    uint64_t u = vmf__rbuf_u64(b);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

void vmf__rbuf_f64s(vmf__rbuf *b, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = vmf__rbuf_f64(b);
}

void vmf__rbuf_f32s(vmf__rbuf *b, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = vmf__rbuf_u32(b);
        memcpy(&v[i], &u, sizeof u);
    }
}

uint64_t vmf__fnv1a64(const void *p, size_t n)
{
    const uint8_t *q = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= q[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int vmf__blob_out_args(const char *fn, void **buf, size_t *len, const void *obj,
                       const char *obj_name)
{
    if (!buf || !len)
        return vmf__error(VMF_EINVAL, "%s: buf or len is NULL", fn);
    *buf = NULL;
    *len = 0;
    if (!obj)
        return vmf__error(VMF_EINVAL, "%s: %s is NULL", fn, obj_name);
    return VMF_OK;
}

int vmf__blob_frame(const char magic[8], uint32_t version, const vmf__wbuf *payload, void **buf,
                    size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (payload->oom)
        return vmf__error(VMF_ENOMEM, "save: out of memory");
    vmf__wbuf b = {0};
    vmf__wbuf_bytes(&b, magic, 8);
    vmf__wbuf_u32(&b, version);
    vmf__wbuf_u32(&b, 0);
    vmf__wbuf_u64(&b, (uint64_t)payload->len);
    vmf__wbuf_bytes(&b, payload->p, payload->len);
    if (!b.oom)
        vmf__wbuf_u64(&b, vmf__fnv1a64(b.p, b.len));
    if (b.oom) {
        vmf__free(b.p);
        return vmf__error(VMF_ENOMEM, "save: out of memory for a %zu-byte state", payload->len);
    }
    *buf = b.p;
    *len = b.len;
    return VMF_OK;
}

int vmf__blob_open(const char magic[8], uint32_t version, const void *buf, size_t len,
                   const char *what, vmf__rbuf *payload)
{
    memset(payload, 0, sizeof *payload);
    if (!buf)
        return vmf__error(VMF_EINVAL, "%s: buffer is NULL", what);
    const size_t head = 8 + 4 + 4 + 8, tail = 8;
    if (len < head + tail)
        return vmf__error(VMF_EFORMAT, "%s: %zu bytes is too short for a saved state", what, len);
    const uint8_t *p = buf;
    if (memcmp(p, magic, 8) != 0)
        return vmf__error(VMF_EFORMAT, "%s: not a saved state (bad magic)", what);
    vmf__rbuf r = {p, len, 8, 0};
    uint32_t ver = vmf__rbuf_u32(&r);
    uint32_t flags = vmf__rbuf_u32(&r);
    uint64_t plen = vmf__rbuf_u64(&r);
    if (ver != version)
        return vmf__error(VMF_EFORMAT,
                          "%s: format version %" PRIu32 ", this library reads %" PRIu32, what, ver,
                          version);
    if (flags != 0)
        return vmf__error(VMF_EFORMAT, "%s: unknown flags 0x%" PRIx32, what, flags);
    if (plen != (uint64_t)(len - head - tail))
        return vmf__error(VMF_EFORMAT,
                          "%s: payload length %" PRIu64 " does not match the %zu bytes given", what,
                          plen, len - head - tail);
    vmf__rbuf t = {p, len, len - tail, 0};
    uint64_t sum = vmf__rbuf_u64(&t);
    if (sum != vmf__fnv1a64(p, len - tail))
        return vmf__error(VMF_EFORMAT, "%s: checksum mismatch (corrupt or truncated state)", what);
    payload->p = p + head;
    payload->len = (size_t)plen;
    payload->pos = 0;
    payload->bad = 0;
    return VMF_OK;
}
