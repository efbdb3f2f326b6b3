/* promise 4 (call_home): fn runs after every earlier event of the worker was delivered; 40 workers calling home at once all get OK; while the GUI thread is in worker_await / worker_await_all (on one of them, on a queued serial-group member, with a call already waiting) every call_home returns EBUSY at once and fn never runs, no deadlock; during worker_scope_close on the GUI thread calls return ABORTED/EBUSY, including for a worker outside the scope that a scope worker waits for; await from a foreign thread does not make call_home EBUSY; at the exit join calls return ABORTED/EBUSY and exec returns; *result NULL unless OK. run: ./build.sh probes/s7_c5_call_home.c && QT_QPA_PLATFORM=offscreen probes/s7_c5_call_home */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#define FAIL(...) do { if (fails++ < 40) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)
static pthread_t gui;

/* per-worker state */
typedef struct st {
    int idx;
    long delivered;            /* last YIELDED value delivered (GUI thread) */
    atomic_long ok, busy, aborted, timedout, other, ran_bad;
    int n_calls;
    int stop_on_busy;
    worker *w;
    atomic_int fin;
} st;
typedef struct call { st *s; long expect; atomic_int ran; } call;
static void *home_fn(void *a) {
    call *c = a;
    if (!pthread_equal(pthread_self(), gui)) { printf("FAIL: fn not on the GUI thread\n"); fails++; }
    c->ran = 1;
    if (c->expect >= 0 && c->s->delivered != c->expect) { if (fails++ < 40) printf("FAIL: [%s] w%d: fn ran with last delivered %ld, want %ld\n", current, c->s->idx, c->s->delivered, c->expect); }
    return (void *)(c->expect + 1000);
}
static void on_yield(worker_event *ev, void *p) { st *s = p; s->delivered = *(long *)ev->value; }
static void on_fin(worker_event *ev, void *p) { st *s = p; s->fin++; (void)ev; }
static void vfree(void *p) { free(p); }

static atomic_int stop_flag;
static void caller(worker_ctx *ctx, void *arg) {
    st *s = arg;
    for (long i = 0; i < s->n_calls && !stop_flag; i++) {
        long *v = malloc(sizeof *v); *v = i;
        int yr = worker_yield(ctx, v, vfree, NULL, NULL);
        if (yr == WORKER_ABORTED) return;
        call c = {s, i, 0};
        void *res = (void *)1;
        int rc = worker_call_home(ctx, home_fn, &c, &res, -1);
        switch (rc) {
        case WORKER_OK:
            s->ok++;
            if (res != (void *)(i + 1000)) { s->ran_bad++; }
            if (!c.ran) s->ran_bad++;
            break;
        case WORKER_EBUSY: s->busy++; if (c.ran || res) s->ran_bad++; break;
        case WORKER_ABORTED: s->aborted++; if (c.ran || res) s->ran_bad++; break;
        case WORKER_ETIMEDOUT: s->timedout++; break;
        default: s->other++; break;
        }
        if (rc == WORKER_ABORTED) return;
        if (rc == WORKER_EBUSY && s->stop_on_busy) return;
    }
}

static worker *mk(st *s, int idx, int calls, const char *group, worker_scope *sc, int cap) {
    memset(s, 0, sizeof *s);
    s->idx = idx; s->delivered = -1; s->n_calls = calls;
    worker_options o;
    worker_options_init(&o);
    o.capacity = cap; o.group = group; o.scope = sc;
    worker *w = worker_create(caller, s, NULL, &o);
    if (!w) { FAIL("create: %s", worker_strerror(worker_last_error())); return NULL; }
    s->w = w;
    worker_connect(w, WORKER_EV_YIELDED, on_yield, s, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_fin, s, NULL);
    return w;
}
static void pump_until_fin(st *s, int n) {
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= s[i].fin == 1;
        if (all) break;
        worker_app_process_events(2);
    }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
}
static void check(st *s, int n, int want_ok_all) {
    for (int i = 0; i < n; i++) {
        if (s[i].ran_bad) FAIL("w%d: %ld calls with wrong fn-ran/result", i, (long)s[i].ran_bad);
        if (s[i].other || s[i].timedout) FAIL("w%d: %ld unexpected statuses, %ld timeouts", i, (long)s[i].other, (long)s[i].timedout);
        if (want_ok_all && s[i].ok != s[i].n_calls) FAIL("w%d: %ld of %d OK (busy %ld aborted %ld)", i, (long)s[i].ok, s[i].n_calls, (long)s[i].busy, (long)s[i].aborted);
    }
}
static long sum(st *s, int n, int what) {
    long t = 0;
    for (int i = 0; i < n; i++) t += what == 0 ? s[i].ok : what == 1 ? s[i].busy : s[i].aborted;
    return t;
}

