/* promise 1 (order across fast/slow lanes, nothing lost but LATEST drops) + 2 (destroy once, right fn): two workers at once emit a random mix of plain yields (malloc'd with destroy A or B, integer-coded with NULL destroy, NULL value with destroy C), sized yields (0, 1, 100, oversized, PTRDIFF_MAX w/o budget), warn, progress, emit, under BLOCK 1/2/7/1024, QUEUE, LATEST 1/2/7/1024, budgets 0/1000, GUI callbacks stalling now and then; seq numbers must rise with no gaps (LATEST: gaps only over yields/progress), the last yield always arrives, all payloads destroyed once by the right fn before FINISHED; run: cd tests/attack && bash build.sh probes/s7_01_lanes_order.c build-asan && QT_QPA_PLATFORM=offscreen ./probes/s7_01_lanes_order */
#include <qtworker.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define N 12000
#define MAGIC 0x5eed5eedL
#define DEAD  0xdeaddeadL
enum { K_PLAIN_A, K_PLAIN_B, K_PLAIN_INT, K_PLAIN_NULL, K_SIZED, K_WARN, K_PROGRESS, K_EMIT, K_KINDS };
static const char *kname[] = {"yieldA", "yieldB", "yieldInt", "yieldNULL", "sized", "warn", "progress", "emit"};

typedef struct payload { long magic; long seq; int fn; int who; } payload;
static atomic_long alive_who[2], null_made_total;
static atomic_long alive_a, alive_b, made_a, made_b, freed_a, freed_b, freed_null_c, wrongfn;
static void destroy_a(void *p) {
    payload *v = p;
    if (!v) { wrongfn++; return; }
    if (v->magic != MAGIC || v->fn != 0) wrongfn++;
    v->magic = DEAD; freed_a++; alive_a--; alive_who[v->who]--; free(v);
}
static void destroy_b(void *p) {
    payload *v = p;
    if (!v) { wrongfn++; return; }
    if (v->magic != MAGIC || v->fn != 1) wrongfn++;
    v->magic = DEAD; freed_b++; alive_b--; alive_who[v->who]--; free(v);
}
static void destroy_c(void *p) { if (p) wrongfn++; else freed_null_c++; }
static __thread int cur_who;
static payload *mk(long seq, int fn) {
    payload *v = malloc(sizeof *v); v->magic = MAGIC; v->seq = seq; v->fn = fn; v->who = cur_who; alive_who[cur_who]++;
    if (fn == 0) { alive_a++; made_a++; } else { alive_b++; made_b++; }
    return v;
}

static const char *current = "";
static void on_alarm(int s) { (void)s; char m[300]; int n = snprintf(m, sizeof m, "FAIL: hang in %s\n", current); write(1, m, n); _exit(1); }

typedef struct run {
    worker *w; worker_policy pol; size_t cap, budget;
    unsigned char kinds[N]; size_t sizes[N];
    long last; long seen; long miss_y, miss_p; int broken; char why[300];
    long null_seen, null_made; long last_yield_seq, last_yield_seen;
    int finished; int who; long alive_at_fin; long rcbad; int rcfirst;
    unsigned stallseed;
} run;

static int droppable(int k) { return k <= K_SIZED || k == K_PROGRESS; }

static void see(run *r, long s, int kind) {
    if (r->broken) return;
    if (s < 0 || s >= N) { r->broken = 1; snprintf(r->why, sizeof r->why, "%s with bad seq %ld", kname[kind], s); return; }
    int k = r->kinds[s];
    int yk = kind <= K_SIZED; /* a YIELDED event */
    if ((yk && !(k <= K_SIZED)) || (!yk && k != kind)) {
        r->broken = 1; snprintf(r->why, sizeof r->why, "event %s carries seq %ld which was a %s", kname[kind], s, kname[k]); return;
    }
    if (s <= r->last) { r->broken = 1; snprintf(r->why, sizeof r->why, "%s %ld after seq %ld (%s)", kname[k], s, r->last, r->last >= 0 ? kname[r->kinds[r->last]] : "-"); return; }
    for (long m = r->last + 1; m < s; m++) {
        if (r->pol != WORKER_LATEST || !droppable(r->kinds[m])) {
            r->broken = 1; snprintf(r->why, sizeof r->why, "%s %ld lost (next seen %s %ld)", kname[r->kinds[m]], m, kname[k], s); return;
        }
        if (r->kinds[m] == K_PROGRESS) r->miss_p++; else r->miss_y++;
    }
    r->last = s; r->seen++;
}

static void stall(run *r) {
    unsigned x = rand_r(&r->stallseed) % 1000;
    if (x == 0) usleep(8000);
    else if (x < 4) { struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a); do clock_gettime(CLOCK_MONOTONIC, &b); while ((b.tv_sec - a.tv_sec) * 1000000000L + b.tv_nsec - a.tv_nsec < 1500000); }
    else if (x < 20) usleep(200);
}

