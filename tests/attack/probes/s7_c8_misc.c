/* promises 1/4 (misc): (a) call_home "fn runs after every event the worker emitted before this call has been delivered" under LATEST cap 1, QUEUE, BLOCK+capacity_bytes, with warn/emit/progress right before the call; (b) a call_home that timed out never runs fn, also after the worker returned and freed the arg (ASan sees a late run), and a retry waits for it; (c) worker_scope_close from one thread while another disconnects every connection id of the scope's workers: each user_data destroyed exactly once, disconnect OK or EINVAL, no callback after the close returns; (d) worker_event_take in the middle of 40 callbacks: the later ones see NULL, the value is not destroyed by the library. run: ./build.sh probes/s7_c8_misc.c && QT_QPA_PLATFORM=offscreen probes/s7_c8_misc */
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
static void vfree(void *p) { free(p); }

/* ---- (a) */
typedef struct ord { long y, w, e, p; } ord;
static ord seen_o;
static void oy(worker_event *ev, void *p) { (void)p; seen_o.y = *(long *)ev->value; }
static void ow(worker_event *ev, void *p) { (void)p; seen_o.w = atol(ev->message); }
static void oe(worker_event *ev, void *p) { (void)p; seen_o.e = *(long *)ev->value; }
static void op(worker_event *ev, void *p) { (void)p; seen_o.p = ev->done; }
typedef struct oc { long i; int mix; long bad; } oc;
static void *ofn(void *a) {
    oc *c = a;
    if (seen_o.y != c->i) c->bad++;
    if (c->mix && (seen_o.w != c->i || seen_o.e != c->i || seen_o.p != c->i)) c->bad++;
    return NULL;
}
static atomic_long order_bad, order_ok;
static void ord_fn(worker_ctx *ctx, void *arg) {
    int mix = (int)(long)arg;
    for (long i = 0; i < 300; i++) {
        for (int k = 0; k < 5; k++) {  /* several yields; with LATEST only the newest survives */
            long *v = malloc(sizeof *v); *v = i;
            if (worker_yield_sized(ctx, v, 8, vfree, NULL, NULL) == WORKER_ABORTED) return;
        }
        if (mix) {
            worker_warn(ctx, "%ld", i);
            long *v = malloc(sizeof *v); *v = i;
            worker_emit(ctx, "e", v, vfree);
            worker_progress(ctx, i, 300, NULL);
        }
        oc c = {i, mix, 0};
        void *r;
        int rc = worker_call_home(ctx, ofn, &c, &r, -1);
        if (rc != WORKER_OK) { order_bad++; continue; }
        if (c.bad) order_bad++; else order_ok++;
    }
}
static void order_case(const char *name, worker_policy pol, size_t cap, size_t bytes, int mix) {
    current = name;
    order_bad = order_ok = 0;
    memset(&seen_o, 0xff, sizeof seen_o);
    worker_options o;
    worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = bytes;
    worker *w = worker_create(ord_fn, (void *)(long)mix, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, oy, NULL, NULL);
    worker_connect(w, WORKER_EV_WARNED, ow, NULL, NULL);
    worker_connect_custom(w, "e", oe, NULL, NULL);
    worker_connect(w, WORKER_EV_PROGRESS, op, NULL, NULL);
    worker_start(w);
    alarm(15);
    while (worker_is_running(w)) worker_app_process_events(1);
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    alarm(0);
    if (order_bad) FAIL("%ld of %ld call_home fns ran before the worker's earlier events were delivered", (long)order_bad, (long)(order_bad + order_ok));
    printf("[%s] %ld ok %ld bad; dropped %lld\n", current, (long)order_ok, (long)order_bad, worker_dropped(w));
    worker_unref(w);
}

