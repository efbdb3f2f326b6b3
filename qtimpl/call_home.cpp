// worker_call_home: a worker asks its home thread to run fn(arg) and waits
// for the result (superqt's ensure_main_thread(await_return=True)).
//
// The call is an entry in the worker's ordered stream, so it runs after every
// event the worker emitted before it has been delivered, and the worker's
// later events come after it (it waits). The call's state lives on the heap,
// shared by the waiting worker and the stream entry (two references), and is
// guarded by the worker's mu; the waiter sleeps on w->pause_cv, which
// worker_quit already notifies under mu, so a quit wakes it at once.
//
// States: Pending (queued) -> Running (the home thread took it) -> Done; or
// Pending -> Cancelled (it will never run: quit seen by the dispatcher, the
// home thread ended, or the home thread waits for workers homed on it) or
// Pending -> Abandoned (the waiter left: timeout or quit). The waiter only
// ever leaves a Pending call; once Running it waits for fn to finish, so fn
// never outlives the waiter's stack and its result is never dropped.
//
// Never a deadlock: while the home thread waits for a worker homed on it
// (worker_await there, the exit join), it cannot run fn, and the worker the
// call blocks may be what it waits for (directly, or through a serial
// group). So every pending call of a worker homed on that thread ends at
// once with WORKER_EBUSY (begin_home_await calls cancel_home_calls), and new
// ones are refused with it while the wait lasts. Lock order: the registry
// lock, then a worker's mu; never the other way round.
#include "worker_p.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sched.h>

