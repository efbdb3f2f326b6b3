// worker_options.timeout_ms: one watchdog thread quits workers still running
// when their time is up; the outcome is ABORTED with code WORKER_ETIMEDOUT.
#include "fault.h"
#include "worker_p.h"

#include <chrono>
#include <map>

namespace qtw {
namespace {

using Clock = std::chrono::steady_clock;

struct Watchdog {
    std::mutex mu;
    std::condition_variable cv;
    std::multimap<Clock::time_point, worker *> due;  // each holds a worker ref
    bool running = false;
};

// Leaked on purpose: its thread lives until the process ends.
Watchdog &watchdog() {
    static Watchdog *d = new Watchdog;
    return *d;
}
QTW_MAKE_AT_LOAD(watchdog);

void expire(worker *w) {
    std::lock_guard<qtw::StreamMutex> lk(w->mu);
    if (w->phase != Phase::Running) return;
    w->timed_out = true;
    w->abort_requested = true;
    w->pause_cv.notify_all();
    w->space_cv.notify_all();
}

void watch_loop() {
    Watchdog &d = watchdog();
    std::unique_lock<std::mutex> lk(d.mu);
    for (;;) {
        if (d.due.empty()) {
            d.cv.wait(lk);
            continue;
        }
        auto first = d.due.begin();
        // A copy: unwatch_timeout may erase this entry while we wait.
        Clock::time_point deadline = first->first;
        if (Clock::now() < deadline) {
            d.cv.wait_until(lk, deadline);
            continue;
        }
        worker *w = first->second;
        d.due.erase(first);
        w->watched = false;
        lk.unlock();
        expire(w);
        release(w);
        lk.lock();
    }
}

}  // namespace

bool watch_timeout(worker *w) {
    if (w->timeout_ms <= 0) return true;
    Watchdog &d = watchdog();
    w->total_refs.fetch_add(1);
    std::lock_guard<std::mutex> lk(d.mu);
    // Saturate: a huge timeout_ms must mean "never", not overflow to the past.
    auto now = Clock::now();
    auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
    auto deadline = w->timeout_ms >= room.count() ? Clock::time_point::max()
                                                  : now + std::chrono::milliseconds(w->timeout_ms);
    try {
        if (!d.running) {
            fault::check(fault::Thread);
            std::thread(watch_loop).detach();
            d.running = true;
        }
        w->watch_entry = d.due.emplace(deadline, w);
    } catch (...) {
        // No watchdog thread or no memory: the worker runs untimed, and says so.
        w->total_refs.fetch_sub(1);  // run_worker holds its own: never the last
        return false;
    }
    w->watched = true;
    d.cv.notify_one();
    return true;
}

void unwatch_timeout(worker *w) {
    if (w->timeout_ms <= 0) return;
    Watchdog &d = watchdog();
    {
        std::lock_guard<std::mutex> lk(d.mu);
        if (!w->watched) return;  // already expired: the watchdog releases it
        d.due.erase(w->watch_entry);
        w->watched = false;
    }
    release(w);
}

}  // namespace qtw
