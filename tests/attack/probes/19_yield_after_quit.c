/* probe: worker_quit "Yields (and progress) not yet delivered are destroyed instead of delivered; warnings and custom events still arrive": a quit on the GUI thread (from inside a YIELDED callback, from a WARNED callback, between two event-loop passes) while a backlog of plain (fast path) or sized yields is queued: no YIELDED/PROGRESS callback may run after worker_quit returns, every queued warning and custom event still arrives in order, payloads destroyed once; run: ./build.sh probes/19_yield_after_quit.c && QT_QPA_PLATFORM=offscreen probes/19_yield_after_quit */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long alive;
static void val_free(void *p) { alive--; free(p); }
static long *val(long s) { long *p = malloc(sizeof *p); *p = s; alive++; return p; }
static int fails;

typedef struct { int kind; long n; } cfg;
/* kind 0: plain yields; 1: sized yields; 2: yields with a warning every 10; 3: progress + yields */
static void producer(worker_ctx *ctx, void *arg) {
    cfg *c = arg;
    for (long i = 0; i < c->n; i++) {
        int rc;
        if (c->kind == 2 && i % 10 == 5) worker_warn(ctx, "%ld", i);
        if (c->kind == 2 && i % 10 == 7) worker_emit(ctx, "e", val(i), val_free);
        if (c->kind == 3) worker_progress(ctx, i, c->n, NULL);
        rc = c->kind == 1 ? worker_yield_sized(ctx, val(i), 1, val_free, NULL, NULL)
                          : worker_yield(ctx, val(i), val_free, NULL, NULL);
        if (rc == WORKER_ABORTED) return;
    }
}

static int quit_refused, quitted, after_quit, quit_at, where, warns_after, customs_after;
static long last_warn = -1, last_custom = -1;
static worker *w;
static void on_yield(worker_event *ev, void *ud) {
    (void)ud;
    if (quitted) { if (!after_quit++) printf("  YIELDED %ld after worker_quit returned\n", *(long *)ev->value); return; }
    if (where == 0 && (quit_at < 0 || *(long *)ev->value == quit_at)) { int qrc = worker_quit(w); quitted = qrc == WORKER_OK; quit_refused += qrc != WORKER_OK; }
}
static void on_progress(worker_event *ev, void *ud) {
    (void)ud;
    if (quitted && !after_quit++) printf("  PROGRESS %lld after worker_quit returned\n", ev->done);
}
static void on_warn(worker_event *ev, void *ud) {
    (void)ud;
    long s = atol(ev->message);
    if (s <= last_warn) { printf("  warning %ld after %ld\n", s, last_warn); fails++; }
    last_warn = s;
    if (quitted) warns_after++;
    if (where == 1 && s >= quit_at && !quitted) { int qrc = worker_quit(w); quitted = qrc == WORKER_OK; quit_refused += qrc != WORKER_OK; }
}
static void on_custom(worker_event *ev, void *ud) {
    (void)ud;
    long s = *(long *)ev->value;
    if (s <= last_custom) { printf("  custom %ld after %ld\n", s, last_custom); fails++; }
    last_custom = s;
    if (quitted) customs_after++;
}
static int finished;
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; finished = 1; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(120);
    worker_app_init(&argc, argv);
    static const char *wn[] = {"inside a YIELDED callback", "inside a WARNED callback", "between event-loop passes"};
    size_t caps[] = {1, 3, 1000, 5000};
    for (int kind = 0; kind < 4; kind++)
        for (where = 0; where < 3; where++)
            for (int c = 0; c < 4; c++)
                for (int pol = 0; pol < 3; pol++) {
                    if (where == 1 && kind != 2) continue;
                    cfg cf = {kind, 300000};
                    worker_options o;
                    worker_options_init(&o);
                    o.policy = pol; o.capacity = caps[c];
                    w = worker_create(producer, &cf, NULL, &o);
                    worker_connect(w, WORKER_EV_YIELDED, on_yield, NULL, NULL);
                    worker_connect(w, WORKER_EV_PROGRESS, on_progress, NULL, NULL);
                    worker_connect(w, WORKER_EV_WARNED, on_warn, NULL, NULL);
                    worker_connect(w, WORKER_EV_CUSTOM, on_custom, NULL, NULL);
                    worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
                    quitted = after_quit = warns_after = customs_after = finished = 0;
                    last_warn = last_custom = -1;
                    quit_at = pol == WORKER_LATEST && where == 0 ? -1 : 40;
                    worker_start(w);
                    usleep(5000);  /* a backlog builds up */
                    if (where == 2) {
                        for (int i = 0; i < 3; i++) worker_app_process_events(0);
                        int qrc = worker_quit(w);
                        quitted = qrc == WORKER_OK; quit_refused += qrc != WORKER_OK;
                    }
                    while (!finished) worker_app_process_events(5);
                    if (after_quit) {
                        fails++;
                        printf("FAIL kind %d quit %s cap %zu policy %d: %d yields/progress delivered after worker_quit returned\n",
                               kind, wn[where], caps[c], pol, after_quit);
                    }
                    worker_unref(w);
                }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); fails++; }
    printf("%s (%d quits refused with ESTATE: the function had already returned, its backlog is then delivered)\n",
           fails ? "FAIL" : "PASS", quit_refused);
    return fails != 0;
}
