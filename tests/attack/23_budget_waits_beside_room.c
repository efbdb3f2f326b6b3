/* promise 1, minimal reproduction from d1_block_slow_gui (capacity_bytes "BLOCK waits while it would exceed the budget" / worker_yield_sized "BLOCK waits while it would exceed the budget"): BLOCK, capacity 1000, capacity_bytes 800, frames of 100 bytes. The producer fills the budget (8 frames) while the GUI does not pump and blocks on the 9th. The GUI delivers frame 0 (callback returns) and sits 300 ms in frame 1's callback: worker_backlog says 700 bytes are pending, so the 9th frame (100 bytes) would not exceed the budget, yet its yield does not return; run: s7d/mk.sh d1min_budget_half && QT_QPA_PLATFORM=offscreen s7d/d1min_budget_half-asan */
#include <qtworker.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long returned;
static atomic_int fin;
static worker *w;
static int fails;
static void producer(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0; i < 12; i++) {
        if (worker_yield_sized(ctx, (void *)i, 100, NULL, NULL, NULL) != WORKER_OK) return;
        returned++;
    }
}
static void on_yield(worker_event *ev, void *ud) {
    (void)ud;
    if ((long)ev->value != 1) return;
    long before = returned;
    usleep(300000);
    size_t e, b;
    worker_backlog(w, &e, &b);
    printf("in frame 1's callback: yields returned %ld -> %ld after 300 ms; backlog %zu entries, %zu bytes (budget 800, frame 100)\n",
           before, (long)returned, e, b);
    if (returned == 8 && b + 100 <= 800) { printf("FAIL: the 9th frame would fit (%zu + 100 <= 800) but its yield waits\n", b); fails++; }
    else printf("PASS: the 9th frame got in\n");
}
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; fin = 1; }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(20);
    worker_app_init(&argc, argv);
    worker_options o; worker_options_init(&o);
    o.capacity = 1000; o.capacity_bytes = 800;
    w = worker_create(producer, NULL, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, on_yield, NULL, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
    worker_start(w);
    usleep(100000);
    printf("before the GUI pumps: %ld yields returned\n", (long)returned);
    while (!fin) worker_app_process_events(5);
    worker_unref(w);
    return fails;
}
