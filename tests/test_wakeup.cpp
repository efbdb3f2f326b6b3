// No lost wake-up: the producer's empty -> non-empty edge (posted after its
// lock is released, as an eventfd write) must reach the GUI every time, also
// when the GUI has just gone idle. The test alternates a burst of yields with
// a GUI that drains to empty and sleeps, hundreds of thousands of times; a
// lost wake-up leaves a burst undelivered (a round that never completes).
#include "harness.h"

#include <atomic>
#include <chrono>
#include <cstdio>

using namespace th;

namespace {

struct Rounds {
    std::atomic<long> produced{0}, delivered{0};
    std::atomic<long> rounds{0};
    std::atomic<bool> stop{false};
    long max_rounds = 0;
    bool mixed = false;  // some values are warnings: the slow lane, not the ring
};

void on_yielded(worker_event *, void *ud) {
    static_cast<Rounds *>(ud)->delivered.fetch_add(1, std::memory_order_release);
}

// A burst of 1..32 values, then wait (without any library call) until the
// GUI has taken them all: the stream is empty and the GUI idle again.
void bursts(worker_ctx *ctx, void *ud) {
    auto *r = static_cast<Rounds *>(ud);
    unsigned x = 12345;
    while (!r->stop.load() && r->rounds.load() < r->max_rounds) {
        x = x * 1103515245u + 12345u;
        int n = 1 + int((x >> 16) % 32);
        for (int i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            bool warn = r->mixed && (x >> 16) % 4 == 0;
            if ((warn ? worker_warn(ctx, "w") : worker_yield(ctx, nullptr, nullptr, nullptr, nullptr)) !=
                WORKER_OK)
                return;
            r->produced.fetch_add(1, std::memory_order_relaxed);
        }
        long want = r->produced.load();
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (r->delivered.load(std::memory_order_acquire) < want) {
            if (std::chrono::steady_clock::now() > give_up) return;  // lost: the test sees it
        }
        r->rounds.fetch_add(1);
    }
}

// Rounds of bursts against an idle GUI; false (with a test failure) if one
// never completes.
void run_rounds(Rounds &r) {
    Job j(bursts, &r, nullptr, false);
    ASSERT_GT(worker_connect(j.w, WORKER_EV_YIELDED, on_yielded, &r, nullptr), 0);
    ASSERT_GT(worker_connect(j.w, WORKER_EV_WARNED, on_yielded, &r, nullptr), 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);  // a cap, not a check
    long last = -1;
    while (r.rounds.load() < r.max_rounds && std::chrono::steady_clock::now() < end) {
        long before = r.rounds.load();
        // Each round needs the GUI: pump until the round is done or 10 s.
        ASSERT_TRUE(pump_until([&] { return r.rounds.load() > before; }, 10000))
            << "round " << before << ": " << r.produced.load() - r.delivered.load()
            << " values never delivered (a lost wake-up)";
        last = r.rounds.load();
    }
    r.stop = true;
    std::printf("%ld bursts, %ld values, each delivered after the GUI went idle\n", last, r.produced.load());
    EXPECT_GE(last, 1000);
    ASSERT_TRUE(j.wait_done());
    EXPECT_EQ(r.delivered.load(), r.produced.load());
}

}  // namespace

TEST(Wakeup, BurstsAfterIdleAreNeverLeftUndelivered) {
    Rounds r;
    r.max_rounds = 300000;
    run_rounds(r);
}

// The same with a quarter of the values warnings: bursts end in either lane,
// and the fast lane closes and reopens around every slow entry.
TEST(Wakeup, BurstsEndingInEitherLaneAreNeverLeftUndelivered) {
    Rounds r;
    r.max_rounds = 150000;
    r.mixed = true;
    run_rounds(r);
}
