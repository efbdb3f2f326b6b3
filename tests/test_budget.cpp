// The memory budget in bytes (worker_options.capacity_bytes, issue 17):
// worker_yield_sized counts a value's size until it is delivered and
// destroyed, worker_backlog shows the count. Checked by mechanism (exact
// counts, what arrives, that a producer waits), never by timing.
#include "harness.h"
#include "home_loop.h"

#include <algorithm>
#include <atomic>
#include <thread>

using namespace th;

namespace {

constexpr size_t kFrame = 1000;  // the size each test frame claims

worker_options budget(worker_policy p, size_t bytes, size_t capacity = 1024) {
    worker_options o = policy_options(p, capacity);
    o.capacity_bytes = bytes;
    return o;
}

int yield_frame(worker_ctx *ctx, int i, size_t size = kFrame) {
    return worker_yield_sized(ctx, payload(i), size, payload_free, nullptr, nullptr);
}

struct Backlog {
    size_t entries = 0, bytes = 0;
};
Backlog backlog(const worker *w) {
    Backlog b;
    EXPECT_EQ(worker_backlog(w, &b.entries, &b.bytes), WORKER_OK);
    return b;
}

// Samples worker_backlog from a thread of its own until stopped; keeps the
// largest byte count seen.
class Sampler {
public:
    explicit Sampler(worker *w) : t_([this, w] {
        while (!stop_.load()) {
            size_t bytes = 0;
            if (worker_backlog(w, nullptr, &bytes) == WORKER_OK) {
                max_ = std::max(max_.load(), bytes);
                samples_++;
            }
            std::this_thread::yield();
        }
    }) {}
    ~Sampler() { stop(); }
    void stop() {
        stop_ = true;
        if (t_.joinable()) t_.join();
    }
    size_t max() const { return max_.load(); }
    long samples() const { return samples_.load(); }

private:
    std::atomic<bool> stop_{false};
    std::atomic<size_t> max_{0};
    std::atomic<long> samples_{0};
    std::thread t_;
};

}  // namespace

TEST(Budget, BlockNeverHoldsMoreThanTheBudget) {
    reset_payloads();
    constexpr int kN = 3000;
    std::atomic<int> produced{0};
    worker_options o = budget(WORKER_BLOCK, 10 * kFrame);
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < kN; i++) {
                if (yield_frame(ctx, i) != WORKER_OK) return;
                produced = i + 1;
            }
        },
        &o);
    size_t max_in_callback = 0;
    j.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        max_in_callback = std::max(max_in_callback, backlog(ev->source).bytes);
    });
    Sampler sampler(j.w);
    ASSERT_EQ(j.start(), WORKER_OK);
    // The GUI falls behind: the producer fills the budget exactly, then waits.
    EXPECT_TRUE(wait_no_pump([&] { return backlog(j.w).bytes == 10 * kFrame; }));
    wait_no_pump([] { return false; }, 100);
    EXPECT_EQ(produced.load(), 10) << "the 11th frame waits for room";
    EXPECT_EQ(backlog(j.w).entries, 10u) << "bytes bound it, not the entry capacity";
    ASSERT_TRUE(j.rec->wait_finished());
    sampler.stop();
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), kN);
    EXPECT_LE(max_in_callback, 10 * kFrame);
    EXPECT_GT(max_in_callback, 0u) << "the frame being delivered still counts";
    EXPECT_LE(sampler.max(), 10 * kFrame);
    EXPECT_GT(sampler.samples(), 0);
    EXPECT_EQ(backlog(j.w).bytes, 0u);
    EXPECT_EQ(backlog(j.w).entries, 0u);
    j.close();
    expect_payloads_freed();
}

TEST(Budget, TheEntryCapacityStillApplies) {
    reset_payloads();
    worker_options o = budget(WORKER_BLOCK, 1000 * kFrame, 4);
    std::atomic<int> produced{0};
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < 20 && yield_frame(ctx, i) == WORKER_OK; i++) produced = i + 1;
        },
        &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    EXPECT_TRUE(wait_no_pump([&] { return produced.load() == 4; }));
    wait_no_pump([] { return false; }, 50);
    EXPECT_EQ(backlog(j.w).entries, 4u);
    EXPECT_EQ(backlog(j.w).bytes, 4 * kFrame);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), 20);
    j.close();
    expect_payloads_freed();
}

