/* Beyond napari: a serial instrument (a simulated stage with a detector)
   that takes one command at a time. Each button starts a worker in the
   serial group "stage", so commands run one after the other, in click order,
   however fast they are clicked; each prints the device's log lines to
   worker_stdout() (the viewer's Log dock shows them). "measure (exclusive)"
   refuses to queue (group_exclusive: WORKER_EBUSY); every command has a 2 s
   timeout, and "stuck command" never gets a reply, so it ends ABORTED with
   WORKER_ETIMEDOUT. The device itself counts commands that overlap or run
   out of order; "serial group: on" toggles the group to show what it
   prevents. "command queue: on" shows the other way: one long-lived worker
   that owns the device and runs every command sent to it (worker_send) in
   a worker_receive loop; switching it off closes its input, so it runs what
   it was sent and ends. */
#define _POSIX_C_SOURCE 200809L  /* vsleep_ms */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <stdio.h>
#include <stdlib.h>

enum { TIMEOUT_MS = 2000 };

typedef enum { HOME, MOVE_UP, MOVE_DOWN, MEASURE, MEASURE_5, MEASURE_EXCLUSIVE, STUCK,
               NCOMMANDS } command_kind;
static const char *const button_text[NCOMMANDS] = {
    "home", "move +10", "move -10", "measure", "measure x5", "measure (exclusive)",
    "stuck command"};

/* The simulated device: worker threads drive it, the GUI reads its counters,
   so every field goes through an atomic (C99 has none: GCC/Clang builtins). */
typedef struct {
    int busy;          /* 1 while a command runs */
    int overlaps;      /* commands that found it busy: must stay 0 */
    int out_of_order;  /* commands that did not come right after the previous click */
    int executed, last_seq, position;
} device;

