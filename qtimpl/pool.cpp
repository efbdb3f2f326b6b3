// A small thread pool on std primitives (visible to ThreadSanitizer, unlike
// QThreadPool's internals). Unbounded: an endless worker never holds back
// another one; idle threads are reused, and expire after a while.
// A thread that cannot be created (the kernel's thread or map limit) is
// reported to the caller (pool_try_run), never thrown across the C API.
#include "fault.h"
#include "worker_p.h"

#include <sys/prctl.h>

#include <chrono>
#include <cstdio>

namespace qtw {
namespace {

struct Task {
    void (*run)(void *);
    void *arg;
};

// A sleeping thread, on its own stack: a condition variable of its own, so
// thousands of idle threads never wait on one futex (they all landed in one
// kernel hash bucket, which every wake-up then scanned: quitting 20 000
// parked workers took 1.3 s, 10 000 0.35 s). A task is handed over directly.
struct Sleeper {
    std::condition_variable cv;
    Task task{nullptr, nullptr};
    Sleeper *prev = nullptr, *next = nullptr;
};

struct Pool {
    std::mutex mu;
    std::deque<Task> tasks;         // for spinners and threads being created
    Sleeper *sleepers = nullptr;    // most recently idle first (warm caches)
    size_t spinning = 0;            // threads polling `queued` before they sleep
    size_t threads = 0;             // alive
    size_t futex_slots = 0;         // the private futex hash size we asked for
    std::atomic<size_t> queued{0};  // tasks.size(), for the spinners
};

// A task that could not get a thread of its own, run by this pool thread
// when its current task returns (see pool_run_here_or_after).
thread_local Task after_current = {nullptr, nullptr};
thread_local bool on_pool_thread = false;

constexpr auto kIdleExpiry = std::chrono::seconds(30);
constexpr auto kSpin = std::chrono::microseconds(50);

// After a task, a thread polls for the next one for a moment before it
// sleeps: a worker started soon after then needs no futex wake-up from the
// GUI thread (create+start -> `started` p50: 23 -> 6 us, measured by hand).
void spin_for_task(Pool &p) {
    auto until = std::chrono::steady_clock::now() + kSpin;
    do {
        for (int i = 0; i < 64; i++) {
            if (p.queued.load(std::memory_order_relaxed)) return;
            cpu_relax();
        }
    } while (std::chrono::steady_clock::now() < until);
}

// Leaked on purpose: threads may outlive static destruction at exit.
Pool &pool() {
    static Pool *p = new Pool;
    return *p;
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

void unlink_sleeper(Pool &p, Sleeper &me) {
    if (me.prev) me.prev->next = me.next; else p.sleepers = me.next;
    if (me.next) me.next->prev = me.prev;
    me.prev = me.next = nullptr;
}

// Sleeps until a task is handed over (true) or the idle time expires.
// Linux >= 6.16 gives a process a private futex hash of 16 buckets on a
// 2-CPU machine, so every futex operation scans ~threads/16 waiters: with
// thousands of parked workers that is quadratic (quitting 20 000 parked
// workers: 1.7 s; 300 ms with a hash sized to the threads). Grow the hash
// with the pool; older kernels refuse the call (EINVAL), which changes
// nothing.
constexpr int kPrFutexHash = 78, kPrFutexHashSetSlots = 1;
constexpr size_t kMinThreadsForHash = 256, kMaxFutexSlots = size_t(1) << 16;

void size_futex_hash(size_t threads) {
    Pool &p = pool();
    size_t want;
    {
        std::lock_guard<std::mutex> lk(p.mu);
        if (threads < kMinThreadsForHash || p.futex_slots >= kMaxFutexSlots) return;
        want = 4 * kMinThreadsForHash;
        while (want < 2 * threads) want *= 2;
        if (want > kMaxFutexSlots) want = kMaxFutexSlots;
        if (want <= p.futex_slots) return;
        p.futex_slots = want;
    }
    prctl(kPrFutexHash, kPrFutexHashSetSlots, (unsigned long)want, 0UL, 0UL);
}

bool sleep_for_task(Pool &p, std::unique_lock<std::mutex> &lk, Task *t) {
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
    *t = me.task;  // the submitter unlinked it
    return true;
}

void thread_main() {
    on_pool_thread = true;
    Pool &p = pool();
    std::unique_lock<std::mutex> lk(p.mu);
    for (;;) {
        // One spinner at most: on a 2-core machine more of them would take
        // the core the GUI thread needs to submit the next task.
        if (p.tasks.empty() && p.spinning == 0) {
            p.spinning++;
            lk.unlock();
            spin_for_task(p);
            lk.lock();
            p.spinning--;  // from here it finds a task under mu, or sleeps
        }
        Task t;
        if (!p.tasks.empty()) {
            t = p.tasks.front();
            p.tasks.pop_front();
            p.queued.store(p.tasks.size(), std::memory_order_relaxed);
        } else if (!sleep_for_task(p, lk, &t)) {
            return;  // idle for kIdleExpiry: the thread ends
        }
        lk.unlock();
        run_task(t);
        while (after_current.run) {
            Task next = after_current;
            after_current = {nullptr, nullptr};
            run_task(next);
        }
        lk.lock();
    }
}

}  // namespace

bool pool_try_run(void (*run)(void *), void *arg) {
    Pool &p = pool();
    try {
        std::lock_guard<std::mutex> lk(p.mu);
        // A spinning thread takes a queued task unasked; else a sleeping one
        // is handed it (notified under mu: its Sleeper lives on its stack);
        // else a new thread starts for it.
        if (p.tasks.size() >= p.spinning && p.sleepers) {
            Sleeper *s = p.sleepers;
            unlink_sleeper(p, *s);
            s->task = {run, arg};
            s->cv.notify_one();
            return true;
        }
        p.tasks.push_back({run, arg});
        p.queued.store(p.tasks.size(), std::memory_order_relaxed);
        if (p.tasks.size() <= p.spinning) return true;
    } catch (const std::bad_alloc &) {
        return false;
    }
    try {
        fault::check(fault::Thread);
        std::thread(thread_main).detach();
        size_t n;
        {
            std::lock_guard<std::mutex> lk(p.mu);
            n = ++p.threads;
        }
        if (n >= kMinThreadsForHash && (n & (n - 1)) == 0) size_futex_hash(n);
        return true;
    } catch (...) {
        // No thread: take the task back, unless a thread freed up meanwhile
        // and took it (then it runs after all).
        std::lock_guard<std::mutex> lk(p.mu);
        for (auto it = p.tasks.begin(); it != p.tasks.end(); ++it) {
            if (it->run != run || it->arg != arg) continue;
            p.tasks.erase(it);
            p.queued.store(p.tasks.size(), std::memory_order_relaxed);
            return false;
        }
        return true;
    }
}

void pool_run_here_or_after(void (*run)(void *), void *arg) {
    if (pool_try_run(run, arg)) return;
    if (on_pool_thread && !after_current.run) {
        after_current = {run, arg};  // right after this thread's task
        return;
    }
    run_task({run, arg});
}

static void run_worker_task(void *arg) { run_worker(static_cast<worker *>(arg)); }

bool pool_try_submit(worker *w) { return pool_try_run(run_worker_task, w); }

void pool_submit_or_run_here(worker *w) { pool_run_here_or_after(run_worker_task, w); }

}  // namespace qtw
