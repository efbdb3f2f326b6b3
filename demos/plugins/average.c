/* napari example 1: average a large image in a FUNCTION worker; the result
   appears as a layer when `returned` arrives.
   napari averages 1024 frames of 512x512; 128 frames keep the demo quick. */
#include <qtworker.h>
#include "viewer_plugin.h"

enum { FRAMES = 128, SIZE = 512 };

/* Runs on a worker thread: no viewer call in here (they would be refused). */
static void average_large_image(worker_ctx *ctx, void *arg) {
    vimage *mean = vimage_new(SIZE, SIZE, VIEWER_F32);
    unsigned long long rng = 2024;
    (void)arg;
    if (!mean) {
        worker_fail(ctx, WORKER_ENOMEM, "no memory for a %dx%d image", SIZE, SIZE);
        return;
    }
    for (int f = 0; f < FRAMES; f++) {
        float *m = vimage_f32(mean);
        /* Unlike Python, a C function can check for quit: closing the viewer
           then need not wait for the whole computation. */
        if (worker_abort_requested(ctx)) {
            vimage_free(mean);
            return;
        }
        for (int i = 0; i < SIZE * SIZE; i++) m[i] += vrand01(&rng) / FRAMES;
    }
    worker_return(ctx, mean, vimage_free);  /* the library frees it after delivery */
}

/* GUI thread: worker.returned.connect(viewer.add_image) */
static void add_image(worker_event *ev, void *v) {
    viewer_set_layer(v, "average", ev->value);  /* copies the pixels */
}

/* The worker keeps this reference until it is done, then lets go. */
static void drop_worker(worker_event *ev, void *unused) {
    (void)unused;
    worker_unref(ev->source);
}

int viewer_plugin_init(viewer *v) {
    worker_options opts;
    worker *w;
    worker_options_init(&opts);
    opts.name = "average large image";
    w = worker_create(average_large_image, NULL, NULL, &opts);
    if (!w) return worker_last_error();
    worker_connect(w, WORKER_EV_RETURNED, add_image, v, NULL);
    worker_connect(w, WORKER_EV_FINISHED, drop_worker, NULL, NULL);
    viewer_watch_worker(v, w);  /* progress bar and Log lines */
    return worker_start(w);
}
