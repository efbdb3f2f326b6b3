/* Beyond napari: code that prints as it runs, as lab and ML code does. A
   (simulated) training run prints one line per epoch to worker_stdout(), a
   note to worker_stderr() at every checkpoint, and warns (worker_warn) when
   the loss goes up. The viewer's Log dock shows each line prefixed with the
   worker's name, in the order the worker produced them. "Train" starts
   another run once the last one has finished. */
#define _POSIX_C_SOURCE 200809L  /* vsleep_ms */
#include <qtworker.h>
#include "viewer_plugin.h"

#include <stdio.h>
#include <stdlib.h>

enum { EPOCHS = 30, CHECKPOINT_EVERY = 10 };

typedef struct {   /* GUI-side state; the dock owns it */
    viewer *v;
    int runs;
    int train, status;   /* widgets */
    worker_scope *scope;  /* the plugin's: closed with its dock */
} state;

static void train(worker_ctx *ctx, void *arg) {
    FILE *out = worker_stdout(ctx), *err = worker_stderr(ctx);
    unsigned long long rng = 0x5EED;
    double loss = 2.5, best = loss, *result = malloc(sizeof *result);
    char text[32];
    (void)arg;
    if (!result) {
        worker_fail(ctx, WORKER_ENOMEM, "no memory for the result");
        return;
    }
    fprintf(out, "training for %d epochs\n", EPOCHS);
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        vsleep_ms(40);  /* one epoch of work */
        loss = 0.1 + (loss - 0.1) * 0.85 + 0.1 * (vrand01(&rng) - 0.5);
        fprintf(out, "epoch %d loss %.4f\n", epoch, loss);
        if (loss > best)
            worker_warn(ctx, "epoch %d: loss went up to %.4f (best %.4f)", epoch, loss, best);
        else
            best = loss;
        if (epoch % CHECKPOINT_EVERY == 0)
            fprintf(err, "epoch %d: checkpoint not saved (no disk in this demo)\n", epoch);
        snprintf(text, sizeof text, "loss %.4f", loss);
        worker_progress(ctx, epoch, EPOCHS, text);
        if (worker_abort_requested(ctx)) {
            fprintf(out, "stopped after epoch %d\n", epoch);
            free(result);
            return;
        }
    }
    *result = best;
    worker_return(ctx, result, free);
}

static void show_progress(worker_event *ev, void *ud) {
    state *st = ud;
    char text[64];
    snprintf(text, sizeof text, "epoch %lld/%lld: %s", ev->done, ev->total, ev->message);
    viewer_set_text(st->v, st->status, text);
}

static void show_result(worker_event *ev, void *ud) {
    state *st = ud;
    char text[64];
    snprintf(text, sizeof text, "done: best loss %.4f", *(double *)ev->value);
    viewer_set_text(st->v, st->status, text);
}

static void on_finished(worker_event *ev, void *ud) {
    state *st = ud;
    viewer_set_enabled(st->v, st->train, 1);
    worker_unref(ev->source);  /* the reference from start_run */
}

static int start_run(state *st) {
    worker_options opts;
    char name[32];
    worker *w;
    int rc;
    snprintf(name, sizeof name, "training run %d", ++st->runs);
    worker_options_init(&opts);
    opts.name = name;
    opts.scope = st->scope;
    w = worker_create(train, NULL, NULL, &opts);
    if (!w) return worker_last_error();
    worker_connect(w, WORKER_EV_PROGRESS, show_progress, st, NULL);
    worker_connect(w, WORKER_EV_RETURNED, show_result, st, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, st, NULL);
    viewer_watch_worker(st->v, w);  /* its lines go to the Log dock */
    rc = worker_start(w);
    if (rc == WORKER_OK) viewer_set_enabled(st->v, st->train, 0);
    else worker_unref(w);
    return rc;
}

static void on_train(viewer *v, int button, const char *text, void *ud) {
    (void)v; (void)button; (void)text;
    start_run(ud);
}

int viewer_plugin_init(viewer *v) {
    state *st = calloc(1, sizeof *st);
    int dock;
    if (!st) return VIEWER_ENOMEM;
    st->v = v;
    dock = viewer_add_dock(v, "Training", st, free);  /* owns st */
    if (dock < 0) return dock;
    /* Closing the dock closes the plugin: its workers stop, none of their
       callbacks runs again, and the state is freed at once. */
    st->scope = viewer_dock_scope(v, dock);
    st->status = viewer_add_label(v, dock, "not started");
    st->train = viewer_add_button(v, dock, "Train");
    viewer_connect(v, st->train, on_train, st, NULL);
    return start_run(st);
}
