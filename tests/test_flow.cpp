// Flow control: pause / resume / toggle, quit (and what the outcome is after
// it), worker_abort_requested, quit waking parked and BLOCK-waiting workers.
#include "harness.h"

#include <functional>

using namespace th;

namespace {

// What a generator body saw: how many yields it issued, and the status that
// made it stop.
struct Gen {
    std::atomic<int> issued{0};
    std::atomic<int> stop_rc{WORKER_OK};
};

// Yields 0, 1, 2, ... (1 ms apart) until worker_yield reports anything but OK.
Body counting_gen(Gen &g) {
    return [&g](worker_ctx *ctx) {
        for (int i = 0;; i++) {
            g.issued++;
            int rc = worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
            if (rc != WORKER_OK) {
                g.stop_rc = rc;
                return;
            }
            nap();
        }
    };
}

// Index of the first event of type t at or after `from`, or -1.
int index_of(const Recorder &r, worker_event_type t, size_t from = 0) {
    const auto &ev = r.events();
    for (size_t i = from; i < ev.size(); i++)
        if (ev[i].type == t) return (int)i;
    return -1;
}

// Pumps ~100 ms and checks that nothing was yielded meanwhile.
void expect_no_yields_while_pumping(const Job &j, const Gen &g) {
    int delivered = j.rec->count(WORKER_EV_YIELDED), issued = g.issued.load();
    pump_for(100);
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), delivered);
    EXPECT_EQ(g.issued.load(), issued);
    EXPECT_EQ(worker_is_paused(j.w), 1);
}

// Starts j, lets `yields` values arrive, then pauses it with `pause`
// (worker_pause or worker_toggle_pause) until PAUSED arrived.
void start_then_pause(Job &j, int yields, int (*pause)(worker *) = worker_pause) {
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_YIELDED, yields));
    ASSERT_EQ(pause(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_PAUSED));
    EXPECT_EQ(worker_is_paused(j.w), 1);
}

// Values 0..n-1 in order, nothing lost or repeated.
void expect_consecutive(const std::vector<int> &v) {
    for (size_t i = 0; i < v.size(); i++) ASSERT_EQ(v[i], (int)i) << "at " << i;
}

}  // namespace

// ------------------------------------------------------------ pause, resume

TEST(Pause, ParksResumesAndKeepsOrder) {
    reset_payloads();
    Gen g;
    Job j(counting_gen(g));
    ASSERT_NO_FATAL_FAILURE(start_then_pause(j, 3));
    // Every value yielded before parking arrived, and before PAUSED.
    int paused_at = index_of(*j.rec, WORKER_EV_PAUSED);
    EXPECT_EQ(paused_at, (int)j.rec->events().size() - 1);
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), g.issued.load());
    expect_no_yields_while_pumping(j, g);

    int before = j.rec->count(WORKER_EV_YIELDED);
    ASSERT_EQ(worker_resume(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_YIELDED, before + 3));
    EXPECT_EQ(worker_is_paused(j.w), 0);
    EXPECT_EQ(index_of(*j.rec, WORKER_EV_RESUMED), paused_at + 1);  // no yield in between
    EXPECT_EQ(j.rec->count(WORKER_EV_PAUSED), 1);

    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    expect_consecutive(j.rec->values(WORKER_EV_YIELDED));
    j.close();
    expect_payloads_freed();
}

TEST(Pause, TogglePausesThenResumes) {
    reset_payloads();
    Gen g;
    Job j(counting_gen(g));
    ASSERT_NO_FATAL_FAILURE(start_then_pause(j, 2, worker_toggle_pause));
    expect_no_yields_while_pumping(j, g);
    int before = j.rec->count(WORKER_EV_YIELDED);
    ASSERT_EQ(worker_toggle_pause(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_RESUMED));
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_YIELDED, before + 1));
    EXPECT_EQ(worker_is_paused(j.w), 0);
    j.close();
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    expect_consecutive(j.rec->values(WORKER_EV_YIELDED));
    expect_payloads_freed();
}

// Pause before start: the worker parks at its first yield (the header says
// "parks at once"; either way no second value comes out).
TEST(Pause, BeforeStartParksAtFirstYield) {
    reset_payloads();
    Gen g;
    Job j(counting_gen(g));
    ASSERT_EQ(worker_pause(j.w), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_PAUSED));
    EXPECT_EQ(worker_is_paused(j.w), 1);
    EXPECT_LE(g.issued.load(), 1);
    Types t = j.rec->types();
    EXPECT_TRUE(t == (Types{WORKER_EV_STARTED, WORKER_EV_YIELDED, WORKER_EV_PAUSED}) ||
                t == (Types{WORKER_EV_STARTED, WORKER_EV_PAUSED}));
    expect_no_yields_while_pumping(j, g);
    j.close();
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    expect_payloads_freed();
}

