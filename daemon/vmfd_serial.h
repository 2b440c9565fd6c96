/*
 * vmfd_serial.h - an ordered chain of threadpool tasks: tasks run one at a
 * time, in submission order, each on libuv's threadpool (uv_queue_work), and
 * each task's `done` runs on the loop thread before the next task starts.
 * vmfd uses one chain for durable ingest and one for the model worker, so
 * the model sees batches in exactly the order they were acknowledged.
 *
 * Loop thread only (submission and all callbacks except `work`).
 */
#ifndef VMFD_SERIAL_H
#define VMFD_SERIAL_H

#include <stddef.h>
#include <uv.h>

typedef struct vmfd_task vmfd_task;
typedef void (*vmfd_task_fn)(vmfd_task *t);

/* Embed as the first member of a task struct. */
struct vmfd_task {
    uv_work_t work;
    vmfd_task_fn run;  /* threadpool */
    vmfd_task_fn done; /* loop thread; owns and frees the task */
    vmfd_task *next;
    struct vmfd_serial *chain;
};

typedef struct vmfd_serial {
    uv_loop_t *loop;
    vmfd_task *head, *tail;
    vmfd_task *running;
    size_t length; /* waiting plus running */
} vmfd_serial;

void vmfd_serial_init(vmfd_serial *s, uv_loop_t *loop);
void vmfd_serial_submit(vmfd_serial *s, vmfd_task *t, vmfd_task_fn run, vmfd_task_fn done);
/*
 * Removes every task that has not started and calls cancel(task) for each,
 * in order; the running task (if any) completes normally.
 */
void vmfd_serial_cancel_waiting(vmfd_serial *s, vmfd_task_fn cancel);

/* 1 when nothing waits or runs. */
int vmfd_serial_idle(const vmfd_serial *s);

#endif
