/*
 * util.c - small numeric and timing helpers shared by the core modules.
 */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <time.h>

double vmf__logsumexp(const double *v, size_t n)
{
    double mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (v[i] > mx)
            mx = v[i];
    if (mx == -INFINITY)
        return -INFINITY;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += exp(v[i] - mx);
    return mx + log(s);
}

double vmf__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int vmf__json_dump(void *obj, char **json, const char *what)
{
    /* Dumped twice, to size the text and then straight into memory from our
     * own allocator, rather than copied out of jansson's. */
    const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(17);
    *json = NULL;
    size_t len = json_dumpb(obj, NULL, 0, flags);
    char *text = len ? vmf__malloc(len + 1) : NULL;
    if (!text || json_dumpb(obj, text, len, flags) != len) {
        vmf__free(text);
        return vmf__error(VMF_ENOMEM, "%s: out of memory", what);
    }
    text[len] = '\0';
    *json = text;
    return VMF_OK;
}
