/* promise 2, minimal reproduction from d2_scope_close_modes (worker_scope_close: "one running on another thread right then is waited for first ... User_data is destroyed on this thread"): a scope worker yields once; its YIELDED callback sits 200 ms on the GUI; a foreign thread closes the scope meanwhile. Which thread runs the user_data destroy of that connection, and of a second connection (FINISHED) that is not running? run: s7d/mk.sh d2min_close_ud_thread && QT_QPA_PLATFORM=offscreen s7d/d2min_close_ud_thread-asan */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static pthread_t gui, closer_t;
static worker_scope *sc;
static atomic_int in_cb, closed, fails;
static const char *who(pthread_t t) { return pthread_equal(t, gui) ? "GUI thread" : pthread_equal(t, closer_t) ? "closing thread" : "other thread"; }
typedef struct { const char *name; pthread_t by; int n; int after; } ud;
static void ud_destroy(void *p) { ud *u = p; u->by = pthread_self(); u->n++; u->after = closed; }
static void fn(worker_ctx *ctx, void *a) { (void)a; worker_yield(ctx, NULL, NULL, NULL, NULL); while (!worker_abort_requested(ctx)) usleep(1000); }
static void on_y(worker_event *ev, void *p) { (void)ev; (void)p; in_cb = 1; usleep(200000); in_cb = 0; }
static void on_f(worker_event *ev, void *p) { (void)ev; (void)p; }
static void *closer(void *a) { (void)a; while (!in_cb) usleep(100); usleep(20000); int rc = worker_scope_close(sc, -1); closed = 1; printf("close: %s\n", worker_strerror(rc)); return NULL; }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(20);
    gui = pthread_self();
    worker_app_init(&argc, argv);
    sc = worker_scope_new("p");
    worker_options o; worker_options_init(&o); o.scope = sc;
    worker *w = worker_create(fn, NULL, NULL, &o);
    ud uy = {"YIELDED (running at close)"}, uf = {"FINISHED (not running)"};
    worker_connect(w, WORKER_EV_YIELDED, on_y, &uy, ud_destroy);
    worker_connect(w, WORKER_EV_FINISHED, on_f, &uf, ud_destroy);
    worker_start(w);
    pthread_create(&closer_t, NULL, closer, NULL);
    while (!closed) worker_app_process_events(1);
    pthread_join(closer_t, NULL);
    ud *us[2] = {&uy, &uf};
    for (int i = 0; i < 2; i++) {
        printf("%s: user_data destroyed %d time(s), on the %s, %s the close returned\n", us[i]->name, us[i]->n, who(us[i]->by), us[i]->after ? "after" : "before");
        if (us[i]->n != 1 || !pthread_equal(us[i]->by, closer_t) || us[i]->after) fails++;
    }
    worker_unref(w);
    printf("%s\n", fails ? "FAIL: user_data not destroyed (once) on the closing thread" : "PASS");
    return fails;
}
