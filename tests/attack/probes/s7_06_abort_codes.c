/* promise 4 (worker_yield returns WORKER_ABORTED once quit was asked; a value whose yield returned ABORTED is never shown; nothing yielded is shown after worker_quit returned on the GUI thread; sent values destroyed once): (a) the GUI quits inside the YIELDED callback of value k (plain fast lane, sized slow lane, mixed with warn/emit/progress, receiving yields with worker_send from the GUI), under BLOCK 1/2/7/1024, QUEUE, LATEST 1/7, budget 0/200; the worker checks a flag the GUI sets after worker_quit returned: every call that began after it must return ABORTED; (b) an oversized frame's YIELDED callback quits: the frame was shown, so its yield must not say ABORTED; (c) quit between loop passes while the worker waits at capacity; (d) quit from another thread: no YIELDED callback may begin after that worker_quit returned; run: cd tests/attack && bash build.sh probes/s7_06_abort_codes.c build-asan && QT_QPA_PLATFORM=offscreen ./probes/s7_06_abort_codes */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 20000
static atomic_long alive, sent_made, sent_freed;
static void pfree(void *p) { alive--; free(p); }
static long *mk(long s) { long *v = malloc(sizeof *v); *v = s; alive++; return v; }
static void sfree(void *p) { sent_freed++; free(p); }
static const char *current = "";
static void on_alarm(int s) { (void)s; char m[300]; int n = snprintf(m, sizeof m, "FAIL: hang in %s\n", current); write(1, m, n); _exit(1); }
static int fails;

typedef struct {
    worker *w; int mix, recv; size_t size, budget; long quit_at; int where; /* 0 in callback, 2 from a thread */
    atomic_int quit_done; int rc[N]; atomic_char shown[N]; atomic_char began_after[N];
    long shown_after_quit, first_shown_after; int finished; int qrc; long last_call; long received;
} st;

static void fn(worker_ctx *ctx, void *arg) {
    st *s = arg;
    for (long i = 0; i < N; i++) {
        int after = s->quit_done;
        s->began_after[i] = (char)after;
        int k = s->mix ? (int)(i % 7) : 0;
        if (k == 3) worker_warn(ctx, "%ld", i);
        if (k == 4) worker_emit(ctx, "e", mk(i), pfree);
        if (k == 5) worker_progress(ctx, i, N, NULL);
        void *sv = NULL; worker_destroy_fn sd = NULL;
        int rc;
        if (s->size && (i % 2 || !s->mix))
            rc = s->recv ? worker_yield_sized(ctx, mk(i), s->size, pfree, &sv, &sd) : worker_yield_sized(ctx, mk(i), s->size, pfree, NULL, NULL);
        else
            rc = s->recv ? worker_yield(ctx, mk(i), pfree, &sv, &sd) : worker_yield(ctx, mk(i), pfree, NULL, NULL);
        if (rc == WORKER_RECEIVED) { s->received++; sd(sv); rc = 0; }
        s->rc[i] = rc;
        s->last_call = i;
        if (rc == WORKER_ABORTED) return;
        if (rc) { printf("  rc %d at %ld\n", rc, i); return; }
    }
}
static void on_y(worker_event *ev, void *ud) {
    st *s = ud;
    long i = *(long *)ev->value;
    s->shown[i] = 1;
    if (s->quit_done) { if (!s->shown_after_quit++) s->first_shown_after = i; }
    if (s->recv && i % 50 == 0) { long *sv = malloc(sizeof *sv); sent_made++; worker_send(s->w, sv, sfree); }
    if (s->where == 0 && i >= s->quit_at && !s->quit_done) { s->qrc = worker_quit(s->w); s->quit_done = s->qrc == WORKER_OK; }
}
static void on_fin(worker_event *ev, void *ud) { (void)ev; ((st *)ud)->finished = 1; }
static void *thread_quit(void *a) { st *s = a; usleep(3000 + rand() % 5000); s->qrc = worker_quit(s->w); s->quit_done = s->qrc == WORKER_OK; return NULL; }

static void check(st *s, const char *nm) {
    long bad_rc = 0, first_bad_rc = -1, ab_shown = 0, first_ab_shown = -1, ab = 0;
    for (long i = 0; i <= s->last_call; i++) {
        if (s->began_after[i] && s->rc[i] != WORKER_ABORTED) { if (!bad_rc++) first_bad_rc = i; }
        if (s->rc[i] == WORKER_ABORTED) { ab++; if (s->shown[i]) { if (!ab_shown++) first_ab_shown = i; } }
    }
    int bad = bad_rc || ab_shown || s->shown_after_quit || (!ab && s->qrc == WORKER_OK);
    printf("%s %-58s quit rc %d, last call %ld rc %d, ABORTED returned %ld; calls begun after quit returned with rc != ABORTED: %ld (first %ld); ABORTED values shown: %ld (first %ld); yields shown after quit returned: %ld (first %ld)\n",
           bad ? "FAIL" : "ok  ", nm, s->qrc, s->last_call, s->rc[s->last_call], ab, bad_rc, first_bad_rc, ab_shown, first_ab_shown, s->shown_after_quit, s->first_shown_after);
    fails += bad;
}

