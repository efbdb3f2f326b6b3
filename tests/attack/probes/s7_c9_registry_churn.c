/* promise 2 (handles under churn): 3 threads create/connect/start/free workers and scopes in tight loops (handle registry grows, shrinks, addresses reused) while 2 threads call every handle-taking function on a stable live worker (must keep working), on garbage (freed handles of the churners, stack/heap pointers: must return errors) and worker_list/worker_live_count; every arg/user_data destroyed exactly once, no crash, no race (run the tsan build too). run: ./build.sh probes/s7_c9_registry_churn.c && QT_QPA_PLATFORM=offscreen probes/s7_c9_registry_churn */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *current = "start";
static void on_alarm(int s) {
    (void)s;
    char m[300];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_long fails;
#define FAIL(...) do { if (fails++ < 40) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)
static atomic_long made, destroyed;
static void cnt_free(void *p) { destroyed++; (void)p; }
static void cb(worker_event *ev, void *p) { (void)ev; (void)p; }
static void quick(worker_ctx *ctx, void *arg) { (void)ctx; (void)arg; }
static void spin(worker_ctx *ctx, void *arg) {
    (void)arg;
    while (worker_yield(ctx, NULL, NULL, NULL, NULL) != WORKER_ABORTED) usleep(500);
}
static atomic_int stop;
static _Atomic(uintptr_t) recent_freed[64];
static atomic_long churned;

static void *churner(void *a) {
    long k = (long)a;
    unsigned seed = 1234 + k;
    while (!stop) {
        worker_scope *sc = (rand_r(&seed) % 4 == 0) ? worker_scope_new("c") : NULL;
        worker_options o;
        worker_options_init(&o);
        o.scope = sc;
        made++;
        worker *w = worker_create(rand_r(&seed) % 3 ? quick : spin, (void *)1, cnt_free, &o);
        if (!w) { FAIL("create: %s", worker_strerror(worker_last_error())); continue; }
        for (int j = 0; j < 3; j++) { made++; long id = worker_connect(w, j, cb, (void *)2, cnt_free); if (j == 1 && id > 0) worker_disconnect(w, id); }
        int r = rand_r(&seed) % 4;
        if (r >= 1) worker_start(w);
        if (r == 2) worker_quit(w);
        if (sc && rand_r(&seed) % 2) worker_scope_close(sc, 50), sc = NULL;
        recent_freed[rand_r(&seed) % 64] = (uintptr_t)w;   /* may be reused later: only passed to read-only calls below */
        worker_unref(w);
        if (sc) worker_scope_close(sc, 50);
        churned++;
    }
    return NULL;
}
static worker *live;
static atomic_long live_ok, live_bad;
static void *user(void *a) {
    long k = (long)a;
    unsigned seed = 99 + k;
    char stackjunk[256];
    memset(stackjunk, 0x5a, sizeof stackjunk);
    while (!stop) {
        /* the live worker keeps working */
        made++;
        long id = worker_connect(live, WORKER_EV_YIELDED, cb, (void *)3, cnt_free);
        if (id > 0 && worker_disconnect(live, id) == WORKER_OK) live_ok++; else live_bad++;
        if (worker_name(live) == NULL) live_bad++;
        size_t e, b;
        if (worker_backlog(live, &e, &b) != WORKER_OK) live_bad++;
        worker *r = worker_ref(live);
        if (r != live) live_bad++; else worker_unref(r);
        /* garbage */
        void *g = rand_r(&seed) % 2 ? (void *)(stackjunk + rand_r(&seed) % 200) : (void *)(uintptr_t)(1 + rand_r(&seed) % 4096);
        if (worker_ref(g)) FAIL("worker_ref(garbage %p) non-NULL", g);
        made++;
        if (worker_connect(g, WORKER_EV_YIELDED, cb, (void *)4, cnt_free) > 0) FAIL("connect(garbage) accepted");
        if (worker_is_running(g)) FAIL("is_running(garbage)");
        if (worker_disconnect(g, 1) != WORKER_EINVAL) FAIL("disconnect(garbage)");
        /* recently freed (maybe reused: read-only calls only) */
        worker *f = (worker *)recent_freed[rand_r(&seed) % 64];
        if (f) { (void)worker_is_running(f); (void)worker_dropped(f); size_t e2, b2; (void)worker_backlog(f, &e2, &b2); }
        if (rand_r(&seed) % 8 == 0) {
            worker *l[16];
            int n = worker_list(l, 16);
            for (int i = 0; i < n; i++) { (void)worker_name(l[i]); worker_unref(l[i]); }
            (void)worker_live_count();
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    int secs = argc > 1 ? atoi(argv[1]) : 4;
    live = worker_create(spin, NULL, NULL, NULL);
    worker_start(live);
    current = "churn";
    pthread_t c[3], u[2];
    for (long i = 0; i < 3; i++) pthread_create(&c[i], NULL, churner, (void *)i);
    for (long i = 0; i < 2; i++) pthread_create(&u[i], NULL, user, (void *)i);
    alarm(secs + 15);
    for (int t = 0; t < secs * 1000; t++) worker_app_process_events(1);
    stop = 1;
    for (int i = 0; i < 3; i++) while (pthread_tryjoin_np(c[i], NULL)) worker_app_process_events(1);
    for (int i = 0; i < 2; i++) while (pthread_tryjoin_np(u[i], NULL)) worker_app_process_events(1);
    current = "drain";
    worker_quit(live);
    worker_await(live, -1);
    worker_unref(live);
    while (worker_live_count()) worker_app_process_events(1);
    for (int i = 0; i < 50; i++) worker_app_process_events(1);
    alarm(0);
    if (live_bad) FAIL("%ld calls on the live worker failed (%ld ok)", (long)live_bad, (long)live_ok);
    if (made != destroyed) FAIL("%ld values/user_data handed over, %ld destroyed", (long)made, (long)destroyed);
    printf("%s c9_registry_churn: %ld workers churned, %ld live-worker rounds; %ld failures\n", fails ? "FAIL" : "PASS", (long)churned, (long)live_ok, (long)fails);
    return fails != 0;
}
