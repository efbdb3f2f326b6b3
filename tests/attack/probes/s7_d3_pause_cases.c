/* promise 3 (pause/resume/quit): (a) worker_pause from inside the worker's own YIELDED callback: it parks at its next yield, PAUSED arrives with worker_is_paused 1, resume from the PAUSED callback, RESUMED with is_paused 0; (b) worker_pause on its own handle from inside its function; (c) quit while parked: wakes at once, ABORTED then FINISHED, is_paused 0 after; (d) pause/resume/toggle/quit after the function ended: ESTATE; (e) storm: 3 threads pause/resume/toggle while the worker yields and checks worker_is_paused(self) == 0 every time it runs its own code, PAUSED/RESUMED alternate, counts match; (f) timeout_ms while parked: ABORTED with code ETIMEDOUT; (g) pause while waiting in worker_receive; (h) pause + quit before start: STARTED, ABORTED, FINISHED, no PAUSED; run: s7d/mk.sh d3_pause_cases && QT_QPA_PLATFORM=offscreen s7d/d3_pause_cases-asan */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *current = "start";
static void on_alarm(int s) {
    (void)s;
    char m[300];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_int fails;
#define FAIL(...) do { if (fails++ < 60) { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); } } while (0)
static long long now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000LL + t.tv_nsec / 1000000; }

static atomic_long alive;
static void vfree(void *p) { alive--; free(p); }
static long *val(long i) { long *p = malloc(sizeof *p); *p = i; alive++; return p; }

typedef struct st {
    worker *w;
    int kind;
    atomic_int stop, fin, paused_state, n_paused, n_resumed, n_started, n_aborted, n_returned, abort_code;
    atomic_long last_yield, yields_seen, own_paused_bad, yields_done;
    int pause_at;            /* (a) pause in callback of value pause_at */
    int resume_in_paused;    /* resume from the PAUSED callback */
    long long paused_at_ms, aborted_at_ms;
    char order[64]; int no;
} st;
static void note(st *s, char c) { if (s->no < 63) s->order[s->no++] = c; }

static void fn(worker_ctx *ctx, void *arg) {
    st *s = arg;
    for (long i = 0; !s->stop; i++) {
        if (s->kind == 2 && i == 5) worker_pause(s->w);  /* (b) own handle from the function */
        if (s->kind == 7) {                              /* (g) receive while a pause is asked */
            void *v; worker_destroy_fn d;
            int rc = worker_receive(ctx, &v, &d, 20);
            if (rc == WORKER_ABORTED) return;
            if (rc == WORKER_RECEIVED && d) d(v);
            continue;
        }
        int rc = worker_yield(ctx, val(i), vfree, NULL, NULL);
        if (rc == WORKER_ABORTED) return;
        if (rc != WORKER_OK) { FAIL("yield: %s", worker_strerror(rc)); return; }
        s->yields_done++;
        if (worker_is_paused(s->w)) s->own_paused_bad++;   /* running our own code: not parked */
        if (s->kind == 1 && i > 2000) return;
        if (s->kind == 6) usleep(100);
    }
}
static void on_ev(worker_event *ev, void *ud) {
    st *s = ud;
    switch (ev->type) {
    case WORKER_EV_STARTED: s->n_started++; note(s, 'S'); break;
    case WORKER_EV_YIELDED:
        s->yields_seen++;
        s->last_yield = *(long *)ev->value;
        if (s->paused_state) FAIL("YIELDED %ld while paused (between PAUSED and RESUMED)", *(long *)ev->value);
        if (s->pause_at >= 0 && *(long *)ev->value == s->pause_at) {
            int rc = worker_pause(s->w);
            if (rc != WORKER_OK) FAIL("pause in own callback: %s", worker_strerror(rc));
        }
        break;
    case WORKER_EV_PAUSED:
        note(s, 'P');
        if (s->paused_state) FAIL("PAUSED twice");
        s->paused_state = 1; s->n_paused++;
        s->paused_at_ms = now_ms();
        if (s->kind != 6 && !worker_is_paused(s->w)) FAIL("PAUSED delivered but worker_is_paused is 0 (no resume was asked)");
        if (s->resume_in_paused) { int rc = worker_resume(s->w); if (rc != WORKER_OK) FAIL("resume in PAUSED cb: %s", worker_strerror(rc)); }
        break;
    case WORKER_EV_RESUMED:
        note(s, 'R');
        if (!s->paused_state) FAIL("RESUMED without PAUSED");
        s->paused_state = 0; s->n_resumed++;
        break;
    case WORKER_EV_ABORTED: note(s, 'A'); s->n_aborted++; s->abort_code = ev->code; s->aborted_at_ms = now_ms(); break;
    case WORKER_EV_RETURNED: note(s, 'T'); s->n_returned++; break;
    case WORKER_EV_FINISHED: note(s, 'F'); s->fin = 1; break;
    default: break;
    }
}
static worker *mk(st *s, int kind, long long timeout_ms, int cap) {
    memset(s, 0, sizeof *s);
    s->kind = kind; s->pause_at = -1;
    worker_options o; worker_options_init(&o);
    o.timeout_ms = timeout_ms; o.capacity = cap;
    worker *w = worker_create(fn, s, NULL, &o);
    s->w = w;
    worker_event_type t[] = {WORKER_EV_STARTED, WORKER_EV_YIELDED, WORKER_EV_PAUSED, WORKER_EV_RESUMED, WORKER_EV_ABORTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED};
    for (unsigned i = 0; i < sizeof t / sizeof *t; i++) worker_connect(w, t[i], on_ev, s, NULL);
    return w;
}
static int pump_until(atomic_int *flag, int ms) {
    long long end = now_ms() + ms;
    while (!*flag && now_ms() < end) worker_app_process_events(2);
    return *flag;
}
static void pump_ms(int ms) { long long end = now_ms() + ms; while (now_ms() < end) worker_app_process_events(2); }

