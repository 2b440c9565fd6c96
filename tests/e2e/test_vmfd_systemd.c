/*
 * test_vmfd_systemd.c - vmfd as a systemd service, without systemd running:
 *
 *  - the shipped vmfd.service and vmfd.socket pass `systemd-analyze verify`
 *    (on a copy whose ExecStart names build/bin/vmfd) and the service's
 *    command line is one vmfd accepts;
 *  - `systemd-analyze security --offline=true` rates the service 2.0 or
 *    better ("Overall exposure level");
 *  - the notify protocol: a datagram socket of ours as $NOTIFY_SOCKET
 *    receives STATUS=, READY=1 (once /readyz is 200), WATCHDOG=1 pings every
 *    WATCHDOG_USEC/2 from vmfd's main PID, nothing after SIGHUP but a live
 *    daemon, and STOPPING=1 on SIGTERM; a WATCHDOG_PID of another process
 *    turns the pings off;
 *  - socket activation: `systemd-socket-activate -l 127.0.0.1:PORT vmfd`
 *    serves HTTP (ingest and predict) on the inherited socket and does not
 *    open its own listener.
 *
 * Tests whose tool is not installed are skipped.
 */
#define _GNU_SOURCE /* SO_PASSCRED, struct ucred */
#include "vmfd_e2e_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVICE_SRC VMF_SOURCE_DIR "/systemd/vmfd.service"
#define SOCKET_SRC  VMF_SOURCE_DIR "/systemd/vmfd.socket"
#define CONFIG_SRC  VMF_SOURCE_DIR "/config/vmfd.conf"

