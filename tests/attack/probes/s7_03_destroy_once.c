/* promise 2 (exactly-once destroy with the right function, on every path; deferred destroys of delivered yields): (a) a delivered plain yield whose worker then stops yielding (sleeps, waits in worker_receive, in worker_call_home, polls worker_abort_requested, is paused) must be destroyed on the home thread within ~10 ms and never while its callback runs; (b) values alternating destroy A / B / NULL destroy / NULL value with destroy C, plain and sized, three connections, the 2nd takes every 3rd value with worker_event_take (library must not destroy it, 3rd connection sees NULL); (c) quit from another thread mid-flood; (d) last unref of a running worker from the GUI and from a thread; (e) function returns with a backlog under a stalled GUI; under BLOCK 2/1024, QUEUE, LATEST 1/1024, budget 0/500; run: cd tests/attack && bash build.sh probes/s7_03_destroy_once.c build-asan && QT_QPA_PLATFORM=offscreen ./probes/s7_03_destroy_once */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0xabcdef01L
typedef struct { long magic; long seq; int fn; atomic_int in_cb; } payload;
static atomic_long made[3], freed[3], bad, freed_in_cb, null_c_made, null_c_freed;
static pthread_t gui;
static atomic_long destroy_on_gui, destroy_off_gui;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static _Atomic double last_destroy_time;
static void dfree(void *p, int fn) {
    payload *v = p;
    if (!v) { bad++; printf("  destroy %c got NULL\n", 'A' + fn); return; }
    if (v->magic != MAGIC) { bad++; printf("  destroy %c of a dead/garbage value (magic %lx)\n", 'A' + fn, v->magic); return; }
    if (v->fn != fn) { bad++; printf("  destroy %c of a value handed with %c\n", 'A' + fn, 'A' + v->fn); }
    if (v->in_cb) freed_in_cb++;
    if (pthread_equal(pthread_self(), gui)) destroy_on_gui++; else destroy_off_gui++;
    last_destroy_time = now();
    v->magic = 0; freed[v->fn]++; free(v);
}
static void da(void *p) { dfree(p, 0); }
static void db(void *p) { dfree(p, 1); }
static void dc(void *p) { if (p) { bad++; printf("  destroy C got non-NULL\n"); } else null_c_freed++; }
static payload *mk(long s, int fn) { payload *v = calloc(1, sizeof *v); v->magic = MAGIC; v->seq = s; v->fn = fn; made[fn]++; return v; }
static worker_destroy_fn dfn[] = {da, db};

static const char *current = "";
static void on_alarm(int s) { (void)s; char m[300]; int n = snprintf(m, sizeof m, "FAIL: hang in %s\n", current); write(1, m, n); _exit(1); }
static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s: ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)

/* ---------------------------------------------------------------- (a) */
typedef struct { int mode; atomic_int delivered; _Atomic double cb_end; atomic_int go; worker *w; } aarg;
static void *home_fn(void *a) { (void)a; return NULL; }
static void a_worker(worker_ctx *ctx, void *arg) {
    aarg *a = arg;
    worker_yield(ctx, mk(0, 0), da, NULL, NULL);
    while (!a->delivered) usleep(100);
    void *v; worker_destroy_fn d; void *res;
    switch (a->mode) {
    case 0: usleep(300000); break;
    case 1: worker_receive(ctx, &v, &d, 300); break;
    case 2: worker_call_home(ctx, home_fn, NULL, &res, -1); usleep(300000); break;
    case 3: { double t0 = now(); while (now() - t0 < 0.3) worker_abort_requested(ctx); break; }
    case 4: while (!a->go) worker_abort_requested(ctx); break; /* paused by the GUI */
    case 5: worker_progress(ctx, 1, 2, NULL); worker_warn(ctx, "w"); usleep(300000); break; /* other kinds, no yield */
    }
}
static void a_yield(worker_event *ev, void *ud) {
    aarg *a = ud;
    payload *v = ev->value;
    v->in_cb = 1;
    a->delivered = 1;
    usleep(30000); /* the worker is now past its yield: a destroy on its thread now would be inside this callback */
    if (v->magic != MAGIC) { fails++; printf("FAIL %s: value destroyed while its callback ran\n", current); return; }
    v->in_cb = 0;
    if (a->mode == 4) worker_pause(a->w);
    a->cb_end = now();
}
static int fin_flag;
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; fin_flag = 1; }

