/* probe: worker_backlog from a sampling thread while the GUI keeps up with a flood (plain yields on the fast path, sized yields, warnings, a mix) under BLOCK / LATEST, capacities 1 2 3 1000, budgets 0 / 100 (frames of 10 and 40 bytes): entries never above capacity, bytes never above the budget (no size_t wrap below 0), both 0 after FINISHED; run: ./build.sh probes/20_backlog_sampled.c && QT_QPA_PLATFORM=offscreen probes/20_backlog_sampled */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long alive;
static void val_free(void *p) { alive--; free(p); }
static void *val(void) { alive++; return malloc(8); }
typedef struct { int kind; size_t size; } cfg;
static void producer(worker_ctx *ctx, void *arg) {
    cfg *c = arg;
    for (long i = 0; i < 20000; i++) {
        int k = c->kind == 3 ? (int)(i % 3) : c->kind, rc = 0;
        if (k == 0) rc = worker_yield(ctx, val(), val_free, NULL, NULL);
        if (k == 1) rc = worker_yield_sized(ctx, val(), c->size, val_free, NULL, NULL);
        if (k == 2) rc = worker_warn(ctx, "w");
        if (rc == WORKER_ABORTED) return;
    }
}
static worker *w;
static atomic_int stop;
static size_t max_e, max_b;
static long samples;
static void *sampler(void *a) {
    (void)a;
    while (!stop) {
        size_t e, b;
        worker_backlog(w, &e, &b);
        if (e > max_e) max_e = e;
        if (b > max_b) max_b = b;
        samples++;
    }
    return NULL;
}
static int finished;
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; finished = 1; }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(200);
    worker_app_init(&argc, argv);
    size_t caps[] = {1, 2, 3, 1000};
    int fails = 0;
    for (int p = 0; p < 3; p += 2)
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 4; k++)
                for (int b = 0; b < 3; b++) {
                    cfg cf = {k, b == 2 ? 40 : 10};
                    worker_options o;
                    worker_options_init(&o);
                    o.policy = p; o.capacity = caps[c]; o.capacity_bytes = b ? 100 : 0;
                    w = worker_create(producer, &cf, NULL, &o);
                    worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
                    finished = 0; stop = 0; max_e = max_b = 0; samples = 0;
                    pthread_t t;
                    worker_start(w);
                    pthread_create(&t, NULL, sampler, NULL);
                    while (!finished) worker_app_process_events(5);
                    stop = 1;
                    pthread_join(t, NULL);
                    size_t e, by;
                    worker_backlog(w, &e, &by);
                    int bad = max_e > caps[c] || (b && max_b > 100) || e || by;
                    if (bad) {
                        fails++;
                        printf("FAIL policy %d cap %zu kind %d budget %d size %zu: max %zu entries, %zu bytes over %ld samples; after FINISHED %zu/%zu\n",
                               p, caps[c], k, b ? 100 : 0, cf.size, max_e, max_b, samples, e, by);
                    }
                    worker_unref(w);
                }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); fails++; }
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails != 0;
}
