/* probe: "in the order the worker produced them" across every kind (yield, yield_sized, warn, progress, emit, worker_stdout line, call_home; PAUSED/RESUMED from a pausing thread) under BLOCK / QUEUE / LATEST, capacities 1 2 3 1000 5000, with and without capacity_bytes, GUI keeping up or stalling: each event carries a sequence number, the GUI checks they rise (no gaps but LATEST's dropped yields/progress), nothing arrives between PAUSED and RESUMED, every payload destroyed once; run: ./build.sh probes/10_order_matrix.c && QT_QPA_PLATFORM=offscreen probes/10_order_matrix */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 700
enum { K_YIELD, K_SIZED, K_WARN, K_PROGRESS, K_EMIT, K_OUT, K_HOME, K_KINDS };
static const char *kname[] = {"yield", "sized", "warn", "progress", "emit", "stdout", "call_home"};

static atomic_long alive;
static void val_free(void *p) { alive--; free(p); }
static long *val(long s) { long *p = malloc(sizeof *p); *p = s; alive++; return p; }

typedef struct run {
    worker_policy policy; size_t cap, bytes; int stall;
    long last; int last_kind; long seen; int broken; char why[200];
    int paused; atomic_int finished;
    worker *w;
} run;

static int kind_of(long s) { return s % 41 == 40 ? K_HOME : (int)((s * 7 + s / 3) % (K_KINDS - 1)); }

static void see(run *r, long s, int kind) {
    if (r->broken) return;
    int dropable = r->policy == WORKER_LATEST;
    if (r->paused) {
        r->broken = 1;
        snprintf(r->why, sizeof r->why, "%s %ld delivered between PAUSED and RESUMED", kname[kind], s);
    } else if (s <= r->last || (!dropable && s != r->last + 1)) {
        r->broken = 1;
        snprintf(r->why, sizeof r->why, "%s %ld after %s %ld", kname[kind], s,
                 r->last_kind >= 0 ? kname[r->last_kind] : "start", r->last);
    } else if (dropable && s != r->last + 1) {
        /* only yields and progress may have been dropped in between */
        for (long m = r->last + 1; m < s; m++) {
            int k = kind_of(m);
            if (k != K_YIELD && k != K_SIZED && k != K_PROGRESS) {
                r->broken = 1;
                snprintf(r->why, sizeof r->why, "%s %ld lost (never dropped by LATEST)", kname[k], m);
                break;
            }
        }
    }
    r->last = s; r->last_kind = kind; r->seen++;
    if (r->stall && s % 53 == 0) usleep(300);
}

static void on_event(worker_event *ev, void *ud) {
    run *r = ud;
    switch (ev->type) {
    case WORKER_EV_YIELDED: see(r, *(long *)ev->value, K_YIELD); break; /* sized or not: same check */
    case WORKER_EV_WARNED: see(r, atol(ev->message), K_WARN); break;
    case WORKER_EV_PROGRESS: see(r, (long)ev->done, K_PROGRESS); break;
    case WORKER_EV_CUSTOM: see(r, *(long *)ev->value, K_EMIT); break;
    case WORKER_EV_OUTPUT: see(r, atol(ev->message), K_OUT); break;
    case WORKER_EV_PAUSED:
        if (r->paused && !r->broken) { r->broken = 1; snprintf(r->why, sizeof r->why, "PAUSED twice"); }
        r->paused = 1; break;
    case WORKER_EV_RESUMED:
        if (!r->paused && !r->broken) { r->broken = 1; snprintf(r->why, sizeof r->why, "RESUMED without PAUSED after %ld", r->last); }
        r->paused = 0; break;
    case WORKER_EV_FINISHED: r->finished = 1; break;
    default: break;
    }
}

typedef struct { run *r; long s; } home_arg;
static void *home(void *a) { home_arg *h = a; see(h->r, h->s, K_HOME); return NULL; }