// The GUI stalls inside a callback (frame 0) while the producer runs on:
// LATEST keeps the one being delivered and the newest, within the budget.
TEST(Budget, LatestUnderAGuiStallStaysWithinBudgetAndDeliversTheNewest) {
    reset_payloads();
    constexpr int kN = 200;
    std::atomic<bool> in_callback{false}, produced_all{false};
    Backlog at_end;
    worker_options o = budget(WORKER_LATEST, 3 * kFrame);
    Job j(
        [&](worker_ctx *ctx) {
            ASSERT_EQ(yield_frame(ctx, 0), WORKER_OK);
            wait_no_pump(in_callback);  // frame 0 is now taken for delivery
            for (int i = 1; i < kN; i++) ASSERT_EQ(yield_frame(ctx, i), WORKER_OK);
            worker_backlog(j.w, &at_end.entries, &at_end.bytes);
            produced_all = true;
        },
        &o);
    Sampler sampler(j.w);
    j.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        if (*static_cast<int *>(ev->value) != 0) return;
        in_callback = true;
        EXPECT_TRUE(wait_no_pump(produced_all)) << "the producer never waited for the GUI";
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    sampler.stop();
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{0, kN - 1}));
    EXPECT_EQ(worker_dropped(j.w), kN - 2);
    EXPECT_EQ(at_end.bytes, 2 * kFrame) << "the frame being delivered and the newest";
    EXPECT_EQ(at_end.entries, 2u);
    EXPECT_LE(sampler.max(), 3 * kFrame);
    EXPECT_EQ(backlog(j.w).bytes, 0u);
    j.close();
    expect_payloads_freed();
}

// A budget smaller than two frames: LATEST cannot keep the one being
// delivered and another, so the producer waits instead of exceeding it.
TEST(Budget, LatestWaitsWhenNothingCanBeDroppedToMakeRoom) {
    reset_payloads();
    std::atomic<bool> in_callback{false}, release{false};
    std::atomic<int> produced{0};
    worker_options o = budget(WORKER_LATEST, kFrame + kFrame / 2);
    Job j(
        [&](worker_ctx *ctx) {
            ASSERT_EQ(yield_frame(ctx, 0), WORKER_OK);
            wait_no_pump(in_callback);
            ASSERT_EQ(yield_frame(ctx, 1), WORKER_OK);
            produced = 1;
        },
        &o);
    j.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        if (*static_cast<int *>(ev->value) != 0) return;
        in_callback = true;
        wait_no_pump([] { return false; }, 100);
        EXPECT_EQ(produced.load(), 0) << "frame 1 would exceed the budget";
        EXPECT_EQ(backlog(ev->source).bytes, kFrame);
    });
    HangGuard guard("LATEST waiting for room");
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{0, 1}));
    j.close();
    expect_payloads_freed();
}

TEST(Budget, LatestWithAnUndrainedStreamHoldsOneFrame) {
    reset_payloads();
    std::atomic<bool> done{false};
    worker_options o = budget(WORKER_LATEST, 3 * kFrame);
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < 500; i++) ASSERT_EQ(yield_frame(ctx, i), WORKER_OK);
            done = true;
        },
        &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(done));
    EXPECT_EQ(backlog(j.w).bytes, kFrame) << "every replaced frame released its bytes";
    EXPECT_EQ(backlog(j.w).entries, 1u);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), std::vector<int>{499});
    EXPECT_EQ(worker_dropped(j.w), 499);
    j.close();
    expect_payloads_freed();
}

// A frame larger than the budget gets in once nothing else is pending, and
// its yield returns once it has been delivered: no deadlock, and the bytes
// pending fall back within the budget.
TEST(Budget, AnOversizedFrameGoesAloneAndTheProducerWaitsForIt) {
    reset_payloads();
    constexpr size_t kBudget = 1000, kBig = 5000;
    std::vector<size_t> pending_at_delivery, pending_after_big;
    worker_options o = budget(WORKER_BLOCK, kBudget);
    Job j(
        [&](worker_ctx *ctx) {
            ASSERT_EQ(yield_frame(ctx, 0, 500), WORKER_OK);
            for (int i = 1; i <= 2; i++) {
                ASSERT_EQ(yield_frame(ctx, i, kBig), WORKER_OK);
                pending_after_big.push_back(backlog(j.w).bytes);
            }
            ASSERT_EQ(worker_yield(ctx, payload(3), payload_free, nullptr, nullptr), WORKER_OK);
            ASSERT_EQ(yield_frame(ctx, 4, 300), WORKER_OK);
        },
        &o);
    j.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        pending_at_delivery.push_back(backlog(ev->source).bytes);
    });
    HangGuard guard("an oversized frame");
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{0, 1, 2, 3, 4}));
    // 500: the big one waits for it; 5000 alone, twice; then what follows.
    ASSERT_EQ(pending_at_delivery.size(), 5u);
    EXPECT_EQ(pending_at_delivery[0], 500u);
    EXPECT_EQ(pending_at_delivery[1], kBig);
    EXPECT_EQ(pending_at_delivery[2], kBig);
    for (size_t b : pending_after_big) EXPECT_LE(b, kBudget);
    j.close();
    expect_payloads_freed();
}

