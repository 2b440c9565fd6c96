/*
 * npy_write.c - writing the NumPy .npy format (see npy.c for its layout):
 * bytes that match numpy.save, version 1.0 unless the header needs 2.0 or the
 * strings 3.0, written atomically to a path or into memory.
 */
#include "internal.h"
#include "npy_internal.h"

#include <errno.h>
#include <string.h>

/* ---- writing ---- */

/* Number of code points of a valid UTF-8 string, or -1 when it is not valid. */
static long long utf8_length(const char *s, size_t *bytes)
{
    size_t n = strlen(s), bad;
    if (!vmf__npy_utf8_valid((const unsigned char *)s, n, &bad))
        return -1;
    long long cps = 0;
    for (size_t i = 0; i < n; i++)
        cps += ((unsigned char)s[i] & 0xc0) != 0x80;
    *bytes = n;
    return cps;
}

static void utf8_to_utf32(const char *s, size_t width, unsigned char *dst)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (*u) {
        uint32_t cp;
        if (*u < 0x80) {
            cp = *u++;
        } else if ((*u & 0xe0) == 0xc0) {
            cp = (uint32_t)(u[0] & 0x1f) << 6 | (u[1] & 0x3f);
            u += 2;
        } else if ((*u & 0xf0) == 0xe0) {
            cp = (uint32_t)(u[0] & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
            u += 3;
        } else {
            cp = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3f) << 12 |
                 (uint32_t)(u[2] & 0x3f) << 6 | (u[3] & 0x3f);
            u += 4;
        }
        dst[4 * i] = (unsigned char)cp;
        dst[4 * i + 1] = (unsigned char)(cp >> 8);
        dst[4 * i + 2] = (unsigned char)(cp >> 16);
        dst[4 * i + 3] = (unsigned char)(cp >> 24);
        i++;
    }
    memset(dst + 4 * i, 0, 4 * (width - i));
}

typedef struct npy_plan {
    char header[NPY_ALIGN * 8]; /* prefix + dict + padding */
    size_t header_len;
    size_t esize, width;
    uint64_t data_bytes;
} npy_plan;

/* Validates `a` and lays out the header exactly as numpy.save (1.24) would. */
static int plan_write(const vmf_array *a, const char *what, npy_plan *pl)
{
    if (!a)
        return vmf__fail(VMF_EINVAL, what, "array is NULL");
    if ((unsigned)a->dtype > VMF_DTYPE_STR)
        return vmf__fail(VMF_EINVAL, what, "unknown dtype %d", (int)a->dtype);
    if (a->ndim > VMF_IO_MAX_NDIM)
        return vmf__fail(VMF_EINVAL, what, "array has %zu dimensions, at most %d are supported",
                         a->ndim, VMF_IO_MAX_NDIM);
    size_t count = 1;
    for (size_t i = 0; i < a->ndim; i++)
        if (vmf__mul_overflow(count, a->shape[i], &count) != 0)
            return vmf__fail(VMF_EINVAL, what, "shape overflows");
    if (count != a->count)
        return vmf__fail(VMF_EINVAL, what, "count %zu disagrees with the shape (%zu elements)",
                         a->count, count);
    if (count > 0 && !a->data)
        return vmf__fail(VMF_EINVAL, what, "array data is NULL");
    char descr[32];
    pl->width = 0;
    if (a->dtype == VMF_DTYPE_STR) {
        const char *const *s = a->data;
        size_t w = 1;
        for (size_t i = 0; i < count; i++) {
            size_t nb;
            long long cps;
            if (!s[i])
                return vmf__fail(VMF_EINVAL, what, "string %zu is NULL", i);
            if ((cps = utf8_length(s[i], &nb)) < 0)
                return vmf__fail(VMF_EINVAL, what, "string %zu is not valid UTF-8", i);
            if ((size_t)cps > w)
                w = (size_t)cps;
        }
        pl->width = w;
        if (vmf__mul_overflow(w, 4, &pl->esize) != 0)
            return vmf__fail(VMF_EINVAL, what, "strings too wide");
        snprintf(descr, sizeof descr, "<U%zu", w);
    } else {
        pl->esize = vmf_dtype_size(a->dtype);
        snprintf(descr, sizeof descr, "%s", vmf_dtype_name(a->dtype));
    }
    if (__builtin_mul_overflow((uint64_t)count, (uint64_t)pl->esize, &pl->data_bytes) ||
        pl->data_bytes > SIZE_MAX / 2)
        return vmf__fail(VMF_EINVAL, what, "array too large to serialize");

    char dict[NPY_ALIGN * 6], sh[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, vmf__npy_shape_str(a->shape, a->ndim, sh, sizeof sh));
    size_t dlen = (size_t)n;
    if (a->ndim > 0) {
        char first[32];
        size_t digits = (size_t)snprintf(first, sizeof first, "%zu", a->shape[0]);
        size_t grow = NPY_GROWTH_DIGITS - digits;
        memset(dict + dlen, ' ', grow);
        dlen += grow;
    }
    /* numpy: padlen = 64 - ((8 + lenbytes + hlen) % 64), hlen counting the '\n',
     * so a header already aligned still gets 64 spaces. With at most 8
     * dimensions the header always fits version 1.0's 16-bit length; version
     * 2.0 is there for completeness. */
    size_t hlen = dlen + 1;
    size_t lenbytes = 2;
    size_t pad = NPY_ALIGN - ((NPY_MAGIC_LEN + 2 + lenbytes + hlen) % NPY_ALIGN);
    if (hlen + pad > 65535) {
        lenbytes = 4;
        pad = NPY_ALIGN - ((NPY_MAGIC_LEN + 2 + lenbytes + hlen) % NPY_ALIGN);
    }
    unsigned char *o = (unsigned char *)pl->header;
    size_t total_hlen = hlen + pad;
    memcpy(o, NPY_MAGIC, NPY_MAGIC_LEN);
    o[6] = lenbytes == 2 ? 1 : 2;
    o[7] = 0;
    for (size_t i = 0; i < lenbytes; i++)
        o[8 + i] = (unsigned char)(total_hlen >> (8 * i));
    size_t off = NPY_MAGIC_LEN + 2 + lenbytes;
    memcpy(o + off, dict, dlen);
    memset(o + off + dlen, ' ', pad);
    o[off + dlen + pad] = '\n';
    pl->header_len = off + total_hlen;
    return VMF_OK;
}

