/*
 * vmfd_main.c - vmfd's entry point: command line, configuration, startup
 * (store, recovery, listeners, inbox, systemd notification), signals and
 * the graceful shutdown.
 *
 *   vmfd [--config FILE] [--state-dir DIR] [--listen HOST:PORT]
 *        [--socket PATH] [--check-config]
 *   vmfd [--config FILE] --state-dir DIR --export-checkpoint ID|latest [--output FILE]
 *
 * Exit codes (sysexits): 0 clean stop, 64 usage, 66 no such database or
 * checkpoint (export), 70 internal error,
 * 73 cannot create the state directory, 75 the state is locked by another
 * vmfd, 78 configuration error or a state directory whose vmfd.db is empty
 * or foreign (see --init); 70 also when PRAGMA quick_check finds damage.
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfd_model.h"
#include "vmfd_notify.h"
#include "vmfd_store.h"
#include "vmfd_store_views.h"
#include "vmfmm/common.h"
#include "vmfmm/io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <unistd.h>

/* OpenBLAS's own control; declared here to avoid depending on cblas.h's variant. */
void openblas_set_num_threads(int num_threads);

static const char usage[] =
    "usage: vmfd [--config FILE] [--state-dir DIR] [--listen HOST:PORT] [--socket PATH]\n"
    "            [--check-config] [--init]\n"
    "       vmfd [--config FILE] --state-dir DIR --export-checkpoint ID|latest [--output FILE]\n"
    "\n"
    "The continual-learning vMF daemon: learns labelled embedding batches\n"
    "(PUT /v1/batches/KEY or .npz files in STATE/inbox) and answers predictions\n"
    "(POST /v1/predict) over HTTP/1.1. See docs/vmfd.md.\n"
    "\n"
    "  --config FILE      INI configuration (see the shipped vmfd.conf)\n"
    "  --state-dir DIR    directory of the database and the inbox (store.state_dir)\n"
    "  --listen HOST:PORT TCP address, port 0 picks a free one (server.listen);\n"
    "                     an empty value disables TCP\n"
    "  --socket PATH      also listen on a Unix socket (server.socket)\n"
    "  --check-config     validate the configuration, print it, and exit\n"
    "  --init             initialise the store even when vmfd.db exists but is\n"
    "                     empty (0 bytes) or an empty SQLite file; never needed\n"
    "                     for a new state directory\n"
    "  --export-checkpoint ID\n"
    "                     write checkpoint ID (or latest) of STATE_DIR/vmfd.db as model\n"
    "                     JSON and exit; read-only, works beside a running vmfd\n"
    "  --output FILE      where --export-checkpoint writes (default stdout)\n"
    "  --help             this text\n"
    "  --version          print the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully (checkpoint, exit 0); SIGHUP reloads\n"
    "log.level, server.token_file, the server limits and store.queue_length.\n";

static int read_token(const char *path, char *out, size_t size, size_t *len, char *err,
                      size_t errsize)
{
    *len = 0;
    if (!path[0])
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsize, "token_file: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        snprintf(err, errsize, "token_file: %s is empty", path);
        return -1;
    }
    fclose(f);
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= size) {
        snprintf(err, errsize, "token_file: the token in %s is empty or longer than %zu bytes",
                 path, size - 1);
        return -1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    *len = n;
    return 0;
}

/* Defaults, then the file, then the command line; 0, or an exit code with err. */
static int build_config(vmfd_daemon *d, vmfd_config *c, char *err, size_t errsize)
{
    vmfd_config_defaults(c);
    if (d->config_path[0] && vmfd_config_load(c, d->config_path, err, errsize) != 0)
        return EX_CONFIG;
    const char *opts[3][2] = {
        {"state_dir", d->opt_state_dir}, {"listen", d->opt_listen}, {"socket", d->opt_socket}};
    const char *sect[3] = {"store", "server", "server"};
    for (int i = 0; i < 3; i++) {
        char e[512];
        if (opts[i][1] && vmfd_config_set(c, sect[i], opts[i][0], opts[i][1], e, sizeof e) != 0) {
            snprintf(err, errsize, "--%s: %s", i == 0 ? "state-dir" : opts[i][0], e);
            return EX_USAGE;
        }
    }
    if (vmfd_config_validate(c, err, errsize) != 0)
        return EX_CONFIG;
    return 0;
}

