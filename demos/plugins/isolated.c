/* Beyond napari: plugins the viewer cannot trust, run as PROCESS workers
   (worker_create_process, doc/process.md). "run crashing" runs a module that
   reports a few steps and then dereferences NULL: the viewer gets its
   previews, then ERRORED naming the signal, then FINISHED, and keeps
   running. "run stuck" runs a module that never checks for quit, which no
   thread could stop: "stop stuck" asks, and after a 500 ms grace period the
   helper process is killed (WARNED, ABORTED, FINISHED).

   The modules (crash_plugin.so, stuck_plugin.so) are built into modules/
   next to this plugin, out of the viewer's plugin folder: loaded into the
   viewer they would defeat the isolation. */
#define _GNU_SOURCE  /* dladdr */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KILL_GRACE_MS = 500, PREVIEW = 256 };

/* One button-started process worker and the widgets that show it. */
typedef struct {
    const char *name;     /* worker name, Log dock prefix */
    const char *module;   /* file in modules/ */
    const char *symbol;
    int run, label;       /* widgets; run is disabled while w runs */
    int stop;             /* stop button, or 0 */
    worker *w;            /* while running; the plugin's reference */
} job;

typedef struct {   /* GUI-side state; the dock owns it */
    viewer *v;
    char dir[4096];       /* where this plugin's .so lies */
    job crash, stuck;
    worker_scope *scope;  /* the plugin's: closed with its dock */
} state;

/* The folder this plugin was loaded from: dladdr on an object of ours
   (a data address, since ISO C has no function-to-void* conversion). */
static const char anchor = 0;
static int plugin_dir(char *out, size_t size) {
    Dl_info info;
    const char *slash;
    if (!dladdr(&anchor, &info) || !info.dli_fname) return -1;
    slash = strrchr(info.dli_fname, '/');
    if (!slash) return snprintf(out, size, ".") < (int)size ? 0 : -1;
    return snprintf(out, size, "%.*s", (int)(slash - info.dli_fname), info.dli_fname) < (int)size
               ? 0 : -1;
}

static void say(state *st, job *j, const char *what) {
    char text[512];
    snprintf(text, sizeof text, "%s: %s", j->name, what);
    viewer_set_text(st->v, j->label, text);
}

/* ------------------------------------------------------------ GUI thread */

typedef struct { state *st; job *j; } binding;  /* a callback's user_data */

static void on_yielded(worker_event *ev, void *ud) {
    binding *b = ud;
    const worker_bytes *bytes = ev->value;
    if (bytes && bytes->size == PREVIEW * PREVIEW) {  /* the crashing module's preview */
        vimage img = {PREVIEW, PREVIEW, VIEWER_U8, bytes->data};
        viewer_set_layer(b->st->v, "isolated preview", &img);
        say(b->st, b->j, "running, preview shown");
    } else {
        say(b->st, b->j, "running");
    }
}

/* The first line of the message: "process '...' (pid N) killed by SIGSEGV
   (Segmentation fault); last stderr lines:" (the rest is in the Log dock). */
static void on_errored(worker_event *ev, void *ud) {
    binding *b = ud;
    const char *m = ev->message ? ev->message : "";
    size_t n = strcspn(m, "\n");
    char text[400];
    snprintf(text, sizeof text, "ERRORED (%d)\n%.*s", ev->code, (int)(n < 300 ? n : 300), m);
    say(b->st, b->j, text);
}

static void on_warned(worker_event *ev, void *ud) {
    binding *b = ud;
    char text[400];
    snprintf(text, sizeof text, "WARNED\n%.300s", ev->message ? ev->message : "");
    say(b->st, b->j, text);
}

static void on_aborted(worker_event *ev, void *ud) {
    binding *b = ud;
    (void)ev;
    say(b->st, b->j, "ABORTED");
}

/* Keeps the outcome in the label; only the buttons change back. */
static void on_finished(worker_event *ev, void *ud) {
    binding *b = ud;
    (void)ev;
    viewer_set_enabled(b->st->v, b->j->run, 1);
    if (b->j->stop) viewer_set_enabled(b->st->v, b->j->stop, 0);
    worker_unref(b->j->w);
    b->j->w = NULL;
}

