/*
 * test_vmfd_crash.c - crash safety: batches are sent to a real vmfd while a
 * killer process SIGKILLs it at seeded random moments (at least 100 kills,
 * during startup, recovery, ingest, apply and checkpoint writes); vmfd is
 * restarted each time and the client re-sends every batch it has no
 * acknowledgement for. At the end every batch is applied exactly once and
 * the final model is bit-identical to that of an in-process classifier fed
 * the batches in order, i.e. to a run that was never killed.
 *
 * Whether a random kill lands between a batch's acknowledgement and its
 * apply depends on the machine's speed, so the last N_TARGETED batches are
 * each sent to a fresh vmfd that is killed the moment its 202 arrives: the
 * batch is then durable but, almost always, not yet applied, and the next
 * start must re-apply it. The test asserts that this recovery path ran.
 */
#include "vmfd_e2e_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DAYS_PER_BATCH 5
#define N_BATCHES      40 /* days 1..200 */
#define MIN_KILLS      100
#define N_TARGETED     5 /* the last batches, each killed right after its 202 */
#define SEED           20261123u

typedef struct batch {
    char key[32];
    void *npz;
    size_t len;
} batch;

/* The state of e2e_rand (splitmix64), which draws the kill delays. */
static uint64_t rng_state = SEED;

static void test_sigkill_at_random(void **state)
{
    (void)state;
    e2e_stream s;
    e2e_stream_load(&s);
    batch b[N_BATCHES];
    vmf_classifier *ref = e2e_ref_new();
    for (int i = 0; i < N_BATCHES; i++) {
        size_t total = 0;
        float *x = NULL;
        int64_t *y = NULL;
        for (int k = 0; k < DAYS_PER_BATCH; k++) {
            float *dx;
            int64_t *dy;
            size_t m = e2e_stream_day(&s, i * DAYS_PER_BATCH + k + 1, &dx, &dy);
            x = realloc(x, (total + m) * s.d * sizeof *x);
            y = realloc(y, (total + m) * sizeof *y);
            assert_non_null(x);
            assert_non_null(y);
            memcpy(x + total * s.d, dx, m * s.d * sizeof *x);
            memcpy(y + total, dy, m * sizeof *y);
            total += m;
            free(dx);
            free(dy);
        }
        snprintf(b[i].key, sizeof b[i].key, "days-%03d", i * DAYS_PER_BATCH + 1);
        e2e_npz(x, total, s.d, y, &b[i].npz, &b[i].len);
        e2e_ref_learn(ref, x, total, s.d, y);
        free(x);
        free(y);
    }

    e2e_proc p;
    e2e_init(&p);
    int acked = 0, kills = 0;
    while (kills < MIN_KILLS || acked < N_BATCHES - N_TARGETED) {
        e2e_start(&p, NULL, 0);
        int killing = kills < MIN_KILLS;
        pid_t killer = -1;
        if (killing) {
            unsigned delay_us = e2e_rand(&rng_state) % 60000u;
            killer = fork();
            assert_true(killer >= 0);
            if (killer == 0) {
                struct timespec ts = {0, (long)delay_us * 1000L};
                nanosleep(&ts, NULL);
                kill(p.pid, SIGKILL);
                _exit(0);
            }
        }
        /* Send in order from the first batch without an acknowledgement. */
        while (acked < N_BATCHES - N_TARGETED) {
            int status = e2e_put_npz(p.port, b[acked].key, b[acked].npz, b[acked].len, NULL);
            if (status == 202 || status == 200) {
                acked++;
                continue;
            }
            if (status == 503) { /* stopping or queue full: retry */
                e2e_sleep_ms(5);
                continue;
            }
            if (status != -1) {
                print_error("seed %u: unexpected status %d for %s\n", SEED, status, b[acked].key);
                fail();
            }
            break; /* the daemon died under us */
        }
        if (killing) {
            int st;
            waitpid(killer, &st, 0);
            int rc = e2e_wait_exit(&p, 30000);
            assert_int_equal(rc, 128 + SIGKILL);
            kills++;
        }
    }
    /* Targeted kills: SIGKILL as soon as a batch is acknowledged. */
    while (acked < N_BATCHES) {
        if (p.pid == 0)
            e2e_start(&p, NULL, 0);
        int status = e2e_put_npz(p.port, b[acked].key, b[acked].npz, b[acked].len, NULL);
        if (status == 503) {
            e2e_sleep_ms(5);
            continue;
        }
        assert_true(status == 202 || status == 200);
        acked++;
        assert_int_equal(e2e_stop(&p, SIGKILL), 128 + SIGKILL);
        kills++;
    }
    /* A daemon that was never killed finishes: wait until everything is applied. */
    if (p.pid == 0)
        e2e_start(&p, NULL, 0);
    char st[32];
    if (strcmp(e2e_wait_batch(p.port, b[N_BATCHES - 1].key, st, sizeof st, 60000), "applied") !=
        0) {
        print_error("seed %u: last batch is %s\n", SEED, st);
        fail();
    }
    e2e_assert_all_applied(p.state, N_BATCHES, ref);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    print_message("seed %u: %d kills, %d batches\n", SEED, kills, N_BATCHES);

    /* The kills must have hit recovery work: acknowledged batches re-applied at a start. */
    char *log = e2e_read_file(p.log, NULL);
    assert_non_null(log);
    int reapplied = 0;
    for (const char *q = strstr(log, "reapplied="); q; q = strstr(q + 1, "reapplied="))
        reapplied += atoi(q + 10) > 0;
    print_message("starts that re-applied queued batches: %d\n", reapplied);
    assert_true(reapplied >= 1);
    if (getenv("VMFD_TEST_KEEP"))
        print_message("kept %s\n", p.dir);
    else
        vmf_test_rmtree(p.dir);
    free(log);
    for (int i = 0; i < N_BATCHES; i++)
        free(b[i].npz);
    vmf_classifier_free(ref);
    e2e_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_at_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
