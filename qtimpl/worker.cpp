// Owner side of the C API: create, refs, connect, start, send, flow control,
// await. Every call validates its handle through the registry first.
#include "fault.h"
#include "worker_p.h"

#include <QCoreApplication>

#include <chrono>
#include <cstring>

using qtw::Phase;

namespace {

thread_local int last_error = WORKER_OK;
std::atomic<long> worker_serial{0};

void destroy_value(void *value, worker_destroy_fn destroy) {
    if (destroy) destroy(value);
}

// A temporary reference for the duration of one API call.
class Handle {
public:
    explicit Handle(const worker *w) : w_(qtw::acquire(w) ? const_cast<worker *>(w) : nullptr) {}
    ~Handle() { if (w_) qtw::release(w_); }
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    worker *get() const { return w_; }
    worker *operator->() const { return w_; }
    explicit operator bool() const { return w_ != nullptr; }

private:
    worker *w_;
};

// The function has returned (leftovers may still be being destroyed).
bool ended(const worker *w) { return w->phase == Phase::Ending || w->phase == Phase::Done; }

long add_connection(worker *w, worker_event_type type, const char *custom_name,
                    worker_callback cb, void *user_data, worker_destroy_fn ud_destroy) {
    Handle h(w);
    bool bad_type = (int)type < (int)WORKER_EV_STARTED || (int)type > (int)WORKER_EV_OUTPUT;
    if (!h || !cb || bad_type) {
        destroy_value(user_data, ud_destroy);
        return WORKER_EINVAL;
    }
    // From here c owns user_data: destroyed once when c dies (refused,
    // or an allocation failed) or after a disconnect.
    std::shared_ptr<qtw::Connection> c;
    try {
        qtw::fault::check(qtw::fault::Connection);
        c = std::make_shared<qtw::Connection>();
    } catch (...) {
        destroy_value(user_data, ud_destroy);
        return qtw::status_of_current_exception();
    }
    c->type = type;
    c->cb = cb;
    c->user_data = user_data;
    c->user_data_destroy = ud_destroy;
    return qtw::guarded([&]() -> long {
        c->filter_name = custom_name != nullptr;
        if (custom_name) c->custom_name = custom_name;
        std::lock_guard<qtw::StreamMutex> lk(h->mu);
        if (h->finished_delivered || h->scope_closed) return WORKER_ESTATE;
        // Unique in the process, not per worker: an id of another worker
        // is unknown to this one (EINVAL), never one of its own.
        static std::atomic<long> next_id{1};
        long id = next_id.fetch_add(1, std::memory_order_relaxed);
        c->id = id;
        qtw::writable_conns_locked(h.get()).add(std::move(c));  // a throw destroys c (and user_data) once
        h->conn_version.fetch_add(1);
        return id;
    });
}

// Under w->mu: a running worker (not parked, not waiting for a value) was
// asked to pause or quit: its PAUSED or FINISHED is due at its next yield.
// A parked worker is not: the wake-up needs a CPU, maybe the home thread's.
bool asks_for_reply(const worker *w) {
    bool running = (w->phase == Phase::Started || w->phase == Phase::Running) && !w->paused &&
                   !w->receive_waiting && w->space_waiters.load(std::memory_order_relaxed) == 0 &&
                   w->dispatcher;
    return running && (w->pause_requested || w->abort_requested);
}

// Shared shape of pause / resume / toggle / quit: validate, then mutate.
// change() returns whether a waiting worker must be woken; that happens
// after w->mu is released, so the woken thread does not run straight into
// the lock this call still holds (resume p99: one futex round trip less).
template <typename F>
int control(worker *w, F &&change) {
    Handle h(w);  // keeps w alive until the wake-up below
    if (!h) return WORKER_EINVAL;
    bool wake;
    // A RESUMED queued below reaches the home thread last, after the
    // parked worker's wake-up: that is what resume's latency is.
    qtw::ScheduleAfterUnlock schedule;
    {
        std::unique_lock<qtw::StreamMutex> lk(h->mu);
        if (ended(h.get())) return WORKER_ESTATE;
        bool was_asked = asks_for_reply(h.get());
        wake = change(h.get(), lk);
        // Under mu: the reply cannot be delivered before it is expected.
        bool asked = asks_for_reply(h.get());
        if (asked != was_asked) qtw::dispatcher_reply_asked(h.get(), asked);  // or cancelled
        if (h->poke) h->poke(h.get());  // a process worker's proxy (process.cpp)
    }
    if (wake) {
        h->pause_cv.notify_all();
        h->space_cv.notify_all();
    }
    return WORKER_OK;
}

using Lock = std::unique_lock<qtw::StreamMutex>;

bool request_pause(worker *w, Lock &) {
    w->pause_requested = true;
    return w->receive_waiting;  // a worker waiting in worker_receive parks now
}

bool request_resume(worker *w, Lock &lk) {
    // Counted: the park this ends ends even if a pause is asked again before
    // the worker wakes (a process worker's child is told to resume as well).
    if (w->pause_requested || w->paused) w->resumes++;
    w->pause_requested = false;
    // Parked: RESUMED is queued from here, in its place (the worker emits
    // nothing while parked), so the woken worker goes straight back to its
    // function: no event to queue, no GUI wake-up on its way (resume p50).
    if (w->paused && !w->poke && !w->abort_requested) {
        w->paused = false;
        qtw::push_control_locked(w, lk, qtw::Entry(WORKER_EV_RESUMED));
    }
    return true;
}

}  // namespace

