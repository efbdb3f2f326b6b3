/* promise 4 (exit: "When the application's event loop ends (aboutToQuit), qtworker quits every live worker, waits for them up to this bound, and delivers their remaining events"; ownership: every payload destroyed once): a child process per mode starts workers, then ends worker_app_exec with worker_app_quit while they (0) flood under BLOCK 4 / QUEUE / LATEST+budget with warn/emit, (1) are parked in a pause, (2) wait at capacity (the GUI never pumped), (3) wait in worker_call_home (GUI never pumped), (4) all of it plus a serial group queue and a worker started from a callback during the join, (5) quit from inside a YIELDED callback during a flood; after exec returns every worker must have had FINISHED delivered, and after main returns (atexit) every yielded/emitted/sent value, arg and user_data destroyed exactly once; the child must exit 0 by itself; run: s7d/mk.sh d4_exit_join && QT_QPA_PLATFORM=offscreen s7d/d4_exit_join-asan */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int mode;
static atomic_long alive, args_alive, ud_alive, double_free;
static atomic_int n_started, n_fin, n_outcome, call_rc_bad, bad;
static void vfree(void *p) { long *q = p; if (*q == -12345) double_free++; *q = -12345; alive--; free(p); }
static long *val(long i) { long *p = malloc(sizeof *p); *p = i; alive++; return p; }
static void arg_free(void *p) { (void)p; args_alive--; }
static void ud_free(void *p) { (void)p; ud_alive--; }
static void on_alarm(int s) { (void)s; char m[80]; int n = snprintf(m, sizeof m, "FAIL: mode %d hung\n", mode); write(1, m, n); _exit(3); }

static void *home(void *a) { return a; }
static void fn(worker_ctx *ctx, void *arg) {
    long k = (long)arg;
    for (long i = 0;; i++) {
        int rc;
        switch (k % 5) {
        case 0: rc = worker_yield(ctx, val(i), vfree, NULL, NULL); break;
        case 1: rc = worker_yield_sized(ctx, val(i), 100, vfree, NULL, NULL); if (i % 3 == 0) worker_emit(ctx, "e", val(i), vfree); break;
        case 2: rc = worker_warn(ctx, "w%ld", i); if (rc == WORKER_OK) rc = worker_yield(ctx, val(i), vfree, NULL, NULL); break;
        case 3: { void *r = (void *)1; rc = worker_call_home(ctx, home, (void *)7, &r, -1);
                  if (rc != WORKER_OK && r) call_rc_bad++;
                  if (rc == WORKER_EBUSY) return;
                  break; }
        default: { void *v; worker_destroy_fn d; rc = worker_receive(ctx, &v, &d, 5); if (rc == WORKER_RECEIVED) { if (d) d(v); rc = 0; } else if (rc == WORKER_ETIMEDOUT) rc = 0; break; }
        }
        if (rc == WORKER_ABORTED) return;
        if (worker_abort_requested(ctx)) return;
    }
}
static worker *started_in_join;
static void on_ev(worker_event *ev, void *ud) {
    (void)ud;
    if (ev->type == WORKER_EV_STARTED) n_started++;
    if (ev->type == WORKER_EV_ABORTED || ev->type == WORKER_EV_RETURNED || ev->type == WORKER_EV_ERRORED) n_outcome++;
    if (ev->type == WORKER_EV_FINISHED) n_fin++;
}
static worker *mkw(long kind, worker_policy pol, size_t cap, size_t bytes, const char *group) {
    worker_options o; worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = bytes; o.group = group;
    args_alive++;
    worker *w = worker_create(fn, (void *)kind, arg_free, &o);
    worker_event_type t[] = {WORKER_EV_STARTED, WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_CUSTOM, WORKER_EV_ABORTED, WORKER_EV_RETURNED, WORKER_EV_ERRORED, WORKER_EV_FINISHED};
    for (unsigned i = 0; i < sizeof t / sizeof *t; i++) { ud_alive++; worker_connect(w, t[i], on_ev, NULL, ud_free); }
    return w;
}
static int quit_in_cb_done;
static void quit_cb(worker_event *ev, void *ud) {
    (void)ud;
    if (!quit_in_cb_done && *(long *)ev->value == 50) { quit_in_cb_done = 1; worker_app_quit(0); }
}
static void start_in_join_cb(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    /* ABORTED callback delivered by the join: start a new worker now */
    if (!started_in_join && mode == 4) {
        started_in_join = mkw(0, WORKER_BLOCK, 2, 0, NULL);
        int rc = worker_start(started_in_join);
        if (rc != WORKER_OK) { printf("FAIL: start during join: %s\n", worker_strerror(rc)); bad++; }
    }
}
static void at_exit(void) {
    int ok = !alive && !args_alive && !ud_alive && !double_free && !call_rc_bad && !bad;
    printf("  mode %d atexit: values alive %ld, args alive %ld, user_data alive %ld, double destroys %ld, call_home result-set-on-error %d -> %s\n",
           mode, (long)alive, (long)args_alive, (long)ud_alive, (long)double_free, (int)call_rc_bad, ok ? "ok" : "FAIL");
    fflush(stdout);
    if (!ok) _exit(2);
}

