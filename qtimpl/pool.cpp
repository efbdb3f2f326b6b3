// A small thread pool on std primitives (visible to ThreadSanitizer, unlike
// QThreadPool's internals). Unbounded: an endless worker never holds back
// another one; idle threads are reused, and expire after a while.
// A thread that cannot be created (the kernel's thread or map limit) is
// reported to the caller (pool_try_run), never thrown across the C API.
#include "fault.h"
#include "worker_p.h"

#include <chrono>
#include <cstdio>

namespace qtw {
namespace {

struct Task {
    void (*run)(void *);
    void *arg;
};

struct Pool {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Task> tasks;
    size_t idle = 0;                // threads asleep on cv
    size_t spinning = 0;            // threads polling `queued` before they sleep
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
    } catch (...) {
        // run_worker and the library's own tasks catch what they can throw;
        // this is the last line: a pool thread never ends the process.
        std::fprintf(stderr, "qtworker: an exception escaped a pool task\n");
    }
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
        while (p.tasks.empty()) {
            p.idle++;
            bool woke = p.cv.wait_for(lk, kIdleExpiry, [&] { return !p.tasks.empty(); });
            p.idle--;
            if (!woke) return;
        }
        Task t = p.tasks.front();
        p.tasks.pop_front();
        p.queued.store(p.tasks.size(), std::memory_order_relaxed);
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
    bool spawn, wake;
    try {
        std::lock_guard<std::mutex> lk(p.mu);
        p.tasks.push_back({run, arg});
        p.queued.store(p.tasks.size(), std::memory_order_relaxed);
        // Every queued task needs its own thread: a spinning one takes it
        // unasked, a sleeping one is woken, else a new one starts.
        wake = p.tasks.size() > p.spinning;
        spawn = p.tasks.size() > p.spinning + p.idle;
    } catch (const std::bad_alloc &) {
        return false;
    }
    if (!spawn) {
        if (wake) p.cv.notify_one();
        return true;
    }
    try {
        fault::check(fault::Thread);
        std::thread(thread_main).detach();
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