static vmfd_http_limits limits_of(const vmfd_config *c)
{
    vmfd_http_limits l = {c->max_header_bytes, c->max_body_bytes, c->max_connections,
                          c->idle_timeout_ms};
    return l;
}

static void print_config(const vmfd_config *c, const char *path)
{
    static const char *const levels[] = {"emerg",   "alert",  "crit", "err",
                                         "warning", "notice", "info", "debug"};
    printf("# vmfd configuration (%s), valid\n", path[0] ? path : "defaults");
    printf("[server]\nlisten = %s\nsocket = %s\ntoken_file = %s\nmax_body_bytes = %llu\n"
           "max_header_bytes = %llu\nmax_connections = %llu\nidle_timeout_ms = %llu\n"
           "predict_max_rows = %llu\n",
           c->listen, c->socket_path, c->token_file, (unsigned long long)c->max_body_bytes,
           (unsigned long long)c->max_header_bytes, (unsigned long long)c->max_connections,
           (unsigned long long)c->idle_timeout_ms, (unsigned long long)c->predict_max_rows);
    printf("max_batch_rows = %llu\nmax_dim = %llu\nmax_decoded_bytes = %llu\n"
           "max_json_body_bytes = %llu\nmax_label_bytes = %llu\nmax_classes = %llu\n"
           "drain_timeout_ms = %llu\n",
           (unsigned long long)c->max_batch_rows, (unsigned long long)c->max_dim,
           (unsigned long long)c->max_decoded_bytes, (unsigned long long)c->max_json_body_bytes,
           (unsigned long long)c->max_label_bytes, (unsigned long long)c->max_classes,
           (unsigned long long)c->drain_timeout_ms);
    printf("[store]\nstate_dir = %s\nqueue_length = %llu\ncheckpoint_every = %llu\n"
           "keep_checkpoints = %llu\npayload_retention_days = %lld\nquick_check = %s\n",
           c->state_dir, (unsigned long long)c->queue_length,
           (unsigned long long)c->checkpoint_every, (unsigned long long)c->keep_checkpoints,
           (long long)c->payload_retention_days, c->quick_check ? "true" : "false");
    printf("[model]\nmode = %s\ndim = %llu\nk_max = %llu\nalpha = %g\nt0 = %g\neta_floor = %g\n"
           "minibatch = %llu\nseed = %llu\nrefine_rows = %llu\nnovelty_threshold = %g\n",
           c->mode == VMFD_MODE_CLASSIFIER ? "classifier" : "clustering",
           (unsigned long long)c->dim, (unsigned long long)c->k_max, c->alpha, c->t0, c->eta_floor,
           (unsigned long long)c->minibatch, (unsigned long long)c->seed,
           (unsigned long long)c->refine_rows, c->novelty_threshold);
    printf("[inbox]\nenabled = %s\nscan_interval_ms = %llu\n[log]\nlevel = %s\n",
           c->inbox_enabled ? "true" : "false", (unsigned long long)c->inbox_scan_ms,
           levels[c->log_level & 7]);
}

