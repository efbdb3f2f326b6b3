/* promise 2 (a value is destroyed once, after delivery: never while a callback of it still runs) with the deferred destroy of delivered plain yields on the worker thread: a YIELDED callback re-enters the event loop with worker_app_process_events (nested delivery of later values while the worker keeps yielding), then reads its own value again and takes every 5th with worker_event_take after the nested loop; plain / sized, BLOCK 1/2/7/1024, QUEUE, LATEST 1/7, budget 0/500; every payload destroyed once with the right fn; run: cd tests/attack && bash build.sh probes/s7_07_nested_loop_deferred_destroy.c build-asan && QT_QPA_PLATFORM=offscreen ./probes/s7_07_nested_loop_deferred_destroy */
#include <qtworker.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC 0x1234567L
typedef struct { long magic; long seq; int fn; } payload;
static atomic_long made, freed, bad, kept_n;
static void dfree(void *p, int fn) {
    payload *v = p;
    if (v->magic != MAGIC || v->fn != fn) { bad++; return; }
    v->magic = 0; freed++; free(v);
}
static void da(void *p) { dfree(p, 0); }
static void db(void *p) { dfree(p, 1); }
static worker_destroy_fn fns[] = {da, db};
static const char *current = "";
static void on_alarm(int s) { (void)s; char m[300]; int n = snprintf(m, sizeof m, "FAIL: hang in %s\n", current); write(1, m, n); _exit(1); }

typedef struct { long n; size_t size; int finished; int depth; long dead_after_nest, nests; worker *w; } st;
static void fn(worker_ctx *ctx, void *arg) {
    st *s = arg;
    for (long i = 0; i < s->n; i++) {
        payload *v = malloc(sizeof *v); v->magic = MAGIC; v->seq = i; v->fn = (int)(i & 1); made++;
        int rc = s->size && i % 3 == 0 ? worker_yield_sized(ctx, v, s->size, fns[i & 1], NULL, NULL) : worker_yield(ctx, v, fns[i & 1], NULL, NULL);
        if (rc) return;
    }
}
static void *kept[200000]; static int keptfn[200000];
static void on_y(worker_event *ev, void *ud) {
    st *s = ud;
    payload *v = ev->value;
    if (!v || v->magic != MAGIC) { bad++; return; }
    if (s->depth < 3 && v->seq % 7 == 0) {
        s->depth++; s->nests++;
        for (int i = 0; i < 3; i++) worker_app_process_events(i == 0);
        s->depth--;
        if (v->magic != MAGIC) { s->dead_after_nest++; return; } /* ASan reports a use-after-free here first */
        if (v->seq % 5 == 0) { void *t = worker_event_take(ev); if (t != v) bad++; else { keptfn[kept_n] = v->fn; kept[kept_n++] = t; } }
    }
}
static void on_fin(worker_event *ev, void *ud) { (void)ev; ((st *)ud)->finished = 1; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    int fails = 0;
    struct { worker_policy p; size_t cap; } cfg[] = {{WORKER_BLOCK, 1}, {WORKER_BLOCK, 2}, {WORKER_BLOCK, 7}, {WORKER_BLOCK, 1024}, {WORKER_QUEUE, 0}, {WORKER_LATEST, 1}, {WORKER_LATEST, 7}};
    char nm[100];
    for (unsigned c = 0; c < sizeof cfg / sizeof *cfg; c++)
        for (int b = 0; b < 2; b++) {
            if (b && cfg[c].p == WORKER_QUEUE) continue;
            static st s; memset(&s, 0, sizeof s);
            s.n = 6000; s.size = b ? 100 : 0;
            snprintf(nm, sizeof nm, "policy %d cap %zu budget %d", cfg[c].p, cfg[c].cap, b ? 500 : 0);
            current = nm;
            worker_options o; worker_options_init(&o);
            o.policy = cfg[c].p; o.capacity = cfg[c].cap; o.capacity_bytes = b ? 500 : 0;
            s.w = worker_create(fn, &s, NULL, &o);
            worker_connect(s.w, WORKER_EV_YIELDED, on_y, &s, NULL);
            worker_connect(s.w, WORKER_EV_FINISHED, on_fin, &s, NULL);
            worker_start(s.w);
            alarm(20);
            while (!s.finished) worker_app_process_events(5);
            alarm(0);
            printf("%s %s: %ld nested loops, values destroyed while their outer callback ran: %ld\n", s.dead_after_nest ? "FAIL" : "ok  ", nm, s.nests, s.dead_after_nest);
            fails += s.dead_after_nest != 0;
            worker_unref(s.w);
        }
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    for (long i = 0; i < kept_n; i++) fns[keptfn[i]](kept[i]);
    printf("made %ld destroyed %ld (taken %ld), wrong/double destroys %ld\n", (long)made, (long)freed, (long)kept_n, (long)bad);
    if (made != freed || bad) fails++;
    printf("%s (%d failures)\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
