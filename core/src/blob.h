/*
 * blob.h - the binary state formats' building blocks (blob.c): little-endian
 * byte buffers that record failure stickily, the FNV-1a checksum, and the
 * framing of a versioned, checksummed blob. Never installed.
 */
#ifndef VMFMM_BLOB_H
#define VMFMM_BLOB_H

#include <stddef.h>
#include <stdint.h>

/* ---- little-endian byte buffers ---- */

typedef struct vmf__wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom; /* sticky: an allocation failed */
} vmf__wbuf;

void vmf__wbuf_bytes(vmf__wbuf *b, const void *src, size_t n);
void vmf__wbuf_u32(vmf__wbuf *b, uint32_t v);
void vmf__wbuf_u64(vmf__wbuf *b, uint64_t v);
void vmf__wbuf_f64(vmf__wbuf *b, double v);
void vmf__wbuf_f64s(vmf__wbuf *b, const double *v, size_t n);
void vmf__wbuf_f32s(vmf__wbuf *b, const float *v, size_t n);

typedef struct vmf__rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad; /* sticky: read past the end */
} vmf__rbuf;

int vmf__rbuf_bytes(vmf__rbuf *b, void *dst, size_t n);
uint32_t vmf__rbuf_u32(vmf__rbuf *b);
uint64_t vmf__rbuf_u64(vmf__rbuf *b);
double vmf__rbuf_f64(vmf__rbuf *b);
/* 1 when at least count * size more bytes remain (checked for overflow). */
int vmf__rbuf_has(const vmf__rbuf *b, size_t count, size_t size);
void vmf__rbuf_f64s(vmf__rbuf *b, double *v, size_t n);
void vmf__rbuf_f32s(vmf__rbuf *b, float *v, size_t n);

/* FNV-1a 64 of n bytes: the integrity check of the binary formats. */
uint64_t vmf__fnv1a64(const void *p, size_t n);

/*
 * The argument checks of a save function `fn`: buf and len must not be NULL
 * (then both are cleared), nor obj (named obj_name). VMF_EINVAL otherwise.
 */
int vmf__blob_out_args(const char *fn, void **buf, size_t *len, const void *obj,
                       const char *obj_name);

/*
 * Frames a payload as a versioned blob: magic [8], u32 version, u32 0,
 * u64 payload length, payload, u64 FNV-1a of everything before it. On
 * success *buf (malloc'ed via vmf__malloc) and *len are set.
 */
int vmf__blob_frame(const char magic[8], uint32_t version, const vmf__wbuf *payload, void **buf,
                    size_t *len);

/*
 * Checks a blob's magic, version, length and checksum; on success `payload`
 * reads its payload. VMF_EFORMAT with a message naming `what` otherwise.
 */
int vmf__blob_open(const char magic[8], uint32_t version, const void *buf, size_t len,
                   const char *what, vmf__rbuf *payload);

#endif
