// Lifecycle: references (napari #5471), starting from any thread (superqt #64),
// the home thread of callbacks, the registry, worker_await (napari #1559) and
// quit-all / await-all, and many short workers back to back.
#include "harness.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>

using namespace th;
using clk = std::chrono::steady_clock;

namespace {

// Endless generator: yields counted payloads until told to stop.
void endless(worker_ctx *ctx, void *) {
    for (int i = 0;; i++)
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
}

// Yields 0..n-1 (n from a static int passed as arg), then returns.
void count_to(worker_ctx *ctx, void *arg) {
    int n = *static_cast<int *>(arg);
    for (int i = 0; i < n; i++)
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
}

void returns_7(worker_ctx *ctx, void *) { worker_return(ctx, payload(7), payload_free); }

// A busy worker that ignores quit until released.
struct Busy {
    std::atomic<bool> entered{false}, release{false};
};
void busy_until(worker_ctx *, void *arg) {
    auto *b = static_cast<Busy *>(arg);
    b->entered = true;
    while (!b->release.load()) nap();
}

worker *make_paused(worker_fn fn, void *arg, const char *name = nullptr) {
    worker_options o;
    worker_options_init(&o);
    o.name = name;
    worker *w = worker_create(fn, arg, nullptr, &o);
    EXPECT_NE(w, nullptr);
    EXPECT_EQ(worker_pause(w), WORKER_OK);  // parks at its first yield
    return w;
}

std::vector<int> iota_vec(int n) {
    std::vector<int> v(n);
    for (int i = 0; i < n; i++) v[i] = i;
    return v;
}

// Connects to every event type and checks each callback runs on `home`.
struct ThreadCheck {
    std::thread::id home = std::this_thread::get_id();
    std::atomic<int> calls{0}, off_thread{0};
    std::set<int> types;  // touched on the home thread only (else off_thread counts)

    void attach(worker *w) {
        for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
            EXPECT_GT(worker_connect(w, (worker_event_type)t, &ThreadCheck::cb, this, nullptr), 0);
    }
    static void cb(worker_event *ev, void *self) {
        auto *c = static_cast<ThreadCheck *>(self);
        c->calls++;
        if (std::this_thread::get_id() != c->home) {
            c->off_thread++;
            return;
        }
        c->types.insert(ev->type);
    }
};

worker_event_type outcome(const Recorder &r) {
    auto t = r.types();
    return t.size() >= 2 ? t[t.size() - 2] : WORKER_EV_STARTED;
}

}  // namespace

// ---------------------------------------------------------------- references

// napari #5471: dropping the only reference mid-run must not crash; the last
// owner unref quits the worker and FINISHED still reaches connected callbacks.
TEST(Lifecycle, UnrefOfRunningWorkerQuitsItAndFinishedArrives) {
    reset_payloads();
    worker *w = worker_create(endless, nullptr, nullptr, nullptr);
    ASSERT_NE(w, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return r.count(WORKER_EV_YIELDED) >= 3; }));
    worker_unref(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_ABORTED);
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), iota_vec(r.count(WORKER_EV_YIELDED)));
    EXPECT_EQ(payloads_alive(), 0);
}

// Same, dropped before the start has been delivered: started, aborted, finished.
TEST(Lifecycle, UnrefRightAfterStartStillDeliversFinished) {
    reset_payloads();
    worker *w = worker_create(endless, nullptr, nullptr, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    worker_unref(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_ABORTED);
    EXPECT_EQ(payloads_alive(), 0);
}

// Only the LAST owner unref quits: with two refs, one unref leaves it usable.
TEST(Lifecycle, RefCountingOneOfTwoUnrefsKeepsWorkerUsable) {
    reset_payloads();
    EXPECT_EQ(worker_ref(nullptr), nullptr);
    static int n = 20;
    worker *w = make_paused(count_to, &n);
    EXPECT_EQ(worker_ref(w), w);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return r.count(WORKER_EV_PAUSED) == 1; }));
    worker_unref(w);  // one ref left: must not quit
    EXPECT_EQ(worker_is_running(w), 1);
    EXPECT_NE(worker_name(w), nullptr);  // still a valid handle
    EXPECT_EQ(worker_resume(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_RETURNED);
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), iota_vec(n));
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// ------------------------------------------------------------- home thread

