/*
 * alloc.c - the allocation functions every core module uses, with a per-thread
 * failure injector so that tests can walk every out-of-memory path.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Allocations left before injected failures start; negative disables. */
static _Thread_local long fail_countdown = -1;

void vmf_debug_fail_alloc_after(long countdown)
{
    fail_countdown = countdown;
}

static int injected_failure(void)
{
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown == 0)
        return 1;
    fail_countdown--;
    return 0;
}

void *vmf__malloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return malloc(size ? size : 1);
}

void *vmf__calloc(size_t count, size_t size)
{
    if (injected_failure())
        return NULL;
    if (count == 0 || size == 0)
        return calloc(1, 1);
    return calloc(count, size);
}

void *vmf__realloc(void *p, size_t size)
{
    if (injected_failure())
        return NULL;
    return realloc(p, size ? size : 1);
}

void vmf__free(void *p)
{
    free(p);
}

int vmf__mul_overflow(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

void *vmf__malloc_array(size_t count, size_t size)
{
    size_t bytes;
    if (vmf__mul_overflow(count, size, &bytes) != 0)
        return NULL;
    return vmf__malloc(bytes);
}

char *vmf__strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *r = vmf__malloc(len);
    if (r)
        memcpy(r, s, len);
    return r;
}
