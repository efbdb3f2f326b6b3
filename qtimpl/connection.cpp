// A callback connection's calls (a disconnect racing a running callback
// destroys its user_data exactly once, after the call returns) and the
// report of an error no callback handled.
#include "barrier.h"
#include "worker_p.h"

#include <cstdio>

namespace qtw {

namespace {
std::mutex handler_mu;
worker_callback error_handler = nullptr;
void *error_handler_data = nullptr;
}  // namespace

// Dekker between invoke (running = true, light fence, look at state) and
// disconnect (mark state, heavy fence, look at running): a call never
// begins once a disconnect has seen it not running, and the one that sees
// the other finishes the disconnect (both may try: finish() decides).
bool Connection::invoke(worker_event *ev) {
    running.store(true, std::memory_order_relaxed);
    light_fence();
    bool call = state.load(std::memory_order_acquire) == Idle;
    if (call) {
        try {
            cb(ev, user_data);
        } catch (...) {
            // A C++ callback that throws must not unwind through Qt's event
            // loop (that ends the process): report it and go on delivering.
            std::fprintf(stderr, "qtworker: a callback of worker '%s' threw an exception\n",
                         worker_name(ev->source));
        }
    }
    running.store(false, std::memory_order_release);  // the call's reads of user_data came before
    light_fence();
    // Disconnected while it ran (possibly by itself): destroy now.
    if (state.load(std::memory_order_acquire) == DeadAfterCall) finish();
    return call;
}

void Connection::finish() {
    int s = DeadAfterCall;
    if (!state.compare_exchange_strong(s, Finishing)) return;  // the other side did
    destroy_user_data();
    state.store(Dead);
    scope_call_ended();  // a worker_scope_close on another thread may wait for it
}

void Connection::disconnect() {
    int s = Idle;
    if (!state.compare_exchange_strong(s, DeadAfterCall)) return;  // disconnected before
    heavy_fence();
    if (!running.load(std::memory_order_acquire)) finish();  // else its call's end does
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

ConnectionSnapshot &writable_conns_locked(worker *w) {
    if (!w->conns) {
        w->conns = std::make_shared<ConnectionSnapshot>();
        w->conns->conns.reserve(4);  // a typical plugin's: no regrowth
        w->conns_shared = false;  // the home thread held the shared empty list, not this one
    } else if (w->conns_shared) {
        w->conns = std::make_shared<ConnectionSnapshot>(*w->conns);
        w->conns_shared = false;
    }
    return *w->conns;
}

void ConnectionSnapshot::add(std::shared_ptr<Connection> c) {
    uint32_t at = begin[c->type + 1];  // the end of its type's group
    conns.insert(conns.begin() + at, std::move(c));
    for (int t = conns[at]->type + 1; t <= kTypes; t++) begin[t]++;
}

bool ConnectionSnapshot::has(long id) const {
    for (const auto &c : conns)
        if (c->id == id) return true;
    return false;
}

std::shared_ptr<Connection> ConnectionSnapshot::remove(long id) {
    for (size_t i = 0; i < conns.size(); i++) {
        if (conns[i]->id != id) continue;
        std::shared_ptr<Connection> gone = std::move(conns[i]);
        conns.erase(conns.begin() + long(i));
        for (int t = gone->type + 1; t <= kTypes; t++) begin[t]--;
        return gone;
    }
    return nullptr;
}

}  // namespace qtw

extern "C" {

void worker_set_error_handler(worker_callback cb, void *user_data) {
    std::lock_guard<std::mutex> lk(qtw::handler_mu);
    qtw::error_handler = cb;
    qtw::error_handler_data = user_data;
}

}  // extern "C"
