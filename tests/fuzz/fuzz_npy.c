/*
 * fuzz_npy.c - libFuzzer target for the .npy reader. Any input must be read
 * or refused with a one-line message, never crash or leak; an input that is
 * read must survive write -> read unchanged (the writer's output is always
 * readable and the reader loses nothing), and float conversion must not
 * crash either.
 */
#include "vmfmm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const vmf_array *a, const vmf_array *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->count != b->count ||
        memcmp(a->shape, b->shape, a->ndim * sizeof a->shape[0]) != 0)
        abort();
    if (a->dtype == VMF_DTYPE_STR) {
        for (size_t i = 0; i < a->count; i++)
            if (strcmp(((char **)a->data)[i], ((char **)b->data)[i]) != 0)
                abort();
    } else if (a->count && memcmp(a->data, b->data, a->count * vmf_dtype_size(a->dtype)) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vmf_array a;
    int rc = vmf_npy_read_mem(data, size, &a);
    if (rc != VMF_OK) {
        const char *msg = vmf_last_error();
        if (a.data || !*msg || strchr(msg, '\n'))
            abort();
        return 0;
    }
    void *buf;
    size_t len;
    if (vmf_npy_write_mem(&a, &buf, &len) == VMF_OK) {
        vmf_array b;
        if (vmf_npy_read_mem(buf, len, &b) != VMF_OK)
            abort();
        same(&a, &b);
        vmf_array_free(&b);
        free(buf);
    }
    float *x;
    size_t n, d;
    if (vmf_array_to_f32(&a, &x, &n, &d) == VMF_OK)
        free(x);
    vmf_array_free(&a);
    return 0;
}
