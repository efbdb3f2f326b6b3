/* probe: no deadlock, nothing lost: worker_await / worker_await_all on the GUI thread while BLOCK workers sit at capacity (cap 1, a byte budget, stdout lines at capacity, LATEST warnings at capacity, a serial group), worker_await from inside a YIELDED callback of the same worker, worker_await from a thread while the GUI awaits too; afterwards every value arrives once, in order; worker_scope_close from another thread during a flood (GUI pumping, GUI stalled, GUI inside a slow callback) and on the GUI thread; a watchdog alarm fails a hang; run: ./build.sh probes/18_await_close_deadlocks.c && QT_QPA_PLATFORM=offscreen probes/18_await_close_deadlocks */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *current = "";
static void on_alarm(int s) {
    (void)s;
    char m[200];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_long alive;
static int fails;
static void val_free(void *p) { alive--; free(p); }
static long *val(long s) { long *p = malloc(sizeof *p); *p = s; alive++; return p; }

#define N 3000
static void producer(worker_ctx *ctx, void *arg) {
    int kind = (int)(long)arg;
    FILE *out = worker_stdout(ctx);
    for (long i = 0; i < N; i++) {
        int rc = 0;
        switch (kind) {
        case 0: rc = worker_yield(ctx, val(i), val_free, NULL, NULL); break;
        case 1: rc = worker_yield_sized(ctx, val(i), 100, val_free, NULL, NULL); break;
        case 2: fprintf(out, "%ld\n", i); break;
        case 3: rc = worker_warn(ctx, "%ld", i); break;
        }
        if (rc == WORKER_ABORTED) return;
    }
}
typedef struct { long next; int bad; int await_at; worker *self; } seqr;
static void check(seqr *r, long s) {
    if (s != r->next && !r->bad) { r->bad = 1; printf("FAIL: '%s': got %ld, want %ld\n", current, s, r->next); fails++; }
    r->next = s + 1;
}
static void on_yield(worker_event *ev, void *ud) {
    seqr *r = ud;
    check(r, *(long *)ev->value);
    if (r->await_at >= 0 && r->next == r->await_at + 1) {
        int rc = worker_await(r->self, -1);
        if (rc != WORKER_OK) { printf("FAIL: await in callback: %s\n", worker_strerror(rc)); fails++; }
    }
}
static void on_text(worker_event *ev, void *ud) { check(ud, atol(ev->message)); }

static worker *mk(int kind, worker_policy pol, size_t cap, size_t bytes, const char *group, seqr *r) {
    worker_options o;
    worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = bytes; o.group = group;
    worker *w = worker_create(producer, (void *)(long)kind, NULL, &o);
    r->next = 0; r->bad = 0; r->await_at = -1; r->self = w;
    worker_connect(w, WORKER_EV_YIELDED, on_yield, r, NULL);
    worker_connect(w, WORKER_EV_OUTPUT, on_text, r, NULL);
    worker_connect(w, WORKER_EV_WARNED, on_text, r, NULL);
    return w;
}
static void drain(worker **ws, seqr *rs, int n) {
    for (int t = 0; t < 5000; t++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= rs[i].next == N;
        if (all) break;
        worker_app_process_events(1);
    }
    for (int i = 0; i < n; i++) {
        if (rs[i].next != N && !rs[i].bad) { printf("FAIL: '%s': worker %d delivered %ld of %d\n", current, i, rs[i].next, N); fails++; }
        worker_unref(ws[i]);
    }
}

static worker *other_awaited;
static void *await_thread(void *a) { (void)a; worker_await(other_awaited, -1); return NULL; }

/* scope close from another thread */
static void flood(worker_ctx *ctx, void *arg) {
    (void)arg;
    while (worker_yield(ctx, val(0), val_free, NULL, NULL) != WORKER_ABORTED) {}
}
static atomic_int in_slow, closed;
static void slow_cb(worker_event *ev, void *ud) { (void)ev; (void)ud; in_slow = 1; usleep(3000); in_slow = 0; }
static worker_scope *sc;
static int close_rc;
static void *closer(void *a) {
    usleep((long)a);
    close_rc = worker_scope_close(sc, -1);
    closed = 1;
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    struct { const char *name; int kind; worker_policy pol; size_t cap, bytes; } cs[] = {
        {"await GUI: BLOCK cap 1 yields", 0, WORKER_BLOCK, 1, 0},
        {"await GUI: BLOCK budget 250 sized", 1, WORKER_BLOCK, 100, 250},
        {"await GUI: stdout at capacity 2", 2, WORKER_BLOCK, 2, 0},
        {"await GUI: LATEST warnings at capacity 1", 3, WORKER_LATEST, 1, 0},
    };
    for (int c = 0; c < 4; c++) {
        current = cs[c].name;
        seqr r;
        worker *w = mk(cs[c].kind, cs[c].pol, cs[c].cap, cs[c].bytes, NULL, &r);
        worker_start(w);
        usleep(20000);
        alarm(10);
        int rc = worker_await(w, -1);
        alarm(0);
        if (rc != WORKER_OK) { printf("FAIL: %s: %s\n", current, worker_strerror(rc)); fails++; }
        alarm(10);
        drain(&w, &r, 1);
        alarm(0);
    }
    {
        current = "await_all GUI: 5 BLOCK cap 1 in a serial group + 2 free";
        enum { M = 7 };
        worker *ws[M];
        seqr rs[M];
        for (int i = 0; i < M; i++) ws[i] = mk(i % 3 == 2 ? 2 : 0, WORKER_BLOCK, 1, 0, i < 5 ? "g" : NULL, &rs[i]);
        for (int i = 0; i < M; i++) worker_start(ws[i]);
        usleep(20000);
        alarm(20);
        int rc = worker_await_all(-1);
        alarm(0);
        if (rc != WORKER_OK) { printf("FAIL: %s: %s\n", current, worker_strerror(rc)); fails++; }
        alarm(20);
        drain(ws, rs, M);
        alarm(0);
    }
    {
        current = "await from inside a YIELDED callback of the same worker (BLOCK cap 2)";
        seqr r;
        worker *w = mk(0, WORKER_BLOCK, 2, 0, NULL, &r);
        r.await_at = 5;
        worker_start(w);
        alarm(10);
        drain(&w, &r, 1);
        alarm(0);
    }
    {
        current = "await on the GUI and from a thread at once (BLOCK cap 1)";
        seqr r;
        worker *w = mk(0, WORKER_BLOCK, 1, 0, NULL, &r);
        other_awaited = w;
        worker_start(w);
        pthread_t t;
        pthread_create(&t, NULL, await_thread, NULL);
        usleep(10000);
        alarm(10);
        worker_await(w, -1);
        pthread_join(t, NULL);
        drain(&w, &r, 1);
        alarm(0);
    }
    /* scope close during a flood: 0 GUI pumping, 1 GUI stalled, 2 GUI in slow callbacks, 3 on the GUI thread */
    for (int mode = 0; mode < 4; mode++)
        for (int round = 0; round < 5; round++) {
            static const char *names[] = {"scope close from a thread, GUI pumping", "scope close from a thread, GUI stalled",
                                          "scope close from a thread, GUI in slow callbacks", "scope close on the GUI thread"};
            current = names[mode];
            sc = worker_scope_new("s");
            worker *ws[4];
            for (int i = 0; i < 4; i++) {
                worker_options o;
                worker_options_init(&o);
                o.scope = sc; o.capacity = i == 0 ? 1 : 500; o.policy = i == 3 ? WORKER_LATEST : WORKER_BLOCK;
                ws[i] = worker_create(flood, NULL, NULL, &o);
                if (mode == 2) worker_connect(ws[i], WORKER_EV_YIELDED, slow_cb, NULL, NULL);
                worker_start(ws[i]);
            }
            closed = 0;
            alarm(15);
            if (mode == 3) {
                for (int i = 0; i < 20; i++) worker_app_process_events(1);
                close_rc = worker_scope_close(sc, -1);
                closed = 1;
            } else {
                pthread_t t;
                pthread_create(&t, NULL, closer, (void *)(long)(round * 3000));
                if (mode == 1) { while (!closed) usleep(1000); }
                else while (!closed) worker_app_process_events(1);
                pthread_join(t, NULL);
            }
            alarm(0);
            if (close_rc != WORKER_OK) { printf("FAIL: %s: %s\n", current, worker_strerror(close_rc)); fails++; }
            for (int i = 0; i < 4; i++) worker_unref(ws[i]);
            alarm(15);
            while (worker_live_count()) worker_app_process_events(1);
            alarm(0);
        }
    for (int i = 0; i < 50; i++) worker_app_process_events(1);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); fails++; }
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails != 0;
}
