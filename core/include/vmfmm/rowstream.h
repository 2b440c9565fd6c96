/*
 * vmfmm/rowstream.h - reading a 2-D .npy matrix a block of rows at a time,
 * for files larger than memory.
 *
 * Only the header is parsed on open (with the checks of vmfmm/io.h, except
 * the VMF_IO_MAX_BYTES cap, which bounds loading, not streaming); rows are
 * then read with pread(2) into the caller's buffer, converted to float32
 * (<f8 rounds to nearest, as vmf_array_to_f32 does). Blocked reads rather
 * than mmap: a mapping of the whole file would count against an address
 * space limit (ulimit -v) and its page faults are harder to overlap; with
 * pread the process needs only its block, and the page cache serves repeated
 * passes when the file fits in RAM.
 *
 * Supported: C-order 2-D arrays of <f4 or <f8, versions 1.0 to 3.0.
 * Thread safety: a reader may be used by one thread at a time.
 */
#ifndef VMFMM_ROWSTREAM_H
#define VMFMM_ROWSTREAM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_row_reader vmf_row_reader;

/*
 * Opens path. VMF_EIO when it cannot be opened or is not a regular file,
 * VMF_EFORMAT (message naming the problem) for a malformed header, another
 * dtype or rank, or data shorter than the shape.
 */
VMF_API int vmf_row_reader_open(const char *path, vmf_row_reader **out);
VMF_API void vmf_row_reader_close(vmf_row_reader *r);

VMF_API size_t vmf_row_reader_rows(const vmf_row_reader *r);
VMF_API size_t vmf_row_reader_dim(const vmf_row_reader *r);

/*
 * Reads rows [first, first + rows) into x [rows][d] as float32. VMF_EINVAL
 * for a range past the end, VMF_EIO when the system refuses (the message
 * names the file and offset), VMF_EFORMAT when the file shrank meanwhile,
 * VMF_ERANGE when an <f8 value does not fit float32.
 */
VMF_API int vmf_row_reader_read(vmf_row_reader *r, size_t first, size_t rows, float *x);

#ifdef __cplusplus
}
#endif
#endif