static int child(int m, int argc, char **argv) {
    mode = m;
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    atexit(at_exit);
    worker_app_init(&argc, argv);
    enum { MAXW = 24 };
    worker *ws[MAXW]; int n = 0;
    switch (m) {
    case 0:
        ws[n++] = mkw(0, WORKER_BLOCK, 4, 0, NULL);
        ws[n++] = mkw(0, WORKER_QUEUE, 0, 0, NULL);
        ws[n++] = mkw(1, WORKER_LATEST, 4, 300, NULL);
        ws[n++] = mkw(2, WORKER_BLOCK, 3, 0, NULL);
        ws[n++] = mkw(4, WORKER_BLOCK, 3, 0, NULL);
        break;
    case 1: for (int i = 0; i < 4; i++) { ws[n] = mkw(i % 3, WORKER_BLOCK, 2, i == 1 ? 300 : 0, NULL); worker_pause(ws[n]); n++; } break;
    case 2: for (int i = 0; i < 4; i++) ws[n++] = mkw(i % 3, WORKER_BLOCK, 1 + i, i == 1 ? 300 : 0, NULL); break;
    case 3: for (int i = 0; i < 4; i++) ws[n++] = mkw(3, WORKER_BLOCK, 4, 0, NULL); break;
    case 4:
        for (int i = 0; i < 5; i++) ws[n++] = mkw(i, WORKER_BLOCK, 2, i == 1 ? 300 : 0, NULL);
        for (int i = 0; i < 4; i++) ws[n++] = mkw(i % 3, WORKER_BLOCK, 2, 0, "g");   /* 3 queued behind the first */
        ws[n] = mkw(0, WORKER_BLOCK, 2, 0, NULL); worker_pause(ws[n]); n++;
        worker_connect(ws[0], WORKER_EV_ABORTED, start_in_join_cb, NULL, NULL);
        for (int i = 0; i < 5; i++) worker_send(ws[4], val(-i), vfree);
        break;
    case 5:
        for (int i = 0; i < 4; i++) ws[n++] = mkw(i % 3, WORKER_BLOCK, 3, i == 1 ? 300 : 0, NULL);
        worker_connect(ws[0], WORKER_EV_YIELDED, quit_cb, NULL, NULL);
        break;
    }
    for (int i = 0; i < n; i++) worker_start(ws[i]);
    if (m == 0 || m == 1) for (int i = 0; i < 40; i++) worker_app_process_events(2);
    else usleep(100000);   /* modes 2,3,4: the GUI has not pumped: at capacity / in call_home */
    if (m != 5) worker_app_quit(0);
    int rc = worker_app_exec();
    int expect = n + (started_in_join != NULL);
    printf("  mode %d: exec returned %d; STARTED %d, outcomes %d, FINISHED %d of %d workers; live %d\n",
           m, rc, (int)n_started, (int)n_outcome, (int)n_fin, expect, worker_live_count());
    if (n_fin != expect || n_outcome != expect) { printf("FAIL: mode %d: FINISHED %d / outcomes %d of %d after exec returned\n", m, (int)n_fin, (int)n_outcome, expect); bad++; }
    if (m == 4 && !started_in_join) { printf("FAIL: mode 4: the ABORTED callback did not run during the join\n"); bad++; }
    for (int i = 0; i < n; i++) worker_unref(ws[i]);
    if (started_in_join) worker_unref(started_in_join);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1) return child(atoi(argv[1]), argc, argv);
    int fails = 0;
    for (int m = 0; m <= 5; m++) {
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) { char a[4]; snprintf(a, sizeof a, "%d", m); char *av[] = {argv[0], a, NULL}; execv(argv[0], av); _exit(99); }
        int st; waitpid(p, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("%s: mode %d child %s %d\n", ok ? "PASS" : "FAIL", m, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        fails += !ok;
    }
    printf("%s d4_exit_join fails=%d\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
