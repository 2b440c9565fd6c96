/*
 * test_vmfd_config.c - the vmfd configuration loader: defaults, the shipped
 * vmfd.conf (valid, and equal to the defaults), validation of every kind of
 * value, and errors that name the file, the line and the key.
 */
#include "vmf_test.h"
#include "vmfd_config.h"

#include <stdio.h>
#include <string.h>

static char dir[512];

static const char *write_conf(const char *name, const char *text)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static int setup(void **state)
{
    (void)state;
    vmf_test_tmpdir(dir, sizeof dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vmf_test_rmtree(dir);
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    vmfd_config c;
    char err[256];
    vmfd_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8077");
    assert_string_equal(c.socket_path, "");
    assert_string_equal(c.token_file, "");
    assert_string_equal(c.state_dir, "/var/lib/vmfd");
    assert_int_equal(c.max_body_bytes, 256u << 20);
    assert_int_equal(c.checkpoint_every, 1);
    assert_int_equal(c.keep_checkpoints, 10);
    assert_int_equal(c.payload_retention_days, 0);
    assert_int_equal(c.mode, VMFD_MODE_CLASSIFIER);
    assert_int_equal(c.dim, 0);
    assert_int_equal(c.k_max, 5);
    vmf_assert_close(c.alpha, 0.7, 0, 0);
    vmf_assert_close(c.t0, 2.0, 0, 0);
    assert_int_equal(c.minibatch, 256);
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.refine_rows, 256);
    assert_int_equal(c.inbox_enabled, 1);
    assert_int_equal(c.log_level, 6);
    assert_int_equal(vmfd_config_validate(&c, err, sizeof err), 0);
}

/* The shipped file documents every key with its default: loading it changes nothing. */
static void test_shipped_file_is_the_defaults(void **state)
{
    (void)state;
    vmfd_config def, c;
    char err[512];
    vmfd_config_defaults(&def);
    vmfd_config_defaults(&c);
    c.k_max = 99; /* must be reset by the file */
    c.log_level = 7;
    int rc = vmfd_config_load(&c, VMF_SOURCE_DIR "/config/vmfd.conf", err, sizeof err);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen, def.listen);
    assert_string_equal(c.state_dir, def.state_dir);
    assert_int_equal(c.max_body_bytes, def.max_body_bytes);
    assert_int_equal(c.max_header_bytes, def.max_header_bytes);
    assert_int_equal(c.max_connections, def.max_connections);
    assert_int_equal(c.idle_timeout_ms, def.idle_timeout_ms);
    assert_int_equal(c.predict_max_rows, def.predict_max_rows);
    assert_int_equal(c.queue_length, def.queue_length);
    assert_int_equal(c.checkpoint_every, def.checkpoint_every);
    assert_int_equal(c.keep_checkpoints, def.keep_checkpoints);
    assert_int_equal(c.payload_retention_days, def.payload_retention_days);
    assert_int_equal(c.mode, def.mode);
    assert_int_equal(c.dim, def.dim);
    assert_int_equal(c.k_max, def.k_max);
    assert_true(c.alpha == def.alpha && c.t0 == def.t0 && c.eta_floor == def.eta_floor);
    assert_int_equal(c.minibatch, def.minibatch);
    assert_int_equal(c.seed, def.seed);
    assert_int_equal(c.refine_rows, def.refine_rows);
    assert_true(c.novelty_threshold == def.novelty_threshold);
    assert_int_equal(c.inbox_enabled, def.inbox_enabled);
    assert_int_equal(c.inbox_scan_ms, def.inbox_scan_ms);
    assert_int_equal(c.log_level, def.log_level);
}