static void fill_from_options(worker *w, const worker_options *opts, int policy) {
    long serial = worker_serial.fetch_add(1) + 1;
    w->name = opts->name ? std::string(opts->name) : "worker-" + std::to_string(serial);
    w->policy = (worker_policy)policy;
    w->capacity = opts->capacity ? opts->capacity : WORKER_DEFAULT_CAPACITY;
    w->capacity_bytes = opts->capacity_bytes;
    w->progress_total = opts->progress_total;
    if (opts->progress_desc) {
        w->progress_desc = opts->progress_desc;
        w->has_progress_desc = true;
    }
    if (opts->group) w->group = opts->group;
    w->group_exclusive = opts->group_exclusive != 0;
    w->timeout_ms = opts->timeout_ms;
    w->home = qtw::creator_home_dispatcher();
}

worker::~worker() {
    if (scoped) qtw::scope_forget(this);
    qtw::pipe_forget(this);
    if (!arg_consumed && arg_destroy) arg_destroy(arg);
    inbox.for_each([](qtw::Sent &s) { destroy_value(s.value, s.destroy); });
    qtw::free_ring(this);  // the oldest entries: the ring is drained first
    qtw::free_recycler(this);
    stream.for_each([](qtw::Entry &e) { e.release(); });
    batch.for_each([](qtw::Entry &e) { e.release(); });
    destroy_value(result, result_destroy);
}

