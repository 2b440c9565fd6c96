/*
 * test_fileio.c - the atomic writer every output goes through
 * (vmf_file_write_atomic and vmf_atomic_file_*, vmfmm/io.h): an existing file
 * is replaced whole, the umask is honoured, and every failure (a parent that
 * is a file, a missing directory, a target that is a directory, a directory
 * without write permission, an aborted stream, memory running out) names the
 * path, sets errno and leaves the directory as it was, with no temporary file.
 */
#include "vmf_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *join(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static void assert_file_is(const char *path, const char *text)
{
    size_t len = 0;
    char *got = vmf_test_read_file(path, &len);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(got, text, len);
    free(got);
}

/* A longer file is replaced by a shorter one whole: no tail of the old bytes. */
static void test_replaces_whole(void **state)
{
    const char *dir = *state;
    char path[1024];
    join(path, sizeof path, dir, "out.txt");
    char big[10000];
    memset(big, 'a', sizeof big);
    vmf_assert_ok(vmf_file_write_atomic(path, big, sizeof big));
    vmf_assert_ok(vmf_file_write_atomic(path, "short\n", 6));
    assert_file_is(path, "short\n");
    vmf_test_assert_only_file(dir, "out.txt");
    /* Zero bytes make an empty file (data may then be NULL). */
    vmf_assert_ok(vmf_file_write_atomic(path, NULL, 0));
    assert_file_is(path, "");
    vmf_test_assert_only_file(dir, "out.txt");
}

/* The new file's mode is 0666 less the umask, as fopen would give. */
static void test_mode_honours_umask(void **state)
{
    const char *dir = *state;
    char path[1024];
    join(path, sizeof path, dir, "m.txt");
    mode_t old = umask(027);
    int rc = vmf_file_write_atomic(path, "x", 1);
    umask(old);
    vmf_assert_ok(rc);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

/* Each failure names the path, keeps errno, and leaves nothing behind. */
static void test_failures_leave_nothing(void **state)
{
    const char *dir = *state;
    char file[1024], path[1100];
    join(file, sizeof file, dir, "plain");
    vmf_test_write_text(file, "keep");

    /* The parent is a regular file. */
    snprintf(path, sizeof path, "%s/child.json", file);
    errno = 0;
    assert_int_equal(vmf_file_write_atomic(path, "{}", 2), VMF_EIO);
    assert_int_equal(errno, ENOTDIR);
    assert_non_null(strstr(vmf_last_error(), path));
    assert_non_null(strstr(vmf_last_error(), "cannot create a temporary file"));

    /* The parent does not exist. */
    snprintf(path, sizeof path, "%s/missing/x.csv", dir);
    assert_int_equal(vmf_file_write_atomic(path, "1\n", 2), VMF_EIO);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(vmf_last_error(), path));

    /* The target is a directory: the temporary file is written, the rename
     * fails, and the temporary file is removed again. */
    join(path, sizeof path, dir, "sub");
    assert_int_equal(mkdir(path, 0777), 0);
    assert_int_equal(vmf_file_write_atomic(path, "data", 4), VMF_EIO);
    assert_int_equal(errno, EISDIR);
    assert_non_null(strstr(vmf_last_error(), "cannot rename the temporary file into place"));
    assert_int_equal(rmdir(path), 0);
    vmf_test_assert_only_file(dir, "plain");
    assert_file_is(file, "keep");

    /* A directory without write permission (root is exempt from the check). */
    if (geteuid() != 0) {
        char ro[1024];
        join(ro, sizeof ro, dir, "ro");
        assert_int_equal(mkdir(ro, 0555), 0);
        snprintf(path, sizeof path, "%s/x", ro);
        assert_int_equal(vmf_file_write_atomic(path, "x", 1), VMF_EIO);
        assert_int_equal(errno, EACCES);
        assert_int_equal(chmod(ro, 0755), 0);
        assert_int_equal(rmdir(ro), 0); /* rmdir proves it empty */
    }
    vmf_test_assert_only_file(dir, "plain");
}

/* The streaming form: an abort keeps the old file; a commit replaces it. */
static void test_stream(void **state)
{
    const char *dir = *state;
    char path[1024];
    join(path, sizeof path, dir, "daily.csv");
    vmf_assert_ok(vmf_file_write_atomic(path, "old\n", 4));

    vmf_atomic_file *f = NULL;
    vmf_assert_ok(vmf_atomic_file_open(path, &f));
    assert_non_null(vmf_atomic_file_stream(f));
    fprintf(vmf_atomic_file_stream(f), "half written\n");
    vmf_atomic_file_abort(f);
    assert_file_is(path, "old\n");
    vmf_test_assert_only_file(dir, "daily.csv");

    vmf_assert_ok(vmf_atomic_file_open(path, &f));
    for (int i = 0; i < 1000; i++)
        fprintf(vmf_atomic_file_stream(f), "%d,%d\n", i, i * i);
    /* Until the commit, readers still see the old file. */
    assert_file_is(path, "old\n");
    vmf_assert_ok(vmf_atomic_file_commit(f));
    size_t len = 0;
    char *got = vmf_test_read_file(path, &len);
    assert_int_equal(strncmp(got, "0,0\n1,1\n2,4\n", 12), 0);
    assert_non_null(strstr(got, "\n999,998001\n"));
    free(got);
    vmf_test_assert_only_file(dir, "daily.csv");

    /* Bad arguments. */
    assert_int_equal(vmf_atomic_file_open(path, NULL), VMF_EINVAL);
    assert_int_equal(vmf_atomic_file_open("", &f), VMF_EINVAL);
    assert_null(f);
    assert_int_equal(vmf_atomic_file_commit(NULL), VMF_EINVAL);
    assert_null(vmf_atomic_file_stream(NULL));
    vmf_atomic_file_abort(NULL);
    assert_int_equal(vmf_file_write_atomic(path, NULL, 3), VMF_EINVAL);
}

/* Memory running out at any allocation is VMF_ENOMEM with nothing left behind. */
static void test_allocation_failures(void **state)
{
    const char *dir = *state;
    char path[1024];
    join(path, sizeof path, dir, "a.json");
    int ok_seen = 0;
    for (long k = 0; k < 6; k++) {
        vmf_debug_fail_alloc_after(k);
        int r1 = vmf_file_write_atomic(path, "[1]", 3);
        vmf_atomic_file *f = NULL;
        int r2 = vmf_atomic_file_open(path, &f);
        vmf_debug_fail_alloc_after(-1);
        assert_true(r1 == VMF_OK || r1 == VMF_ENOMEM);
        assert_true(r2 == VMF_OK || r2 == VMF_ENOMEM);
        if (r2 == VMF_OK) {
            fputs("[2]", vmf_atomic_file_stream(f));
            vmf_assert_ok(vmf_atomic_file_commit(f));
        } else {
            assert_null(f);
        }
        if (r1 == VMF_OK || r2 == VMF_OK)
            vmf_test_assert_only_file(dir, "a.json");
        ok_seen += r1 == VMF_OK && r2 == VMF_OK;
    }
    assert_true(ok_seen > 0);
    assert_file_is(path, "[2]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replaces_whole, vmf_test_tmpdir_setup,
                                        vmf_test_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_mode_honours_umask, vmf_test_tmpdir_setup,
                                        vmf_test_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_nothing, vmf_test_tmpdir_setup,
                                        vmf_test_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_stream, vmf_test_tmpdir_setup,
                                        vmf_test_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, vmf_test_tmpdir_setup,
                                        vmf_test_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
