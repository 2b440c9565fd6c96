/*
 * labels.c - label views and the label -> class index table.
 *
 * The table is an open-addressing hash (linear probing, power-of-two capacity,
 * load factor at most 1/2) over the class indices; the labels themselves live
 * in arrays indexed by class, so indices are stable and follow first
 * appearance.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct vmf_label_table {
    int is_str;       /* kind of the labels held; meaningful once size > 0 */
    size_t size;      /* classes */
    size_t cap;       /* allocated entries of ints / strs */
    int64_t *ints;    /* [cap] when !is_str */
    char **strs;      /* [cap] when is_str, owned */
    size_t slots;     /* hash capacity, a power of two */
    int32_t *slot_of; /* [slots]: class index or -1 */
};

int vmf_labels_from_array(const vmf_array *a, vmf_labels *view, int64_t **storage)
{
    *storage = NULL;
    memset(view, 0, sizeof *view);
    if (!a || a->ndim != 1)
        return vmf__error(VMF_EINVAL, "labels must be a 1-D array");
    size_t n = a->count;
    if (a->dtype == VMF_DTYPE_STR) {
        view->n = n;
        view->strs = (const char *const *)a->data;
        return VMF_OK;
    }
    if (a->dtype == VMF_DTYPE_F32 || a->dtype == VMF_DTYPE_F64)
        return vmf__error(VMF_EINVAL, "labels must be integers or strings, not floats");
    int64_t *v = vmf__malloc_array(n ? n : 1, sizeof *v);
    if (!v)
        return vmf__error(VMF_ENOMEM, "out of memory for %zu labels", n);
    for (size_t i = 0; i < n; i++) {
        switch (a->dtype) {
        case VMF_DTYPE_I16:
            v[i] = ((const int16_t *)a->data)[i];
            break;
        case VMF_DTYPE_I32:
            v[i] = ((const int32_t *)a->data)[i];
            break;
        case VMF_DTYPE_I64:
            v[i] = ((const int64_t *)a->data)[i];
            break;
        default:
            v[i] = ((const uint8_t *)a->data)[i];
            break;
        }
    }
    view->n = n;
    view->ints = v;
    *storage = v;
    return VMF_OK;
}

