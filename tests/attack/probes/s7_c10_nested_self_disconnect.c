/* promise 1 (disconnect "when its callback is running right then, [user_data destroyed] as soon as that call returns"): callback X re-enters the event loop (worker_app_process_events) during its call; (modes 0-2) the same worker is not re-delivered nested (observed), so X disconnects itself / drops the last ref / is disconnected by a foreign thread while its outer call runs; (modes 3-4) a callback of worker B runs nested inside A's running callback and disconnects it or drops A's last reference: A's user_data must not be destroyed while its call is on the stack, exactly once, never called after, the outer event intact. run: ./build.sh probes/s7_c10_nested_self_disconnect.c && QT_QPA_PLATFORM=offscreen probes/s7_c10_nested_self_disconnect */
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

typedef struct ud { atomic_int depth, destroyed, gone, after_gone, calls, max_depth; long id; worker *w; } ud;
static void ud_free(void *p) {
    ud *u = p;
    if (u->destroyed++) printf("FAIL: [%s] user_data destroyed twice\n", current), fails++;
    if (u->depth) printf("FAIL: [%s] user_data destroyed while %d call(s) of its callback still run (outer on the stack)\n", current, (int)u->depth), fails++;
}
static atomic_long alive;
static void vfree(void *p) { alive--; memset(p, 0xdd, sizeof(long)); free(p); }
static atomic_int stop;
static void flood(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0; !stop; i++) {
        long *v = malloc(sizeof *v); *v = i; alive++;
        if (worker_yield(ctx, v, vfree, NULL, NULL) == WORKER_ABORTED) return;
        usleep(300);
    }
}
static int mode;
static atomic_int foreign_go, foreign_done;
static void X(worker_event *ev, void *p) {
    ud *u = p;
    int d = ++u->depth;
    if (d > u->max_depth) u->max_depth = d;
    u->calls++;
    if (u->gone) u->after_gone++;
    worker_event_type t = ev->type;
    worker *src = ev->source;
    long v = *(long *)ev->value;
    if (d == 1 && v == 3) {
        /* outer call: re-enter the loop for a while */
        for (int i = 0; i < 40; i++) worker_app_process_events(2);
        if (mode == 2) { foreign_go = 1; while (!foreign_done) usleep(100); for (int i = 0; i < 20; i++) worker_app_process_events(2); }
        if (ev->type != t || ev->source != src || *(long *)ev->value != v) FAIL("outer event changed across the nested loop");
        if (!u->gone && mode <= 1) {  /* no nested call happened: do it in the outer (running) call */
            int rc = worker_disconnect(src, u->id); u->gone = 1;
            if (rc != WORKER_OK) FAIL("outer disconnect %d", rc);
            if (u->destroyed) FAIL("destroyed inside its running call");
            if (mode == 1) { worker *w = u->w; u->w = NULL; if (w) worker_unref(w); }
        }
    }
    if (d == 2 && !u->gone) {
        if (mode == 0) { int rc = worker_disconnect(src, u->id); if (rc != WORKER_OK) FAIL("inner self-disconnect %d", rc); u->gone = 1; }
        if (mode == 1) { int rc = worker_disconnect(src, u->id); u->gone = 1; if (rc != WORKER_OK) FAIL("inner disconnect %d", rc); worker *w = u->w; u->w = NULL; if (w) worker_unref(w); }
    }
    if (mode == 2 && d == 2 && !foreign_go) { /* the foreign thread disconnects while both calls are on the stack */
        foreign_go = 1;
        while (!foreign_done) usleep(100);
    }
    --u->depth;
}
static ud *gu;
static void *foreign(void *a) {
    (void)a;
    while (!foreign_go) usleep(100);
    int rc = worker_disconnect(gu->w, gu->id);
    gu->gone = 1;
    if (rc != WORKER_OK) { printf("FAIL: foreign disconnect %d\n", rc); fails++; }
    foreign_done = 1;
    return NULL;
}
/* mode 3/4: XA on worker A pumps at A's value 3; XB on worker B, nested, disconnects XA (running on the outer stack) or drops A's last ref */
static ud *ua, *ub;
static worker *wa_, *wb_;
static atomic_int xb_did;
static void XA(worker_event *ev, void *p) {
    ud *u = p;
    ++u->depth;
    u->calls++;
    if (u->gone) u->after_gone++;
    worker *src = ev->source;
    long v = *(long *)ev->value;
    if (v == 3 && !u->gone) {
        for (int i = 0; i < 100 && !xb_did; i++) worker_app_process_events(2);
        if (!xb_did) printf("note: [%s] B's callback never ran nested\n", current);
        if (ev->source != src || *(long *)ev->value != v) FAIL("outer event of A changed across the nested loop");
        (void)worker_name(src);
    }
    --u->depth;
}
static void XB(worker_event *ev, void *p) {
    ud *u = p;
    ++u->depth;
    (void)ev;
    if (ua->depth > 0 && !xb_did) {
        int d = ua->depth;
        if (mode == 3) { int rc = worker_disconnect(wa_, ua->id); ua->gone = 1; if (rc != WORKER_OK) FAIL("XB disconnect XA: %d", rc); }
        if (mode == 4) { worker *w = wa_; wa_ = NULL; worker_unref(w); }
        if (ua->destroyed) FAIL("XA's user_data destroyed while XA's call (depth %d) is on the stack", d);
        xb_did = 1;
    }
    --u->depth;
}
static atomic_int fin;
static void on_fin(worker_event *ev, void *p) { fin++; (void)ev; (void)p; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    static const char *names[] = {"inner nested call disconnects itself", "inner nested call disconnects itself and drops the last ref",
                                  "foreign thread disconnects while outer+inner calls run"};
    for (int r = 0; r < 5; r++)
        for (mode = 0; mode < 3; mode++) {
            current = names[mode];
            stop = 0; fin = 0; foreign_go = foreign_done = 0;
            ud *u = calloc(1, sizeof *u);
            gu = u;
            worker *w = worker_create(flood, NULL, NULL, NULL);
            u->w = w;
            u->id = worker_connect(w, WORKER_EV_YIELDED, X, u, ud_free);
            worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
            pthread_t t;
            if (mode == 2) pthread_create(&t, NULL, foreign, NULL);
            worker_start(w);
            alarm(10);
            for (int i = 0; i < 200 && !u->gone; i++) worker_app_process_events(2);
            for (int i = 0; i < 30; i++) worker_app_process_events(1);
            stop = 1;
            if (mode == 2) pthread_join(t, NULL);
            if (mode != 1) { worker_await(w, -1); }
            while (!fin) worker_app_process_events(1);
            for (int i = 0; i < 10; i++) worker_app_process_events(1);
            if (mode != 1) worker_unref(w);
            for (int i = 0; i < 10; i++) worker_app_process_events(1);
            alarm(0);
            if (u->max_depth < 2) printf("note: [%s] no nested call happened (max depth %d)\n", current, (int)u->max_depth);
            if (u->destroyed != 1) FAIL("user_data destroyed %d times", (int)u->destroyed);
            if (u->after_gone) FAIL("called %d times after its disconnect", (int)u->after_gone);
            if (r == 0) printf("[%s] calls %d max depth %d\n", current, (int)u->calls, (int)u->max_depth);
            free(u);
        }
    static const char *names2[] = {"", "", "", "B's nested callback disconnects A's running callback", "B's nested callback drops A's last ref while A's callback runs"};
    for (int r = 0; r < 5; r++)
        for (mode = 3; mode < 5; mode++) {
            current = names2[mode];
            stop = 0; fin = 0; xb_did = 0;
            ua = calloc(1, sizeof *ua); ub = calloc(1, sizeof *ub);
            wa_ = worker_create(flood, NULL, NULL, NULL);
            wb_ = worker_create(flood, NULL, NULL, NULL);
            worker *keep_b = wb_;
            ua->id = worker_connect(wa_, WORKER_EV_YIELDED, XA, ua, ud_free);
            ub->id = worker_connect(wb_, WORKER_EV_YIELDED, XB, ub, ud_free);
            worker_connect(wa_, WORKER_EV_FINISHED, on_fin, NULL, NULL);
            worker_connect(wb_, WORKER_EV_FINISHED, on_fin, NULL, NULL);
            worker_start(wa_);
            usleep(5000);
            worker_start(wb_);
            alarm(10);
            for (int i = 0; i < 200 && !xb_did; i++) worker_app_process_events(2);
            for (int i = 0; i < 30; i++) worker_app_process_events(1);
            stop = 1;
            if (mode == 4) worker_await(keep_b, -1); else { worker_await(wa_, -1); worker_await(wb_, -1); }
            while (fin < 2) worker_app_process_events(1);
            for (int i = 0; i < 10; i++) worker_app_process_events(1);
            if (wa_) worker_unref(wa_);
            worker_unref(keep_b);
            for (int i = 0; i < 10; i++) worker_app_process_events(1);
            alarm(0);
            if (!xb_did) printf("note: [%s] no nesting\n", current);
            if (ua->destroyed != 1 || ub->destroyed != 1) FAIL("user_data destroyed A %d B %d", (int)ua->destroyed, (int)ub->destroyed);
            if (ua->after_gone) FAIL("XA called %d times after its disconnect", (int)ua->after_gone);
            if (r == 0) printf("[%s] XA calls %d, nested %d\n", current, (int)ua->calls, (int)xb_did);
            free(ua); free(ub);
        }
    if (alive) FAIL("%ld payloads alive", (long)alive);
    printf("%s c10_nested_self_disconnect: %ld failures\n", fails ? "FAIL" : "PASS", (long)fails);
    return fails != 0;
}
