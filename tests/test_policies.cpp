// Backpressure policies and the dispatcher's fairness, tested by mechanism
// (counts and order), never by timing.
#include "harness.h"

#include <QTimer>

#include <atomic>
#include <thread>

using namespace th;

namespace {

struct Gen {
    int n;                       // values to yield; < 0 = until quit
    std::atomic<int> produced{0};
    int sleep_us = 0;            // pause between yields
};

void generate(worker_ctx *ctx, void *arg) {
    auto *g = static_cast<Gen *>(arg);
    for (int i = 0; g->n < 0 || i < g->n; i++) {
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
        g->produced.store(i + 1);
        if (g->sleep_us) std::this_thread::sleep_for(std::chrono::microseconds(g->sleep_us));
    }
}

worker *make(Gen *g, worker_policy policy, size_t capacity, const char *name = nullptr) {
    worker_options o;
    worker_options_init(&o);
    o.policy = policy;
    o.capacity = capacity;
    o.name = name;
    return worker_create(generate, g, nullptr, &o);
}

}  // namespace

TEST(Policies, LatestKeepsOnlyTheNewestAndDestroysTheRest) {
    reset_payloads();
    Gen g{1000};
    worker *w = make(&g, WORKER_LATEST, 8);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    // The GUI does not pump while the worker produces everything.
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    EXPECT_EQ(g.produced.load(), 1000);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), std::vector<int>{999});
    EXPECT_EQ(worker_dropped(w), 999);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Policies, LatestNeverDropsWarningsOrCustomEvents) {
    reset_payloads();
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_LATEST;
    o.capacity = 64;
    worker *w = worker_create(
        [](worker_ctx *ctx, void *) {
            for (int i = 0; i < 50; i++) {
                worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
                worker_warn(ctx, "w%d", i);
                worker_emit(ctx, "tick", payload(i), payload_free);
            }
        },
        nullptr, nullptr, &o);
    Recorder r(w);
    worker_start(w);
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.count(WORKER_EV_WARNED), 50);
    EXPECT_EQ(r.count(WORKER_EV_CUSTOM), 50);
    EXPECT_LT(r.count(WORKER_EV_YIELDED), 50);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Policies, BlockProducerWaitsAtCapacityAndResumesWhenDrained) {
    reset_payloads();
    Gen g{100};
    worker *w = make(&g, WORKER_BLOCK, 4);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    // Without the GUI draining, the producer stops at the capacity.
    auto t0 = std::chrono::steady_clock::now();
    while (g.produced.load() < 3 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_GE(g.produced.load(), 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_LE(g.produced.load(), 4) << "BLOCK must hold at most capacity undelivered";
    EXPECT_TRUE(worker_is_running(w));
    ASSERT_TRUE(r.wait_finished());
    std::vector<int> all;
    for (int i = 0; i < 100; i++) all.push_back(i);
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), all);  // lossless, in order
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Policies, QueueIsLosslessAndNeverBlocks) {
    reset_payloads();
    Gen g{5000};
    worker *w = make(&g, WORKER_QUEUE, 4);
    Recorder r(w);
    worker_start(w);
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);  // finished without any draining
    EXPECT_EQ(g.produced.load(), 5000);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ((int)r.values(WORKER_EV_YIELDED).size(), 5000);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Policies, FloodDoesNotStopAGuiTimer) {
    reset_payloads();
    Gen g{-1};
    worker *w = make(&g, WORKER_QUEUE, 1024);
    // Each delivery costs GUI time, so the backlog always exceeds a turn.
    long delivered = 0;
    worker_connect(w, WORKER_EV_YIELDED,
                   [](worker_event *, void *n) {
                       ++*static_cast<long *>(n);
                       auto t0 = std::chrono::steady_clock::now();
                       while (std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(5)) {
                       }
                   },
                   &delivered, nullptr);
    Recorder r(w);
    int ticks = 0;
    QTimer timer;
    QObject::connect(&timer, &QTimer::timeout, [&] { ticks++; });
    timer.start(16);
    worker_start(w);
    pump_until([&] { return ticks >= 10; }, 20000);
    EXPECT_GE(ticks, 10) << "the timer must keep firing under a flood";
    EXPECT_GT(delivered, 0);
    worker_quit(w);
    ASSERT_TRUE(r.wait_finished(60000));
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Policies, EndlessFloodDoesNotStarveASecondWorker) {
    reset_payloads();
    Gen flood{-1};
    Gen slow{20};
    slow.sleep_us = 2000;
    worker *a = make(&flood, WORKER_QUEUE, 1024, "flood");
    worker *b = make(&slow, WORKER_BLOCK, 16, "slow");
    Recorder ra(a), rb(b);
    // A costly callback on the flood keeps the dispatcher permanently busy.
    worker_connect(a, WORKER_EV_YIELDED,
                   [](worker_event *, void *) {
                       auto t0 = std::chrono::steady_clock::now();
                       while (std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(2)) {
                       }
                   },
                   nullptr, nullptr);
    worker_start(a);
    worker_start(b);
    ASSERT_TRUE(rb.wait_finished(30000)) << "second worker starved";
    EXPECT_EQ(rb.values(WORKER_EV_YIELDED).size(), 20u);
    EXPECT_FALSE(ra.finished());
    worker_quit(a);
    ASSERT_TRUE(ra.wait_finished(60000));
    worker_unref(a);
    worker_unref(b);
    EXPECT_EQ(payloads_alive(), 0);
}
