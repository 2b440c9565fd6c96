/*
 * npz.c - NumPy .npz archives (a zip of .npy members) through libzip, from a
 * file or from memory (the daemon receives them as HTTP bodies).
 *
 * Reading streams the member straight into the array through the .npy reader,
 * with the member's declared uncompressed size as the length every header size
 * is checked against. A zip bomb cannot make us allocate: the declared size
 * must be within VMF_IO_MAX_BYTES and physically possible for the compressed
 * size (deflate cannot expand more than 1032:1; a stored member's sizes are
 * equal), and the bytes that actually come out must equal the declared size,
 * which libzip's CRC check then confirms. vmf_npz_read_mem_max adds the
 * caller's own bound on the declared size, also checked before inflating.
 * Inflating streams into the array's final buffer: no second copy.
 *
 * Writing builds the archive in memory (each member deflated, with a fixed
 * 1980-01-01 timestamp so that equal arrays give equal bytes) and, for a
 * file, replaces the target atomically.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

/* Deflate emits at least 2 bits per 258-byte match: 1032:1 at best; the slack
 * covers block headers of tiny members. */
#define DEFLATE_MAX_RATIO 1032u
#define DEFLATE_SLACK     1024u

static int ends_with_npy(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && strcmp(s + n - 4, ".npy") == 0;
}

/* ---- reading ---- */

typedef struct member_src {
    zip_file_t *zf;
    const char *what;
} member_src;

static int member_read(void *ctx, void *dst, size_t n)
{
    member_src *m = ctx;
    size_t got = 0;
    while (got < n) {
        zip_int64_t r = zip_fread(m->zf, (char *)dst + got, (zip_uint64_t)(n - got));
        if (r < 0)
            return vmf__fail(VMF_EFORMAT, m->what, "cannot decompress: %s",
                             zip_file_strerror(m->zf));
        if (r == 0)
            return vmf__fail(
                VMF_EFORMAT, m->what,
                "decompresses to fewer bytes than its declared size (corrupt archive)");
        got += (size_t)r;
    }
    return VMF_OK;
}

/* Lists up to a few member names into buf, for "no such member" messages. */
static void member_names(zip_t *za, char *buf, size_t cap)
{
    zip_int64_t n = zip_get_num_entries(za, 0);
    size_t o = 0;
    buf[0] = '\0';
    for (zip_int64_t i = 0; i < n && i < 6 && o + 1 < cap; i++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)i, 0);
        if (i == 5)
            o += (size_t)snprintf(buf + o, cap - o, ", ...");
        else
            o += (size_t)snprintf(buf + o, cap - o, "%s%.40s", i ? ", " : "", nm ? nm : "?");
    }
    if (n == 0)
        snprintf(buf, cap, "none");
}

/* Reads member `name` of the open archive za; `where` names the archive. */
static int read_member(zip_t *za, const char *where, const char *name, uint64_t max_bytes,
                       vmf_array *out)
{
    char want[2][256], what[400];
    size_t tries = 0;
    if (!name || !*name || strlen(name) > 200)
        return vmf__error(VMF_EINVAL, "%s: bad member name", where);
    if (ends_with_npy(name)) {
        snprintf(want[tries++], sizeof want[0], "%s", name);
    } else {
        snprintf(want[tries++], sizeof want[0], "%s.npy", name);
        snprintf(want[tries++], sizeof want[0], "%s", name);
    }
    zip_int64_t idx = -1;
    size_t t;
    for (t = 0; t < tries && idx < 0; t++)
        idx = zip_name_locate(za, want[t], 0);
    if (idx < 0) {
        char names[300];
        member_names(za, names, sizeof names);
        return vmf__error(VMF_ENOTFOUND, "%s: has no member %s (members: %s)", where, want[0],
                          names);
    }
    snprintf(what, sizeof what, "%s in %s", want[t - 1], where);

    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, (zip_uint64_t)idx, 0, &st) != 0)
        return vmf__fail(VMF_EFORMAT, what, "cannot read its directory entry: %s",
                         zip_error_strerror(zip_get_error(za)));
    const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need)
        return vmf__fail(VMF_EFORMAT, what, "directory entry lacks its sizes");
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
        return vmf__fail(VMF_EFORMAT, what, "member is encrypted, which is not supported");
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
        return vmf__fail(VMF_EFORMAT, what,
                         "compressed with zip method %u; only stored (0) and deflated (8) members "
                         "are supported",
                         (unsigned)st.comp_method);
    if (st.size > VMF_IO_MAX_BYTES)
        return vmf__fail(VMF_EFORMAT, what,
                         "declares %llu uncompressed bytes, above the %llu-byte limit "
                         "(VMF_IO_MAX_BYTES)",
                         (unsigned long long)st.size, (unsigned long long)VMF_IO_MAX_BYTES);
    if (st.size > max_bytes)
        return vmf__fail(VMF_ERANGE, what,
                         "declares %llu uncompressed bytes, above this reader's limit of %llu "
                         "(refused before inflating)",
                         (unsigned long long)st.size, (unsigned long long)max_bytes);
    if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size)
        return vmf__fail(VMF_EFORMAT, what,
                         "stored member declares %llu bytes but occupies %llu (corrupt archive)",
                         (unsigned long long)st.size, (unsigned long long)st.comp_size);
    if (st.comp_method == ZIP_CM_DEFLATE &&
        st.size > (uint64_t)st.comp_size * DEFLATE_MAX_RATIO + DEFLATE_SLACK)
        return vmf__fail(VMF_EFORMAT, what,
                         "declares %llu uncompressed bytes from %llu compressed, beyond deflate's "
                         "1032:1 limit (zip bomb or corrupt archive)",
                         (unsigned long long)st.size, (unsigned long long)st.comp_size);

    zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)idx, 0);
    if (!zf)
        return vmf__fail(VMF_EFORMAT, what, "cannot open: %s",
                         zip_error_strerror(zip_get_error(za)));
    member_src src = {zf, what};
    int rc = vmf__npy_read_stream(member_read, &src, st.size, what, out);
    if (rc == VMF_OK) {
        /* Reading past the declared end makes libzip verify the size and CRC. */
        char extra;
        zip_int64_t r = zip_fread(zf, &extra, 1);
        if (r != 0) {
            rc = r > 0 ? vmf__fail(VMF_EFORMAT, what,
                                   "decompresses to more than its declared %llu bytes (corrupt "
                                   "archive)",
                                   (unsigned long long)st.size)
                       : vmf__fail(VMF_EFORMAT, what, "integrity check failed: %s",
                                   zip_file_strerror(zf));
            vmf_array_free(out);
        }
    }
    zip_fclose(zf);
    return rc;
}

