/* probe: the byte budget with oversized frames — capacity_bytes 1 with sizes 0/1/5/9 (a sampler thread checks the pending bytes are within the budget or one oversized frame alone), quit at random moments, worker_await on the home thread, a pause, a serial group; nothing deadlocks, every payload freed once, bytes back to 0; run: ./build.sh probes/t_oversized.c && QT_QPA_PLATFORM=offscreen probes/t_oversized */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int made, freed, bad, stop_sampling;
static void pf(void *p) { free(p); freed++; }
static void *pn(void) { made++; return malloc(8); }
static const size_t sizes[] = {0, 1, 5, 9, 1, 1, 0, 9};
static void frames(worker_ctx *ctx, void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        if (worker_yield_sized(ctx, pn(), sizes[i % 8], pf, NULL, NULL) == WORKER_ABORTED) return;
}
static void *sampler(void *arg) {
    worker *w = arg;
    while (!stop_sampling) {
        size_t b = 0;
        if (worker_backlog(w, NULL, &b) == WORKER_OK && b > 1 && b != 5 && b != 9) {
            printf("BROKEN: %zu bytes pending with a budget of 1\n", b);
            bad++;
            return NULL;
        }
    }
    return NULL;
}
static void slowcb(worker_event *ev, void *ud) { (void)ev; (void)ud; if (rand() % 4 == 0) usleep(100); }
static worker *make(long n, const char *group) {
    worker_options o; worker_options_init(&o);
    o.capacity_bytes = 1; o.group = group;
    worker *w = worker_create(frames, (void *)n, NULL, &o);
    worker_connect(w, WORKER_EV_YIELDED, slowcb, NULL, NULL);
    return w;
}
static void settle(worker *w) {
    for (int i = 0; i < 5000 && worker_is_running(w); i++) worker_app_process_events(2);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    size_t e = 9, b = 9;
    if (worker_backlog(w, &e, &b) == WORKER_OK && (e || b)) { printf("BROKEN: %zu entries %zu bytes left\n", e, b); bad++; }
}
int main(int argc, char **argv) {
    alarm(55);
    worker_app_init(&argc, argv);
    /* budget 1, sampled */
    worker *w = make(3000, NULL);
    pthread_t s; stop_sampling = 0;
    pthread_create(&s, NULL, sampler, w);
    worker_start(w);
    settle(w);
    stop_sampling = 1; pthread_join(s, NULL);
    worker_unref(w);
    /* quit at random moments */
    for (int r = 0; r < 150; r++) {
        w = make(1000000, NULL);
        worker_start(w);
        int k = rand() % 20;
        for (int i = 0; i < k; i++) worker_app_process_events(0);
        usleep(rand() % 500);
        worker_quit(w);
        settle(w);
        worker_unref(w);
    }
    /* worker_await on the home thread while oversized frames wait for delivery */
    for (int r = 0; r < 20; r++) {
        w = make(200, NULL);
        worker_start(w);
        usleep(rand() % 2000);
        if (worker_await(w, 10000) != WORKER_OK) { printf("BROKEN: home await of oversized frames timed out\n"); bad++; }
        settle(w);
        worker_unref(w);
    }
    /* pause while an oversized frame waits, then resume */
    w = make(400, NULL);
    worker_start(w);
    for (int r = 0; r < 50; r++) {
        worker_toggle_pause(w);
        for (int i = 0; i < 3; i++) worker_app_process_events(1);
    }
    worker_resume(w);
    settle(w);
    worker_unref(w);
    /* a serial group of three, and one awaited from the home thread */
    worker *g[3];
    for (int i = 0; i < 3; i++) { g[i] = make(300, "oversized-group"); worker_start(g[i]); }
    if (worker_await(g[2], 10000) != WORKER_OK) { printf("BROKEN: group await timed out\n"); bad++; }
    for (int i = 0; i < 3; i++) { settle(g[i]); worker_unref(g[i]); }
    for (int i = 0; i < 200 && made != freed; i++) worker_app_process_events(5);
    if (made != freed) { printf("BROKEN: made %d freed %d\n", (int)made, (int)freed); bad++; }
    printf("%s\n", bad ? "BROKEN" : "held: oversized frames with budget 1");
    return bad != 0;
}
