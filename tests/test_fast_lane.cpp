// The stream's two lanes (qtimpl/yield_ring.h, stream.cpp): plain yields go
// through a lock-free ring, everything else through the locked slow lane.
// These tests attack what the split could break: the order of a worker's
// events across the lanes, the QUEUE overflow past the ring's slots while
// the GUI stalls, the BLOCK capacity and byte budget counted across both
// lanes, and a callback disconnected from another thread while values flood
// in (its user_data destroyed exactly once, never used after).
#include "harness.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace th;

namespace {

// What the GUI saw, as text: "y5" a yield of 5, "w5" a warning, "p5" a
// progress step, "c5" a custom event.
struct Seen {
    std::vector<std::string> items;
    static void on(worker_event *ev, void *ud) {
        auto *s = static_cast<Seen *>(ud);
        char buf[32];
        switch (ev->type) {
        case WORKER_EV_YIELDED:
            std::snprintf(buf, sizeof buf, "y%d", int(reinterpret_cast<intptr_t>(ev->value)));
            break;
        case WORKER_EV_WARNED:
            std::snprintf(buf, sizeof buf, "w%s", ev->message);
            break;
        case WORKER_EV_PROGRESS:
            std::snprintf(buf, sizeof buf, "p%lld", ev->done);
            break;
        default:
            std::snprintf(buf, sizeof buf, "c%d", int(reinterpret_cast<intptr_t>(ev->value)));
        }
        s->items.push_back(buf);
    }
    void connect(worker *w) {
        for (worker_event_type t : {WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_PROGRESS})
            ASSERT_GT(worker_connect(w, t, on, this, nullptr), 0);
        ASSERT_GT(worker_connect_custom(w, "c", on, this, nullptr), 0);
    }
};

void *as_value(int i) { return reinterpret_cast<void *>(intptr_t(i)); }

// Yields 0..n-1 with slow-lane events between them at uneven distances, so
// the worker switches lanes often; returns what the GUI must see.
std::vector<std::string> mixed_body(worker_ctx *ctx, int n) {
    std::vector<std::string> want;
    unsigned x = 99;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        unsigned r = (x >> 16) % 64;
        if (r == 0) {
            worker_warn(ctx, "%d", i);
            want.push_back("w" + std::to_string(i));
        } else if (r == 1) {
            worker_progress(ctx, i, n, nullptr);
            want.push_back("p" + std::to_string(i));
        } else if (r == 2) {
            worker_emit(ctx, "c", as_value(i), nullptr);
            want.push_back("c" + std::to_string(i));
        }
        // A sized value takes the slow lane (the ring counts no bytes).
        int rc = r == 4 ? worker_yield_sized(ctx, as_value(i), 64, nullptr, nullptr, nullptr)
                        : worker_yield(ctx, as_value(i), nullptr, nullptr, nullptr);
        if (rc != WORKER_OK) break;
        want.push_back("y" + std::to_string(i));
        if (r == 3) nap(0);  // now and then the GUI catches up: the lanes drain
    }
    return want;
}

void expect_order_across_lanes(worker_policy policy, size_t capacity) {
    constexpr int kValues = 20000;
    std::vector<std::string> want;
    worker_options o = policy_options(policy, capacity);
    Job j([&](worker_ctx *ctx) { want = mixed_body(ctx, kValues); }, &o, false);
    Seen seen;
    seen.connect(j.w);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.wait_done(60000));
    ASSERT_EQ(seen.items.size(), want.size());
    for (size_t i = 0; i < want.size(); i++)
        ASSERT_EQ(seen.items[i], want[i]) << "event " << i << " out of order";
}

}  // namespace

TEST(FastLane, EventsKeepTheirOrderAcrossTheLanesUnderBlock) {
    expect_order_across_lanes(WORKER_BLOCK, 8);
}

TEST(FastLane, EventsKeepTheirOrderAcrossTheLanesUnderQueue) {
    expect_order_across_lanes(WORKER_QUEUE, 0);
}

// The ring has at most 1024 slots: a QUEUE worker that yields far more while
// the GUI stalls goes on in the slow lane, loses nothing, keeps the order,
// and worker_backlog counts both lanes.
TEST(FastLane, QueueOverflowsTheRingWithoutLossWhileTheGuiStalls) {
    constexpr int kValues = 5000;
    std::atomic<bool> done{false};
    worker_options o = policy_options(WORKER_QUEUE, 0);
    Job j([&](worker_ctx *ctx) {
        for (int i = 0; i < kValues; i++) worker_yield(ctx, as_value(i), nullptr, nullptr, nullptr);
        done = true;
    }, &o, false);
    Seen seen;
    seen.connect(j.w);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(done));  // the GUI delivers nothing meanwhile
    size_t entries = 0;
    ASSERT_EQ(worker_backlog(j.w, &entries, nullptr), WORKER_OK);
    EXPECT_EQ(entries, size_t(kValues));
    ASSERT_TRUE(j.wait_done());
    ASSERT_EQ(seen.items.size(), size_t(kValues));
    for (int i = 0; i < kValues; i++) ASSERT_EQ(seen.items[i], "y" + std::to_string(i));
}

