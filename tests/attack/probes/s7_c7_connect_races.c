/* promise 1 (connect "affects later deliveries"; ESTATE only once FINISHED is being/has been delivered): (a) 2 foreign threads connect FINISHED callbacks in a loop while a short worker ends: every connect that returned an id > 0 gets FINISHED exactly once, every refused one (ESTATE) has its user_data destroyed at once; FINISHED connected from the worker's own thread just before it returns, and from its RETURNED callback, is called once; (b) a foreign thread connects YIELDED, then tells the worker, which notes the next value it yields: the connection must see that value and all later ones once, in order (plain yields, sized yields, emit with connect_custom, warn). run: ./build.sh probes/s7_c7_connect_races.c && QT_QPA_PLATFORM=offscreen probes/s7_c7_connect_races */
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

typedef struct ud { atomic_int destroyed, calls; atomic_long id; long first, last, gaps; atomic_long must_see; } ud;
static void ud_free(void *p) { ((ud *)p)->destroyed++; }
static void fin_cb(worker_event *ev, void *p) { ((ud *)p)->calls++; (void)ev; }

/* ---- (a) */
#define MAXC 20000
static ud *cs[2][MAXC];
static int ncs[2];
static worker *wa;
static atomic_int go;
static void *fin_connector(void *a) {
    long k = (long)a;
    while (!go) ;
    for (int i = 0; i < MAXC; i++) {
        ud *u = calloc(1, sizeof *u);
        cs[k][ncs[k]++] = u;
        long id = worker_connect(wa, WORKER_EV_FINISHED, fin_cb, u, ud_free);
        u->id = id;
        if (id == WORKER_ESTATE) {
            if (u->destroyed != 1) { printf("FAIL: refused connect: user_data destroyed %d at return\n", (int)u->destroyed); fails++; }
            break;
        }
        if (id <= 0) { printf("FAIL: connect %ld\n", id); fails++; break; }
    }
    return NULL;
}
static ud *own_thread, *in_returned;
static void short_fn(worker_ctx *ctx, void *arg) {
    long n = (long)arg;
    go = 1;
    for (long i = 0; i < n; i++) worker_yield(ctx, NULL, NULL, NULL, NULL);
    own_thread = calloc(1, sizeof *own_thread);
    own_thread->id = worker_connect(wa, WORKER_EV_FINISHED, fin_cb, own_thread, ud_free);
}
static void on_returned(worker_event *ev, void *p) {
    (void)p;
    in_returned = calloc(1, sizeof *in_returned);
    in_returned->id = worker_connect(ev->source, WORKER_EV_FINISHED, fin_cb, in_returned, ud_free);
}
static atomic_int fin_seen;
static void fin_count(worker_event *ev, void *p) { fin_seen++; (void)ev; (void)p; }

static void race_finished(int round) {
    current = "FINISHED connect race";
    go = 0; ncs[0] = ncs[1] = 0; fin_seen = 0;
    wa = worker_create(short_fn, (void *)(long)(round % 4 * 3), NULL, NULL);
    worker_connect(wa, WORKER_EV_FINISHED, fin_count, NULL, NULL);
    worker_connect(wa, WORKER_EV_RETURNED, on_returned, NULL, NULL);
    pthread_t t[2];
    for (long k = 0; k < 2; k++) pthread_create(&t[k], NULL, fin_connector, (void *)k);
    worker_start(wa);
    alarm(15);
    while (!fin_seen) worker_app_process_events(1);
    for (int k = 0; k < 2; k++) while (pthread_tryjoin_np(t[k], NULL)) worker_app_process_events(1);
    for (int i = 0; i < 5; i++) worker_app_process_events(1);
    alarm(0);
    long accepted = 0, refused = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < ncs[k]; i++) {
            ud *u = cs[k][i];
            if (u->id > 0) {
                accepted++;
                if (u->calls != 1) FAIL("round %d: FINISHED connection id %ld (thread %d, #%d of %d) called %d times", round, (long)u->id, k, i, ncs[k], (int)u->calls);
            } else { refused++; if (u->calls) FAIL("refused connection called"); }
        }
    if (!own_thread || own_thread->id <= 0 || own_thread->calls != 1) FAIL("round %d: FINISHED connected from the worker thread before return: id %ld, called %d", round, own_thread ? (long)own_thread->id : 0, own_thread ? (int)own_thread->calls : -1);
    if (!in_returned || in_returned->id <= 0 || in_returned->calls != 1) FAIL("round %d: FINISHED connected in RETURNED: id %ld, called %d", round, in_returned ? (long)in_returned->id : 0, in_returned ? (int)in_returned->calls : -1);
    worker_unref(wa);
    for (int i = 0; i < 5; i++) worker_app_process_events(1);
    for (int k = 0; k < 2; k++) for (int i = 0; i < ncs[k]; i++) { if (cs[k][i]->destroyed != 1) FAIL("user_data destroyed %d", (int)cs[k][i]->destroyed); free(cs[k][i]); }
    if (own_thread) { if (own_thread->destroyed != 1) FAIL("own-thread ud destroyed %d", (int)own_thread->destroyed); free(own_thread); own_thread = NULL; }
    if (in_returned) { if (in_returned->destroyed != 1) FAIL("in-returned ud destroyed %d", (int)in_returned->destroyed); free(in_returned); in_returned = NULL; }
    if (round < 3 || fails) printf("round %d: %ld accepted, %ld refused\n", round, accepted, refused);
}

