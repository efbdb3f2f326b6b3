/* probe: connect/disconnect storm from 2 threads during delivery; scope close from a thread mid-storm; user_data destroyed exactly once; no callback after disconnect returns (for non-running). */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static atomic_long made, destroyed, calls_after;
typedef struct { atomic_int dead; } ud_t;
static void ud_free(void *p) { ud_t *u = p; if (atomic_exchange(&u->dead, 1)) { printf("BROKEN: double destroy\n"); } destroyed++; /* leak on purpose to detect use */ }
static void cb(worker_event *ev, void *p) { (void)ev; ud_t *u = p; if (atomic_load(&u->dead)) calls_after++; }
static void fn(worker_ctx *ctx, void *arg) { (void)arg; for (long i = 0; ; i++) { if (worker_yield(ctx, NULL, NULL, NULL, NULL) == WORKER_ABORTED) return; } }
static worker *w; static worker_scope *scope; static atomic_int stop;
static void *storm(void *a) {
    (void)a;
    while (!stop) {
        ud_t *u = calloc(1, sizeof *u); made++;
        long id = worker_connect(w, WORKER_EV_YIELDED, cb, u, ud_free);
        if (id > 0) worker_disconnect(w, id);
    }
    return NULL;
}
static void *closer(void *a) { (void)a; usleep(1500000); int rc = worker_scope_close(scope, -1); printf("close %d\n", rc); stop = 1; return NULL; }
int main(int argc, char **argv) {
    alarm(50);
    worker_app_init(&argc, argv);
    scope = worker_scope_new("s");
    worker_options o; worker_options_init(&o); o.scope = scope; o.capacity = 64;
    w = worker_create(fn, NULL, NULL, &o);
    worker_start(w);
    pthread_t t1, t2, t3;
    pthread_create(&t1, NULL, storm, NULL); pthread_create(&t2, NULL, storm, NULL); pthread_create(&t3, NULL, closer, NULL);
    while (!stop) worker_app_process_events(1);
    pthread_join(t1, NULL); pthread_join(t2, NULL); pthread_join(t3, NULL);
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    worker_unref(w);
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    printf("made %ld destroyed %ld calls after destroy %ld live %d\n", (long)made, (long)destroyed, (long)calls_after, worker_live_count());
    return 0;
}
