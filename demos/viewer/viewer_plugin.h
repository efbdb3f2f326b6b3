/*
 * viewer_plugin.h — the C plugin API of the qtworker demo image viewer.
 *
 * A plugin is a shared module that exports viewer_plugin_init(). The viewer
 * loads it at run time (from its plugin folder or `--plugin PATH`) and calls
 * viewer_plugin_init() once, on the GUI thread. From there the plugin adds
 * image layers, builds dock widgets with buttons, line edits and labels, and
 * runs its long computations in qtworker workers (<qtworker.h>).
 *
 * Threads. Every viewer_* function must be called on the GUI thread: from
 * viewer_plugin_init(), from a viewer callback, or from a qtworker event
 * callback (those run on the GUI thread too). Called from any other thread —
 * typically from inside a worker function — the call is REFUSED: it does
 * nothing, prints one line naming the call to stderr and returns
 * VIEWER_ETHREAD. Hand results to the GUI with worker_yield()/worker_return()
 * and call the viewer from the event callback. To read the GUI from a
 * worker, call home: worker_call_home() runs a function on the GUI thread,
 * after the worker's earlier events were delivered, and hands its result
 * back (viewer_contrast_home() below is one). The only exceptions are
 * viewer_strerror() and the header-only helpers at the end (plain memory and
 * clock, no viewer state).
 *
 * Ownership, as in qtworker: every user_data handed over with a destroy
 * function is destroyed exactly once by the viewer — a connection's when it
 * is disconnected or when the viewer is torn down, a dock's when the viewer
 * is torn down (after all connections) — or at once when the call that
 * handed it over fails. Pixel buffers are never taken: viewer_set_layer()
 * copies them, the caller keeps (and frees) its own.
 *
 * Closing. When the user closes the viewer while workers run, the viewer asks
 * (headless: does not ask), quits every live worker and waits until they and
 * every worker registered with viewer_watch_worker() have delivered FINISHED.
 * Only then are docks destroyed, so event callbacks may use dock user_data.
 *
 * Closing a plugin. Each plugin gets a qtworker scope (viewer_dock_scope).
 * The close button of one of its docks, or Plugins > Close NAME, closes the
 * plugin: worker_scope_close() on its scope (up to 1 s for its functions to
 * return; later the workers are abandoned), then its widget connections and
 * its docks are destroyed, user_data included, at once. Workers created into
 * the scope have no callback running or to come by then, so the dock
 * user_data may own the state they use. Keep your worker handles in that
 * state and unref them in its destroy: a FINISHED callback never comes once
 * the scope is closed. Workers outside the scope keep running and
 * delivering: do not give them the plugin's state.
 *
 * Handles are small positive ints (docks, widgets) and longs (connections);
 * a stale or wrong one gives VIEWER_EINVAL, never a crash.
 */
#ifndef VIEWER_PLUGIN_H
#define VIEWER_PLUGIN_H

#include <qtworker.h>

#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#  define VIEWER_EXPORT __attribute__((visibility("default")))
#else
#  define VIEWER_EXPORT
#endif

typedef struct viewer viewer;                 /* one viewer window; borrowed */
typedef void (*viewer_destroy_fn)(void *p);   /* same shape as worker_destroy_fn */

/* Codes share qtworker's values where they mean the same, so a plugin may
   return either kind from viewer_plugin_init. */
enum {
    VIEWER_OK = 0,
    VIEWER_ADDED = 1,       /* viewer_set_layer: the layer was created       */
    VIEWER_EINVAL = -1,     /* NULL, bad size, unknown or stale handle       */
    VIEWER_ESTATE = -2,     /* wrong kind of widget, or the viewer is closing */
    VIEWER_ETHREAD = -3,    /* called off the GUI thread: refused            */
    VIEWER_ENOMEM = -4
};
/* Static English text for a viewer (or qtworker) status code. Any thread. */
const char *viewer_strerror(int status);

/* -------------------------------------------------------------- entry point */

/* Every plugin exports this. Return VIEWER_OK, or a negative code: the
   viewer then reports the plugin as failed (what it already added stays). */
VIEWER_EXPORT int viewer_plugin_init(viewer *v);
typedef int (*viewer_plugin_init_fn)(viewer *v);

/* ------------------------------------------------------------------- images */

typedef enum { VIEWER_U8, VIEWER_F32 } viewer_pixel;

/* A plain image buffer: width*height pixels, rows packed, no padding. */
typedef struct vimage {
    int width, height;
    viewer_pixel type;
    void *pixels;
} vimage;

/* Add the layer `name` (shown on top) or replace its pixels (size and type
   may change). The pixels are COPIED: img stays the caller's. Returns
   VIEWER_ADDED when the layer was created, VIEWER_OK when it was updated.
   New F32 layers get contrast limits from their data's min..max, U8 0..255;
   an update keeps the limits (the user may have changed them). */
int viewer_set_layer(viewer *v, const char *name, const vimage *img);
/* Set the contrast limits of a layer: lo maps to black, hi to white. */
int viewer_set_contrast(viewer *v, const char *name, double lo, double hi);
/* The contrast limits of a layer now (the user may have changed them). GUI
   thread only, like every viewer call: a worker asks for them with
   worker_call_home() (see viewer_contrast_home()). */
int viewer_get_contrast(viewer *v, const char *name, double *lo, double *hi);

/* ------------------------------------------------------------------ workers */

