/* probe: worker_disconnect while the worker floods: from another thread (never called after it returns unless running then, user_data destroyed once and soon after, never used after destroy), from inside its own callback, of a later connection of the same event from an earlier one (not called for that event), twice (EINVAL, one destroy), while its callback runs on the GUI (user_data lives until that call returns); a connection made from another thread mid-flood sees a gapless run of values; a steady connection beside the churn sees every value once in order; run: ./build.sh probes/13_disconnect_flood.c && QT_QPA_PLATFORM=offscreen probes/13_disconnect_flood */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAGIC 0x5eedu
typedef struct ud {
    atomic_uint magic;
    atomic_int destroyed, gone, running;
    atomic_long calls, first, last, gaps;
    atomic_long entries, snap; /* snap: entries seen right after worker_disconnect returned */
    atomic_long entries2, snap2; /* the same, one step later in the callback: a window of known size */
    int sleep_us;
} ud;
static atomic_long fails, made, freed, in_own_window, began_after;
#define FAIL(...) do { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } while (0)

static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static ud **all;  /* every user_data, freed at the very end (a late use stays visible) */
static long n_all;
static ud *ud_new(void) {
    ud *u = calloc(1, sizeof *u);
    pthread_mutex_lock(&all_mu);
    all = realloc(all, sizeof *all * (n_all + 1));
    all[n_all++] = u;
    pthread_mutex_unlock(&all_mu);
    u->magic = MAGIC; u->first = -1; u->last = -1;
    made++;
    return u;
}
/* never freed: a use after destroy must stay visible */
static void ud_destroy(void *p) {
    ud *u = p;
    if (atomic_exchange(&u->destroyed, 1)) FAIL("user_data destroyed twice");
    if (u->running) FAIL("user_data destroyed while its callback runs");
    u->magic = 0;
    freed++;
}
static void cb(worker_event *ev, void *p) {
    ud *u = p;
    long e = u->entries++;  /* first thing: when this call began */
    long e2 = u->entries2++;
    u->running = 1;
    if (u->gone && e < u->snap && e2 >= u->snap2) in_own_window++;
    if (u->magic != MAGIC) FAIL("callback called with destroyed user_data");
    /* Seen a few times a run, but fewer than the control (a disconnect returning
       within this callback's own first step): a call already under way, not
       one begun after the return, as far as can be seen from outside. */
    if (u->gone && e >= u->snap) began_after++;
    long v = *(long *)ev->value;
    if (u->last >= 0 && v != u->last + 1) u->gaps++;
    if (u->first < 0) u->first = v;
    u->last = v;
    u->calls++;
    if (u->sleep_us) usleep(u->sleep_us);
    if (u->magic != MAGIC) FAIL("user_data destroyed during its callback");
    u->running = 0;
}

static atomic_long alive;
static void val_free(void *p) { alive--; free(p); }
static atomic_int stop_flood;
static void flood(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0; !stop_flood; i++) {
        long *v = malloc(sizeof *v); *v = i; alive++;
        if (worker_yield(ctx, v, val_free, NULL, NULL) == WORKER_ABORTED) return;
    }
}

static worker *w;
static atomic_int stop_threads;
static void *churn(void *a) {
    int slow = (int)(long)a;
    unsigned seed = 99 + slow;
    while (!stop_threads) {
        ud *u = ud_new();
        u->sleep_us = slow ? 2000 : 0;
        long id = worker_connect(w, WORKER_EV_YIELDED, cb, u, ud_destroy);
        if (id <= 0) { FAIL("connect %ld", id); return NULL; }
        usleep(rand_r(&seed) % 3000);
        int rc = worker_disconnect(w, id);
        u->snap2 = u->entries2;
        u->snap = u->entries;
        u->gone = 1;
        if (rc != WORKER_OK) FAIL("disconnect %d", rc);
        if (u->gaps) FAIL("connection made mid-flood saw %ld gaps (%ld calls, %ld..%ld)", (long)u->gaps, (long)u->calls, (long)u->first, (long)u->last);
        if (worker_disconnect(w, id) != WORKER_EINVAL) FAIL("second disconnect not EINVAL");
        for (int t = 0; !u->destroyed; t++) {
            if (t == 2000) { FAIL("user_data not destroyed 2 s after disconnect (running %d)", (int)u->running); break; }
            usleep(1000);
        }
    }
    return NULL;
}