/* ---- (b) */
static worker *wb;
static int kind;
static atomic_int want;       /* foreign thread: a connection was just made (index) */
static atomic_long mark[64];  /* worker: value yielded first after it saw want */
static atomic_int stop;
static void seq_cb(worker_event *ev, void *p) {
    ud *u = p;
    long v;
    if (ev->type == WORKER_EV_WARNED) v = atol(ev->message);
    else v = *(long *)ev->value;
    if (u->last >= 0 && v != u->last + 1) u->gaps++;
    if (u->first < 0) u->first = v;
    u->last = v;
    u->calls++;
}
static void vfree(void *p) { free(p); }
static void flood(worker_ctx *ctx, void *arg) {
    (void)arg;
    int seen_want = 0;
    for (long i = 0; !stop; i++) {
        int w = want;
        if (w > seen_want) { mark[w] = i; seen_want = w; }
        long *v = malloc(sizeof *v); *v = i;
        int rc;
        switch (kind) {
        case 0: rc = worker_yield(ctx, v, vfree, NULL, NULL); break;
        case 1: rc = worker_yield_sized(ctx, v, 8, vfree, NULL, NULL); break;
        case 2: rc = worker_emit(ctx, "n", v, vfree); break;
        default: free(v); rc = worker_warn(ctx, "%ld", i); break;
        }
        if (rc == WORKER_ABORTED) return;
    }
}
static ud *bu[64];
static void *late_connector(void *a) {
    (void)a;
    for (int i = 1; i < 40; i++) {
        usleep(3000 + (i * 137) % 2000);
        ud *u = calloc(1, sizeof *u);
        u->first = u->last = -1;
        bu[i] = u;
        long id;
        if (kind == 2) id = worker_connect_custom(wb, "n", seq_cb, u, ud_free);
        else id = worker_connect(wb, kind == 3 ? WORKER_EV_WARNED : WORKER_EV_YIELDED, seq_cb, u, ud_free);
        u->id = id;
        mark[i] = -1;
        want = i;
        while (mark[i] < 0) usleep(50);
    }
    stop = 1;
    return NULL;
}
static void race_later(int k) {
    static const char *names[] = {"connect then yield: plain", "connect then yield: sized", "connect_custom then emit", "connect then warn"};
    current = names[k];
    kind = k; want = 0; stop = 0;
    memset(bu, 0, sizeof bu);
    worker_options o;
    worker_options_init(&o);
    o.capacity = k == 1 ? 4 : 64;
    o.capacity_bytes = k == 1 ? 32 : 0;
    wb = worker_create(flood, NULL, NULL, &o);
    ud steady = {0};
    steady.first = steady.last = -1;
    if (k == 2) worker_connect_custom(wb, "n", seq_cb, &steady, NULL);
    else worker_connect(wb, k == 3 ? WORKER_EV_WARNED : WORKER_EV_YIELDED, seq_cb, &steady, NULL);
    worker_start(wb);
    pthread_t t;
    pthread_create(&t, NULL, late_connector, NULL);
    alarm(20);
    while (pthread_tryjoin_np(t, NULL)) worker_app_process_events(1);
    worker_await(wb, -1);
    while (worker_is_running(wb)) worker_app_process_events(1);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    alarm(0);
    int bad = 0;
    for (int i = 1; i < 40; i++) {
        ud *u = bu[i];
        if (u->gaps || u->first < 0 || u->first > mark[i] || u->last != steady.last) {
            if (bad++ < 5) FAIL("connection %d: saw %ld..%ld (%ld gaps); the worker yielded %ld first after the connect returned; last %ld", i, u->first, u->last, u->gaps, (long)mark[i], steady.last);
        }
    }
    if (steady.gaps || steady.first != 0) FAIL("steady: first %ld, %ld gaps", steady.first, steady.gaps);
    printf("[%s] steady saw %d values; %d of 39 late connections wrong\n", current, (int)steady.calls, bad);
    worker_unref(wb);
    for (int i = 0; i < 5; i++) worker_app_process_events(1);
    for (int i = 1; i < 40; i++) { if (bu[i]->destroyed != 1) FAIL("late ud destroyed %d", (int)bu[i]->destroyed); free(bu[i]); }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    for (int r = 0; r < rounds && fails < 20; r++) race_finished(r);
    for (int k = 0; k < 4; k++) race_later(k);
    printf("%s c7_connect_races: %ld failures\n", fails ? "FAIL" : "PASS", (long)fails);
    return fails != 0;
}