// BLOCK stops the producer at exactly `capacity` pending values, also when
// the capacity is not a power of two (the ring has more slots than that).
TEST(FastLane, BlockStopsAtExactlyItsCapacityInTheRing) {
    std::atomic<int> yielded{0};
    worker_options o = policy_options(WORKER_BLOCK, 100);
    Job j([&](worker_ctx *ctx) {
        for (int i = 0; i < 300; i++) {
            if (worker_yield(ctx, as_value(i), nullptr, nullptr, nullptr) != WORKER_OK) return;
            yielded++;
        }
    }, &o, false);
    Seen seen;
    seen.connect(j.w);
    ASSERT_EQ(j.start(), WORKER_OK);
    // The 101st yield waits: 100 returned, and no more for a while.
    ASSERT_TRUE(wait_no_pump([&] { return yielded.load() >= 100; }));
    nap(50);
    EXPECT_EQ(yielded.load(), 100);
    size_t entries = 0;
    ASSERT_EQ(worker_backlog(j.w, &entries, nullptr), WORKER_OK);
    EXPECT_EQ(entries, 100u);
    ASSERT_TRUE(j.wait_done());
    EXPECT_EQ(seen.items.size(), 300u);
}

// Sized yields count against capacity_bytes (they take the slow lane):
// with a 1000-byte budget, 100-byte values stop at 10 pending.
TEST(FastLane, TheByteBudgetCountsSizedValues) {
    std::atomic<int> yielded{0};
    worker_options o = policy_options(WORKER_BLOCK, 0);
    o.capacity_bytes = 1000;
    Job j([&](worker_ctx *ctx) {
        for (int i = 0; i < 50; i++) {
            if (worker_yield_sized(ctx, as_value(i), 100, nullptr, nullptr, nullptr) != WORKER_OK)
                return;
            yielded++;
        }
    }, &o, false);
    Seen seen;
    seen.connect(j.w);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump([&] { return yielded.load() >= 10; }));
    nap(50);
    EXPECT_EQ(yielded.load(), 10);
    size_t entries = 0, bytes = 0;
    ASSERT_EQ(worker_backlog(j.w, &entries, &bytes), WORKER_OK);
    EXPECT_EQ(entries, 10u);
    EXPECT_EQ(bytes, 1000u);
    ASSERT_TRUE(j.wait_done());
    EXPECT_EQ(seen.items.size(), 50u);
}

namespace {

// A user_data that knows whether it is alive: a call after its destroy
// reads kDead (and ASan reports the freed memory).
constexpr uint32_t kAlive = 0xA11CE, kDead = 0xDEAD;
struct Counted {
    uint32_t magic = kAlive;
};
std::atomic<long> counted_destroys{0}, calls_on_dead{0}, counted_calls{0};
std::atomic<bool> in_call{false};
// Looks at its user_data before and after a short busy wait: a destroy
// during the call (not after it) is seen at the second look.
void counted_cb(worker_event *, void *ud) {
    auto *c = static_cast<volatile Counted *>(ud);
    if (c->magic != kAlive) calls_on_dead++;
    in_call = true;
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) {
    }
    in_call = false;
    if (c->magic != kAlive) calls_on_dead++;
    counted_calls++;
}
void counted_free(void *p) {
    static_cast<Counted *>(p)->magic = kDead;
    counted_destroys++;
    delete static_cast<Counted *>(p);
}

}  // namespace

// Connect and disconnect from another thread while the GUI delivers values
// at full speed: a call never meets a destroyed user_data, and every
// user_data is destroyed exactly once (by the disconnect, or right after
// the call running then).
TEST(FastLane, DisconnectFromAnotherThreadDuringAFloodDestroysOnceNeverUsedAfter) {
    counted_destroys = calls_on_dead = counted_calls = 0;
    std::atomic<bool> stop{false};
    Job j([&](worker_ctx *ctx) {
        while (!stop.load() && worker_yield(ctx, nullptr, nullptr, nullptr, nullptr) == WORKER_OK) {
        }
    }, nullptr, false);
    ASSERT_EQ(j.start(), WORKER_OK);
    constexpr long kRounds = 3000;
    std::atomic<long> connected{0}, overlaps{0};
    std::thread other([&] {
        for (long i = 0; i < kRounds; i++) {
            long id = worker_connect(j.w, WORKER_EV_YIELDED, counted_cb, new Counted, counted_free);
            if (id <= 0) break;
            connected++;
            for (int k = 0; k < 200; k++) std::this_thread::yield();
            if (in_call.load()) overlaps++;
            EXPECT_EQ(worker_disconnect(j.w, id), WORKER_OK);
        }
        stop = true;
    });
    ASSERT_TRUE(pump_until([&] { return stop.load(); }, 60000));
    other.join();
    ASSERT_TRUE(j.wait_done());
    EXPECT_EQ(connected.load(), kRounds);
    EXPECT_EQ(calls_on_dead.load(), 0);
    EXPECT_EQ(counted_destroys.load(), kRounds);
    EXPECT_GT(counted_calls.load(), 0) << "the callbacks ran while connected";
    std::printf("%ld calls over %ld connections, %ld on dead, %ld overlaps\n", counted_calls.load(), kRounds, calls_on_dead.load(), overlaps.load());
}