/* Maps a libzip open error to a status and message. */
static int open_error(const char *where, zip_error_t *ze)
{
    int code = zip_error_code_zip(ze);
    int rc = VMF_EFORMAT;
    const char *why;
    switch (code) {
    case ZIP_ER_NOZIP:
        why = "not a zip archive (an .npz is a zip of .npy files)";
        break;
    case ZIP_ER_INCONS:
        why = "inconsistent zip archive (truncated or corrupt)";
        break;
    case ZIP_ER_OPEN:
    case ZIP_ER_READ:
    case ZIP_ER_SEEK:
        rc = VMF_EIO;
        why = zip_error_strerror(ze);
        break;
    case ZIP_ER_MEMORY:
        rc = VMF_ENOMEM;
        why = "out of memory";
        break;
    default:
        why = zip_error_strerror(ze);
        break;
    }
    return vmf__fail(rc, where, "%s", why);
}

int vmf_npz_read(const char *path, const char *name, vmf_array *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_npz_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path || !name)
        return vmf__error(VMF_EINVAL, "vmf_npz_read: path or name is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return vmf__fail(VMF_EIO, path, "cannot open: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return vmf__fail(VMF_EIO, path, "not a regular file");
    if (sb.st_size == 0)
        return vmf__fail(VMF_EFORMAT, path, "empty file, not a zip archive");
    int err = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        int rc = open_error(path, &ze);
        zip_error_fini(&ze);
        return rc;
    }
    int rc = read_member(za, path, name, VMF_IO_MAX_BYTES, out);
    zip_discard(za);
    return rc;
}

int vmf_npz_read_mem(const void *buf, size_t len, const char *name, vmf_array *out)
{
    return vmf_npz_read_mem_max(buf, len, name, VMF_IO_MAX_BYTES, out);
}

int vmf_npz_read_mem_max(const void *buf, size_t len, const char *name, uint64_t max_bytes,
                         vmf_array *out)
{
    static const char where[] = ".npz data";
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_npz_read_mem: out is NULL");
    memset(out, 0, sizeof *out);
    if ((!buf && len > 0) || !name)
        return vmf__error(VMF_EINVAL, "vmf_npz_read_mem: buf or name is NULL");
    if (len == 0)
        return vmf__fail(VMF_EFORMAT, where, "empty, not a zip archive");
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
    if (!src) {
        int rc = open_error(where, &ze);
        zip_error_fini(&ze);
        return rc;
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        zip_source_free(src);
        int rc = open_error(where, &ze);
        zip_error_fini(&ze);
        return rc;
    }
    zip_error_fini(&ze);
    int rc = read_member(za, where, name, max_bytes, out);
    zip_discard(za);
    return rc;
}

/* ---- writing ---- */

/* The 22-byte end-of-central-directory record of an archive with no members. */
static const unsigned char empty_zip[22] = {'P', 'K', 5, 6};

