/*
 * vmfd_notify.h - the systemd service protocols implemented directly, without
 * libsystemd: sd_notify (one datagram to $NOTIFY_SOCKET, a filesystem path or
 * an abstract socket written "@name") and socket activation ($LISTEN_FDS
 * descriptors from fd 3 on, valid when $LISTEN_PID is our pid).
 */
#ifndef VMFD_NOTIFY_H
#define VMFD_NOTIFY_H

#include <stdint.h>

/*
 * Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET. Returns 1
 * when sent, 0 when the variable is unset, -1 on error.
 */
int vmfd_notify(const char *state);

/* $WATCHDOG_USEC when set for this process ($WATCHDOG_PID absent or ours), else 0. */
uint64_t vmfd_notify_watchdog_usec(void);

/*
 * Number of sockets passed by socket activation (fds 3 .. 3+n-1), 0 when
 * none. Unsets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES so children do not
 * inherit them, and marks the fds close-on-exec.
 */
int vmfd_listen_fds(void);

#endif
