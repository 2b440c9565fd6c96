/*
 * vmfd_notify.c - sd_notify and $LISTEN_FDS (see vmfd_notify.h), following
 * sd_notify(3) and sd_listen_fds(3).
 */
#include "vmfd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int vmfd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(state) ? 1 : -1;
}

static int env_pid_is_us(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return -1; /* absent */
    char *end;
    long pid = strtol(v, &end, 10);
    return (*v && *end == '\0' && pid == (long)getpid()) ? 1 : 0;
}

uint64_t vmfd_notify_watchdog_usec(void)
{
    const char *v = getenv("WATCHDOG_USEC");
    if (!v || !*v || env_pid_is_us("WATCHDOG_PID") == 0)
        return 0;
    char *end;
    unsigned long long usec = strtoull(v, &end, 10);
    return *end == '\0' ? (uint64_t)usec : 0;
}

int vmfd_listen_fds(void)
{
    int n = 0;
    if (env_pid_is_us("LISTEN_PID") == 1) {
        const char *v = getenv("LISTEN_FDS");
        char *end;
        long k = v ? strtol(v, &end, 10) : 0;
        if (v && *v && *end == '\0' && k > 0 && k < 1024)
            n = (int)k;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (int fd = 3; fd < 3 + n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0)
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    return n;
}
