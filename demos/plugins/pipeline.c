/* A pipeline (the PyQt/Matplotlib article's worker -> receiver -> GUI): a
   producer generates a sine curve of steadily growing frequency, a receiver
   stage refines it (a moving average) and adds an information text, and the
   viewer plots it live. worker_pipe() joins the two workers: the producer's
   yields go into the receiver's input, bounded (BLOCK, capacity 4: a fast
   producer waits rather than fill memory). Stop quits the receiver, which
   quits the producer piped into it. Both stages print to worker_stdout(),
   which the viewer's Log dock shows. */
#define _POSIX_C_SOURCE 200809L  /* vsleep_ms */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { SAMPLES = 240, SMOOTH = 5, PRINT_EVERY = 50, LINK_CAPACITY = 4 };
static const double kPi = 3.14159265358979323846;

typedef struct {   /* what flows through the pipe */
    long frame;
    double freq;   /* Hz, over a 1 s window */
    float y[SAMPLES];
    char info[160];  /* the receiver's text */
} curve;

typedef struct {   /* GUI-side state; the dock owns it */
    viewer *v;
    int start, stop, plot, info, status;
    worker *producer, *receiver;  /* our references while they run */
    long shown;
    worker_scope *scope;
} state;

static void curve_free(void *p) { free(p); }

/* ------------------------------------------------------------ worker side */

static void produce(worker_ctx *ctx, void *arg) {
    FILE *out = worker_stdout(ctx);
    (void)arg;
    for (long k = 0;; k++) {
        curve *c = malloc(sizeof *c);
        if (!c) {
            worker_fail(ctx, WORKER_ENOMEM, "no memory for a curve");
            return;
        }
        c->frame = k;
        c->freq = 1.0 + 0.02 * (double)k;  /* steadily growing */
        c->info[0] = '\0';
        for (int i = 0; i < SAMPLES; i++)
            c->y[i] = (float)sin(2 * kPi * c->freq * i / SAMPLES);
        if (k % PRINT_EVERY == 0) fprintf(out, "frame %ld at %.2f Hz\n", k, c->freq);
        if (worker_yield(ctx, c, curve_free, NULL, NULL) != WORKER_OK) {
            fprintf(out, "stopped after %ld frames\n", k);
            return;  /* quit: the receiver ended or Stop was clicked */
        }
        vsleep_ms(15);  /* a paced source, ~60 frames/s */
    }
}

/* Smooths c in place and describes it. */
static void refine(curve *c) {
    float in[SAMPLES], peak = 0;
    int crossings = 0;
    for (int i = 0; i < SAMPLES; i++) in[i] = c->y[i];
    for (int i = 0; i < SAMPLES; i++) {
        float sum = 0;
        int n = 0;
        for (int j = i - SMOOTH / 2; j <= i + SMOOTH / 2; j++)
            if (j >= 0 && j < SAMPLES) sum += in[j], n++;
        c->y[i] = sum / (float)n;
        if (fabsf(c->y[i]) > peak) peak = fabsf(c->y[i]);
        if (i > 0 && (c->y[i - 1] < 0) != (c->y[i] < 0)) crossings++;
    }
    snprintf(c->info, sizeof c->info, "frame %ld: %.2f Hz, peak %.3f, %d zero crossings",
             c->frame, c->freq, peak, crossings);
}

static void receive(worker_ctx *ctx, void *arg) {
    FILE *out = worker_stdout(ctx);
    void *v;
    worker_destroy_fn destroy;
    long n = 0;
    int rc;
    (void)arg;
    while ((rc = worker_receive(ctx, &v, &destroy, -1)) == WORKER_RECEIVED) {
        curve *c = v;
        refine(c);
        if (n++ % PRINT_EVERY == 0) fprintf(out, "%s\n", c->info);
        if (worker_yield(ctx, c, destroy, NULL, NULL) != WORKER_OK) break;  /* to the plot */
    }
    fprintf(out, "%s after %ld curves\n", rc == WORKER_EOF ? "producer ended" : "stopped", n);
}