TEST(Budget, PlainYieldsCountZeroBytes) {
    reset_payloads();
    std::atomic<bool> done{false};
    worker_options o = budget(WORKER_BLOCK, 100, 128);
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < 50; i++)
                ASSERT_EQ(worker_yield(ctx, payload(i), payload_free, nullptr, nullptr), WORKER_OK);
            ASSERT_EQ(yield_frame(ctx, 50, 40), WORKER_OK);
            ASSERT_EQ(yield_frame(ctx, 51, 0), WORKER_OK);
            done = true;
        },
        &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(done)) << "unsized values never wait for bytes";
    EXPECT_EQ(backlog(j.w).bytes, 40u);
    EXPECT_EQ(backlog(j.w).entries, 52u);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), 52);
    j.close();
    expect_payloads_freed();
}

TEST(Budget, WithoutABudgetSizesAreStillCounted) {
    reset_payloads();
    std::atomic<bool> done{false};
    worker_options o = budget(WORKER_QUEUE, 0);
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < 30; i++) ASSERT_EQ(yield_frame(ctx, i), WORKER_OK);
            done = true;
        },
        &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(done));
    EXPECT_EQ(backlog(j.w).bytes, 30 * kFrame);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(backlog(j.w).bytes, 0u);
    j.close();
    expect_payloads_freed();
}

TEST(Budget, QueueWithABudgetIsRefused) {
    reset_payloads();
    worker_options o = budget(WORKER_QUEUE, 1 << 20);
    EXPECT_EQ(worker_create([](worker_ctx *, void *) {}, payload(1), payload_free, &o), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_EINVAL);
    expect_payloads_freed();  // the argument too
    for (worker_policy p : {WORKER_BLOCK, WORKER_LATEST}) {
        o = budget(p, 1 << 20);
        worker *w = worker_create([](worker_ctx *, void *) {}, nullptr, nullptr, &o);
        EXPECT_NE(w, nullptr);
        worker_unref(w);
    }
}

TEST(Budget, AQuitWakesAProducerWaitingForRoom) {
    reset_payloads();
    std::atomic<int> last_rc{WORKER_OK}, produced{0};
    for (size_t first : {kFrame, 50 * kFrame}) {  // waiting for room; after an oversized frame
        worker_options o = budget(WORKER_BLOCK, 4 * kFrame);
        Job j(
            [&, first](worker_ctx *ctx) {
                int rc = yield_frame(ctx, 0, first);
                for (int i = 1; rc == WORKER_OK; i++) {
                    produced = i;
                    rc = yield_frame(ctx, i);
                }
                last_rc = rc;
            },
            &o);
        produced = 0;
        ASSERT_EQ(j.start(), WORKER_OK);
        ASSERT_TRUE(wait_no_pump([&] { return backlog(j.w).bytes >= 4 * kFrame; }));
        HangGuard guard("quit of a producer waiting for room");
        ASSERT_EQ(worker_quit(j.w), WORKER_OK);
        ASSERT_TRUE(j.rec->wait_finished());
        EXPECT_EQ(last_rc.load(), WORKER_ABORTED);
        EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
        EXPECT_EQ(backlog(j.w).bytes, 0u) << "undelivered frames released their bytes";
        EXPECT_EQ(backlog(j.w).entries, 0u);
        j.close();
        expect_payloads_freed();
    }
}

// Home thread ended with frames pending: destroyed undelivered, and their
// bytes released, so a producer waiting for room goes on (until quit).
TEST(Budget, FramesOfAnEndedHomeThreadAreReleased) {
    reset_payloads();
    std::atomic<long> produced{0};
    auto body = [](worker_ctx *ctx, void *arg) {
        auto *n = static_cast<std::atomic<long> *>(arg);
        for (int i = 0; yield_frame(ctx, i) == WORKER_OK; i++) ++*n;
    };
    HomeLoop home([&] {
        worker_options o = budget(WORKER_BLOCK, 8 * kFrame);
        worker *x = worker_create(body, &produced, nullptr, &o);
        worker_start(x);
        return x;
    });
    worker *w = home.start_home();
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(wait_no_pump([&] { return produced.load() > 20; }));
    home.stop_and_wait();
    long then = produced.load();
    EXPECT_TRUE(wait_no_pump([&] { return produced.load() > then + 20; }))
        << "discarded frames gave their room back";
    ASSERT_EQ(worker_quit(w), WORKER_OK);
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    EXPECT_TRUE(wait_no_pump([&] { return backlog(w).entries == 0; }));
    EXPECT_EQ(backlog(w).bytes, 0u);
    worker_unref(w);
    expect_payloads_freed();
}

