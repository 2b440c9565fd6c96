/*
 * error.c - error codes and the per-thread detailed message (recorded,
 * prefixed, re-raised).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

/* One message buffer per thread, so concurrent callers never see each other's errors. */
static _Thread_local char last_error[512];

const char *vmf_version(void)
{
#define VMF_STR2(x) #x
#define VMF_STR(x)  VMF_STR2(x)
    return VMF_STR(VMF_VERSION_MAJOR) "." VMF_STR(VMF_VERSION_MINOR) "." VMF_STR(VMF_VERSION_PATCH);
}

const char *vmf_strerror(int rc)
{
    switch (rc) {
    case VMF_OK:
        return "success";
    case VMF_EINVAL:
        return "invalid argument or data";
    case VMF_ENOMEM:
        return "out of memory";
    case VMF_EIO:
        return "input/output error";
    case VMF_EFORMAT:
        return "malformed file or state";
    case VMF_ERANGE:
        return "value out of range";
    case VMF_ENOTFOUND:
        return "not found";
    default:
        return "unknown error";
    }
}

const char *vmf_last_error(void)
{
    return last_error;
}

int vmf__error(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return rc;
}

int vmf__fail(int rc, const char *what, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vmf__error(rc, "%s: %s", what, msg);
}

int vmf__error_wrap(int rc, const char *a, const char *b)
{
    char prev[512];
    snprintf(prev, sizeof prev, "%s", vmf_last_error());
    if (b)
        return vmf__error(rc, "%s: %s: %s", a, b, prev);
    return vmf__error(rc, "%s: %s", a, prev);
}
