/*
 * io_battery.h - runs the malformed-input battery (tests/vectors/malformed/
 * cases.tsv, written by gen_malformed.py) through a reader, for test_npy,
 * test_npz and test_csv. Each case of the chosen api must return its expected
 * status with a one-line message that names the file and contains the case's
 * keyword. Included by one test file each, hence the static functions.
 */
#ifndef VMF_IO_BATTERY_H
#define VMF_IO_BATTERY_H

#include "vmf_test.h"

#include <stdio.h>
#include <string.h>

typedef int (*battery_fn)(const char *path);

static int battery_status(const char *name)
{
    static const struct {
        const char *name;
        int code;
    } codes[] = {{"EINVAL", VMF_EINVAL},   {"ENOMEM", VMF_ENOMEM}, {"EIO", VMF_EIO},
                 {"EFORMAT", VMF_EFORMAT}, {"ERANGE", VMF_ERANGE}, {"ENOTFOUND", VMF_ENOTFOUND}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(codes[i].name, name) == 0)
            return codes[i].code;
    return 1; /* matches no status: the case fails loudly */
}

/* Runs every case of `api`; returns how many ran, failing the test on any mismatch. */
static size_t battery_run(const char *api, battery_fn fn)
{
    char table[1024], line[1024];
    snprintf(table, sizeof table, "%s/malformed/cases.tsv", VMF_TEST_VECTORS_DIR);
    FILE *fp = fopen(table, "r");
    assert_non_null(fp);
    size_t ran = 0, failed = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *field[5] = {0};
        char *p = line;
        for (int i = 0; i < 5 && p; i++) {
            field[i] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = '\0';
        }
        assert_non_null(field[3]);
        if (strcmp(field[1], api) != 0)
            continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/malformed/%s", VMF_TEST_VECTORS_DIR, field[0]);
        int rc = fn(path);
        const char *msg = vmf_last_error();
        int want = battery_status(field[2]);
        if (rc != want || !strstr(msg, field[3]) || strchr(msg, '\n') || !strstr(msg, path)) {
            print_error("%s: got %d (%s) \"%s\"; want %s with \"%s\" and the path\n", field[0], rc,
                        vmf_strerror(rc), msg, field[2], field[3]);
            failed++;
        } else {
            const char *at = strstr(msg, path);
            print_message("  %-28s %.*s%s\n", field[0], (int)(at - msg), msg, at + strlen(path));
        }
        ran++;
    }
    fclose(fp);
    if (failed)
        fail_msg("%zu of %zu '%s' cases failed", failed, ran, api);
    return ran;
}

#endif
