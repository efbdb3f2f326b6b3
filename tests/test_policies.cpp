// Backpressure policies and the dispatcher's fairness, tested by mechanism
// (counts and order), never by timing.
#include "harness.h"

#include <QTimer>

#include <atomic>
#include <chrono>

using namespace th;

namespace {

// A generator worker (a recorded Job) yielding 0..n-1 under a policy.
struct Producer {
    const int n;                 // values to yield; < 0 = until quit
    int sleep_ms = 0;            // pause between yields
    std::atomic<int> produced{0};
    Job job;

    Producer(int n, const worker_options &o) : n(n), job(generate, this, &o) {}
    Producer(int n, worker_policy p, size_t capacity) : Producer(n, policy_options(p, capacity)) {}

    static void generate(worker_ctx *ctx, void *self) {
        auto *g = static_cast<Producer *>(self);
        for (int i = 0; g->n < 0 || i < g->n; i++) {
            if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
            g->produced.store(i + 1);
            if (g->sleep_ms) nap(g->sleep_ms);
        }
    }
};

// Starts j and lets its function run to the end while the GUI does not pump
// (nothing is drained meanwhile), then delivers everything.
void run_undrained(Job &j) {
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_EQ(worker_await(j.w, 10000), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
}

// Makes every YIELDED delivery cost GUI time (busy, not sleeping), so the
// backlog always exceeds a dispatcher turn; counts the deliveries.
struct Costly {
    std::chrono::microseconds cost;
    long delivered = 0;

    void attach(worker *w) {
        EXPECT_GT(worker_connect(w, WORKER_EV_YIELDED, &Costly::cb, this, nullptr), 0);
    }
    static void cb(worker_event *, void *self) {
        auto *c = static_cast<Costly *>(self);
        c->delivered++;
        auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < c->cost) {
        }
    }
};

}  // namespace

TEST(Policies, LatestKeepsOnlyTheNewestAndDestroysTheRest) {
    reset_payloads();
    Producer p(1000, WORKER_LATEST, 8);
    ASSERT_NO_FATAL_FAILURE(run_undrained(p.job));
    EXPECT_EQ(p.produced.load(), 1000);
    EXPECT_EQ(p.job.rec->values(WORKER_EV_YIELDED), std::vector<int>{999});
    EXPECT_EQ(worker_dropped(p.job.w), 999);
    p.job.close();
    expect_payloads_freed();
}

TEST(Policies, LatestNeverDropsWarningsOrCustomEvents) {
    reset_payloads();
    worker_options o = policy_options(WORKER_LATEST, 64);
    Job j([](worker_ctx *ctx) {
        for (int i = 0; i < 50; i++) {
            worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
            worker_warn(ctx, "w%d", i);
            worker_emit(ctx, "tick", payload(i), payload_free);
        }
    }, &o);
    ASSERT_NO_FATAL_FAILURE(run_undrained(j));
    EXPECT_EQ(j.rec->count(WORKER_EV_WARNED), 50);
    EXPECT_EQ(j.rec->count(WORKER_EV_CUSTOM), 50);
    EXPECT_LT(j.rec->count(WORKER_EV_YIELDED), 50);
    j.close();
    expect_payloads_freed();
}

TEST(Policies, BlockProducerWaitsAtCapacityAndResumesWhenDrained) {
    reset_payloads();
    Producer p(100, WORKER_BLOCK, 4);
    ASSERT_EQ(p.job.start(), WORKER_OK);
    // Without the GUI draining, the producer stops at the capacity.
    ASSERT_TRUE(wait_no_pump([&] { return p.produced.load() >= 3; }))
        << "produced only " << p.produced.load();
    nap(50);
    EXPECT_LE(p.produced.load(), 4) << "BLOCK must hold at most capacity undelivered";
    EXPECT_TRUE(worker_is_running(p.job.w));
    ASSERT_TRUE(p.job.rec->wait_finished());
    std::vector<int> all;
    for (int i = 0; i < 100; i++) all.push_back(i);
    EXPECT_EQ(p.job.rec->values(WORKER_EV_YIELDED), all);  // lossless, in order
    p.job.close();
    expect_payloads_freed();
}

TEST(Policies, QueueIsLosslessAndNeverBlocks) {
    reset_payloads();
    // 50 000: a backlog of ~400 stream chunks, so the delivery also hands
    // emptied chunks to a pool thread to be freed (sanitizers check that).
    Producer p(50000, WORKER_QUEUE, 4);
    ASSERT_NO_FATAL_FAILURE(run_undrained(p.job));  // finished without any draining
    EXPECT_EQ(p.produced.load(), 50000);
    std::vector<int> all(50000);
    for (int i = 0; i < 50000; i++) all[size_t(i)] = i;
    EXPECT_EQ(p.job.rec->values(WORKER_EV_YIELDED), all);  // lossless, in order
    p.job.close();
    expect_payloads_freed();
}

TEST(Policies, FloodDoesNotStopAGuiTimer) {
    reset_payloads();
    Costly costly{std::chrono::microseconds(5)};  // outlives the worker's callbacks
    Producer flood(-1, WORKER_QUEUE, 1024);
    Job &j = flood.job;
    costly.attach(j.w);
    int ticks = 0;
    QTimer timer;
    QObject::connect(&timer, &QTimer::timeout, [&] { ticks++; });
    timer.start(16);
    ASSERT_EQ(j.start(), WORKER_OK);
    pump_until([&] { return ticks >= 10; }, 20000);
    EXPECT_GE(ticks, 10) << "the timer must keep firing under a flood";
    EXPECT_GT(costly.delivered, 0);
    worker_quit(j.w);
    ASSERT_TRUE(j.rec->wait_finished(60000));
    j.close();
    expect_payloads_freed();
}

