/* promise 5 (serial groups: "workers of one group run one at a time, in start order; other groups and ungrouped workers run in parallel. A queued member counts as started and live"; group_exclusive "EBUSY instead of queueing when a member of its group is running or queued (it stays startable)"; timeout_ms "counted from when the function starts (not queue time)"): (a) 12 members started from 3 threads at once, some pausing, some blocking at capacity under a stalled GUI, some quit while queued, one last-unref'd while queued: never two functions of the group at once, functions begin in start order, a quit queued member gives one ABORTED + FINISHED and the rest still run; (b) group_exclusive while a member runs / is queued: EBUSY, then OK once the group is idle; (c) a queued member with timeout_ms 100 behind a 300 ms member returns normally; (d) a second group runs in parallel; is_running/live_count for a queued member; run: s7d/mk.sh d5_serial_groups && QT_QPA_PLATFORM=offscreen s7d/d5_serial_groups-asan */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *current = "start";
static void on_alarm(int s) { (void)s; char m[300]; int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current); write(1, m, n); _exit(1); }
static atomic_int fails;
#define FAIL(...) do { if (fails++ < 60) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)
static long long now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000LL + t.tv_nsec / 1000000; }
static void pump_ms(int ms) { long long end = now_ms() + ms; while (now_ms() < end) worker_app_process_events(2); }

static atomic_int running_in[2], max_overlap;
static atomic_int begin_seq, start_seq;
typedef struct m {
    int idx, group, behaviour;      /* 0 sleep 30 ms; 1 pause self once; 2 yield 10 at cap 1 (GUI stall); 3 sleep 300ms; 4 sleep 50 */
    int start_order, begin_order;
    atomic_int ran, fin, started_ev, aborted, returned;
    worker *w;
} m;
static atomic_long alive;
static void vfree(void *p) { alive--; free(p); }
static void fn(worker_ctx *ctx, void *arg) {
    m *x = arg;
    int g = x->group;
    if (++running_in[g] > 1) { FAIL("group %d: %d functions running at once (w%d began)", g, (int)running_in[g], x->idx); }
    x->begin_order = begin_seq++;
    x->ran = 1;
    switch (x->behaviour) {
    case 0: usleep(30000); break;
    case 1: worker_pause(x->w); worker_abort_requested(ctx); break;   /* parks until resumed */
    case 2: for (int i = 0; i < 10; i++) { long *p = malloc(sizeof *p); *p = i; alive++; if (worker_yield(ctx, p, vfree, NULL, NULL) == WORKER_ABORTED) break; } break;
    case 3: usleep(300000); break;
    case 4: usleep(50000); break;
    }
    running_in[g]--;
}
static void on_ev(worker_event *ev, void *ud) {
    m *x = ud;
    switch (ev->type) {
    case WORKER_EV_STARTED: x->started_ev++; break;
    case WORKER_EV_ABORTED: x->aborted++; break;
    case WORKER_EV_RETURNED: x->returned++; break;
    case WORKER_EV_FINISHED: x->fin++; break;
    case WORKER_EV_PAUSED: worker_resume(x->w); break;
    case WORKER_EV_YIELDED: usleep(5000); break;
    default: break;
    }
}
static worker *mk(m *x, int idx, int group, int beh, int excl, long long timeout) {
    memset(x, 0, sizeof *x);
    x->idx = idx; x->group = group; x->behaviour = beh; x->begin_order = -1;
    worker_options o; worker_options_init(&o);
    o.group = group ? "g1" : "g0"; o.group_exclusive = excl; o.capacity = 1; o.timeout_ms = timeout;
    x->w = worker_create(fn, x, NULL, &o);
    worker_event_type t[] = {WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED, WORKER_EV_PAUSED, WORKER_EV_YIELDED};
    for (unsigned i = 0; i < sizeof t / sizeof *t; i++) worker_connect(x->w, t[i], on_ev, x, NULL);
    return x->w;
}

