/* BREAKS worker_yield "WORKER_ABORTED once quit was asked (value not delivered)": a yield that queued its value while a pause was asked parks after queueing it; the GUI delivers the value meanwhile; a quit of the parked worker then makes that yield return ABORTED, though its value reached the YIELDED callback (not fixed: OK there would delay a plugin's stop by one iteration); run: ./build.sh 09_parked_yield_says_aborted_after_delivery.c && QT_QPA_PLATFORM=offscreen ./09_parked_yield_says_aborted_after_delivery */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int delivered, rc_seen = 99, returned;
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    rc_seen = worker_yield(ctx, (void *)1, NULL, NULL, NULL);  /* a pause was asked before: parks after queueing */
    returned = 1;
}
static void on_value(worker_event *ev, void *ud) { (void)ud; delivered = ev->value != NULL; }
int main(int argc, char **argv) {
    alarm(20);
    worker_app_init(&argc, argv);
    worker *w = worker_create(fn, NULL, NULL, NULL);
    worker_connect(w, WORKER_EV_YIELDED, on_value, NULL, NULL);
    worker_pause(w);  /* allowed before start: parks at its first worker_yield */
    worker_start(w);
    while (!delivered) worker_app_process_events(5);
    while (!worker_is_paused(w)) worker_app_process_events(5);
    worker_quit(w);
    while (!returned || worker_is_running(w)) worker_app_process_events(5);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    int broken = delivered && rc_seen == WORKER_ABORTED;
    printf("%s: value delivered=%d, its yield returned %d\n", broken ? "BROKEN" : "held", (int)delivered, (int)rc_seen);
    worker_unref(w);
    return broken;
}