typedef struct sink {
    FILE *fp;
    unsigned char *buf;
    size_t pos;
    const char *what;
} sink;

static int sink_put(sink *s, const void *p, size_t n)
{
    if (n == 0)
        return VMF_OK;
    if (s->fp) {
        if (fwrite(p, 1, n, s->fp) != n)
            return vmf__fail(VMF_EIO, s->what, "write failed: %s", strerror(errno));
    } else {
        memcpy(s->buf + s->pos, p, n);
    }
    s->pos += n;
    return VMF_OK;
}

static int emit(const vmf_array *a, const npy_plan *pl, sink *s)
{
    int rc;
    if ((rc = sink_put(s, pl->header, pl->header_len)) != VMF_OK)
        return rc;
    if (a->dtype != VMF_DTYPE_STR)
        return sink_put(s, a->data, (size_t)pl->data_bytes);
    const char *const *str = a->data;
    size_t per = pl->esize >= NPY_STR_CHUNK ? 1 : NPY_STR_CHUNK / pl->esize;
    if (per > a->count)
        per = a->count;
    if (a->count == 0)
        return VMF_OK;
    unsigned char *chunk = vmf__malloc(per * pl->esize);
    if (!chunk)
        return vmf__fail(VMF_ENOMEM, s->what, "out of memory converting strings");
    for (size_t done = 0; done < a->count; done += per) {
        size_t nel = a->count - done < per ? a->count - done : per;
        for (size_t e = 0; e < nel; e++)
            utf8_to_utf32(str[done + e], pl->width, chunk + e * pl->esize);
        if ((rc = sink_put(s, chunk, nel * pl->esize)) != VMF_OK)
            break;
    }
    vmf__free(chunk);
    return rc;
}

int vmf_npy_write(const char *path, const vmf_array *a)
{
    if (!path)
        return vmf__error(VMF_EINVAL, "vmf_npy_write: path is NULL");
    npy_plan *pl = vmf__malloc(sizeof *pl);
    if (!pl)
        return vmf__fail(VMF_ENOMEM, path, "out of memory");
    FILE *fp = NULL;
    char *tmp = NULL;
    int rc = plan_write(a, path, pl);
    if (rc == VMF_OK)
        rc = vmf__atomic_open(path, &fp, &tmp);
    if (rc == VMF_OK) {
        sink s = {fp, NULL, 0, path};
        rc = emit(a, pl, &s);
        if (rc == VMF_OK)
            rc = vmf__atomic_commit(fp, tmp, path);
        else
            vmf__atomic_abort(fp, tmp);
    }
    vmf__free(pl);
    return rc;
}

int vmf_npy_write_mem(const vmf_array *a, void **buf, size_t *len)
{
    if (!buf || !len)
        return vmf__error(VMF_EINVAL, "vmf_npy_write_mem: buf or len is NULL");
    *buf = NULL;
    *len = 0;
    npy_plan *pl = vmf__malloc(sizeof *pl);
    if (!pl)
        return vmf__error(VMF_ENOMEM, ".npy: out of memory");
    int rc = plan_write(a, ".npy", pl);
    if (rc == VMF_OK) {
        size_t total = pl->header_len + (size_t)pl->data_bytes;
        unsigned char *b = vmf__malloc(total);
        if (!b) {
            rc = vmf__error(VMF_ENOMEM, ".npy: out of memory for %zu bytes", total);
        } else {
            sink s = {NULL, b, 0, ".npy"};
            rc = emit(a, pl, &s);
            if (rc == VMF_OK) {
                *buf = b;
                *len = total;
            } else {
                vmf__free(b);
            }
        }
    }
    vmf__free(pl);
    return rc;
}
