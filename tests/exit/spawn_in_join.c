/* From an outside read of the header (issue #14): a worker started from a
   FINISHED callback that runs during the exit join was accepted, then never
   joined, quit or finished. Now it is started quit and joined: every
   STARTED has its FINISHED, every yielded value is destroyed. */
#define _DEFAULT_SOURCE
#include <qtworker.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int made, destroyed, starts, fins, start_rc = 99; static worker *second;
static void dtor(void *p) { free(p); __atomic_fetch_add(&destroyed, 1, __ATOMIC_SEQ_CST); }
static void fn(worker_ctx *c, void *a) {
    (void)a;
    for (;;) {
        __atomic_fetch_add(&made, 1, __ATOMIC_SEQ_CST);
        if (worker_yield(c, malloc(4), dtor, NULL, NULL) == WORKER_ABORTED) return;
        usleep(1000);
    }
}
static void st(worker_event *e, void *u) { (void)e; (void)u; if (++starts == 1) worker_app_quit(0); }
static void fin(worker_event *e, void *u);
static worker *spawn(void) {
    worker *w = worker_create(fn, NULL, NULL, NULL);
    worker_connect(w, WORKER_EV_STARTED, st, NULL, NULL);
    worker_connect(w, WORKER_EV_FINISHED, fin, NULL, NULL);
    return w;
}
static void fin(worker_event *e, void *u) {
    (void)e; (void)u;
    if (++fins == 1) { second = spawn(); start_rc = worker_start(second); }
}
int main(int argc, char **argv) {
    worker_app_init(&argc, argv);
    worker *w = spawn();
    worker_start(w);
    int rc = worker_app_exec();
    usleep(200000);
    printf("exec rc=%d; second: start=%d STARTED total=%d FINISHED total=%d live=%d "
           "running=%d made=%d destroyed=%d\n", rc, start_rc, starts, fins,
           worker_live_count(), worker_is_running(second), made, destroyed);
    int ok = start_rc == WORKER_OK && starts == 2 && fins == 2 && made == destroyed &&
             worker_live_count() == 0;
    worker_unref(second);
    worker_unref(w);
    return ok ? 0 : 1;
}
