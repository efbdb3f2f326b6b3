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
    size_t idle = 0;
};

constexpr auto kIdleExpiry = std::chrono::seconds(30);

// Leaked on purpose: threads may outlive static destruction at exit.
Pool &pool() {
    static Pool *p = new Pool;
    return *p;
}

void thread_main() {
    Pool &p = pool();
    std::unique_lock<std::mutex> lk(p.mu);
    for (;;) {
        while (p.tasks.empty()) {
            p.idle++;
            bool woke = p.cv.wait_for(lk, kIdleExpiry, [&] { return !p.tasks.empty(); });
            p.idle--;
            if (!woke) return;
        }
        Task t = p.tasks.front();
        p.tasks.pop_front();
        lk.unlock();
        t.run(t.arg);
        lk.lock();
    }
}

}  // namespace

void pool_run(void (*run)(void *), void *arg) {
    Pool &p = pool();
    bool spawn;
    {
        std::lock_guard<std::mutex> lk(p.mu);
        p.tasks.push_back({run, arg});
        spawn = p.tasks.size() > p.idle;  // every queued task needs its own thread
    }
    if (spawn)
        std::thread(thread_main).detach();
    else
        p.cv.notify_one();
}

void pool_submit(worker *w) {
    pool_run([](void *arg) { run_worker(static_cast<worker *>(arg)); }, w);
}

}  // namespace qtw
