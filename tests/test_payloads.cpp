// Payload ownership: every value handed to the library with a destroy
// function (arg, yielded, returned, sent, custom, user_data) is destroyed
// exactly once on every path. Counted with th::payload / th::payload_free:
// a leak leaves payloads_alive() > 0, a double destroy drives it below 0.
#include "harness.h"

#include <memory>
#include <thread>

using namespace th;

namespace {

void wait_for_quit(worker_ctx *ctx) {
    while (!worker_abort_requested(ctx)) nap(1);
}

// Destroy function for NULL values (payload_free would count a phantom).
std::atomic<int> null_destroys{0};
void count_null(void *p) {
    EXPECT_EQ(p, nullptr);
    null_destroys++;
}

int arg_int(void *arg) { return *static_cast<int *>(arg); }

worker_event_type outcome(const Recorder &r) {
    auto t = r.types();
    return t.size() >= 2 ? t[t.size() - 2] : WORKER_EV_STARTED;
}

// Starts w with a Recorder, waits for FINISHED (checking the order) and
// returns the recorder for further checks. Does not unref.
std::unique_ptr<Recorder> run(worker *w) {
    auto r = std::make_unique<Recorder>(w);
    EXPECT_EQ(worker_start(w), WORKER_OK);
    EXPECT_TRUE(r->wait_finished());
    return r;
}

// Yields 0..n-1 where n is the int arg.
void yield_n(worker_ctx *ctx, void *arg) {
    for (int i = 0; i < arg_int(arg); i++)
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
}

std::atomic<int> fn_calls{0};
void reads_arg(worker_ctx *ctx, void *arg) {
    fn_calls++;
    worker_return(ctx, payload(arg_int(arg) + 1), payload_free);
}

}  // namespace

// ------------------------------------------------------------------------ arg

