/* C99 compile check: uses every function, type and constant of qtworker.h
   from plain C (built with -std=c99 -Wall -Wextra -pedantic -Werror), and runs
   a generator worker end to end. Exits 0 only if everything came out right. */
#include <qtworker.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_YIELDS 500
#define SENT_VALUE 100

static int failures = 0;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static int *new_int(int v) {
    int *p = malloc(sizeof *p);
    if (p) *p = v;
    return p;
}

/* The generator: yields 0..N-1, receives the value sent before start, reports
   progress, one warning, one custom event; returns the sum of everything. */
static void generator(worker_ctx *ctx, void *arg) {
    const int n = *(const int *)arg;
    long long sum = 0;
    int i;
    for (i = 0; i < n; i++) {
        void *sent = NULL;
        worker_destroy_fn sent_destroy = NULL;
        int rc = worker_yield(ctx, new_int(i), free, &sent, &sent_destroy);
        if (rc == WORKER_ABORTED) return;
        if (rc == WORKER_RECEIVED) {
            sum += *(int *)sent;
            sent_destroy(sent);
        }
        sum += i;
        worker_progress(ctx, i + 1, n, "step");
        if (i == n / 2) {
            worker_warn(ctx, "halfway at %d", i);
            worker_emit(ctx, "tick", new_int(i), free);
        }
        if (worker_abort_requested(ctx)) return;
    }
    worker_return(ctx, new_int((int)sum), free);
}

static void failing(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_fail(ctx, 7, "boom %s", "here");
}

struct state {
    int yields, progress, warnings, ticks, errors, finished, result, took;
    long long dropped;
};

static void on_yielded(worker_event *ev, void *ud) {
    struct state *s = ud;
    if (ev->value && *(int *)ev->value == s->yields) s->yields++;
}
static void on_progress(worker_event *ev, void *ud) {
    struct state *s = ud;
    if (ev->total == N_YIELDS && ev->done == s->progress + 1) s->progress++;
}
static void on_warned(worker_event *ev, void *ud) {
    struct state *s = ud;
    if (ev->message && strstr(ev->message, "halfway")) s->warnings++;
}
static void on_tick(worker_event *ev, void *ud) {
    struct state *s = ud;
    if (ev->name && strcmp(ev->name, "tick") == 0) s->ticks++;
}
static void on_returned(worker_event *ev, void *ud) {
    struct state *s = ud;
    int *v = worker_event_take(ev);   /* ours now */
    if (v) {
        s->result = *v;
        s->took = 1;
        free(v);
    }
}
static void on_error(worker_event *ev, void *ud) {
    struct state *s = ud;
    if (ev->type == WORKER_EV_ERRORED && ev->code == 7 && ev->message &&
        strcmp(ev->message, "boom here") == 0)
        s->errors++;
}
static void on_finished(worker_event *ev, void *ud) {
    struct state *s = ud;
    s->dropped += worker_dropped(ev->source);
    if (++s->finished == 2) worker_app_quit(0);
}
static void never(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    failures++;
}

