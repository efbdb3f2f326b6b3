// attack: worker_stdout "Output is never dropped" / "a last line without a newline arrives when the function returns" + every started worker ends with FINISHED, when allocations fail on the worker thread: every allocation after the first n fails during one fprintf+fflush of a line to worker_stdout(); the worker must still end (FINISHED delivered) and the line (if fprintf reported success) arrive. 
#include <qtworker.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <time.h>
#include "oom_inject.h"
#include <execinfo.h>
static volatile int escaped; static char what_buf[128];
static double now() { timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static long N; static int release_mode; static volatile double t_release;
static int wr, fl; static long refused; static volatile int fn_done;
static void fn(worker_ctx *ctx, void *) {
    FILE *o = worker_stdout(ctx);
    if (release_mode) { t_is_worker = 1; long r0 = g_worker_refused; g_fail_workers = 1; wr = fprintf(o, "line %ld\n", N); fl = fflush(o); refused = g_worker_refused - r0; t_is_worker = 0; }
    else {
        arm(N);
        try { wr = fprintf(o, "line %ld\n", N); fl = fflush(o); }
        catch (std::exception &e) { refused = disarm(); escaped = 1; snprintf(what_buf, sizeof what_buf, "%s", e.what()); }
        catch (...) { refused = disarm(); escaped = 2; }
        refused = disarm();
    }
    fn_done = 1;
}
static volatile int fin; static int lines;
static void on_fin(worker_event *, void *) { fin = 1; }
static void on_out(worker_event *, void *) { lines++; }
int main(int argc, char **argv) {
    { void *bt[4]; backtrace(bt, 4); } /* load libgcc_s for glibc now, not under injection */
    alarm(55); setvbuf(stdout, nullptr, _IOLBF, 0);
    long n0 = 0, n1 = 8; if (argc > 1 && !strcmp(argv[1], "release")) { release_mode = 1; n0 = n1 = 0; } else if (argc > 2) { n0 = atol(argv[1]); n1 = atol(argv[2]); }
    int one = 1; char *av[] = {argv[0], nullptr}; worker_app_init(&one, av);
    int fails = 0;
    for (N = n0; N <= n1; N++) {
        fin = 0; lines = 0; fn_done = 0;
        worker *w = worker_create(fn, nullptr, nullptr, nullptr);
        worker_connect(w, WORKER_EV_FINISHED, on_fin, nullptr, nullptr);
        worker_connect(w, WORKER_EV_OUTPUT, on_out, nullptr, nullptr);
        worker_start(w);
        double t0 = now();
        while (!fin && now() - t0 < 4) { worker_app_process_events(5); if (release_mode && g_fail_workers && now() - t0 > 0.5) { g_fail_workers = 0; printf("  (memory released on worker threads after %.2f s)\n", now() - t0); } }
        bool bad = !fin || (wr > 0 && fl == 0 && lines != 1);
        if (bad) fails++;
        if (escaped) { printf("  a C++ exception (%s) left fprintf(worker_stdout(ctx)) into the worker function\n", escaped == 1 ? what_buf : "non-std"); fails++; escaped = 0; }
        printf("n=%ld fprintf=%d fflush=%d refused=%ld fn_done=%d FINISHED=%d lines=%d running=%d%s\n", N, wr, fl, refused, fn_done, fin, lines, worker_is_running(w), bad ? "  <-- FAIL" : "");
        if (!fin) { printf("(giving up on this worker; exiting)\n"); fflush(stdout); _exit(1); }
        worker_unref(w);
    }
    printf(fails ? "RESULT: BROKEN (%d)\n" : "RESULT: held\n", fails);
    return fails != 0;
}
