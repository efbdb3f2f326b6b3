/* promise 1/2 + ownership (destroy functions "may run on any thread"; nothing forbids calling the library from them): user_data destroys that call worker_disconnect / worker_connect / worker_backlog / worker_unref on the same or another worker; a yielded value's destroy (run on the worker thread at its next yield, or on the GUI) that calls connect/disconnect/backlog/is_running on its own worker; an arg_destroy that connects FINISHED and drops the last reference; a destroy during the last unref that frees another worker and creates+starts a new one. No deadlock (alarm), every destroy exactly once, FINISHED once per accepted connection. run: ./build.sh probes/s7_c6_reentrant_destroy.c && QT_QPA_PLATFORM=offscreen probes/s7_c6_reentrant_destroy */
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
    int n = snprintf(m, sizeof m, "FAIL: hang (deadlock?) in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_long fails;
#define FAIL(...) do { if (fails++ < 40) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct ud { atomic_int destroyed; int action; long arg; worker *w; atomic_int calls; const char *tag; } ud;
static ud *uds[1000];
static atomic_int nuds;
static ud *ud_new(const char *tag, int action, worker *w, long arg) {
    ud *u = calloc(1, sizeof *u);
    u->tag = tag; u->action = action; u->w = w; u->arg = arg;
    uds[nuds++] = u;
    return u;
}
static void plain_cb(worker_event *ev, void *p) { ((ud *)p)->calls++; (void)ev; }
static atomic_long nested_rc[16];
static void nested_free(void *p);
static void quick_fn(worker_ctx *ctx, void *arg) { (void)ctx; (void)arg; }
static long self_id;
static void ud_free(void *p) {
    ud *u = p;
    if (u->destroyed++) FAIL("'%s' destroyed twice", u->tag);
    switch (u->action) {
    case 1: nested_rc[1] = worker_disconnect(u->w, u->arg); break;                 /* disconnect another connection */
    case 2: {                                                                        /* connect a new one */
        ud *n = ud_new("connected from a destroy", 0, NULL, 0);
        nested_rc[2] = worker_connect(u->w, WORKER_EV_YIELDED, plain_cb, n, ud_free);
        break;
    }
    case 3: { size_t e, b; nested_rc[3] = worker_backlog(u->w, &e, &b); (void)worker_is_running(u->w); (void)worker_name(u->w); break; }
    case 4: worker_unref(u->w); break;                                               /* drop an extra ref */
    case 5: nested_rc[5] = worker_disconnect(u->w, u->arg); break;                   /* disconnect itself again: EINVAL */
    case 6: {                                                                        /* free another worker, make and start a new one */
        worker_unref(u->w);
        worker *n = worker_create(quick_fn, NULL, NULL, NULL);
        nested_rc[6] = worker_start(n);
        worker_unref(n);
        break;
    }
    }
}
static void nested_free(void *p) { ud_free(p); }

static atomic_int stop;
static void spin(worker_ctx *ctx, void *arg) {
    (void)arg;
    while (!stop) if (worker_yield(ctx, NULL, NULL, NULL, NULL) == WORKER_ABORTED) return; else usleep(200);
}
static void quick(worker_ctx *ctx, void *arg) { (void)ctx; (void)arg; }
static atomic_int fin_calls;
static void fin_cb(worker_event *ev, void *p) { fin_calls++; if (p) ((ud *)p)->calls++; (void)ev; }

/* payload whose destroy calls into the library on its own worker */
static worker *pw;
static long pw_id;
static atomic_long pay_destroyed, pay_made, pay_conn_ok, pay_conn_bad;
static void pay_free(void *p) {
    size_t e, b;
    if (worker_backlog(pw, &e, &b) != WORKER_OK) pay_conn_bad++;
    (void)worker_is_running(pw);
    (void)worker_dropped(pw);
    long n = (long)*(long *)p;
    if (n % 50 == 0) {
        ud *u = ud_new("connected from a payload destroy", 0, NULL, 0);
        long id = worker_connect(pw, WORKER_EV_YIELDED, plain_cb, u, ud_free);
        if (id > 0) { pay_conn_ok++; worker_disconnect(pw, id); }
        else pay_conn_bad++;
    }
    if (n % 50 == 25) worker_disconnect(pw, pw_id);  /* no-op after the first: EINVAL */
    free(p);
    pay_destroyed++;
}
static void payloads(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0; i < 3000; i++) {
        long *v = malloc(sizeof *v); *v = i; pay_made++;
        int rc = (i & 1) ? worker_yield(ctx, v, pay_free, NULL, NULL) : worker_yield_sized(ctx, v, 8, pay_free, NULL, NULL);
        if (rc == WORKER_ABORTED) return;
        if (i % 100 == 0) worker_emit(ctx, "e", (v = malloc(sizeof *v), *v = i + 1, pay_made++, v), pay_free);
    }
}

