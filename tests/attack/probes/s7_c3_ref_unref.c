/* promise 2 (handles, lifetime): create/free loops (address reuse), worker_ref/unref from 8 threads at once on a running worker (plus worker_list refs), the last unref from inside the worker's own YIELDED / STARTED / FINISHED callback, from another worker's callback, from another worker's thread, from a foreign pthread; each time FINISHED reaches every connected FINISHED callback exactly once, arg_destroy and each user_data destroy run exactly once, no use-after-free. run: ./build.sh probes/s7_c3_ref_unref.c && QT_QPA_PLATFORM=offscreen probes/s7_c3_ref_unref */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *current = "start";
static void on_alarm(int s) {
    (void)s;
    char m[300];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_long fails;
#define FAIL(...) do { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); fails++; } while (0)

typedef struct cnt { atomic_int arg_destroyed, ud_destroyed, finished, started, yielded, outcome; int fin2; worker *w; int mode; } cnt;
static void arg_free(void *p) { cnt *c = p; c->arg_destroyed++; }
static void ud_free(void *p) { cnt *c = p; c->ud_destroyed++; }

static atomic_int stop_all;
static void spin(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0; !stop_all; i++) {
        if (worker_yield(ctx, NULL, NULL, NULL, NULL) == WORKER_ABORTED) return;
        usleep(100);
    }
}
static void quick(worker_ctx *ctx, void *arg) { (void)ctx; (void)arg; }

static void on_fin(worker_event *ev, void *p) { cnt *c = p; c->finished++; (void)ev; }
static void on_out(worker_event *ev, void *p) { cnt *c = p; c->outcome++; (void)ev; }

/* ---- a) create/free loop */
static void loop_create_free(void) {
    current = "create/free loop";
    enum { M = 2000 };
    static cnt cs[M];
    memset(cs, 0, sizeof cs);
    uintptr_t *addrs = calloc(M, sizeof *addrs);
    long reuse = 0;
    for (int i = 0; i < M; i++) {
        cnt *c = &cs[i];
        worker *w = worker_create(quick, c, arg_free, NULL);
        if (!w) { FAIL("create %d: %d", i, worker_last_error()); continue; }
        addrs[i] = (uintptr_t)w;
        for (int j = 0; j < i; j++) if (addrs[j] == (uintptr_t)w) { reuse++; break; }
        worker_connect(w, WORKER_EV_FINISHED, on_fin, c, ud_free);
        worker_connect(w, WORKER_EV_RETURNED, on_out, c, ud_free);
        c->mode = i % 3;
        if (c->mode >= 1) worker_start(w);
        if (c->mode == 2) worker_quit(w);
        worker_unref(w);
        if (i % 100 == 0) worker_app_process_events(0);
    }
    alarm(20);
    for (;;) {
        int done = 1;
        for (int i = 0; i < M; i++) if (cs[i].mode >= 1 && !cs[i].finished) { done = 0; break; }
        if (done && worker_live_count() == 0) break;
        worker_app_process_events(2);
    }
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    alarm(0);
    long bad = 0;
    for (int i = 0; i < M; i++) {
        cnt *c = &cs[i];
        int wf = c->mode >= 1 ? 1 : 0;
        if (c->arg_destroyed != 1 || c->ud_destroyed != 2 || c->finished != wf) {
            if (bad++ < 5) FAIL("worker %d (mode %d): arg destroyed %d, user_data destroyed %d/2, FINISHED %d/%d", i, c->mode, (int)c->arg_destroyed, (int)c->ud_destroyed, (int)c->finished, wf);
        }
    }
    if (bad) FAIL("%ld of %d workers wrong", bad, M);
    printf("create/free loop: %d workers, %ld handle addresses reused\n", M, reuse);
    free(addrs);
}

