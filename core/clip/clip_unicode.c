/*
 * clip_unicode.c - character classes, lower-casing and NFC data for the CLIP
 * tokenizer: binary searches over the tables of clip_unicode_tables.h, which
 * gen_unicode.py generates from Python's unicodedata (this file is
 * hand-written; the generator writes only the tables).
 */
#include "clip_internal.h"
#include "clip_unicode_tables.h"

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))

/* The third column of the [first, last, value] range containing cp, or 0. */
static uint32_t range_value(const uint32_t (*r)[3], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid][0])
            hi = mid;
        else if (cp > r[mid][1])
            lo = mid + 1;
        else
            return r[mid][2];
    }
    return 0;
}

int vmf__clip_char_class(uint32_t cp)
{
    return (int)range_value(class_ranges, ROWS(class_ranges), cp);
}

uint32_t vmf__clip_lower(uint32_t cp)
{
    const int32_t(*runs)[4] = lower_runs;
    size_t lo = 0, hi = ROWS(lower_runs);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t first = runs[mid][0];
        int32_t last = first + (runs[mid][1] - 1) * runs[mid][2];
        if ((int32_t)cp < first) {
            hi = mid;
        } else if ((int32_t)cp > last) {
            lo = mid + 1;
        } else {
            if (((int32_t)cp - first) % runs[mid][2] == 0)
                return (uint32_t)((int32_t)cp + runs[mid][3]);
            return cp;
        }
    }
    return cp;
}

int vmf__clip_case_kind(uint32_t cp)
{
    return (int)range_value(case_ranges, ROWS(case_ranges), cp);
}

int vmf__clip_ccc(uint32_t cp)
{
    return (int)range_value(ccc_ranges, ROWS(ccc_ranges), cp);
}

int vmf__clip_decompose(uint32_t cp, uint32_t *first, uint32_t *second)
{
    const uint32_t(*dec)[3] = decompositions;
    size_t lo = 0, hi = ROWS(decompositions);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < dec[mid][0]) {
            hi = mid;
        } else if (cp > dec[mid][0]) {
            lo = mid + 1;
        } else {
            *first = dec[mid][1];
            *second = dec[mid][2];
            return *second ? 2 : 1;
        }
    }
    return 0;
}

uint32_t vmf__clip_compose(uint32_t a, uint32_t b)
{
    const uint32_t(*comp)[3] = compositions;
    size_t lo = 0, hi = ROWS(compositions);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a < comp[mid][0] || (a == comp[mid][0] && b < comp[mid][1]))
            hi = mid;
        else if (a > comp[mid][0] || b > comp[mid][1])
            lo = mid + 1;
        else
            return comp[mid][2];
    }
    return 0;
}
