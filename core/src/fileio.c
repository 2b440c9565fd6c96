/*
 * fileio.c - the file utilities under every format reader and writer:
 * opening a regular file for reading (a directory, FIFO or device is refused
 * before any read), and atomic replacement (a temporary file beside the
 * target, fsynced, renamed over it, the directory fsynced), so a crash leaves
 * the old file or the new one, never a torn one. Calls nothing above it.
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

int vmf__atomic_open(const char *path, FILE **fp, char **tmp)
{
    *fp = NULL;
    *tmp = NULL;
    size_t n = strlen(path), cap = n + 48;
    char *name = vmf__malloc(cap);
    if (!name)
        return vmf__fail(VMF_ENOMEM, path, "out of memory");
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
        return vmf__fail(VMF_EIO, path, "cannot create a temporary file beside it: %s",
                         strerror(e));
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(name);
        vmf__free(name);
        return vmf__fail(VMF_EIO, path, "cannot open a stream: %s", strerror(e));
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
    int e = 0;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        e = errno;
    if (fclose(fp) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        vmf__free(tmp);
        return vmf__fail(VMF_EIO, path, "write failed: %s", strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        vmf__free(tmp);
        return vmf__fail(VMF_EIO, path, "cannot rename the temporary file into place: %s",
                         strerror(e));
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
