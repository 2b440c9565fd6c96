/*
 * vmfd_log.h - one-line structured logs on stderr with a <N> syslog priority
 * prefix, as journald and `systemd-cat` understand them:
 *
 *     <6>batch applied key=day-001 rows=2000 apply_ms=12.3
 *
 * The level check happens before any formatting. Never pass embeddings,
 * request bodies or tokens.
 */
#ifndef VMFD_LOG_H
#define VMFD_LOG_H

enum {
    VMFD_LOG_ERR = 3,
    VMFD_LOG_WARNING = 4,
    VMFD_LOG_NOTICE = 5,
    VMFD_LOG_INFO = 6,
    VMFD_LOG_DEBUG = 7
};

/* Sets the lowest priority written (process-wide; set from the loop thread). */
void vmfd_log_set_level(int level);
int vmfd_log_enabled(int level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void vmfd_log(int level, const char *fmt, ...);

/*
 * Whether lines carry a timestamp: setting is $VMFD_LOG_TIMESTAMPS (yes, no,
 * or auto/NULL), journal_stream $JOURNAL_STREAM, fd the log's descriptor;
 * auto stamps unless fd is the journal's stream.
 */
int vmfd_log_timestamps_wanted(const char *setting, const char *journal_stream, int fd);

#endif