static uint64_t hash_int(int64_t v)
{
    uint64_t z = (uint64_t)v + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int vmf_label_table_new(vmf_label_table **out)
{
    *out = NULL;
    vmf_label_table *t = vmf__calloc(1, sizeof *t);
    if (!t)
        return vmf__error(VMF_ENOMEM, "out of memory for a label table");
    t->slots = 16;
    t->slot_of = vmf__malloc_array(t->slots, sizeof *t->slot_of);
    if (!t->slot_of) {
        vmf__free(t);
        return vmf__error(VMF_ENOMEM, "out of memory for a label table");
    }
    memset(t->slot_of, 0xff, t->slots * sizeof *t->slot_of);
    *out = t;
    return VMF_OK;
}

void vmf_label_table_free(vmf_label_table *t)
{
    if (!t)
        return;
    if (t->strs)
        for (size_t i = 0; i < t->size; i++)
            vmf__free(t->strs[i]);
    vmf__free(t->strs);
    vmf__free(t->ints);
    vmf__free(t->slot_of);
    vmf__free(t);
}

/* Slot holding label i of y, or the empty slot where it would go. */
static size_t find_slot(const vmf_label_table *t, const vmf_labels *y, size_t i, int *found)
{
    uint64_t h = y->strs ? hash_str(y->strs[i]) : hash_int(y->ints[i]);
    size_t mask = t->slots - 1;
    for (size_t s = (size_t)h & mask;; s = (s + 1) & mask) {
        int32_t c = t->slot_of[s];
        if (c < 0) {
            *found = 0;
            return s;
        }
        int eq = y->strs ? strcmp(t->strs[c], y->strs[i]) == 0 : t->ints[c] == y->ints[i];
        if (eq) {
            *found = 1;
            return s;
        }
    }
}

static int check_view(const vmf_label_table *t, const vmf_labels *y)
{
    if (!y || (!y->ints == !y->strs && y->n > 0))
        return vmf__error(VMF_EINVAL, "labels must be either integers or strings");
    if (t->size > 0 && y->n > 0 && (y->strs != NULL) != (t->is_str != 0))
        return vmf__error(VMF_EINVAL, "labels are %s but the model's classes are %s",
                          y->strs ? "strings" : "integers", t->is_str ? "strings" : "integers");
    if (y->strs)
        for (size_t i = 0; i < y->n; i++)
            if (!y->strs[i])
                return vmf__error(VMF_EINVAL, "label %zu is NULL", i);
    return VMF_OK;
}

static int grow_hash(vmf_label_table *t)
{
    size_t slots = t->slots * 2;
    int32_t *slot_of = vmf__malloc_array(slots, sizeof *slot_of);
    if (!slot_of)
        return vmf__error(VMF_ENOMEM, "out of memory growing a label table");
    memset(slot_of, 0xff, slots * sizeof *slot_of);
    for (size_t c = 0; c < t->size; c++) {
        uint64_t h = t->is_str ? hash_str(t->strs[c]) : hash_int(t->ints[c]);
        size_t s = (size_t)h & (slots - 1);
        while (slot_of[s] >= 0)
            s = (s + 1) & (slots - 1);
        slot_of[s] = (int32_t)c;
    }
    vmf__free(t->slot_of);
    t->slot_of = slot_of;
    t->slots = slots;
    return VMF_OK;
}

static int add_label(vmf_label_table *t, const vmf_labels *y, size_t i)
{
    if (t->size >= INT32_MAX)
        return vmf__error(VMF_ERANGE, "too many classes");
    if (t->size == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        if (y->strs) {
            char **s = vmf__realloc(t->strs, cap * sizeof *s);
            if (!s)
                return vmf__error(VMF_ENOMEM, "out of memory for labels");
            t->strs = s;
        } else {
            int64_t *v = vmf__realloc(t->ints, cap * sizeof *v);
            if (!v)
                return vmf__error(VMF_ENOMEM, "out of memory for labels");
            t->ints = v;
        }
        t->cap = cap;
    }
    if ((t->size + 1) * 2 > t->slots) {
        int rc = grow_hash(t);
        if (rc)
            return rc;
    }
    if (y->strs) {
        char *s = vmf__strdup(y->strs[i]);
        if (!s)
            return vmf__error(VMF_ENOMEM, "out of memory for labels");
        t->strs[t->size] = s;
    } else {
        t->ints[t->size] = y->ints[i];
    }
    t->is_str = y->strs != NULL;
    int found;
    size_t s = find_slot(t, y, i, &found);
    t->slot_of[s] = (int32_t)t->size;
    t->size++;
    return VMF_OK;
}

/* Removes the classes added since `size0`, restoring the table. */
static void truncate_to(vmf_label_table *t, size_t size0)
{
    if (t->size == size0)
        return;
    for (size_t c = size0; c < t->size; c++)
        if (t->is_str)
            vmf__free(t->strs[c]);
    t->size = size0;
    for (size_t s = 0; s < t->slots; s++)
        t->slot_of[s] = -1;
    for (size_t c = 0; c < t->size; c++) {
        uint64_t h = t->is_str ? hash_str(t->strs[c]) : hash_int(t->ints[c]);
        size_t s = (size_t)h & (t->slots - 1);
        while (t->slot_of[s] >= 0)
            s = (s + 1) & (t->slots - 1);
        t->slot_of[s] = (int32_t)c;
    }
}

int vmf_label_table_intern(vmf_label_table *t, const vmf_labels *y, int32_t *idx)
{
    int rc = check_view(t, y);
    if (rc)
        return rc;
    size_t size0 = t->size;
    for (size_t i = 0; i < y->n; i++) {
        int found;
        size_t s = find_slot(t, y, i, &found);
        if (!found) {
            rc = add_label(t, y, i);
            if (rc) {
                truncate_to(t, size0);
                return rc;
            }
            s = find_slot(t, y, i, &found);
        }
        if (idx)
            idx[i] = t->slot_of[s];
    }
    return VMF_OK;
}

int vmf_label_table_lookup(const vmf_label_table *t, const vmf_labels *y, int32_t *idx)
{
    if (!y || (!y->ints == !y->strs && y->n > 0))
        return vmf__error(VMF_EINVAL, "labels must be either integers or strings");
    int kind_differs = t->size > 0 && (y->strs != NULL) != (t->is_str != 0);
    for (size_t i = 0; i < y->n; i++) {
        if (t->size == 0 || kind_differs || (y->strs && !y->strs[i])) {
            idx[i] = -1;
            continue;
        }
        int found;
        size_t s = find_slot(t, y, i, &found);
        idx[i] = found ? t->slot_of[s] : -1;
    }
    return VMF_OK;
}

int vmf_label_table_copy(const vmf_label_table *t, vmf_label_table **out)
{
    *out = NULL;
    vmf_label_table *c;
    int rc = vmf_label_table_new(&c);
    if (rc)
        return rc;
    vmf_labels y = {t->size, t->is_str ? NULL : t->ints,
                    t->is_str ? (const char *const *)t->strs : NULL};
    rc = vmf_label_table_intern(c, &y, NULL);
    if (rc) {
        vmf_label_table_free(c);
        return rc;
    }
    c->is_str = t->is_str;
    *out = c;
    return VMF_OK;
}

size_t vmf_label_table_size(const vmf_label_table *t)
{
    return t->size;
}

int vmf_label_table_is_str(const vmf_label_table *t)
{
    return t->size > 0 && t->is_str;
}

int64_t vmf_label_table_int(const vmf_label_table *t, size_t i)
{
    return (!t->is_str && i < t->size) ? t->ints[i] : 0;
}

const char *vmf_label_table_str(const vmf_label_table *t, size_t i)
{
    return (t->is_str && i < t->size) ? t->strs[i] : NULL;
}

const char *vmf_label_table_format(const vmf_label_table *t, size_t i, char *buf, size_t size)
{
    if (i >= t->size)
        snprintf(buf, size, "?");
    else if (t->is_str)
        snprintf(buf, size, "%s", t->strs[i]);
    else
        snprintf(buf, size, "%" PRId64, t->ints[i]);
    return buf;
}
