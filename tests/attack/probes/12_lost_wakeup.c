/* probe: no lost wake-up of a GUI sleeping in worker_app_exec (no polling): one value after idles of 0..400 ms, a 20000-value burst after idle (QUEUE and BLOCK cap 1), 150 workers yielding one value each, a value yielded right before a pause parks (it must arrive while parked), a value after resume, worker_await on the GUI thread of a BLOCK worker at capacity (FINISHED must follow without another event), a fast-path yield after a locked-path warn and back; a watchdog alarm fails a case that stalls; run: ./build.sh probes/12_lost_wakeup.c && QT_QPA_PLATFORM=offscreen probes/12_lost_wakeup */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *current = "";
static atomic_long got, alive, finished_count;
static void on_alarm(int s) {
    (void)s;
    char m[200];
    int n = snprintf(m, sizeof m, "FAIL: lost wake-up in case '%s' (got %ld)\n", current, (long)got);
    write(1, m, n);
    _exit(1);
}
static void val_free(void *p) { alive--; free(p); }
static void *val(void) { alive++; return malloc(8); }

static long want;  /* quit the loop once `got` reaches it */
static void count(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    if (++got == want) worker_app_quit(0);
}
static long want_finished;
static void fin(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    if (++finished_count == want_finished) worker_app_quit(0);
}

typedef struct { int idle_us; long n; int warn_every; } spec;
static void idle_then_yield(worker_ctx *ctx, void *arg) {
    spec *s = arg;
    usleep(s->idle_us);
    for (long i = 0; i < s->n; i++) {
        if (s->warn_every && i % s->warn_every == 0) worker_warn(ctx, "w");
        if (worker_yield(ctx, val(), val_free, NULL, NULL) == WORKER_ABORTED) return;
    }
}

static void run_case(const char *name, worker_policy pol, size_t cap, int idle_us, long n, int warn_every) {
    current = name;
    got = 0;
    want = n;
    spec s = {idle_us, n, warn_every};
    worker_options o;
    worker_options_init(&o);
    o.policy = pol; o.capacity = cap;
    worker *w = worker_create(idle_then_yield, &s, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, count, NULL, NULL);
    worker_start(w);
    alarm(8);
    worker_app_exec();
    alarm(0);
    worker_await(w, -1);
    worker_unref(w);
}

/* --- a value right before the pause parks must still arrive while parked */
static atomic_int yielded_before_park;
static void yield_then_park(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 50; i++) {
        if (worker_yield(ctx, val(), val_free, NULL, NULL) == WORKER_ABORTED) return;
        yielded_before_park++;
        usleep(i % 5 * 100);
    }
}
static worker *pw;
static void *pauser(void *a) {
    (void)a;
    for (int round = 0; round < 20; round++) {
        worker_pause(pw);
        while (!worker_is_paused(pw) && worker_is_running(pw)) usleep(100);
        if (!worker_is_running(pw)) break;
        /* parked: every value yielded so far must reach the sleeping GUI */
        long target = yielded_before_park;
        for (int t = 0; got < target; t++) {
            if (t == 3000) {
                printf("FAIL: parked worker, %ld yielded, GUI got %ld after 3 s\n", target, (long)got);
                _exit(1);
            }
            usleep(1000);
        }
        worker_resume(pw);
        usleep(round * 50);
    }
    worker_resume(pw);
    return NULL;
}
static void on_fin_quit(worker_event *ev, void *ud) { (void)ev; (void)ud; worker_app_quit(0); }

