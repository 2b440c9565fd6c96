/*
 * fuzz_npz.c - libFuzzer target for the .npz reader (libzip from memory, the
 * path the daemon's HTTP bodies take). Members "X" and "y" are read; whatever
 * is read is written to a new archive and must read back identically.
 */
#include "vmfmm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vmf_array x, y;
    int rx = vmf_npz_read_mem(data, size, "X", &x);
    if (rx != VMF_OK && (x.data || strchr(vmf_last_error(), '\n')))
        abort();
    int ry = vmf_npz_read_mem(data, size, "y", &y);
    if (ry != VMF_OK && y.data)
        abort();
    if (rx == VMF_OK) {
        const char *names[] = {"X"};
        const vmf_array *arrays[] = {&x};
        void *buf;
        size_t len;
        if (vmf_npz_write_mem(names, arrays, 1, &buf, &len) == VMF_OK) {
            vmf_array b;
            if (vmf_npz_read_mem(buf, len, "X", &b) != VMF_OK || b.count != x.count ||
                b.dtype != x.dtype)
                abort();
            if (x.dtype != VMF_DTYPE_STR && x.count &&
                memcmp(b.data, x.data, x.count * vmf_dtype_size(x.dtype)) != 0)
                abort();
            vmf_array_free(&b);
            free(buf);
        }
    }
    vmf_array_free(&x);
    vmf_array_free(&y);
    return 0;
}