static void producer(worker_ctx *ctx, void *arg) {
    run *r = arg;
    FILE *out = worker_stdout(ctx);
    for (long s = 0; s < N; s++) {
        int rc = 0;
        switch (kind_of(s)) {
        case K_YIELD: rc = worker_yield(ctx, val(s), val_free, NULL, NULL); break;
        case K_SIZED: rc = worker_yield_sized(ctx, val(s), 16, val_free, NULL, NULL); break;
        case K_WARN: rc = worker_warn(ctx, "%ld", s); break;
        case K_PROGRESS: rc = worker_progress(ctx, s, N, NULL); break;
        case K_EMIT: rc = worker_emit(ctx, "e", val(s), val_free); break;
        case K_OUT: fprintf(out, "%ld\n", s); break;
        case K_HOME: { home_arg h = {r, s}; void *res; rc = worker_call_home(ctx, home, &h, &res, -1); break; }
        }
        if (rc < 0) { worker_fail(ctx, rc, "seq %ld: %s", s, worker_strerror(rc)); return; }
    }
}

static atomic_int pauser_stop;
static void *pauser(void *a) {
    run *r = a;
    unsigned seed = 7;
    while (!pauser_stop && !r->finished) {
        usleep(200 + rand_r(&seed) % 800);
        worker_toggle_pause(r->w);
    }
    worker_resume(r->w);
    return NULL;
}

int main(int argc, char **argv) {
    alarm(240);
    worker_app_init(&argc, argv);
    size_t caps[] = {1, 2, 3, 1000, 5000};
    int broken = 0, runs = 0;
    for (int p = 0; p < 3; p++)
        for (int c = 0; c < 5; c++)
            for (int b = 0; b < 2; b++)
                for (int stall = 0; stall < 2; stall++)
                    for (int pause = 0; pause < 2; pause++) {
                        if (p == WORKER_QUEUE && b) continue;
                        run r = {0};
                        r.policy = p; r.cap = caps[c]; r.bytes = b ? 40 : 0; r.stall = stall;
                        r.last = -1; r.last_kind = -1;
                        worker_options o;
                        worker_options_init(&o);
                        o.policy = p; o.capacity = r.cap; o.capacity_bytes = r.bytes;
                        r.w = worker_create(producer, &r, NULL, &o);
                        worker_event_type ts[] = {WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_PROGRESS,
                                                  WORKER_EV_CUSTOM, WORKER_EV_OUTPUT, WORKER_EV_PAUSED,
                                                  WORKER_EV_RESUMED, WORKER_EV_FINISHED};
                        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
                            worker_connect(r.w, ts[i], on_event, &r, NULL);
                        pthread_t t;
                        pauser_stop = 0;
                        worker_start(r.w);
                        if (pause) pthread_create(&t, NULL, pauser, &r);
                        int loops = 0;
                        while (!r.finished) {
                            if (stall && ++loops % 3 == 0) usleep(2000);
                            worker_app_process_events(5);
                        }
                        if (pause) { pauser_stop = 1; pthread_join(t, NULL); }
                        for (int i = 0; i < 3; i++) worker_app_process_events(1);
                        int full = p != WORKER_LATEST && r.seen != N;
                        if (!r.broken && (r.last != N - 1 || full)) {
                            r.broken = 1;
                            snprintf(r.why, sizeof r.why, "saw %ld events, last %ld", r.seen, r.last);
                        }
                        worker_unref(r.w);
                        runs++;
                        if (r.broken) {
                            broken++;
                            printf("FAIL policy %d cap %zu bytes %zu stall %d pause %d: %s\n", p, r.cap, r.bytes,
                                   stall, pause, r.why);
                        }
                    }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (alive != 0) { printf("FAIL: %ld payloads not destroyed\n", (long)alive); broken++; }
    printf("%s: %d runs, %d broken\n", broken ? "FAIL" : "PASS", runs, broken);
    return broken != 0;
}
