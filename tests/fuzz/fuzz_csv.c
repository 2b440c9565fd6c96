/*
 * fuzz_csv.c - libFuzzer target for the CSV reader. Any input is read or
 * refused with a one-line message; what is read is a finite float32 matrix
 * whose shape matches its element count.
 */
#include "vmfmm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vmf_array a;
    int rc = vmf_csv_read_mem(data, size, &a);
    if (rc != VMF_OK) {
        if (a.data || strchr(vmf_last_error(), '\n'))
            abort();
        return 0;
    }
    if (a.dtype != VMF_DTYPE_F32 || a.ndim != 2 || a.shape[0] == 0 ||
        a.count != a.shape[0] * a.shape[1])
        abort();
    for (size_t i = 0; i < a.count; i++)
        if (!isfinite(((float *)a.data)[i]))
            abort();
    vmf_array_free(&a);
    return 0;
}