static void connect_all(state *st, job *j) {
    static const struct { worker_event_type type; worker_callback cb; } table[] = {
        {WORKER_EV_YIELDED, on_yielded}, {WORKER_EV_ERRORED, on_errored},
        {WORKER_EV_WARNED, on_warned},   {WORKER_EV_ABORTED, on_aborted},
        {WORKER_EV_FINISHED, on_finished}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        binding *b = malloc(sizeof *b);
        if (!b) continue;
        b->st = st;
        b->j = j;
        worker_connect(j->w, table[i].type, table[i].cb, b, free);
    }
}

static void on_run(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    job *j = button == st->crash.run ? &st->crash : &st->stuck;
    char path[4200];
    worker_options opts;
    worker_process_options popts;
    (void)text;
    if (j->w) return;  /* one at a time: the button is disabled anyway */
    snprintf(path, sizeof path, "%s/modules/%s", st->dir, j->module);
    worker_options_init(&opts);
    opts.name = j->name;
    opts.scope = st->scope;
    worker_process_options_init(&popts);
    popts.kill_grace_ms = KILL_GRACE_MS;
    /* No argument: the crashing module takes its default of 3 steps. */
    j->w = worker_create_process(path, j->symbol, NULL, 0, &opts, &popts);
    if (!j->w) {
        say(st, j, worker_strerror(worker_last_error()));
        return;
    }
    connect_all(st, j);
    viewer_watch_worker(v, j->w);
    if (worker_start(j->w) != WORKER_OK) {
        say(st, j, "could not start");
        worker_unref(j->w);
        j->w = NULL;
        return;
    }
    viewer_set_enabled(v, j->run, 0);
    if (j->stop) viewer_set_enabled(v, j->stop, 1);
    say(st, j, "starting a helper process");
}

/* Asks; the library kills the helper KILL_GRACE_MS later, as the module
   never looks. */
static void on_stop(viewer *v, int button, const char *text, void *ud) {
    state *st = ud;
    (void)v; (void)button; (void)text;
    if (!st->stuck.w) return;
    worker_quit(st->stuck.w);
    say(st, &st->stuck, "quit asked; killed if still running after 500 ms");
}

static void free_state(void *p) {
    state *st = p;
    worker_unref(st->crash.w);  /* NULL-safe; set only if never finished */
    worker_unref(st->stuck.w);
    free(st);
}

static void add_job(viewer *v, int dock, state *st, job *j, const char *run_text) {
    j->run = viewer_add_button(v, dock, run_text);
    viewer_connect(v, j->run, on_run, st, NULL);
}

int viewer_plugin_init(viewer *v) {
    state *st = calloc(1, sizeof *st);
    int dock;
    if (!st) return VIEWER_ENOMEM;
    st->v = v;
    st->crash = (job){"crashing plugin", "crash_plugin.so", "crashy_plugin_run", 0, 0, 0, NULL};
    st->stuck = (job){"stuck plugin", "stuck_plugin.so", "stubborn_plugin_run", 0, 0, 0, NULL};
    dock = viewer_add_dock(v, "Isolated plugins", st, free_state);  /* owns st */
    if (dock < 0) return dock;
    /* Closing the dock closes the plugin: its workers stop, none of their
       callbacks runs again, and the state is freed at once. */
    st->scope = viewer_dock_scope(v, dock);
    if (plugin_dir(st->dir, sizeof st->dir) != 0) return VIEWER_EINVAL;
    add_job(v, dock, st, &st->crash, "run crashing");
    add_job(v, dock, st, &st->stuck, "run stuck");
    st->stuck.stop = viewer_add_button(v, dock, "stop stuck");
    viewer_set_enabled(v, st->stuck.stop, 0);
    viewer_connect(v, st->stuck.stop, on_stop, st, NULL);
    st->crash.label = viewer_add_label(v, dock, "crashing plugin: not run");
    st->stuck.label = viewer_add_label(v, dock, "stuck plugin: not run");
    return VIEWER_OK;
}