static void test_values(void **state)
{
    (void)state;
    vmfd_config c;
    char err[256];
    vmfd_config_defaults(&c);
    const char *path = write_conf("ok.conf", "; comment\n"
                                             "[server]\n"
                                             "listen = [::1]:0\n"
                                             "socket = /run/vmfd/vmfd.sock\n"
                                             "idle_timeout_ms = 500   ; inline comment\n"
                                             "[store]\n"
                                             "payload_retention_days = -1\n"
                                             "[model]\n"
                                             "mode = clustering\n"
                                             "alpha = 0.55\n"
                                             "seed = 18446744073709551615\n"
                                             "[inbox]\n"
                                             "enabled = off\n"
                                             "[log]\n"
                                             "level = debug\n");
    assert_int_equal(vmfd_config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.listen, "[::1]:0");
    assert_string_equal(c.socket_path, "/run/vmfd/vmfd.sock");
    assert_int_equal(c.idle_timeout_ms, 500);
    assert_int_equal(c.payload_retention_days, -1);
    assert_int_equal(c.mode, VMFD_MODE_CLUSTERING);
    vmf_assert_close(c.alpha, 0.55, 0, 0);
    assert_true(c.seed == UINT64_MAX);
    assert_int_equal(c.inbox_enabled, 0);
    assert_int_equal(c.log_level, 7);
    char host[64];
    int port;
    assert_int_equal(vmfd_config_split_listen("[::1]:8077", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8077);
    assert_int_equal(vmfd_config_split_listen("127.0.0.1:65536", host, sizeof host, &port), -1);
    assert_int_equal(vmfd_config_split_listen(":80", host, sizeof host, &port), -1);
    assert_int_equal(vmfd_config_split_listen("localhost", host, sizeof host, &port), -1);
}

typedef struct bad_case {
    const char *text;
    const char *message; /* expected after "PATH:" */
} bad_case;

static void test_errors_name_the_line(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"[server]\nlisten = 1.2.3.4\n", "2: listen: '1.2.3.4' is not HOST:PORT"},
        {"[server]\n\nmax_body_bytes = 12\n", "3: max_body_bytes: 12 is outside [1024,"},
        {"[server]\nmax_connections = -5\n", "2: max_connections: '-5' is not a non-negative"},
        {"[server]\nidle_timeout_ms = 10s\n", "2: idle_timeout_ms: '10s' is not a non-negative"},
        {"[store]\nqueue_length = 0\n", "2: queue_length: 0 is outside [1, 1000000]"},
        {"[store]\npayload_retention_days = -2\n", "2: payload_retention_days: '-2' is not an"},
        {"[model]\nmode = kmeans\n", "2: mode: 'kmeans' is not one of classifier, clustering"},
        {"[model]\nalpha = 0.2\n", "2: alpha: '0.2' is not a number in [0.5, 1]"},
        {"[model]\nalpha = nan\n", "2: alpha: 'nan' is not a number"},
        {"[model]\nk_max = 0\n", "2: k_max: 0 is outside [1, 1000]"},
        {"[model]\nrefine_rows = 1048577\n", "2: refine_rows: 1048577 is outside [0, 1048576]"},
        {"[inbox]\nenabled = maybe\n", "2: enabled: 'maybe' is not a boolean"},
        {"[log]\nlevel = loud\n", "2: level: 'loud' is not one of"},
        {"[model]\nk_max = 3\n\n[model]\nk_max = 4\n", "5: duplicate key 'k_max' in section"},
        {"[server]\nlisten = 127.0.0.1:1\nport = 80\n",
         "3: unknown key 'port' in section [server]"},
        {"listen = 127.0.0.1:1\n", "1: unknown section []"},
        {"[servers]\nlisten = 127.0.0.1:1\n", "2: unknown section [servers]"},
        {"[server]\nno equals sign here\n[model]\nk_max = 0\n", "2: syntax error"},
        {"[server\nlisten = 1\n", "1: syntax error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vmfd_config c;
        char err[512], expect[1500];
        vmfd_config_defaults(&c);
        const char *path = write_conf("bad.conf", cases[i].text);
        assert_int_equal(vmfd_config_load(&c, path, err, sizeof err), -1);
        snprintf(expect, sizeof expect, "%s:%s", path, cases[i].message);
        if (strncmp(err, expect, strlen(expect)) != 0) {
            print_error("case %zu: got '%s', want prefix '%s'\n", i, err, expect);
            fail();
        }
    }
    vmfd_config c;
    char err[512];
    vmfd_config_defaults(&c);
    assert_int_equal(vmfd_config_load(&c, "/nonexistent/vmfd.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/vmfd.conf:0: cannot open"));
}

static void test_set_and_validate(void **state)
{
    (void)state;
    vmfd_config c;
    char err[256];
    vmfd_config_defaults(&c);
    assert_int_equal(vmfd_config_set(&c, "store", "state_dir", "/tmp/x", err, sizeof err), 0);
    assert_string_equal(c.state_dir, "/tmp/x");
    assert_int_equal(vmfd_config_set(&c, "server", "listen", "", err, sizeof err), 0);
    assert_int_equal(vmfd_config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "nothing to listen on"));
    assert_int_equal(vmfd_config_set(&c, "server", "socket", "/tmp/vmfd.sock", err, sizeof err), 0);
    assert_int_equal(vmfd_config_validate(&c, err, sizeof err), 0);
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(vmfd_config_set(&c, "server", "socket", longpath, err, sizeof err), 0);
    assert_int_equal(vmfd_config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "socket: path longer than 107 bytes"));
    assert_int_equal(vmfd_config_set(&c, "store", "state_dir", "", err, sizeof err), 0);
    assert_int_equal(vmfd_config_validate(&c, err, sizeof err), -1);
    int level;
    assert_int_equal(vmfd_config_parse_level("warning", &level), 0);
    assert_int_equal(level, 4);
    assert_int_equal(vmfd_config_parse_level("ERR", &level), 0);
    assert_int_equal(level, 3);
    assert_int_equal(vmfd_config_parse_level("5", &level), 0);
    assert_int_equal(level, 5);
    assert_int_equal(vmfd_config_parse_level("8", &level), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shipped_file_is_the_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_set_and_validate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
