/* napari example 4: full two-way communication. A cumulative multiplier runs
   in a worker: numbers typed into the line edit are sent in (worker_send),
   each yield hands the oldest one back (FIFO: none lost), the label shows
   every yielded total, and a total of 0 returns "Game Over!".
   Pause/Resume buttons park and wake the worker; like napari's example,
   sending a value also resumes it. */
#define _POSIX_C_SOURCE 200809L  /* vsleep_ms */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    viewer *v;
    worker *w;
    int edit, total, pause, resume;   /* widgets */
} state;

static void multiplier(worker_ctx *ctx, void *arg) {
    double total = 1;
    (void)arg;
    for (;;) {
        double *out = malloc(sizeof *out);
        void *in;
        worker_destroy_fn in_destroy;
        int rc;
        vsleep_ms(100);
        if (!out) return;
        *out = total;
        rc = worker_yield(ctx, out, free, &in, &in_destroy);  /* new = yield total */
        if (rc == WORKER_ABORTED) return;
        if (rc == WORKER_RECEIVED) {
            total *= in ? *(double *)in : 1;  /* NULL is a value: napari's None */
            if (in_destroy) in_destroy(in);
        }
        if (total == 0) {
            worker_return(ctx, "Game Over!", NULL);  /* static text: nothing to free */
            return;
        }
    }
}

static void show_total(worker_event *ev, void *ud) {
    state *st = ud;
    char text[64];
    snprintf(text, sizeof text, "%g", *(double *)ev->value);
    viewer_set_text(st->v, st->total, text);
}

static void game_over(worker_event *ev, void *ud) {
    state *st = ud;
    viewer_set_text(st->v, st->edit, "");
    viewer_set_enabled(st->v, st->edit, 0);
    viewer_set_text(st->v, st->total, ev->value);
}

/* line_edit.returnPressed: worker.send(float(text)); worker.resume() */
static void send_next_value(viewer *v, int edit, const char *text, void *ud) {
    state *st = ud;
    char *end;
    double x = strtod(text, &end), *value;
    if (end == text || *end) {
        viewer_set_text(v, st->total, "not a number");
        return;
    }
    value = malloc(sizeof *value);
    if (!value) return;
    *value = x;
    worker_send(st->w, value, free);  /* the library frees it if never received */
    worker_resume(st->w);
    viewer_set_text(v, edit, "");
}

static void on_pause(viewer *v, int b, const char *t, void *ud) {
    (void)v; (void)b; (void)t;
    worker_pause(((state *)ud)->w);
}

static void on_resume(viewer *v, int b, const char *t, void *ud) {
    (void)v; (void)b; (void)t;
    worker_resume(((state *)ud)->w);
}

/* PAUSED / RESUMED: only the button that makes sense is enabled. */
static void paused_changed(worker_event *ev, void *ud) {
    state *st = ud;
    int paused = ev->type == WORKER_EV_PAUSED;
    viewer_set_enabled(st->v, st->pause, !paused);
    viewer_set_enabled(st->v, st->resume, paused);
}

static void on_finished(worker_event *ev, void *ud) {
    state *st = ud;
    (void)ev;
    viewer_set_enabled(st->v, st->pause, 0);
    viewer_set_enabled(st->v, st->resume, 0);
    worker_unref(st->w);
    st->w = NULL;
}

static void free_state(void *p) {
    state *st = p;
    worker_unref(st->w);
    free(st);
}

int viewer_plugin_init(viewer *v) {
    worker_options opts;
    state *st = calloc(1, sizeof *st);
    int dock;
    if (!st) return VIEWER_ENOMEM;
    st->v = v;
    dock = viewer_add_dock(v, "Multiplier", st, free_state);
    if (dock < 0) return dock;
    st->edit = viewer_add_line_edit(v, dock, "multiply by");
    st->total = viewer_add_label(v, dock, "total");
    st->pause = viewer_add_button(v, dock, "Pause");
    st->resume = viewer_add_button(v, dock, "Resume");
    viewer_set_enabled(v, st->resume, 0);

    worker_options_init(&opts);
    opts.name = "multiplier";
    /* Closing the dock closes the plugin: its worker stops, none of its
       callbacks runs again, and free_state runs at once. */
    opts.scope = viewer_dock_scope(v, dock);
    st->w = worker_create(multiplier, NULL, NULL, &opts);
    if (!st->w) return worker_last_error();
    worker_connect(st->w, WORKER_EV_YIELDED, show_total, st, NULL);
    worker_connect(st->w, WORKER_EV_RETURNED, game_over, st, NULL);
    worker_connect(st->w, WORKER_EV_PAUSED, paused_changed, st, NULL);
    worker_connect(st->w, WORKER_EV_RESUMED, paused_changed, st, NULL);
    worker_connect(st->w, WORKER_EV_FINISHED, on_finished, st, NULL);
    viewer_connect(v, st->edit, send_next_value, st, NULL);
    viewer_connect(v, st->pause, on_pause, st, NULL);
    viewer_connect(v, st->resume, on_resume, st, NULL);
    viewer_watch_worker(v, st->w);
    return worker_start(st->w);
}