namespace qtw {
namespace {

enum class CallState { Pending, Running, Done, Cancelled, Abandoned };

struct HomeCall {
    worker *w;
    worker_home_fn fn;
    void *arg;
    void *result = nullptr;
    int status = WORKER_OK;                // Done or Cancelled: what the waiter returns
    CallState state = CallState::Pending;  // guarded by w->mu
    std::atomic<bool> settled{false};      // Done or Cancelled: ends the waiter's spin
    std::atomic<int> spin_cpu{-1};         // the CPU the waiter polls on, -1 once it stopped
    std::atomic<int> refs{1};              // the waiter's; the entry takes another
    HomeCall *prev = nullptr, *next = nullptr;  // the registry (its mutex)
};

void unref(HomeCall *c) {
    if (c->refs.fetch_sub(1) == 1) delete c;
}

// Calls whose worker is waiting for them, so a wait on the home thread can
// end them. Leaked on purpose: pool threads may still call at exit.
struct Registry {
    std::mutex mu;
    HomeCall *head = nullptr;
};
Registry &registry() {
    static Registry *r = new Registry;
    return *r;
}
QTW_MAKE_AT_LOAD(registry);

void link_locked(Registry &r, HomeCall *c) {
    c->next = r.head;
    if (r.head) r.head->prev = c;
    r.head = c;
}

void unlink_locked(Registry &r, HomeCall *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        r.head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = nullptr;
}

// Under c->w->mu: a call that has not begun will never run.
void cancel_locked(HomeCall *c, int status) {
    if (c->state != CallState::Pending) return;
    c->state = CallState::Cancelled;
    c->status = status;
    c->settled.store(true, std::memory_order_release);
    c->w->pause_cv.notify_all();
}

// The entry's destroy: after it ran, or when it is destroyed undelivered
// (its home thread ended: WORKER_ESTATE).
void drop_entry(void *p) {
    auto *c = static_cast<HomeCall *>(p);
    {
        std::lock_guard<StreamMutex> lk(c->w->mu);
        cancel_locked(c, WORKER_ESTATE);
        c->w->home_call_queued = false;  // the next call may queue its entry
        c->w->pause_cv.notify_all();
    }
    unref(c);
}

// The workers whose calls run on this thread right now (nested: fn may run
// an event loop in which another worker's call runs).
struct Frame {
    const worker *w;
    Frame *up;
};
thread_local Frame *running_calls = nullptr;

// A round trip to an idle GUI thread takes a few microseconds: the waiter
// polls for that long before it sleeps, so the answer costs no futex wake-up
// of the worker (and the GUI never meets the worker on w->mu). Bounded, so
// a busy GUI costs at most kSpin of CPU per call. It polls with
// sched_yield: the woken GUI thread is often placed on the waiter's own CPU,
// and a pure spin kept it off that CPU for the whole kSpin (round-trip p99
// = kSpin + 10 us on 2 cores).
constexpr auto kSpin = std::chrono::microseconds(50);

void spin_briefly(worker *w, HomeCall *c, std::chrono::steady_clock::time_point deadline) {
    auto until = std::min(std::chrono::steady_clock::now() + kSpin, deadline);
    poll_briefly(
        [&] {
            c->spin_cpu.store(sched_getcpu(), std::memory_order_relaxed);  // after each yield
            return c->settled.load(std::memory_order_acquire) || w->abort_requested.load();
        },
        until, 1);
    c->spin_cpu.store(-1, std::memory_order_relaxed);
}

// Under w->mu: the waiter leaves a call that has not begun; fn never runs.
int give_up_locked(worker *w, HomeCall *c, bool late) {
    c->state = CallState::Abandoned;
    return late && !w->abort_requested ? WORKER_ETIMEDOUT : WORKER_ABORTED;
}

int wait_for_call(worker *w, HomeCall *c, int timeout_ms) {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
    auto late = [&] { return timeout_ms >= 0 && clock::now() >= deadline; };
    std::unique_lock<StreamMutex> lk(w->mu);
    auto wait = [&] {
        if (timeout_ms < 0 || c->state == CallState::Running)
            w->pause_cv.wait(lk);
        else
            w->pause_cv.wait_until(lk, deadline);
    };
    // One call entry in the stream at a time: a call that timed out leaves
    // its entry queued until the home thread reaches it, and a worker that
    // retries while the GUI stalls filled memory with them (113 MB in 3 s).
    while (c->state == CallState::Pending && w->home_call_queued) {
        if (w->abort_requested || late()) return give_up_locked(w, c, late());
        wait();
    }
    if (c->state == CallState::Pending && w->abort_requested) return give_up_locked(w, c, false);
    if (c->state == CallState::Pending) {
        Entry e(kEvCallHome);
        e.value = c;
        e.destroy = drop_entry;
        c->refs.fetch_add(1);  // the entry's
        w->home_call_queued = true;
        push_control_then_unlock(w, lk, std::move(e));  // never waits for room, never dropped
    } else {
        lk.unlock();
    }
    spin_briefly(w, c, timeout_ms < 0 ? clock::time_point::max() : deadline);
    // Answered while polling (the common case): status and result were
    // written before `settled` was released; no need to meet the GUI on mu.
    if (c->settled.load(std::memory_order_acquire)) return c->status;
    lk.lock();
    for (;;) {
        if (c->state == CallState::Done || c->state == CallState::Cancelled) return c->status;
        if (c->state == CallState::Pending && (w->abort_requested || late()))
            return give_up_locked(w, c, late());
        // Running: fn has begun on the home thread; wait for it to finish,
        // whatever the timeout or a quit say (its result is not dropped).
        wait();
    }
}

int call_home(worker *w, worker_home_fn fn, void *arg, void **result, int timeout_ms) {
    // A timeout-0 call while an earlier entry is still queued could only give
    // up (it may not queue a second one): said without a lock or an
    // allocation. Workers looping on such calls met the GUI on w->mu and the
    // registry's lock at millions of calls a second, and its timers slipped
    // by 80-200 ms (10-50 workers).
    if (timeout_ms == 0 && w->home_call_queued.load(std::memory_order_acquire)) {
        if (w->abort_requested.load()) return WORKER_ABORTED;
        return home_is_awaiting(w) ? WORKER_EBUSY : WORKER_ETIMEDOUT;
    }
    HomeCall *c = new HomeCall;  // bad_alloc: WORKER_ENOMEM (guarded)
    c->w = w;
    c->fn = fn;
    c->arg = arg;
    Registry &r = registry();
    bool busy;
    {
        // Registered before the check: a home await that begins after this
        // point finds the call; one that began before is seen here.
        std::lock_guard<std::mutex> g(r.mu);
        link_locked(r, c);
        busy = home_is_awaiting(w);
        if (busy) unlink_locked(r, c);
    }
    if (busy) {
        unref(c);
        return w->abort_requested ? WORKER_ABORTED : WORKER_EBUSY;
    }
    int rc = wait_for_call(w, c, timeout_ms);
    if (rc == WORKER_OK && result) *result = c->result;
    {
        std::lock_guard<std::mutex> g(r.mu);
        unlink_locked(r, c);
    }
    unref(c);
    return rc;
}

}  // namespace

// Dispatcher, home thread: the call's turn in the stream has come.
void run_home_call(worker *w, Entry &e) {
    auto *c = static_cast<HomeCall *>(e.value);
    bool run;
    {
        std::lock_guard<StreamMutex> lk(w->mu);
        if (w->abort_requested) cancel_locked(c, WORKER_ABORTED);
        run = c->state == CallState::Pending;
        if (run) c->state = CallState::Running;
    }
    if (run) {
        Frame f{w, running_calls};
        running_calls = &f;
        void *r = nullptr;
        int status = WORKER_OK;
        try {
            r = c->fn(c->arg);
        } catch (...) {
            // Must not unwind through Qt's event loop (that ends the process).
            std::fprintf(stderr, "qtworker: a call_home function of worker '%s' threw an exception\n",
                         worker_name(w));
            status = WORKER_ESTATE;
        }
        running_calls = f.up;
        {
            std::lock_guard<StreamMutex> lk(w->mu);
            c->result = r;
            c->status = status;
            c->state = CallState::Done;
            c->settled.store(true, std::memory_order_release);
        }
        // Outside the lock: the woken waiter does not run into it. w lives
        // on (its FINISHED is delivered on this thread, later); c may not.
        w->pause_cv.notify_all();
        // The waiter often polls on this very CPU (it woke this thread, and
        // the kernel placed us next to it): it would see the answer only
        // once this loop goes back to sleep, 3-4 us later. Hand it the CPU.
        // Only while it polls: a yield can cost this thread a whole slice if
        // the worker computes after the call (yielding also to a waiter we
        // preempted before it polled delayed the GUI by 1.6 ms p50; see
        // doc/performance.md).
        if (c->spin_cpu.load(std::memory_order_relaxed) == sched_getcpu()) std::this_thread::yield();
    }
    e.release();  // the entry's reference
}

// begin_home_await(d): every pending call of a worker homed on d ends now.
void cancel_home_calls(Dispatcher *d) {
    Registry &r = registry();
    std::lock_guard<std::mutex> g(r.mu);
    for (HomeCall *c = r.head; c; c = c->next) {
        if (c->w->dispatcher != d) continue;
        std::lock_guard<StreamMutex> lk(c->w->mu);
        cancel_locked(c, c->w->abort_requested ? WORKER_ABORTED : WORKER_EBUSY);  // quit wins
    }
}

bool home_call_running_for(const worker *w) {
    for (Frame *f = running_calls; f; f = f->up)
        if (f->w == w || group_waits_for(w, f->w)) return true;
    return false;
}

}  // namespace qtw

extern "C" {

int worker_call_home(worker_ctx *ctx, worker_home_fn fn, void *arg, void **result,
                     int timeout_ms) {
    if (result) *result = nullptr;
    if (!ctx) return WORKER_EINVAL;
    if (ctx != qtw::current_ctx()) return WORKER_ETHREAD;
    if (!fn || ctx->w->helper_process) return WORKER_EINVAL;
    return qtw::guarded([&]() -> int { return qtw::call_home(ctx->w, fn, arg, result, timeout_ms); });
}

}  // extern "C"
