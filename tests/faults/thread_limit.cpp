// Thread exhaustion for real: 40 000 workers started and parked (paused
// before start) under a low thread limit. They ended the process with
// std::system_error; now worker_start says WORKER_EAGAIN for those that get
// no thread, every started one still ends with FINISHED after quit, every
// arg is destroyed exactly once, and the exit code is 0.
// RLIMIT_NPROC does not bind root: as root the limit is set after switching
// to the user "nobody" (uid 65534), whose thread count it then is.
#include "qtworker.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr int kWorkers = 40000;
constexpr rlim_t kThreadLimit = 300;
std::atomic<long> args_destroyed{0};
long finished = 0, started_events = 0;

void park(worker_ctx *ctx, void *) {
    while (worker_yield(ctx, nullptr, nullptr, nullptr, nullptr) == WORKER_OK) {
    }
}
void count_destroy(void *) { args_destroyed++; }
void on_finished(worker_event *, void *) { finished++; }
void on_started(worker_event *, void *) { started_events++; }

int fail(const char *what) {
    std::fprintf(stderr, "thread_limit: FAIL: %s\n", what);
    return 1;
}

}  // namespace

int main(int argc, char **argv) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return fail("cannot become nobody");
    // Only the soft limit: it is raised again at the end, for the leak
    // checker of the sanitizer builds, which needs a thread of its own.
    rlimit lim{};
    getrlimit(RLIMIT_NPROC, &lim);
    rlim_t hard = lim.rlim_max;
    lim.rlim_cur = kThreadLimit;
    if (setrlimit(RLIMIT_NPROC, &lim) != 0) return fail("setrlimit");
    worker_app_init(&argc, argv);
    std::vector<worker *> ws;
    int ok = 0, again = 0, other = 0;
    for (int i = 0; i < kWorkers; i++) {
        worker *w = worker_create(park, nullptr, count_destroy, nullptr);
        if (!w) return fail("worker_create");
        worker_pause(w);
        worker_connect(w, WORKER_EV_STARTED, on_started, nullptr, nullptr);
        worker_connect(w, WORKER_EV_FINISHED, on_finished, nullptr, nullptr);
        int rc = worker_start(w);
        if (rc == WORKER_OK) ok++;
        else if (rc == WORKER_EAGAIN) again++;
        else other++;
        ws.push_back(w);
    }
    std::printf("thread_limit: %d workers under RLIMIT_NPROC %d: started %d, EAGAIN %d, other %d\n",
                kWorkers, (int)kThreadLimit, ok, again, other);
    if (again == 0) return fail("the limit was never reached");
    if (other != 0) return fail("a start failed with another status");
    auto t0 = std::chrono::steady_clock::now();
    worker_quit_all();
    if (worker_await_all(60000) != WORKER_OK) return fail("worker_await_all timed out");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (finished < ok && std::chrono::steady_clock::now() < deadline) worker_app_process_events(5);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("thread_limit: quit + every FINISHED delivered in %.0f ms\n", ms);
    if (finished != ok || started_events != ok) return fail("STARTED/FINISHED count differs from started");
    for (worker *w : ws) worker_unref(w);
    if (args_destroyed.load() != kWorkers) return fail("an arg was not destroyed exactly once");
    lim.rlim_cur = hard;
    setrlimit(RLIMIT_NPROC, &lim);
    std::printf("thread_limit: ok (%ld args destroyed)\n", args_destroyed.load());
    return 0;
}
