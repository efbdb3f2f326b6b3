// The thread pool, on std primitives (visible to ThreadSanitizer, unlike
// QThreadPool's internals).
//
// Policy (GLib's thread pool grows when tasks block; this one does the same
// and adds Go's watchdog for tasks that run long without blocking):
// - at most `limit` threads (the CPU count, at least 2) run tasks that are
//   not blocked; more tasks wait in a FIFO, so 1000 short workers reuse a few
//   threads instead of creating 1000;
// - a task that blocks in the library (parked by a pause, waiting for room
//   at capacity) stops counting at once, and a queued task gets a thread;
// - a task that runs long without blocking (an endless computation) cannot
//   hold the queue back either: a queued task that has waited kQueueGrace
//   gets a thread of its own beyond the limit. No worker is ever starved.
// Idle threads each sleep on their own condition variable and are handed a
// task directly; they expire after kIdleExpiry. A thread that cannot be
// created (the kernel's thread or map limit) is reported to the caller
// (pool_try_run), never thrown across the C API.
#include "fault.h"
#include "worker_p.h"

#include <sys/prctl.h>

#include <chrono>
#include <pthread.h>
#include <sched.h>
#include <cstdio>

namespace qtw {
namespace {

using Clock = std::chrono::steady_clock;

struct Task {
    void (*run)(void *);
    void *arg;
    Clock::time_point queued_at;
};

// A sleeping thread, on its own stack: a condition variable of its own, so
// thousands of idle threads never wait on one futex (they all landed in one
// kernel hash bucket, which every wake-up then scanned). A task is handed
// over directly.
struct Sleeper {
    StreamCondVar cv;
    Task task{nullptr, nullptr, {}};
    Sleeper *prev = nullptr, *next = nullptr;
};

struct Pool {
    // Adaptive: the GUI starting short workers and the pool threads taking
    // them meet here every microsecond; a plain mutex put the waiter to
    // sleep, and each GUI unlock then paid a futex wake.
    StreamMutex mu;
    std::deque<Task> tasks;         // waiting for a thread (FIFO)
    Sleeper *sleepers = nullptr;    // most recently idle first (warm caches)
    size_t spinning = 0;            // threads polling `queued` before they sleep
    std::atomic<size_t> queued{0};  // tasks.size(), for the spinners
    size_t running = 0;             // threads running a task that is not blocked
    size_t limit = 2;
    size_t threads = 0;             // alive
    size_t futex_slots = 0;         // the private futex hash size asked for
    bool monitor_running = false;
    // A thread could not be created for a queued task: the system is at its
    // thread limit. New tasks are refused (pool_try_run -> false, so
    // worker_start says WORKER_EAGAIN) instead of queueing behind it.
    bool starved = false;
    StreamCondVar monitor_cv;
};

constexpr auto kIdleExpiry = std::chrono::seconds(30);
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr auto kQueueGrace = std::chrono::milliseconds(1);

// A task that could not get a thread of its own, run by this pool thread
// when its current task returns (see pool_run_here_or_after).
thread_local Task after_current = {nullptr, nullptr, {}};
thread_local bool on_pool_thread = false;
thread_local int blocked_depth = 0;  // inside pool_blocking_begin/end

// Leaked on purpose: threads may outlive static destruction at exit.
Pool &pool() {
    static Pool *p = [] {
        auto *q = new Pool;
        q->limit = std::max(2u, std::thread::hardware_concurrency());
        return q;
    }();
    return *p;
}

// After a task, a thread polls for the next one for a moment before it
// sleeps: a worker started soon after then needs no futex wake-up from the
// GUI thread (create+start -> `started` p50: 23 -> 6 us, measured by hand).
// It yields between polls: a thread woken for a task is often placed on the
// CPU of the thread that woke it (the GUI starting workers), and a pure
// spin then held the GUI off its CPU for the whole kSpin, ~30 times per
// 1000 short workers (ftrace: the GUI preempted, the pool thread spinning).
void spin_for_task(Pool &p) {
    poll_briefly([&p] { return p.queued.load(std::memory_order_relaxed) != 0; }, Clock::now() + kSpin, 64);
}

void run_task(Task t) {
    try {
        t.run(t.arg);
        run_deferred_schedule();  // a safety net: a wake-up is never left owed
    } catch (...) {
        // run_worker and the library's own tasks catch what they can throw;
        // this is the last line: a pool thread never ends the process.
        std::fprintf(stderr, "qtworker: an exception escaped a pool task\n");
    }
}

// Linux >= 6.16 gives a process a private futex hash of 16 buckets on a
// 2-CPU machine, so every futex operation scans ~threads/16 waiters: with
// thousands of parked workers that is quadratic (quitting 20 000 parked
// workers: 1.7 s; 300 ms with a hash sized to the threads). Grow the hash
// with the pool; older kernels refuse the call (EINVAL), which changes
// nothing.
constexpr int kPrFutexHash = 78, kPrFutexHashSetSlots = 1;
constexpr size_t kMinThreadsForHash = 256, kMaxFutexSlots = size_t(1) << 16;

void size_futex_hash_locked(Pool &p) {
    size_t n = p.threads;
    if (n < kMinThreadsForHash || (n & (n - 1)) != 0 || p.futex_slots >= kMaxFutexSlots) return;
    size_t want = 4 * kMinThreadsForHash;
    while (want < 2 * n) want *= 2;
    want = std::min(want, kMaxFutexSlots);
    if (want <= p.futex_slots) return;
    p.futex_slots = want;
    prctl(kPrFutexHash, kPrFutexHashSetSlots, (unsigned long)want, 0UL, 0UL);
}

void unlink_sleeper(Pool &p, Sleeper &me) {
    if (me.prev) me.prev->next = me.next; else p.sleepers = me.next;
    if (me.next) me.next->prev = me.prev;
    me.prev = me.next = nullptr;
}

void thread_main(Task first);

// Gives t a thread now: a sleeping one, or a new one. False if neither can
// be had (t is not queued then). `running` counts it from here.
bool dispatch_locked(Pool &p, const Task &t) {
    if (p.sleepers) {
        Sleeper *s = p.sleepers;
        unlink_sleeper(p, *s);
        s->task = t;
        s->cv.notify_one();  // under mu: the Sleeper lives on its thread's stack
        p.running++;
        return true;
    }
    try {
        fault::check(fault::Thread);
        std::thread(thread_main, t).detach();  // the task goes with it: not via the queue
    } catch (...) {
        p.starved = true;
        return false;
    }
    p.starved = false;
    p.threads++;
    p.running++;  // reserved for the new thread's first task
    size_futex_hash_locked(p);
    return true;
}

// Queued tasks get threads while fewer than `limit` run; a task that waited
// kQueueGrace gets one anyway (the running ones may never block or end).
// Past the limit, one thread per call at most (the monitor's tick): a
// stalled moment must not turn a queue of short tasks into as many threads.
void start_queued_locked(Pool &p, bool overdue_only_past_limit) {
    bool extra_allowed = overdue_only_past_limit;
    while (!p.tasks.empty() && p.tasks.size() > p.spinning) {
        bool overdue = Clock::now() - p.tasks.front().queued_at >= kQueueGrace;
        if (p.running >= p.limit) {
            if (!(extra_allowed && overdue)) return;
            extra_allowed = false;
        }
        Task t = p.tasks.front();
        p.tasks.pop_front();
        p.queued.store(p.tasks.size(), std::memory_order_relaxed);
        if (!dispatch_locked(p, t)) {
            p.tasks.push_front(t);  // no thread now: it waits, the monitor retries
            p.queued.store(p.tasks.size(), std::memory_order_relaxed);
            return;
        }
    }
}

// Wakes every kQueueGrace while tasks wait: the watchdog of the policy.
void monitor_main() {
    Pool &p = pool();
    std::unique_lock<StreamMutex> lk(p.mu);
    while (!p.tasks.empty()) {
        p.monitor_cv.wait_until(lk, Clock::now() + kQueueGrace);
        start_queued_locked(p, true);
    }
    p.monitor_running = false;
}

void ensure_monitor_locked(Pool &p) {
    if (p.monitor_running || p.tasks.empty()) return;
    try {
        std::thread(monitor_main).detach();
        p.monitor_running = true;
    } catch (...) {
        // retried with the next queued task; threads that free up still
        // take queued tasks meanwhile
    }
}

// Sleeps until a task is handed over (true) or the idle time expires.
bool sleep_for_task(Pool &p, std::unique_lock<StreamMutex> &lk, Task *t) {
    Sleeper me;
    me.next = p.sleepers;
    if (me.next) me.next->prev = &me;
    p.sleepers = &me;
    bool got = me.cv.wait_for(lk, kIdleExpiry, [&] { return me.task.run != nullptr; });
    if (!got) {
        unlink_sleeper(p, me);
        p.threads--;
        return false;
    }
    *t = me.task;  // the submitter unlinked it and counted it running
    return true;
}

// Workers run under SCHED_BATCH (Linux): a worker thread that wakes never
// preempts the thread it lands next to, so the GUI thread that woke four
// producers at capacity keeps its CPU instead of losing it to each of them
// (4 workers 52 -> 77 M values/s); they still get their fair share of CPU
// time. Unprivileged; where it is refused the thread stays as it was.
void run_as_batch() {
    sched_param sp{};
    sp.sched_priority = 0;
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
}

void thread_main(Task first) {
    on_pool_thread = true;
    run_as_batch();
    Pool &p = pool();
    std::unique_lock<StreamMutex> lk(p.mu, std::defer_lock);
    bool counted = true;  // dispatch_locked counted the first task
    for (;;) {
        Task t;
        if (first.run) {
            t = first;
            first.run = nullptr;
        } else if (!p.tasks.empty() && (counted || p.running < p.limit)) {
            t = p.tasks.front();
            p.tasks.pop_front();
            p.queued.store(p.tasks.size(), std::memory_order_relaxed);
            if (!counted) p.running++;
        } else {
            if (counted) p.running--;  // reserved, but a spinner took the task
            // One spinner at most: on a 2-core machine more of them would
            // take the core the GUI thread needs to submit the next task.
            if (p.tasks.empty() && p.spinning == 0) {
                p.spinning++;
                lk.unlock();
                spin_for_task(p);
                lk.lock();
                p.spinning--;
                if (!p.tasks.empty() && p.running < p.limit) {
                    counted = false;
                    continue;
                }
            }
            ensure_monitor_locked(p);  // a task left queued is never forgotten
            if (!sleep_for_task(p, lk, &t)) return;  // idle too long: the thread ends
        }
        if (lk.owns_lock()) lk.unlock();
        run_task(t);
        while (after_current.run) {
            Task next = after_current;
            after_current = {nullptr, nullptr, {}};
            run_task(next);
        }
        lk.lock();
        p.running--;
        counted = false;
        if (!p.tasks.empty() && p.running < p.limit) {  // this thread takes the next
            counted = true;
            p.running++;
        }
    }
}

}  // namespace

void pool_blocking_begin() {
    if (!on_pool_thread || blocked_depth++ > 0) return;
    Pool &p = pool();
    std::lock_guard<StreamMutex> lk(p.mu);
    p.running--;
    start_queued_locked(p, false);  // this thread's slot goes to a queued task
}

void pool_blocking_end() {
    if (!on_pool_thread || --blocked_depth > 0) return;
    Pool &p = pool();
    std::lock_guard<StreamMutex> lk(p.mu);
    p.running++;  // may exceed the limit for a moment: nothing is stopped
}

bool pool_try_run(void (*run)(void *), void *arg) {
    Pool &p = pool();
    Task t{run, arg, Clock::now()};
    std::lock_guard<StreamMutex> lk(p.mu);
    if (p.running < p.limit && p.tasks.empty() && p.spinning == 0) return dispatch_locked(p, t);
    // At the thread limit: a thread now (which clears it) or a refusal.
    if (p.starved) return dispatch_locked(p, t);
    try {
        // A spinning thread takes it unasked; else it runs when a thread
        // frees, or after kQueueGrace.
        p.tasks.push_back(t);
    } catch (...) {
        return false;
    }
    p.queued.store(p.tasks.size(), std::memory_order_relaxed);
    ensure_monitor_locked(p);
    return true;
}

void pool_run_here_or_after(void (*run)(void *), void *arg) {
    if (pool_try_run(run, arg)) return;
    if (on_pool_thread && !after_current.run) {
        after_current = {run, arg, {}};  // right after this thread's task
        return;
    }
    run_task({run, arg, {}});
}

static void run_worker_task(void *arg) { run_worker(static_cast<worker *>(arg)); }

bool pool_try_submit(worker *w) { return pool_try_run(run_worker_task, w); }

void pool_submit_or_run_here(worker *w) { pool_run_here_or_after(run_worker_task, w); }

void pool_run_after_current(worker *w) {
    if (on_pool_thread && !after_current.run) {
        after_current = {run_worker_task, w, {}};
        return;
    }
    pool_submit_or_run_here(w);
}

}  // namespace qtw