// superqt #64: a worker started from a non-GUI thread must run, and its
// events must still arrive on the GUI thread.
TEST(Lifecycle, StartFromNonGuiThreadDeliversOnGuiThread) {
    reset_payloads();
    static int n = 50;
    worker *w = worker_create(count_to, &n, nullptr, nullptr);
    ThreadCheck tc;
    tc.attach(w);
    Recorder r(w);
    int rc = 1;
    std::thread([&] { rc = worker_start(w); }).join();
    EXPECT_EQ(rc, WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), iota_vec(n));
    EXPECT_EQ(tc.off_thread.load(), 0);
    EXPECT_EQ(tc.calls.load(), (int)r.events().size());
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// The whole owner side on a plain std::thread (no event loop there): the
// events go to the GUI thread's loop rather than to nowhere.
TEST(Lifecycle, CreateConnectStartOnNonGuiThreadDeliversOnGuiThread) {
    reset_payloads();
    static int n = 10;
    ThreadCheck tc;
    worker *w = nullptr;
    int rc = 1;
    std::thread([&] {
        w = worker_create(count_to, &n, nullptr, nullptr);
        tc.attach(w);
        rc = worker_start(w);
    }).join();
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(rc, WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return tc.types.count(WORKER_EV_FINISHED) == 1; }));
    EXPECT_EQ(tc.off_thread.load(), 0);
    EXPECT_EQ(tc.calls.load(), 1 + n + 2);  // started, n yields, returned, finished
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// Emits every non-outcome event type, then ends as told by *arg:
// 0 = return, 1 = fail, 2 = wait for quit.
void every_event(worker_ctx *ctx, void *arg) {
    int how = *static_cast<int *>(arg);
    worker_yield(ctx, payload(1), payload_free, nullptr, nullptr);  // parks: paused first
    worker_warn(ctx, "w%d", how);
    worker_progress(ctx, 1, 2, "half");
    worker_emit(ctx, "custom", payload(2), payload_free);
    std::fputs("a line\n", worker_stdout(ctx));
    if (how == 0) worker_return(ctx, payload(3), payload_free);
    if (how == 1) worker_fail(ctx, 5, "failed on purpose");
    if (how == 2)
        while (!worker_abort_requested(ctx)) nap();
}