/* vmfd --export-checkpoint: offline, read-only, no lock (a live vmfd may run). */
static int export_checkpoint(const vmfd_daemon *d, const char *idtext, const char *output)
{
    int64_t id = 0, got = 0;
    if (strcmp(idtext, "latest") != 0) {
        char *end;
        long long v = strtoll(idtext, &end, 10);
        if (end == idtext || *end || v <= 0) {
            fprintf(stderr, "vmfd: --export-checkpoint needs a checkpoint id or 'latest'\n");
            return EX_USAGE;
        }
        id = v;
    }
    char path[VMFD_CONFIG_PATH_MAX + 16], err[512];
    snprintf(path, sizeof path, "%.1000s/vmfd.db", d->cfg.state_dir);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "vmfd: cannot read %s: %s\n", path, strerror(errno));
        return EX_NOINPUT;
    }
    sqlite3 *db = NULL;
    vmfd_model_opts o;
    vmfd_model_opts_from_config(&o, &d->cfg);
    char *json = NULL;
    int rc = vmfd_store_open(path, 0, 1, &db, err, sizeof err);
    if (rc == 0)
        rc = vmfd_store_export_checkpoint(db, &o, id, &got, &json, err, sizeof err);
    vmfd_store_close(db);
    if (rc != 0) {
        fprintf(stderr, "vmfd: %s\n", err);
        return rc == 1 ? EX_NOINPUT : EX_SOFTWARE;
    }
    /* --output is replaced atomically: a reader never sees half a model. */
    vmf_atomic_file *af = NULL;
    if (output && vmf_atomic_file_open(output, &af) != VMF_OK) {
        fprintf(stderr, "vmfd: %s\n", vmf_last_error());
        free(json);
        return EX_CANTCREAT;
    }
    FILE *f = af ? vmf_atomic_file_stream(af) : stdout;
    int bad = fputs(json, f) < 0 || fputc('\n', f) == EOF;
    free(json);
    /* The commit also catches a failed write (the stream's error flag). */
    bad |= af ? vmf_atomic_file_commit(af) != VMF_OK : fflush(f) != 0;
    if (bad) {
        fprintf(stderr, "vmfd: writing the model failed: %s\n",
                af ? vmf_last_error() : strerror(errno));
        return EX_CANTCREAT;
    }
    if (output)
        fprintf(stderr, "vmfd: checkpoint %lld written to %s\n", (long long)got, output);
    return 0;
}

/* ---- lifecycle ---- */

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

static void final_checkpoint_done(vmfd_daemon *d, void *ud, const vmfd_worker_reply *r)
{
    (void)ud;
    if (r->status != 200) {
        vmfd_log(VMFD_LOG_ERR, "shutdown checkpoint failed error=\"%s\"", r->detail);
        d->exit_code = EX_SOFTWARE;
    }
    vmfd_log(VMFD_LOG_NOTICE, "stopped checkpoint=%lld exit=%d", (long long)r->checkpoint_id,
             d->exit_code);
    uv_close((uv_handle_t *)&d->sig_term, on_closed_noop);
    uv_close((uv_handle_t *)&d->sig_int, on_closed_noop);
    uv_close((uv_handle_t *)&d->sig_hup, on_closed_noop);
    if (d->watchdog_usec)
        uv_close((uv_handle_t *)&d->watchdog, on_closed_noop);
}

/*
 * The drain (nginx-like): every request already read is finished and
 * answered, ingests waiting in the chain included, while new requests get
 * 503 shutting_down with Connection: close. When nothing is left, or when
 * drain_timeout_ms has passed (waiting ingests are then answered 503 and
 * only the running one is awaited), the listeners close and the shutdown
 * checkpoint is written.
 */
static void on_drain(uv_timer_t *t)
{
    vmfd_daemon *d = t->data;
    int late = uv_now(d->loop) >= d->drain_deadline;
    if (late && !d->drain_late) {
        d->drain_late = 1;
        vmfd_log(VMFD_LOG_WARNING, "drain timeout, refusing waiting ingests busy=%zu",
                 d->http ? vmfd_http_busy(d->http) : (size_t)0);
        vmfd_ingest_cancel_waiting(d);
    }
    if (!vmfd_serial_idle(&d->ingest_chain) || !vmfd_serial_idle(&d->model_chain))
        return;
    if (!late && d->http && vmfd_http_busy(d->http) > 0)
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, on_closed_noop);
    if (d->http) {
        vmfd_http_free(d->http);
        d->http = NULL;
    }
    if (d->wk && d->snap)
        vmfd_worker_checkpoint(d, "shutdown", final_checkpoint_done, NULL);
    else {
        vmfd_worker_reply r = {200, "", "", 0};
        final_checkpoint_done(d, NULL, &r);
    }
}

