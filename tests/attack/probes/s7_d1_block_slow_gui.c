/* promise 1 (BLOCK under a slow GUI: "at `capacity` undelivered entries the producer waits until half of them are delivered (one wake-up per half, not per value), also while the GUI is still in a later callback"; capacity_bytes "BLOCK waits while it would exceed the budget"; worker_backlog from a foreign thread within capacity/budget): (A) scripted: the producer fills capacity 1/2/3/4/8 (or a byte budget of c frames) while the GUI does not pump, then the GUI delivers L values fast and sits 300 ms in the callback of value L: how many values did the producer manage meanwhile (header: L once 2L >= c, else 0; bytes: L)? (B) random 1-20 ms GUI callbacks, a sampler thread reads worker_backlog, the producer checks returned-minus-ended <= capacity after every yield; run: s7d/mk.sh d1_block_slow_gui && QT_QPA_PLATFORM=offscreen s7d/d1_block_slow_gui-asan */
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
static char curbuf[200];
static void on_alarm(int s) {
    (void)s;
    char m[300];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static int fails, deviations;
#define FAIL(...) do { fails++; printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } while (0)
#define DEV(...) do { deviations++; printf("DEVIATION: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } while (0)

static atomic_long alive, destroyed_total;
static void vfree(void *p) { alive--; destroyed_total++; free(p); }

typedef struct st {
    size_t cap, budget, size;   /* size 0 = plain yield */
    long n;
    atomic_long returned, begun, ended;
    atomic_long max_over_ended, max_over_begun;
    atomic_int fin, bad_rc;
    long L;                     /* long callback index, -1 none */
    int long_ms;
    long at_long_start, at_long_end;
    size_t bl_entries, bl_bytes;  /* backlog at end of long callback */
    int rnd;                    /* random 1-20 ms callbacks */
    unsigned seed;
    long next;                  /* order check */
    worker *w;
} st;

static void producer(worker_ctx *ctx, void *arg) {
    st *s = arg;
    for (long i = 0; i < s->n; i++) {
        long *v = malloc(sizeof *v); *v = i; alive++;
        int rc = s->size ? worker_yield_sized(ctx, v, s->size, vfree, NULL, NULL)
                         : worker_yield(ctx, v, vfree, NULL, NULL);
        if (rc != WORKER_OK) { s->bad_rc = rc; return; }
        long r = ++s->returned;
        long oe = r - s->ended, ob = r - s->begun;
        /* limit in entries: capacity, or what the byte budget admits */
        if (oe > s->max_over_ended) s->max_over_ended = oe;
        if (ob > s->max_over_begun) s->max_over_begun = ob;
    }
}
static void on_yield(worker_event *ev, void *ud) {
    st *s = ud;
    s->begun++;
    long v = *(long *)ev->value;
    if (v != s->next) FAIL("got %ld want %ld", v, s->next);
    s->next = v + 1;
    if (v == s->L) {
        s->at_long_start = s->returned;
        usleep(s->long_ms * 1000);
        s->at_long_end = s->returned;
        worker_backlog(s->w, &s->bl_entries, &s->bl_bytes);
    } else if (s->rnd) {
        usleep((1 + rand_r(&s->seed) % 20) * 1000);
    }
    s->ended++;
}
static void on_fin(worker_event *ev, void *ud) { (void)ev; ((st *)ud)->fin = 1; }

static size_t limit_entries(st *s) {
    size_t lim = s->cap;
    if (s->budget && s->size) { size_t b = s->budget / s->size; if (b < 1) b = 1; if (b < lim) lim = b; }
    return lim;
}

static worker *mk(st *s) {
    worker_options o; worker_options_init(&o);
    o.policy = WORKER_BLOCK; o.capacity = s->cap; o.capacity_bytes = s->budget;
    worker *w = worker_create(producer, s, NULL, &o);
    s->w = w;
    worker_connect(w, WORKER_EV_YIELDED, on_yield, s, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_fin, s, NULL);
    return w;
}
static void drain(st *s) {
    alarm(20);
    while (!s->fin) worker_app_process_events(5);
    alarm(0);
    if (s->bad_rc) FAIL("a yield returned %s", worker_strerror(s->bad_rc));
    if (s->next != s->n) FAIL("delivered %ld of %ld", s->next, s->n);
    size_t lim = limit_entries(s);
    if (s->max_over_ended > (long)lim) FAIL("producer had %ld yields returned whose callbacks had not ended (limit %zu)", (long)s->max_over_ended, lim);
    worker_unref(s->w);
}

/* (A) scripted */
static void scripted(size_t c, long L, int bytes) {
    st *s = calloc(1, sizeof *s);
    if (bytes) { s->cap = 1000; s->budget = c * 100; s->size = 100; }
    else { s->cap = c; }
    s->L = L; s->long_ms = 200; s->n = (long)c + L + (long)c + 3;
    snprintf(curbuf, sizeof curbuf, "A %s c=%zu L=%ld", bytes ? "budget" : "capacity", c, L);
    current = curbuf;
    worker *w = mk(s);
    worker_start(w);
    /* let the worker fill up without the GUI pumping */
    usleep(100000);
    long filled = s->returned;
    if (filled != (long)c) FAIL("before the GUI pumped the producer returned %ld yields, want %zu", filled, c);
    drain(s);
    long during = s->at_long_end - (long)c;   /* beyond the first c */
    long started_in = s->at_long_start - (long)c;
    long expect = bytes ? L : (2 * L >= (long)c ? L : 0);
    printf("  %-28s filled %ld; in long callback of v%ld: produced beyond c: at start %ld, after 200ms %ld (header: %ld); backlog then %zu entries %zu bytes\n",
           curbuf, filled, L, started_in, during, expect, s->bl_entries, s->bl_bytes);
    if (during > L) FAIL("producer went past capacity: %ld > %ld", during, L);
    else if (expect == L && during < L) FAIL("producer managed only %ld of %ld values while the GUI sat in the callback of v%ld", during, L, L);
    else if (expect == 0 && during != 0) DEV("woke before half was delivered: %ld values (c=%zu L=%ld)", during, c, L);
    /* backlog during the long callback: undelivered = v_L .. returned-1 */
    size_t want_e = (size_t)(s->at_long_end - L);
    if (s->bl_entries != want_e && !(s->bl_entries == want_e + 0)) FAIL("backlog entries %zu during long callback, want %zu", s->bl_entries, want_e);
    if (bytes && s->bl_bytes != want_e * 100) FAIL("backlog bytes %zu during long callback, want %zu", s->bl_bytes, want_e * 100);
    free(s);
}

/* (B) random slow GUI + sampler */
static st *sampled;
static atomic_int sampling;
static atomic_long smax_e, smax_b, nsamples;
static void *sampler(void *a) {
    (void)a;
    while (sampling) {
        size_t e = 0, b = 0;
        if (worker_backlog(sampled->w, &e, &b) == WORKER_OK) {
            if ((long)e > smax_e) smax_e = (long)e;
            if ((long)b > smax_b) smax_b = (long)b;
            nsamples++;
        }
        usleep(50);
    }
    return NULL;
}
static void random_gui(size_t c, int bytes) {
    st *s = calloc(1, sizeof *s);
    if (bytes) { s->cap = 1000; s->budget = c * 100; s->size = 100; }
    else { s->cap = c; }
    s->L = -1; s->rnd = 1; s->seed = (unsigned)c * 7 + bytes; s->n = 40;
    snprintf(curbuf, sizeof curbuf, "B %s c=%zu random 1-20ms", bytes ? "budget" : "capacity", c);
    current = curbuf;
    worker *w = mk(s);
    sampled = s; smax_e = smax_b = nsamples = 0; sampling = 1;
    pthread_t t; pthread_create(&t, NULL, sampler, NULL);
    worker_start(w);
    alarm(20);
    while (!s->fin) worker_app_process_events(5);
    alarm(0);
    sampling = 0; pthread_join(t, NULL);
    printf("  %-34s max returned-begun %ld, returned-ended %ld; sampled backlog max %ld entries %ld bytes (%ld samples)\n",
           curbuf, (long)s->max_over_begun, (long)s->max_over_ended, (long)smax_e, (long)smax_b, (long)nsamples);
    if ((size_t)smax_e > s->cap) FAIL("sampled backlog %ld entries > capacity %zu", (long)smax_e, s->cap);
    if (bytes && (size_t)smax_b > s->budget) FAIL("sampled backlog %ld bytes > budget %zu", (long)smax_b, s->budget);
    if (s->max_over_begun > (long)limit_entries(s)) FAIL("returned-begun %ld > %zu", (long)s->max_over_begun, limit_entries(s));
    s->fin = 1;
    drain(s);
    free(s);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    size_t caps[] = {1, 2, 3, 4, 8};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 5; i++)
            for (long L = 1; L <= (long)caps[i]; L++) scripted(caps[i], L, b);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 5; i++) random_gui(caps[i], b);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    current = "end";
    if (alive) FAIL("%ld payloads never destroyed", (long)alive);
    printf("destroyed %ld payloads; %d deviations\n", (long)destroyed_total, deviations);
    printf("%s d1_block_slow_gui fails=%d\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
