/* probe: exactly-once destroys on odd paths */
#include <qtworker.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static atomic_int made, freed;
static void pf(void *p) { if (*(int *)p == -1) printf("BROKEN: double free\n"); *(int *)p = -1; freed++; }
static void *pn(void) { made++; int *p = malloc(sizeof *p); *p = 1; return p; }
static void *kept[100]; static int nkept;
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_return(ctx, pn(), pf);
    worker_return(ctx, pn(), pf);             /* last wins: first destroyed */
    worker_fail(ctx, 1, "x");
    worker_return(ctx, pn(), pf);             /* after fail */
    worker_emit(ctx, "c", pn(), pf);
    void *s; worker_destroy_fn sd;
    if (worker_yield(ctx, pn(), pf, &s, &sd) == WORKER_RECEIVED) sd(s);
    worker_progress(ctx, 1, 2, "p");
}
static void take_cb(worker_event *ev, void *ud) {
    (void)ud;
    void *v = worker_event_take(ev);
    void *v2 = worker_event_take(ev);  /* twice */
    if (v2) printf("BROKEN: second take got a value\n");
    if (v) kept[nkept++] = v;
}
static void unref_cb(worker_event *ev, void *ud) { (void)ud; worker_unref(ev->source); }
static void quiet(worker_event *ev, void *ud) { (void)ev; (void)ud; }
int main(int argc, char **argv) {
    alarm(30);
    worker_app_init(&argc, argv);
    worker_set_error_handler(take_cb, NULL);
    worker *w = worker_create(fn, pn(), pf, NULL);
    worker_send(w, pn(), pf); worker_send(w, pn(), pf); worker_send(w, pn(), pf);
    worker_connect(w, WORKER_EV_CUSTOM, take_cb, pn(), pf);
    worker_connect(w, WORKER_EV_CUSTOM, take_cb, NULL, NULL);
    worker_connect(w, WORKER_EV_YIELDED, unref_cb, pn(), pf);   /* the owner's last unref, inside delivery */
    worker_connect(w, WORKER_EV_YIELDED, quiet, pn(), pf);
    worker_start(w);
    /* unstarted worker freed; quit-before-start worker */
    worker *u = worker_create(fn, pn(), pf, NULL); worker_send(u, pn(), pf); worker_connect(u, WORKER_EV_STARTED, quiet, pn(), pf); worker_unref(u);
    worker *q = worker_create(fn, pn(), pf, NULL); worker_send(q, pn(), pf); worker_quit(q); worker_start(q);
    worker_connect(q, WORKER_EV_FINISHED, quiet, pn(), pf);
    printf("send after quit %d\n", worker_send(q, pn(), pf));
    for (int i = 0; i < 200 && worker_live_count(); i++) worker_app_process_events(5);
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    printf("send after end %d\n", worker_send(q, pn(), pf));
    worker_unref(q);
    for (int i = 0; i < nkept; i++) pf(kept[i]);
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    printf("made %d freed %d\n", (int)made, (int)freed);
    return made != freed;
}
