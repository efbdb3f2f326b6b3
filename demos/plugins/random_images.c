/* napari example 3: an endless generator yielding random images, with a dock
   and a STOP! button that quits it; on `finished` the button is disconnected
   and disabled. Closing the viewer without pressing STOP also works: the
   viewer quits the worker at its next yield. */
#define _POSIX_C_SOURCE 200809L  /* vsleep_ms */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { SIZE = 512 };

typedef struct {   /* GUI-side state; the dock owns it */
    viewer *v;
    worker *w;
    int stop, status;   /* widgets */
    long click;         /* the STOP! connection */
    long shown;
} state;

static void yield_random_images_forever(worker_ctx *ctx, void *arg) {
    unsigned long long rng = 7;
    (void)arg;
    for (int i = 0;; i++) {  /* infinite loop! */
        vimage *img = vimage_new(SIZE, SIZE, VIEWER_F32);
        float c = cosf(i * 0.2f);
        if (!img) return;
        for (int p = 0; p < SIZE * SIZE; p++) vimage_f32(img)[p] = vrand01(&rng) * c;
        if (worker_yield(ctx, img, vimage_free, NULL, NULL) == WORKER_ABORTED) return;
        vsleep_ms(50);
    }
}

static void update_layer(worker_event *ev, void *ud) {
    state *st = ud;
    char text[64];
    if (viewer_set_layer(st->v, "random", ev->value) == VIEWER_ADDED)
        viewer_set_contrast(st->v, "random", -0.8, 0.8);
    snprintf(text, sizeof text, "%ld images shown", ++st->shown);
    viewer_set_text(st->v, st->status, text);
}

/* button.clicked.connect(worker.quit) */
static void on_stop(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    (void)v; (void)button; (void)text;
    worker_quit(st->w);
}

static void on_aborted(worker_event *ev, void *ud) {
    state *st = ud;
    char text[64];
    (void)ev;
    snprintf(text, sizeof text, "stopped after %ld images", st->shown);
    viewer_set_text(st->v, st->status, text);
}

/* worker.finished.connect(button.clicked.disconnect), and disable it */
static void on_finished(worker_event *ev, void *ud) {
    state *st = ud;
    (void)ev;
    viewer_disconnect(st->v, st->stop, st->click);
    viewer_set_enabled(st->v, st->stop, 0);
    worker_unref(st->w);
    st->w = NULL;
}

static void free_state(void *p) {
    state *st = p;
    worker_unref(st->w);  /* NULL-safe; only set if never finished */
    free(st);
}

int viewer_plugin_init(viewer *v) {
    worker_options opts;
    state *st = calloc(1, sizeof *st);
    int dock;
    if (!st) return VIEWER_ENOMEM;
    st->v = v;
    dock = viewer_add_dock(v, "Random images", st, free_state);  /* owns st */
    if (dock < 0) return dock;
    st->stop = viewer_add_button(v, dock, "STOP!");
    st->status = viewer_add_label(v, dock, "starting");

    worker_options_init(&opts);
    opts.name = "random images forever";
    /* Closing the dock closes the plugin: its worker stops, none of its
       callbacks runs again, and free_state runs at once. */
    opts.scope = viewer_dock_scope(v, dock);
    st->w = worker_create(yield_random_images_forever, NULL, NULL, &opts);
    if (!st->w) return worker_last_error();
    worker_connect(st->w, WORKER_EV_YIELDED, update_layer, st, NULL);
    worker_connect(st->w, WORKER_EV_ABORTED, on_aborted, st, NULL);
    worker_connect(st->w, WORKER_EV_FINISHED, on_finished, st, NULL);
    st->click = viewer_connect(v, st->stop, on_stop, st, NULL);
    viewer_watch_worker(v, st->w);
    return worker_start(st->w);
}
