/*
 * powerloss_shim.c - an LD_PRELOAD library that simulates a power cut under
 * a running vmfd (tests/e2e/test_vmfd_powerloss.c).
 *
 * It interposes write, pwrite, pwrite64, ftruncate, fsync and fdatasync on
 * the store's files (names starting with "vmfd.db" inside $VMFD_PL_DIR,
 * except the -shm index, which SQLite rebuilds after a crash). Before each
 * write it saves the bytes the write will cover and the file's size at the
 * first write since the last sync; an fsync or fdatasync of the file drops
 * that undo log, because the kernel has then made those bytes durable.
 *
 * At the $VMFD_PL_CUT-th intercepted operation (1-based, counting writes,
 * truncates and syncs), the shim plays every file's undo log backwards
 * (restoring old bytes and the old size), i.e. discards every write not yet
 * covered by an fsync, the worst a power cut can do to the page cache, and
 * then SIGKILLs the process. One mutex serializes all intercepted calls, so
 * no other thread can write between the undo and the kill.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The project builds with -fvisibility=hidden; interposed symbols must be visible. */
#define SHIM_EXPORT __attribute__((visibility("default")))

typedef struct undo {
    struct undo *prev; /* older record */
    off_t off;
    size_t len; /* bytes of old content saved (the part inside the old size) */
    unsigned char *old;
} undo;

typedef struct tracked {
    char path[512];
    off_t epoch_size; /* size at the first unsynced write; -1: clean */
    undo *log;        /* newest first */
} tracked;

#define MAX_FILES 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static tracked files[MAX_FILES];
static size_t n_files;
static long ops, cut = -1;
static char dir[512];
static int inited;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static void init(void)
{
    if (inited)
        return;
    inited = 1;
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    real_ftruncate = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *c = getenv("VMFD_PL_CUT");
    if (c)
        cut = atol(c);
}

/* $VMFD_PL_DIR resolved once it exists (vmfd may create it after its first write). */
static int resolve_dir(void)
{
    const char *d = getenv("VMFD_PL_DIR");
    if (!dir[0] && d && realpath(d, dir) == NULL)
        dir[0] = '\0';
    return dir[0] != '\0';
}

/* The tracked record of fd's file, or NULL when it is not a store file. */
static tracked *lookup(int fd)
{
    char link[64], path[512];
    if (!resolve_dir())
        return NULL;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return NULL;
    path[n] = '\0';
    size_t dl = strlen(dir);
    if (strncmp(path, dir, dl) != 0 || path[dl] != '/')
        return NULL;
    const char *base = path + dl + 1;
    if (strncmp(base, "vmfd.db", 7) != 0 || strstr(base, "-shm") || strchr(base, '/'))
        return NULL;
    for (size_t i = 0; i < n_files; i++)
        if (strcmp(files[i].path, path) == 0)
            return &files[i];
    if (n_files == MAX_FILES)
        return NULL;
    tracked *t = &files[n_files++];
    snprintf(t->path, sizeof t->path, "%s", path);
    t->epoch_size = -1;
    t->log = NULL;
    return t;
}

static void drop_log(tracked *t)
{
    while (t->log) {
        undo *u = t->log;
        t->log = u->prev;
        free(u->old);
        free(u);
    }
    t->epoch_size = -1;
}

/* Saves what [off, off+len) of fd holds now, before a write covers it. */
static void remember(tracked *t, int fd, off_t off, size_t len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    if (t->epoch_size < 0)
        t->epoch_size = st.st_size;
    undo *u = calloc(1, sizeof *u);
    if (!u)
        return;
    u->off = off;
    if (off < st.st_size) {
        size_t keep = (size_t)(st.st_size - off) < len ? (size_t)(st.st_size - off) : len;
        u->old = malloc(keep ? keep : 1);
        if (u->old) {
            ssize_t got = pread(fd, u->old, keep, off);
            u->len = got > 0 ? (size_t)got : 0;
        }
    }
    u->prev = t->log;
    t->log = u;
}

/* The power cut: every unsynced write of every store file is undone, then SIGKILL. */
static void power_cut(const char *what, const char *path)
{
    for (size_t i = 0; i < n_files; i++) {
        tracked *t = &files[i];
        if (t->epoch_size < 0)
            continue;
        int fd = open(t->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        for (undo *u = t->log; u; u = u->prev)
            if (u->len)
                (void)real_pwrite(fd, u->old, u->len, u->off);
        (void)real_ftruncate(fd, t->epoch_size);
        close(fd);
    }
    char msg[700];
    int n = snprintf(msg, sizeof msg, "powerloss: cut at operation %ld (%s %s)\n", ops, what, path);
    (void)real_write(2, msg, (size_t)n);
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

/* Counts one operation; at the cut point, does not return. */
static void tick(const char *what, const tracked *t)
{
    ops++;
    if (cut > 0 && ops == cut)
        power_cut(what, t->path);
}

/* positional: 0 write, 1 pwrite, 2 pwrite64 (the real function is looked up after init). */
static ssize_t do_write(int fd, const void *buf, size_t len, off_t off, int positional)
{
    pthread_mutex_lock(&mu);
    init();
    tracked *t = lookup(fd);
    ssize_t r;
    if (t) {
        tick("write", t);
        off_t at = positional ? off : lseek(fd, 0, SEEK_CUR);
        if (at >= 0)
            remember(t, fd, at, len);
    }
    r = positional == 2   ? real_pwrite64(fd, buf, len, off)
        : positional == 1 ? real_pwrite(fd, buf, len, off)
                          : real_write(fd, buf, len);
    pthread_mutex_unlock(&mu);
    return r;
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    return do_write(fd, buf, len, 0, 0);
}

SHIM_EXPORT ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    return do_write(fd, buf, len, off, 1);
}

SHIM_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return do_write(fd, buf, len, off, 2);
}

SHIM_EXPORT int ftruncate(int fd, off_t len)
{
    pthread_mutex_lock(&mu);
    init();
    tracked *t = lookup(fd);
    if (t) {
        tick("ftruncate", t);
        struct stat st;
        if (fstat(fd, &st) == 0 && len < st.st_size)
            remember(t, fd, len, (size_t)(st.st_size - len));
        else if (t->epoch_size < 0 && fstat(fd, &st) == 0)
            t->epoch_size = st.st_size;
    }
    int r = real_ftruncate(fd, len);
    pthread_mutex_unlock(&mu);
    return r;
}

static int do_sync(int fd, int data_only, const char *what)
{
    pthread_mutex_lock(&mu);
    init();
    int (*fn)(int) = data_only ? real_fdatasync : real_fsync;
    tracked *t = lookup(fd);
    if (t)
        tick(what, t); /* a cut here loses what this sync would have made durable */
    int r = fn(fd);
    if (t && r == 0)
        drop_log(t);
    pthread_mutex_unlock(&mu);
    return r;
}

SHIM_EXPORT int fsync(int fd)
{
    return do_sync(fd, 0, "fsync");
}

SHIM_EXPORT int fdatasync(int fd)
{
    return do_sync(fd, 1, "fdatasync");
}
