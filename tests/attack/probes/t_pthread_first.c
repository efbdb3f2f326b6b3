/* probe: a worker created and started on a plain pthread before the GUI ran any worker; events must reach the GUI. */
#include <qtworker.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int seen[16];
static int order_ok = 1, last = -1;
static void cb(worker_event *ev, void *ud) {
    (void)ud;
    seen[ev->type]++;
    if (last == WORKER_EV_FINISHED) order_ok = 0;
    last = ev->type;
}
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) worker_yield(ctx, NULL, NULL, NULL, NULL);
    void *r;
    int rc = worker_call_home(ctx, (worker_home_fn)0 + 0 ? NULL : (worker_home_fn)NULL, NULL, &r, 100);
    (void)rc;
}
static void *home_fn(void *a) { return a; }
static void fn2(worker_ctx *ctx, void *arg) {
    (void)arg;
    void *r = NULL;
    int rc = worker_call_home(ctx, home_fn, (void *)7, &r, -1);
    printf("call_home from a pthread-started worker: %d result %p\n", rc, r);
}
static worker *w, *w2;
static void *starter(void *a) {
    (void)a;
    int rc = worker_start(NULL);
    (void)rc;
    w = worker_create(fn, NULL, NULL, NULL);
    for (int t = 0; t <= WORKER_EV_OUTPUT; t++) worker_connect(w, t, cb, NULL, NULL);
    printf("start from pthread: %d\n", worker_start(w));
    w2 = worker_create(fn2, NULL, NULL, NULL);
    printf("start2 from pthread: %d\n", worker_start(w2));
    return NULL;
}
int main(int argc, char **argv) {
    alarm(30);
    pthread_t t;
    /* before any app exists */
    pthread_create(&t, NULL, starter, NULL);
    pthread_join(t, NULL);
    worker_app_init(&argc, argv);
    pthread_create(&t, NULL, starter, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < 300 && (!seen[WORKER_EV_FINISHED]); i++) worker_app_process_events(10);
    for (int i = 0; i < 100 && worker_live_count(); i++) worker_app_process_events(10);
    printf("STARTED %d YIELDED %d FINISHED %d order %d live %d\n", seen[0], seen[1], seen[WORKER_EV_FINISHED], order_ok, worker_live_count());
    return 0;
}
