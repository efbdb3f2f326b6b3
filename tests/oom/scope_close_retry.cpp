// attack (minimal): worker_scope_close "ENOMEM: nothing was done." — a plugin retries worker_scope_close(s, 2000) on the same scope after it returned ENOMEM; each try runs with every allocation after the first n failing on the calling thread (n = 0, 1, 2, ...); after each ENOMEM the scope must be untouched (3 workers running, user_data not destroyed, callbacks run) and a later close must succeed and quit the workers. run: cd /work/wt-attack && tests/attack/build.sh s8d/05_oom_scope_close_retry.cpp build-asan && QT_QPA_PLATFORM=offscreen timeout 60 tests/attack/s8d/05_oom_scope_close_retry-build-asan
#include <qtworker.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <time.h>
#include "oom_inject.h"
static double now() { timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void pump_ms(int ms) { double t0 = now(); while ((now() - t0) * 1000 < ms) worker_app_process_events(2); }
static std::atomic<int> ud_freed[3];
static void ud_destroy(void *p) { ud_freed[(long)(intptr_t)p - 1]++; }
static std::atomic<long> yields_seen;
static void on_y(worker_event *, void *) { yields_seen++; }
static void fn(worker_ctx *ctx, void *) { while (worker_yield(ctx, nullptr, nullptr, nullptr, nullptr) != WORKER_ABORTED) usleep(1000); }
int main(int, char **argv) {
    alarm(55); setvbuf(stdout, nullptr, _IOLBF, 0);
    int one = 1; char *av[] = {argv[0], nullptr}; worker_app_init(&one, av);
    int fails = 0;
    worker_scope *s = worker_scope_new("sc");
    worker_options o; worker_options_init(&o); o.scope = s;
    worker *ws[3];
    for (int k = 0; k < 3; k++) {
        ws[k] = worker_create(fn, nullptr, nullptr, &o);
        worker_connect(ws[k], WORKER_EV_YIELDED, on_y, (void *)(intptr_t)(k + 1), ud_destroy);
        worker_start(ws[k]);
    }
    pump_ms(30);
    for (int n = 0; n < 20; n++) {
        arm(n); int rc = worker_scope_close(s, 2000); long refused = disarm();
        int running = 0, freed = 0; for (int k = 0; k < 3; k++) { running += worker_is_running(ws[k]); freed += ud_freed[k]; }
        long y0 = yields_seen; pump_ms(30); long y1 = yields_seen;
        int bad = rc == WORKER_ENOMEM ? (running != 3 || freed != 0) : rc == 0 ? (running != 0 || freed != 3) : 1;
        printf("try n=%d: close=%d (%s) refused=%ld | running %d/3, user_data destroyed %d/3, callbacks run: %s%s\n",
               n, rc, worker_strerror(rc), refused, running, freed, y1 > y0 ? "yes" : "no", bad ? "  <-- FAIL" : "");
        fails += bad;
        if (rc != WORKER_ENOMEM) break;
    }
    int running = 0; for (int k = 0; k < 3; k++) running += worker_is_running(ws[k]);
    if (running) { printf("workers still running: %d (quitting them by hand)\n", running); for (int k = 0; k < 3; k++) worker_quit(ws[k]); printf("await_all: %d\n", worker_await_all(2000)); }
    pump_ms(20);
    for (int k = 0; k < 3; k++) worker_unref(ws[k]);
    pump_ms(20);
    printf(fails ? "RESULT: BROKEN (%d)\n" : "RESULT: held\n", fails);
    return fails != 0;
}
