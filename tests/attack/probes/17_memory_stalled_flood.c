/* probe: "BLOCK and LATEST hold O(capacity) memory however long the GUI thread stalls": while the GUI thread sleeps 3 s, workers flood with every kind (plain yield, sized yield with a budget, progress, warn, emit, stdout lines) under BLOCK 5000 / LATEST 1 / LATEST 5000 (+budget), one paused and resumed 20000 times by another thread, one quit-and-replaced over and over; resident memory may grow by a bounded amount only; (the RSS bound means something in the plain build only: ASan keeps freed memory in quarantine); run: ./build.sh probes/17_memory_stalled_flood.c && QT_QPA_PLATFORM=offscreen probes/17_memory_stalled_flood */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long rss_kb(void) {
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0; fclose(f); }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}
static atomic_long alive;
static void val_free(void *p) { alive--; free(p); }
static void *val(void) { alive++; return malloc(64); }

static void flood(worker_ctx *ctx, void *arg) {
    int kind = (int)(long)arg;
    FILE *out = worker_stdout(ctx);
    for (long i = 0;; i++) {
        int rc = 0;
        switch (kind == 6 ? (int)(i % 6) : kind) {
        case 0: rc = worker_yield(ctx, val(), val_free, NULL, NULL); break;
        case 1: rc = worker_yield_sized(ctx, val(), 4096, val_free, NULL, NULL); break;
        case 2: rc = worker_progress(ctx, i, 0, "step"); break;
        case 3: rc = worker_warn(ctx, "warning %ld", i); break;
        case 4: rc = worker_emit(ctx, "e", val(), val_free); break;
        case 5: fprintf(out, "line %ld\n", i); break;
        }
        if (rc == WORKER_ABORTED || worker_abort_requested(ctx)) return;
    }
}

static atomic_int stop;
static worker *toggled;
static void *toggler(void *a) {
    (void)a;
    for (int i = 0; i < 20000 && !stop; i++) { worker_pause(toggled); worker_resume(toggled); }
    return NULL;
}

static worker *mk(worker_policy p, size_t cap, size_t bytes, int kind) {
    worker_options o;
    worker_options_init(&o);
    o.policy = p; o.capacity = cap; o.capacity_bytes = bytes;
    worker *w = worker_create(flood, (void *)(long)kind, NULL, &o);
    worker_start(w);
    return w;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(120);
    worker_app_init(&argc, argv);
    /* warm up: one short run so the pool's threads and Qt's caches exist */
    worker *warm = mk(WORKER_BLOCK, 5000, 0, 6);
    for (int i = 0; i < 200; i++) worker_app_process_events(1);
    worker_quit(warm);
    while (worker_is_running(warm)) worker_app_process_events(1);
    worker_unref(warm);
    for (int i = 0; i < 50; i++) worker_app_process_events(1);

    long before = rss_kb();
    enum { W = 9 };
    worker *ws[W];
    int n = 0;
    ws[n++] = mk(WORKER_BLOCK, 5000, 0, 6);
    ws[n++] = mk(WORKER_BLOCK, 5000, 1 << 20, 1);
    ws[n++] = mk(WORKER_LATEST, 1, 0, 0);
    ws[n++] = mk(WORKER_LATEST, 1, 0, 2);
    ws[n++] = mk(WORKER_LATEST, 5000, 1 << 20, 6);
    ws[n++] = mk(WORKER_LATEST, 5000, 0, 3);
    ws[n++] = mk(WORKER_BLOCK, 5000, 0, 5);
    ws[n++] = mk(WORKER_BLOCK, 5000, 0, 4);
    ws[n++] = toggled = mk(WORKER_LATEST, 3, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, toggler, NULL);
    /* quit-and-replace churn on another worker while the GUI stalls */
    long peak = before;
    for (int s = 0; s < 30; s++) {
        worker *c = mk(s % 2 ? WORKER_LATEST : WORKER_BLOCK, 100, 0, 6);
        usleep(100000);  /* the GUI thread stalls: no events processed */
        worker_quit(c);
        worker_unref(c);
        long r = rss_kb();
        if (r > peak) peak = r;
    }
    stop = 1;
    pthread_join(t, NULL);
    long grown = peak - before;
    size_t entries = 0, bytes = 0, te = 0, tb = 0;
    for (int i = 0; i < n; i++) {
        worker_backlog(ws[i], &entries, &bytes);
        te += entries; tb += bytes;
        printf("  worker %d: %zu entries, %zu bytes\n", i, entries, bytes);
    }
    printf("GUI stalled 3 s: RSS %ld kB -> peak %ld kB (+%ld kB); backlog %zu entries, %zu bytes; %ld payloads alive\n",
           before, peak, grown, te, tb, (long)alive);
    for (int i = 0; i < n; i++) worker_quit(ws[i]);
    for (int i = 0; i < n; i++) while (worker_is_running(ws[i])) worker_app_process_events(1);
    for (int i = 0; i < n; i++) worker_unref(ws[i]);
    while (worker_live_count()) worker_app_process_events(1);
    for (int i = 0; i < 50; i++) worker_app_process_events(1);
    int bad = grown > 64 * 1024 || alive != 0;
    printf("%s (payloads alive at the end: %ld)\n", bad ? "FAIL" : "PASS", (long)alive);
    return bad;
}