/* arg whose destroy connects FINISHED and drops the last reference */
typedef struct argx { worker *w; atomic_long conn_rc; ud *_Atomic u; atomic_int destroyed; } argx;
static void argx_free(void *p) {
    argx *a = p;
    a->destroyed++;
    a->u = ud_new("FINISHED connected from arg_destroy", 0, NULL, 0);
    a->conn_rc = worker_connect(a->w, WORKER_EV_FINISHED, fin_cb, a->u, ud_free);
    worker_unref(a->w);
}

static void self_cb(worker_event *ev, void *p) {
    ud *u = p;
    u->calls++;
    if (u->calls == 3) worker_disconnect(ev->source, self_id);
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);

    current = "user_data destroys calling the library (disconnect from the GUI)";
    alarm(10);
    stop = 0;
    worker *w = worker_create(spin, NULL, NULL, NULL);
    ud *victim = ud_new("victim", 0, NULL, 0);
    long vid = worker_connect(w, WORKER_EV_YIELDED, plain_cb, victim, ud_free);
    ud *a1 = ud_new("disconnects victim", 1, w, vid);
    long id1 = worker_connect(w, WORKER_EV_YIELDED, plain_cb, a1, ud_free);
    ud *a2 = ud_new("connects", 2, w, 0);
    long id2 = worker_connect(w, WORKER_EV_YIELDED, plain_cb, a2, ud_free);
    ud *a3 = ud_new("backlog", 3, w, 0);
    long id3 = worker_connect(w, WORKER_EV_YIELDED, plain_cb, a3, ud_free);
    ud *a4 = ud_new("unref", 4, worker_ref(w), 0);
    long id4 = worker_connect(w, WORKER_EV_YIELDED, plain_cb, a4, ud_free);
    ud *a5 = ud_new("self again", 5, w, 0);
    long id5 = worker_connect(w, WORKER_EV_YIELDED, plain_cb, a5, ud_free);
    a5->arg = id5;
    worker_connect(w, WORKER_EV_FINISHED, fin_cb, NULL, NULL);
    worker_start(w);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    long ids[] = {id1, id2, id3, id4, id5};
    for (int i = 0; i < 5; i++) {
        int rc = worker_disconnect(w, ids[i]);
        if (rc != WORKER_OK) FAIL("disconnect %d: %s", i, worker_strerror(rc));
        for (int k = 0; k < 5; k++) worker_app_process_events(1);
    }
    if (victim->destroyed != 1 || nested_rc[1] != WORKER_OK) FAIL("victim destroyed %d, nested disconnect %ld", (int)victim->destroyed, (long)nested_rc[1]);
    printf("[%s] nested: disconnect %ld connect %ld backlog %ld self-disconnect %ld\n", current, (long)nested_rc[1], (long)nested_rc[2], (long)nested_rc[3], (long)nested_rc[5]);
    if (nested_rc[5] != WORKER_EINVAL) FAIL("disconnect of the connection being destroyed, from its destroy: %ld, want EINVAL", (long)nested_rc[5]);
    if (nested_rc[2] <= 0) FAIL("connect from a destroy: %ld", (long)nested_rc[2]);
    if (!worker_is_running(w)) FAIL("worker no longer running after its ref dropped in a destroy");
    stop = 1;
    worker_await(w, -1);
    while (!fin_calls) worker_app_process_events(1);
    worker_unref(w);
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    alarm(0);

    current = "user_data destroys calling the library, disconnected inside their own callbacks";
    alarm(10);
    memset((void *)nested_rc, 0, sizeof nested_rc);
    stop = 0; fin_calls = 0;
    w = worker_create(spin, NULL, NULL, NULL);
    victim = ud_new("victim2", 0, NULL, 0);
    vid = worker_connect(w, WORKER_EV_YIELDED, plain_cb, victim, ud_free);
    /* a connection that disconnects itself inside its callback; its destroy disconnects victim and connects new */
    ud *self1 = ud_new("self-disc, destroy disconnects victim2", 1, w, vid);
    self_id = worker_connect(w, WORKER_EV_YIELDED, self_cb, self1, ud_free);
    worker_connect(w, WORKER_EV_FINISHED, fin_cb, NULL, NULL);
    worker_start(w);
    for (int i = 0; i < 40; i++) worker_app_process_events(1);
    if (self1->destroyed != 1) FAIL("self-disconnected destroyed %d", (int)self1->destroyed);
    if (victim->destroyed != 1) FAIL("victim2 destroyed %d (nested rc %ld)", (int)victim->destroyed, (long)nested_rc[1]);
    int vc = victim->calls;
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    if (victim->calls != vc) FAIL("victim2 called after its disconnect");
    stop = 1;
    worker_await(w, -1);
    while (!fin_calls) worker_app_process_events(1);
    worker_unref(w);
    alarm(0);

    current = "destroys during the last unref free another worker and create a new one";
    alarm(10);
    fin_calls = 0;
    worker *v = worker_create(quick, NULL, NULL, NULL);
    worker_connect(v, WORKER_EV_FINISHED, fin_cb, NULL, NULL);
    worker_start(v);
    w = worker_create(quick, NULL, NULL, NULL);
    ud *a6 = ud_new("unref other + create", 6, v, 0);
    worker_connect(w, WORKER_EV_YIELDED, plain_cb, a6, ud_free);
    ud *a7 = ud_new("connect on other (freed by a6 or not)", 0, NULL, 0);
    worker_connect(w, WORKER_EV_YIELDED, plain_cb, a7, ud_free);
    worker_connect(w, WORKER_EV_FINISHED, fin_cb, NULL, NULL);
    worker_start(w);
    while (fin_calls < 2) worker_app_process_events(1);
    worker_unref(w);   /* destroys a6 -> unref v (its last) -> frees v inside w's free */
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (a6->destroyed != 1 || a7->destroyed != 1) FAIL("a6 %d a7 %d", (int)a6->destroyed, (int)a7->destroyed);
    alarm(0);

    current = "yield payload destroys calling connect/disconnect/backlog on their own worker";
    alarm(20);
    fin_calls = 0;
    worker_options o;
    worker_options_init(&o);
    o.capacity = 3; o.capacity_bytes = 40;
    pw = worker_create(payloads, NULL, NULL, &o);
    ud *pu = ud_new("payload-worker steady", 0, NULL, 0);
    pw_id = worker_connect(pw, WORKER_EV_YIELDED, plain_cb, pu, ud_free);
    ud *pu2 = ud_new("payload-worker steady 2", 0, NULL, 0);
    worker_connect(pw, WORKER_EV_YIELDED, plain_cb, pu2, ud_free);
    worker_connect(pw, WORKER_EV_FINISHED, fin_cb, NULL, NULL);
    worker_start(pw);
    while (!fin_calls) worker_app_process_events(1);
    alarm(0);
    printf("[%s] payloads made %ld destroyed %ld; connects from destroys ok %ld bad %ld; steady2 saw %d\n", current,
           (long)pay_made, (long)pay_destroyed, (long)pay_conn_ok, (long)pay_conn_bad, (int)pu2->calls);
    if (pay_made != pay_destroyed) FAIL("payloads made %ld destroyed %ld", (long)pay_made, (long)pay_destroyed);
    if (pay_conn_bad) FAIL("%ld library calls from payload destroys failed", (long)pay_conn_bad);
    if (pu2->calls != 3000) FAIL("steady 2 saw %d of 3000", (int)pu2->calls);
    worker_unref(pw);

    current = "arg_destroy connects FINISHED and drops the last reference";
    for (int r = 0; r < 200; r++) {
        alarm(10);
        fin_calls = 0;
        static argx ax;
        memset(&ax, 0, sizeof ax);
        worker *aw = worker_create(quick, &ax, argx_free, NULL);
        ax.w = worker_ref(aw);
        worker_connect(aw, WORKER_EV_FINISHED, fin_cb, NULL, NULL);
        worker_start(aw);
        worker_unref(aw);   /* the arg now holds the last reference */
        for (int t = 0; (!ax.destroyed || fin_calls < (ax.conn_rc > 0 ? 2 : 1)) && t < 2000; t++) worker_app_process_events(1);
        for (int i = 0; i < 3; i++) worker_app_process_events(1);
        if (ax.destroyed != 1) FAIL("round %d: arg destroyed %d", r, (int)ax.destroyed);
        if (ax.conn_rc > 0 && (ax.u->calls != 1 || ax.u->destroyed != 1)) FAIL("round %d: FINISHED connected from arg_destroy (id %ld): called %d, destroyed %d", r, (long)ax.conn_rc, (int)ax.u->calls, (int)ax.u->destroyed);
        if (ax.conn_rc <= 0 && (ax.conn_rc != WORKER_ESTATE || ax.u->destroyed != 1)) FAIL("round %d: connect from arg_destroy %ld, destroyed %d", r, (long)ax.conn_rc, (int)ax.u->destroyed);
        if (fails > 10) break;
        alarm(0);
    }
    alarm(10);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    while (worker_live_count()) worker_app_process_events(1);
    alarm(0);
    current = "end";
    for (int i = 0; i < nuds; i++) if (uds[i]->destroyed != 1) FAIL("'%s' destroyed %d times", uds[i]->tag, (int)uds[i]->destroyed);
    printf("%s c6_reentrant_destroy: %ld failures\n", fails ? "FAIL" : "PASS", (long)fails);
    return fails != 0;
}