int main(int argc, char **argv) {
    static int n = N_YIELDS;
    struct state s;
    worker_options opts;
    worker *gen, *bad, *idle, *listed[4];
    worker_policy policy = WORKER_QUEUE;
    worker_event_type type = WORKER_EV_FINISHED;
    worker_callback cb = never;
    worker_fn fn = generator;
    long id;
    int i, listed_n, rc;
    const int codes[] = {WORKER_OK, WORKER_RECEIVED, WORKER_EINVAL, WORKER_ESTATE,
                         WORKER_ETHREAD, WORKER_ENOMEM, WORKER_ETIMEDOUT,
                         WORKER_ABORTED, WORKER_ENOAPP};

    memset(&s, 0, sizeof s);
    CHECK(worker_app_init(&argc, argv) == WORKER_OK);
    worker_set_exit_timeout(2000);
    worker_set_error_handler(on_error, &s);
    for (i = 0; i < (int)(sizeof codes / sizeof codes[0]); i++)
        CHECK(worker_strerror(codes[i]) != NULL);

    worker_options_init(&opts);
    CHECK(opts.capacity == WORKER_DEFAULT_CAPACITY && opts.policy == WORKER_BLOCK);
    opts.name = "c99-generator";
    opts.policy = policy;
    opts.capacity = WORKER_MAX_CAPACITY;
    opts.progress_total = 0;
    opts.progress_desc = NULL;
    gen = worker_create(fn, &n, NULL, &opts);
    CHECK(gen != NULL && worker_last_error() == WORKER_OK);
    if (!gen) return 1;
    CHECK(strcmp(worker_name(gen), "c99-generator") == 0);

    CHECK(worker_connect(gen, WORKER_EV_YIELDED, on_yielded, &s, NULL) > 0);
    CHECK(worker_connect(gen, WORKER_EV_PROGRESS, on_progress, &s, NULL) > 0);
    CHECK(worker_connect(gen, WORKER_EV_WARNED, on_warned, &s, NULL) > 0);
    CHECK(worker_connect_custom(gen, "tick", on_tick, &s, NULL) > 0);
    CHECK(worker_connect(gen, WORKER_EV_RETURNED, on_returned, &s, NULL) > 0);
    CHECK(worker_connect(gen, type, on_finished, &s, NULL) > 0);
    id = worker_connect(gen, WORKER_EV_ERRORED, cb, NULL, NULL);
    CHECK(worker_disconnect(gen, id) == WORKER_OK);

    /* Flow control before start: all accepted, and they cancel out. */
    CHECK(worker_send(gen, new_int(SENT_VALUE), free) == WORKER_OK);
    CHECK(worker_pause(gen) == WORKER_OK);
    CHECK(worker_resume(gen) == WORKER_OK);
    CHECK(worker_toggle_pause(gen) == WORKER_OK);
    CHECK(worker_toggle_pause(gen) == WORKER_OK);
    CHECK(worker_is_paused(gen) == 0);

    bad = worker_create(failing, NULL, NULL, NULL);   /* ERRORED -> on_error */
    CHECK(worker_connect(bad, WORKER_EV_FINISHED, on_finished, &s, NULL) > 0);

    idle = worker_create(generator, &n, NULL, NULL);  /* quit, never started */
    CHECK(worker_quit(idle) == WORKER_OK);
    CHECK(worker_await(idle, 0) == WORKER_ESTATE);

    CHECK(worker_ref(gen) == gen);
    worker_unref(gen);
    CHECK(worker_start(gen) == WORKER_OK);
    CHECK(worker_start(bad) == WORKER_OK);
    CHECK(worker_is_running(gen) == 1 || worker_await(gen, 0) == WORKER_OK);

    listed_n = worker_list(listed, 4);
    CHECK(listed_n >= 0 && listed_n <= 2);
    CHECK(worker_live_count() >= 0);
    for (i = 0; i < listed_n; i++) worker_unref(listed[i]);

    rc = worker_app_exec();
    CHECK(rc == 0);

    CHECK(worker_await(gen, 10000) == WORKER_OK);
    CHECK(worker_quit_all() == 0);
    CHECK(worker_await_all(1000) == WORKER_OK);
    CHECK(worker_app_process_events(0) == WORKER_OK);
    CHECK(worker_quit(gen) == WORKER_ESTATE);
    worker_unref(idle);
    worker_unref(bad);
    worker_unref(gen);

    CHECK(s.yields == N_YIELDS);
    CHECK(s.progress == N_YIELDS);
    CHECK(s.warnings == 1 && s.ticks == 1);
    CHECK(s.took == 1 && s.result == N_YIELDS * (N_YIELDS - 1) / 2 + SENT_VALUE);
    CHECK(s.errors == 1);
    CHECK(s.dropped == 0);
    worker_set_error_handler(NULL, NULL);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
