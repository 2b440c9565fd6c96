/*
 * vmfd_payload.h - decoding request bodies into rows and labels.
 *
 * Ingest bodies are .npz archives (member X: 2-D float32/float64, member y:
 * 1-D integers or strings) or JSON {"embeddings":[[..],..], "labels":[..]}.
 * Predict bodies are .npy (2-D float32/float64, or 1-D for one row) or JSON
 * {"embeddings":[[..],..], "top_k":4}. Rows are normalized to unit length;
 * NaN/Inf and zero rows are refused. Each failure carries the HTTP status
 * the API answers with (400 malformed, 415 content type, 422 well-formed but
 * unusable) and a message that never quotes the data.
 *
 * The content hash is SHA-256 over a canonical form (a version tag, n, d, the
 * normalized float32 rows, the label kind and the labels), so the same batch
 * sent as .npz or JSON has the same hash.
 */
#ifndef VMFD_PAYLOAD_H
#define VMFD_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

enum { VMFD_LABELS_NONE = 0, VMFD_LABELS_INT = 1, VMFD_LABELS_STR = 2 };

typedef struct vmfd_batch {
    float *x; /* [n][d], unit rows */
    size_t n, d;
    int label_kind;
    int64_t *ints; /* [n] when label_kind == INT */
    char **strs;   /* [n] when label_kind == STR, each malloc'ed */
    char sha256[65];
} vmfd_batch;

typedef struct vmfd_payload_error {
    int status; /* HTTP status */
    char error[48];
    char detail[256];
} vmfd_payload_error;

void vmfd_batch_free(vmfd_batch *b);

/* Content type without parameters, lowercased, into out. */
void vmfd_payload_media_type(const char *content_type, char *out, size_t size);

/* Decodes an ingest body. Returns 0, or -1 with *e filled. */
int vmfd_payload_parse_ingest(const char *content_type, const void *body, size_t len,
                              vmfd_batch *out, vmfd_payload_error *e);

/*
 * What one ingest body may hold (0 in a field: no bound beyond the readers'
 * own). Every allocation of the decode is bounded by these before it is
 * made: an .npz member X may declare at most max_rows x dim x 8 bytes plus
 * 64 KiB of .npy header, y at most max_rows x max(8, 4 x max_label_bytes)
 * plus the header (UTF-32 strings), each at most max_decoded_bytes; a JSON
 * body at most max_json_bytes. Too large: 413 before inflating or parsing.
 * Longer labels: 422 label_too_long. An allocation that fails anyway:
 * 507 out_of_memory (never a data error).
 */
typedef struct vmfd_payload_limits {
    uint64_t max_rows;
    uint64_t dim; /* the model's dimension, or the largest accepted while unknown */
    uint64_t max_decoded_bytes;
    uint64_t max_label_bytes;
    uint64_t max_json_bytes;
} vmfd_payload_limits;

int vmfd_payload_parse_ingest_limited(const char *content_type, const void *body, size_t len,
                                      const vmfd_payload_limits *lim, vmfd_batch *out,
                                      vmfd_payload_error *e);

/*
 * Decodes a predict body into rows (*x malloc'ed [n][d], normalized). *top_k
 * is set when the JSON body has "top_k" (left unchanged otherwise).
 */
int vmfd_payload_parse_predict(const char *content_type, const void *body, size_t len, float **x,
                               size_t *n, size_t *d, long *top_k, vmfd_payload_error *e);

/* Labels as a JSON array text (malloc'ed), or NULL for no labels / out of memory. */
char *vmfd_batch_labels_json(const vmfd_batch *b);

/*
 * Rebuilds a batch from the store: rows blob (float32 [n][d], already unit)
 * and labels JSON (may be NULL). Recomputes nothing but the label arrays;
 * sha256 is left empty.
 */
int vmfd_batch_from_store(const void *rows, size_t n, size_t d, const char *labels_json,
                          vmfd_batch *out, char *err, size_t errsize);

/* Computes b->sha256 from the canonical form. */
void vmfd_batch_hash(vmfd_batch *b);

#endif