/* inside a callback: A disconnects itself on its 3rd call; B disconnects C (connected after B) */
static long id_a, id_c;
static void self_disc(worker_event *ev, void *p) {
    ud *u = p;
    cb(ev, p);
    if (u->calls == 3) {
        if (worker_disconnect(ev->source, id_a) != WORKER_OK) FAIL("self disconnect");
        u->snap = u->entries;
        u->gone = 1;
        if (u->destroyed) FAIL("user_data destroyed while its own callback still runs");
    }
}
static ud *uc;
static void other_disc(worker_event *ev, void *p) {
    cb(ev, p);
    if (((ud *)p)->calls == 5) {
        if (worker_disconnect(ev->source, id_c) != WORKER_OK) FAIL("disconnect of C");
        uc->snap = uc->entries;
        uc->gone = 1;
        if (!uc->destroyed) FAIL("C's user_data not destroyed by the disconnect (C is not running)");
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(120);
    worker_app_init(&argc, argv);
    for (int round = 0; round < 3; round++) {
        stop_flood = 0; stop_threads = 0;
        worker_options o;
        worker_options_init(&o);
        o.capacity = round == 0 ? 1 : round == 1 ? 3 : 1000;
        w = worker_create(flood, NULL, NULL, &o);
        ud *steady = ud_new();
        worker_connect(w, WORKER_EV_YIELDED, cb, steady, ud_destroy);
        ud *ua = ud_new(), *ub = ud_new();
        uc = ud_new();
        id_a = worker_connect(w, WORKER_EV_YIELDED, self_disc, ua, ud_destroy);
        worker_connect(w, WORKER_EV_YIELDED, other_disc, ub, ud_destroy);
        id_c = worker_connect(w, WORKER_EV_YIELDED, cb, uc, ud_destroy);
        worker_start(w);
        pthread_t t[3];
        for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)(long)(i == 2));
        for (int i = 0; i < 1500; i++) worker_app_process_events(1);
        stop_threads = 1;
        /* the churn threads wait for destroys the GUI does: keep it running */
        for (int i = 0; i < 3; i++) {
            while (pthread_tryjoin_np(t[i], NULL) != 0) worker_app_process_events(1);
        }
        stop_flood = 1;
        worker_await(w, -1);
        for (int i = 0; i < 50; i++) worker_app_process_events(1);
        if (ua->calls != 3) FAIL("self-disconnected A called %ld times", (long)ua->calls);
        if (uc->calls != 4) FAIL("C (disconnected by B on its 5th call, before C's turn) called %ld times", (long)uc->calls);
        if (steady->gaps || steady->first != 0) FAIL("steady connection: %ld gaps, first %ld", (long)steady->gaps, (long)steady->first);
        worker_unref(w);
        for (int i = 0; i < 20; i++) worker_app_process_events(1);
        if (!steady->destroyed || !ub->destroyed) FAIL("user_data not destroyed after the worker was freed");
        printf("round %d: steady saw %ld values\n", round, (long)steady->calls);
    }
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    if (made != freed) FAIL("%ld user_data made, %ld destroyed", (long)made, (long)freed);
    if (alive) FAIL("%ld payloads alive", (long)alive);
    for (long i = 0; i < n_all; i++) free(all[i]);
    free(all);
    printf("%s (%ld user_data); calls begun after the disconnect returned: %ld; control: disconnect returned inside the callback's own first step: %ld\n",
           fails ? "FAIL" : "PASS", (long)made, (long)began_after, (long)in_own_window);
    return fails != 0;
}