/* Show w in the viewer while it runs: a progress bar in the status bar (from
   PROGRESS events; busy when the total is unknown), and in the Log dock its
   events and every line it prints with worker_stdout()/worker_stderr(),
   prefixed with worker_name(w) ("NAME > line", "NAME ! stderr line"); warnings,
   errors and timeouts with their message. Call it before worker_start().
   Takes no reference: events carry the worker. The viewer's close waits for
   w's FINISHED (or, if its start failed, for it to be freed). */
int viewer_watch_worker(viewer *v, worker *w);

/* ------------------------------------------------------------------- docks */

/* A dock widget titled `title` (also its name for --click). user_data is
   destroyed with destroy when the viewer is torn down: a natural owner for
   a plugin's state. Returns a dock id > 0 or a negative status. */
int viewer_add_dock(viewer *v, const char *title, void *user_data,
                    viewer_destroy_fn destroy);

/* The scope of the plugin that added `dock` (every dock of a plugin shares
   it): set worker_options.scope to it, and the plugin's close stops those
   workers and their callbacks (see "Closing a plugin" above). NULL for a
   dock no plugin added, a closed plugin, a bad handle or off the GUI thread. */
worker_scope *viewer_dock_scope(viewer *v, int dock);

/* Widgets appended to a dock, top to bottom; consecutive buttons share a
   row, two per row. The text given at creation (button text, label text,
   line edit placeholder) is the widget's name for --click and tests, even
   after viewer_set_text. Return an id > 0 or a negative status. */
int viewer_add_button(viewer *v, int dock, const char *text);
int viewer_add_label(viewer *v, int dock, const char *text);
int viewer_add_line_edit(viewer *v, int dock, const char *placeholder);
/* A live line plot (one curve) titled `title`; viewer_set_text changes the
   title, viewer_set_plot the curve. */
int viewer_add_plot(viewer *v, int dock, const char *title);
/* Show the n samples at y (copied) as the plot's curve, spread evenly across
   its width; the y range grows to fit. ESTATE for a widget that is no plot. */
int viewer_set_plot(viewer *v, int plot, const float *y, int n);

/* Called on the GUI thread: a button was clicked (text = its text), or
   Return was pressed in a line edit (text = its contents, UTF-8, borrowed). */
typedef void (*viewer_callback)(viewer *v, int widget, const char *text,
                                void *user_data);

/* Connect cb to a button or line edit. Returns a connection id > 0 or a
   negative status (ESTATE for a label). */
long viewer_connect(viewer *v, int widget, viewer_callback cb, void *user_data,
                    viewer_destroy_fn destroy);
/* Remove a connection: cb is not called again and its user_data is
   destroyed at once (also when called from inside cb: don't touch it after). */
int viewer_disconnect(viewer *v, int widget, long id);

int viewer_set_enabled(viewer *v, int widget, int enabled);
/* Button text, label text, or line edit contents (copied). */
int viewer_set_text(viewer *v, int widget, const char *text);

/* ---------------------------------------- header-only helpers (any thread) */

/* A zeroed image, or NULL when out of memory. */
static inline vimage *vimage_new(int width, int height, viewer_pixel type) {
    size_t px = type == VIEWER_F32 ? sizeof(float) : 1;
    vimage *img = (vimage *)malloc(sizeof *img);
    if (!img || width <= 0 || height <= 0) { free(img); return NULL; }
    img->width = width;
    img->height = height;
    img->type = type;
    img->pixels = calloc((size_t)width * (size_t)height, px);
    if (!img->pixels) { free(img); return NULL; }
    return img;
}
/* Frees a vimage: fits worker_destroy_fn, so images can be yielded. */
static inline void vimage_free(void *p) {
    vimage *img = (vimage *)p;
    if (img) free(img->pixels);
    free(img);
}
static inline float *vimage_f32(vimage *img) { return (float *)img->pixels; }
static inline unsigned char *vimage_u8(vimage *img) {
    return (unsigned char *)img->pixels;
}

/* Uniform random float in [0, 1) from a per-thread state (xorshift64*);
   seed the state with any non-zero value. */
static inline float vrand01(unsigned long long *state) {
    unsigned long long x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (float)((x * 2685821657736338717ULL) >> 40) / 16777216.0f;
}

/* Sleeping and a monotonic clock for workers; C99 has neither, so they need
   POSIX: #define _POSIX_C_SOURCE 200809L before any #include. */
#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 199309L
#include <errno.h>
#include <time.h>
static inline double vclock_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}
static inline void vsleep_ms(double ms) {
    struct timespec t;
    if (ms <= 0) return;
    t.tv_sec = (time_t)(ms / 1000);
    t.tv_nsec = (long)((ms - (double)t.tv_sec * 1000) * 1e6);
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {}  /* resume after a signal */
}
#endif


/* A worker_home_fn for worker_call_home(): reads a layer's contrast limits
   on the GUI thread. Fill in v and name; rc, lo, hi are the answer. */
typedef struct viewer_contrast_ask {
    viewer *v;
    const char *name;
    int rc;
    double lo, hi;
} viewer_contrast_ask;
static inline void *viewer_contrast_home(void *ask) {
    viewer_contrast_ask *a = (viewer_contrast_ask *)ask;
    a->rc = viewer_get_contrast(a->v, a->name, &a->lo, &a->hi);
    return a;
}

#ifdef __cplusplus
}
#endif
#endif /* VIEWER_PLUGIN_H */