/* ---- (b) */
static atomic_int late_runs;
typedef struct targ { long magic; } targ;
static void *tfn(void *a) { targ *t = a; late_runs++; if (t->magic != 4242) printf("note: fn saw a bad arg\n"); return NULL; }
static atomic_int t_rc1 = 99, t_rc2 = 99, t_ran2;
static void *tfn2(void *a) { (void)a; t_ran2 = 1; return (void *)7; }
static void timeout_fn(worker_ctx *ctx, void *arg) {
    int retry = (int)(long)arg;
    targ *t = malloc(sizeof *t);
    t->magic = 4242;
    void *r = (void *)1;
    t_rc1 = worker_call_home(ctx, tfn, t, &r, 20);
    if (t_rc1 != WORKER_OK) free(t);   /* "fn has not begun and never will" */
    if (retry) t_rc2 = worker_call_home(ctx, tfn2, NULL, &r, 2000);
}
static void timeout_case(int retry) {
    current = retry ? "timed-out call_home never runs; a retry waits for it" : "timed-out call_home never runs after the worker returned";
    late_runs = 0; t_ran2 = 0; t_rc1 = t_rc2 = 99;
    worker *w = worker_create(timeout_fn, (void *)(long)retry, NULL, NULL);
    worker_start(w);
    usleep(200000);   /* GUI stalled: the call times out */
    alarm(10);
    while (worker_is_running(w)) worker_app_process_events(1);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    alarm(0);
    if (t_rc1 != WORKER_ETIMEDOUT) printf("note: [%s] first call %s\n", current, worker_strerror(t_rc1));
    if (t_rc1 == WORKER_ETIMEDOUT && late_runs) FAIL("fn of a timed-out call ran %d times", (int)late_runs);
    if (retry && (t_rc2 != WORKER_OK || !t_ran2)) FAIL("retry after timeout: %s, ran %d", worker_strerror(t_rc2), (int)t_ran2);
    worker_unref(w);
}

/* ---- (c) */
typedef struct cud { atomic_int destroyed, calls; atomic_int closed_seen; } cud;
static atomic_int scope_closed;
static void ccb(worker_event *ev, void *p) { cud *u = p; u->calls++; if (scope_closed) u->closed_seen++; (void)ev; }
static void cud_free(void *p) { ((cud *)p)->destroyed++; }
static void cflood(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0;; i++) {
        if (worker_yield(ctx, NULL, NULL, NULL, NULL) == WORKER_ABORTED) return;
        if (i % 10 == 0 && worker_warn(ctx, "w") == WORKER_ABORTED) return;
    }
}
enum { SW = 5, SC = 12 };
static worker *sw[SW];
static long sid[SW][SC];
static cud sud[SW][SC];
static worker_scope *scp;
static atomic_int go_c;
static atomic_long disc_ok, disc_einval, disc_other;
static void *discer(void *a) {
    (void)a;
    while (!go_c) ;
    for (int i = SW - 1; i >= 0; i--)
        for (int j = 0; j < SC; j++) {
            int rc = worker_disconnect(sw[i], sid[i][j]);
            if (rc == WORKER_OK) disc_ok++; else if (rc == WORKER_EINVAL) disc_einval++; else disc_other++;
        }
    return NULL;
}
static int close_rc;
static void *closer(void *a) { (void)a; while (!go_c) ; close_rc = worker_scope_close(scp, -1); scope_closed = 1; return NULL; }
static void scope_race(int round) {
    current = "scope close vs disconnect of every id";
    memset(sud, 0, sizeof sud);
    scope_closed = 0; go_c = 0;
    scp = worker_scope_new("race");
    for (int i = 0; i < SW; i++) {
        worker_options o;
        worker_options_init(&o);
        o.scope = scp; o.capacity = 8;
        sw[i] = worker_create(cflood, NULL, NULL, &o);
        for (int j = 0; j < SC; j++)
            sid[i][j] = worker_connect(sw[i], j % 3 == 0 ? WORKER_EV_WARNED : j % 3 == 1 ? WORKER_EV_YIELDED : WORKER_EV_FINISHED, ccb, &sud[i][j], cud_free);
        worker_start(sw[i]);
    }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    pthread_t a, b;
    pthread_create(&a, NULL, discer, NULL);
    pthread_create(&b, NULL, closer, NULL);
    usleep(round % 5 * 300);
    go_c = 1;
    alarm(10);
    while (pthread_tryjoin_np(b, NULL)) worker_app_process_events(1);
    pthread_join(a, NULL);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    alarm(0);
    if (close_rc != WORKER_OK) FAIL("close: %s", worker_strerror(close_rc));
    for (int i = 0; i < SW; i++)
        for (int j = 0; j < SC; j++) {
            if (sud[i][j].destroyed != 1) FAIL("round %d: w%d conn %d user_data destroyed %d times", round, i, j, (int)sud[i][j].destroyed);
            if (sud[i][j].closed_seen) FAIL("round %d: w%d conn %d called %d times after the close returned", round, i, j, (int)sud[i][j].closed_seen);
        }
    if (disc_other) FAIL("disconnect gave %ld unexpected statuses", (long)disc_other);
    for (int i = 0; i < SW; i++) {
        /* after the close every id is gone */
        for (int j = 0; j < SC; j++) if (worker_disconnect(sw[i], sid[i][j]) != WORKER_EINVAL) FAIL("id alive after close");
        worker_unref(sw[i]);
    }
    for (int i = 0; i < 5; i++) worker_app_process_events(1);
}