static void test_a(void) {
    static const char *mn[] = {"sleep", "worker_receive", "worker_call_home", "worker_abort_requested loop", "paused", "progress+warn then sleep"};
    for (int m = 0; m < 6; m++) {
        char nm[100]; snprintf(nm, sizeof nm, "(a) delivered yield, worker then %s", mn[m]); current = nm;
        for (int rep = 0; rep < 3; rep++) {
            aarg a = {0}; a.mode = m; a.cb_end = 0;
            long f0 = freed[0];
            worker *w = worker_create(a_worker, &a, NULL, NULL);
            a.w = w;
            worker_connect(w, WORKER_EV_YIELDED, a_yield, &a, NULL);
            worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
            fin_flag = 0;
            worker_start(w);
            alarm(10);
            double destroyed_at = 0;
            while (!fin_flag) {
                worker_app_process_events(1);
                if (!destroyed_at && freed[0] > f0) destroyed_at = last_destroy_time;
                if (m == 4 && a.cb_end && now() - a.cb_end > 0.3 && !a.go) { a.go = 1; worker_resume(w); }
            }
            alarm(0);
            if (!destroyed_at && freed[0] > f0) destroyed_at = last_destroy_time;
            double lag = destroyed_at - a.cb_end;
            CHECK(freed[0] == f0 + 1, "freed %ld values, want 1", freed[0] - f0);
            CHECK(lag < 0.05, "destroyed %.1f ms after its callback returned (promise: within about 10 ms)", lag * 1000);
            if (rep == 0) printf("     %s: destroyed %.1f ms after delivery\n", nm, lag * 1000);
            worker_unref(w);
        }
    }
}

/* ---------------------------------------------------------------- (b)..(e) */
typedef struct { long n; int sized; size_t size; atomic_long yielded, aborted_at; atomic_int stop_mid; } farg;
static void flood(worker_ctx *ctx, void *arg) {
    farg *f = arg;
    for (long s = 0; s < f->n; s++) {
        int k = s % 4, rc;
        void *v; worker_destroy_fn d;
        if (k < 2) { v = mk(s, k); d = dfn[k]; }
        else if (k == 2) { v = (void *)((uintptr_t)s << 1 | 1); d = NULL; }
        else { v = NULL; d = dc; null_c_made++; }
        rc = f->sized && s % 3 ? worker_yield_sized(ctx, v, s % 2 ? f->size : 0, d, NULL, NULL)
                               : worker_yield(ctx, v, d, NULL, NULL);
        f->yielded++;
        if (rc == WORKER_ABORTED) { f->aborted_at = s; return; }
        if (rc) { printf("  rc %d at %ld\n", rc, s); return; }
        if (s % 5 == 0) worker_emit(ctx, "c", mk(s, s % 2), dfn[s % 2]);
    }
}
static void *kept[400000]; static int kept_fn[400000]; static long nkept;
static long seen1, seen3, took;
static int stall_gui;
static void c1(worker_event *ev, void *ud) {
    (void)ud; seen1++;
    uintptr_t u = (uintptr_t)ev->value;
    if (u && !(u & 1)) {
        payload *v = ev->value;
        if (v->magic != MAGIC) { bad++; printf("  callback 1 sees a dead value\n"); return; }
        v->in_cb = 1;
        if (stall_gui && seen1 % 997 == 0) usleep(3000);
    }
}
static void c2(worker_event *ev, void *ud) {
    (void)ud;
    uintptr_t u = (uintptr_t)ev->value;
    if (u && !(u & 1)) {
        payload *v = ev->value;
        if (v->magic != MAGIC) { bad++; printf("  callback 2 sees a dead value\n"); return; }
        if (v->seq % 3 == 0 && nkept < 400000) {
            void *t = worker_event_take(ev);
            if (t != v) { bad++; printf("  take returned %p, value %p\n", t, (void *)v); }
            v->in_cb = 0;
            kept_fn[nkept] = v->fn; kept[nkept++] = t; took++;
            if (ev->value) { bad++; printf("  ev->value not NULL after take\n"); }
        }
    }
}
static void c3(worker_event *ev, void *ud) {
    (void)ud; seen3++;
    uintptr_t u = (uintptr_t)ev->value;
    if (u && !(u & 1)) {
        payload *v = ev->value;
        if (v->magic != MAGIC) { bad++; printf("  callback 3 sees a dead value\n"); return; }
        if (v->seq % 3 == 0 && ev->type == WORKER_EV_YIELDED) { bad++; printf("  callback 3 sees a value callback 2 took\n"); }
        v->in_cb = 0;
    }
}
static worker *qw;
static atomic_int quitter_go;
static void *quitter(void *a) {
    int how = (int)(intptr_t)a;
    while (!quitter_go) usleep(50);
    usleep(2000 + rand() % 8000);
    if (how == 0) worker_quit(qw); else worker_unref(qw);
    return NULL;
}

static void drain(void) { for (int i = 0; i < 30; i++) worker_app_process_events(2); }

