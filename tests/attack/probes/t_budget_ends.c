/* probe: byte accounting returns to 0 after every kind of end (quit, fail, timeout_ms, scope close, unref mid-run, return) under BLOCK and LATEST, frames pending and a frame mid-delivery; run: ./build.sh probes/t_budget_ends.c && QT_QPA_PLATFORM=offscreen probes/t_budget_ends */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int made, freed, bad;
static void pf(void *p) { free(p); freed++; }
static void *pn(void) { made++; return malloc(8); }
enum { END_RETURN, END_QUIT, END_FAIL, END_TIMEOUT, END_SCOPE, END_UNREF, END_N };
static const char *names[] = {"return", "quit", "fail", "timeout", "scope", "unref"};
static atomic_int producing;
static void frames(worker_ctx *ctx, void *arg) {
    int how = (int)(long)arg;
    producing = 1;
    for (int i = 0; i < 200; i++) {
        int rc = worker_yield_sized(ctx, pn(), 300 + (i % 7) * 100, pf, NULL, NULL);
        if (rc == WORKER_ABORTED) return;
        if (how == END_FAIL && i == 50) { worker_fail(ctx, 3, "x"); return; }
    }
    if (how == END_TIMEOUT || how == END_QUIT || how == END_SCOPE || how == END_UNREF)
        while (!worker_abort_requested(ctx)) usleep(1000);
}
static void slow(worker_event *ev, void *ud) { (void)ev; (void)ud; usleep(200); }
static void quiet(worker_event *ev, void *ud) { (void)ev; (void)ud; }
int main(int argc, char **argv) {
    alarm(50);
    worker_app_init(&argc, argv);
    worker_set_error_handler(quiet, NULL);
    for (int pol = 0; pol < 2; pol++)
        for (int how = 0; how < END_N; how++)
            for (int stall = 0; stall < 2; stall++) {
                worker_scope *s = worker_scope_new("s");
                worker_options o;
                worker_options_init(&o);
                o.policy = pol ? WORKER_LATEST : WORKER_BLOCK;
                o.capacity_bytes = 2000;
                o.scope = s;
                if (how == END_TIMEOUT) o.timeout_ms = 30;
                worker *w = worker_create(frames, (void *)(long)how, NULL, &o);
                worker_connect(w, WORKER_EV_YIELDED, slow, NULL, NULL);
                producing = 0;
                worker_start(w);
                while (!producing) usleep(100);
                if (!stall) for (int i = 0; i < 5; i++) worker_app_process_events(2);
                usleep(5000);
                worker *keep = worker_ref(w);  /* to sample after the owner's unref */
                if (how == END_QUIT) worker_quit(w);
                if (how == END_SCOPE) { worker_scope_close(s, 5000); s = NULL; }
                if (how == END_UNREF) { worker_unref(w); }
                int spins = 0;
                while (worker_is_running(keep) && spins++ < 4000) worker_app_process_events(2);
                for (int i = 0; i < 50; i++) worker_app_process_events(1);
                size_t e = 0, b = 0;
                int rc = worker_backlog(keep, &e, &b);
                if (rc == WORKER_OK && (b || e)) {
                    printf("BROKEN: %s %s stall=%d: %zu entries %zu bytes left after the end\n",
                           pol ? "LATEST" : "BLOCK", names[how], stall, e, b);
                    bad++;
                }
                if (how != END_UNREF) worker_unref(w);
                worker_unref(keep);
                if (s) worker_scope_close(s, 5000);
                for (int i = 0; i < 20; i++) worker_app_process_events(1);
            }
    for (int i = 0; i < 100 && made != freed; i++) worker_app_process_events(5);
    if (made != freed) { printf("BROKEN: made %d freed %d\n", (int)made, (int)freed); bad++; }
    printf("%s\n", bad ? "BROKEN" : "held: bytes back to 0 after every end");
    return bad != 0;
}
