/* promise 3 (burst): N (default 3000) short workers created and started at once, each with 5 connections (STARTED, YIELDED, RETURNED, ABORTED, FINISHED); 1/5 quit right after start, 1/5 unref'd right after start, 1/5 in one of 8 serial groups (some also quit), a few group_exclusive; every worker: STARTED first, one outcome, exactly one FINISHED, arg_destroy once, every user_data destroy once; then the app exits cleanly. modes: 0 = worker_app_exec until the last FINISHED quits it; 1 = quit the app while the burst is in flight (exit join must deliver the rest); 2 = starts from 2 foreign pthreads. run: ./build.sh probes/s7_c4_burst.c && QT_QPA_PLATFORM=offscreen probes/s7_c4_burst MODE [N] */
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
#define FAIL(...) do { if (fails++ < 30) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct rec {
    int idx, kind;       /* kind: 0 plain, 1 quit, 2 unref, 3 group, 4 group+quit */
    worker *w, *h;
    int started_rc;
    int state;           /* 0 none, 1 started, 2 outcome, 3 finished */
    int n_started, n_outcome, n_fin, n_yield;
    atomic_int arg_destroyed, ud_destroyed;
    int exclusive;
} rec;
static rec *recs;
static int N, mode;
static atomic_int fin_total, expected_fin;
static atomic_long ret_destroyed, ret_made;

static void arg_free(void *p) { ((rec *)p)->arg_destroyed++; }
static void ud_free(void *p) { ((rec *)p)->ud_destroyed++; }
static void ret_free(void *p) { ret_destroyed++; free(p); }

static void fn(worker_ctx *ctx, void *arg) {
    rec *r = arg;
    if (worker_yield(ctx, NULL, NULL, NULL, NULL) == WORKER_ABORTED) return;
    int *v = malloc(sizeof *v); *v = r->idx; ret_made++;
    worker_return(ctx, v, ret_free);
}
static void on_started(worker_event *ev, void *p) {
    rec *r = p;
    if (ev->source != r->h) FAIL("w%d: STARTED source wrong", r->idx);
    if (r->state != 0) FAIL("w%d: STARTED in state %d", r->idx, r->state);
    r->state = 1; r->n_started++;
}
static void on_yield(worker_event *ev, void *p) {
    rec *r = p; (void)ev;
    if (r->state != 1) FAIL("w%d: YIELDED in state %d", r->idx, r->state);
    r->n_yield++;
}
static void on_outcome(worker_event *ev, void *p) {
    rec *r = p;
    if (r->state != 1) FAIL("w%d: outcome %d in state %d", r->idx, ev->type, r->state);
    if (ev->type == WORKER_EV_RETURNED && (!ev->value || *(int *)ev->value != r->idx)) FAIL("w%d: RETURNED value wrong", r->idx);
    r->state = 2; r->n_outcome++;
}
static void on_fin(worker_event *ev, void *p) {
    rec *r = p; (void)ev;
    if (r->state != 2) FAIL("w%d: FINISHED in state %d", r->idx, r->state);
    r->state = 3; r->n_fin++;
    int f = ++fin_total;
    if (mode != 1 && f == expected_fin) worker_app_quit(0);
}