static void flush_kept(void) { for (long i = 0; i < nkept; i++) dfn[kept_fn[i]](kept[i]); nkept = 0; }

static void test_flood(const char *how, worker_policy pol, size_t cap, size_t budget, int sized) {
    char nm[200];
    snprintf(nm, sizeof nm, "%s policy %d cap %zu budget %zu sized %d", how, pol, cap, budget, sized);
    current = nm;
    long m0 = made[0] + made[1], f0 = freed[0] + freed[1], nc0 = null_c_made, ncf0 = null_c_freed, k0 = took;
    farg f = {0}; f.n = 30000; f.sized = sized; f.size = 100;
    worker_options o; worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = budget;
    worker *w = worker_create(flood, &f, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, c1, NULL, NULL);
    worker_connect(w, WORKER_EV_YIELDED, c2, NULL, NULL);
    worker_connect(w, WORKER_EV_YIELDED, c3, NULL, NULL);
    worker_connect(w, WORKER_EV_CUSTOM, c2, NULL, NULL);
    worker_connect(w, WORKER_EV_CUSTOM, c3, NULL, NULL);
    fin_flag = 0;
    worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
    stall_gui = 1;
    pthread_t t; int thr = 0;
    alarm(20);
    if (!strcmp(how, "quit-thread") || !strcmp(how, "unref-thread")) {
        qw = w; quitter_go = 0; thr = 1;
        if (!strcmp(how, "unref-thread")) worker_ref(w); /* the thread drops this one, we keep ours until the end */
        pthread_create(&t, NULL, quitter, (void *)(intptr_t)(how[0] == 'q' ? 0 : 1));
    }
    worker_start(w);
    if (thr) quitter_go = 1;
    if (!strcmp(how, "unref-gui")) {
        for (int i = 0; i < 5; i++) worker_app_process_events(2);
        worker_unref(w); w = NULL; /* last owner ref of a running worker: quits it */
        while (worker_live_count()) worker_app_process_events(2);
    } else if (!strcmp(how, "stalled-return")) {
        /* GUI stalls while the function runs to its end (QUEUE) */
        while (worker_is_running(w)) usleep(1000);
        while (!fin_flag) worker_app_process_events(2);
    } else {
        while (!fin_flag) worker_app_process_events(2);
    }
    if (thr) pthread_join(t, NULL);
    if (!strcmp(how, "unref-thread")) { worker_unref(w); w = NULL; while (worker_live_count()) worker_app_process_events(2); }
    alarm(0);
    drain();
    long mm = made[0] + made[1] - m0, ff = freed[0] + freed[1] - f0, kk = took - k0;
    flush_kept();
    long ff2 = freed[0] + freed[1] - f0;
    CHECK(ff + kk == mm && ff2 == mm, "made %ld, library destroyed %ld, taken %ld (destroyed by us), total %ld", mm, ff, kk, ff2);
    CHECK(null_c_made - nc0 == null_c_freed - ncf0, "NULL values with destroy C: %ld, destroy C calls %ld", null_c_made - nc0, null_c_freed - ncf0);
    if (w) worker_unref(w);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    gui = pthread_self();
    worker_app_init(&argc, argv);
    test_a();
    struct { worker_policy p; size_t cap; } cfg[] = {{WORKER_BLOCK, 2}, {WORKER_BLOCK, 1024}, {WORKER_QUEUE, 0}, {WORKER_LATEST, 1}, {WORKER_LATEST, 1024}};
    const char *hows[] = {"complete", "quit-thread", "unref-gui", "unref-thread", "stalled-return"};
    for (int h = 0; h < 5; h++)
        for (int c = 0; c < 5; c++)
            for (int b = 0; b < 2; b++)
                for (int sized = 0; sized < 2; sized++) {
                    if (b && (cfg[c].p == WORKER_QUEUE || !sized)) continue;
                    if (h == 4 && cfg[c].p != WORKER_QUEUE) continue;
                    test_flood(hows[h], cfg[c].p, cfg[c].cap, b ? 500 : 0, sized);
                }
    drain();
    printf("made A %ld B %ld, freed A %ld B %ld, NULL+C %ld/%ld, wrong/dead destroys %ld, destroyed while a callback of it ran %ld, destroys on GUI %ld off GUI %ld\n",
           (long)made[0], (long)made[1], (long)freed[0], (long)freed[1], (long)null_c_made, (long)null_c_freed, (long)bad, (long)freed_in_cb,
           (long)destroy_on_gui, (long)destroy_off_gui);
    if (bad || freed_in_cb || made[0] != freed[0] || made[1] != freed[1]) fails++;
    printf("%s (%d failures)\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
