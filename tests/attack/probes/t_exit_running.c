/* probe: return from main while workers run (yielding, in call_home, printing, blocked at capacity). */
#include <qtworker.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *home(void *a) { return a; }
static void yielder(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0;; i++) {
        int *p = malloc(sizeof *p);
        if (worker_yield(ctx, p, free, NULL, NULL) == WORKER_ABORTED) return;
        if (i % 100 == 0) { void *r; worker_call_home(ctx, home, NULL, &r, -1); }
        fprintf(worker_stdout(ctx), "line %ld\n", i);
    }
}
static void spinner(worker_ctx *ctx, void *arg) {
    (void)arg;
    while (!worker_abort_requested(ctx)) { void *r; worker_call_home(ctx, home, NULL, &r, 5); }
}
static void cb(worker_event *ev, void *ud) { (void)ev; (void)ud; }
int main(int argc, char **argv) {
    alarm(30);
    worker_app_init(&argc, argv);
    int mode = argc > 1 ? atoi(argv[1]) : 0;
    worker_options o; worker_options_init(&o); o.capacity = 4;
    for (int i = 0; i < 6; i++) {
        worker *w = worker_create(i % 2 ? spinner : yielder, NULL, NULL, &o);
        worker_connect(w, WORKER_EV_YIELDED, cb, NULL, NULL);
        worker_start(w);
        if (mode != 3) worker_unref(w);
    }
    for (int i = 0; i < 20; i++) worker_app_process_events(5);
    if (mode == 1) { worker_app_quit(0); printf("exec %d\n", worker_app_exec()); }
    if (mode == 2) exit(0);
    printf("returning from main, live %d\n", worker_live_count());
    return 0;
}
