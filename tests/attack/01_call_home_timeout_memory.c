/* BREAKS "BLOCK holds O(capacity) memory however long the GUI stalls": every worker_call_home that times out leaves its entry queued; run: ./build.sh 01_call_home_timeout_memory.c && QT_QPA_PLATFORM=offscreen ./01_call_home_timeout_memory */
#include <qtworker.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static void *ask(void *arg) { (void)arg; return NULL; }
static long calls, timeouts;

/* A plugin that asks the GUI for a slider value but carries on when the GUI is busy. */
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        void *r;
        int rc = worker_call_home(ctx, ask, NULL, &r, 0);
        calls++;
        if (rc == WORKER_ETIMEDOUT) timeouts++;
        if (rc == WORKER_ABORTED) return;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 3);
}

int main(int argc, char **argv) {
    alarm(60);
    worker_app_init(&argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_BLOCK;
    o.capacity = 16;
    worker *w = worker_create(fn, NULL, NULL, &o);
    long before = rss_kb();
    worker_start(w);
    sleep(4);  /* the GUI thread is busy (a long paint, a modal computation): it does not pump */
    long after = rss_kb();
    printf("calls %ld (timed out %ld), RSS %ld -> %ld KB (+%ld KB) with capacity 16\n",
           calls, timeouts, before, after, after - before);
    while (worker_is_running(w)) worker_app_process_events(10);
    worker_app_process_events(10);
    worker_unref(w);
    if (after - before > 64 * 1024) { printf("BROKEN: memory grew with the stall\n"); return 1; }
    return 0;
}