void vmfd_shutdown(vmfd_daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    vmfd_log(VMFD_LOG_NOTICE, "stopping queued_in_memory=%llu", (unsigned long long)d->queue_depth);
    vmfd_worker_stop_retry(d);
    vmfd_notify("STOPPING=1\nSTATUS=stopping: finishing the batch in progress");
    vmfd_inbox_stop(d);
    if (d->http)
        vmfd_http_drain(d->http);
    /* Waiting applies stay queued in the store; the next start applies them. */
    vmfd_worker_cancel_waiting(d);
    d->drain_deadline = uv_now(d->loop) + d->cfg.drain_timeout_ms;
    uv_timer_init(d->loop, &d->drain);
    d->drain.data = d;
    uv_timer_start(&d->drain, on_drain, 0, 5);
}

static void on_signal(uv_signal_t *s, int signum)
{
    vmfd_daemon *d = s->data;
    if (signum == SIGHUP) {
        vmfd_config c;
        char err[768], token[sizeof d->token];
        size_t tlen;
        int rc = build_config(d, &c, err, sizeof err);
        if (rc == 0 && read_token(c.token_file, token, sizeof token, &tlen, err, sizeof err) != 0)
            rc = EX_CONFIG;
        if (rc != 0) {
            vmfd_log(VMFD_LOG_ERR, "reload failed, keeping the running config error=\"%s\"", err);
            return;
        }
        d->cfg.log_level = c.log_level;
        d->cfg.max_body_bytes = c.max_body_bytes;
        d->cfg.max_header_bytes = c.max_header_bytes;
        d->cfg.max_connections = c.max_connections;
        d->cfg.idle_timeout_ms = c.idle_timeout_ms;
        d->cfg.predict_max_rows = c.predict_max_rows;
        d->cfg.max_batch_rows = c.max_batch_rows;
        d->cfg.max_dim = c.max_dim;
        d->cfg.max_decoded_bytes = c.max_decoded_bytes;
        d->cfg.max_json_body_bytes = c.max_json_body_bytes;
        d->cfg.max_label_bytes = c.max_label_bytes;
        d->cfg.max_classes = c.max_classes;
        d->cfg.drain_timeout_ms = c.drain_timeout_ms;
        d->cfg.novelty_threshold = c.novelty_threshold;
        d->cfg.queue_length = c.queue_length;
        memcpy(d->cfg.token_file, c.token_file, sizeof c.token_file);
        memcpy(d->token, token, sizeof token);
        d->token_len = tlen;
        vmfd_log_set_level(c.log_level);
        if (d->http) {
            vmfd_http_limits l = limits_of(&d->cfg);
            vmfd_http_set_limits(d->http, &l);
        }
        vmfd_log(VMFD_LOG_NOTICE, "reloaded level=%d auth=%s", c.log_level,
                 tlen ? "token" : "none");
        return;
    }
    vmfd_log(VMFD_LOG_NOTICE, "signal received signal=%s", signum == SIGTERM ? "TERM" : "INT");
    vmfd_shutdown(d);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    vmfd_notify("WATCHDOG=1");
}