static void on_event(worker_event *ev, void *ud) {
    run *r = ud;
    switch (ev->type) {
    case WORKER_EV_YIELDED: {
        uintptr_t u = (uintptr_t)ev->value;
        if (!u) { r->null_seen++; /* NULL values: check that the next expected might be one */
            long m = r->last + 1;
            while (m < N && r->kinds[m] != K_PLAIN_NULL && r->pol == WORKER_LATEST && droppable(r->kinds[m])) m++;
            if (m >= N || r->kinds[m] != K_PLAIN_NULL) { if (!r->broken) { r->broken = 1; snprintf(r->why, sizeof r->why, "NULL yield where seq %ld (%s) expected", r->last + 1, r->last + 1 < N ? kname[r->kinds[r->last + 1]] : "end"); } }
            else { for (long q = r->last + 1; q < m; q++) { if (r->kinds[q] == K_PROGRESS) r->miss_p++; else r->miss_y++; } r->last = m; r->seen++; }
        } else if (u & 1) see(r, (long)(u >> 1), K_PLAIN_INT);
        else {
            payload *v = ev->value;
            if (v->magic != MAGIC && !r->broken) { r->broken = 1; snprintf(r->why, sizeof r->why, "YIELDED payload already destroyed (magic %lx)", v->magic); }
            long s = v->seq;
            stall(r);
            if (v->magic != MAGIC && !r->broken) { r->broken = 1; snprintf(r->why, sizeof r->why, "payload %ld destroyed while its callback ran", s); }
            see(r, s, K_PLAIN_A);
        }
        r->last_yield_seen = r->last;
        break; }
    case WORKER_EV_WARNED: see(r, atol(ev->message), K_WARN); stall(r); break;
    case WORKER_EV_PROGRESS: see(r, (long)ev->done, K_PROGRESS); break;
    case WORKER_EV_CUSTOM: {
        payload *v = ev->value;
        if (((uintptr_t)v & 1)) see(r, (long)((uintptr_t)v >> 1), K_EMIT);
        else { if (v->magic != MAGIC && !r->broken) { r->broken = 1; snprintf(r->why, sizeof r->why, "CUSTOM payload destroyed"); } see(r, v->seq, K_EMIT); }
        break; }
    case WORKER_EV_FINISHED:
        r->finished = 1; r->alive_at_fin = alive_who[r->who]; break;
    default: break;
    }
}

static void producer(worker_ctx *ctx, void *arg) {
    run *r = arg;
    cur_who = r->who;
    for (long s = 0; s < N; s++) {
        int rc = 0;
        switch (r->kinds[s]) {
        case K_PLAIN_A: rc = worker_yield(ctx, mk(s, 0), destroy_a, NULL, NULL); break;
        case K_PLAIN_B: rc = worker_yield(ctx, mk(s, 1), destroy_b, NULL, NULL); break;
        case K_PLAIN_INT: rc = worker_yield(ctx, (void *)(((uintptr_t)s << 1) | 1), NULL, NULL, NULL); break;
        case K_PLAIN_NULL: rc = worker_yield(ctx, NULL, destroy_c, NULL, NULL); break;
        case K_SIZED: rc = worker_yield_sized(ctx, s & 1 ? (void *)mk(s, 0) : (void *)mk(s, 1), r->sizes[s], s & 1 ? destroy_a : destroy_b, NULL, NULL); break;
        case K_WARN: rc = worker_warn(ctx, "%ld", s); break;
        case K_PROGRESS: rc = worker_progress(ctx, s, N, NULL); break;
        case K_EMIT: rc = s & 2 ? worker_emit(ctx, "e", (void *)(((uintptr_t)s << 1) | 1), NULL) : worker_emit(ctx, "e", mk(s, 0), destroy_a); break;
        }
        if (rc != WORKER_OK) { if (!r->rcbad++) r->rcfirst = rc; }
    }
}