TEST(Payloads, ArgDestroyedAfterNormalRun) {
    reset_payloads();
    worker *w = worker_create(reads_arg, payload(41), payload_free, nullptr);
    auto r = run(w);
    EXPECT_EQ(r->values(WORKER_EV_RETURNED), std::vector<int>{42});
    EXPECT_EQ(payloads_alive(), 0) << "arg (or result) still alive after FINISHED";
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, ArgDestroyedWhenNeverStarted) {
    reset_payloads();
    worker *w = worker_create(reads_arg, payload(1), payload_free, nullptr);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(payloads_alive(), 1);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, ArgDestroyedAtOnceWhenCreateFails) {
    reset_payloads();
    EXPECT_EQ(worker_create(nullptr, payload(1), payload_free, nullptr), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_EINVAL);
    EXPECT_EQ(payloads_alive(), 0);
    worker_options bad = policy_options(WORKER_BLOCK, (size_t)WORKER_MAX_CAPACITY + 1);
    EXPECT_EQ(worker_create(reads_arg, payload(1), payload_free, &bad), nullptr);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, ArgDestroyedWhenQuitBeforeStart) {
    reset_payloads();
    fn_calls = 0;
    worker *w = worker_create(reads_arg, payload(1), payload_free, nullptr);
    EXPECT_EQ(worker_quit(w), WORKER_OK);
    auto r = run(w);
    EXPECT_EQ(r->types(), (std::vector<worker_event_type>{
                              WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
    EXPECT_EQ(fn_calls.load(), 0);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// -------------------------------------------------------------------- yielded

TEST(Payloads, YieldedNotTakenDestroyedAfterCallbacks) {
    reset_payloads();
    static int n = 10;
    worker *w = worker_create(yield_n, &n, nullptr, nullptr);
    // Two callbacks per value (this one, then the Recorder's): the value must
    // be readable in both, i.e. destroyed only after all callbacks ran.
    int seen = 0;
    long id = worker_connect(w, WORKER_EV_YIELDED, [](worker_event *ev, void *ud) {
        auto *count = static_cast<int *>(ud);
        EXPECT_NE(ev->value, nullptr);
        if (ev->value) {
            EXPECT_EQ(*static_cast<int *>(ev->value), *count);
        }
        (*count)++;
    }, &seen, nullptr);
    ASSERT_GT(id, 0);
    auto r = run(w);
    EXPECT_EQ(seen, n);
    std::vector<int> expect;
    for (int i = 0; i < n; i++) expect.push_back(i);
    EXPECT_EQ(r->values(WORKER_EV_YIELDED), expect);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, YieldedTakenIsNotDestroyedByLibrary) {
    reset_payloads();
    static int n = 10;
    worker *w = worker_create(yield_n, &n, nullptr, nullptr);
    std::vector<void *> kept;
    worker_connect(w, WORKER_EV_YIELDED, [](worker_event *ev, void *ud) {
        static_cast<std::vector<void *> *>(ud)->push_back(worker_event_take(ev));
        EXPECT_EQ(ev->value, nullptr);
    }, &kept, nullptr);
    auto r = run(w);  // connected after: sees the taken value as NULL
    EXPECT_EQ(r->count(WORKER_EV_YIELDED), n);
    for (auto &e : r->events())
        if (e.type == WORKER_EV_YIELDED) {
            EXPECT_EQ(e.raw, nullptr);
        }
    worker_unref(w);
    ASSERT_EQ((int)kept.size(), n);
    EXPECT_EQ(payloads_alive(), n) << "the library destroyed a taken value";
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(*static_cast<int *>(kept[i]), i);
        payload_free(kept[i]);
    }
    EXPECT_EQ(payloads_alive(), 0);
}

// LATEST with the GUI not pumping: every superseded yield is destroyed and
// counted in worker_dropped; delivered + dropped = yielded.
TEST(Payloads, LatestDropsAreDestroyedAndCounted) {
    reset_payloads();
    static int n = 500;
    worker_options o = policy_options(WORKER_LATEST, 4);
    worker *w = worker_create(yield_n, &n, nullptr, &o);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    auto got = r.values(WORKER_EV_YIELDED);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), n - 1) << "LATEST must keep the newest";
    EXPECT_GT(worker_dropped(w), 0);
    EXPECT_EQ((long long)got.size() + worker_dropped(w), n);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// A worker that yields `n` values into a large stream, then either quits
// itself (mode 1: the yield after its own quit is refused) or waits for a quit.
struct Backlog {
    int n;
    int mode;
    std::atomic<worker *> self{nullptr};
    std::atomic<bool> yielded_all{false};
};

void backlog_fn(worker_ctx *ctx, void *arg) {
    auto *b = static_cast<Backlog *>(arg);
    for (int i = 0; i < b->n; i++)
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
    b->yielded_all = true;
    if (b->mode == 1) {
        worker_quit(b->self.load());  // owner calls work from any thread
        EXPECT_EQ(worker_yield(ctx, payload(-1), payload_free, nullptr, nullptr), WORKER_ABORTED);
        return;
    }
    wait_for_quit(ctx);
}

// Aborted with 100 values still queued (GUI not pumping); variants: with or
// without callbacks connected, quit by the GUI or by the worker itself.
void run_backlog(int mode, bool connected) {
    reset_payloads();
    Backlog b{100, mode};
    worker_options o = policy_options(WORKER_BLOCK, 1000);
    worker *w = worker_create(backlog_fn, &b, nullptr, &o);
    b.self = w;
    std::unique_ptr<Recorder> r;
    if (connected) r = std::make_unique<Recorder>(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(wait_no_pump([&] { return b.yielded_all.load(); }));
    EXPECT_GE(payloads_alive(), 100);  // queued, undelivered
    if (mode == 0) {
        EXPECT_EQ(worker_quit(w), WORKER_OK);
    }
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    worker_unref(w);  // the library keeps it until FINISHED is delivered
    if (r) {
        ASSERT_TRUE(r->wait_finished());
        EXPECT_EQ(outcome(*r), WORKER_EV_ABORTED);
    }
    EXPECT_TRUE(pump_until([] { return payloads_alive() == 0; }))
        << payloads_alive() << " payloads left";
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, AbortedWithQueuedValuesQuitByGui) { run_backlog(0, true); }
TEST(Payloads, AbortedWithQueuedValuesQuitByGuiNoCallbacks) { run_backlog(0, false); }
TEST(Payloads, AbortedWithQueuedValuesQuitBySelf) { run_backlog(1, true); }

// ------------------------------------------------------------------- returned

void return_twice(worker_ctx *ctx, void *) {
    worker_return(ctx, payload(1), payload_free);
    worker_return(ctx, payload(2), payload_free);  // last call wins
}

void return_then_wait_quit(worker_ctx *ctx, void *) {
    worker_return(ctx, payload(7), payload_free);
    wait_for_quit(ctx);
    worker_return(ctx, payload(8), payload_free);  // still hidden by the abort
}

void return_then_fail(worker_ctx *ctx, void *) {
    worker_return(ctx, payload(7), payload_free);
    worker_fail(ctx, 3, "failed after returning");
}

TEST(Payloads, ReturnedDeliveredThenDestroyed) {
    reset_payloads();
    worker *w = worker_create(reads_arg, payload(9), payload_free, nullptr);
    auto r = run(w);
    EXPECT_EQ(r->values(WORKER_EV_RETURNED), std::vector<int>{10});
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
}

TEST(Payloads, ReturnedLastCallWinsFirstDestroyed) {
    reset_payloads();
    worker *w = worker_create(return_twice, nullptr, nullptr, nullptr);
    auto r = run(w);
    EXPECT_EQ(r->values(WORKER_EV_RETURNED), std::vector<int>{2});
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, ReturnedHiddenByAbortIsDestroyed) {
    reset_payloads();
    worker *w = worker_create(return_then_wait_quit, nullptr, nullptr, nullptr);
    Recorder r(w);
    r.on(WORKER_EV_STARTED, [w](worker_event *) { worker_quit(w); });
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_ABORTED);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, ReturnedHiddenByFailIsDestroyed) {
    reset_payloads();
    worker *w = worker_create(return_then_fail, nullptr, nullptr, nullptr);
    auto r = run(w);
    EXPECT_EQ(outcome(*r), WORKER_EV_ERRORED);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// A plugin may free its state (or unload) once FINISHED arrives: destroy
// functions of leftovers (hidden result, unreceived sends, arg) must have run
// by then, even slow ones, not later on the pool thread.
void slow_free(void *p) {
    nap(50);
    payload_free(p);
}

void slow_leftovers(worker_ctx *ctx, void *) {
    worker_return(ctx, payload(7), slow_free);
    wait_for_quit(ctx);
}

TEST(Payloads, LeftoversDestroyedBeforeFinished) {
    reset_payloads();
    worker *w = worker_create(slow_leftovers, payload(0), slow_free, nullptr);
    for (int i = 0; i < 2; i++) ASSERT_EQ(worker_send(w, payload(i), slow_free), WORKER_OK);
    Recorder r(w);
    long alive_at_finished = -1;
    r.on(WORKER_EV_STARTED, [w](worker_event *) { worker_quit(w); });
    r.on(WORKER_EV_FINISHED, [&](worker_event *) { alive_at_finished = payloads_alive(); });
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(alive_at_finished, 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// ----------------------------------------------------------------------- sent

// Receives *arg values, checks they come FIFO and frees each itself.
void receive_n(worker_ctx *ctx, void *arg) {
    int want = arg_int(arg), got = 0;
    while (got < want) {
        void *v = nullptr;
        worker_destroy_fn d = nullptr;
        int rc = worker_yield(ctx, nullptr, nullptr, &v, &d);
        if (rc == WORKER_ABORTED) return;
        if (rc != WORKER_RECEIVED) continue;
        EXPECT_EQ(d, &payload_free);
        if (v) {
            EXPECT_EQ(*static_cast<int *>(v), got);
        }
        got++;
        if (d) d(v);
    }
}

TEST(Payloads, SentReceivedAndFreedByWorker) {
    reset_payloads();
    static int n = 5;
    worker *w = worker_create(receive_n, &n, nullptr, nullptr);
    for (int i = 0; i < n; i++) ASSERT_EQ(worker_send(w, payload(i), payload_free), WORKER_OK);
    auto r = run(w);
    EXPECT_EQ(outcome(*r), WORKER_EV_RETURNED);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, SentNeverReceivedDestroyedAtEnd) {
    reset_payloads();
    static int n = 3;
    worker *w = worker_create(yield_n, &n, nullptr, nullptr);  // takes no input
    for (int i = 0; i < 5; i++) ASSERT_EQ(worker_send(w, payload(i), payload_free), WORKER_OK);
    auto r = run(w);
    EXPECT_EQ(payloads_alive(), 0) << "unreceived values must die when the worker ends";
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, SentToNeverStartedWorkerDestroyedOnFree) {
    reset_payloads();
    worker *w = worker_create(reads_arg, payload(0), payload_free, nullptr);
    ASSERT_EQ(worker_send(w, payload(1), payload_free), WORKER_OK);
    null_destroys = 0;
    ASSERT_EQ(worker_send(w, nullptr, count_null), WORKER_OK);  // NULL is a value too
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
    EXPECT_EQ(null_destroys.load(), 1);
}

TEST(Payloads, SentAfterEndDestroyedImmediately) {
    reset_payloads();
    static int n = 1;
    worker *w = worker_create(yield_n, &n, nullptr, nullptr);
    auto r = run(w);
    EXPECT_EQ(worker_send(w, payload(1), payload_free), WORKER_ESTATE);
    EXPECT_EQ(payloads_alive(), 0);
    EXPECT_EQ(worker_send(nullptr, payload(1), payload_free), WORKER_EINVAL);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
}

// --------------------------------------------------------------------- custom

void emit_both(worker_ctx *ctx, void *) {
    for (int i = 0; i < 5; i++) {
        worker_emit(ctx, "seen", payload(i), payload_free);
        worker_emit(ctx, "unheard", payload(100 + i), payload_free);
    }
}

TEST(Payloads, CustomValuesDestroyedWhetherOrNotConnected) {
    reset_payloads();
    worker *w = worker_create(emit_both, nullptr, nullptr, nullptr);
    int seen = 0;
    ASSERT_GT(worker_connect_custom(w, "seen", [](worker_event *ev, void *ud) {
        EXPECT_STREQ(ev->name, "seen");
        (*static_cast<int *>(ud))++;
    }, &seen, nullptr), 0);
    auto r = run(w);
    EXPECT_EQ(seen, 5);
    EXPECT_EQ(r->count(WORKER_EV_CUSTOM), 10);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// ------------------------------------------------------------------ user_data

void noop_cb(worker_event *, void *) {}
void noop_fn(worker_ctx *, void *) {}

TEST(Payloads, UserDataDestroyedOnDisconnectOnce) {
    reset_payloads();
    worker *w = worker_create(noop_fn, nullptr, nullptr, nullptr);
    long id = worker_connect(w, WORKER_EV_STARTED, noop_cb, payload(1), payload_free);
    ASSERT_GT(id, 0);
    EXPECT_EQ(worker_disconnect(w, id), WORKER_OK);
    EXPECT_EQ(payloads_alive(), 0);
    EXPECT_EQ(worker_disconnect(w, id), WORKER_EINVAL);  // not twice
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, UserDataDestroyedWhenWorkerFreed) {
    reset_payloads();
    worker *idle = worker_create(noop_fn, nullptr, nullptr, nullptr);  // never started
    ASSERT_GT(worker_connect(idle, WORKER_EV_FINISHED, noop_cb, payload(1), payload_free), 0);
    ASSERT_GT(worker_connect_custom(idle, "x", noop_cb, payload(2), payload_free), 0);
    worker_unref(idle);
    EXPECT_EQ(payloads_alive(), 0);

    worker *w = worker_create(noop_fn, nullptr, nullptr, nullptr);
    ASSERT_GT(worker_connect(w, WORKER_EV_STARTED, noop_cb, payload(3), payload_free), 0);
    auto r = run(w);
    EXPECT_EQ(payloads_alive(), 1) << "user_data must live while the worker does";
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, UserDataDestroyedWhenConnectFails) {
    reset_payloads();
    worker *w = worker_create(noop_fn, nullptr, nullptr, nullptr);
    EXPECT_LT(worker_connect(w, WORKER_EV_STARTED, nullptr, payload(1), payload_free), 0);
    EXPECT_LT(worker_connect(w, (worker_event_type)99, noop_cb, payload(2), payload_free), 0);
    EXPECT_LT(worker_connect(w, (worker_event_type)-1, noop_cb, payload(3), payload_free), 0);
    EXPECT_LT(worker_connect(nullptr, WORKER_EV_STARTED, noop_cb, payload(4), payload_free), 0);
    EXPECT_LT(worker_connect_custom(w, nullptr, noop_cb, payload(5), payload_free), 0);
    EXPECT_LT(worker_connect_custom(w, "x", nullptr, payload(6), payload_free), 0);
    EXPECT_EQ(payloads_alive(), 0);
    auto r = run(w);
    EXPECT_EQ(worker_connect(w, WORKER_EV_STARTED, noop_cb, payload(7), payload_free),
              WORKER_ESTATE);  // already finished
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(w);
}

// Disconnecting from inside the callback: not called again; user_data lives
// through that call and is destroyed (once) as soon as it returns, i.e.
// before the next callback of the same event (the Recorder's) runs.
std::atomic<int> ud_destroys{0};
void ud_free(void *p) {
    ud_destroys++;
    payload_free(p);
}

TEST(Payloads, UserDataDestroyedOnceWhenDisconnectedInsideCallback) {
    reset_payloads();
    ud_destroys = 0;
    static int n = 5;
    worker *w = worker_create(yield_n, &n, nullptr, nullptr);
    static long id;
    static int calls;
    calls = 0;
    id = worker_connect(w, WORKER_EV_YIELDED, [](worker_event *ev, void *ud) {
        calls++;
        EXPECT_EQ(worker_disconnect(ev->source, id), WORKER_OK);
        EXPECT_EQ(ud_destroys.load(), 0) << "destroyed while its callback runs";
        EXPECT_EQ(*static_cast<int *>(ud), 77);
    }, payload(77), ud_free);
    ASSERT_GT(id, 0);
    Recorder r(w);
    std::vector<int> seen;
    r.on(WORKER_EV_YIELDED, [&](worker_event *) { seen.push_back(ud_destroys.load()); });
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(seen, std::vector<int>(n, 1));
    worker_unref(w);
    EXPECT_EQ(ud_destroys.load(), 1);
    EXPECT_EQ(payloads_alive(), 0);
}

// -------------------------------------------------------------- wrong thread

struct Captured {
    std::atomic<worker_ctx *> ctx{nullptr};
};

void capture_ctx(worker_ctx *ctx, void *arg) {
    static_cast<Captured *>(arg)->ctx = ctx;
    wait_for_quit(ctx);
}

// Each worker-side call that carries a payload, made with a valid ctx from
// a thread that is not running the function: ETHREAD, payload destroyed.
void expect_ethread_destroys(worker_ctx *ctx) {
    EXPECT_EQ(worker_yield(ctx, payload(1), payload_free, nullptr, nullptr), WORKER_ETHREAD);
    EXPECT_EQ(worker_return(ctx, payload(2), payload_free), WORKER_ETHREAD);
    EXPECT_EQ(worker_emit(ctx, "x", payload(3), payload_free), WORKER_ETHREAD);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Payloads, WorkerSideCallsFromWrongThreadDestroyPayload) {
    reset_payloads();
    Captured cap;
    worker *w = worker_create(capture_ctx, &cap, nullptr, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(wait_no_pump([&] { return cap.ctx.load() != nullptr; }));
    expect_ethread_destroys(cap.ctx);                             // GUI thread
    std::thread([&] { expect_ethread_destroys(cap.ctx); }).join();  // another thread
    worker_quit(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(outcome(r), WORKER_EV_ABORTED) << "the stray return must not count";
    EXPECT_EQ(r.count(WORKER_EV_YIELDED) + r.count(WORKER_EV_CUSTOM), 0);
    expect_ethread_destroys(cap.ctx);  // after the function returned
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}
