/* promise 2 (worker_scope_close: "No callback of theirs begins after this returns"; user_data destroyed once "on this thread" (a running callback's when it returns); unstarted ones never run; start/connect after close ESTATE; second close EINVAL; abandoned workers' ERRORED still reaches the error handler; every payload destroyed once): a scope of 7 workers (BLOCK cap 2 flood, paused-before-start, waiting in worker_call_home, unstarted, LATEST sized flood, one that ignores quit for 300 ms then fails, a QUEUE warner) closed in 7 ways: GUI thread -1 / 0, foreign thread while the GUI pumps -1, foreign thread while the GUI is stalled 0, from inside a YIELDED callback -1 / 0, from the flooding worker's own function; call_home fn must not begin after the close returned; run: s7d/mk.sh d2_scope_close_modes && QT_QPA_PLATFORM=offscreen s7d/d2_scope_close_modes-asan */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char current[120] = "start";
static void on_alarm(int s) {
    (void)s;
    char m[300];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_int fails;
#define FAIL(...) do { if (fails++ < 60) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)

static atomic_long alive;
static void vfree(void *p) { alive--; free(p); }
static long *val(long i) { long *p = malloc(sizeof *p); *p = i; alive++; return p; }

enum { NW = 7 };
static atomic_int close_returned, close_started;
static pthread_t closer_thread;
static worker_scope *sc;
static worker *ws[NW];
static int mode;
static atomic_int args_alive;
static atomic_long cb_after, fn_after, err_handler_calls;
static atomic_int in_home_call;

typedef struct ud { atomic_int destroyed; int conn_ok; int wi; pthread_t destroyer; atomic_int running; int after_close; int was_running_at_close; } ud;
static pthread_t gui;
enum { NCONN = 8 };
static ud uds[NW][NCONN];
static void ud_destroy(void *p) {
    ud *u = p;
    if (u->destroyed++) FAIL("user_data of w%d destroyed twice", u->wi);
    if (u->running) FAIL("user_data of w%d destroyed while its callback runs", u->wi);
    u->destroyer = pthread_self();
    u->after_close = close_returned;
}
static void *home_fn(void *a) {
    (void)a;
    if (close_returned) { fn_after++; FAIL("call_home fn began after worker_scope_close returned"); }
    return NULL;
}
static int do_close(int timeout);
static void on_any(worker_event *ev, void *p) {
    ud *u = p;
    u->running = 1;
    if (close_started) u->was_running_at_close = 1;
    if (close_returned) { cb_after++; FAIL("w%d: callback (type %d) began after worker_scope_close returned", u->wi, ev->type); }
    if ((mode == 4 || mode == 5) && u->wi == 0 && ev->type == WORKER_EV_YIELDED && ev->value && *(long *)ev->value == 20 && !close_started) {
        int rc = do_close(mode == 4 ? -1 : 0);
        if (rc != WORKER_OK && rc != WORKER_ETIMEDOUT) FAIL("close in callback: %s", worker_strerror(rc));
        if (mode == 4 && rc != WORKER_OK) FAIL("close(-1) in callback: %s", worker_strerror(rc));
    }
    usleep(200);
    u->running = 0;
}
static void arg_free(void *p) { (void)p; args_alive--; }

static void flood(worker_ctx *ctx, void *arg) {
    long k = (long)arg;
    for (long i = 0;; i++) {
        if (mode == 6 && k == 0 && i == 30) {
            int rc = do_close(-1);
            if (rc != WORKER_OK) FAIL("close from own function: %s", worker_strerror(rc));
        }
        int rc = (k == 4) ? worker_yield_sized(ctx, val(i), 50, vfree, NULL, NULL)
                          : worker_yield(ctx, val(i), vfree, NULL, NULL);
        if (rc == WORKER_ABORTED) return;
        if (k == 1 && i > 100000) return;
    }
}
static void caller(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (;;) {
        void *r = (void *)1;
        in_home_call = 1;
        int rc = worker_call_home(ctx, home_fn, NULL, &r, -1);
        in_home_call = 0;
        if (rc != WORKER_OK && r) FAIL("call_home %s with result set", worker_strerror(rc));
        if (rc == WORKER_ABORTED || rc == WORKER_EBUSY || worker_abort_requested(ctx)) return;
        if (rc != WORKER_OK) { FAIL("call_home: %s", worker_strerror(rc)); return; }
    }
}
static void stubborn(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_yield(ctx, val(-1), vfree, NULL, NULL);
    while (!close_started) usleep(1000);
    usleep(300000);
    worker_fail(ctx, 42, "stubborn failed after close");
}
static void warner(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; !worker_abort_requested(ctx); i++) { worker_warn(ctx, "w %d", i); worker_emit(ctx, "c", val(i), vfree); usleep(100); }
}
static void err_handler(worker_event *ev, void *p) {
    (void)p;
    if (ev->type == WORKER_EV_ERRORED && ev->code == 42) err_handler_calls++;
}

