// Delivered yields handed back to the producer (qtimpl/recycle.cpp): a
// thread worker without a byte budget destroys a delivered yield at one of
// its next yields, so malloc reuses the frame's memory. Whatever the
// producer does not take back is destroyed by the home thread soon after
// (while the producer waits or computes), and all of it before FINISHED.
// Every payload still exactly once.
#include "harness.h"
#include "home_loop.h"

#include <thread>

using namespace th;

namespace {

// Payloads that remember whether the worker's thread destroyed them.
std::atomic<std::thread::id> producer_thread;
std::atomic<int> destroyed_by_producer{0}, destroyed_elsewhere{0};

void tracked_free(void *p) {
    if (std::this_thread::get_id() == producer_thread.load())
        destroyed_by_producer++;
    else
        destroyed_elsewhere++;
    payload_free(p);
}

void reset_tracking() {
    reset_payloads();
    producer_thread = std::thread::id();
    destroyed_by_producer = 0;
    destroyed_elsewhere = 0;
}

// Spins (bounded) without sleeping: a nap would let the home thread's age
// check win every race against the producer's next yield.
bool spin_until(const std::function<bool()> &pred, int timeout_ms = 10000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

}  // namespace

// The producer yields one frame at a time, each once the GUI has shown the
// one before: that frame is then held, and the producer's next yield
// destroys it on the worker's thread. (A frame the home thread ages out
// first, when this machine stalls the producer, counts as "elsewhere"; over
// 200 frames some must be the producer's, or nothing was handed back.)
TEST(Recycle, DeliveredYieldsAreDestroyedByTheProducersNextYields) {
    reset_tracking();
    constexpr int n = 200;
    std::atomic<int> shown{0}, by_yields{0};
    Job job([&](worker_ctx *ctx) {
        producer_thread = std::this_thread::get_id();
        for (int i = 0; i < n; i++) {
            if (worker_yield(ctx, payload(i), tracked_free, nullptr, nullptr) != WORKER_OK) return;
            if (!spin_until([&] { return shown.load() > i; })) return;
        }
        by_yields = destroyed_by_producer.load();  // not those its return destroys
    });
    job.rec->on(WORKER_EV_YIELDED, [&](worker_event *) { shown++; });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.wait_done());
    EXPECT_EQ(shown.load(), n);
    EXPECT_EQ(destroyed_by_producer + destroyed_elsewhere, n);
    EXPECT_GT(by_yields.load(), 0) << "no delivered yield went back to the producer";
    job.close();
    expect_payloads_freed();
}