/* ------------------------------------------------------------ GUI thread */

static void show_curve(worker_event *ev, void *ud) {
    state *st = ud;
    curve *c = ev->value;
    viewer_set_plot(st->v, st->plot, c->y, SAMPLES);
    viewer_set_text(st->v, st->info, c->info);
    st->shown++;
}

static void set_running(state *st, int running) {
    viewer_set_enabled(st->v, st->start, !running);
    viewer_set_enabled(st->v, st->stop, running);
}

static void forget(worker_event *ev, void *ud) {
    state *st = ud;
    char text[64];
    if (ev->source == st->producer) st->producer = NULL;
    if (ev->source == st->receiver) {
        st->receiver = NULL;
        snprintf(text, sizeof text, "stopped: %ld curves shown", st->shown);
        viewer_set_text(st->v, st->status, text);
    }
    worker_unref(ev->source);
    if (!st->producer && !st->receiver) set_running(st, 0);
}

static worker *stage(state *st, worker_fn fn, const char *name, worker_policy policy) {
    worker_options o;
    worker *w;
    worker_options_init(&o);
    o.name = name;
    o.policy = policy;
    o.capacity = LINK_CAPACITY;
    o.scope = st->scope;
    w = worker_create(fn, NULL, NULL, &o);
    if (!w) return NULL;
    worker_connect(w, WORKER_EV_FINISHED, forget, st, NULL);
    viewer_watch_worker(st->v, w);  /* its printed lines go to the Log dock */
    return w;
}

static void on_start(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    (void)v; (void)button; (void)text;
    if (st->producer || st->receiver) return;
    st->shown = 0;
    /* LATEST towards the GUI: the plot shows the newest curve, a slow GUI
       never holds the pipeline back. */
    st->receiver = stage(st, receive, "receiver", WORKER_LATEST);
    st->producer = stage(st, produce, "producer", WORKER_BLOCK);
    if (!st->receiver || !st->producer || worker_pipe(st->producer, st->receiver) != WORKER_OK) {
        viewer_set_text(st->v, st->status, "could not build the pipeline");
        if (st->producer) worker_unref(st->producer);  /* never started: freed */
        if (st->receiver) worker_unref(st->receiver);
        st->producer = st->receiver = NULL;
        return;
    }
    worker_connect(st->receiver, WORKER_EV_YIELDED, show_curve, st, NULL);
    worker_start(st->receiver);
    worker_start(st->producer);
    viewer_set_text(st->v, st->status, "running");
    set_running(st, 1);
}

static void on_stop(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    (void)v; (void)button; (void)text;
    if (st->receiver) worker_quit(st->receiver);  /* quits the producer piped into it */
}

static void state_free(void *p) {
    state *st = p;
    /* The plugin closed: its scope stopped both, no FINISHED comes any more. */
    if (st->producer) worker_unref(st->producer);
    if (st->receiver) worker_unref(st->receiver);
    free(st);
}

int viewer_plugin_init(viewer *v) {
    state *st = calloc(1, sizeof *st);
    int dock;
    if (!st) return VIEWER_ENOMEM;
    st->v = v;
    dock = viewer_add_dock(v, "Pipeline", st, state_free);  /* owns st */
    if (dock < 0) return dock;
    st->scope = viewer_dock_scope(v, dock);
    st->start = viewer_add_button(v, dock, "Start");
    st->stop = viewer_add_button(v, dock, "Stop");
    viewer_connect(v, st->start, on_start, st, NULL);
    viewer_connect(v, st->stop, on_stop, st, NULL);
    st->plot = viewer_add_plot(v, dock, "refined signal");
    st->info = viewer_add_label(v, dock, "no curve yet");
    st->status = viewer_add_label(v, dock, "stopped");
    set_running(st, 0);
    return st->status < 0 ? st->status : VIEWER_OK;
}