static int ld(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void st(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static int xchg(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
static void inc(int *p) { __atomic_add_fetch(p, 1, __ATOMIC_ACQ_REL); }

typedef struct {   /* a command worker's argument */
    device *dev;
    command_kind kind;
    int seq;       /* click order, from 1 */
} command;

typedef struct {   /* a command's reply: its RETURNED value */
    command_kind kind;
    int seq, position;
    double value;  /* measurements: the (mean) reading */
} reply;

typedef struct {   /* GUI-side state; the dock owns it */
    viewer *v;
    device dev;
    int buttons[NCOMMANDS], serial_button;
    int status, last, counters, exclusive, timeouts;  /* labels */
    int serial, next_seq, pending;
    int queue_button, use_queue, queued;  /* the command queue: sent, not yet replied */
    worker *queue;                        /* our reference while it runs */
    worker_scope *scope;  /* the plugin's: closed with its dock */
} state;

/* What the detector reads: a peak at position 30, plus a little noise. */
static double detector(int position, unsigned long long *rng) {
    double x = (position - 30) / 15.0;
    return 1.0 / (1.0 + x * x) + 0.01 * (vrand01(rng) - 0.5);
}

/* One command, start to end, on the device; either kind of worker runs it.
   give_up_ms > 0: the stuck command stops waiting after that long (the
   command queue has no per-command timeout). NULL when out of memory. */
static reply *execute(worker_ctx *ctx, device *d, command_kind kind, int seq, double give_up_ms) {
    FILE *log = worker_stdout(ctx);
    reply *r = calloc(1, sizeof *r);
    unsigned long long rng = 0x9E3779B97F4A7C15ULL * (unsigned long long)seq;
    int n = kind == MEASURE_5 ? 5 : 1;
    double t0 = vclock_ms();
    if (!r) return NULL;
    if (xchg(&d->busy, 1)) inc(&d->overlaps);  /* another command is inside: garbled */
    if (xchg(&d->last_seq, seq) != seq - 1) inc(&d->out_of_order);
    r->kind = kind;
    r->seq = seq;
    switch (kind) {
    case HOME:
        vsleep_ms(20);
        st(&d->position, 0);
        fprintf(log, "homed: at 0\n");
        break;
    case MOVE_UP:
    case MOVE_DOWN: {
        int to = ld(&d->position) + (kind == MOVE_UP ? 10 : -10);
        vsleep_ms(10);  /* the motor runs; an overlapping move would be lost */
        st(&d->position, to);
        fprintf(log, "moved: at %d\n", to);
        break;
    }
    case STUCK:
        fprintf(log, "sent; waiting for a reply that never comes\n");
        while (!worker_abort_requested(ctx) && (give_up_ms <= 0 || vclock_ms() - t0 < give_up_ms))
            vsleep_ms(5);
        fprintf(log, "no reply: gave up\n");
        break;
    default:  /* the measurements */
        for (int i = 1; i <= n; i++) {
            double x;
            vsleep_ms(8);
            x = detector(ld(&d->position), &rng);
            r->value += x / n;
            fprintf(log, "reading %d/%d: %.4f\n", i, n, x);
            worker_progress(ctx, i, n, NULL);
        }
    }
    r->position = ld(&d->position);
    inc(&d->executed);
    st(&d->busy, 0);
    return r;
}

/* Worker thread: a worker of its own per command (serial group "stage"). */
static void run_command(worker_ctx *ctx, void *arg) {
    command *c = arg;
    reply *r = execute(ctx, c->dev, c->kind, c->seq, 0);
    if (!r) {
        worker_fail(ctx, WORKER_ENOMEM, "no memory for a reply");
        return;
    }
    worker_return(ctx, r, free);
}

/* Worker thread: the command queue, one long-lived worker that owns the
   device and runs the commands sent to it, in order, as they arrive. */
static void run_queue(worker_ctx *ctx, void *arg) {
    void *v;
    worker_destroy_fn destroy;
    int rc;
    (void)arg;
    while ((rc = worker_receive(ctx, &v, &destroy, -1)) == WORKER_RECEIVED) {
        command *c = v;
        reply *r = execute(ctx, c->dev, c->kind, c->seq, TIMEOUT_MS);
        destroy(v);
        if (r) worker_emit(ctx, "reply", r, free);
    }
    fprintf(worker_stdout(ctx), rc == WORKER_EOF ? "queue closed: every command ran\n"
                                                 : "quit: the commands not yet run were dropped\n");
}

/* ------------------------------------------------------------ GUI thread */

static void show_status(state *st) {
    char text[64] = "idle";
    if (st->pending)
        snprintf(text, sizeof text, "%d command%s pending", st->pending, st->pending > 1 ? "s" : "");
    viewer_set_text(st->v, st->status, text);
}

static void show_counters(state *st) {
    char text[128];
    int n = ld(&st->dev.executed);
    snprintf(text, sizeof text, "device: %d command%s run\n%d overlapped, %d out of order", n,
             n == 1 ? "" : "s", ld(&st->dev.overlaps), ld(&st->dev.out_of_order));
    viewer_set_text(st->v, st->counters, text);
}

static void on_reply(worker_event *ev, void *ud) {
    state *st = ud;
    reply *r = ev->value;
    char text[96];
    if (r->kind >= MEASURE && r->kind <= MEASURE_EXCLUSIVE)
        snprintf(text, sizeof text, "#%d %s: %.4f at %d", r->seq, button_text[r->kind],
                 r->value, r->position);
    else
        snprintf(text, sizeof text, "#%d %s: at %d", r->seq, button_text[r->kind], r->position);
    viewer_set_text(st->v, st->last, text);
    if (r->kind == MEASURE_EXCLUSIVE) {
        snprintf(text, sizeof text, "exclusive: %.4f at %d", r->value, r->position);
        viewer_set_text(st->v, st->exclusive, text);
    }
}

static void on_aborted(worker_event *ev, void *ud) {
    state *st = ud;
    char text[160];
    if (ev->code != WORKER_ETIMEDOUT) return;  /* quit by closing the viewer */
    snprintf(text, sizeof text, "%s:\nABORTED, WORKER_ETIMEDOUT\n%s", worker_name(ev->source),
             ev->message ? ev->message : "");
    viewer_set_text(st->v, st->timeouts, text);
}

static void on_finished(worker_event *ev, void *ud) {
    state *st = ud;
    st->pending--;
    show_status(st);
    show_counters(st);
    worker_unref(ev->source);  /* the reference from start_command */
}

static void on_queue_reply(worker_event *ev, void *ud) {
    state *st = ud;
    on_reply(ev, ud);
    st->queued--;
    st->pending--;
    show_status(st);
    show_counters(st);
}

static void on_queue_finished(worker_event *ev, void *ud) {
    state *st = ud;
    st->pending -= st->queued;  /* quit: those were dropped unrun */
    st->queued = 0;
    if (st->queue == ev->source) st->queue = NULL;
    show_status(st);
    show_counters(st);
    worker_unref(ev->source);
}

/* The command queue worker, made on the first queued command. */
static worker *command_queue(state *st) {
    worker_options opts;
    worker *w;
    if (st->queue) return st->queue;
    worker_options_init(&opts);
    opts.name = "stage queue";
    opts.scope = st->scope;
    w = worker_create(run_queue, NULL, NULL, &opts);
    if (!w) return NULL;
    worker_connect_custom(w, "reply", on_queue_reply, st, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_queue_finished, st, NULL);
    viewer_watch_worker(st->v, w);
    if (worker_start(w) != WORKER_OK) {
        worker_unref(w);
        return NULL;
    }
    return st->queue = w;
}

/* WORKER_EBUSY: the exclusive command found the stage in use. */
static void refused(state *st, command_kind kind, int rc) {
    if (kind == MEASURE_EXCLUSIVE && rc == WORKER_EBUSY)
        viewer_set_text(st->v, st->exclusive, "exclusive: busy, not queued");
    else
        viewer_set_text(st->v, st->last, worker_strerror(rc));
}

static void start_command(state *st, command_kind kind) {
    worker_options opts;
    command *c = malloc(sizeof *c);
    char name[64];
    worker *w;
    int rc;
    if (!c) return;
    c->dev = &st->dev;
    c->kind = kind;
    c->seq = st->next_seq;  /* taken only if the start succeeds */
    if (st->use_queue) {
        worker *q = command_queue(st);
        rc = q ? worker_send(q, c, free) : WORKER_ENOMEM;  /* frees c on failure */
        if (rc != WORKER_OK) {
            if (!q) free(c);
            refused(st, kind, rc);
            return;
        }
        st->next_seq++;
        st->pending++;
        st->queued++;
        show_status(st);
        return;
    }
    snprintf(name, sizeof name, "stage #%d %s", c->seq, button_text[kind]);
    worker_options_init(&opts);
    opts.name = name;
    opts.group = st->serial ? "stage" : NULL;
    opts.group_exclusive = kind == MEASURE_EXCLUSIVE;
    opts.timeout_ms = TIMEOUT_MS;
    opts.scope = st->scope;
    w = worker_create(run_command, c, free, &opts);  /* frees c on failure */
    if (!w) {
        refused(st, kind, worker_last_error());
        return;
    }
    worker_connect(w, WORKER_EV_RETURNED, on_reply, st, NULL);
    worker_connect(w, WORKER_EV_ABORTED, on_aborted, st, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, st, NULL);
    viewer_watch_worker(st->v, w);  /* Log dock: its events and device log lines */
    rc = worker_start(w);
    if (rc != WORKER_OK) {
        refused(st, kind, rc);
        worker_unref(w);  /* never started: freed, and c with it */
        return;
    }
    st->next_seq++;
    st->pending++;
    show_status(st);
    if (kind == MEASURE_EXCLUSIVE) viewer_set_text(st->v, st->exclusive, "exclusive: measuring...");
}

static void on_command(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    int k = 0;
    (void)v; (void)text;
    while (k < NCOMMANDS && st->buttons[k] != button) k++;
    if (k < NCOMMANDS) start_command(st, (command_kind)k);
}

static void on_serial(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    (void)text;
    st->serial = !st->serial;
    viewer_set_text(v, button, st->serial ? "serial group: on" : "serial group: OFF");
}

static void on_queue_mode(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    (void)text;
    st->use_queue = !st->use_queue;
    /* Off: the queue runs what it was sent, then ends (WORKER_EOF). */
    if (!st->use_queue && st->queue) worker_close_input(st->queue);
    viewer_set_text(v, button, st->use_queue ? "command queue: on" : "command queue: off");
}

static void state_free(void *p) {
    state *st = p;
    if (st->queue) worker_unref(st->queue);  /* the scope stopped it: no FINISHED comes */
    free(st);
}

int viewer_plugin_init(viewer *v) {
    state *st = calloc(1, sizeof *st);
    int dock;
    if (!st) return VIEWER_ENOMEM;
    st->v = v;
    st->serial = 1;
    st->next_seq = 1;
    dock = viewer_add_dock(v, "Instrument", st, state_free);  /* owns st */
    if (dock < 0) return dock;
    /* Closing the dock closes the plugin: its workers stop, none of their
       callbacks runs again, and the state is freed at once. */
    st->scope = viewer_dock_scope(v, dock);
    for (int k = 0; k < NCOMMANDS; k++) {
        st->buttons[k] = viewer_add_button(v, dock, button_text[k]);
        viewer_connect(v, st->buttons[k], on_command, st, NULL);
    }
    st->serial_button = viewer_add_button(v, dock, "serial group: on");
    viewer_connect(v, st->serial_button, on_serial, st, NULL);
    st->queue_button = viewer_add_button(v, dock, "command queue: off");
    viewer_connect(v, st->queue_button, on_queue_mode, st, NULL);
    st->status = viewer_add_label(v, dock, "idle");
    st->last = viewer_add_label(v, dock, "no reply yet");
    st->counters = viewer_add_label(v, dock, "device");
    st->exclusive = viewer_add_label(v, dock, "exclusive: not run yet");
    st->timeouts = viewer_add_label(v, dock, "timeouts: none");
    show_counters(st);
    return st->timeouts < 0 ? st->timeouts : VIEWER_OK;
}
