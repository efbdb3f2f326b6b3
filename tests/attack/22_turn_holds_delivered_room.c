/* promise 3, minimal reproduction of 05: BLOCK, capacity 2, capacity_bytes 100. The worker yields A (sized 60) and B (plain) before the GUI runs, then C (sized 60) must wait (A pending). The GUI delivers A (callback returns, A destroyed), then stalls 200 ms in B's callback: A is delivered and destroyed, so C should get in (0 bytes and 1 entry are undelivered) and worker_backlog should say 1 entry / 0 bytes; run: cd tests/attack && bash build.sh 22_turn_holds_delivered_room.c build-asan && QT_QPA_PLATFORM=offscreen ./22_turn_holds_delivered_room */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int a_destroyed, c_returned, finished;
static worker *w;
static void dfree(void *p) { if (*(int *)p == 'A') a_destroyed = 1; free(p); }
static int *mk(int c) { int *v = malloc(sizeof *v); *v = c; return v; }
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_yield_sized(ctx, mk('A'), 60, dfree, NULL, NULL);
    worker_yield(ctx, mk('B'), dfree, NULL, NULL);
    worker_yield_sized(ctx, mk('C'), 60, dfree, NULL, NULL);
    c_returned = 1;
}
static void on_y(worker_event *ev, void *ud) {
    (void)ud;
    if (*(int *)ev->value != 'B') return;
    for (int i = 0; i < 200 && !c_returned; i++) usleep(1000);
    size_t e, b;
    worker_backlog(w, &e, &b);
    int bad = !c_returned;
    printf("%s: in B's callback, A destroyed: %d; C's yield returned within 200 ms: %d; worker_backlog %zu entries %zu bytes (undelivered: B%s)\n",
           bad ? "FAIL" : "PASS", (int)a_destroyed, (int)c_returned, e, b, c_returned ? " + C = 2 entries 60 bytes" : " = 1 entry 0 bytes");
}
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; finished = 1; }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(10);
    worker_app_init(&argc, argv);
    worker_options o; worker_options_init(&o);
    o.capacity = 2; o.capacity_bytes = 100;
    w = worker_create(fn, NULL, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, on_y, NULL, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
    worker_start(w);
    usleep(50000); /* A and B queued, C waiting, before the GUI delivers anything */
    while (!finished) worker_app_process_events(5);
    worker_unref(w);
    return 0;
}
