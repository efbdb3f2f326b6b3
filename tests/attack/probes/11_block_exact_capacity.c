/* probe: "BLOCK — at `capacity` undelivered entries the producer waits", capacity_bytes likewise, and worker_backlog exact while the GUI stalls: for every kind (yield, yield_sized, warn, progress, emit, worker_stdout line, a mix), capacities 1 2 3 1000 5000, BLOCK and LATEST (warn/emit/output wait as BLOCK there), byte budgets 100 with 10/30/100-byte frames: the producer completes exactly `capacity` (or floor(budget/size)) calls, backlog says as much, then everything is delivered and destroyed once; run: ./build.sh probes/11_block_exact_capacity.c && QT_QPA_PLATFORM=offscreen probes/11_block_exact_capacity */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { K_YIELD, K_SIZED, K_WARN, K_PROGRESS, K_EMIT, K_OUT, K_MIX, K_KINDS };
static const char *kname[] = {"yield", "sized", "warn", "progress", "emit", "stdout", "mix"};
static atomic_long alive, done;
static void val_free(void *p) { alive--; free(p); }
static void *val(void) { alive++; return malloc(8); }

typedef struct { int kind; size_t size; } cfg;

static void producer(worker_ctx *ctx, void *arg) {
    cfg *c = arg;
    FILE *out = worker_stdout(ctx);
    for (long s = 0;; s++) {
        int k = c->kind == K_MIX ? (int)(s % K_MIX) : c->kind;
        int rc = 0;
        switch (k) {
        case K_YIELD: rc = worker_yield(ctx, val(), val_free, NULL, NULL); break;
        case K_SIZED: rc = worker_yield_sized(ctx, val(), c->size, val_free, NULL, NULL); break;
        case K_WARN: rc = worker_warn(ctx, "w%ld", s); break;
        case K_PROGRESS: rc = worker_progress(ctx, s, 0, NULL); break;
        case K_EMIT: rc = worker_emit(ctx, "e", val(), val_free); break;
        case K_OUT: fprintf(out, "line %ld\n", s); break;
        }
        if (rc == WORKER_ABORTED || worker_abort_requested(ctx)) return;
        done++;
    }
}

static atomic_int finished;
static void on_finished(worker_event *ev, void *ud) { (void)ev; (void)ud; finished = 1; }

/* Waits (GUI stalled) until the producer stops advancing. */
static long settle(void) {
    long prev = -1, same = 0;
    for (;;) {
        usleep(10000);
        long d = done;
        if (d == prev) { if (++same == 30) return d; } else same = 0, prev = d;
    }
}

static int one(worker_policy pol, size_t cap, size_t budget, int kind, size_t size) {
    done = 0; finished = 0;
    cfg c = {kind, size};
    worker_options o;
    worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = budget;
    worker *w = worker_create(producer, &c, NULL, &o);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, NULL, NULL);
    int latest_drops = pol == WORKER_LATEST && (kind == K_YIELD || kind == K_SIZED || kind == K_PROGRESS);
    worker_start(w);
    long d = latest_drops ? (usleep(20000), 0) : settle();
    size_t entries = 0, bytes = 0;
    worker_backlog(w, &entries, &bytes);
    long want = (long)cap;
    if (budget && kind == K_SIZED) {
        long by_bytes = size > budget ? 1 : (long)(budget / size);
        if (by_bytes < want) want = by_bytes;
    }
    int bad = 0;
    if (pol == WORKER_LATEST && kind == K_MIX) {
        bad = entries != (size_t)want; /* coalesced yields let more calls complete */
    } else if (!latest_drops) {
        /* an oversized frame is accepted and its yield waits for delivery: done stays 0 */
        long want_done = budget && kind == K_SIZED && size > budget ? 0 : want;
        bad = d != want_done || entries != (size_t)want ||
              (kind == K_SIZED && bytes != (size_t)want * size) || (kind != K_SIZED && bytes != 0);
    }
    if (bad)
        printf("FAIL %s cap %zu budget %zu size %zu %s: %ld calls completed, backlog %zu entries %zu bytes (want %ld)\n",
               pol == WORKER_BLOCK ? "BLOCK" : "LATEST", cap, budget, size, kname[kind], d, entries, bytes, want);
    worker_quit(w);
    while (!finished) worker_app_process_events(5);
    worker_backlog(w, &entries, &bytes);
    if (entries || bytes) { printf("FAIL backlog %zu/%zu after FINISHED\n", entries, bytes); bad = 1; }
    worker_unref(w);
    return bad;
}

int main(int argc, char **argv) {
    alarm(600);
    setvbuf(stdout, NULL, _IONBF, 0);
    worker_app_init(&argc, argv);
    size_t caps[] = {1, 2, 3, 1000, 5000};
    int broken = 0, runs = 0;
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 5; c++)
            for (int k = 0; k < K_KINDS; k++, runs++)
                broken += one(p ? WORKER_LATEST : WORKER_BLOCK, caps[c], 0, k, 0);
    size_t sizes[] = {10, 30, 100, 150};
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 5; c++)
            for (int s = 0; s < 4; s++, runs++)
                broken += one(p ? WORKER_LATEST : WORKER_BLOCK, caps[c], 100, K_SIZED, sizes[s]);
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (alive != 0) { printf("FAIL: %ld payloads not destroyed\n", (long)alive); broken++; }
    printf("%s: %d runs, %d broken\n", broken ? "FAIL" : "PASS", runs, broken);
    return broken != 0;
}
