/* BREAKS "no deadlock at exit / values handed over reach only the worker's events": returning from main while a worker waits at capacity in fprintf(worker_stdout) hangs: exit()'s stdio flush re-writes the worker's FILE on the main thread, which then waits for room only it could make; run: ./build.sh 03_exit_flushes_worker_stdout.c && QT_QPA_PLATFORM=offscreen ./03_exit_flushes_worker_stdout */
#include <qtworker.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "BROKEN: exit hangs in the flush of a worker's stdout\n";
    write(1, m, sizeof m - 1);
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
    worker_start(w);
    while (worker_live_count() == 0) usleep(1000);
    usleep(100000);  /* the GUI does not pump: the worker waits at capacity inside a line */
    alarm(5);
    printf("returning from main with the worker running\n");
    return 0;  /* exit() flushes every FILE, the worker's too */
}