static int do_close(int timeout) {
    close_started = 1;
    closer_thread = pthread_self();
    int rc = worker_scope_close(sc, timeout);
    close_returned = 1;
    return rc;
}
static atomic_int th_rc;
static void *closer(void *a) {
    usleep(30000);
    th_rc = do_close((int)(long)a);
    return NULL;
}

static void run(int m, int round) {
    static const char *names[] = {"GUI thread, -1", "GUI thread, 0", "foreign thread, GUI pumping, -1", "foreign thread, GUI stalled, 0",
                                  "inside a YIELDED callback, -1", "inside a YIELDED callback, 0", "from the worker's own function, -1"};
    snprintf(current, sizeof current, "%s #%d", names[m], round);
    mode = m;
    close_returned = close_started = 0;
    cb_after = fn_after = err_handler_calls = 0;
    sc = worker_scope_new("plugin");
    worker_fn fns[NW] = {flood, flood, caller, flood, flood, stubborn, warner};
    for (int i = 0; i < NW; i++) {
        worker_options o; worker_options_init(&o);
        o.scope = sc;
        o.capacity = i == 0 ? 2 : 16;
        o.policy = i == 4 ? WORKER_LATEST : i == 6 ? WORKER_QUEUE : WORKER_BLOCK;
        if (i == 4) o.capacity_bytes = 500;
        args_alive++;
        ws[i] = worker_create(fns[i], (void *)(long)i, arg_free, &o);
        if (!ws[i]) { FAIL("create w%d: %s", i, worker_strerror(worker_last_error())); continue; }
        worker_event_type tys[NCONN] = {WORKER_EV_STARTED, WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_PAUSED,
                                        WORKER_EV_ABORTED, WORKER_EV_ERRORED, WORKER_EV_FINISHED, WORKER_EV_CUSTOM};
        for (int c = 0; c < NCONN; c++) {
            ud *u = &uds[i][c];
            memset(u, 0, sizeof *u);
            u->wi = i;
            long id = worker_connect(ws[i], tys[c], on_any, u, ud_destroy);
            u->conn_ok = id > 0;
            if (id <= 0) FAIL("connect w%d type %d: %ld", i, tys[c], id);
        }
    }
    worker_pause(ws[1]);
    for (int i = 0; i < NW; i++) if (i != 3) worker_start(ws[i]);
    /* let them get going: w1 parks, w2 calls home (answered while we pump) */
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    alarm(15);
    int rc = 0;
    pthread_t t;
    switch (m) {
    case 0: case 1:
        usleep(20000);   /* GUI busy: w2 is waiting in call_home, w0 at capacity */
        rc = do_close(m == 0 ? -1 : 0);
        break;
    case 2: case 3:
        pthread_create(&t, NULL, closer, (void *)(long)(m == 2 ? -1 : 0));
        if (m == 2) while (!close_returned) worker_app_process_events(1);
        else while (!close_returned) usleep(1000);
        pthread_join(t, NULL);
        rc = th_rc;
        break;
    case 4: case 5: case 6:
        while (!close_returned) worker_app_process_events(1);
        rc = WORKER_OK;
        break;
    }
    alarm(0);
    if (rc != WORKER_OK && rc != WORKER_ETIMEDOUT) FAIL("close: %s", worker_strerror(rc));
    if ((m == 0 || m == 2) && rc != WORKER_OK) FAIL("close(-1): %s", worker_strerror(rc));
    int timed = (m == 1 || m == 3 || m == 5);
    /* the second close: like a second free; nothing made a new scope meanwhile */
    int rc2 = worker_scope_close(sc, 0);
    if (rc2 != WORKER_EINVAL) FAIL("second close: %s, want EINVAL", worker_strerror(rc2));
    /* user_data destroyed once, on the closing thread (GUI for the in-callback case) */
    for (int i = 0; i < NW; i++) {
        if (!ws[i]) continue;
        for (int c = 0; c < NCONN; c++) {
            ud *u = &uds[i][c];
            if (!u->conn_ok) continue;
            if (u->destroyed != 1) FAIL("w%d conn %d user_data destroyed %d times right after the close", i, c, (int)u->destroyed);
            else if (!pthread_equal(u->destroyer, closer_thread) && m != 4 && m != 5)
                FAIL("w%d conn %d (type index) user_data destroyed on %s, not on the closing thread (%s); %s the close returned", i, c,
                     pthread_equal(u->destroyer, gui) ? "the GUI thread" : "a third thread",
                     pthread_equal(closer_thread, gui) ? "GUI" : "foreign/worker", u->after_close ? "after" : "before");
            if (!pthread_equal(u->destroyer, closer_thread) && m != 4 && m != 5)
                printf("      (its callback %s during the close)\n", u->was_running_at_close ? "began" : "did NOT begin");
            if (u->after_close && m != 4 && m != 5) FAIL("w%d conn %d user_data destroyed after the close returned", i, c);
        }
        int sr = worker_start(ws[i]);
        if (sr != WORKER_ESTATE) FAIL("worker_start w%d after close: %s", i, worker_strerror(sr));
        ud lu; memset(&lu, 0, sizeof lu); lu.wi = i;
        long id = worker_connect(ws[i], WORKER_EV_FINISHED, on_any, &lu, ud_destroy);
        if (id != WORKER_ESTATE) FAIL("connect w%d after close: %ld, want ESTATE", i, id);
        if (lu.destroyed != 1) FAIL("refused connect user_data destroyed %d times", (int)lu.destroyed);
    }
    /* pump until everything has ended */
    alarm(15);
    for (int s = 0; worker_live_count() && s < 3000; s++) worker_app_process_events(2);
    for (int i = 0; i < 100; i++) worker_app_process_events(1);
    alarm(0);
    if (worker_live_count()) FAIL("%d workers still live 6 s after the close", worker_live_count());
    if (timed && rc == WORKER_ETIMEDOUT && err_handler_calls != 1) FAIL("abandoned stubborn worker's ERRORED reached the error handler %ld times, want 1", (long)err_handler_calls);
    for (int i = 0; i < NW; i++) if (ws[i]) worker_unref(ws[i]);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    if (alive) FAIL("%ld payloads alive after all ended", (long)alive);
    if (args_alive) FAIL("%d args not destroyed (unstarted w3 too)", (int)args_alive);
    printf("  %-45s close rc %s, err-handler %ld\n", current, worker_strerror(rc), (long)err_handler_calls);
    alive = 0; args_alive = 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    gui = pthread_self();
    worker_app_init(&argc, argv);
    worker_set_error_handler(err_handler, NULL);
    for (int m = 0; m < 7; m++)
        for (int r = 0; r < 2; r++) run(m, r);
    printf("%s d2_scope_close_modes fails=%d\n", fails ? "FAIL" : "PASS", (int)fails);
    return fails != 0;
}
