/* BREAKS "no deadlock in worker_scope_close": closed from another thread while a member's callback (GUI) awaits a sibling member: the close waits for that callback before it has quit the sibling, the callback waits for the sibling; run: ./build.sh 05_scope_close_callback_awaits_sibling.c && QT_QPA_PLATFORM=offscreen ./05_scope_close_callback_awaits_sibling */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static worker_scope *scope;
static worker *saver[3];
static atomic_int in_callback, closed;

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "BROKEN: worker_scope_close and a callback awaiting a sibling deadlock\n";
    write(1, m, sizeof m - 1);
    _exit(1);
}
static void until_quit(worker_ctx *ctx, void *arg) { (void)arg; while (!worker_abort_requested(ctx)) usleep(1000); }
static void one_value(worker_ctx *ctx, void *arg) { (void)arg; worker_yield(ctx, NULL, NULL, NULL, NULL); }
/* "the loader delivered: wait for the savers of this plugin to end" */
static void on_loaded(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    in_callback = 1;
    for (int i = 0; i < 3; i++) worker_await(saver[i], -1);
}
static void *dock_closes(void *arg) {
    (void)arg;
    while (!in_callback) usleep(1000);
    usleep(20000);
    worker_scope_close(scope, -1);
    closed = 1;
    return NULL;
}
int main(int argc, char **argv) {
    signal(SIGALRM, on_alarm);
    alarm(10);
    worker_app_init(&argc, argv);
    scope = worker_scope_new("plugin");
    worker_options o;
    worker_options_init(&o);
    o.scope = scope;
    for (int i = 0; i < 3; i++) { saver[i] = worker_create(until_quit, NULL, NULL, &o); worker_start(saver[i]); }
    worker *loader = worker_create(one_value, NULL, NULL, &o);
    worker_connect(loader, WORKER_EV_YIELDED, on_loaded, NULL, NULL);
    worker_start(loader);
    pthread_t t;
    pthread_create(&t, NULL, dock_closes, NULL);
    while (!closed) worker_app_process_events(5);
    pthread_join(t, NULL);
    for (int i = 0; i < 3; i++) worker_unref(saver[i]);
    worker_unref(loader);
    printf("held: the close returned\n");
    return 0;
}