static void on_ready(vmfd_daemon *d, int ok)
{
    if (!ok) {
        if (!d->stopping) {
            vmfd_log(VMFD_LOG_ERR, "cannot recover the model; stopping");
            d->exit_code = EX_SOFTWARE;
            vmfd_shutdown(d);
        }
        return;
    }
    if (d->stopping)
        return; /* SIGTERM arrived during recovery: never announce readiness */
    d->ready = 1;
    char msg[256];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=serving, %lld batches applied",
             (long long)(d->snap ? d->snap->batches : 0));
    vmfd_notify(msg);
    vmfd_log(VMFD_LOG_NOTICE, "ready batches=%lld classes=%zu",
             (long long)(d->snap ? d->snap->batches : 0),
             d->snap ? vmfd_model_n_labels(d->snap->model) : (size_t)0);
}

/* <state>/vmfd.port holds the bound TCP port for scripts and tests (--listen
 * with port 0); replaced atomically so a reader never sees it half written. */
static int write_port_file(const vmfd_daemon *d, int port)
{
    char path[VMFD_CONFIG_PATH_MAX + 32], text[32];
    snprintf(path, sizeof path, "%s/vmfd.port", d->cfg.state_dir);
    int n = snprintf(text, sizeof text, "%d\n", port);
    return vmf_file_write_atomic(path, text, (size_t)n) == VMF_OK ? 0 : -1;
}

static int start_listeners(vmfd_daemon *d, char *err, size_t errsize)
{
    int nfds = vmfd_listen_fds();
    if (nfds > 0) {
        for (int i = 0; i < nfds; i++) {
            if (vmfd_http_listen_fd(d->http, 3 + i, err, errsize) != 0)
                return -1;
        }
        vmfd_log(VMFD_LOG_INFO, "listening socket_activation=%d", nfds);
        return 0;
    }
    if (d->cfg.listen[0]) {
        char host[256];
        int port, bound = 0;
        if (vmfd_config_split_listen(d->cfg.listen, host, sizeof host, &port) != 0) {
            snprintf(err, errsize, "listen: bad address %s", d->cfg.listen);
            return -1;
        }
        if (vmfd_http_listen_tcp(d->http, host, port, &bound, err, errsize) != 0)
            return -1;
        if (write_port_file(d, bound) != 0)
            vmfd_log(VMFD_LOG_WARNING, "cannot write vmfd.port in the state directory error=\"%s\"",
                     vmf_last_error());
        vmfd_log(VMFD_LOG_INFO, "listening addr=%s port=%d", host, bound);
    }
    if (d->cfg.socket_path[0]) {
        if (vmfd_http_listen_unix(d->http, d->cfg.socket_path, err, errsize) != 0)
            return -1;
        vmfd_log(VMFD_LOG_INFO, "listening socket=%s", d->cfg.socket_path);
    }
    return 0;
}

/*
 * Below this much free space (or with no free inode) the state directory's
 * file system counts as full: SQLite could not even create its -wal and
 * -shm files, so vmfd starts read-only instead of failing.
 */
#define MIN_FREE_BYTES (1u << 20)

static int disk_full(const char *dir, char *why, size_t size)
{
    struct statvfs v;
    if (statvfs(dir, &v) != 0)
        return 0;
    unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
    if (avail >= MIN_FREE_BYTES && (v.f_files == 0 || v.f_favail > 0))
        return 0;
    snprintf(why, size,
             "the file system of the state directory is full (%llu bytes, %llu inodes "
             "free); ingest is off until space is freed and vmfd restarted",
             avail, (unsigned long long)v.f_favail);
    return 1;
}

/*
 * One vmfd per state directory. The lock is held on the directory itself
 * (flock on an O_DIRECTORY descriptor, for the process lifetime), not on a
 * lock file: a file can be deleted by an operator while vmfd runs, after
 * which a second daemon would lock a new file and open the same database.
 * The directory cannot be removed while it holds vmfd.db.
 */