static void after_end_checks(st *s) {
    int r;
    if ((r = worker_pause(s->w)) != WORKER_ESTATE) FAIL("pause after FINISHED: %s, want ESTATE", worker_strerror(r));
    if ((r = worker_resume(s->w)) != WORKER_ESTATE) FAIL("resume after FINISHED: %s, want ESTATE", worker_strerror(r));
    if ((r = worker_toggle_pause(s->w)) != WORKER_ESTATE) FAIL("toggle after FINISHED: %s, want ESTATE", worker_strerror(r));
    if ((r = worker_quit(s->w)) != WORKER_ESTATE) FAIL("quit after FINISHED: %s, want ESTATE", worker_strerror(r));
    if (worker_is_paused(s->w)) FAIL("is_paused 1 after FINISHED");
}

static st *storm_s;
static atomic_int storm_stop;
static void *stormer(void *a) {
    unsigned seed = (unsigned)(long)a;
    while (!storm_stop) {
        switch (rand_r(&seed) % 3) {
        case 0: worker_pause(storm_s->w); break;
        case 1: worker_resume(storm_s->w); break;
        case 2: worker_toggle_pause(storm_s->w); break;
        }
        if (rand_r(&seed) % 4 == 0) usleep(rand_r(&seed) % 300);
    }
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    st *s = malloc(sizeof *s);

    current = "(a) pause from own YIELDED callback, resume from PAUSED callback";
    for (int r = 0; r < 20; r++) {
        worker *w = mk(s, 1, 0, 4);
        s->pause_at = 10 + r; s->resume_in_paused = 1;
        worker_start(w);
        alarm(10);
        if (!pump_until(&s->fin, 8000)) FAIL("no FINISHED");
        alarm(0);
        if (s->n_paused != 1 || s->n_resumed != 1) FAIL("PAUSED %d RESUMED %d, want 1 1 (order %s)", s->n_paused, s->n_resumed, s->order);
        if (s->n_returned != 1) FAIL("no RETURNED (order %s)", s->order);
        if (s->own_paused_bad) FAIL("worker_is_paused(self) 1 inside the running function %ld times", (long)s->own_paused_bad);
        after_end_checks(s);
        worker_unref(w);
    }

    current = "(b) worker_pause on own handle from its function, resumed from GUI later";
    {
        worker *w = mk(s, 2, 0, 4);
        worker_start(w);
        alarm(10);
        pump_ms(200);
        if (s->n_paused != 1) FAIL("PAUSED %d, want 1 (order %s)", s->n_paused, s->order);
        if (!worker_is_paused(w)) FAIL("not paused 200 ms after self-pause");
        long y = s->yields_done;
        pump_ms(100);
        if (s->yields_done != y) FAIL("worker kept yielding while paused: %ld -> %ld", y, (long)s->yields_done);
        /* (c) quit while parked */
        long long t0 = now_ms();
        worker_quit(w);
        if (!pump_until(&s->fin, 3000)) FAIL("quit while parked: no FINISHED");
        long long dt = s->aborted_at_ms - t0;
        if (s->n_aborted != 1) FAIL("quit while parked: ABORTED %d (order %s)", s->n_aborted, s->order);
        if (dt > 200) FAIL("quit while parked took %lld ms to ABORTED", dt);
        if (worker_is_paused(w)) FAIL("is_paused 1 after quit while parked");
        printf("  (b/c) order %s, quit->ABORTED %lld ms\n", s->order, dt);
        alarm(0);
        after_end_checks(s);
        worker_unref(w);
    }

    current = "(e) pause storm from 3 threads: is_paused(self) inside the function, PAUSED/RESUMED alternate";
    {
        worker *w = mk(s, 6, 0, 8);
        storm_s = s; storm_stop = 0;
        worker_start(w);
        pthread_t t[3];
        for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, stormer, (void *)(long)(i + 11));
        alarm(15);
        pump_ms(3000);
        storm_stop = 1;
        for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
        worker_resume(w);
        pump_ms(100);
        int sample_paused = worker_is_paused(w);
        s->stop = 1;
        worker_resume(w);
        if (!pump_until(&s->fin, 3000)) FAIL("storm: no FINISHED after stop+resume");
        alarm(0);
        printf("  (e) yields %ld, PAUSED %d, RESUMED %d, is_paused after final resume %d, is_paused(self)=1 while running: %ld\n",
               (long)s->yields_done, s->n_paused, s->n_resumed, sample_paused, (long)s->own_paused_bad);
        if (s->own_paused_bad) FAIL("worker_is_paused(self) said 1 while the function ran its own code %ld times", (long)s->own_paused_bad);
        if (s->n_paused != s->n_resumed) FAIL("PAUSED %d != RESUMED %d after it ran to the end", s->n_paused, s->n_resumed);
        if (sample_paused) FAIL("is_paused 1 100 ms after the last resume");
        worker_unref(w);
    }

    current = "(f) timeout_ms 150 while parked";
    {
        worker *w = mk(s, 1, 150, 4);
        worker_pause(w);    /* parks at its first yield */
        long long t0 = now_ms();
        worker_start(w);
        alarm(10);
        if (!pump_until(&s->fin, 3000)) FAIL("parked worker with timeout_ms 150: no FINISHED in 3 s (order %s)", s->order);
        alarm(0);
        printf("  (f) order %s, ABORTED code %d after %lld ms\n", s->order, s->abort_code, s->aborted_at_ms - t0);
        if (s->n_aborted != 1 || s->abort_code != WORKER_ETIMEDOUT) FAIL("want ABORTED with ETIMEDOUT, got %d aborted code %d", s->n_aborted, s->abort_code);
        worker_unref(w);
    }

    current = "(g) pause while the worker waits in worker_receive";
    {
        worker *w = mk(s, 7, 0, 4);
        worker_start(w);
        pump_ms(50);
        worker_pause(w);
        alarm(10);
        pump_ms(200);
        if (s->n_paused != 1) FAIL("receive: PAUSED %d after 200 ms, want 1 (receive times out every 20 ms: 'Parks while paused')", s->n_paused);
        if (!worker_is_paused(w)) FAIL("receive: is_paused 0");
        long y0 = alive;
        worker_send(w, val(99), vfree);
        pump_ms(100);
        if (alive != y0 + 1) FAIL("receive: a sent value was taken while parked");
        worker_resume(w);
        pump_ms(100);
        if (alive != y0) FAIL("receive: sent value not received after resume");
        worker_quit(w);
        if (!pump_until(&s->fin, 3000)) FAIL("no FINISHED");
        alarm(0);
        printf("  (g) order %s\n", s->order);
        worker_unref(w);
    }

    current = "(h) pause + quit before start";
    {
        worker *w = mk(s, 1, 0, 4);
        worker_pause(w);
        worker_quit(w);
        worker_start(w);
        alarm(10);
        if (!pump_until(&s->fin, 3000)) FAIL("no FINISHED");
        alarm(0);
        if (strcmp(s->order, "SAF")) FAIL("order %s, want SAF", s->order);
        if (s->yields_seen) FAIL("fn ran");
        worker_unref(w);
    }

    current = "(i) pause from the worker's YIELDED callback then quit from the PAUSED callback";
    for (int r = 0; r < 10; r++) {
        worker *w = mk(s, 1, 0, 1 + r % 3);
        s->pause_at = 3;
        worker_start(w);
        alarm(10);
        while (!s->fin) {
            worker_app_process_events(2);
            if (s->n_paused == 1 && s->n_aborted == 0 && s->paused_state) { worker_quit(w); s->paused_state = 2; }
        }
        alarm(0);
        if (s->n_aborted != 1) FAIL("order %s", s->order);
        if (s->last_yield > 3 + 2 + 3) FAIL("values up to %ld delivered after a pause at 3 with capacity %d", (long)s->last_yield, 1 + r % 3);
        worker_unref(w);
    }

    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    current = "end";
    if (alive) FAIL("%ld payloads alive", (long)alive);
    free(s);
    printf("%s d3_pause_cases fails=%d\n", fails ? "FAIL" : "PASS", (int)fails);
    return fails != 0;
}
