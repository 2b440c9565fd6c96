/*
 * vmfd_metrics.c - Prometheus text rendering (see vmfd_metrics.h).
 *
 * Histogram buckets are fixed, from 100 microseconds to 30 seconds, which
 * covers a single-row prediction as well as a checkpoint of a large model.
 */
#include "vmfd_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[VMFD_HIST_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 30.0};

void vmfd_hist_observe(vmfd_hist *h, double seconds)
{
    size_t i = 0;
    while (i < VMFD_HIST_BUCKETS - 1 && seconds > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        if (b->oom)
            return;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void hist(sbuf *b, const char *name, const char *help, const vmfd_hist *h)
{
    uint64_t cum = 0;
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < VMFD_HIST_BUCKETS - 1; i++) {
        cum += h->counts[i];
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    put(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static void gauge(sbuf *b, const char *name, const char *help, double v)
{
    put(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void counter(sbuf *b, const char *name, const char *help, uint64_t v)
{
    put(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
        (unsigned long long)v);
}

char *vmfd_metrics_render(const vmfd_metrics *m, const vmfd_gauges *g, size_t *len)
{
    static const char *const outcome[VMFD_BATCH_N] = {"accepted", "duplicate", "conflict",
                                                      "invalid",  "busy",      "applied",
                                                      "rejected", "superseded"};
    sbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return NULL;
    put(&b, "# HELP vmfd_batches_total Batches by outcome.\n# TYPE vmfd_batches_total counter\n");
    for (int i = 0; i < VMFD_BATCH_N; i++)
        put(&b, "vmfd_batches_total{status=\"%s\"} %llu\n", outcome[i],
            (unsigned long long)m->batches[i]);
    put(&b,
        "# HELP vmfd_batches Batches in the store by status (the counts of /v1/status).\n"
        "# TYPE vmfd_batches gauge\n"
        "vmfd_batches{status=\"queued\"} %llu\nvmfd_batches{status=\"applied\"} %llu\n"
        "vmfd_batches{status=\"rejected\"} %llu\nvmfd_batches{status=\"superseded\"} %llu\n",
        (unsigned long long)g->stored_queued, (unsigned long long)g->stored_applied,
        (unsigned long long)g->stored_rejected, (unsigned long long)g->stored_superseded);
    counter(&b, "vmfd_rows_ingested_total", "Rows of accepted batches.", m->rows_ingested);
    counter(&b, "vmfd_predict_rows_total", "Rows classified.", m->predict_rows);
    counter(&b, "vmfd_model_retries_total",
            "Model work retries scheduled after a failed checkpoint commit.", m->model_retries);
    counter(&b, "vmfd_predict_jobs_total",
            "Predict jobs run on the threadpool (coalesced requests count once).", m->predict_jobs);
    put(&b, "# HELP vmfd_http_responses_total HTTP responses by status class.\n"
            "# TYPE vmfd_http_responses_total counter\n");
    for (int i = 1; i <= 5; i++)
        put(&b, "vmfd_http_responses_total{code=\"%dxx\"} %llu\n", i,
            (unsigned long long)m->responses[i]);
    counter(&b, "vmfd_http_refusals_total", "Requests refused by a server limit.", m->refusals);
    gauge(&b, "vmfd_queue_depth", "Batches acknowledged or being stored, not yet applied.",
          (double)g->queue_depth);
    hist(&b, "vmfd_ingest_duration_seconds", "Decoding and durably storing a batch.",
         &m->ingest_seconds);
    hist(&b, "vmfd_apply_duration_seconds", "Learning one batch.", &m->apply_seconds);
    hist(&b, "vmfd_checkpoint_duration_seconds", "Writing one checkpoint transaction.",
         &m->checkpoint_seconds);
    hist(&b, "vmfd_predict_duration_seconds", "Predict requests, from complete request to answer.",
         &m->predict_seconds);
    gauge(&b, "vmfd_model_bytes", "Size of the model's binary state.", (double)g->model_bytes);
    gauge(&b, "vmfd_model_classes", "Classes known to the model.", (double)g->model_classes);
    gauge(&b, "vmfd_model_components", "Mixture components over all classes.",
          (double)g->model_components);
    gauge(&b, "vmfd_model_rows",
          "Rows applied: rows the live model has learned (rows_seen of /v1/status; a restore"
          " sets it back to the checkpoint's).",
          (double)g->model_rows);
    gauge(&b, "vmfd_connections", "Open client connections.", (double)g->connections);
    gauge(&b, "vmfd_ready", "1 when recovery is done and the daemon serves.", g->ready);
    gauge(&b, "vmfd_uptime_seconds", "Seconds since start.", g->uptime_seconds);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