/* ---- (d) */
static void *taken;
static atomic_int taken_freed, lib_destroyed;
static int null_after, nonnull_before, order_bad_take;
static void take_free(void *p) { lib_destroyed++; free(p); }
static void take_cb(worker_event *ev, void *p) {
    long idx = (long)p;
    static long cur = -1;
    if (idx == 0) cur = -1;
    if (idx == 20) { taken = worker_event_take(ev); if (!taken) order_bad_take++; return; }
    if (idx < 20 && !ev->value) order_bad_take++;
    if (idx > 20 && ev->value) null_after++;
    (void)cur;
}
static void one_yield(worker_ctx *ctx, void *arg) {
    (void)arg;
    long *v = malloc(sizeof *v); *v = 5;
    worker_yield(ctx, v, take_free, NULL, NULL);
}
static void take_case(void) {
    current = "worker_event_take among 40 callbacks";
    worker *w = worker_create(one_yield, NULL, NULL, NULL);
    for (long i = 0; i < 40; i++) worker_connect(w, WORKER_EV_YIELDED, take_cb, (void *)i, NULL);
    worker_start(w);
    alarm(5);
    while (worker_is_running(w)) worker_app_process_events(1);
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    alarm(0);
    if (!taken || order_bad_take) FAIL("take: taken %p, bad %d", taken, order_bad_take);
    if (null_after) FAIL("%d callbacks after the take still saw the value", null_after);
    if (lib_destroyed) FAIL("library destroyed a taken value");
    else free(taken);
    worker_unref(w);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    order_case("order: LATEST cap 1", WORKER_LATEST, 1, 0, 0);
    order_case("order: LATEST cap 1 + warn/emit/progress", WORKER_LATEST, 1, 0, 1);
    order_case("order: LATEST cap 3 budget 8", WORKER_LATEST, 3, 8, 1);
    order_case("order: QUEUE", WORKER_QUEUE, 0, 0, 1);
    order_case("order: BLOCK cap 2 budget 16", WORKER_BLOCK, 2, 16, 1);
    timeout_case(0);
    timeout_case(1);
    for (int r = 0; r < 30 && fails < 10; r++) scope_race(r);
    printf("scope race: disconnect ok %ld einval %ld\n", (long)disc_ok, (long)disc_einval);
    take_case();
    printf("%s c8_misc: %ld failures\n", fails ? "FAIL" : "PASS", (long)fails);
    return fails != 0;
}