enum { N = 12 };
static m ms[N];
static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static void *starter(void *a) {
    long k = (long)a;
    for (int i = (int)k; i < N; i += 3) {
        pthread_mutex_lock(&start_mu);   /* start order = the order of these calls */
        ms[i].start_order = start_seq++;
        int rc = worker_start(ms[i].w);
        pthread_mutex_unlock(&start_mu);
        if (rc != WORKER_OK) FAIL("start w%d: %s", i, worker_strerror(rc));
        usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);

    current = "(a) 12 members from 3 threads";
    for (int round = 0; round < 3; round++) {
        begin_seq = start_seq = 0;
        for (int i = 0; i < N; i++) mk(&ms[i], i, 0, i % 5 == 4 ? 0 : i % 3, 0, 0);
        pthread_t t[3];
        for (int k = 0; k < 3; k++) pthread_create(&t[k], NULL, starter, (void *)(long)k);
        for (int k = 0; k < 3; k++) pthread_join(t[k], NULL);
        /* stall the GUI a little: a member at capacity blocks; the next must not start */
        usleep(100000);
        /* quit two members that are most likely still queued, unref a third */
        int q1 = -1, q2 = -1, u1 = -1;
        for (int i = N - 1; i >= 0; i--) {
            if (ms[i].start_order == N - 1) q1 = i;
            if (ms[i].start_order == N - 3) q2 = i;
            if (ms[i].start_order == N - 5) u1 = i;
        }
        int ir = worker_is_running(ms[q1].w);
        if (!ir) FAIL("queued member is_running %d, want 1", ir);
        worker_quit(ms[q1].w); worker_quit(ms[q2].w);
        worker *uw = ms[u1].w; ms[u1].w = NULL;
        int u1_ran_before = ms[u1].ran;
        worker_unref(uw);
        alarm(20);
        long long t0 = now_ms();
        for (;;) {
            int all = 1;
            for (int i = 0; i < N; i++) if (i != u1 && !ms[i].fin) all = 0;
            if (all || now_ms() - t0 > 15000) break;
            worker_app_process_events(2);
        }
        alarm(0);
        for (int i = 0; i < N; i++) {
            if (i == u1) continue;
            if (ms[i].fin != 1) FAIL("w%d (start %d) FINISHED %d", i, ms[i].start_order, (int)ms[i].fin);
            if (ms[i].started_ev != 1) FAIL("w%d STARTED %d", i, (int)ms[i].started_ev);
            if (ms[i].aborted + ms[i].returned != 1) FAIL("w%d outcomes %d", i, ms[i].aborted + ms[i].returned);
            if ((i == q1 || i == q2) && ms[i].returned) FAIL("quit queued member w%d RETURNED", i);
            if (i != q1 && i != q2 && !ms[i].ran) FAIL("w%d never ran", i);
        }
        /* function begin order follows start order */
        int last = -1;
        for (int b = 0; b < begin_seq; b++)
            for (int i = 0; i < N; i++)
                if (ms[i].begin_order == b) {
                    if (ms[i].start_order < last) FAIL("w%d (start order %d) began after a member started later (%d)", i, ms[i].start_order, last);
                    last = ms[i].start_order;
                }
        printf("  (a) round %d: %d functions began; quit-queued w%d ran=%d, w%d ran=%d; unref'd w%d ran=%d (before unref %d)\n",
               round, (int)begin_seq, q1, (int)ms[q1].ran, q2, (int)ms[q2].ran, u1, (int)ms[u1].ran, u1_ran_before);
        for (int i = 0; i < N; i++) if (ms[i].w) worker_unref(ms[i].w);
        pump_ms(50);
    }

    current = "(b) group_exclusive";
    {
        m a, b, c, e;
        mk(&a, 0, 0, 3, 0, 0);          /* runs 300 ms */
        mk(&b, 1, 0, 0, 0, 0);          /* queued behind it */
        mk(&e, 2, 0, 0, 1, 0);          /* exclusive */
        worker_start(a.w);
        int rc = worker_start(e.w);
        if (rc != WORKER_EBUSY) FAIL("exclusive start while a member runs: %s, want EBUSY", worker_strerror(rc));
        worker_start(b.w);
        pump_ms(20);
        rc = worker_start(e.w);
        if (rc != WORKER_EBUSY) FAIL("exclusive start while one runs and one is queued: %s, want EBUSY", worker_strerror(rc));
        if (worker_is_running(e.w)) FAIL("refused exclusive is_running 1");
        alarm(10);
        while (!a.fin || !b.fin) worker_app_process_events(2);
        pump_ms(20);
        rc = worker_start(e.w);
        if (rc != WORKER_OK) FAIL("exclusive start once the group is idle: %s (it stays startable)", worker_strerror(rc));
        mk(&c, 3, 0, 0, 1, 0);
        int rc2 = worker_start(c.w);
        if (rc2 != WORKER_EBUSY) FAIL("second exclusive while the first runs: %s", worker_strerror(rc2));
        while (!e.fin) worker_app_process_events(2);
        alarm(0);
        if (!e.ran || e.returned != 1) FAIL("exclusive did not run/return");
        worker_unref(a.w); worker_unref(b.w); worker_unref(e.w); worker_unref(c.w);
    }

    current = "(c) timeout_ms counted from function start, not queue time; (d) other group parallel";
    {
        m a, b, d;
        mk(&a, 0, 0, 3, 0, 0);          /* 300 ms */
        mk(&b, 1, 0, 4, 0, 100);        /* 50 ms of work, timeout 100, queued 300 ms */
        mk(&d, 2, 1, 4, 0, 0);          /* other group */
        worker_start(a.w); worker_start(b.w);
        long long t0 = now_ms();
        worker_start(d.w);
        int lc = worker_live_count();
        if (lc < 3) FAIL("live count %d with one running, one queued, one in another group", lc);
        alarm(10);
        while (!d.fin) worker_app_process_events(2);
        long long td = now_ms() - t0;
        if (td > 250) FAIL("member of another group finished after %lld ms: not parallel", td);
        while (!a.fin || !b.fin) worker_app_process_events(2);
        alarm(0);
        if (b.returned != 1 || b.aborted) FAIL("queued member with timeout_ms 100: returned %d aborted %d (timeout counted from queue time?)", (int)b.returned, (int)b.aborted);
        worker_unref(a.w); worker_unref(b.w); worker_unref(d.w);
    }
    pump_ms(30);
    current = "end";
    if (alive) FAIL("%ld payloads alive", (long)alive);
    printf("%s d5_serial_groups fails=%d\n", fails ? "FAIL" : "PASS", (int)fails);
    return fails != 0;
}
