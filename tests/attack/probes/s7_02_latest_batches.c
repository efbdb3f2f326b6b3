/* promise 1 (LATEST "keep only the newest undelivered yield (and progress)", across the fast and slow lanes, order kept, warnings never dropped): each round the worker yields a marker, waits until the GUI is inside the marker's callback (GUI stalled there), then yields a batch of k values mixing plain (fast lane), sized 0/1/300 (slow lane), NULL-destroy ints, with warnings/progress when capacity allows; after the stall the GUI must see exactly: every warning, the newest progress, the newest yield, in production order; worker_dropped grows by the number of yields dropped; every payload destroyed once; run: cd tests/attack && bash build.sh probes/s7_02_latest_batches.c build-asan && QT_QPA_PLATFORM=offscreen ./probes/s7_02_latest_batches */
#include <qtworker.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXB 40
enum { K_PLAIN, K_SIZED, K_INT, K_WARN, K_PROG };
static const char *kn[] = {"plain", "sized", "int", "warn", "progress"};
static atomic_long alive, made;
typedef struct { long magic; long seq; } payload;
static void pfree(void *p) { payload *v = p; if (v->magic != 77) printf("FAIL: bad destroy\n"); v->magic = 0; alive--; free(v); }
static payload *mk(long s) { payload *v = malloc(sizeof *v); v->magic = 77; v->seq = s; alive++; made++; return v; }

static const char *current = "";
static void *cur_run;
static void on_alarm(int s);

typedef struct {
    size_t cap, budget; int rounds; int with_warn;
    atomic_long in_marker, batch_done, saw_last;
    /* per round: the batch plan (seq = round * 1000 + index) */
    int bk[MAXB]; int bn; unsigned seed;
    long got[3 * MAXB]; int ng; int collecting; long round;
    int fails, strict_rounds, loose_rounds; long drop_expected; int finished;
    char why[400];
} run;

static void on_alarm(int s) { (void)s; run *r = cur_run; char m[400]; int n = snprintf(m, sizeof m, "FAIL: hang in %s: in_marker %ld batch_done %ld saw_last %ld strict %d loose %d bn %d collecting %d ng %d\n", current, (long)r->in_marker, (long)r->batch_done, (long)r->saw_last, r->strict_rounds, r->loose_rounds, r->bn, r->collecting, r->ng); write(1, m, n); _exit(1); }
static long seqof(worker_event *ev) {
    switch (ev->type) {
    case WORKER_EV_YIELDED: { uintptr_t u = (uintptr_t)ev->value; return u & 1 ? (long)(u >> 1) : ((payload *)ev->value)->seq; }
    case WORKER_EV_WARNED: return atol(ev->message);
    case WORKER_EV_PROGRESS: return (long)ev->done;
    default: return -1;
    }
}

static void check_round(run *r, long round) {
    /* expected: warns, newest progress, newest yield, in production order */
    int lasty = -1, lastp = -1;
    for (int i = 0; i < r->bn; i++) { if (r->bk[i] <= K_INT) lasty = i; if (r->bk[i] == K_PROG) lastp = i; }
    long exp[3 * MAXB]; int ne = 0;
    for (int i = 0; i < r->bn; i++)
        if (r->bk[i] == K_WARN || i == lasty || i == lastp) exp[ne++] = round * 1000 + 1 + i;
    int ok = ne == r->ng;
    for (int i = 0; ok && i < ne; i++) ok = exp[i] == r->got[i];
    if (!ok && !r->fails++) {
        char *p = r->why; p += sprintf(p, "round %ld batch:", round);
        for (int i = 0; i < r->bn && p - r->why < 250; i++) p += sprintf(p, " %d:%s", i, kn[r->bk[i]]);
        p += sprintf(p, " | want idx:");
        for (int i = 0; i < ne && p - r->why < 320; i++) p += sprintf(p, " %ld", exp[i] % 1000 - 1);
        p += sprintf(p, " | got idx:");
        for (int i = 0; i < r->ng && p - r->why < 390; i++) p += sprintf(p, " %ld", r->got[i] % 1000 - 1);
    }
    int ny = 0; for (int i = 0; i < r->bn; i++) ny += r->bk[i] <= K_INT; r->drop_expected += ny - 1;
}