// A producer that stops yielding (it waits, computes, is paused) does not
// keep its delivered frames alive: the home thread destroys them.
TEST(Recycle, HeldYieldsAreDestroyedWhileTheProducerWaits) {
    reset_tracking();
    constexpr int n = 20;
    std::atomic<bool> all_gone{false};
    Job job([&](worker_ctx *ctx) {
        producer_thread = std::this_thread::get_id();
        for (int i = 0; i < n; i++)
            if (worker_yield(ctx, payload(i), tracked_free, nullptr, nullptr) != WORKER_OK) return;
        wait_no_pump(all_gone, 60000);  // no yield, no return: only the GUI can free them
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    bool freed = pump_until([] { return payloads_destroyed() == n; });
    all_gone = true;
    EXPECT_TRUE(freed) << payloads_alive() << " delivered yields kept while the producer waited";
    ASSERT_TRUE(job.wait_done());
    job.close();
    expect_payloads_freed();
}

// The same on a home thread of its own (its own age check).
TEST(Recycle, HeldYieldsAreDestroyedOnAnOwnHomeThread) {
    reset_tracking();
    constexpr int n = 20;
    std::atomic<bool> all_gone{false};
    std::atomic<int> shown{0}, finished{0};
    auto body = [](worker_ctx *ctx, void *arg) {
        auto *gone = static_cast<std::atomic<bool> *>(arg);
        for (int i = 0; i < n; i++)
            if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
        wait_no_pump(*gone, 60000);
    };
    HomeLoop home([&]() -> worker * {
        worker *w = worker_create(body, &all_gone, nullptr, nullptr);
        worker_connect(w, WORKER_EV_YIELDED, [](worker_event *, void *ud) {
            (*static_cast<std::atomic<int> *>(ud))++;
        }, &shown, nullptr);
        worker_connect(w, WORKER_EV_FINISHED, [](worker_event *, void *ud) {
            (*static_cast<std::atomic<int> *>(ud))++;
        }, &finished, nullptr);
        worker_start(w);
        return w;
    });
    worker *w = home.start_home();
    ASSERT_NE(w, nullptr);
    bool freed = wait_no_pump([] { return payloads_destroyed() == n; });
    all_gone = true;
    EXPECT_TRUE(freed) << payloads_alive() << " delivered yields kept on the home thread";
    EXPECT_TRUE(wait_no_pump([&] { return finished.load() == 1; }));
    EXPECT_EQ(shown.load(), n);
    home.stop_and_wait();
    worker_unref(w);
    expect_payloads_freed();
}

// FINISHED still sees every payload destroyed: what the producer holds goes
// when its function returns — also when it was quit in the middle.
TEST(Recycle, EveryHeldYieldDestroyedBeforeFinished) {
    for (bool quit : {false, true}) {
        reset_tracking();
        std::atomic<int> shown{0};
        Job job([&](worker_ctx *ctx) {
            for (int i = 0; i < 500; i++) {
                if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
                if (quit && i == 50) spin_until([&] { return shown.load() >= 40; });
            }
            spin_until([&] { return shown.load() == 500; });  // the last ones are held now
        });
        long alive_at_finished = -1;
        job.rec->on(WORKER_EV_YIELDED, [&](worker_event *) {
            if (++shown == 40 && quit) worker_quit(job.w);
        });
        job.rec->on(WORKER_EV_FINISHED, [&](worker_event *) { alive_at_finished = payloads_alive(); });
        ASSERT_EQ(job.start(), WORKER_OK);
        ASSERT_TRUE(job.wait_done());
        EXPECT_EQ(alive_at_finished, 0) << (quit ? "quit" : "returned");
        job.close();
        expect_payloads_freed();
    }
}

// A stream with a byte budget counts a frame until it is destroyed: its
// frames are destroyed right after their callbacks, on the home thread, as
// before (held, they would keep the producer waiting for room).
TEST(Recycle, BudgetedStreamsDestroyOnTheHomeThread) {
    reset_tracking();
    worker_options o = policy_options(WORKER_BLOCK, 1024);
    o.capacity_bytes = 64;
    constexpr int n = 100;
    Job job([&](worker_ctx *ctx) {
        producer_thread = std::this_thread::get_id();
        for (int i = 0; i < n; i++)
            if (worker_yield_sized(ctx, payload(i), 16, tracked_free, nullptr, nullptr) != WORKER_OK) return;
    }, &o);
    HangGuard guard("budgeted producer waiting for room");
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.wait_done());
    EXPECT_EQ(destroyed_elsewhere.load(), n);
    EXPECT_EQ(destroyed_by_producer.load(), 0);
    job.close();
    expect_payloads_freed();
}

// Producers and the GUI race on the rings: many workers yield flat out, a
// third of them are quit halfway, every payload is destroyed exactly once.
TEST(Recycle, RacingProducersQuitsAndAgeingLoseNothing) {
    reset_payloads();
    constexpr int workers = 8, n = 3000;
    std::vector<std::unique_ptr<Job>> jobs;
    for (int k = 0; k < workers; k++) {
        jobs.push_back(std::make_unique<Job>([](worker_ctx *ctx) {
            for (int i = 0; i < n; i++) {
                if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
                if (i % 500 == 0) nap(6);  // the home thread's age check joins in
            }
        }));
        Job *j = jobs.back().get();
        if (k % 3 == 0)
            j->rec->on(WORKER_EV_YIELDED, [j](worker_event *ev) {
                if (*static_cast<int *>(ev->value) == n / 2) worker_quit(j->w);
            });
    }
    HangGuard guard("racing producers");
    for (auto &j : jobs) ASSERT_EQ(j->start(), WORKER_OK);
    for (auto &j : jobs) ASSERT_TRUE(j->wait_done(60000));
    jobs.clear();
    expect_payloads_freed();
}