static void run(worker_policy pol, size_t cap, size_t budget, size_t size, int mix, int recv, int where, long quit_at) {
    static st s;
    memset(&s, 0, sizeof s);
    s.mix = mix; s.recv = recv; s.size = size; s.budget = budget; s.quit_at = quit_at; s.where = where;
    char nm[200];
    snprintf(nm, sizeof nm, "pol %d cap %zu budget %zu size %zu mix %d recv %d quit %s", pol, cap, budget, size, mix, recv, where == 0 ? "in cb" : where == 1 ? "between passes" : "thread");
    current = nm;
    worker_options o; worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = budget;
    s.w = worker_create(fn, &s, NULL, &o);
    worker_connect(s.w, WORKER_EV_YIELDED, on_y, &s, NULL);
    worker_connect(s.w, WORKER_EV_FINISHED, on_fin, &s, NULL);
    worker_start(s.w);
    pthread_t t;
    if (where == 2) pthread_create(&t, NULL, thread_quit, &s);
    alarm(15);
    if (where == 1) {
        usleep(10000); /* worker runs into capacity */
        for (int i = 0; i < 3; i++) worker_app_process_events(0);
        usleep(5000);
        s.qrc = worker_quit(s.w); s.quit_done = s.qrc == WORKER_OK;
    }
    while (!s.finished) worker_app_process_events(5);
    alarm(0);
    if (where == 2) pthread_join(t, NULL);
    check(&s, nm);
    worker_unref(s.w);
    for (int i = 0; i < 5; i++) worker_app_process_events(1);
}

/* (b) oversized frame quit from inside its own callback */
static int ov_rc; static atomic_int ov_shown; static worker *ovw; static int ov_fin;
static void ov_fn(worker_ctx *ctx, void *arg) { (void)arg; ov_rc = worker_yield_sized(ctx, mk(0), 1000, pfree, NULL, NULL); }
static void ov_cb(worker_event *ev, void *ud) { (void)ev; (void)ud; ov_shown = 1; usleep(2000); worker_quit(ovw); }
static void ov_f(worker_event *ev, void *ud) { (void)ev; (void)ud; ov_fin = 1; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    struct { worker_policy p; size_t cap; } cfg[] = {{WORKER_BLOCK, 1}, {WORKER_BLOCK, 2}, {WORKER_BLOCK, 7}, {WORKER_BLOCK, 1024}, {WORKER_QUEUE, 0}, {WORKER_LATEST, 1}, {WORKER_LATEST, 7}};
    for (unsigned c = 0; c < sizeof cfg / sizeof *cfg; c++)
        for (int b = 0; b < 2; b++)
            for (int mix = 0; mix < 2; mix++)
                for (int where = 0; where < 3; where++) {
                    if (b && cfg[c].p == WORKER_QUEUE) continue;
                    long qa = 300;
                    run(cfg[c].p, cfg[c].cap, b ? 200 : 0, b ? 30 : 0, mix, mix, where, qa);
                }
    /* (b) */
    for (int rep = 0; rep < 5; rep++) {
        current = "oversized quit in its callback";
        worker_options o; worker_options_init(&o); o.capacity_bytes = 100;
        ov_shown = 0; ov_fin = 0; ov_rc = 99;
        ovw = worker_create(ov_fn, NULL, NULL, &o);
        worker_connect(ovw, WORKER_EV_YIELDED, ov_cb, NULL, NULL);
        worker_connect(ovw, WORKER_EV_FINISHED, ov_f, NULL, NULL);
        worker_start(ovw);
        alarm(5);
        while (!ov_fin) worker_app_process_events(5);
        alarm(0);
        int bad = ov_shown && ov_rc == WORKER_ABORTED;
        printf("%s oversized frame (budget 100, size 1000) whose callback quits: shown %d, its yield returned %d\n", bad ? "FAIL" : "ok  ", (int)ov_shown, ov_rc);
        fails += bad;
        worker_unref(ovw);
    }
    for (int i = 0; i < 20; i++) worker_app_process_events(2);
    if (alive) { printf("FAIL: %ld payloads alive\n", (long)alive); fails++; }
    if (sent_made != sent_freed) { printf("FAIL: sent %ld destroyed %ld\n", (long)sent_made, (long)sent_freed); fails++; }
    printf("%s (%d failures)\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