// A resume always lets the worker return from the yield it parked in: a
// pause asked before it woke (resume + pause at once, a "step") parks it at
// its next yield, one value later. Without that it re-parked in place, the
// step did nothing, and PAUSED came again with no value between.
TEST(Pause, ResumeThenPauseAtOnceStepsOneValue) {
    reset_payloads();
    Gen g;
    Job j(counting_gen(g));
    ASSERT_NO_FATAL_FAILURE(start_then_pause(j, 1));
    for (int step = 1; step <= 20; step++) {
        int issued = g.issued.load(), yielded = j.rec->count(WORKER_EV_YIELDED);
        ASSERT_EQ(worker_resume(j.w), WORKER_OK);
        ASSERT_EQ(worker_pause(j.w), WORKER_OK);
        ASSERT_TRUE(j.rec->wait_for(WORKER_EV_PAUSED, step + 1)) << "step " << step;
        EXPECT_EQ(g.issued.load(), issued + 1) << "step " << step;
        EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), yielded + 1) << "step " << step;
        EXPECT_EQ(worker_is_paused(j.w), 1);
    }
    EXPECT_EQ(j.rec->count(WORKER_EV_RESUMED), 20);
    j.close();
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    expect_consecutive(j.rec->values(WORKER_EV_YIELDED));
    expect_payloads_freed();
}

// The same from the RESUMED callback: the GUI pauses again as soon as it
// hears the worker runs; the worker runs to its next yield each time.
TEST(Pause, PauseFromTheResumedCallbackTakesEffectAtTheNextYield) {
    reset_payloads();
    Gen g;
    Job j(counting_gen(g));
    std::vector<int> issued_at_pause;
    int cycles = 0;
    j.rec->on(WORKER_EV_PAUSED, [&](worker_event *) {
        issued_at_pause.push_back(g.issued.load());  // parked: it cannot change now
        if (++cycles <= 20) EXPECT_EQ(worker_resume(j.w), WORKER_OK);
    });
    j.rec->on(WORKER_EV_RESUMED, [&](worker_event *) { EXPECT_EQ(worker_pause(j.w), WORKER_OK); });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_YIELDED));
    ASSERT_EQ(worker_pause(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_PAUSED, 21));
    ASSERT_EQ(issued_at_pause.size(), 21u);
    for (size_t i = 1; i < issued_at_pause.size(); i++)
        EXPECT_EQ(issued_at_pause[i], issued_at_pause[i - 1] + 1) << "cycle " << i;
    j.close();
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    expect_consecutive(j.rec->values(WORKER_EV_YIELDED));
    expect_payloads_freed();
}

// ---------------------------------------------------------------------- quit

namespace {

// Yields until quit, then runs `after` (the cleanup a plugin might do).
Body yield_until_quit(Gen &g, std::function<void(worker_ctx *)> after) {
    return [&g, after](worker_ctx *ctx) {
        counting_gen(g)(ctx);
        after(ctx);
    };
}

}  // namespace

// napari #2796: a quit worker must not report RETURNED, even if it returns a
// value after seeing ABORTED.
TEST(Quit, GeneratorSeesAbortedOutcomeNeverReturned) {
    reset_payloads();
    Gen g;
    Job j(yield_until_quit(g, [](worker_ctx *ctx) {
        worker_return(ctx, payload(99), payload_free);
    }));
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_YIELDED, 3));
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(g.stop_rc.load(), WORKER_ABORTED);
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    EXPECT_EQ(j.rec->count(WORKER_EV_RETURNED), 0);
    j.close();
    expect_payloads_freed();  // the hidden result and refused yield freed
}

TEST(Quit, FailAfterQuitIsErrored) {
    reset_payloads();
    Gen g;
    Job j(yield_until_quit(g, [](worker_ctx *ctx) {
        worker_fail(ctx, 9, "cleanup failed: %d", 3);
    }));
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_YIELDED, 1));
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    ASSERT_EQ(j.rec->outcome(), WORKER_EV_ERRORED);
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).code, 9);
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).message, "cleanup failed: 3");
    EXPECT_EQ(j.rec->count(WORKER_EV_ABORTED), 0);
    j.close();
    expect_payloads_freed();
}

