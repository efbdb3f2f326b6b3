// The per-worker ordered event stream: the worker thread pushes, the home
// thread's dispatcher drains. Policies (BLOCK / QUEUE / LATEST) apply to data
// entries; control entries (started, paused, outcome, finished) never wait.
#include "worker_p.h"

namespace qtw {

void Entry::release() {
    if (destroy) destroy(value);
    destroy = nullptr;
    value = nullptr;
}

bool counts_against_capacity(worker_event_type t) {
    return t == WORKER_EV_YIELDED || t == WORKER_EV_WARNED ||
           t == WORKER_EV_PROGRESS || t == WORKER_EV_CUSTOM || t == WORKER_EV_OUTPUT;
}

static bool coalesces(worker_event_type t) {
    return t == WORKER_EV_YIELDED || t == WORKER_EV_PROGRESS;
}

static void append_locked(worker *w, Entry &&e) {
    if (counts_against_capacity(e.type)) w->data_entries++;
    w->stream.push_back(std::move(e));
    if (!w->scheduled) {
        // Empty -> non-empty: exactly one wakeup for the whole batch.
        w->scheduled = true;
        dispatcher_schedule(w->dispatcher, w);
    }
}

void push_control_locked(worker *w, std::unique_lock<std::mutex> &, Entry &&e) {
    append_locked(w, std::move(e));
}

// Under LATEST an undelivered yield (or progress) is replaced by the newer
// one; the old entry is moved out so it is destroyed outside the lock.
static bool take_stale_locked(worker *w, worker_event_type t, Entry *stale) {
    for (size_t i = w->stream.size(); i-- > 0;) {
        if (w->stream.at(i).type != t) continue;
        *stale = w->stream.take(i);
        w->data_entries--;
        return true;
    }
    return false;
}

int push_data_locked(worker *w, std::unique_lock<std::mutex> &lk, Entry &e, Entry *stale) {
    if (w->policy == WORKER_LATEST && coalesces(e.type) && take_stale_locked(w, e.type, stale) &&
        e.type == WORKER_EV_YIELDED)
        w->dropped.fetch_add(1);
    // Output waits at capacity under every policy: a chatty worker cannot
    // exhaust memory, and no line is ever dropped.
    bool bounded = w->policy != WORKER_QUEUE || e.type == WORKER_EV_OUTPUT;
    while (!w->abort_requested && bounded &&
           w->data_entries >= w->capacity && w->home_waiters == 0) {
        w->space_waiters++;
        w->space_cv.wait(lk);
        w->space_waiters--;
    }
    // After quit, yields are refused (the producer should return) but a
    // warning, progress or custom event still reaches the GUI, unblocked.
    if (w->abort_requested && e.type == WORKER_EV_YIELDED) return WORKER_ABORTED;
    append_locked(w, std::move(e));
    return WORKER_OK;
}

int push_data(worker *w, Entry &&e) {
    Entry stale;
    int rc;
    {
        std::unique_lock<std::mutex> lk(w->mu);
        rc = push_data_locked(w, lk, e, &stale);
    }
    stale.release();
    if (rc != WORKER_OK) e.release();
    return rc;
}

}  // namespace qtw
