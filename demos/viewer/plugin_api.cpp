// The C plugin API (viewer_plugin.h): thread check, handle check, then the
// Viewer method. A call from a non-GUI thread is refused before anything is
// touched — touching widgets from a worker is the classic bug.
#include "viewer_window.h"

#include <QCoreApplication>
#include <QThread>

#include <cstdio>
#include <set>

namespace {

std::set<viewer *> &live_handles() {  // GUI thread only
    static std::set<viewer *> s;
    return s;
}

bool on_gui_thread(const char *call) {
    QCoreApplication *app = QCoreApplication::instance();
    if (app && QThread::currentThread() == app->thread()) return true;
    std::fprintf(stderr,
                 "viewer: %s() called off the GUI thread: refused (call it from an event "
                 "callback)\n", call);
    return false;
}

// The Viewer behind a handle, or the status to return.
int resolve(const char *call, viewer *v, Viewer **out) {
    if (!on_gui_thread(call)) return VIEWER_ETHREAD;
    if (!v || !live_handles().count(v)) return VIEWER_EINVAL;
    *out = v->self;
    return VIEWER_OK;
}

void drop(void *ud, viewer_destroy_fn destroy) {
    if (destroy) destroy(ud);
}

}  // namespace

viewer *viewer_handle_new(Viewer *self) {
    viewer *h = new viewer{self};
    live_handles().insert(h);
    return h;
}

void viewer_handle_free(viewer *h) {
    live_handles().erase(h);
    delete h;
}

// Each entry point: resolve the handle on the GUI thread or return why not.
#define VIEWER_RESOLVE(v, V)                          \
    Viewer *V = nullptr;                              \
    if (int rc_ = resolve(__func__, v, &V)) return rc_

extern "C" {

const char *viewer_strerror(int status) {
    switch (status) {
    case VIEWER_OK: return "ok";
    case VIEWER_ADDED: return "layer added";
    case VIEWER_EINVAL: return "invalid argument (NULL, bad size, unknown or stale handle)";
    case VIEWER_ESTATE: return "not valid for this widget or in the viewer's state";
    case VIEWER_ETHREAD: return "called off the GUI thread: refused";
    case VIEWER_ENOMEM: return "out of memory";
    default: return worker_strerror(status);
    }
}

int viewer_set_layer(viewer *v, const char *name, const vimage *img) {
    VIEWER_RESOLVE(v, V);
    return V->set_layer(name, img);
}

int viewer_set_contrast(viewer *v, const char *name, double lo, double hi) {
    VIEWER_RESOLVE(v, V);
    return V->set_contrast(name, lo, hi);
}

int viewer_get_contrast(viewer *v, const char *name, double *lo, double *hi) {
    VIEWER_RESOLVE(v, V);
    return V->get_contrast(name, lo, hi);
}

int viewer_watch_worker(viewer *v, worker *w) {
    VIEWER_RESOLVE(v, V);
    return V->watch(w);
}

int viewer_add_dock(viewer *v, const char *title, void *user_data, viewer_destroy_fn destroy) {
    Viewer *V = nullptr;
    int rc = resolve(__func__, v, &V);
    if (rc == VIEWER_OK && V->closing()) rc = VIEWER_ESTATE;
    if (rc != VIEWER_OK) {
        drop(user_data, destroy);
        return rc;
    }
    return V->add_dock(title, user_data, destroy);
}

worker_scope *viewer_dock_scope(viewer *v, int dock) {
    Viewer *V = nullptr;
    return resolve(__func__, v, &V) == VIEWER_OK ? V->dock_scope(dock) : nullptr;
}

int viewer_add_button(viewer *v, int dock, const char *text) {
    VIEWER_RESOLVE(v, V);
    return V->add_widget(dock, Viewer::Kind::Button, text);
}

int viewer_add_label(viewer *v, int dock, const char *text) {
    VIEWER_RESOLVE(v, V);
    return V->add_widget(dock, Viewer::Kind::Label, text);
}

int viewer_add_line_edit(viewer *v, int dock, const char *placeholder) {
    VIEWER_RESOLVE(v, V);
    return V->add_widget(dock, Viewer::Kind::LineEdit, placeholder);
}

int viewer_add_plot(viewer *v, int dock, const char *title) {
    VIEWER_RESOLVE(v, V);
    return V->add_widget(dock, Viewer::Kind::Plot, title);
}

int viewer_set_plot(viewer *v, int plot, const float *y, int n) {
    VIEWER_RESOLVE(v, V);
    return V->set_plot(plot, y, n);
}

long viewer_connect(viewer *v, int widget, viewer_callback cb, void *user_data,
                    viewer_destroy_fn destroy) {
    Viewer *V = nullptr;
    if (int rc = resolve(__func__, v, &V)) {
        drop(user_data, destroy);
        return rc;
    }
    return V->connect_widget(widget, cb, user_data, destroy);
}

int viewer_disconnect(viewer *v, int widget, long id) {
    VIEWER_RESOLVE(v, V);
    return V->disconnect_widget(widget, id);
}

int viewer_set_enabled(viewer *v, int widget, int enabled) {
    VIEWER_RESOLVE(v, V);
    return V->set_enabled(widget, enabled != 0);
}

int viewer_set_text(viewer *v, int widget, const char *text) {
    VIEWER_RESOLVE(v, V);
    return V->set_text(widget, text);
}

}  // extern "C"
