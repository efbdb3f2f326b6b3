/* probe: pause/resume from another thread while the GUI stalls: PAUSED/RESUMED are control entries (uncounted). */
#include <qtworker.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static long rss_kb(void) { FILE *f = fopen("/proc/self/status", "r"); char l[256]; long kb = -1;
  while (f && fgets(l, sizeof l, f)) if (!strncmp(l, "VmRSS:", 6)) kb = atol(l + 6); if (f) fclose(f); return kb; }
static volatile int stop;
static long toggles;
static void fn(worker_ctx *ctx, void *arg) { (void)arg; while (!worker_abort_requested(ctx)) {} }
static void *toggler(void *a) {
    worker *w = a;
    while (!stop) {
        worker_pause(w);
        while (!worker_is_paused(w) && !stop) {}
        worker_resume(w);
        while (worker_is_paused(w) && !stop) {}
        toggles++;
    }
    return NULL;
}
int main(int argc, char **argv) {
    alarm(40);
    worker_app_init(&argc, argv);
    worker_options o; worker_options_init(&o); o.capacity = 16;
    worker *w = worker_create(fn, NULL, NULL, &o);
    worker_start(w);
    long before = rss_kb();
    pthread_t t; pthread_create(&t, NULL, toggler, w);
    sleep(4);
    stop = 1; pthread_join(t, NULL);
    long after = rss_kb();
    printf("toggles %ld, RSS +%ld KB at capacity 16\n", toggles, after - before);
    worker_quit(w);
    while (worker_is_running(w)) worker_app_process_events(5);
    worker_unref(w);
    return 0;
}