/* --- worker_await on the GUI thread while a BLOCK worker is at capacity */
static worker *aw;
static void block_flood(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++)
        if (worker_yield(ctx, val(), val_free, NULL, NULL) == WORKER_ABORTED) return;
}
static void await_in_started(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    usleep(20000); /* let it reach capacity */
    int rc = worker_await(aw, 5000);
    if (rc != WORKER_OK) { printf("FAIL: worker_await on the GUI thread: %s\n", worker_strerror(rc)); _exit(1); }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    int idles[] = {0, 1, 100, 1000, 10000, 50000, 200000, 400000};
    for (int i = 0; i < 8; i++) {
        run_case("one value after idle (BLOCK)", WORKER_BLOCK, 0, idles[i], 1, 0);
        run_case("one value after idle (LATEST cap 1)", WORKER_LATEST, 1, idles[i], 1, 0);
        run_case("one value after idle (QUEUE)", WORKER_QUEUE, 0, idles[i], 1, 0);
    }
    for (int i = 0; i < 5; i++) {
        run_case("burst after idle, QUEUE", WORKER_QUEUE, 0, 100000, 20000, 0);
        run_case("burst after idle, BLOCK cap 1", WORKER_BLOCK, 1, 100000, 5000, 0);
        run_case("burst after idle, BLOCK cap 2, warn every 3", WORKER_BLOCK, 2, 50000, 3000, 3);
        run_case("burst, BLOCK cap 3, warn every 1", WORKER_BLOCK, 3, 0, 3000, 1);
        run_case("burst, QUEUE, warn every 100", WORKER_QUEUE, 0, 0, 20000, 100);
    }

    /* many workers, one value each */
    for (int round = 0; round < 5; round++) {
        current = "150 workers, one value each";
        enum { M = 150 };
        worker *ws[M];
        spec s = {0, 1, 0};
        got = 0; want = -1; finished_count = 0; want_finished = M;
        for (int i = 0; i < M; i++) {
            worker_options o;
            worker_options_init(&o);
            o.capacity = 1;
            s.idle_us = (i * 37 % 11) * 1000;
            ws[i] = worker_create(idle_then_yield, &s, NULL, &o);
            worker_connect(ws[i], WORKER_EV_YIELDED, count, NULL, NULL);
            worker_connect(ws[i], WORKER_EV_FINISHED, fin, NULL, NULL);
        }
        for (int i = 0; i < M; i++) worker_start(ws[i]);
        alarm(20);
        worker_app_exec();
        alarm(0);
        if (got != M) { printf("FAIL: %ld of %d values\n", (long)got, M); return 1; }
        for (int i = 0; i < M; i++) worker_unref(ws[i]);
    }

    /* values around pause / resume */
    for (int round = 0; round < 5; round++) {
        current = "values around pause/resume";
        got = 0; want = -1; yielded_before_park = 0;
        pw = worker_create(yield_then_park, NULL, NULL, NULL);
        worker_connect(pw, WORKER_EV_YIELDED, count, NULL, NULL);
        worker_connect(pw, WORKER_EV_FINISHED, on_fin_quit, NULL, NULL);
        worker_start(pw);
        pthread_t t;
        pthread_create(&t, NULL, pauser, NULL);
        alarm(30);
        worker_app_exec();
        alarm(0);
        pthread_join(t, NULL);
        worker_unref(pw);
    }

    /* worker_await on the GUI thread, then FINISHED must arrive by itself */
    for (int round = 0; round < 5; round++) {
        current = "worker_await on the GUI thread of a BLOCK worker at capacity";
        got = 0; want = -1;
        worker_options o;
        worker_options_init(&o);
        o.capacity = 1 + round;
        aw = worker_create(block_flood, NULL, NULL, &o);
        worker_connect(aw, WORKER_EV_YIELDED, count, NULL, NULL);
        worker_connect(aw, WORKER_EV_STARTED, await_in_started, NULL, NULL);
        worker_connect(aw, WORKER_EV_FINISHED, on_fin_quit, NULL, NULL);
        worker_start(aw);
        alarm(10);
        worker_app_exec();
        alarm(0);
        if (got != 2000) { printf("FAIL: await case got %ld of 2000\n", (long)got); return 1; }
        worker_unref(aw);
    }

    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); return 1; }
    printf("PASS\n");
    return 0;
}
