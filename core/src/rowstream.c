/*
 * rowstream.c - the blocked .npy row reader of vmfmm/rowstream.h.
 *
 * The header goes through the same checked parser as vmf_npy_read
 * (vmf__npy_read_header), fed by pread from offset 0; the data is never
 * loaded whole. <f8 rows are read through a small staging buffer and
 * narrowed to float32 with the rounding of vmf_array_to_f32.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vmf_row_reader {
    int fd;
    char *path;
    vmf_dtype dtype;
    size_t n, d, esize;
    uint64_t offset; /* of the first element */
    double *stage;   /* <f8 staging, stage_cap doubles */
    size_t stage_cap;
};

typedef struct fd_src {
    int fd;
    uint64_t pos;
    const char *what;
} fd_src;

/* Reads exactly n bytes at off, retrying short reads and EINTR. */
static int pread_all(int fd, void *dst, size_t n, uint64_t off, const char *what)
{
    unsigned char *p = dst;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return vmf__fail(VMF_EIO, what, "read of %zu bytes at offset %llu failed: %s", n,
                             (unsigned long long)off, strerror(errno));
        }
        if (got == 0)
            return vmf__fail(VMF_EFORMAT, what,
                             "file ended at offset %llu (was it truncated while being read?)",
                             (unsigned long long)off);
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return VMF_OK;
}

static int fd_read(void *ctx, void *dst, size_t n)
{
    fd_src *s = ctx;
    int rc = pread_all(s->fd, dst, n, s->pos, s->what);
    if (rc == VMF_OK)
        s->pos += n;
    return rc;
}

void vmf_row_reader_close(vmf_row_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    vmf__free(r->path);
    vmf__free(r->stage);
    vmf__free(r);
}

int vmf_row_reader_open(const char *path, vmf_row_reader **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_row_reader_open: out is NULL");
    *out = NULL;
    if (!path)
        return vmf__error(VMF_EINVAL, "vmf_row_reader_open: path is NULL");
    vmf_row_reader *r = vmf__calloc(1, sizeof *r);
    size_t plen = strlen(path);
    if (r)
        r->path = vmf__malloc(plen + 1);
    if (!r || !r->path) {
        vmf__free(r);
        return vmf__error(VMF_ENOMEM, "vmf_row_reader_open: out of memory");
    }
    memcpy(r->path, path, plen + 1);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = VMF_OK;
    struct stat st;
    if (r->fd < 0) {
        rc = vmf__fail(VMF_EIO, path, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (fstat(r->fd, &st) != 0) {
        rc = vmf__fail(VMF_EIO, path, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = vmf__fail(VMF_EIO, path, "not a regular file");
        goto fail;
    }
    fd_src src = {r->fd, 0, path};
    size_t ndim, shape[VMF_IO_MAX_NDIM];
    rc = vmf__npy_read_header(fd_read, &src, (uint64_t)st.st_size, path, &r->dtype, &ndim, shape,
                              &r->offset);
    if (rc != VMF_OK)
        goto fail;
    if (r->dtype != VMF_DTYPE_F32 && r->dtype != VMF_DTYPE_F64) {
        rc = vmf__fail(VMF_EFORMAT, path, "dtype %s cannot be streamed (need <f4 or <f8)",
                       vmf_dtype_name(r->dtype));
        goto fail;
    }
    if (ndim != 2 || shape[1] == 0) {
        rc = vmf__fail(VMF_EFORMAT, path, "need a 2-D array with at least one column (ndim %zu)",
                       ndim);
        goto fail;
    }
    r->n = shape[0];
    r->d = shape[1];
    r->esize = vmf_dtype_size(r->dtype);
    *out = r;
    return VMF_OK;
fail:
    vmf_row_reader_close(r);
    return rc;
}

size_t vmf_row_reader_rows(const vmf_row_reader *r)
{
    return r ? r->n : 0;
}

size_t vmf_row_reader_dim(const vmf_row_reader *r)
{
    return r ? r->d : 0;
}

int vmf_row_reader_read(vmf_row_reader *r, size_t first, size_t rows, float *x)
{
    if (!r || (rows > 0 && !x))
        return vmf__error(VMF_EINVAL, "vmf_row_reader_read: reader and x are required");
    if (first > r->n || rows > r->n - first)
        return vmf__error(VMF_EINVAL,
                          "vmf_row_reader_read: rows [%zu, %zu) past the %zu rows of %s", first,
                          first + rows, r->n, r->path);
    /* The header check proved n·d·esize fits in the file, so these products do not overflow. */
    uint64_t off = r->offset + (uint64_t)first * r->d * r->esize;
    size_t count = rows * r->d;
    if (r->dtype == VMF_DTYPE_F32)
        return pread_all(r->fd, x, count * sizeof *x, off, r->path);
    if (!r->stage) {
        r->stage_cap = 1 << 16;
        r->stage = vmf__malloc_array(r->stage_cap, sizeof *r->stage);
        if (!r->stage)
            return vmf__error(VMF_ENOMEM, "vmf_row_reader_read: out of memory");
    }
    for (size_t done = 0; done < count;) {
        size_t now = count - done < r->stage_cap ? count - done : r->stage_cap;
        int rc = pread_all(r->fd, r->stage, now * sizeof *r->stage, off + done * sizeof(double),
                           r->path);
        if (rc != VMF_OK)
            return rc;
        for (size_t j = 0; j < now; j++) {
            double v = r->stage[j];
            if (isfinite(v) && fabs(v) > FLT_MAX)
                return vmf__fail(VMF_ERANGE, r->path, "row %zu column %zu: %g overflows float32",
                                 first + (done + j) / r->d, (done + j) % r->d, v);
            x[done + j] = (float)v;
        }
        done += now;
    }
    return VMF_OK;
}
