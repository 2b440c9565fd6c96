/*
 * npy_internal.h - what the .npy reader (npy.c) and writer (npy_write.c)
 * share: the magic, numpy.save's alignment and growth padding, the string
 * chunk size, and two message and validation helpers. Never installed;
 * include it after internal.h.
 */
#ifndef VMFMM_NPY_INTERNAL_H
#define VMFMM_NPY_INTERNAL_H

#include <stddef.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .npy reader and writer use little-endian data in place; port the byte order first"
#endif

#define NPY_MAGIC     "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* numpy.save pads the header so that the data starts on a 64-byte boundary. */
#define NPY_ALIGN 64
/* numpy >= 1.24 leaves room to grow the first axis in place: it pads the dict
 * with 21 - len(str(shape[0])) spaces (format.GROWTH_AXIS_MAX_DIGITS). */
#define NPY_GROWTH_DIGITS 21
/* Strings are converted in chunks of about this many bytes of UTF-32. */
#define NPY_STR_CHUNK 65536

/* Python's repr of a shape tuple into buf [cap]: "()", "(3,)", "(2, 3)". */
const char *vmf__npy_shape_str(const size_t *shape, size_t ndim, char *buf, size_t cap);

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF); on
 * failure *bad is the offset of the first invalid byte. */
int vmf__npy_utf8_valid(const unsigned char *s, size_t n, size_t *bad);

#endif