static int have_tool(const char *path)
{
    return access(path, X_OK) == 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs argv with stdout and stderr into out_path; returns the exit status (-1: signal). */
static int run_capture(const char *const *argv, const char *out_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("SYSTEMD_PAGER", "", 1);
        setenv("SYSTEMD_COLORS", "0", 1);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Copies src to dst replacing every occurrence of from (non-empty) by to. */
static void copy_replacing(const char *src, const char *dst, const char *from, const char *to)
{
    assert_true(from[0] != '\0');
    char *text = e2e_read_file(src, NULL);
    assert_non_null(text);
    FILE *f = fopen(dst, "w");
    assert_non_null(f);
    const char *p = text;
    size_t flen = strlen(from);
    for (const char *q; (q = strstr(p, from)) != NULL; p = q + flen) {
        fwrite(p, 1, (size_t)(q - p), f);
        fputs(to, f);
    }
    fputs(p, f);
    assert_int_equal(fclose(f), 0);
    free(text);
}

/* The value of the first "Key=" line of a unit file (static buffer). */
static const char *unit_value(const char *text, const char *key)
{
    static char value[1024];
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
            snprintf(value, sizeof value, "%.*s", (int)(len - klen - 1), line + klen + 1);
            return value;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

/* ---- unit files ---- */

static void test_units_verify(void **state)
{
    (void)state;
    if (!have_tool("/usr/bin/systemd-analyze"))
        skip();
    char dir[512], svc[700], sock[700], out[700];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(svc, sizeof svc, "%s/vmfd.service", dir);
    snprintf(sock, sizeof sock, "%s/vmfd.socket", dir);
    snprintf(out, sizeof out, "%s/verify.txt", dir);
    assert_int_equal(access(e2e_vmfd_bin(), X_OK), 0);
    copy_replacing(SERVICE_SRC, svc, "/usr/bin/vmfd", e2e_vmfd_bin());
    copy_replacing(SOCKET_SRC, sock, "/usr/bin/vmfd", e2e_vmfd_bin());
    const char *argv[] = {"/usr/bin/systemd-analyze", "verify", "--man=no", svc, sock, NULL};
    int rc = run_capture(argv, out);
    char *text = e2e_read_file(out, NULL);
    assert_non_null(text);
    if (rc != 0 || strstr(text, "vmfd.")) {
        print_error("systemd-analyze verify (exit %d) complained:\n%s\n", rc, text);
        fail();
    }
    free(text);
    vmf_test_rmtree(dir);
}

/* The unit's ExecStart is a command line vmfd accepts, with the shipped config. */
static void test_execstart_flags(void **state)
{
    (void)state;
    char *unit = e2e_read_file(SERVICE_SRC, NULL);
    assert_non_null(unit);
    const char *value = unit_value(unit, "ExecStart");
    assert_non_null(value);
    char exec[1024];
    snprintf(exec, sizeof exec, "%s", value);
    assert_string_equal(unit_value(unit, "Type"), "notify");
    assert_string_equal(unit_value(unit, "NotifyAccess"), "main");
    assert_string_equal(unit_value(unit, "DynamicUser"), "yes");
    assert_string_equal(unit_value(unit, "StateDirectory"), "vmfd");
    assert_non_null(unit_value(unit, "WatchdogSec"));

    char dir[512], out[700];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/check.txt", dir);
    /* Split the command line (no quoting in it) and run it with --check-config. */
    char line[1024];
    memcpy(line, exec, sizeof line);
    const char *argv[32];
    int n = 0;
    for (char *tok = strtok(line, " "); tok && n < 28; tok = strtok(NULL, " ")) {
        if (strcmp(tok, "/usr/bin/vmfd") == 0)
            tok = (char *)(uintptr_t)e2e_vmfd_bin();
        else if (strcmp(tok, "/etc/vmfd/vmfd.conf") == 0)
            tok = (char *)(uintptr_t)CONFIG_SRC;
        argv[n++] = tok;
    }
    assert_string_equal(argv[0], e2e_vmfd_bin());
    argv[n++] = "--check-config";
    argv[n] = NULL;
    int rc = run_capture(argv, out);
    char *text = e2e_read_file(out, NULL);
    assert_non_null(text);
    if (rc != 0 || !strstr(text, "state_dir = /var/lib/vmfd")) {
        print_error("%s --check-config exited %d:\n%s\n", exec, rc, text);
        fail();
    }
    free(text);
    free(unit);
    vmf_test_rmtree(dir);
}

static void test_security_score(void **state)
{
    (void)state;
    if (!have_tool("/usr/bin/systemd-analyze"))
        skip();
    char dir[512], svc[700], out[700];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(svc, sizeof svc, "%s/vmfd.service", dir);
    snprintf(out, sizeof out, "%s/security.txt", dir);
    copy_replacing(SERVICE_SRC, svc, "/usr/bin/vmfd", e2e_vmfd_bin());
    const char *argv[] = {
        "/usr/bin/systemd-analyze", "security", "--offline=true", "--no-pager", svc, NULL};
    int rc = run_capture(argv, out);
    char *text = e2e_read_file(out, NULL);
    assert_non_null(text);
    const char *p = strstr(text, "Overall exposure level for vmfd.service:");
    double level = -1.0;
    if (p)
        level = strtod(p + strlen("Overall exposure level for vmfd.service:"), NULL);
    if (rc != 0 || !p || !(level >= 0.0 && level <= 2.0)) {
        print_error("systemd-analyze security exited %d, exposure %.1f:\n%s\n", rc, level, text);
        fail();
    }
    print_message("exposure level %.1f\n", level);
    free(text);
    vmf_test_rmtree(dir);
}

/* ---- the notify protocol ---- */

typedef struct notify_sock {
    int fd;
    char path[600];
} notify_sock;

static void notify_open(notify_sock *ns, const char *dir)
{
    snprintf(ns->path, sizeof ns->path, "%s/notify", dir);
    ns->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(ns->fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    assert_true(strlen(ns->path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, ns->path, strlen(ns->path));
    assert_int_equal(bind(ns->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    assert_int_equal(setsockopt(ns->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
}

/* One datagram within timeout_ms into buf (NUL-terminated); returns the sender's pid or -1. */
static pid_t notify_recv(const notify_sock *ns, char *buf, size_t size, int timeout_ms)
{
    struct pollfd pfd = {ns->fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return -1;
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct iovec iov = {buf, size - 1};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = &ctl;
    mh.msg_controllen = sizeof ctl;
    ssize_t n = recvmsg(ns->fd, &mh, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            return cred.pid;
        }
    }
    return 0;
}

/* Whether a message holds the assignment line (e.g. "READY=1"). */
static int has_line(const char *msg, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = msg; (p = strstr(p, line)) != NULL; p += n) {
        if ((p == msg || p[-1] == '\n') && (p[n] == '\0' || p[n] == '\n'))
            return 1;
    }
    return 0;
}

/* Starts vmfd on a free port with the notify environment; returns its pid. */
static pid_t start_notified(const char *dir, const char *notify_path, const char *watchdog_usec,
                            int watchdog_pid_is_other)
{
    char state[700], logp[700];
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(logp, sizeof logp, "%s/vmfd.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        char wpid[32];
        snprintf(wpid, sizeof wpid, "%ld", watchdog_pid_is_other ? 1L : (long)getpid());
        setenv("NOTIFY_SOCKET", notify_path, 1);
        setenv("WATCHDOG_USEC", watchdog_usec, 1);
        setenv("WATCHDOG_PID", wpid, 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execl(e2e_vmfd_bin(), e2e_vmfd_bin(), "--state-dir", state, "--listen", "127.0.0.1:0",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int read_port(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/state/vmfd.port", dir);
    char *text = e2e_read_file(path, NULL);
    int port = text ? atoi(text) : 0;
    free(text);
    return port;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        e2e_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int http_status(int port, const char *method, const char *path)
{
    e2e_resp r;
    if (e2e_http(port, method, path, NULL, NULL, 0, NULL, &r) != 0)
        return -1;
    int s = r.status;
    e2e_resp_free(&r);
    return s;
}

static void test_notify_protocol(void **state)
{
    (void)state;
    char dir[512], msg[4096];
    vmf_test_tmpdir(dir, sizeof dir);
    notify_sock ns;
    notify_open(&ns, dir);
    /* 200 ms watchdog: vmfd pings every 100 ms. */
    pid_t pid = start_notified(dir, ns.path, "200000", 0);

    int ready = 0, status_seen = 0, pings_before_ready = 0;
    double t0 = now_s();
    while (!ready && now_s() - t0 < 30.0) {
        pid_t from = notify_recv(&ns, msg, sizeof msg, 1000);
        if (from < 0)
            continue;
        assert_int_equal(from, pid); /* NotifyAccess=main: only the main PID talks */
        if (strncmp(msg, "STATUS=", 7) == 0 || strstr(msg, "\nSTATUS="))
            status_seen = 1;
        if (has_line(msg, "WATCHDOG=1"))
            pings_before_ready++;
        if (has_line(msg, "READY=1")) {
            ready = 1;
            assert_non_null(strstr(msg, "STATUS=serving"));
        }
    }
    assert_true(ready);
    assert_true(status_seen);
    int port = read_port(dir);
    assert_true(port > 0);
    /* READY=1 is sent once the model is recovered: /readyz agrees at once. */
    assert_int_equal(http_status(port, "GET", "/readyz"), 200);

    /* Pings keep coming: about 10 a second; ask for 5 within 5 s, counted
     * from an empty socket (pings queued meanwhile would arrive at once). */
    while (notify_recv(&ns, msg, sizeof msg, 0) >= 0)
        assert_false(has_line(msg, "STOPPING=1"));
    int pings = 0;
    t0 = now_s();
    while (pings < 5 && now_s() - t0 < 5.0) {
        pid_t from = notify_recv(&ns, msg, sizeof msg, 500);
        if (from < 0)
            continue;
        assert_int_equal(from, pid);
        assert_false(has_line(msg, "STOPPING=1"));
        pings += has_line(msg, "WATCHDOG=1");
    }
    double took = now_s() - t0;
    print_message("5 watchdog pings in %.2f s (%d before READY)\n", took, pings_before_ready);
    assert_int_equal(pings, 5);
    assert_true(took > 0.3); /* every 100 ms, not a busy loop */

    /* A stalled loop stops the pings: with vmfd stopped nothing arrives. */
    assert_int_equal(kill(pid, SIGSTOP), 0);
    e2e_sleep_ms(50);
    while (notify_recv(&ns, msg, sizeof msg, 0) >= 0)
        ; /* what was sent before the stop */
    assert_int_equal(notify_recv(&ns, msg, sizeof msg, 400), -1);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_true(notify_recv(&ns, msg, sizeof msg, 2000) > 0);

    /* SIGHUP (ExecReload) keeps the daemon serving. */
    assert_int_equal(kill(pid, SIGHUP), 0);
    e2e_sleep_ms(100);
    assert_int_equal(http_status(port, "GET", "/healthz"), 200);
    assert_int_equal(http_status(port, "GET", "/readyz"), 200);

    /* SIGTERM: STOPPING=1, then a clean exit. */
    assert_int_equal(kill(pid, SIGTERM), 0);
    int stopping = 0;
    t0 = now_s();
    while (!stopping && now_s() - t0 < 30.0) {
        pid_t from = notify_recv(&ns, msg, sizeof msg, 1000);
        if (from > 0)
            stopping = has_line(msg, "STOPPING=1");
    }
    assert_true(stopping);
    assert_int_equal(wait_exit(pid, 60000), 0);
    close(ns.fd);
    vmf_test_rmtree(dir);
}

/* WATCHDOG_PID names another process: the watchdog is not ours, no pings. */
static void test_watchdog_other_pid(void **state)
{
    (void)state;
    char dir[512], msg[4096];
    vmf_test_tmpdir(dir, sizeof dir);
    notify_sock ns;
    notify_open(&ns, dir);
    pid_t pid = start_notified(dir, ns.path, "100000", 1);
    int ready = 0, pings = 0;
    double t0 = now_s();
    while (!ready && now_s() - t0 < 30.0) {
        if (notify_recv(&ns, msg, sizeof msg, 1000) > 0) {
            ready |= has_line(msg, "READY=1");
            pings += has_line(msg, "WATCHDOG=1");
        }
    }
    assert_true(ready);
    t0 = now_s();
    while (now_s() - t0 < 0.5) {
        if (notify_recv(&ns, msg, sizeof msg, 100) > 0)
            pings += has_line(msg, "WATCHDOG=1");
    }
    assert_int_equal(pings, 0);
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, 60000), 0);
    close(ns.fd);
    vmf_test_rmtree(dir);
}

/* ---- socket activation ---- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Three well separated classes in d = 8 (n rows each), unit rows. */
static void toy_batch(size_t n, float *x, int64_t *y)
{
    uint64_t s = 12345;
    for (size_t c = 0; c < 3; c++) {
        for (size_t i = 0; i < n; i++) {
            size_t r = c * n + i;
            e2e_axis_row(&s, x + r * 8, 8, c, 4.0, 0.3);
            y[r] = (int64_t)c;
        }
    }
}

static void test_socket_activation(void **state)
{
    (void)state;
    if (!have_tool("/usr/bin/systemd-socket-activate"))
        skip();
    char dir[512], statedir[700], logp[700], listen[64], portfile[760];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(statedir, sizeof statedir, "%s/state", dir);
    snprintf(logp, sizeof logp, "%s/vmfd.log", dir);
    snprintf(portfile, sizeof portfile, "%s/vmfd.port", statedir);
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        /* vmfd's own listen address (127.0.0.1:1) would fail if it were used. */
        execl("/usr/bin/systemd-socket-activate", "systemd-socket-activate", "-l", listen, "-E",
              "OPENBLAS_NUM_THREADS=1", e2e_vmfd_bin(), "--state-dir", statedir, "--listen",
              "127.0.0.1:1", (char *)NULL);
        _exit(127);
    }
    /* The first connection may wait in the backlog until vmfd runs. */
    int ready = 0;
    for (int i = 0; i < 3000 && !ready; i++) {
        ready = http_status(port, "GET", "/readyz") == 200;
        if (!ready) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                char *log = e2e_read_file(logp, NULL);
                print_error("vmfd under systemd-socket-activate exited (%d):\n%s\n", st,
                            log ? log : "");
                fail();
            }
            e2e_sleep_ms(10);
        }
    }
    assert_true(ready);
    assert_int_equal(access(portfile, F_OK), -1); /* no listener of its own */

    /* Full HTTP through the inherited socket: ingest, then predict. */
    enum { N = 40 };
    float x[3 * N * 8];
    int64_t y[3 * N];
    toy_batch(N, x, y);
    void *npz;
    size_t len;
    e2e_npz(x, 3 * N, 8, y, &npz, &len);
    e2e_resp r;
    assert_int_equal(
        e2e_http(port, "PUT", "/v1/batches/activated", "application/x-npz", npz, len, NULL, &r), 0);
    assert_int_equal(r.status, 202);
    e2e_resp_free(&r);
    free(npz);
    char st[32];
    assert_string_equal(e2e_wait_batch(port, "activated", st, sizeof st, 30000), "applied");
    const char *body = "{\"embeddings\":[[0,0,1,0,0,0,0,0]],\"top_k\":1}";
    assert_int_equal(
        e2e_http(port, "POST", "/v1/predict", "application/json", body, strlen(body), NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"labels\":[2]"));
    e2e_resp_free(&r);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, 60000), 0);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_verify),       cmocka_unit_test(test_execstart_flags),
        cmocka_unit_test(test_security_score),     cmocka_unit_test(test_notify_protocol),
        cmocka_unit_test(test_watchdog_other_pid), cmocka_unit_test(test_socket_activation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
