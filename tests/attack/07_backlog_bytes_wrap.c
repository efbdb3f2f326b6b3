/* BREAKS "worker_backlog gives the bytes counted against capacity_bytes" for sizes near PTRDIFF_MAX (each accepted): three pending frames of PTRDIFF_MAX bytes wrap the size_t sum, so the backlog shows fewer bytes than one of them (and a budget would let more in); run: ./build.sh 07_backlog_bytes_wrap.c && QT_QPA_PLATFORM=offscreen ./07_backlog_bytes_wrap */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int done;
static void frames(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++)
        if (worker_yield_sized(ctx, NULL, PTRDIFF_MAX, NULL, NULL, NULL) != WORKER_OK)
            printf("yield %d refused\n", i);
    done = 1;
}
int main(int argc, char **argv) {
    alarm(20);
    worker_app_init(&argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_QUEUE;            /* no byte budget: sizes are still counted */
    worker *w = worker_create(frames, NULL, NULL, &o);
    worker_start(w);
    while (!done) usleep(1000);         /* the GUI does not run: all three stay pending */
    size_t entries = 0, bytes = 0;
    worker_backlog(w, &entries, &bytes);
    int broken = entries == 3 && bytes < (size_t)PTRDIFF_MAX;
    printf("%s: %zu entries, %zu bytes pending (one frame alone is %td)\n",
           broken ? "BROKEN" : "held", entries, bytes, PTRDIFF_MAX);
    while (worker_is_running(w)) worker_app_process_events(5);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    worker_backlog(w, &entries, &bytes);
    printf("after delivery: %zu entries, %zu bytes\n", entries, bytes);
    worker_unref(w);
    return broken;
}
