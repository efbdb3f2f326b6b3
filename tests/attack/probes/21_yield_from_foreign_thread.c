/* probe: "worker side: only from inside the worker's function; anywhere else WORKER_ETHREAD (values handed over are destroyed)": while the function floods plain (fast path) and sized yields, two threads it started call worker_yield / worker_yield_sized / worker_warn / worker_emit / worker_progress with its ctx: each must get ETHREAD and destroy its value; the function's own values arrive once, in order, and nothing else arrives; run: ./build.sh probes/21_yield_from_foreign_thread.c && QT_QPA_PLATFORM=offscreen probes/21_yield_from_foreign_thread */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long alive, not_ethread, foreign_calls;
static void val_free(void *p) { alive--; free(p); }
static long *val(long s) { long *p = malloc(sizeof *p); *p = s; alive++; return p; }
static atomic_int stop;
static void *intruder(void *a) {
    worker_ctx *ctx = a;
    for (long i = 0; !stop; i++) {
        int rc;
        switch (i % 5) {
        case 0: rc = worker_yield(ctx, val(-1), val_free, NULL, NULL); break;
        case 1: rc = worker_yield_sized(ctx, val(-1), 4, val_free, NULL, NULL); break;
        case 2: rc = worker_warn(ctx, "intruder"); break;
        case 3: rc = worker_emit(ctx, "intruder", val(-1), val_free); break;
        default: rc = worker_progress(ctx, -1, 0, NULL); break;
        }
        foreign_calls++;
        if (rc != WORKER_ETHREAD) not_ethread++;
    }
    return NULL;
}
#define N 200000
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    pthread_t t[2];
    stop = 0;
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, intruder, ctx);
    for (long i = 0; i < N; i++) {
        int rc = i % 2 ? worker_yield(ctx, val(i), val_free, NULL, NULL)
                       : worker_yield_sized(ctx, val(i), 4, val_free, NULL, NULL);
        if (rc != WORKER_OK) break;
    }
    stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}
static long next, bad_seq, others;
static int finished;
static void on_yield(worker_event *ev, void *ud) {
    (void)ud;
    long s = *(long *)ev->value;
    if (s != next) bad_seq++;
    next = s + 1;
}
static void on_other(worker_event *ev, void *ud) { (void)ev; (void)ud; others++; }
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; finished = 1; }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(200);
    worker_app_init(&argc, argv);
    int fails = 0;
    for (int round = 0; round < 3; round++) {
        worker_options o;
        worker_options_init(&o);
        o.capacity = round == 0 ? 1 : round == 1 ? 16 : 4096;
        o.capacity_bytes = round == 1 ? 64 : 0;
        worker *w = worker_create(fn, NULL, NULL, &o);
        worker_connect(w, WORKER_EV_YIELDED, on_yield, NULL, NULL);
        worker_connect(w, WORKER_EV_WARNED, on_other, NULL, NULL);
        worker_connect(w, WORKER_EV_CUSTOM, on_other, NULL, NULL);
        worker_connect(w, WORKER_EV_PROGRESS, on_other, NULL, NULL);
        worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
        next = 0; bad_seq = 0; others = 0; finished = 0; not_ethread = 0; foreign_calls = 0;
        worker_start(w);
        while (!finished) worker_app_process_events(5);
        int bad = next != N || bad_seq || others || not_ethread;
        fails += bad;
        printf("%s cap %zu: %ld of %d own values (%ld out of order), %ld foreign events delivered, %ld of %ld foreign calls not ETHREAD\n",
               bad ? "FAIL" : "held", o.capacity, next, N, bad_seq, others, (long)not_ethread, (long)foreign_calls);
        worker_unref(w);
    }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); fails++; }
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails != 0;
}