extern "C" {

int worker_last_error(void) { return last_error; }

void worker_options_init(worker_options *opts) {
    if (!opts) return;
    opts->name = nullptr;
    opts->policy = WORKER_BLOCK;
    opts->capacity = WORKER_DEFAULT_CAPACITY;
    opts->progress_total = 0;
    opts->progress_desc = nullptr;
    opts->group = nullptr;
    opts->group_exclusive = 0;
    opts->timeout_ms = 0;
    opts->scope = nullptr;
    opts->capacity_bytes = 0;
}

worker *worker_create(worker_fn fn, void *arg, worker_destroy_fn arg_destroy,
                      const worker_options *opts) {
    worker_options defaults;
    worker_options_init(&defaults);
    if (!opts) opts = &defaults;
    // Read as an int: a C caller may store any value in the enum field, and
    // loading an out-of-range enum is undefined in C++.
    int policy;
    static_assert(sizeof policy == sizeof opts->policy, "enum is int-sized");
    std::memcpy(&policy, &opts->policy, sizeof policy);
    bool bad = !fn || policy < (int)WORKER_BLOCK || policy > (int)WORKER_LATEST ||
               opts->capacity > WORKER_MAX_CAPACITY || opts->progress_total < 0 ||
               opts->timeout_ms < 0 || (opts->group && !*opts->group) ||
               (policy == (int)WORKER_QUEUE && opts->capacity_bytes);  // QUEUE is unbounded
    if (bad) {
        last_error = WORKER_EINVAL;
        destroy_value(arg, arg_destroy);
        return nullptr;
    }
    worker *w = qtw::fault::hit(qtw::fault::Create) ? nullptr : new (std::nothrow) worker;
    if (!w) {
        last_error = WORKER_ENOMEM;
        destroy_value(arg, arg_destroy);
        return nullptr;
    }
    w->fn = fn;
    w->arg = arg;  // from here ~worker destroys arg if w is deleted unstarted
    w->arg_destroy = arg_destroy;
    try {
        fill_from_options(w, opts, policy);
        qtw::register_worker(w);
    } catch (...) {
        last_error = qtw::status_of_current_exception();
        delete w;
        return nullptr;
    }
    // Joined after registering: a close that runs meanwhile quits it or it
    // is refused here (then dropped like any unstarted worker).
    if (int rc = qtw::scope_join(w, opts->scope)) {
        last_error = rc;
        qtw::release(w);
        return nullptr;
    }
    last_error = WORKER_OK;
    return w;
}


worker *worker_ref(worker *w) {
    Handle h(w);
    if (!h) return nullptr;
    h->owner_refs.fetch_add(1);
    h->total_refs.fetch_add(1);
    return w;
}

void worker_unref(worker *w) {
    Handle h(w);
    if (!h) return;
    int n = h->owner_refs.load();
    do {
        if (n <= 0) return;  // more unrefs than refs: ignore, never free twice
    } while (!h->owner_refs.compare_exchange_weak(n, n - 1));
    if (n == 1) worker_quit(w);  // nobody owns it any more: stop it
    qtw::release(w);             // the owner's reference
}

long worker_connect(worker *w, worker_event_type type, worker_callback cb,
                    void *user_data, worker_destroy_fn user_data_destroy) {
    // A C caller may pass any int: check it as an int before it is used as
    // the enum (an out-of-range enum value is undefined in C++).
    int raw;
    static_assert(sizeof raw == sizeof type, "enum is int-sized");
    std::memcpy(&raw, &type, sizeof raw);
    if (raw < (int)WORKER_EV_STARTED || raw > (int)WORKER_EV_OUTPUT) {
        destroy_value(user_data, user_data_destroy);
        return WORKER_EINVAL;
    }
    return add_connection(w, type, nullptr, cb, user_data, user_data_destroy);
}

long worker_connect_custom(worker *w, const char *name, worker_callback cb,
                           void *user_data, worker_destroy_fn user_data_destroy) {
    if (!name) {
        destroy_value(user_data, user_data_destroy);
        return WORKER_EINVAL;
    }
    return add_connection(w, WORKER_EV_CUSTOM, name, cb, user_data, user_data_destroy);
}

int worker_disconnect(worker *w, long id) {
    Handle h(w);
    if (!h) return WORKER_EINVAL;
    std::shared_ptr<qtw::Connection> gone;  // user_data destroyed outside the lock
    try {
        std::lock_guard<qtw::StreamMutex> lk(h->mu);
        // Looked up first: an unknown id must not copy a shared list.
        if (h->conns && h->conns->has(id)) {
            gone = qtw::writable_conns_locked(h.get()).remove(id);  // may throw: still connected
            h->conn_version.fetch_add(1);
        }
    } catch (const std::bad_alloc &) {
        return WORKER_ENOMEM;
    }
    if (!gone) return WORKER_EINVAL;
    gone->disconnect();  // user_data destroyed now, or right after a running call
    return WORKER_OK;
}

int worker_start(worker *w) {
    Handle h(w);
    if (!h) return WORKER_EINVAL;
    if (!QCoreApplication::instance()) return WORKER_ENOAPP;
    qtw::Dispatcher *d;
    try {
        d = qtw::dispatcher_for(w);
        qtw::ensure_exit_hook();
    } catch (...) {
        return qtw::status_of_current_exception();
    }
    // Admission and start are one step; the group lock is held until the
    // pool has the worker, so a failed start can be undone.
    auto group_lk = qtw::group_lock(w);
    {
        // Claimed under mu: of two racing starts exactly one gets past here.
        std::lock_guard<qtw::StreamMutex> lk(h->mu);
        if (h->phase != Phase::Created || h->scope_closed) return WORKER_ESTATE;
        if (h->group_exclusive && qtw::group_busy_locked(w)) return WORKER_EBUSY;
        h->phase = Phase::Started;
        h->dispatcher = d;
        // Started while the exit hook joins: it runs already quit
        // (STARTED, ABORTED, FINISHED), and the join waits for it.
        if (qtw::exit_joining.load() > 0) h->abort_requested = true;
    }
    auto unclaim = [&] {
        std::lock_guard<qtw::StreamMutex> lk(h->mu);
        h->phase = Phase::Created;  // still startable: nothing was emitted
    };
    bool run_now;
    try {
        qtw::set_live(w, true);
        try {
            run_now = qtw::group_admit_locked(w);
        } catch (...) {
            qtw::set_live(w, false);
            throw;
        }
    } catch (...) {
        unclaim();
        return qtw::status_of_current_exception();
    }
    h->total_refs.fetch_add(1);  // the library's ref, dropped after FINISHED
    if (!run_now || qtw::pool_try_submit(w)) return WORKER_OK;
    // No thread can be had (the thread or map limit): undo.
    qtw::group_unadmit_locked(w);
    qtw::set_live(w, false);
    h->total_refs.fetch_sub(1);  // Handle h still holds one: never the last
    unclaim();
    return WORKER_EAGAIN;
}

int worker_send(worker *w, void *value, worker_destroy_fn destroy) {
    Handle h(w);
    int rc = h ? WORKER_ESTATE : WORKER_EINVAL;
    if (h) {
        try {
            std::lock_guard<qtw::StreamMutex> lk(h->mu);
            // A closed scope's worker never receives it (quit, or never runs).
            if (!ended(h.get()) && !h->input_closed && !h->scope_closed) {
                qtw::fault::check(qtw::fault::Inbox);
                h->inbox.push_back({value, destroy});  // strong guarantee: on throw not queued
                qtw::wake_receiver_locked(h.get());
                if (h->poke) h->poke(h.get());
                return WORKER_OK;
            }
        } catch (...) {
            rc = qtw::status_of_current_exception();
        }
    }
    destroy_value(value, destroy);
    return rc;
}

int worker_pause(worker *w) { return control(w, request_pause); }
int worker_resume(worker *w) { return control(w, request_resume); }

int worker_toggle_pause(worker *w) {
    return control(w, [](worker *x, Lock &lk) {
        return x->pause_requested ? request_resume(x, lk) : request_pause(x, lk);
    });
}

int worker_quit(worker *w) {
    Handle h(w);  // keeps w alive for group_on_quit below
    int rc = control(w, [](worker *x, Lock &) {
        x->abort_requested = true;
        return true;
    });
    if (rc == WORKER_OK) {
        qtw::group_on_quit(w);
        qtw::pipe_stop_sources(w);  // stopping a sink stops what is piped into it
    }
    return rc;
}

int worker_is_running(const worker *w) {
    Handle h(w);
    if (!h) return 0;
    std::lock_guard<qtw::StreamMutex> lk(h->mu);
    return h->phase == Phase::Started || h->phase == Phase::Running ||
           h->phase == Phase::Ending;
}

int worker_is_paused(const worker *w) {
    Handle h(w);
    if (!h) return 0;
    std::lock_guard<qtw::StreamMutex> lk(h->mu);
    return h->paused;
}

const char *worker_name(const worker *w) {
    Handle h(w);
    return h ? h->name.c_str() : nullptr;  // immutable, lives as long as w
}

long long worker_dropped(const worker *w) {
    Handle h(w);
    return h ? h->dropped.load() : 0;
}

int worker_await(worker *w, int timeout_ms) {
    Handle h(w);
    if (!h) return WORKER_EINVAL;
    worker_ctx *self = qtw::current_ctx();
    if (self && self->w == w) return WORKER_ETHREAD;  // it would wait for itself
    if (qtw::home_call_running_for(w)) return WORKER_ETHREAD;  // from its call_home fn: likewise
    std::unique_lock<qtw::StreamMutex> lk(h->mu);
    if (h->phase == Phase::Created) return WORKER_ESTATE;
    bool on_home = qtw::dispatcher_is_current_thread(h->dispatcher);
    qtw::Dispatcher *home = on_home ? h->dispatcher : nullptr;
    if (home) {
        // The loop that would drain a BLOCK worker is this caller: every
        // producer homed here queues past capacity rather than deadlock
        // (the awaited one, and whatever it waits for: a serial group's
        // earlier members). Taken with mu released: it locks each producer.
        lk.unlock();
        qtw::begin_home_await(home);
        lk.lock();
    }
    auto done = [&] { return h->phase == Phase::Done; };
    bool ok = true;
    if (timeout_ms < 0)
        h->done_cv.wait(lk, done);
    else
        ok = h->done_cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), done);
    if (home) {
        lk.unlock();
        qtw::end_home_await(home);
    }
    return ok ? WORKER_OK : WORKER_ETIMEDOUT;
}

int worker_quit_all(void) {
    return qtw::guarded([]() -> int {
        int n = 0;
        for (worker *w : qtw::live_workers()) {
            if (worker_quit(w) == WORKER_OK) n++;
            qtw::release(w);
        }
        return n;
    });
}

static int await_all(int timeout_ms) {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
    int rc = WORKER_OK;
    for (worker *w : qtw::live_workers()) {
        int left = -1;
        if (timeout_ms >= 0) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            left = ms.count() > 0 ? (int)ms.count() : 0;
        }
        if (rc == WORKER_OK && worker_await(w, left) == WORKER_ETIMEDOUT) rc = WORKER_ETIMEDOUT;
        qtw::release(w);
    }
    return rc;
}

int worker_await_all(int timeout_ms) {
    return qtw::guarded([&]() -> int { return await_all(timeout_ms); });
}

}  // extern "C"
