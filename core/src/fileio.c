/*
 * fileio.c - the file utilities under every format reader and writer:
 * opening a regular file for reading (a directory, FIFO or device is refused
 * before any read), and atomic replacement (a temporary file beside the
 * target, fsynced, renamed over it, the directory fsynced), so a crash leaves
 * the old file or the new one, never a torn one. The replacement serves the
 * format writers inside the library and, through vmf_file_write_atomic and
 * vmf_atomic_file_* (vmfmm/io.h), every file vmfd, vmfctl, vmfsim and vmfmm
 * write. Calls nothing above it.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading ---- */

int vmf__open_regular(const char *path, FILE **fp, uint64_t *size)
{
    *fp = fopen(path, "rb");
    if (!*fp)
        return vmf__fail(VMF_EIO, path, "cannot open: %s", strerror(errno));
    struct stat st;
    int rc = VMF_OK;
    if (fstat(fileno(*fp), &st) != 0)
        rc = vmf__fail(VMF_EIO, path, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = vmf__fail(VMF_EIO, path, "not a regular file");
    if (rc != VMF_OK) {
        fclose(*fp);
        *fp = NULL;
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return VMF_OK;
}

/* ---- atomic replacement ---- */

/* Records the failure of a system call as VMF_EIO naming `path`, and leaves
 * errno as that call set it (formatting the message may clobber it). */
static int fail_errno(int e, const char *path, const char *what)
{
    int rc = vmf__fail(e == ENOMEM ? VMF_ENOMEM : VMF_EIO, path, "%s: %s", what, strerror(e));
    errno = e;
    return rc;
}

int vmf__atomic_open(const char *path, FILE **fp, char **tmp)
{
    *fp = NULL;
    *tmp = NULL;
    size_t n = strlen(path), cap = n + 48;
    char *name = vmf__malloc(cap);
    if (!name)
        return fail_errno(ENOMEM, path, "cannot name a temporary file");
    /* O_EXCL makes a name collision (another writer, a stale file) harmless:
     * the next attempt picks another suffix. The mode 0666 honours the umask
     * as a plain fopen would. */
    uint64_t salt = (uint64_t)(vmf__now() * 1e9) ^ (uint64_t)(uintptr_t)name;
    int fd = -1;
    for (unsigned attempt = 0; attempt < 64 && fd < 0; attempt++) {
        snprintf(name, cap, "%s.tmp%ld.%04x", path, (long)getpid(),
                 (unsigned)((salt >> 7) + attempt * 0x9e37u) & 0xffffu);
        fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        vmf__free(name);
        return fail_errno(e, path, "cannot create a temporary file beside it");
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(name);
        vmf__free(name);
        return fail_errno(e, path, "cannot open a stream");
    }
    *fp = f;
    *tmp = name;
    return VMF_OK;
}

void vmf__atomic_abort(FILE *fp, char *tmp)
{
    if (fp)
        fclose(fp);
    if (tmp) {
        unlink(tmp);
        vmf__free(tmp);
    }
}

int vmf__atomic_commit(FILE *fp, char *tmp, const char *path)
{
    /* ferror catches a write that failed while the stream was buffering
     * (a later fflush may then succeed on what was left). */
    int e = 0;
    if (ferror(fp))
        e = errno ? errno : EIO;
    else if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        e = errno;
    if (fclose(fp) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        vmf__free(tmp);
        return fail_errno(e, path, "write failed");
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        vmf__free(tmp);
        return fail_errno(e, path, "cannot rename the temporary file into place");
    }
    /* The rename is durable only once the directory entry is on disk. */
    char *slash = strrchr(tmp, '/');
    if (slash)
        slash[slash == tmp ? 1 : 0] = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    vmf__free(tmp);
    return VMF_OK;
}

/* ---- the public form (vmfmm/io.h) ---- */

struct vmf_atomic_file {
    FILE *fp;
    char *tmp;
    char path[]; /* the target, copied */
};

int vmf_atomic_file_open(const char *path, vmf_atomic_file **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_atomic_file_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return vmf__error(VMF_EINVAL, "vmf_atomic_file_open: empty path");
    size_t n = strlen(path);
    vmf_atomic_file *f = vmf__malloc(sizeof *f + n + 1);
    if (!f)
        return fail_errno(ENOMEM, path, "cannot start writing");
    memcpy(f->path, path, n + 1);
    int rc = vmf__atomic_open(path, &f->fp, &f->tmp);
    if (rc != VMF_OK) {
        int e = errno;
        vmf__free(f);
        errno = e;
        return rc;
    }
    *out = f;
    return VMF_OK;
}

FILE *vmf_atomic_file_stream(vmf_atomic_file *f)
{
    return f ? f->fp : NULL;
}

int vmf_atomic_file_commit(vmf_atomic_file *f)
{
    if (!f)
        return vmf__error(VMF_EINVAL, "vmf_atomic_file_commit: no file");
    int rc = vmf__atomic_commit(f->fp, f->tmp, f->path);
    int e = errno;
    vmf__free(f);
    errno = e;
    return rc;
}

void vmf_atomic_file_abort(vmf_atomic_file *f)
{
    if (!f)
        return;
    int e = errno;
    vmf__atomic_abort(f->fp, f->tmp);
    vmf__free(f);
    errno = e;
}

int vmf_file_write_atomic(const char *path, const void *data, size_t n)
{
    if (!data && n > 0)
        return vmf__error(VMF_EINVAL, "vmf_file_write_atomic: data is NULL");
    FILE *fp;
    char *tmp;
    int rc = vmf__atomic_open(path, &fp, &tmp);
    if (rc != VMF_OK)
        return rc;
    if (n > 0 && fwrite(data, 1, n, fp) != n) {
        int e = errno ? errno : EIO;
        vmf__atomic_abort(fp, tmp);
        return fail_errno(e, path, "write failed");
    }
    return vmf__atomic_commit(fp, tmp, path);
}
