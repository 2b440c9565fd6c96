/*
 * vmfd_predict.h - the prediction engine of the HTTP API (vmfd_predict.c):
 * predict and model-JSON jobs against a snapshot, and the queue in which
 * small predict requests wait to be coalesced into one job.
 */
#ifndef VMFD_PREDICT_H
#define VMFD_PREDICT_H

#include "vmfd_http.h"

#include <stddef.h>

struct vmfd_daemon;
typedef struct vmfd_pjob vmfd_pjob;

/*
 * Predict coalescing: small predict requests that arrive while a coalesced
 * predict job runs wait here and go out together as one job. Zeroed with
 * the daemon; only vmfd_predict.c reads or changes it, on the loop thread.
 */
typedef struct vmfd_predict_queue {
    vmfd_pjob *head, *tail;
    size_t n;
    int busy; /* a coalesced job is on the threadpool */
} vmfd_predict_queue;

/*
 * Answers req (borrowed until answered) with a prediction (kind 0, top_k
 * labels per row, from the request body) or the model as JSON (kind 1).
 * The caller has routed and authenticated the request and checked top_k.
 * Runs inline when cheap, otherwise queues the work; the answer always
 * comes on the loop thread. Loop thread only.
 */
void vmfd_predict_run(struct vmfd_daemon *d, vmfd_http_req *req, int kind, long top_k);

#endif
