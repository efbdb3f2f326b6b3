/* napari example 2: mean projection of a 3D stack, yielding the running mean
   every 16 frames, with a progress bar (options.progress_total). Every 64
   frames it asks the GUI for the layer's current contrast limits (the user
   may have changed them; only the GUI thread may read them: worker_call_home)
   and reports how much of the running mean lies within them.
   The stack is 256 frames of 256x256 (napari: 1024 of 512x512): a faint ring
   pattern buried in noise, which the running mean slowly reveals. */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { FRAMES = 256, SIZE = 256, EVERY = 16, ASK_EVERY = 64 };

/* Frame i of the stack. Not static: tests regenerate the stack with it to
   check the final mean independently. */
VIEWER_EXPORT void mean_projection_frame(int i, float *out) {
    unsigned long long rng = 0x9E3779B97F4A7C15ULL * (unsigned long long)(i + 1);
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++) {
            float r = hypotf(x - SIZE / 2.0f, y - SIZE / 2.0f);
            float signal = 0.5f + 0.25f * cosf(r / 5.0f) * expf(-r / 90.0f);
            out[y * SIZE + x] = signal + (vrand01(&rng) - 0.5f) * 2.0f;
        }
}

/* Asks the GUI for the contrast limits: the layer exists by then, since the
   call runs after every earlier yield was delivered (and shown). */
static void report_contrast(worker_ctx *ctx, viewer *v, const float *sum, int frames) {
    viewer_contrast_ask ask = {v, "mean projection", 0, 0, 0};
    int rc = worker_call_home(ctx, viewer_contrast_home, &ask, NULL, 1000);
    FILE *out = worker_stdout(ctx);
    if (rc != WORKER_OK || ask.rc != VIEWER_OK) {
        fprintf(out, "contrast limits unknown at frame %d: %s\n", frames,
                rc != WORKER_OK ? worker_strerror(rc) : viewer_strerror(ask.rc));
        return;
    }
    long within = 0;
    for (int p = 0; p < SIZE * SIZE; p++) {
        float m = sum[p] / frames;
        within += m >= ask.lo && m <= ask.hi;
    }
    fprintf(out, "frame %d: %ld%% within contrast %.2f..%.2f\n", frames,
            within * 100 / (SIZE * SIZE), ask.lo, ask.hi);
}

static void mean_projection(worker_ctx *ctx, void *arg) {
    float *sum = calloc(SIZE * SIZE, sizeof *sum);
    float *frame = malloc(SIZE * SIZE * sizeof *frame);
    viewer *v = arg;
    if (!sum || !frame) worker_fail(ctx, WORKER_ENOMEM, "no memory for the stack");
    int i;
    for (i = 0; sum && frame && i < FRAMES; i++) {
        mean_projection_frame(i, frame);
        for (int p = 0; p < SIZE * SIZE; p++) sum[p] += frame[p];
        if ((i + 1) % EVERY == 0) {  /* yield cumsum / (i + 1) */
            vimage *mean = vimage_new(SIZE, SIZE, VIEWER_F32);
            if (!mean) break;
            for (int p = 0; p < SIZE * SIZE; p++) vimage_f32(mean)[p] = sum[p] / (i + 1);
            if (worker_yield(ctx, mean, vimage_free, NULL, NULL) == WORKER_ABORTED) break;
        }
        if ((i + 1) % ASK_EVERY == 0) report_contrast(ctx, v, sum, i + 1);
    }
    /* Plain printf, as existing lab code does: the viewer captures stdout
       (worker_capture_stdio), so the line also shows in the Log dock. */
    printf("%d frames averaged\n", i);
    free(frame);
    free(sum);
}

/* GUI thread: add the layer the first time, update its data afterwards. */
static void update_layer(worker_event *ev, void *v) {
    if (viewer_set_layer(v, "mean projection", ev->value) == VIEWER_ADDED)
        viewer_set_contrast(v, "mean projection", 0.3, 0.75);
}

static void drop_worker(worker_event *ev, void *unused) {
    (void)unused;
    worker_unref(ev->source);
}

int viewer_plugin_init(viewer *v) {
    worker_options opts;
    worker *w;
    worker_options_init(&opts);
    opts.name = "mean projection";
    opts.progress_total = FRAMES / EVERY;  /* one step per yield, like napari */
    opts.progress_desc = "mean projection";
    w = worker_create(mean_projection, v, NULL, &opts);
    if (!w) return worker_last_error();
    worker_connect(w, WORKER_EV_YIELDED, update_layer, v, NULL);
    worker_connect(w, WORKER_EV_FINISHED, drop_worker, NULL, NULL);
    viewer_watch_worker(v, w);
    return worker_start(w);
}