static atomic_int peak_threads, stop_mon;
static int threads_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256]; int n = 0;
    while (f && fgets(line, sizeof line, f)) if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
    if (f) fclose(f);
    return n;
}
static void *monitor(void *a) {
    (void)a;
    while (!stop_mon) { int n = threads_now(); if (n > peak_threads) peak_threads = n; usleep(2000); }
    return NULL;
}
static void do_start(rec *r) {
    int rc;
    for (int t = 0; (rc = worker_start(r->w)) == WORKER_EAGAIN && t < 1000; t++) usleep(1000);
    r->started_rc = rc;
    if (rc == WORKER_OK) {
        if (r->kind == 1 || r->kind == 4) worker_quit(r->w);
        if (r->kind == 2) { worker_unref(r->w); r->w = NULL; }
    }
}
static void *starter(void *a) {
    long half = (long)a;
    for (int i = 0; i < N; i++) if (i % 2 == half) do_start(&recs[i]);
    return NULL;
}
static void *quitter(void *a) { (void)a; usleep(3000); worker_app_quit(0); return NULL; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    mode = argc > 1 ? atoi(argv[1]) : 0;
    N = argc > 2 ? atoi(argv[2]) : 3000;
    worker_app_init(&argc, argv);
    pthread_t mon;
    pthread_create(&mon, NULL, monitor, NULL);
    recs = calloc(N, sizeof *recs);
    static char gname[8][8];
    for (int g = 0; g < 8; g++) snprintf(gname[g], sizeof gname[g], "g%d", g);
    current = "create";
    alarm(25);
    for (int i = 0; i < N; i++) {
        rec *r = &recs[i];
        r->idx = i; r->kind = i % 5;
        worker_options o;
        worker_options_init(&o);
        if (r->kind >= 3) o.group = gname[i % 8];
        r->w = r->h = worker_create(fn, r, arg_free, &o);
        if (!r->w) { FAIL("create %d: %s", i, worker_strerror(worker_last_error())); continue; }
        worker_connect(r->w, WORKER_EV_STARTED, on_started, r, ud_free);
        worker_connect(r->w, WORKER_EV_YIELDED, on_yield, r, ud_free);
        worker_connect(r->w, WORKER_EV_RETURNED, on_outcome, r, ud_free);
        worker_connect(r->w, WORKER_EV_ABORTED, on_outcome, r, ud_free);
        worker_connect(r->w, WORKER_EV_FINISHED, on_fin, r, ud_free);
    }
    current = "start burst";
    int ok = 0, eagain = 0, other = 0;
    if (mode == 2) {
        pthread_t a, b;
        pthread_create(&a, NULL, starter, (void *)0L);
        pthread_create(&b, NULL, starter, (void *)1L);
        pthread_join(a, NULL); pthread_join(b, NULL);
    } else
        for (int i = 0; i < N; i++) do_start(&recs[i]);
    for (int i = 0; i < N; i++) {
        if (recs[i].started_rc == WORKER_OK) ok++;
        else if (recs[i].started_rc == WORKER_EAGAIN) eagain++;
        else { other++; if (other < 5) printf("note: start %d: %s\n", i, worker_strerror(recs[i].started_rc)); }
    }
    expected_fin = ok;
    printf("started %d (EAGAIN after retries %d, other %d); live %d, threads %d\n", ok, eagain, other, worker_live_count(), threads_now());
    if (fin_total == expected_fin && mode != 1) worker_app_quit(0);
    pthread_t q;
    if (mode == 1) pthread_create(&q, NULL, quitter, NULL);
    current = "worker_app_exec";
    int rc = worker_app_exec();
    if (mode == 1) pthread_join(q, NULL);
    printf("exec returned %d; FINISHED %d of %d; live %d\n", rc, (int)fin_total, (int)expected_fin, worker_live_count());
    current = "after exec";
    /* in mode 1 the exit join must have delivered every remaining event */
    if (fin_total != expected_fin) FAIL("%d FINISHED delivered by the time exec returned, want %d", (int)fin_total, (int)expected_fin);
    for (int i = 0; i < N; i++) if (recs[i].w) { worker_unref(recs[i].w); recs[i].w = NULL; }
    for (int i = 0; i < 50; i++) worker_app_process_events(1);
    long bad = 0;
    int by_kind_abort[5] = {0}, by_kind_ret[5] = {0};
    for (int i = 0; i < N; i++) {
        rec *r = &recs[i];
        int st = r->started_rc == WORKER_OK;
        if (r->n_started != st || r->n_outcome != st || r->n_fin != st || r->arg_destroyed != 1 || r->ud_destroyed != 5) {
            if (bad++ < 10) FAIL("w%d kind %d: started %d outcome %d finished %d yield %d, arg destroyed %d, user_data destroyed %d/5",
                                i, r->kind, r->n_started, r->n_outcome, r->n_fin, r->n_yield, (int)r->arg_destroyed, (int)r->ud_destroyed);
        }
        if (r->n_yield) by_kind_ret[r->kind]++; else by_kind_abort[r->kind]++;
    }
    if (bad) FAIL("%ld of %d workers wrong", bad, N);
    if (ret_made != ret_destroyed) FAIL("%ld results made, %ld destroyed", (long)ret_made, (long)ret_destroyed);
    stop_mon = 1;
    pthread_join(mon, NULL);
    printf("peak threads %d; yielded-per-kind plain %d quit %d unref %d group %d group+quit %d\n", (int)peak_threads,
           by_kind_ret[0], by_kind_ret[1], by_kind_ret[2], by_kind_ret[3], by_kind_ret[4]);
    free(recs);
    printf("%s c4_burst mode %d N %d: %ld failures\n", fails ? "FAIL" : "PASS", mode, N, (long)fails);
    return fails != 0;
}
