/* BREAKS "worker_await on the home thread does not deadlock (... the earlier members of its serial group)": a call_home fn awaits the next member of its worker's group -> hangs forever; run: ./build.sh 02_call_home_fn_awaits_group_member.c && QT_QPA_PLATFORM=offscreen ./02_call_home_fn_awaits_group_member */
#include <qtworker.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static worker *second;
static int await_rc = 99;

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "BROKEN: deadlock (the call_home fn waits for B, B for A, A for the fn)\n";
    write(1, m, sizeof m - 1);
    _exit(1);
}

/* On the GUI thread: "wait until the next job in my queue is done". */
static void *wait_for_next(void *arg) {
    (void)arg;
    await_rc = worker_await(second, -1);
    return NULL;
}

static void first_fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    void *r;
    worker_call_home(ctx, wait_for_next, NULL, &r, -1);
}
static void second_fn(worker_ctx *ctx, void *arg) { (void)ctx; (void)arg; }

int main(int argc, char **argv) {
    signal(SIGALRM, on_alarm);
    alarm(10);
    worker_app_init(&argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.group = "io";
    worker *first = worker_create(first_fn, NULL, NULL, &o);
    second = worker_create(second_fn, NULL, NULL, &o);
    worker_start(first);
    worker_start(second);  /* waits for first: same serial group */
    while (worker_is_running(first) || worker_is_running(second)) worker_app_process_events(10);
    printf("held: await returned %d (%s)\n", await_rc, worker_strerror(await_rc));
    worker_app_process_events(10);
    worker_unref(first);
    worker_unref(second);
    return 0;
}