static void on_event(worker_event *ev, void *ud) {
    run *r = ud;
    if (ev->type == WORKER_EV_FINISHED) { r->finished = 1; return; }
    long s = seqof(ev);
    long round = s / 1000, idx = s % 1000;
    if (ev->type == WORKER_EV_YIELDED && idx == 0) { /* marker */
        if (r->collecting) check_round(r, r->round);
        r->collecting = 0;
        r->in_marker = round;
        /* stall until the worker says its batch is out (bounded: it may be blocked) */
        int t;
        for (t = 0; t < (r->cap == 1 ? 20 : 300) && r->batch_done != round; t++) usleep(1000);
        if (r->batch_done == round) { r->collecting = 1; r->round = round; r->ng = 0; r->strict_rounds++; }
        else r->loose_rounds++;
        return;
    }
    if (r->collecting && r->ng < 3 * MAXB) r->got[r->ng++] = s;
    if (ev->type == WORKER_EV_YIELDED && idx == r->bn) {
        /* the last yield of the batch (always a yield): the round is complete */
        if (r->collecting) { check_round(r, round); r->collecting = 0; }
        r->saw_last = round;
    }
}

static void producer(worker_ctx *ctx, void *arg) {
    run *r = arg;
    for (long round = 1; round <= r->rounds; round++) {
        /* plan (the GUI reads it only after batch_done is set) */
        r->bn = 1 + rand_r(&r->seed) % (MAXB - 1);
        int warns = 0;
        for (int i = 0; i < r->bn; i++) {
            int k = rand_r(&r->seed) % 5;
            if (k >= K_WARN && (!r->with_warn || warns >= 3)) k = rand_r(&r->seed) % 3;
            if (k >= K_WARN) warns++;
            r->bk[i] = k;
        }
        r->bk[r->bn - 1] = rand_r(&r->seed) % 3; /* ends with a yield */
        if (worker_yield(ctx, (void *)(((uintptr_t)(round * 1000)) << 1 | 1), NULL, NULL, NULL)) return;
        for (int t = 0; r->in_marker != round; t++) { if (t > 2000000) { printf("FAIL: marker %ld never shown\n", round); return; } usleep(10); }
        for (int i = 0; i < r->bn; i++) {
            long s = round * 1000 + 1 + i;
            int rc = 0;
            static const size_t sz[] = {0, 1, 300};
            switch (r->bk[i]) {
            case K_PLAIN: rc = worker_yield(ctx, mk(s), pfree, NULL, NULL); break;
            case K_SIZED: rc = worker_yield_sized(ctx, mk(s), sz[s % 3], pfree, NULL, NULL); break;
            case K_INT: rc = worker_yield(ctx, (void *)((uintptr_t)s << 1 | 1), NULL, NULL, NULL); break;
            case K_WARN: rc = worker_warn(ctx, "%ld", s); break;
            case K_PROG: rc = worker_progress(ctx, s, 0, NULL); break;
            }
            if (rc) { printf("FAIL: rc %d\n", rc); return; }
        }
        /* the last yield is idx bn-1 -> seq idx bn (1-based) */
        r->batch_done = round;
        for (int t = 0; r->saw_last != round; t++) { if (t > 2000000) { printf("FAIL: last yield of round %ld never shown\n", round); return; } usleep(10); }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    size_t caps[] = {1, 2, 7, 1024};
    int fails = 0;
    char name[100];
    for (int c = 0; c < 4; c++)
        for (int b = 0; b < 2; b++) {
            static run r;
            memset(&r, 0, sizeof r);
            r.cap = caps[c]; r.budget = b ? 1000 : 0; r.rounds = 150; r.with_warn = caps[c] >= 7; r.seed = 99 + c * 2 + b;
            snprintf(name, sizeof name, "LATEST cap %zu budget %zu", r.cap, r.budget);
            current = name; cur_run = &r;
            worker_options o; worker_options_init(&o);
            o.policy = WORKER_LATEST; o.capacity = r.cap; o.capacity_bytes = r.budget;
            worker *w = worker_create(producer, &r, NULL, &o);
            worker_connect(w, WORKER_EV_YIELDED, on_event, &r, NULL);
            worker_connect(w, WORKER_EV_WARNED, on_event, &r, NULL);
            worker_connect(w, WORKER_EV_PROGRESS, on_event, &r, NULL);
            worker_connect(w, WORKER_EV_FINISHED, on_event, &r, NULL);
            worker_start(w);
            alarm(25);
            while (!r.finished) worker_app_process_events(5);
            alarm(0);
            long dropped = worker_dropped(w);
            if (!r.loose_rounds && dropped != r.drop_expected) { printf("FAIL %s: worker_dropped %ld, yields dropped %ld\n", name, dropped, r.drop_expected); fails++; }
            printf("%s %s: %d strict rounds, %d rounds where the producer could not finish its batch during the stall, dropped %lld%s%s\n",
                   r.fails ? "FAIL" : "ok  ", name, r.strict_rounds, r.loose_rounds, (long long)dropped, r.fails ? "\n     first bad: " : "", r.fails ? r.why : "");
            fails += r.fails != 0;
            worker_unref(w);
        }
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    if (alive) { printf("FAIL: %ld payloads alive of %ld\n", (long)alive, (long)made); fails++; }
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails != 0;
}
