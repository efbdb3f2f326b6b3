/* Beyond napari: a simulated camera streams 1024x1024 frames (1 MiB each)
   at 1 kHz. With WORKER_LATEST only the newest undelivered frame is kept:
   the viewer shows the newest one at display rate, older ones are dropped
   (and counted by worker_dropped), and the GUI stays smooth however fast the
   camera runs. Each frame is yielded with its size (worker_yield_sized)
   against a 64 MiB budget (capacity_bytes): the dock shows how full that
   buffer is, live (worker_backlog). The Pause button toggles the stream. */
#define _POSIX_C_SOURCE 200809L  /* vclock_ms, vsleep_ms */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIZE = 1024, WORLD = 2048, RATE_HZ = 1000 };
#define BUDGET_BYTES ((size_t)64 << 20)  /* undelivered frames held at most */

typedef struct {      /* one yielded frame */
    long long index;
    vimage *img;
} frame;

typedef struct {
    viewer *v;
    worker *w;
    int stats, pause;   /* widgets */
    long long shown;
} state;

static void frame_free(void *p) {
    frame *f = p;
    vimage_free(f->img);
    free(f);
}

/* The "sample" under the microscope: blobs on a WORLD x WORLD plane. */
static unsigned char *make_world(void) {
    unsigned char *w = malloc((size_t)WORLD * WORLD);
    if (!w) return NULL;
    for (int y = 0; y < WORLD; y++)
        for (int x = 0; x < WORLD; x++) {
            float s = sinf(x * 0.031f) * sinf(y * 0.027f) + 0.5f * sinf((x + 2 * y) * 0.011f);
            w[y * WORLD + x] = (unsigned char)(127.5f + 84.0f * s);
        }
    return w;
}

/* Frame i: a SIZE x SIZE window drifting over the world, plus a bar at the
   bottom that fills once per second (dropped frames show as jumps). */
static frame *capture(const unsigned char *world, long long i) {
    frame *f = malloc(sizeof *f);
    int ox = (int)(512 + 400 * cos(i * 0.0005)), oy = (int)(512 + 400 * sin(i * 0.0007));
    if (!f || !(f->img = vimage_new(SIZE, SIZE, VIEWER_U8))) {
        free(f);
        return NULL;
    }
    f->index = i;
    for (int y = 0; y < SIZE; y++)
        memcpy(vimage_u8(f->img) + y * SIZE, world + (oy + y) * WORLD + ox, SIZE);
    for (int y = SIZE - 8; y < SIZE; y++)
        memset(vimage_u8(f->img) + y * SIZE, 255, (size_t)(i % RATE_HZ) * SIZE / RATE_HZ);
    return f;
}

static void camera(worker_ctx *ctx, void *arg) {
    unsigned char *world = make_world();
    double next = vclock_ms();
    (void)arg;
    for (long long i = 0; world; i++) {
        frame *f = capture(world, i);
        if (!f || worker_yield_sized(ctx, f, (size_t)SIZE * SIZE, frame_free, NULL, NULL) ==
                      WORKER_ABORTED)
            break;
        next += 1000.0 / RATE_HZ;
        if (next < vclock_ms() - 100) next = vclock_ms();  /* after a pause: no burst */
        vsleep_ms(next - vclock_ms());
    }
    free(world);
}

static void show_frame(worker_event *ev, void *ud) {
    state *st = ud;
    frame *f = ev->value;
    char text[160];
    size_t bytes = 0;
    viewer_set_layer(st->v, "camera", f->img);
    /* The frame being shown still counts: it is freed after this callback. */
    worker_backlog(ev->source, NULL, &bytes);
    snprintf(text, sizeof text, "frame %lld\nshown %lld\ndropped %lld\nbuffer %.1f%% of 64 MiB",
             f->index, ++st->shown, worker_dropped(ev->source), 100.0 * bytes / BUDGET_BYTES);
    viewer_set_text(st->v, st->stats, text);
}

static void on_pause(viewer *v, int b, const char *t, void *ud) {
    (void)v; (void)b; (void)t;
    worker_toggle_pause(((state *)ud)->w);
}

static void paused_changed(worker_event *ev, void *ud) {
    state *st = ud;
    viewer_set_text(st->v, st->pause, ev->type == WORKER_EV_PAUSED ? "Resume" : "Pause");
}

static void on_finished(worker_event *ev, void *ud) {
    state *st = ud;
    (void)ev;
    viewer_set_enabled(st->v, st->pause, 0);
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
    dock = viewer_add_dock(v, "Camera", st, free_state);
    if (dock < 0) return dock;
    st->stats = viewer_add_label(v, dock, "waiting for frames");
    st->pause = viewer_add_button(v, dock, "Pause");

    worker_options_init(&opts);
    opts.name = "camera 1 kHz";
    opts.policy = WORKER_LATEST;  /* live preview: newest frame wins */
    opts.capacity_bytes = BUDGET_BYTES;
    /* Closing the Camera dock closes the plugin: the camera stops, no
       callback runs any more, and free_state runs at once. */
    opts.scope = viewer_dock_scope(v, dock);
    st->w = worker_create(camera, NULL, NULL, &opts);
    if (!st->w) return worker_last_error();
    worker_connect(st->w, WORKER_EV_YIELDED, show_frame, st, NULL);
    worker_connect(st->w, WORKER_EV_PAUSED, paused_changed, st, NULL);
    worker_connect(st->w, WORKER_EV_RESUMED, paused_changed, st, NULL);
    worker_connect(st->w, WORKER_EV_FINISHED, on_finished, st, NULL);
    viewer_connect(v, st->pause, on_pause, st, NULL);
    viewer_watch_worker(v, st->w);
    return worker_start(st->w);
}
