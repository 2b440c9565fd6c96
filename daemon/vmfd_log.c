/*
 * vmfd_log.c - stderr logging with syslog priority prefixes.
 *
 * Each event is formatted into one buffer and written with a single write(2)
 * so that lines from the loop and the worker threads never interleave.
 *
 * Timestamps: journald stamps what it receives, so when stderr is the
 * journal ($JOURNAL_STREAM names stderr's device and inode, see
 * systemd.exec(5)) lines carry only the <N> prefix; otherwise (a terminal,
 * a file, a pipe) an ISO-8601 UTC time with milliseconds follows it:
 *
 *     <6>2026-12-02T16:49:40.391Z batch applied key=day-001 rows=2000
 *
 * VMFD_LOG_TIMESTAMPS=yes|no overrides the choice (auto is the default).
 */
#include "vmfd_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = VMFD_LOG_INFO;
static atomic_int log_stamps = -1; /* -1: not decided yet */

int vmfd_log_timestamps_wanted(const char *setting, const char *journal_stream, int fd)
{
    if (setting && (strcmp(setting, "yes") == 0 || strcmp(setting, "1") == 0))
        return 1;
    if (setting && (strcmp(setting, "no") == 0 || strcmp(setting, "0") == 0))
        return 0;
    struct stat st;
    unsigned long long dev, ino;
    if (journal_stream && sscanf(journal_stream, "%llu:%llu", &dev, &ino) == 2 &&
        fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        return 0;
    return 1;
}

static int stamps(void)
{
    int v = atomic_load(&log_stamps);
    if (v < 0) {
        /* Deciding twice from two threads gives the same answer. */
        v = vmfd_log_timestamps_wanted(getenv("VMFD_LOG_TIMESTAMPS"), getenv("JOURNAL_STREAM"),
                                       STDERR_FILENO);
        atomic_store(&log_stamps, v);
    }
    return v;
}

void vmfd_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

int vmfd_log_enabled(int level)
{
    return level <= atomic_load(&log_level);
}

void vmfd_log(int level, const char *fmt, ...)
{
    char line[1024];
    if (!vmfd_log_enabled(level))
        return;
    int n = snprintf(line, sizeof line, "<%d>", level);
    if (stamps()) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n += (int)strftime(line + n, sizeof line - (size_t)n, "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ ", ts.tv_nsec / 1000000L);
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    for (size_t i = (size_t)n; i < len; i++) {
        if (line[i] == '\n')
            line[i] = ' ';
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