// ---------------------------------------------------- worker_abort_requested

namespace {

// A loop that never yields, only polls worker_abort_requested.
Body polling_loop(std::atomic<int> &iterations) {
    return [&iterations](worker_ctx *ctx) {
        while (worker_abort_requested(ctx) == 0) {
            iterations++;
            nap();
        }
    };
}

}  // namespace

TEST(AbortRequested, PollingLoopStopsOnQuit) {
    std::atomic<int> iterations{0};
    Job j(polling_loop(iterations));
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return iterations.load() >= 3; }));
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
}

TEST(AbortRequested, ParksWhenPauseRequested) {
    std::atomic<int> iterations{0};
    Job j(polling_loop(iterations));
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return iterations.load() >= 3; }));
    ASSERT_EQ(worker_pause(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_PAUSED));
    EXPECT_EQ(worker_is_paused(j.w), 1);
    int parked = iterations.load();
    pump_for(100);
    EXPECT_EQ(iterations.load(), parked);
    ASSERT_EQ(worker_resume(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_RESUMED));
    ASSERT_TRUE(pump_until([&] { return iterations.load() > parked; }));
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_PAUSED, WORKER_EV_RESUMED,
                                     WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
}

// ------------------------------------------------------ quit wakes a waiter

TEST(Quit, WakesPausedWorkerAtOnce) {
    reset_payloads();
    Gen g;
    Job j(counting_gen(g));
    ASSERT_NO_FATAL_FAILURE(start_then_pause(j, 1));
    int issued = g.issued.load();
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    // Generous bound: a parked worker that did not wake would hang here.
    EXPECT_EQ(worker_await(j.w, 10000), WORKER_OK);
    EXPECT_EQ(g.stop_rc.load(), WORKER_ABORTED);
    EXPECT_EQ(g.issued.load(), issued);  // the parked yield returned ABORTED
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), issued);
    j.close();
    expect_payloads_freed();
}

// Capacity 1 and a GUI that does not pump: the second yield waits for room.
// Quit must wake it. Waits without worker_await, which on the home thread
// would itself let the producer through.
TEST(Quit, WakesBlockWorkerWaitingAtCapacity) {
    reset_payloads();
    worker_options o;
    worker_options_init(&o);
    o.capacity = 1;
    std::atomic<bool> running{false}, go{false}, at_second{false}, past_second{false};
    std::atomic<int> rc1{WORKER_OK}, rc2{WORKER_OK};
    Job j([&](worker_ctx *ctx) {
        running = true;
        wait_no_pump(go);
        rc1 = worker_yield(ctx, payload(0), payload_free, nullptr, nullptr);
        at_second = true;
        rc2 = worker_yield(ctx, payload(1), payload_free, nullptr, nullptr);
        past_second = true;
    }, &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return running.load(); }));
    go = true;  // from here on the GUI does not pump until quit
    ASSERT_TRUE(wait_no_pump(at_second));
    nap(100);
    ASSERT_FALSE(past_second.load()) << "BLOCK at capacity 1 did not wait";
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(past_second)) << "quit did not wake the BLOCK wait";
    EXPECT_EQ(rc1.load(), WORKER_OK);
    EXPECT_EQ(rc2.load(), WORKER_ABORTED);
    ASSERT_TRUE(j.rec->wait_finished());
    // Value 0 was still undelivered at quit: destroyed, not shown (header).
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
    j.close();
    expect_payloads_freed();
}

// ---------------------------------------------- quit before start, mid-run

TEST(Quit, NeverStartedThenStartGivesStartedAbortedFinished) {
    std::atomic<bool> ran{false};
    Job j([&](worker_ctx *) { ran = true; });
    EXPECT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
    EXPECT_FALSE(ran.load());
}

// A plain function (no yields, no polling) quit while it runs: it finishes
// its work, but the outcome is ABORTED and its result is freed, not delivered.
TEST(Quit, FunctionWorkerQuitMidRunIsAborted) {
    reset_payloads();
    std::atomic<bool> running{false}, release{false};
    Job j([&](worker_ctx *ctx) {
        running = true;
        wait_no_pump(release);
        worker_return(ctx, payload(1), payload_free);
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return running.load(); }));
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    release = true;
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
    j.close();
    expect_payloads_freed();
}