static void gen(run *r, unsigned seed) {
    for (long s = 0; s < N; s++) {
        unsigned x = rand_r(&seed);
        /* bursty: long runs of plain yields (fast lane) broken by other kinds */
        int k = (x % 100) < 60 ? (int)(x / 100 % 3) : (int)(x / 100 % K_KINDS);
        r->kinds[s] = (unsigned char)k;
        if (k == K_SIZED) {
            unsigned y = rand_r(&seed) % 10;
            r->sizes[s] = y < 3 ? 0 : y < 5 ? 1 : y < 8 ? 100 : y < 9 ? 5000 : (r->budget ? 1000 : (size_t)PTRDIFF_MAX / 4);
        }
    }
    /* make the last event a plain yield: LATEST must deliver it */
    r->kinds[N - 1] = K_PLAIN_A;
    for (long s = 0; s < N; s++) if (r->kinds[s] == K_PLAIN_NULL) { r->null_made++; null_made_total++; }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    int fails = 0, runs = 0;
    struct { worker_policy p; size_t cap; } cfg[] = {
        {WORKER_BLOCK, 1}, {WORKER_BLOCK, 2}, {WORKER_BLOCK, 7}, {WORKER_BLOCK, 0},
        {WORKER_QUEUE, 0}, {WORKER_LATEST, 1}, {WORKER_LATEST, 2}, {WORKER_LATEST, 7}, {WORKER_LATEST, 0}};
    /* QUEUE + budget must be refused */
    {
        worker_options o; worker_options_init(&o); o.policy = WORKER_QUEUE; o.capacity_bytes = 10;
        worker *w = worker_create(producer, NULL, NULL, &o);
        if (w || worker_last_error() != WORKER_EINVAL) { printf("FAIL: QUEUE + capacity_bytes accepted (%p, %d)\n", (void *)w, worker_last_error()); fails++; if (w) worker_unref(w); }
    }
    static run rr[2];
    char name[200];
    for (unsigned c = 0; c < sizeof cfg / sizeof *cfg; c++)
        for (int b = 0; b < 2; b++) {
            if (cfg[c].p == WORKER_QUEUE && b) continue;
            snprintf(name, sizeof name, "policy %d cap %zu budget %d", cfg[c].p, cfg[c].cap, b ? 1000 : 0);
            current = name;
            for (int i = 0; i < 2; i++) {
                run *r = &rr[i];
                memset(r, 0, sizeof *r);
                r->pol = cfg[c].p; r->cap = cfg[c].cap; r->budget = b ? 1000 : 0; r->last = -1; r->stallseed = c * 10 + b + i; r->who = i;
                gen(r, 1234 + c * 7 + b * 3 + i);
                worker_options o; worker_options_init(&o);
                o.policy = r->pol; o.capacity = r->cap; o.capacity_bytes = r->budget;
                r->w = worker_create(producer, r, NULL, &o);
                worker_event_type ts[] = {WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_PROGRESS, WORKER_EV_CUSTOM, WORKER_EV_FINISHED};
                for (unsigned t = 0; t < 5; t++) worker_connect(r->w, ts[t], on_event, r, NULL);
            }
            worker_start(rr[0].w); worker_start(rr[1].w);
            alarm(25);
            while (!rr[0].finished || !rr[1].finished) worker_app_process_events(5);
            alarm(0);
            for (int i = 0; i < 2; i++) {
                run *r = &rr[i];
                runs++;
                long dropped = worker_dropped(r->w);
                if (!r->broken && r->last != N - 1) { r->broken = 1; snprintf(r->why, sizeof r->why, "last seq seen %ld, want %d (final yield lost)", r->last, N - 1); }
                if (!r->broken && r->pol != WORKER_LATEST && r->seen != N) { r->broken = 1; snprintf(r->why, sizeof r->why, "saw %ld of %d", r->seen, N); }
                if (!r->broken && r->rcbad) { r->broken = 1; snprintf(r->why, sizeof r->why, "%ld calls returned non-OK, first %d (%s)", r->rcbad, r->rcfirst, worker_strerror(r->rcfirst)); }
                if (!r->broken && dropped != r->miss_y && dropped != r->miss_y + r->miss_p) { r->broken = 1; snprintf(r->why, sizeof r->why, "worker_dropped %ld but %ld yields and %ld progress missing", dropped, r->miss_y, r->miss_p); }
                if (r->broken) { fails++; printf("FAIL %s worker %d: %s\n", name, i, r->why); }
                else printf("ok   %s worker %d: seen %ld of %d, dropped %ld (missing yields %ld, progress %ld)\n", name, i, r->seen, N, dropped, r->miss_y, r->miss_p);
            }
            for (int i = 0; i < 2; i++) if (rr[i].alive_at_fin) { printf("FAIL %s worker %d: %ld payloads not yet destroyed when FINISHED was delivered\n", name, i, rr[i].alive_at_fin); fails++; }
            worker_unref(rr[0].w); worker_unref(rr[1].w);
        }
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    printf("made A %ld freed A %ld, made B %ld freed B %ld, NULL yields with destroy C %ld, destroy_c(NULL) calls %ld, wrong-fn/garbage destroys %ld\n",
           (long)made_a, (long)freed_a, (long)made_b, (long)freed_b, (long)null_made_total, (long)freed_null_c, (long)wrongfn);
    if (made_a != freed_a || made_b != freed_b || wrongfn || null_made_total != freed_null_c) { printf("FAIL: destroy counts\n"); fails++; }
    printf("%s: %d runs, %d failures\n", fails ? "FAIL" : "PASS", runs, fails);
    return fails != 0;
}