static int lock_state(const vmfd_daemon *d, char *err, size_t errsize)
{
    const char *path = d->cfg.state_dir;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsize, "cannot open %.900s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsize, "%.900s is in use by another vmfd", d->cfg.state_dir);
        close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

static void setup_signals(vmfd_daemon *d);
static int serve(vmfd_daemon *d);

/*
 * A full disk at startup: serve predictions from the newest checkpoint
 * (read through an immutable snapshot, which creates no files), answer
 * ingest and checkpoint writes with 507, and say why on /readyz.
 */
static int run_read_only(vmfd_daemon *d)
{
    char err[1024];
    struct stat sb;
    if (stat(d->db_path, &sb) != 0 || sb.st_size == 0) {
        vmfd_log(VMFD_LOG_ERR, "no store to serve read-only path=%s", d->db_path);
        return EX_CANTCREAT;
    }
    d->loop = uv_default_loop();
    d->start_ns = uv_hrtime();
    if (vmfd_worker_init_read_only(d, err, sizeof err) != 0 ||
        vmfd_store_open_snapshot(d->db_path, &d->rdb, err, sizeof err) != 0) {
        vmfd_log(VMFD_LOG_ERR, "store failed error=\"%s\"", err);
        return EX_SOFTWARE;
    }
    return serve(d);
}

int main(int argc, char **argv)
{
    static vmfd_daemon daemon_state;
    vmfd_daemon *d = &daemon_state;
    int check = 0, allow_init = 0;
    const char *export_id = NULL, *export_out = NULL;
    char err[1024];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("vmfd %s\n", vmf_version());
            return 0;
        }
        if (strcmp(a, "--check-config") == 0) {
            check = 1;
            continue;
        }
        if (strcmp(a, "--init") == 0) {
            allow_init = 1;
            continue;
        }
        const char *cfg_path = NULL;
        if (strcmp(a, "--config") == 0)
            slot = &cfg_path;
        else if (strcmp(a, "--state-dir") == 0)
            slot = &d->opt_state_dir;
        else if (strcmp(a, "--listen") == 0)
            slot = &d->opt_listen;
        else if (strcmp(a, "--socket") == 0)
            slot = &d->opt_socket;
        else if (strcmp(a, "--export-checkpoint") == 0)
            slot = &export_id;
        else if (strcmp(a, "--output") == 0)
            slot = &export_out;
        else {
            fprintf(stderr, "vmfd: unknown argument '%s'\n%s", a, usage);
            return EX_USAGE;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vmfd: %s needs a value\n", a);
            return EX_USAGE;
        }
        *slot = argv[++i];
        if (cfg_path) {
            if (strlen(cfg_path) >= sizeof d->config_path) {
                fprintf(stderr, "vmfd: --config path too long\n");
                return EX_USAGE;
            }
            snprintf(d->config_path, sizeof d->config_path, "%s", cfg_path);
        }
    }
    int rc = build_config(d, &d->cfg, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "vmfd: %s\n", err);
        return rc;
    }
    if (export_out && !export_id) {
        fprintf(stderr, "vmfd: --output goes with --export-checkpoint\n");
        return EX_USAGE;
    }
    if (export_id)
        return export_checkpoint(d, export_id, export_out);
    size_t tlen = 0;
    if (read_token(d->cfg.token_file, d->token, sizeof d->token, &tlen, err, sizeof err) != 0) {
        fprintf(stderr, "vmfd: %s\n", err);
        return EX_CONFIG;
    }
    d->token_len = tlen;
    if (check) {
        print_config(&d->cfg, d->config_path);
        return 0;
    }

    vmfd_log_set_level(d->cfg.log_level);
    openblas_set_num_threads(1);
    signal(SIGPIPE, SIG_IGN);
    if (mkdir(d->cfg.state_dir, 0700) != 0 && errno != EEXIST) {
        vmfd_log(VMFD_LOG_ERR, "cannot create state_dir=%s error=\"%s\"", d->cfg.state_dir,
                 strerror(errno));
        return EX_CANTCREAT;
    }
    if (lock_state(d, err, sizeof err) < 0) {
        vmfd_log(VMFD_LOG_ERR, "startup failed error=\"%s\"", err);
        return EX_TEMPFAIL;
    }
    snprintf(d->db_path, sizeof d->db_path, "%.1000s/vmfd.db", d->cfg.state_dir);
    int created = 0;
    d->read_only = disk_full(d->cfg.state_dir, d->ro_reason, sizeof d->ro_reason);
    if (d->read_only) {
        vmfd_log(VMFD_LOG_WARNING, "starting read-only reason=\"%s\"", d->ro_reason);
        return run_read_only(d);
    }
    if (vmfd_store_prepare(d->db_path, allow_init, &created, err, sizeof err) != 0) {
        vmfd_log(VMFD_LOG_ERR, "refusing to start error=\"%s\"", err);
        return EX_CONFIG;
    }
    if (created)
        vmfd_log(VMFD_LOG_NOTICE, "initialised a new store path=%s", d->db_path);
    if (!created && d->cfg.quick_check) {
        double t0 = vmfd_now_seconds();
        if (vmfd_store_quick_check(d->db_path, err, sizeof err) != 0) {
            vmfd_log(VMFD_LOG_ERR,
                     "store damaged, refusing to start error=\"%s\" hint=\"restore vmfd.db from "
                     "a backup; store.quick_check=false skips this check\"",
                     err);
            return EX_SOFTWARE;
        }
        vmfd_log(VMFD_LOG_INFO, "quick_check ok ms=%.1f", (vmfd_now_seconds() - t0) * 1e3);
    }
    d->loop = uv_default_loop();
    d->start_ns = uv_hrtime();
    if (vmfd_ingest_init(d, err, sizeof err) != 0 || vmfd_worker_init(d, err, sizeof err) != 0 ||
        vmfd_store_open(d->db_path, 0, 0, &d->rdb, err, sizeof err) != 0) {
        vmfd_log(VMFD_LOG_ERR, "store failed error=\"%s\"", err);
        return EX_SOFTWARE;
    }
    return serve(d);
}