/* ---- b) ref/unref from many threads */
static worker *shared;
static void *refunref(void *a) {
    long n = (long)a;
    for (long i = 0; i < n; i++) {
        worker *r = worker_ref(shared);
        if (r != shared) { printf("FAIL: worker_ref returned %p, want %p\n", (void *)r, (void *)shared); fails++; return NULL; }
        if (i % 7 == 0) { worker *r2 = worker_ref(shared); worker_unref(r2); }
        worker_unref(r);
        if (i % 100 == 0) {
            worker *l[8];
            int k = worker_list(l, 8);
            for (int j = 0; j < k; j++) worker_unref(l[j]);
        }
    }
    return NULL;
}
static void threads_refunref(void) {
    current = "ref/unref from 8 threads";
    static cnt c;
    memset(&c, 0, sizeof c);
    stop_all = 0;
    shared = worker_create(spin, &c, arg_free, NULL);
    worker_connect(shared, WORKER_EV_FINISHED, on_fin, &c, ud_free);
    worker_start(shared);
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, refunref, (void *)20000L);
    alarm(25);
    for (int i = 0; i < 8; i++) while (pthread_tryjoin_np(t[i], NULL)) worker_app_process_events(1);
    if (!worker_is_running(shared)) FAIL("worker stopped by the ref/unref storm (refcount dropped to 0?)");
    worker_unref(shared);  /* last: quits it */
    while (!c.finished) worker_app_process_events(2);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    alarm(0);
    if (c.arg_destroyed != 1 || c.ud_destroyed != 1 || c.finished != 1) FAIL("arg %d ud %d fin %d", (int)c.arg_destroyed, (int)c.ud_destroyed, (int)c.finished);
}

/* ---- c..g) last unref from odd places */
static void unref_in_yield(worker_event *ev, void *p) {
    cnt *c = p;
    if (++c->yielded == 5) worker_unref(c->w);
    (void)ev;
}
static void unref_in_started(worker_event *ev, void *p) { cnt *c = p; c->started++; worker_unref(c->w); (void)ev; }
static void unref_in_fin(worker_event *ev, void *p) { cnt *c = p; c->finished++; worker_unref(c->w); (void)ev; }
static void fin_after(worker_event *ev, void *p) {
    cnt *c = p;
    c->fin2++;
    /* the event and its source are still valid during the callback */
    if (ev->type != WORKER_EV_FINISHED) printf("FAIL: fin_after type %d\n", ev->type), fails++;
    const char *nm = worker_name(ev->source);
    (void)nm;
}
static cnt *victim_c;
static void unref_other_in_cb(worker_event *ev, void *p) {
    (void)ev; (void)p;
    if (victim_c && victim_c->w) { worker *w = victim_c->w; victim_c->w = NULL; worker_unref(w); }
}
static void unref_from_fn(worker_ctx *ctx, void *arg) {
    cnt *victim = arg;
    usleep(20000);
    worker_unref(victim->w);
    worker_yield(ctx, NULL, NULL, NULL, NULL);
}
static void *unref_thread(void *a) { cnt *c = a; usleep(20000); worker_unref(c->w); return NULL; }

