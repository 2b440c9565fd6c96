/*
 * vmfd_log.c - stderr logging with syslog priority prefixes.
 *
 * Each event is formatted into one buffer and written with a single write(2)
 * so that lines from the loop and the worker threads never interleave.
 */
#include "vmfd_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int log_level = VMFD_LOG_INFO;

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