TEST(Budget, BacklogFromAnyThreadAndBadHandles) {
    size_t e = 7, b = 7;
    EXPECT_EQ(worker_backlog(nullptr, &e, &b), WORKER_EINVAL);
    EXPECT_EQ(e, 0u);
    EXPECT_EQ(b, 0u);
    int not_a_worker = 0;
    EXPECT_EQ(worker_backlog(reinterpret_cast<worker *>(&not_a_worker), nullptr, nullptr),
              WORKER_EINVAL);
    worker *w = worker_create([](worker_ctx *, void *) {}, nullptr, nullptr, nullptr);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(worker_backlog(w, nullptr, nullptr), WORKER_OK);
    int rc = WORKER_EINVAL;
    std::thread([&] { rc = worker_backlog(w, &e, &b); }).join();
    EXPECT_EQ(rc, WORKER_OK);
    EXPECT_EQ(e + b, 0u);
    worker_unref(w);
    EXPECT_EQ(worker_backlog(w, &e, &b), WORKER_EINVAL) << "freed";
}

TEST(Budget, AHugeBudgetIsNoBound) {
    reset_payloads();
    std::atomic<bool> done{false};
    worker_options o = budget(WORKER_BLOCK, SIZE_MAX);
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < 10; i++) ASSERT_EQ(yield_frame(ctx, i, PTRDIFF_MAX), WORKER_OK);
            done = true;
        },
        &o);
    HangGuard guard("huge sizes");
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), 10);
    EXPECT_EQ(backlog(j.w).bytes, 0u);
    j.close();
    expect_payloads_freed();
}

// Attack 06: a quit while the oversized frame's callback is showing it. The
// frame was delivered, so its yield must not say ABORTED ("not delivered").
TEST(Budget, AQuitWhileAnOversizedFrameIsShownDoesNotSayAborted) {
    reset_payloads();
    std::atomic<int> rc{99};
    std::atomic<bool> returned{false}, shown{false};
    worker_options o = budget(WORKER_BLOCK, kFrame);
    Job j(
        [&](worker_ctx *ctx) {
            rc = yield_frame(ctx, 0, 5 * kFrame);
            returned = true;
        },
        &o);
    j.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        shown = ev->value != nullptr;
        worker_quit(ev->source);
        wait_no_pump(returned, 5000);  // bounded: the worker answers while we draw
    });
    HangGuard guard("a quit during an oversized frame's delivery");
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    ASSERT_TRUE(shown.load());
    EXPECT_EQ(rc.load(), WORKER_OK) << "the frame was delivered, yet its yield said ABORTED";
    j.close();
    expect_payloads_freed();
}

// Attack 07: each size may be up to PTRDIFF_MAX; three of them pending must
// not wrap the sum worker_backlog reports (it saturates at SIZE_MAX).
TEST(Budget, BytesPendingDoNotWrapNearPtrdiffMax) {
    reset_payloads();
    std::atomic<bool> done{false};
    worker_options o = budget(WORKER_QUEUE, 0);
    Job j(
        [&](worker_ctx *ctx) {
            for (int i = 0; i < 3; i++) ASSERT_EQ(yield_frame(ctx, i, PTRDIFF_MAX), WORKER_OK);
            done = true;
        },
        &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(done));
    EXPECT_EQ(backlog(j.w).entries, 3u);
    EXPECT_EQ(backlog(j.w).bytes, SIZE_MAX) << "the sum wrapped";
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(backlog(j.w).bytes, 0u);
    j.close();
    expect_payloads_freed();
}

// Attack 08: the frame LATEST drops is destroyed before the producer parks
// in a pause (or waits for room), not when its yield returns: else the
// dropped frame and the new one both live, past the budget.
TEST(Budget, LatestDestroysTheDroppedFrameBeforeItParks) {
    reset_payloads();
    std::atomic<bool> first{false}, pause_asked{false};
    worker_options o = budget(WORKER_LATEST, kFrame);
    Job j(
        [&](worker_ctx *ctx) {
            ASSERT_EQ(yield_frame(ctx, 0, 600), WORKER_OK);
            first = true;
            ASSERT_TRUE(wait_no_pump(pause_asked));
            yield_frame(ctx, 1, 600);  // drops frame 0, then parks
        },
        &o);
    ASSERT_EQ(j.start(), WORKER_OK);  // the GUI does not pump: frame 0 stays pending
    ASSERT_TRUE(wait_no_pump(first));
    ASSERT_EQ(worker_pause(j.w), WORKER_OK);
    pause_asked = true;
    ASSERT_TRUE(wait_no_pump([&] { return worker_is_paused(j.w) == 1; }));
    EXPECT_EQ(worker_dropped(j.w), 1);
    EXPECT_EQ(payloads_alive(), 1) << "the dropped frame lives on while the producer is parked";
    EXPECT_EQ(backlog(j.w).bytes, 600u);
    HangGuard guard("quit of a parked LATEST producer");
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    j.close();
    expect_payloads_freed();
}
