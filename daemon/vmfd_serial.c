/*
 * vmfd_serial.c - ordered threadpool chain (see vmfd_serial.h).
 */
#include "vmfd_serial.h"

static void start_next(vmfd_serial *s);

static void work_cb(uv_work_t *w)
{
    vmfd_task *t = (vmfd_task *)w;
    t->run(t);
}

static void after_cb(uv_work_t *w, int status)
{
    vmfd_task *t = (vmfd_task *)w;
    vmfd_serial *s = t->chain;
    (void)status; /* tasks are never cancelled */
    s->running = NULL;
    s->length--;
    t->done(t);
    start_next(s);
}

static void start_next(vmfd_serial *s)
{
    if (s->running || !s->head)
        return;
    vmfd_task *t = s->head;
    s->head = t->next;
    if (!s->head)
        s->tail = NULL;
    s->running = t;
    uv_queue_work(s->loop, &t->work, work_cb, after_cb);
}

void vmfd_serial_init(vmfd_serial *s, uv_loop_t *loop)
{
    s->loop = loop;
    s->head = s->tail = s->running = NULL;
    s->length = 0;
}

void vmfd_serial_submit(vmfd_serial *s, vmfd_task *t, vmfd_task_fn run, vmfd_task_fn done)
{
    t->run = run;
    t->done = done;
    t->next = NULL;
    t->chain = s;
    if (s->tail)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
    s->length++;
    start_next(s);
}

int vmfd_serial_idle(const vmfd_serial *s)
{
    return s->length == 0;
}

void vmfd_serial_cancel_waiting(vmfd_serial *s, vmfd_task_fn cancel)
{
    vmfd_task *t = s->head;
    s->head = s->tail = NULL;
    while (t) {
        vmfd_task *next = t->next;
        s->length--;
        cancel(t);
        t = next;
    }
}
