// Plugin scopes (issue 18): a set of workers closed together, so a plugin can
// free the state its callbacks use as soon as its dock is gone.
//
// One mutex guards the set of open scopes, every scope's members and every
// worker's `scope` pointer: scopes are opened and closed rarely, and a
// worker touches it only when it joins (create) and when it is freed.
// Lock order: scopes mutex, then the registry's (acquire); never a worker's
// mu while holding it.
#include "worker_p.h"

#include <chrono>
#include <unordered_set>

struct worker_scope {
    std::string name;  // for debugging
    std::unordered_set<worker *> members;
};

namespace qtw {
namespace {

struct Scopes {
    std::mutex mu;
    std::unordered_set<const worker_scope *> open;
    // A connection whose callback was running when it was disconnected
    // reports here when that call has returned (scope_call_ended).
    std::mutex calls_mu;
    std::condition_variable calls_cv;
};

// Leaked on purpose, like the registry: workers may be freed at exit.
Scopes &scopes() {
    static Scopes *s = new Scopes;
    return *s;
}
QTW_MAKE_AT_LOAD(scopes);

// Takes the members out of a scope being closed (each with a temporary
// reference) and forgets it; false if it is not open. A member whose count
// reached 0 is being freed: its ~worker is waiting for the mutex and will
// find its scope pointer cleared.
bool take_members(worker_scope *s, std::vector<worker *> &out) {
    Scopes &all = scopes();
    std::lock_guard<std::mutex> lk(all.mu);
    if (!all.open.count(s)) return false;
    out.reserve(s->members.size());  // may throw: then nothing has changed
    all.open.erase(s);
    for (worker *w : s->members) {
        w->scope = nullptr;
        if (acquire(w)) out.push_back(w);
    }
    return true;
}

// Quits w, refuses its start and new connections, and disconnects every
// callback; returns the connections (no allocation: this cannot fail).
std::shared_ptr<ConnectionSnapshot> abandon(worker *w, Dispatcher **home) {
    std::shared_ptr<ConnectionSnapshot> conns;  // read-only here: the home thread may share it
    // Quit first: from the moment its callbacks are gone, nothing the worker
    // still does may run on the home thread as if they had seen it (a
    // call_home after an event whose callbacks were just removed).
    worker_quit(w);  // ESTATE once the function has ended: nothing to stop
    {
        std::lock_guard<StreamMutex> lk(w->mu);
        w->scope_closed = true;
        conns.swap(w->conns);
        w->conns_shared = false;
        w->conn_version.fetch_add(1);
        *home = w->dispatcher;  // null: never started, so no callback ever ran
    }
    if (conns)
        for (auto &c : conns->conns) c->disconnect();  // user_data destroyed now, or when its call returns
    return conns;
}

// Until every callback of conns that was running at its disconnect has returned.
void wait_calls(const std::shared_ptr<ConnectionSnapshot> &conns) {
    if (!conns) return;
    Scopes &all = scopes();
    std::unique_lock<std::mutex> lk(all.calls_mu);
    for (auto &c : conns->conns)
        all.calls_cv.wait(lk, [&] { return c->state.load() == Connection::Dead; });
}

int await_members(const std::vector<worker *> &members, int timeout_ms) {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
    worker_ctx *self = current_ctx();
    int rc = WORKER_OK;
    for (worker *w : members) {
        if (self && self->w == w) continue;  // closed from its own function
        int left = -1;
        if (timeout_ms >= 0) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            left = ms.count() > 0 ? (int)ms.count() : 0;
        }
        if (worker_await(w, left) == WORKER_ETIMEDOUT) rc = WORKER_ETIMEDOUT;
    }
    return rc;
}

int close_scope(worker_scope *s, int timeout_ms) {
    std::vector<worker *> members;
    try {
        if (!take_members(s, members)) return WORKER_EINVAL;
    } catch (...) {
        return status_of_current_exception();
    }
    delete s;  // no worker points to it any more
    // Every member is quit before any running callback is waited for: that
    // callback may itself be waiting for a sibling member to end.
    for (worker *w : members) worker_quit(w);  // ESTATE once ended: nothing to stop
    for (worker *w : members) {
        Dispatcher *home = nullptr;
        auto conns = abandon(w, &home);
        // On the home thread a running callback is below us on this stack
        // (or is this very caller): it cannot be waited for.
        if (home && !dispatcher_is_current_thread(home)) wait_calls(conns);
    }
    int rc = await_members(members, timeout_ms);
    for (worker *w : members) release(w);
    return rc;
}

}  // namespace

int scope_join(worker *w, worker_scope *s) {
    if (!s) return WORKER_OK;
    return guarded([&]() -> int {
        Scopes &all = scopes();
        std::lock_guard<std::mutex> lk(all.mu);
        if (!all.open.count(s)) return WORKER_ESTATE;
        s->members.insert(w);  // may throw: then not a member
        w->scope = s;
        w->scoped = true;
        return WORKER_OK;
    });
}

void scope_forget(worker *w) {
    Scopes &all = scopes();
    std::lock_guard<std::mutex> lk(all.mu);
    if (w->scope) w->scope->members.erase(w);
    w->scope = nullptr;
}

void scope_call_ended() {
    Scopes &all = scopes();
    { std::lock_guard<std::mutex> lk(all.calls_mu); }  // a waiter is waiting or sees Dead
    all.calls_cv.notify_all();
}

}  // namespace qtw

extern "C" {

worker_scope *worker_scope_new(const char *name) {
    auto *s = new (std::nothrow) worker_scope;
    if (!s) return nullptr;
    try {
        if (name) s->name = name;
        qtw::Scopes &all = qtw::scopes();
        std::lock_guard<std::mutex> lk(all.mu);
        all.open.insert(s);
    } catch (...) {
        delete s;
        return nullptr;
    }
    return s;
}

int worker_scope_close(worker_scope *s, int timeout_ms) {
    if (!s) return WORKER_EINVAL;
    return qtw::guarded([&]() -> int { return qtw::close_scope(s, timeout_ms); });
}

}  // extern "C"
