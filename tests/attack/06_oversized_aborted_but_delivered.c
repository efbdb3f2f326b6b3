/* BREAKS "a quit while an oversized frame's yield waits returns WORKER_ABORTED (the frame is destroyed undelivered)" (guide 13; worker_yield: ABORTED = value not delivered): quit while the frame's YIELDED callback is showing it, and worker_yield_sized still says ABORTED; run: ./build.sh 06_oversized_aborted_but_delivered.c && QT_QPA_PLATFORM=offscreen ./06_oversized_aborted_but_delivered */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int delivered, rc_seen = 99, rc_set;
static worker *w;

static void frame(worker_ctx *ctx, void *arg) {
    (void)arg;
    int rc = worker_yield_sized(ctx, malloc(16), 5000, free, NULL, NULL); /* budget 1000: oversized */
    rc_seen = rc;
    rc_set = 1;
}
/* The GUI draws the frame; meanwhile the owner presses STOP. */
static void on_frame(worker_event *ev, void *ud) {
    (void)ud;
    delivered = ev->value != NULL;
    worker_quit(ev->source);
    for (int i = 0; i < 500 && !rc_set; i++) usleep(1000); /* let the worker see the quit */
}
int main(int argc, char **argv) {
    alarm(20);
    worker_app_init(&argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.capacity_bytes = 1000;
    w = worker_create(frame, NULL, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, on_frame, NULL, NULL);
    worker_start(w);
    while (worker_is_running(w) || !rc_set) worker_app_process_events(5);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    if (delivered && rc_seen == WORKER_ABORTED) {
        printf("BROKEN: the frame was delivered to its callback, yet worker_yield_sized returned WORKER_ABORTED\n");
        return 1;
    }
    printf("held: delivered=%d rc=%d\n", (int)delivered, (int)rc_seen);
    worker_unref(w);
    return 0;
}