static void one(int mode) {
    static const char *names[] = {"last unref in own YIELDED callback", "last unref in own STARTED callback",
                                  "last unref in own FINISHED callback (another FINISHED callback after it)",
                                  "last unref in another worker's YIELDED callback", "last unref from another worker's thread",
                                  "last unref from a foreign pthread", "last unref in own FINISHED of a quick worker",
                                  "last unref in own FINISHED of a worker quit before start"};
    current = names[mode];
    static cnt c, c2;
    memset(&c, 0, sizeof c);
    memset(&c2, 0, sizeof c2);
    stop_all = 0;
    worker *w = worker_create(mode >= 6 ? quick : spin, &c, arg_free, NULL);
    c.w = w;
    worker_connect(w, WORKER_EV_ABORTED, on_out, &c, ud_free);
    worker_connect(w, WORKER_EV_RETURNED, on_out, &c, ud_free);
    worker *other = NULL;
    pthread_t t;
    int joined = 1;
    switch (mode) {
    case 0: worker_connect(w, WORKER_EV_YIELDED, unref_in_yield, &c, ud_free); worker_connect(w, WORKER_EV_FINISHED, on_fin, &c, ud_free); break;
    case 1: worker_connect(w, WORKER_EV_STARTED, unref_in_started, &c, ud_free); worker_connect(w, WORKER_EV_FINISHED, on_fin, &c, ud_free); break;
    case 2: case 6: case 7:
        worker_connect(w, WORKER_EV_FINISHED, unref_in_fin, &c, ud_free);
        worker_connect(w, WORKER_EV_FINISHED, fin_after, &c, ud_free); break;
    case 3:
        worker_connect(w, WORKER_EV_FINISHED, on_fin, &c, ud_free);
        victim_c = &c;
        other = worker_create(spin, &c2, arg_free, NULL);
        worker_connect(other, WORKER_EV_YIELDED, unref_other_in_cb, &c2, ud_free);
        break;
    case 4:
        worker_connect(w, WORKER_EV_FINISHED, on_fin, &c, ud_free);
        other = worker_create(unref_from_fn, &c, NULL, NULL);
        break;
    case 5:
        worker_connect(w, WORKER_EV_FINISHED, on_fin, &c, ud_free);
        break;
    }
    if (mode == 7) worker_quit(w);
    worker_start(w);
    if (other) worker_start(other);
    if (mode == 5) { pthread_create(&t, NULL, unref_thread, &c); joined = 0; }
    alarm(10);
    if (mode == 2) { for (int i = 0; i < 20; i++) worker_app_process_events(1); worker_quit(w); }
    while (!c.finished) worker_app_process_events(2);
    if (!joined) pthread_join(t, NULL);
    stop_all = 1;
    if (other) { worker_await(other, -1); for (int i = 0; i < 20; i++) worker_app_process_events(1); worker_unref(other); }
    for (int i = 0; i < 40; i++) worker_app_process_events(1);
    alarm(0);
    int want_ud = 3 + (mode == 2 || mode >= 6 ? 1 : 0) - (mode == 3 || mode == 4 || mode == 5 ? 1 : 0) + (mode == 3 ? 1 : 0);
    /* connections on w: ABORTED, RETURNED, + (YIELDED|STARTED)+FINISHED or FINISHED x2, or FINISHED alone;  mode 3: c2's cb counts into c2 */
    want_ud = mode <= 2 || mode >= 6 ? 4 : 3;
    if (c.finished != 1) FAIL("FINISHED delivered %d times", (int)c.finished);
    if ((mode == 2 || mode >= 6) && c.fin2 != 1) FAIL("FINISHED callback connected after the unref'ing one called %d times", c.fin2);
    if (c.outcome != 1) FAIL("outcome (RETURNED/ABORTED) delivered %d times", (int)c.outcome);
    if (c.arg_destroyed != 1) FAIL("arg destroyed %d times", (int)c.arg_destroyed);
    if (c.ud_destroyed != want_ud) FAIL("user_data destroyed %d times, want %d", (int)c.ud_destroyed, want_ud);
    if (mode == 3 && (c2.arg_destroyed != 1 || c2.ud_destroyed != 1)) FAIL("other worker: arg %d ud %d", (int)c2.arg_destroyed, (int)c2.ud_destroyed);
    if (worker_live_count() != 0) FAIL("live count %d", worker_live_count());
    printf("%s: %s\n", current, fails ? "(failures so far)" : "ok");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    loop_create_free();
    threads_refunref();
    for (int r = 0; r < 3; r++)
        for (int m = 0; m < 8; m++) one(m);
    printf("%s c3_ref_unref: %ld failures\n", fails ? "FAIL" : "PASS", (long)fails);
    return fails != 0;
}
