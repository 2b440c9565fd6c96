/*
 * vmfd_metrics.h - counters and histograms of vmfd, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 *
 * Loop thread only: the threadpool reports durations through the `done`
 * callbacks of its tasks.
 */
#ifndef VMFD_METRICS_H
#define VMFD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define VMFD_HIST_BUCKETS 14

typedef struct vmfd_hist {
    uint64_t counts[VMFD_HIST_BUCKETS]; /* per bucket (not cumulative) */
    uint64_t count;
    double sum;
} vmfd_hist;

enum vmfd_batch_outcome {
    VMFD_BATCH_ACCEPTED,   /* durable, queued (202) */
    VMFD_BATCH_DUPLICATE,  /* same key, same content (200) */
    VMFD_BATCH_CONFLICT,   /* same key, other content (409) */
    VMFD_BATCH_INVALID,    /* refused input (400, 413, 415, 422) */
    VMFD_BATCH_BUSY,       /* queue full (503) */
    VMFD_BATCH_APPLIED,    /* learned by the model */
    VMFD_BATCH_REJECTED,   /* refused by the model at apply time */
    VMFD_BATCH_SUPERSEDED, /* rolled back by a restore */
    VMFD_BATCH_N
};

typedef struct vmfd_metrics {
    uint64_t batches[VMFD_BATCH_N];
    uint64_t rows_ingested; /* rows of accepted batches */
    uint64_t predict_rows;
    uint64_t model_retries; /* retries scheduled after a failed commit */
    uint64_t predict_jobs;  /* threadpool predict jobs (a coalesced job counts once) */
    uint64_t responses[6];  /* by status class 1xx..5xx (index 1..5) */
    uint64_t refusals;      /* closed by a server limit (408, 413, 431, 503) */
    vmfd_hist apply_seconds;
    vmfd_hist checkpoint_seconds;
    vmfd_hist predict_seconds;
    vmfd_hist ingest_seconds;
} vmfd_metrics;

typedef struct vmfd_gauges {
    double uptime_seconds;
    uint64_t queue_depth;
    uint64_t model_bytes;
    uint64_t model_classes;
    uint64_t model_components;
    uint64_t model_rows;
    uint64_t connections;
    int ready;
    /* Batches in the store by status, as GET /v1/status reports them. */
    uint64_t stored_queued, stored_applied, stored_rejected, stored_superseded;
} vmfd_gauges;

void vmfd_hist_observe(vmfd_hist *h, double seconds);

/* Renders all metrics into a malloc'ed text; returns NULL when out of memory. */
char *vmfd_metrics_render(const vmfd_metrics *m, const vmfd_gauges *g, size_t *len);

#endif
