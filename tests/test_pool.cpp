// The pool's policy (qtimpl/pool.cpp): short workers reuse a few threads;
// a worker that blocks in the library, or runs long without blocking, never
// keeps another from starting. Observed through thread ids and events,
// never through timing.
#include "harness.h"

#include <sched.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace th;

namespace {

std::mutex ids_mu;
std::set<std::thread::id> ids;

void note_thread(worker_ctx *, void *) {
    std::lock_guard<std::mutex> lk(ids_mu);
    ids.insert(std::this_thread::get_id());
}

}  // namespace

// 1000 short workers started at once ran on one thread each before: now a
// handful of threads serve them all, and every one still finishes.
TEST(Pool, AThousandShortWorkersReuseAFewThreads) {
    ids.clear();
    std::vector<std::unique_ptr<Job>> jobs;
    for (int i = 0; i < 1000; i++) {
        jobs.push_back(std::make_unique<Job>(note_thread, nullptr, nullptr, false));
        ASSERT_EQ(jobs.back()->start(), WORKER_OK);
    }
    for (auto &j : jobs) ASSERT_TRUE(j->wait_done());
    std::printf("1000 short workers ran on %zu threads\n", ids.size());
    EXPECT_LE(ids.size(), 16u) << "short workers should share a few threads";
}

// Workers that spin without ever blocking in the library fill the pool's
// running slots; one more must still start (the pool adds a thread for a
// task that waits), so an endless computation starves nobody.
TEST(Pool, WorkersThatNeverBlockDoNotHoldBackAnother) {
    static std::atomic<bool> stop{false};
    stop = false;
    int n = (int)std::max(2u, std::thread::hardware_concurrency()) + 2;
    std::vector<std::unique_ptr<Job>> spinners;
    for (int i = 0; i < n; i++) {
        spinners.push_back(std::make_unique<Job>([](worker_ctx *) {
            while (!stop.load()) {
            }
        }));
        ASSERT_EQ(spinners.back()->start(), WORKER_OK);
    }
    Job late([](worker_ctx *ctx) { worker_return(ctx, payload(1), payload_free); });
    ASSERT_EQ(late.start(), WORKER_OK);
    bool ran = late.rec->wait_finished(20000);
    stop = true;
    EXPECT_TRUE(ran) << "a worker waited behind " << n << " that never block";
    spinners.clear();  // each one ends (quit, stop) and is waited for
}

// Parked workers (paused before start) block in the library: they hold no
// running slot, so any number of them leaves room for the next worker.
TEST(Pool, ParkedWorkersLeaveRoomForOthers) {
    std::vector<std::unique_ptr<Job>> parked;
    for (int i = 0; i < 32; i++) {
        parked.push_back(std::make_unique<Job>([](worker_ctx *ctx) {
            while (worker_yield(ctx, nullptr, nullptr, nullptr, nullptr) == WORKER_OK) {
            }
        }));
        worker_pause(parked.back()->w);
        ASSERT_EQ(parked.back()->start(), WORKER_OK);
    }
    for (auto &p : parked) ASSERT_TRUE(p->rec->wait_for(WORKER_EV_PAUSED));
    Job next([](worker_ctx *ctx) { worker_return(ctx, payload(2), payload_free); });
    ASSERT_EQ(next.start(), WORKER_OK);
    EXPECT_TRUE(next.rec->wait_finished());
    parked.clear();
}

// Pool threads run under SCHED_BATCH: a worker that wakes up does not
// preempt the GUI thread (four producers woken at capacity took its CPU
// in turn). Every worker, on a new thread or a reused one, sees it.
TEST(Pool, WorkersRunAsBatchThreadsThatNeverPreemptTheGui) {
    std::atomic<int> batch{0}, other{0};
    auto body = [&](worker_ctx *) { (sched_getscheduler(0) == SCHED_BATCH ? batch : other)++; };
    for (int round = 0; round < 3; round++) {  // later rounds reuse the threads
        std::vector<std::unique_ptr<Job>> jobs;
        for (int i = 0; i < 6; i++) {
            jobs.push_back(std::make_unique<Job>(body, nullptr, false));
            ASSERT_EQ(jobs.back()->start(), WORKER_OK);
        }
        for (auto &j : jobs) ASSERT_TRUE(j->wait_done());
    }
    EXPECT_EQ(batch.load(), 18);
    EXPECT_EQ(other.load(), 0);
}