TEST(Policies, EndlessFloodDoesNotStarveASecondWorker) {
    reset_payloads();
    // A costly callback on the flood keeps the dispatcher permanently busy.
    Costly costly{std::chrono::microseconds(2)};  // outlives the worker's callbacks
    Producer flood(-1, policy_options(WORKER_QUEUE, 1024, "flood"));
    Producer slow(20, policy_options(WORKER_BLOCK, 16, "slow"));
    slow.sleep_ms = 2;
    Job &a = flood.job, &b = slow.job;
    costly.attach(a.w);
    ASSERT_EQ(a.start(), WORKER_OK);
    ASSERT_EQ(b.start(), WORKER_OK);
    ASSERT_TRUE(b.rec->wait_finished(30000)) << "second worker starved";
    EXPECT_EQ(b.rec->values(WORKER_EV_YIELDED).size(), 20u);
    EXPECT_FALSE(a.rec->finished());
    worker_quit(a.w);
    ASSERT_TRUE(a.rec->wait_finished(60000));
    a.close();
    b.close();
    expect_payloads_freed();
}

namespace {

// A BLOCK worker yields `first` (queued while the GUI does not pump: one
// turn takes them all), then one more, which must wait. The GUI delivers
// the first entries; inside the callback of the last of them it waits,
// without pumping, for the waiting yield to return: the entries delivered
// before it have had their callbacks and are destroyed, so their room is
// free although the turn has not ended. kind: 'y' plain yields, 's' sized
// (60 bytes, against a 100-byte budget), 'w' warnings.
struct TurnRoom {
    std::string kinds;  // one letter per entry, the last one waits
    worker_options o;
    size_t frame = 60;  // bytes of an 's' entry
    int stall_at = 0;   // the entry whose callback waits (1-based; 0: the last queued)
    std::atomic<int> emitted{0};
    std::atomic<bool> last_returned{false};
    bool got_in = false;
    int seen = 0;

    static void push_one(worker_ctx *ctx, const TurnRoom *t, char k, int i) {
        if (k == 'w')
            worker_warn(ctx, "%d", i);
        else if (k == 's')
            worker_yield_sized(ctx, payload(i), t->frame, payload_free, nullptr, nullptr);
        else
            worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
    }
    static void body(worker_ctx *ctx, void *self) {
        auto *t = static_cast<TurnRoom *>(self);
        for (size_t i = 0; i < t->kinds.size(); i++) {
            push_one(ctx, t, t->kinds[i], int(i));
            t->emitted.store(int(i) + 1);
        }
        t->last_returned.store(true);
    }
    static void on_entry(worker_event *, void *self) {
        auto *t = static_cast<TurnRoom *>(self);
        int stall = t->stall_at ? t->stall_at : int(t->kinds.size()) - 1;
        if (++t->seen == stall)  // the GUI is slow here
            t->got_in = wait_no_pump(t->last_returned, 3000);
    }
    void run() {
        reset_payloads();
        Job j(body, this, &o, false);
        for (worker_event_type ty : {WORKER_EV_YIELDED, WORKER_EV_WARNED})
            ASSERT_GT(worker_connect(j.w, ty, on_entry, this, nullptr), 0);
        ASSERT_EQ(j.start(), WORKER_OK);
        int queued = int(kinds.size()) - 1;
        ASSERT_TRUE(wait_no_pump([&] { return emitted.load() >= queued; }));
        nap(20);
        ASSERT_EQ(emitted.load(), queued) << "the last entry must wait before the GUI runs";
        ASSERT_TRUE(j.wait_done());
        EXPECT_TRUE(got_in) << kinds << ": the waiting entry did not get in while the GUI was "
                               "slow in a callback, though the entries before it were delivered";
        EXPECT_EQ(seen, int(kinds.size()));
        j.close();
        expect_payloads_freed();
    }
};

void turn_room(const char *kinds, size_t capacity, size_t budget, size_t frame = 60,
               int stall_at = 0) {
    TurnRoom t;
    t.kinds = kinds;
    t.frame = frame;
    t.stall_at = stall_at;
    t.o = policy_options(WORKER_BLOCK, capacity);
    t.o.capacity_bytes = budget;
    t.run();
}

}  // namespace

// Double buffering: capacity 2, the producer computes the next frame while
// the GUI draws the current one (the room of the frame drawn before it is
// handed back before the current one's callback, not when the turn ends).
TEST(Policies, BlockRoomDeliveredInATurnIsFreeBeforeItsNextCallback) {
    turn_room("yyy", 2, 0);
    turn_room("www", 2, 0);
    turn_room("yyyyy", 4, 0);  // half of 4 delivered: the producer goes on
}

// The same for bytes: a 60-byte frame delivered and destroyed no longer
// counts against a 100-byte budget while the next entry's callback runs.
TEST(Policies, ByteBudgetDeliveredInATurnIsFreeBeforeItsNextCallback) {
    turn_room("sys", 1024, 100);
    turn_room("sws", 1024, 100);
    // 7 of 8 frames pending (700 of 800 bytes): the 9th fits, though less
    // than half the budget is free.
    turn_room("sssssssss", 1000, 800, 100, 2);
}
