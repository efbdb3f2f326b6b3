/* From an outside read of the header: returning from main while a worker
   waits at capacity inside fprintf(worker_stdout(ctx)) hung the process:
   exit()'s unlocked flush of every FILE wrote the worker's stream again, on
   the main (home) thread, which then waited for room only its own event
   loop could make. Exit code 0: the process ended; 1: it hung. */
#define _DEFAULT_SOURCE
#include <qtworker.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "HANG: exit() flushing a worker's stdout waits for room\n";
    (void)!write(2, m, sizeof m - 1);
    _exit(1);
}

static void chatty(worker_ctx *ctx, void *arg) {
    (void)arg;
    FILE *out = worker_stdout(ctx);
    for (long i = 0; !worker_abort_requested(ctx); i++) fprintf(out, "line %ld\n", i);
}

int main(int argc, char **argv) {
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.capacity = 1;
    worker *w = worker_create(chatty, NULL, NULL, &o);
    if (worker_start(w) != WORKER_OK) return 2;
    while (worker_live_count() == 0) usleep(1000);
    usleep(100000);  /* the GUI does not pump: the worker waits at capacity in a line */
    alarm(10);
    return 0;  /* exit() flushes every FILE, the worker's too */
}
