/*
 * util.c - small numeric and timing helpers shared by the core modules.
 */
#include "internal.h"

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