TEST(Lifecycle, CallbacksRunOnGuiThreadForEveryEventType) {
    reset_payloads();
    static int how[3] = {0, 1, 2};
    ThreadCheck tc;
    std::vector<worker *> ws;
    std::vector<std::unique_ptr<Recorder>> recs;
    for (int &h : how) {
        worker *w = make_paused(every_event, &h);
        tc.attach(w);
        recs.push_back(std::make_unique<Recorder>(w));
        // Resume from the PAUSED callback, quit the third one once it printed.
        recs.back()->on(WORKER_EV_PAUSED, [w](worker_event *) { worker_resume(w); });
        if (h == 2) recs.back()->on(WORKER_EV_OUTPUT, [w](worker_event *) { worker_quit(w); });
        ASSERT_EQ(worker_start(w), WORKER_OK);
        ws.push_back(w);
    }
    for (auto &r : recs) ASSERT_TRUE(r->wait_finished());
    EXPECT_EQ(outcome(*recs[0]), WORKER_EV_RETURNED);
    EXPECT_EQ(outcome(*recs[1]), WORKER_EV_ERRORED);
    EXPECT_EQ(outcome(*recs[2]), WORKER_EV_ABORTED);
    EXPECT_EQ(tc.off_thread.load(), 0);
    for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
        EXPECT_EQ(tc.types.count(t), 1u) << "never saw " << type_name((worker_event_type)t);
    for (worker *w : ws) worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// ------------------------------------------------------------------ registry

TEST(Lifecycle, RegistryCountsListsAndNamesLiveWorkers) {
    reset_payloads();
    ASSERT_EQ(worker_live_count(), 0) << "a previous test left a worker running";
    worker *a = make_paused(endless, nullptr, "reg-a");
    worker *b = make_paused(endless, nullptr, "reg-b");
    worker *c = make_paused(endless, nullptr);
    worker *idle = worker_create(endless, nullptr, nullptr, nullptr);  // never started
    EXPECT_STREQ(worker_name(a), "reg-a");
    std::string unnamed = worker_name(c);
    EXPECT_EQ(unnamed.rfind("worker-", 0), 0u) << unnamed;
    EXPECT_GT(unnamed.size(), 7u);
    EXPECT_TRUE(std::all_of(unnamed.begin() + 7, unnamed.end(), ::isdigit)) << unnamed;
    EXPECT_STRNE(worker_name(idle), worker_name(c));  // N is per worker
    EXPECT_EQ(worker_name(nullptr), nullptr);
    EXPECT_EQ(worker_live_count(), 0);  // created is not live

    std::vector<std::unique_ptr<Recorder>> recs;
    for (worker *w : {a, b, c}) {
        recs.push_back(std::make_unique<Recorder>(w));
        ASSERT_EQ(worker_start(w), WORKER_OK);
    }
    EXPECT_EQ(worker_live_count(), 3);

    worker *out[8] = {};
    EXPECT_EQ(worker_list(nullptr, 0), 3);  // max 0: just the count
    ASSERT_EQ(worker_list(out, 8), 3);
    std::set<std::string> names;
    for (int i = 0; i < 3; i++) names.insert(worker_name(out[i]));
    EXPECT_EQ(names, (std::set<std::string>{"reg-a", "reg-b", unnamed}));
    for (int i = 0; i < 3; i++) worker_unref(out[i]);  // the list's refs only
    ASSERT_EQ(worker_list(out, 2), 2);  // bounded by max
    worker_unref(out[0]);
    worker_unref(out[1]);
    EXPECT_EQ(worker_is_running(a), 1) << "unref of a listed ref quit the worker";

    EXPECT_EQ(worker_quit_all(), 3);
    for (auto &r : recs) ASSERT_TRUE(r->wait_finished());
    EXPECT_EQ(worker_live_count(), 0);
    EXPECT_EQ(worker_list(out, 8), 0);
    for (worker *w : {a, b, c, idle}) worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// "Live = started and its function has not yet returned": once worker_await
// said the function returned, the registry must not count the worker.
TEST(Lifecycle, NotLiveOnceAwaitReturned) {
    reset_payloads();
    for (int i = 0; i < 100; i++) {
        worker *w = worker_create(returns_7, nullptr, nullptr, nullptr);
        Recorder r(w);
        ASSERT_EQ(worker_start(w), WORKER_OK);
        ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
        EXPECT_EQ(worker_is_running(w), 0);
        ASSERT_EQ(worker_live_count(), 0) << "iteration " << i;
        ASSERT_TRUE(r.wait_finished());
        worker_unref(w);
    }
    EXPECT_EQ(payloads_alive(), 0);
}

// --------------------------------------------------------------------- await

void sleep_then_return(worker_ctx *ctx, void *) {
    nap(30);
    worker_return(ctx, payload(1), payload_free);
}

TEST(Lifecycle, AwaitIsOkOnceTheFunctionReturned) {
    reset_payloads();
    worker *w = worker_create(sleep_then_return, nullptr, nullptr, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    EXPECT_EQ(worker_await(w, -1), WORKER_OK);
    EXPECT_EQ(worker_is_running(w), 0);
    EXPECT_EQ(worker_await(w, 0), WORKER_OK);  // already ended: still OK
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.values(WORKER_EV_RETURNED), std::vector<int>{1});
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Lifecycle, AwaitTimesOutOnPausedWorker) {
    reset_payloads();
    worker *w = make_paused(endless, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return r.count(WORKER_EV_PAUSED) == 1; }));
    EXPECT_EQ(worker_await(w, 50), WORKER_ETIMEDOUT);
    EXPECT_EQ(worker_is_paused(w), 1);
    EXPECT_EQ(worker_quit(w), WORKER_OK);
    EXPECT_EQ(worker_await(w, 10000), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_ABORTED);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Lifecycle, AwaitOnNeverStartedWorkerIsEState) {
    worker *w = worker_create(returns_7, nullptr, nullptr, nullptr);
    EXPECT_EQ(worker_await(w, 0), WORKER_ESTATE);
    EXPECT_EQ(worker_await(w, -1), WORKER_ESTATE);  // must not hang either
    EXPECT_EQ(worker_await(nullptr, 0), WORKER_EINVAL);
    worker_unref(w);
}

