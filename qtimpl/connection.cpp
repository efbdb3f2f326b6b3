// A callback connection's calls (a disconnect racing a running callback
// destroys its user_data exactly once, after the call returns) and the
// report of an error no callback handled.
#include "worker_p.h"

#include <cstdio>

namespace qtw {

namespace {
std::mutex handler_mu;
worker_callback error_handler = nullptr;
void *error_handler_data = nullptr;
}  // namespace

bool Connection::invoke(worker_event *ev) {
    int s = Idle;
    if (!state.compare_exchange_strong(s, Calling)) return false;  // disconnected
    try {
        cb(ev, user_data);
    } catch (...) {
        // A C++ callback that throws must not unwind through Qt's event loop
        // (that ends the process): report it and go on delivering.
        std::fprintf(stderr, "qtworker: a callback of worker '%s' threw an exception\n",
                     worker_name(ev->source));
    }
    s = Calling;
    if (!state.compare_exchange_strong(s, Idle)) {
        // Disconnected while it ran (possibly by itself): destroy now, then
        // tell a worker_scope_close waiting on another thread.
        destroy_user_data();
        state.store(Dead);
        scope_call_ended();
    }
    return true;
}

void Connection::disconnect() {
    for (;;) {
        int s = state.load();
        if (s == Idle) {
            if (state.compare_exchange_weak(s, Dead)) {
                destroy_user_data();
                return;
            }
        } else if (s == Calling) {
            if (state.compare_exchange_weak(s, DeadAfterCall)) return;  // invoke() destroys
        } else {
            return;
        }
    }
}

void report_unhandled_error(worker_event *ev) {
    worker_callback cb;
    void *ud;
    {
        std::lock_guard<std::mutex> lk(handler_mu);
        cb = error_handler;
        ud = error_handler_data;
    }
    if (cb) {
        cb(ev, ud);
        return;
    }
    std::fprintf(stderr, "qtworker: worker '%s' failed (%d): %s\n",
                 worker_name(ev->source), ev->code, ev->message ? ev->message : "");
}

}  // namespace qtw

extern "C" {

void worker_set_error_handler(worker_callback cb, void *user_data) {
    std::lock_guard<std::mutex> lk(qtw::handler_mu);
    qtw::error_handler = cb;
    qtw::error_handler_data = user_data;
}

}  // extern "C"
