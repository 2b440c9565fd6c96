/*
 * test_vmfd_powerloss.c - power-loss consistency: vmfd runs under
 * libvmfd_powerloss.so (tests/e2e/powerloss_shim.c), which at a seeded
 * operation discards every store write not yet covered by an fsync and
 * SIGKILLs the daemon, as a power cut would leave the disk. The client sends
 * batches in order and re-sends every batch it has no answer for after
 * each restart; each start gets a new seeded cut point, so cuts land in
 * startup, recovery, ingest commits, applies, checkpoints and WAL
 * checkpoints. After at least MIN_CUTS cuts a clean run finishes: every
 * batch the daemon answered 202 or 200 is present, each applied exactly
 * once, and the model is bit-identical to an uninterrupted run's.
 */
#define _GNU_SOURCE
#include "vmfd_e2e_util.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define D         8
#define ROWS      30
#define N_BATCHES 800
#define MIN_CUTS  250
#define MAX_CUT   120 /* cut points are drawn in [1, MAX_CUT] store operations */
#define SEED      20261202u

/* The state of e2e_rand (splitmix64), which draws the cut points. */
static uint64_t rng_state = SEED;

/* Batch b: ROWS unit rows in d = D around 5 axes, labels 0..4. */
static void batch_rows(int b, float *x, int64_t *y)
{
    uint64_t s = 1000003u * (uint64_t)(b + 1);
    for (size_t r = 0; r < ROWS; r++) {
        size_t c = (r + (size_t)b) % 5;
        e2e_axis_row(&s, x + r * D, D, c, 3.0, 0.5);
        y[r] = (int64_t)c;
    }
}

/*
 * Starts vmfd (under the shim when cut > 0). Returns 0 with p->pid/port set,
 * or -1 when it died before listening (a cut during startup).
 */
static int pl_start(e2e_proc *p, long cut)
{
    char dirv[700], cutv[64];
    snprintf(dirv, sizeof dirv, "VMFD_PL_DIR=%s", p->state);
    snprintf(cutv, sizeof cutv, "VMFD_PL_CUT=%ld", cut);
    const char *const env[] = {"LD_PRELOAD=" VMF_BIN_DIR "/libvmfd_powerloss.so", dirv, cutv, NULL};
    int st = 0;
    if (e2e_spawn(p, NULL, cut > 0 ? env : NULL, 15000, &st) == 0)
        return 0;
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
        e2e_fail_startup(p, st);
    return -1;
}

static void test_power_cuts(void **state)
{
    (void)state;
    char shim[600];
    snprintf(shim, sizeof shim, "%s/libvmfd_powerloss.so", VMF_BIN_DIR);
    if (access(shim, R_OK) != 0) {
        print_message("skipped: %s is not built\n", shim);
        skip();
    }
    if (getenv("VMFD_TEST_BIN") == NULL && strstr(VMF_BIN_DIR, "asan")) {
        print_message("skipped: an LD_PRELOAD shim cannot go first under ASan\n");
        skip();
    }
    static void *npz[N_BATCHES];
    static size_t len[N_BATCHES];
    vmf_classifier *ref = e2e_ref_new();
    for (int b = 0; b < N_BATCHES; b++) {
        float x[ROWS * D];
        int64_t y[ROWS];
        batch_rows(b, x, y);
        e2e_npz(x, ROWS, D, y, &npz[b], &len[b]);
        e2e_ref_learn(ref, x, ROWS, D, y);
    }
    e2e_proc p;
    e2e_init(&p);
    int acked = 0, cuts = 0, starts = 0, early = 0;
    while (cuts < MIN_CUTS) {
        long cut = 1 + (long)(e2e_rand(&rng_state) % MAX_CUT);
        starts++;
        if (pl_start(&p, cut) != 0) {
            cuts++;
            early++;
            continue;
        }
        while (acked < N_BATCHES) {
            char key[32];
            snprintf(key, sizeof key, "b%04d", acked);
            int status = e2e_put_npz(p.port, key, npz[acked], len[acked], NULL);
            if (status == 202 || status == 200) {
                acked++;
                continue;
            }
            if (status == 503) {
                e2e_sleep_ms(2);
                continue;
            }
            if (status != -1) {
                print_error("seed %u: unexpected status %d for batch %d\n", SEED, status, acked);
                fail();
            }
            break; /* the power went out */
        }
        /* The cut may come from the applies behind the last answers. */
        int rc = e2e_wait_exit(&p, 3000);
        if (rc < 0) {
            print_error("seed %u: cut %ld was never reached (acked %d of %d)\n", SEED, cut, acked,
                        N_BATCHES);
            fail();
        }
        assert_int_equal(rc, 128 + SIGKILL);
        cuts++;
    }
    print_message("acknowledged before the power stayed on: %d of %d batches\n", acked, N_BATCHES);
    assert_true(acked > 0);
    /* Power stays on: the rest is sent, everything applies. */
    assert_int_equal(pl_start(&p, 0), 0);
    while (acked < N_BATCHES) {
        char path[64];
        snprintf(path, sizeof path, "/v1/batches/b%04d", acked);
        e2e_resp r;
        assert_int_equal(
            e2e_http(p.port, "PUT", path, "application/x-npz", npz[acked], len[acked], NULL, &r),
            0);
        if (r.status == 202 || r.status == 200)
            acked++;
        else
            assert_int_equal(r.status, 503);
        e2e_resp_free(&r);
    }
    char st[32], last[32];
    snprintf(last, sizeof last, "b%04d", N_BATCHES - 1);
    if (strcmp(e2e_wait_batch(p.port, last, st, sizeof st, 120000), "applied") != 0) {
        print_error("seed %u: last batch is %s\n", SEED, st);
        fail();
    }
    print_message("seed %u: %d power cuts (%d during startup) over %d starts, %d batches\n", SEED,
                  cuts, early, starts, N_BATCHES);
    e2e_assert_all_applied(p.state, N_BATCHES, ref);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    char *log = e2e_read_file(p.log, NULL);
    int logged = 0, kinds[4] = {0, 0, 0, 0};
    static const char *const kind[4] = {"(write ", "(fdatasync ", "(fsync ", "(ftruncate "};
    for (const char *q = strstr(log, "powerloss: cut at"); q; q = strstr(q + 1, "powerloss: cut")) {
        logged++;
        const char *e = strchr(q, '\n');
        for (int k = 0; k < 4; k++) {
            const char *h = strstr(q, kind[k]);
            if (h && (!e || h < e))
                kinds[k]++;
        }
    }
    free(log);
    print_message("cut points tried: %d (logged by the shim: %d; before a write %d, an fdatasync "
                  "%d, an fsync %d, an ftruncate %d)\n",
                  cuts, logged, kinds[0], kinds[1], kinds[2], kinds[3]);
    assert_int_equal(logged, cuts);
    if (getenv("VMFD_TEST_KEEP"))
        print_message("kept %s\n", p.dir);
    else
        vmf_test_rmtree(p.dir);
    for (int b = 0; b < N_BATCHES; b++)
        free(npz[b]);
    vmf_classifier_free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
