/*
 * vmfd_sha256.h - SHA-256 (FIPS 180-4), used to fingerprint the canonical
 * content of a batch so that a re-sent key is recognised as the same batch.
 */
#ifndef VMFD_SHA256_H
#define VMFD_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct vmfd_sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    unsigned char buf[64];
    size_t fill;
} vmfd_sha256;

void vmfd_sha256_init(vmfd_sha256 *s);
void vmfd_sha256_update(vmfd_sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits plus NUL into hex[65]. */
void vmfd_sha256_final_hex(vmfd_sha256 *s, char hex[65]);

#endif