/* Listeners, signals, watchdog, inbox, recovery, then the loop until stopped. */
static int serve(vmfd_daemon *d)
{
    char err[1024];
    vmfd_http_limits lim = limits_of(&d->cfg);
    if (vmfd_http_new(d->loop, &lim, vmfd_api_handle, vmfd_api_refusal, d, &d->http) != 0 ||
        start_listeners(d, err, sizeof err) != 0) {
        vmfd_log(VMFD_LOG_ERR, "listen failed error=\"%s\"", err);
        return EX_SOFTWARE;
    }
    setup_signals(d);
    if (d->cfg.inbox_enabled && !d->read_only && vmfd_inbox_start(d, err, sizeof err) != 0) {
        vmfd_log(VMFD_LOG_ERR, "inbox failed error=\"%s\"", err);
        return EX_CANTCREAT;
    }
    vmfd_notify("STATUS=recovering");
    vmfd_log(VMFD_LOG_NOTICE, "starting version=%s state_dir=%s pid=%ld%s", vmf_version(),
             d->cfg.state_dir, (long)getpid(), d->read_only ? " read_only=1" : "");
    vmfd_worker_recover(d, on_ready);
    uv_run(d->loop, UV_RUN_DEFAULT);

    vmfd_snapshot_release(d->snap);
    d->snap = NULL;
    vmfd_store_close(d->rdb);
    vmfd_worker_free(d);
    vmfd_ingest_free(d);
    uv_loop_close(d->loop);
    return d->exit_code;
}

static void setup_signals(vmfd_daemon *d)
{
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    uv_signal_init(d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    d->watchdog_usec = vmfd_notify_watchdog_usec();
    if (d->watchdog_usec) {
        uint64_t ms = d->watchdog_usec / 2000;
        uv_timer_init(d->loop, &d->watchdog);
        uv_timer_start(&d->watchdog, on_watchdog, 0, ms ? ms : 1);
    }
}
