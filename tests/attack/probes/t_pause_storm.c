/* probe: lost wake-ups — pause/resume/toggle/quit storms from several threads while workers park, unpark and wait for room (BLOCK with a byte budget), with worker_await timeouts; every worker must end once resumed or quit, PAUSED/RESUMED alternate; run: ./build.sh probes/t_pause_storm.c && QT_QPA_PLATFORM=offscreen probes/t_pause_storm */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { NW = 8, NT = 4 };
static worker *ws[NW];
static atomic_int stop_storm, finish, bad, paused_state[NW], finished[NW];
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    while (!finish) {
        int rc = worker_yield_sized(ctx, NULL, 400, NULL, NULL, NULL);
        if (rc == WORKER_ABORTED) return;
        if (worker_abort_requested(ctx)) return;
    }
}
static void on_ev(worker_event *ev, void *ud) {
    int i = (int)(long)ud;
    if (ev->type == WORKER_EV_PAUSED) { if (paused_state[i]) { printf("BROKEN: PAUSED twice\n"); bad++; } paused_state[i] = 1; }
    if (ev->type == WORKER_EV_RESUMED) { if (!paused_state[i]) { printf("BROKEN: RESUMED unpaused\n"); bad++; } paused_state[i] = 0; }
    if (ev->type == WORKER_EV_FINISHED) finished[i] = 1;
}
static void *storm(void *arg) {
    unsigned seed = (unsigned)(long)arg;
    while (!stop_storm) {
        worker *w = ws[rand_r(&seed) % NW];
        switch (rand_r(&seed) % 5) {
        case 0: worker_pause(w); break;
        case 1: worker_resume(w); break;
        case 2: worker_toggle_pause(w); break;
        case 3: worker_await(w, rand_r(&seed) % 3); break;
        case 4: worker_is_paused(w); sched_yield(); break;
        }
    }
    return NULL;
}
static int run(int quit_at_end) {
    finish = 0; stop_storm = 0;
    for (int i = 0; i < NW; i++) {
        worker_options o; worker_options_init(&o);
        o.capacity = 4; o.capacity_bytes = 1000;
        paused_state[i] = finished[i] = 0;
        ws[i] = worker_create(fn, NULL, NULL, &o);
        for (int t = WORKER_EV_PAUSED; t <= WORKER_EV_FINISHED; t++)
            worker_connect(ws[i], t, on_ev, (void *)(long)i, NULL);
        worker_start(ws[i]);
    }
    pthread_t t[NT];
    for (int i = 0; i < NT; i++) pthread_create(&t[i], NULL, storm, (void *)(long)(i + 1));
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    do { worker_app_process_events(1); clock_gettime(CLOCK_MONOTONIC, &b); } while (b.tv_sec - a.tv_sec < 3);
    stop_storm = 1;
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    if (quit_at_end) for (int i = 0; i < NW; i++) worker_quit(ws[i]);   /* while parked: wakes at once */
    else { finish = 1; for (int i = 0; i < NW; i++) worker_resume(ws[i]); }
    int spins = 0, live;
    do { worker_app_process_events(2); live = 0; for (int i = 0; i < NW; i++) live += !finished[i]; } while (live && spins++ < 2500);
    if (live) { printf("BROKEN: %d workers never ended after %s (lost wake-up)\n", live, quit_at_end ? "quit" : "resume"); bad++; }
    for (int i = 0; i < NW; i++) worker_unref(ws[i]);
    return live;
}
int main(int argc, char **argv) {
    alarm(55);
    worker_app_init(&argc, argv);
    for (int r = 0; r < 3; r++) { if (run(r & 1)) return 1; }
    printf("%s\n", bad ? "BROKEN" : "held: no lost wake-up in pause/resume/quit storms");
    return bad != 0;
}