static int build(const char *const *names, const vmf_array *const *arrays, size_t count,
                 const char *what, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (count > 0 && (!names || !arrays))
        return vmf__fail(VMF_EINVAL, what, "names or arrays is NULL");
    for (size_t i = 0; i < count; i++) {
        if (!names[i] || !*names[i] || strlen(names[i]) > 200)
            return vmf__fail(VMF_EINVAL, what, "member name %zu is empty, NULL or too long", i);
        if (!arrays[i])
            return vmf__fail(VMF_EINVAL, what, "array %zu is NULL", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return vmf__fail(VMF_EINVAL, what, "member name '%s' appears twice", names[i]);
    }
    if (count == 0) {
        void *b = vmf__malloc(sizeof empty_zip);
        if (!b)
            return vmf__fail(VMF_ENOMEM, what, "out of memory");
        memcpy(b, empty_zip, sizeof empty_zip);
        *buf = b;
        *len = sizeof empty_zip;
        return VMF_OK;
    }

    int rc = VMF_OK;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_t *za = NULL;
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) {
        rc = vmf__fail(VMF_ENOMEM, what, "cannot create the archive: %s", zip_error_strerror(&ze));
        goto out;
    }
    za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (!za) {
        rc = vmf__fail(VMF_ENOMEM, what, "cannot create the archive: %s", zip_error_strerror(&ze));
        zip_source_free(src);
        src = NULL;
        goto out;
    }
    /* Keep the buffer source alive past zip_close to read the result out. */
    zip_source_keep(src);
    for (size_t i = 0; i < count; i++) {
        void *npy;
        size_t npy_len;
        char mname[256];
        snprintf(mname, sizeof mname, ends_with_npy(names[i]) ? "%s" : "%s.npy", names[i]);
        if ((rc = vmf_npy_write_mem(arrays[i], &npy, &npy_len)) != VMF_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", vmf_last_error());
            rc = vmf__fail(rc, what, "member %s: %s", mname, msg);
            goto out;
        }
        zip_source_t *ms = zip_source_buffer(za, npy, npy_len, 1);
        if (!ms) {
            vmf__free(npy);
            rc = vmf__fail(VMF_ENOMEM, what, "member %s: %s", mname,
                           zip_error_strerror(zip_get_error(za)));
            goto out;
        }
        zip_int64_t idx = zip_file_add(za, mname, ms, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
            zip_source_free(ms);
            rc = vmf__fail(VMF_EFORMAT, what, "member %s: %s", mname,
                           zip_error_strerror(zip_get_error(za)));
            goto out;
        }
        /* DOS date 1980-01-01 00:00: (0 << 9) | (1 << 5) | 1. */
        if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0) != 0 ||
            zip_file_set_dostime(za, (zip_uint64_t)idx, 0, (1u << 5) | 1u, 0) != 0) {
            rc = vmf__fail(VMF_EFORMAT, what, "member %s: %s", mname,
                           zip_error_strerror(zip_get_error(za)));
            goto out;
        }
    }
    if (zip_close(za) != 0) {
        rc = vmf__fail(VMF_EIO, what, "cannot finish the archive: %s",
                       zip_error_strerror(zip_get_error(za)));
        goto out;
    }
    za = NULL;
    if (zip_source_open(src) != 0 || zip_source_seek(src, 0, SEEK_END) != 0) {
        rc = vmf__fail(VMF_EIO, what, "cannot read the archive back: %s",
                       zip_error_strerror(zip_source_error(src)));
        goto out;
    }
    zip_int64_t size = zip_source_tell(src);
    if (size < 0 || zip_source_seek(src, 0, SEEK_SET) != 0) {
        zip_source_close(src);
        rc = vmf__fail(VMF_EIO, what, "cannot read the archive back");
        goto out;
    }
    void *b = vmf__malloc((size_t)size);
    if (!b) {
        zip_source_close(src);
        rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %lld bytes", (long long)size);
        goto out;
    }
    if (zip_source_read(src, b, (zip_uint64_t)size) != size) {
        zip_source_close(src);
        vmf__free(b);
        rc = vmf__fail(VMF_EIO, what, "cannot read the archive back");
        goto out;
    }
    zip_source_close(src);
    *buf = b;
    *len = (size_t)size;

out:
    if (za)
        zip_discard(za);
    if (src)
        zip_source_free(src);
    zip_error_fini(&ze);
    return rc;
}

int vmf_npz_write_mem(const char *const *names, const vmf_array *const *arrays, size_t count,
                      void **buf, size_t *len)
{
    if (!buf || !len)
        return vmf__error(VMF_EINVAL, "vmf_npz_write_mem: buf or len is NULL");
    return build(names, arrays, count, ".npz", buf, len);
}

int vmf_npz_write(const char *path, const char *const *names, const vmf_array *const *arrays,
                  size_t count)
{
    if (!path)
        return vmf__error(VMF_EINVAL, "vmf_npz_write: path is NULL");
    void *buf;
    size_t len;
    int rc = build(names, arrays, count, path, &buf, &len);
    if (rc != VMF_OK)
        return rc;
    FILE *fp;
    char *tmp;
    if ((rc = vmf__atomic_open(path, &fp, &tmp)) == VMF_OK) {
        if (fwrite(buf, 1, len, fp) != len) {
            rc = vmf__fail(VMF_EIO, path, "write failed: %s", strerror(errno));
            vmf__atomic_abort(fp, tmp);
        } else {
            rc = vmf__atomic_commit(fp, tmp, path);
        }
    }
    vmf__free(buf);
    return rc;
}
