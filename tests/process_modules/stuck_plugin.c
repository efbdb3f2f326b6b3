/* Demo plugin that never checks for quit: it yields one preview so the viewer
   shows it is running, then "computes" forever (a loop standing for a hung
   library call) without calling worker_yield or worker_abort_requested.
   A thread worker running it could never be stopped; as a process worker,
   worker_quit() kills it after the grace period (WARNED "... killed", then
   ABORTED and FINISHED).

   symbol: stubborn_plugin_run; arg: unused. */
#define _POSIX_C_SOURCE 200809L
#include <qtworker.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

void stubborn_plugin_run(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_bytes *preview = worker_bytes_copy("running", strlen("running"));
    worker_yield(ctx, preview, worker_bytes_free, NULL, NULL);
    fprintf(stderr, "stubborn: computing forever, never checking for quit\n");
    for (;;) {
        struct timespec t = {0, 10 * 1000000L};
        nanosleep(&t, NULL);
    }
}
