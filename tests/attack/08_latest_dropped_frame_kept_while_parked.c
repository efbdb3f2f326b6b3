/* BREAKS "LATEST drops older frames and stays within the budget" (guide 13): the frame LATEST drops is destroyed only when the yield returns, so while the producer then parks in a pause (or waits for room) the dropped frame and the new one both live: 1200 bytes of frames against a budget of 1000, the dropped one counted by worker_dropped but not destroyed; run: ./build.sh 08_latest_dropped_frame_kept_while_parked.c && QT_QPA_PLATFORM=offscreen ./08_latest_dropped_frame_kept_while_parked */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long alive_bytes, max_alive;
static atomic_int first_done;
typedef struct { size_t bytes; } frame;
static frame *grab(size_t n) {
    frame *f = malloc(sizeof *f);
    f->bytes = n;
    long a = alive_bytes += (long)n;
    if (a > max_alive) max_alive = a;
    return f;
}
static void frame_free(void *p) { alive_bytes -= (long)((frame *)p)->bytes; free(p); }

static void camera(worker_ctx *ctx, void *arg) {
    (void)arg;
    frame *a = grab(600);
    worker_yield_sized(ctx, a, a->bytes, frame_free, NULL, NULL);
    first_done = 1;
    usleep(50000);  /* the owner presses pause meanwhile */
    frame *b = grab(600);  /* LATEST drops a to make room: then parks here */
    worker_yield_sized(ctx, b, b->bytes, frame_free, NULL, NULL);
}
int main(int argc, char **argv) {
    alarm(20);
    worker_app_init(&argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_LATEST;
    o.capacity_bytes = 1000;
    worker *w = worker_create(camera, NULL, NULL, &o);
    worker_start(w);             /* the GUI is busy: nothing is delivered yet */
    while (!first_done) usleep(1000);
    worker_pause(w);
    while (!worker_is_paused(w)) usleep(1000);
    long alive = alive_bytes;
    long long dropped = worker_dropped(w);
    size_t pending = 0;
    worker_backlog(w, NULL, &pending);
    int broken = alive > 1000;
    printf("%s: parked with %ld bytes of frames alive (budget 1000, %zu counted pending, %lld dropped)\n",
           broken ? "BROKEN" : "held", alive, pending, dropped);
    worker_quit(w);
    while (worker_is_running(w)) worker_app_process_events(5);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    worker_unref(w);
    return broken;
}
