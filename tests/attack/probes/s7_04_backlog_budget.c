/* promise 3 (worker_backlog bytes = sum of sizes of pending sized yields, plain = 0; capacity_bytes never exceeded beyond one oversized frame alone; huge valid sizes near PTRDIFF_MAX / budgets near SIZE_MAX do not wrap): (A) scripted scenarios: the GUI stalls inside the callback of a marker while the worker yields a script, then samples worker_backlog and counts how many yields returned during the stall; (B) random flood: the GUI stalls now and then until the worker is blocked, samples worker_backlog and compares with the exact sum of pending sizes; run: cd tests/attack && bash build.sh probes/s7_04_backlog_budget.c build-asan && QT_QPA_PLATFORM=offscreen ./probes/s7_04_backlog_budget */
#include <qtworker.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define P ((size_t)PTRDIFF_MAX)
#define SMAX ((size_t)-1)
static atomic_long alive;
static void pfree(void *p) { alive--; free(p); }
static void *mk(long s) { long *v = malloc(sizeof *v); *v = s; alive++; return v; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static const char *current = "";
static void on_alarm(int s) { (void)s; char m[300]; int n = snprintf(m, sizeof m, "FAIL: hang in %s\n", current); write(1, m, n); _exit(1); }
static int fails;

enum { I_SIZED, I_PLAIN, I_WARN };
typedef struct { int kind; size_t size; } item;
typedef struct {
    const char *name; worker_policy pol; size_t cap, budget;
    int n; item it[8];
    int want_returned; size_t want_bytes; long want_entries; /* -1: do not check */
    /* runtime */
    atomic_int in_marker, returned; int got_returned; size_t got_bytes, got_entries; int finished; long rcs[8]; worker *w;
} scen;

static void sc_worker(worker_ctx *ctx, void *arg) {
    scen *s = arg;
    worker_yield(ctx, mk(-1), pfree, NULL, NULL);
    for (int t = 0; !s->in_marker; t++) { if (t > 200000) return; usleep(10); }
    for (int i = 0; i < s->n; i++) {
        int rc = s->it[i].kind == I_SIZED ? worker_yield_sized(ctx, mk(i), s->it[i].size, pfree, NULL, NULL)
               : s->it[i].kind == I_PLAIN ? worker_yield(ctx, mk(i), pfree, NULL, NULL)
               : worker_warn(ctx, "w%d", i);
        s->rcs[i] = rc;
        s->returned++;
    }
}
static void sc_cb(worker_event *ev, void *ud) {
    scen *s = ud;
    if (ev->type == WORKER_EV_FINISHED) { s->finished = 1; return; }
    if (ev->type != WORKER_EV_YIELDED || *(long *)ev->value != -1) return;
    s->in_marker = 1;
    int last = -1; double since = now();
    while (now() - since < 0.15) { int r = s->returned; if (r != last) { last = r; since = now(); } if (r == s->n) { usleep(20000); break; } usleep(500); }
    s->got_returned = s->returned;
    worker_backlog(s->w, &s->got_entries, &s->got_bytes);
}

static void run_scen(scen *s) {
    current = s->name;
    worker_options o; worker_options_init(&o);
    o.policy = s->pol; o.capacity = s->cap; o.capacity_bytes = s->budget;
    s->w = worker_create(sc_worker, s, NULL, &o);
    if (!s->w) { printf("FAIL %s: create refused (%d)\n", s->name, worker_last_error()); fails++; return; }
    worker_connect(s->w, WORKER_EV_YIELDED, sc_cb, s, NULL);
    worker_connect(s->w, WORKER_EV_FINISHED, sc_cb, s, NULL);
    worker_start(s->w);
    alarm(10);
    while (!s->finished) worker_app_process_events(5);
    alarm(0);
    size_t e, b; worker_backlog(s->w, &e, &b);
    int bad = s->got_returned != s->want_returned || s->got_bytes != s->want_bytes || (s->want_entries >= 0 && (long)s->got_entries != s->want_entries) || e || b;
    for (int i = 0; i < s->n; i++) if (s->rcs[i] != 0) bad = 1;
    printf("%s %-62s returned during stall %d (want %d), bytes %zu (want %zu), entries %zu (want %ld), after end %zu/%zu, dropped %lld, rcs",
           bad ? "FAIL" : "ok  ", s->name, s->got_returned, s->want_returned, s->got_bytes, s->want_bytes, s->got_entries, s->want_entries, e, b, (long long)worker_dropped(s->w));
    for (int i = 0; i < s->n; i++) printf(" %ld", s->rcs[i]);
    printf("\n");
    fails += bad;
    worker_unref(s->w);
}

/* ------------------------------------------------------------------ (B) */
#define NB 4000
typedef struct {
    size_t budget, cap; worker_policy pol; int kind[NB]; size_t size[NB];
    atomic_long attempt, done; worker *w; int finished; long samples, bad; char why[300]; unsigned seed;
    size_t maxb; long inexact; char why2[300];
} fl;
static atomic_char dflag[NB];
static void ffree(void *p) { long s = *(long *)p; if (s >= 0 && s < NB) dflag[s] = 1; pfree(p); }
static int einval_rc; static long einval_alive;
static void big_worker(worker_ctx *ctx, void *arg) { (void)arg; long a = alive; einval_rc = worker_yield_sized(ctx, mk(0), P + 1, pfree, NULL, NULL); einval_alive = alive - a; }
static void fl_worker(worker_ctx *ctx, void *arg) {
    fl *f = arg;
    for (long s = 0; s < NB; s++) {
        f->attempt = s;
        int rc = f->kind[s] == I_SIZED ? worker_yield_sized(ctx, mk(s), f->size[s], ffree, NULL, NULL)
               : f->kind[s] == I_PLAIN ? worker_yield(ctx, mk(s), ffree, NULL, NULL) : worker_warn(ctx, "%ld", s);
        if (rc) { snprintf(f->why, sizeof f->why, "rc %d at %ld", rc, s); f->bad++; return; }
        f->done = s + 1;
    }
}
static void fl_cb(worker_event *ev, void *ud) {
    fl *f = ud;
    if (ev->type == WORKER_EV_FINISHED) { f->finished = 1; return; }
    long i = ev->type == WORKER_EV_YIELDED ? *(long *)ev->value : atol(ev->message);
    if (rand_r(&f->seed) % 40) return;
    /* stall until the worker is blocked inside call `attempt` (or done) */
    long last = -1; double since = now();
    while (now() - since < 0.03) { long a = f->attempt * 2 + (f->done > f->attempt); if (a != last) { last = a; since = now(); } usleep(300); }
    long j = f->attempt, d = f->done;
    size_t e, b;
    worker_backlog(f->w, &e, &b);
    long j2 = f->attempt, d2 = f->done;
    if (j != j2 || d != d2) return; /* moved: not a stable sample */
    long end = d > j ? d : j; /* calls [i, end) have queued their event */
    size_t want = 0; for (long s = i; s < end; s++) if (f->kind[s] == I_SIZED) want += f->size[s];
    long pe = end - i;
    /* an oversized frame is queued, then its call waits for delivery: it may be pending too */
    if (d <= j && f->kind[j] == I_SIZED && f->budget && f->size[j] > f->budget && b >= want + f->size[j]) { want += f->size[j]; pe++; }
    f->samples++;
    if (b > f->maxb) f->maxb = b;
    size_t big = 0; for (long s = i; s <= end && s < NB; s++) if (f->kind[s] == I_SIZED && f->size[s] > big) big = f->size[s];
    int over = f->budget && b > f->budget && b != big;
    int hard = over || e > f->cap || b < want || e < (size_t)pe;
    if (hard && !f->bad++)
        snprintf(f->why, sizeof f->why, "in callback of %ld, worker %s %ld: backlog %zu entries %zu bytes; pending %ld entries %zu bytes (budget %zu, cap %zu)",
                 i, d > j ? "done up to" : "blocked in call", j, e, b, pe, want, f->budget, f->cap);
    if (!hard && (b != want || e != (size_t)pe)) {
        if (!f->inexact++) snprintf(f->why2, sizeof f->why2, "in callback of %ld, worker %s %ld: backlog %zu entries %zu bytes; pending %ld entries %zu bytes",
                                   i, d > j ? "done up to" : "blocked in call", j, e, b, pe, want);
    }
}
static void run_flood(worker_policy pol, size_t cap, size_t budget, int huge) {
    static fl f;
    memset(&f, 0, sizeof f); for (int q = 0; q < NB; q++) dflag[q] = 0;
    f.budget = budget; f.cap = cap; f.pol = pol; f.seed = (unsigned)(cap * 31 + budget + huge);
    unsigned sd = 5 + (unsigned)cap + huge;
    for (long s = 0; s < NB; s++) {
        unsigned x = rand_r(&sd) % 10;
        f.kind[s] = x < 5 ? I_SIZED : x < 9 ? I_PLAIN : I_WARN;
        unsigned y = rand_r(&sd) % 6;
        f.size[s] = y == 0 ? 0 : y == 1 ? 1 : y < 4 ? 37 : y == 4 ? 250 : (huge ? P / 8 : 1500);
    }
    char nm[100]; snprintf(nm, sizeof nm, "(B) flood policy %d cap %zu budget %zu huge %d", pol, cap, budget, huge);
    current = nm;
    worker_options o; worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = budget;
    f.w = worker_create(fl_worker, &f, NULL, &o);
    worker_connect(f.w, WORKER_EV_YIELDED, fl_cb, &f, NULL);
    worker_connect(f.w, WORKER_EV_WARNED, fl_cb, &f, NULL);
    worker_connect(f.w, WORKER_EV_FINISHED, fl_cb, &f, NULL);
    worker_start(f.w);
    alarm(25);
    while (!f.finished) worker_app_process_events(5);
    alarm(0);
    printf("%s %s: %ld stable samples, max bytes %zu%s%s\n", f.bad ? "FAIL" : "ok  ", nm, f.samples, f.maxb, f.bad ? ": " : "", f.bad ? f.why : "");
    if (f.inexact) printf("     note: %ld samples counted more than pending (entries delivered earlier in the batch, see 05), first: %s\n", f.inexact, f.why2);
    fails += f.bad != 0;
    worker_unref(f.w);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    static scen sc[] = {
        {"S1 BLOCK 1000: 500,500,1", WORKER_BLOCK, 100, 1000, 3, {{0, 500}, {0, 500}, {0, 1}}, 2, 1000, 3},
        {"S2 BLOCK 1000: oversized 1001 (waits until delivered)", WORKER_BLOCK, 100, 1000, 1, {{0, 1001}}, 0, 1001, 2},
        {"S3 BLOCK 1000: 300, oversized 1001", WORKER_BLOCK, 100, 1000, 2, {{0, 300}, {0, 1001}}, 1, 300, 2},
        {"S4 BLOCK SIZE_MAX: P,P,P", WORKER_BLOCK, 100, SMAX, 3, {{0, P}, {0, P}, {0, P}}, 2, SMAX - 1, 3},
        {"S5 BLOCK SIZE_MAX: P,P,1,1 (sum would wrap)", WORKER_BLOCK, 100, SMAX, 4, {{0, P}, {0, P}, {0, 1}, {0, 1}}, 3, SMAX, 4},
        {"S6 BLOCK P+10: P,10,1", WORKER_BLOCK, 100, P + 10, 3, {{0, P}, {0, 10}, {0, 1}}, 2, P + 10, 3},
        {"S8 BLOCK cap 3 budget 1000: plain,plain,10", WORKER_BLOCK, 3, 1000, 3, {{1, 0}, {1, 0}, {0, 10}}, 2, 0, 3},
        {"S9 BLOCK 1000: 0,0,0,0,0,1000", WORKER_BLOCK, 100, 1000, 6, {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 1000}}, 6, 1000, 7},
        {"S10 LATEST 1000: 600,600", WORKER_LATEST, 100, 1000, 2, {{0, 600}, {0, 600}}, 2, 600, 2},
        {"S11 LATEST 1000: 600,warn,600", WORKER_LATEST, 100, 1000, 3, {{0, 600}, {2, 0}, {0, 600}}, 3, 600, 3},
        {"S12 BLOCK 1000: 999,1,0", WORKER_BLOCK, 100, 1000, 3, {{0, 999}, {0, 1}, {0, 0}}, 3, 1000, 4},
        {"S13 BLOCK 1000: 1000, plain (0 bytes)", WORKER_BLOCK, 100, 1000, 2, {{0, 1000}, {1, 0}}, 2, 1000, 3},
        {"S14 LATEST 1000: oversized 5000, 5000", WORKER_LATEST, 100, 1000, 2, {{0, 5000}, {0, 5000}}, 0, 5000, 2},
        {"S15 LATEST SIZE_MAX: P,P,P (drops, no wrap)", WORKER_LATEST, 100, SMAX, 3, {{0, P}, {0, P}, {0, P}}, 3, P, 2},
        {"S17 BLOCK no budget: P,P,2 (bytes must not wrap)", WORKER_BLOCK, 100, 0, 3, {{0, P}, {0, P}, {0, 2}}, 3, SMAX, 4},
        {"S18 BLOCK no budget: 100, plain, 50", WORKER_BLOCK, 100, 0, 3, {{0, 100}, {1, 0}, {0, 50}}, 3, 150, 4},
        {"S19 LATEST no budget: 100, 50", WORKER_LATEST, 100, 0, 2, {{0, 100}, {0, 50}}, 2, 50, 2},
    };
    for (unsigned i = 0; i < sizeof sc / sizeof *sc; i++) run_scen(&sc[i]);
    {
        worker *w = worker_create(big_worker, NULL, NULL, NULL);
        worker_start(w); worker_await(w, 5000);
        printf("%s size PTRDIFF_MAX+1: rc %d (want %d EINVAL), payloads left alive by the call %ld (want 0)\n", einval_rc == WORKER_EINVAL && !einval_alive ? "ok  " : "FAIL", einval_rc, WORKER_EINVAL, einval_alive);
        fails += !(einval_rc == WORKER_EINVAL && !einval_alive);
        for (int i = 0; i < 20; i++) worker_app_process_events(2);
        worker_unref(w);
    }
    run_flood(WORKER_BLOCK, 1024, 1000, 0);
    run_flood(WORKER_BLOCK, 7, 1000, 0);
    run_flood(WORKER_BLOCK, 2, 300, 0);
    run_flood(WORKER_BLOCK, 1024, 0, 0);
    run_flood(WORKER_BLOCK, 7, 0, 1);
    run_flood(WORKER_BLOCK, 64, SMAX, 1);
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); fails++; }
    printf("%s (%d failures)\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
