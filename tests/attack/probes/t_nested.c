/* probe: a callback of A pumps a nested loop until B finishes; disconnect+unref inside; exactly-once destroys. */
#include <qtworker.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int alive;
static void pfree(void *p) { alive--; free(p); }
static void *pnew(void) { alive++; return malloc(4); }
static worker *a, *b;
static int b_finished, a_yields, nested_max, depth;
static long ida;
static void on_b_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; b_finished++; }
static void on_a_yield(worker_event *ev, void *ud) {
    (void)ud; (void)ev;
    a_yields++;
    depth++;
    if (depth > nested_max) nested_max = depth;
    if (a_yields == 1) {
        for (int i = 0; i < 2000 && !b_finished; i++) worker_app_process_events(5);
        worker_disconnect(a, ida);  /* from inside itself */
        worker_disconnect(a, ida);  /* twice */
    }
    depth--;
}
static void yield_n(worker_ctx *ctx, void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        if (worker_yield(ctx, pnew(), pfree, NULL, NULL) == WORKER_ABORTED) return;
}
static void *home(void *x) { worker_app_process_events(1); return x; }
static void caller(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++) { void *r; worker_call_home(ctx, home, NULL, &r, -1); worker_yield(ctx, pnew(), pfree, NULL, NULL);}
}
int main(int argc, char **argv) {
    alarm(50);
    worker_app_init(&argc, argv);
    worker_options o; worker_options_init(&o); o.capacity = 2;
    a = worker_create(yield_n, (void *)1000L, NULL, &o);
    b = worker_create(caller, NULL, NULL, &o);
    ida = worker_connect(a, WORKER_EV_YIELDED, on_a_yield, NULL, NULL);
    worker_connect(b, WORKER_EV_FINISHED, on_b_fin, NULL, NULL);
    worker_start(a); worker_start(b);
    for (int i = 0; i < 4000 && (worker_is_running(a) || worker_is_running(b) || !b_finished); i++) worker_app_process_events(5);
    for (int i = 0; i < 50; i++) worker_app_process_events(2);
    printf("b finished %d, a yields seen %d (expected 1), nested %d, alive %d\n", b_finished, a_yields, nested_max, alive);
    worker_unref(a); worker_unref(b);
    worker_app_process_events(5);
    printf("after unref alive %d live %d\n", alive, worker_live_count());
    return 0;
}