// From another thread while the GUI keeps draining a small BLOCK stream.
TEST(Lifecycle, AwaitFromAnotherThread) {
    reset_payloads();
    static int n = 200;
    worker_options o;
    worker_options_init(&o);
    o.capacity = 4;
    worker *w = worker_create(count_to, &n, nullptr, &o);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    std::atomic<int> rc{1};
    std::thread waiter([&] { rc = worker_await(w, -1); });
    bool done = pump_until([&] { return rc.load() != 1; });
    if (!done) worker_quit(w);  // unblock the waiter so the test fails, not hangs
    waiter.join();
    EXPECT_TRUE(done);
    EXPECT_EQ(rc.load(), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), iota_vec(n));
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// On the GUI thread, right after start and without pumping, a BLOCK worker at
// capacity 1 cannot be drained by anyone: worker_await must still return, and
// every value must then arrive, in order.
TEST(Lifecycle, AwaitOnGuiThreadDoesNotDeadlockOnBlockAtCapacity) {
    reset_payloads();
    static int n = 1000;
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_BLOCK;
    o.capacity = 1;
    worker *w = worker_create(count_to, &n, nullptr, &o);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    // Watchdog: quit after 15 s so a deadlock fails the test instead of hanging it.
    std::atomic<bool> awaited{false}, fired{false};
    std::thread watchdog([&] {
        if (!wait_no_pump([&] { return awaited.load(); }, 15000)) {
            fired = true;
            worker_quit(w);
        }
    });
    int rc = worker_await(w, -1);
    awaited = true;
    watchdog.join();
    EXPECT_FALSE(fired) << "worker_await deadlocked on a full BLOCK stream";
    EXPECT_EQ(rc, WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_RETURNED);
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), iota_vec(n));
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// ------------------------------------------------------ quit-all / await-all

TEST(Lifecycle, QuitAllAndAwaitAllStopGenerators) {
    reset_payloads();
    std::vector<worker *> ws;
    std::vector<std::unique_ptr<Recorder>> recs;
    for (int i = 0; i < 4; i++) {
        ws.push_back(worker_create(endless, nullptr, nullptr, nullptr));
        recs.push_back(std::make_unique<Recorder>(ws.back()));
        ASSERT_EQ(worker_start(ws.back()), WORKER_OK);
    }
    for (auto &r : recs)
        ASSERT_TRUE(pump_until([&] { return r->count(WORKER_EV_YIELDED) > 0; }));
    EXPECT_EQ(worker_quit_all(), 4);
    EXPECT_EQ(worker_await_all(10000), WORKER_OK);
    for (worker *w : ws) EXPECT_EQ(worker_is_running(w), 0);
    EXPECT_EQ(worker_live_count(), 0);
    for (auto &r : recs) {
        ASSERT_TRUE(r->wait_finished());
        EXPECT_EQ(outcome(*r), WORKER_EV_ABORTED);
    }
    for (worker *w : ws) worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// A worker that ignores quit: await_all gives up within its bound.
TEST(Lifecycle, AwaitAllTimesOutOnBusyWorker) {
    Busy busy;
    worker *w = worker_create(busy_until, &busy, nullptr, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    // Quit before the function ran would skip it: wait until it is inside.
    ASSERT_TRUE(wait_no_pump([&] { return busy.entered.load(); }));
    EXPECT_EQ(worker_quit_all(), 1);
    auto t0 = clk::now();
    EXPECT_EQ(worker_await_all(200), WORKER_ETIMEDOUT);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0).count();
    EXPECT_LT(ms, 5000) << "await_all overran its 200 ms bound";
    EXPECT_EQ(worker_is_running(w), 1);
    busy.release = true;
    EXPECT_EQ(worker_await_all(10000), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_ABORTED);
    worker_unref(w);
}

// ------------------------------------------------------------------ volume

TEST(Lifecycle, TwoHundredShortWorkersAllFinishInOrder) {
    reset_payloads();
    static int n = 3;
    std::vector<worker *> ws;
    std::vector<std::unique_ptr<Recorder>> recs;
    for (int i = 0; i < 200; i++) {
        worker *w = worker_create(i % 2 ? count_to : returns_7, &n, nullptr, nullptr);
        ASSERT_NE(w, nullptr);
        recs.push_back(std::make_unique<Recorder>(w));
        ASSERT_EQ(worker_start(w), WORKER_OK);
        ws.push_back(w);
    }
    for (size_t i = 0; i < recs.size(); i++) {
        ASSERT_TRUE(recs[i]->wait_finished()) << "worker " << i;
        if (i % 2)
            EXPECT_EQ(recs[i]->values(WORKER_EV_YIELDED), iota_vec(n)) << "worker " << i;
        else
            EXPECT_EQ(recs[i]->values(WORKER_EV_RETURNED), std::vector<int>{7}) << "worker " << i;
    }
    for (worker *w : ws) worker_unref(w);
    EXPECT_EQ(worker_live_count(), 0);
    EXPECT_EQ(payloads_alive(), 0);
}