/* out-of-scope dependency: S (in scope) waits for T's call_home to complete */
static atomic_int t_done;
static void s_fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    /* ignores quit on purpose until T has got its answer, like a function blocked in library code */
    while (!t_done) usleep(1000);
    (void)ctx;
}
static atomic_int t_rc = 99;
static atomic_int t_in_call;
static void t_fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    usleep(50000);  /* GUI is in scope_close by now */
    call c = {NULL, -1, 0};
    void *res = NULL;
    t_in_call = 1;
    t_rc = worker_call_home(ctx, home_fn, &c, &res, -1);
    t_done = 1;
}
static worker *fa;
static int fa_rc = 99;
static void *foreign_await(void *a) { (void)a; fa_rc = worker_await(fa, -1); return NULL; }
static void *app_quitter(void *a) { (void)a; usleep(30000); worker_app_quit(0); return NULL; }

/* fn that awaits another worker / its own */
static worker *other_w, *self_w;
static int inner_rc_other = 99, inner_rc_self = 99;
static void *awaiting_fn(void *a) {
    (void)a;
    inner_rc_self = worker_await(self_w, 100);
    inner_rc_other = worker_await(other_w, -1);
    return NULL;
}
static void awaiting_caller(worker_ctx *ctx, void *arg) {
    (void)arg;
    void *res;
    int rc = worker_call_home(ctx, awaiting_fn, NULL, &res, -1);
    if (rc != WORKER_OK) { printf("FAIL: awaiting caller: %s\n", worker_strerror(rc)); fails++; }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    gui = pthread_self();
    worker_app_init(&argc, argv);
    enum { M = 40 };
    static st s[M];
    worker *w[M];

    current = "40 workers x 100 call_home at once, BLOCK cap 2, order";
    alarm(25);
    for (int i = 0; i < M; i++) w[i] = mk(&s[i], i, 100, NULL, NULL, 2);
    for (int i = 0; i < M; i++) worker_start(w[i]);
    pump_until_fin(s, M);
    alarm(0);
    check(s, M, 1);
    for (int i = 0; i < M; i++) worker_unref(w[i]);
    printf("[%s] ok %ld busy %ld\n", current, sum(s, M, 0), sum(s, M, 1));

    current = "GUI worker_await(one, -1) while 20 call home in loops";
    alarm(25);
    for (int i = 0; i < 20; i++) w[i] = mk(&s[i], i, 300, NULL, NULL, 2);
    for (int i = 0; i < 20; i++) worker_start(w[i]);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    s[0].stop_on_busy = 1;
    int rc = worker_await(w[0], -1);
    if (rc != WORKER_OK) FAIL("await: %s", worker_strerror(rc));
    pump_until_fin(s, 20);
    alarm(0);
    check(s, 20, 0);
    if (!s[0].busy) printf("note: [%s] w0 never saw EBUSY (finished before?)\n", current);
    for (int i = 0; i < 20; i++) worker_unref(w[i]);
    printf("[%s] ok %ld busy %ld aborted %ld\n", current, sum(s, 20, 0), sum(s, 20, 1), sum(s, 20, 2));

    current = "GUI awaits while a call_home is already waiting (GUI stalled first)";
    alarm(15);
    w[0] = mk(&s[0], 0, 1, NULL, NULL, 2);
    worker_start(w[0]);
    usleep(100000);   /* the worker yields 0 (queued) and then waits in call_home; GUI does not pump */
    rc = worker_await(w[0], -1);
    if (rc != WORKER_OK) FAIL("await: %s", worker_strerror(rc));
    pump_until_fin(s, 1);
    alarm(0);
    check(s, 1, 0);
    if (s[0].busy != 1) FAIL("the waiting call got ok %ld busy %ld aborted %ld, want EBUSY", (long)s[0].ok, (long)s[0].busy, (long)s[0].aborted);
    worker_unref(w[0]);

    current = "GUI awaits a serial-group member queued behind call_home workers";
    alarm(15);
    for (int i = 0; i < 4; i++) { w[i] = mk(&s[i], i, 200, "g", NULL, 2); s[i].stop_on_busy = 1; }
    for (int i = 0; i < 4; i++) worker_start(w[i]);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    rc = worker_await(w[3], -1);
    if (rc != WORKER_OK) FAIL("await: %s", worker_strerror(rc));
    pump_until_fin(s, 4);
    alarm(0);
    check(s, 4, 0);
    for (int i = 0; i < 4; i++) worker_unref(w[i]);
    printf("[%s] ok %ld busy %ld\n", current, sum(s, 4, 0), sum(s, 4, 1));

    current = "GUI worker_await_all(-1) while 20 call home";
    alarm(15);
    for (int i = 0; i < 20; i++) { w[i] = mk(&s[i], i, 200, i % 3 ? NULL : "h", NULL, 1); s[i].stop_on_busy = 1; }
    for (int i = 0; i < 20; i++) worker_start(w[i]);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    rc = worker_await_all(-1);
    if (rc != WORKER_OK) FAIL("await_all: %s", worker_strerror(rc));
    pump_until_fin(s, 20);
    alarm(0);
    check(s, 20, 0);
    for (int i = 0; i < 20; i++) worker_unref(w[i]);
    printf("[%s] ok %ld busy %ld\n", current, sum(s, 20, 0), sum(s, 20, 1));

    current = "worker_await from a foreign thread: call_home keeps working";
    alarm(15);
    w[0] = mk(&s[0], 0, 300, NULL, NULL, 2);
    fa = w[0];
    worker_start(w[0]);
    pthread_t ft;
    pthread_create(&ft, NULL, foreign_await, NULL);
    pump_until_fin(s, 1);
    pthread_join(ft, NULL);
    alarm(0);
    check(s, 1, 1);
    if (fa_rc != WORKER_OK) FAIL("foreign await: %d", fa_rc);
    worker_unref(w[0]);

    current = "worker_scope_close(-1) on the GUI thread while 10 scope workers call home";
    alarm(15);
    worker_scope *sc = worker_scope_new("sc");
    for (int i = 0; i < 10; i++) w[i] = mk(&s[i], i, 100000, NULL, sc, 2);
    for (int i = 0; i < 10; i++) worker_start(w[i]);
    for (int i = 0; i < 50; i++) worker_app_process_events(1);
    rc = worker_scope_close(sc, -1);
    if (rc != WORKER_OK) FAIL("scope close: %s", worker_strerror(rc));
    for (int i = 0; i < 10; i++) if (worker_is_running(w[i])) FAIL("w%d still running after close", i);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    alarm(0);
    check(s, 10, 0);
    for (int i = 0; i < 10; i++) worker_unref(w[i]);
    printf("[%s] ok %ld busy %ld aborted %ld\n", current, sum(s, 10, 0), sum(s, 10, 1), sum(s, 10, 2));

    current = "worker_scope_close(-1) on GUI; scope worker S waits for out-of-scope T's call_home";
    alarm(10);
    sc = worker_scope_new("sc2");
    worker_options o;
    worker_options_init(&o);
    o.scope = sc;
    worker *S = worker_create(s_fn, NULL, NULL, &o);
    worker *T = worker_create(t_fn, NULL, NULL, NULL);
    worker_start(S);
    worker_start(T);
    usleep(10000);
    rc = worker_scope_close(sc, -1);
    alarm(0);
    printf("[%s] close %s; T's call_home %s\n", current, worker_strerror(rc), worker_strerror(t_rc));
    if (rc != WORKER_OK) FAIL("scope close: %s", worker_strerror(rc));
    if (t_rc != WORKER_EBUSY) FAIL("T's call_home = %d, want EBUSY", (int)t_rc);
    alarm(10);
    worker_await(T, -1);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    alarm(0);
    worker_unref(S);
    worker_unref(T);

    current = "call_home fn awaits another worker that calls home / its own worker";
    alarm(10);
    st so;
    other_w = mk(&so, 99, 200, NULL, NULL, 2);
    so.stop_on_busy = 0;
    self_w = worker_create(awaiting_caller, NULL, NULL, NULL);
    worker_start(other_w);
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    worker_start(self_w);
    while (worker_is_running(self_w)) worker_app_process_events(1);
    pump_until_fin(&so, 1);
    alarm(0);
    if (inner_rc_self != WORKER_ETHREAD) FAIL("await of its own worker from fn: %d, want ETHREAD", inner_rc_self);
    if (inner_rc_other != WORKER_OK) FAIL("await of another worker from fn: %d", inner_rc_other);
    check(&so, 1, 0);
    worker_unref(other_w);
    worker_unref(self_w);

    current = "exit join while 30 workers call home in loops";
    alarm(15);
    for (int i = 0; i < 30; i++) w[i] = mk(&s[i], i, 100000, i % 4 ? NULL : "x", NULL, 2);
    for (int i = 0; i < 30; i++) worker_start(w[i]);
    pthread_t qt;
    pthread_create(&qt, NULL, app_quitter, NULL);
    rc = worker_app_exec();
    pthread_join(qt, NULL);
    alarm(0);
    int live = 0, fins = 0;
    for (int i = 0; i < 30; i++) { live += worker_is_running(w[i]); fins += s[i].fin; }
    if (live) FAIL("%d still running after exec returned", live);
    if (fins != 30) FAIL("%d FINISHED delivered by the exit join, want 30", fins);
    check(s, 30, 0);
    printf("[%s] exec %d; ok %ld busy %ld aborted %ld\n", current, rc, sum(s, 30, 0), sum(s, 30, 1), sum(s, 30, 2));
    for (int i = 0; i < 30; i++) worker_unref(w[i]);
    printf("%s c5_call_home: %ld failures\n", fails ? "FAIL" : "PASS", (long)fails);
    return fails != 0;
}
