// The event kinds (errored, warned, progress, custom), their order, taking a
// value out of an event, and connecting / disconnecting callbacks.
#include "harness.h"

#include <string>
#include <thread>
#include <vector>

using namespace th;

namespace {

void yield_int(worker_ctx *ctx, int v) {
    EXPECT_EQ(worker_yield(ctx, payload(v), payload_free, nullptr, nullptr), WORKER_OK);
}

}  // namespace

// ------------------------------------------------------------------ errored

TEST(Errored, CodeAndFormattedMessageNoReturned) {
    reset_payloads();
    Job j([](worker_ctx *ctx) { worker_fail(ctx, 7, "bad %s #%d", "frame", 12); });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ERRORED, WORKER_EV_FINISHED}));
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).code, 7);
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).message, "bad frame #12");
    j.close();
    expect_payloads_freed();
}

TEST(Errored, FirstFailWins) {
    Job j([](worker_ctx *ctx) {
        worker_fail(ctx, 1, "cause");
        worker_fail(ctx, 2, "consequence");
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->count(WORKER_EV_ERRORED), 1);
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).code, 1);
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).message, "cause");
}

TEST(Errored, FailThenReturnStaysErroredAndResultIsDestroyed) {
    reset_payloads();
    Job j([](worker_ctx *ctx) {
        worker_fail(ctx, 3, "broken");
        // A slow destroy: the hidden result must still be gone by FINISHED.
        worker_return(ctx, payload(42), slow_payload_free);
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ERRORED, WORKER_EV_FINISHED}));
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).code, 3);
    EXPECT_EQ(payloads_alive(), 0);  // the hidden result was freed before FINISHED
    j.close();
    expect_payloads_freed();
}

// ----------------------------------------------------- default error handler

namespace {

struct Handled {
    int calls = 0, code = 0;
    std::string message, name;
    worker_event_type type = WORKER_EV_STARTED;
};

void record_unhandled(worker_event *ev, void *ud) {
    auto *h = static_cast<Handled *>(ud);
    h->calls++;
    h->type = ev->type;
    h->code = ev->code;
    h->message = ev->message ? ev->message : "";
    h->name = worker_name(ev->source) ? worker_name(ev->source) : "";
}

void fail_disk_full(worker_ctx *ctx) { worker_fail(ctx, 5, "disk %s", "full"); }

}  // namespace

TEST(ErrorHandler, ReplacementGetsUnhandledErrorsOnly) {
    Handled h;
    worker_set_error_handler(record_unhandled, &h);
    worker_options o;
    worker_options_init(&o);
    o.name = "unhandled-probe";
    {
        Job j(fail_disk_full, &o, /*record=*/false);  // no ERRORED callback
        ASSERT_EQ(j.start(), WORKER_OK);
        EXPECT_TRUE(j.wait_done());
    }
    {
        Job j(fail_disk_full, &o);  // the Recorder handles ERRORED itself
        ASSERT_EQ(j.start(), WORKER_OK);
        EXPECT_TRUE(j.rec->wait_finished());
        EXPECT_EQ(j.rec->count(WORKER_EV_ERRORED), 1);
    }
    worker_set_error_handler(nullptr, nullptr);
    EXPECT_EQ(h.calls, 1);
    EXPECT_EQ(h.type, WORKER_EV_ERRORED);
    EXPECT_EQ(h.code, 5);
    EXPECT_EQ(h.message, "disk full");
    EXPECT_EQ(h.name, "unhandled-probe");
}

TEST(ErrorHandler, DefaultPrintsNameAndMessageToStderr) {
    worker_set_error_handler(nullptr, nullptr);  // make sure it is the default
    worker_options o;
    worker_options_init(&o);
    o.name = "stderr-probe";
    testing::internal::CaptureStderr();
    {
        Job j(fail_disk_full, &o, /*record=*/false);
        EXPECT_EQ(j.start(), WORKER_OK);
        EXPECT_TRUE(j.wait_done());
    }
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("stderr-probe"), std::string::npos) << err;
    EXPECT_NE(err.find("disk full"), std::string::npos) << err;
    // The exact line the header documents.
    EXPECT_NE(err.find("qtworker: worker 'stderr-probe' failed (5): disk full"),
              std::string::npos) << err;
}

// ------------------------------------------------------------------- warned

TEST(Warned, OrderedWithYieldsLikeSuperqt) {
    reset_payloads();
    Job j([](worker_ctx *ctx) {
        yield_int(ctx, 1);
        EXPECT_EQ(worker_warn(ctx, "hey %s!", "you"), WORKER_OK);
        yield_int(ctx, 3);
        worker_return(ctx, payload(4), payload_free);
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_YIELDED, WORKER_EV_WARNED,
                                     WORKER_EV_YIELDED, WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{1, 3}));
    EXPECT_EQ(j.rec->values(WORKER_EV_RETURNED), std::vector<int>{4});
    EXPECT_EQ(j.rec->first(WORKER_EV_WARNED).message, "hey you!");
    j.close();
    expect_payloads_freed();
}

// ----------------------------------------------------------------- progress

TEST(Progress, ExplicitDoneTotalAndText) {
    Job j([](worker_ctx *ctx) {
        EXPECT_EQ(worker_progress(ctx, 2, 5, "two of five"), WORKER_OK);
        EXPECT_EQ(worker_progress(ctx, 7, 0, nullptr), WORKER_OK);  // indeterminate
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_PROGRESS, WORKER_EV_PROGRESS,
                                     WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    const auto &ev = j.rec->events();
    EXPECT_EQ(ev[1].done, 2);
    EXPECT_EQ(ev[1].total, 5);
    EXPECT_EQ(ev[1].message, "two of five");
    EXPECT_EQ(ev[2].done, 7);
    EXPECT_EQ(ev[2].total, 0);
    EXPECT_EQ(ev[2].message, "");
}

// napari's progress={'total': N, 'desc': ...}: one step after every yield.
TEST(Progress, AutoProgressPerYieldIndeterminatePastTotal) {
    reset_payloads();
    worker_options o;
    worker_options_init(&o);
    o.progress_total = 3;
    o.progress_desc = "desc";
    Job j([](worker_ctx *ctx) {
        for (int i = 0; i < 5; i++) yield_int(ctx, i);
    }, &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    Types expect{WORKER_EV_STARTED};
    for (int i = 0; i < 5; i++) {
        expect.push_back(WORKER_EV_YIELDED);
        expect.push_back(WORKER_EV_PROGRESS);
    }
    expect.push_back(WORKER_EV_RETURNED);
    expect.push_back(WORKER_EV_FINISHED);
    ASSERT_EQ(j.rec->types(), expect);
    long long done = 0;
    for (auto &e : j.rec->events()) {
        if (e.type != WORKER_EV_PROGRESS) continue;
        done++;
        EXPECT_EQ(e.done, done);
        EXPECT_EQ(e.total, done > 3 ? 0 : 3) << "step " << done;
        EXPECT_EQ(e.message, "desc");
    }
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{0, 1, 2, 3, 4}));
    j.close();
    expect_payloads_freed();
}

// ------------------------------------------------------------------- custom

namespace {

struct Seen {
    std::vector<std::string> names;
    std::vector<int> values;  // -1 for a NULL value
};

void collect(worker_event *ev, void *ud) {
    auto *s = static_cast<Seen *>(ud);
    s->names.push_back(ev->name ? ev->name : "");
    s->values.push_back(ev->value ? *static_cast<int *>(ev->value) : -1);
}

}  // namespace

TEST(Custom, NamesValuesFilterAndOrderWithYields) {
    reset_payloads();
    Job j([](worker_ctx *ctx) {
        EXPECT_EQ(worker_emit(ctx, "a", payload(1), payload_free), WORKER_OK);
        yield_int(ctx, 2);
        EXPECT_EQ(worker_emit(ctx, "b", payload(3), payload_free), WORKER_OK);
        EXPECT_EQ(worker_emit(ctx, "a", payload(4), payload_free), WORKER_OK);
        EXPECT_EQ(worker_emit(ctx, "a", nullptr, nullptr), WORKER_OK);
    });
    Seen only_a, all;
    ASSERT_GT(worker_connect_custom(j.w, "a", collect, &only_a, nullptr), 0);
    ASSERT_GT(worker_connect(j.w, WORKER_EV_CUSTOM, collect, &all, nullptr), 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_CUSTOM, WORKER_EV_YIELDED,
                                     WORKER_EV_CUSTOM, WORKER_EV_CUSTOM, WORKER_EV_CUSTOM,
                                     WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    EXPECT_EQ(only_a.names, (std::vector<std::string>{"a", "a", "a"}));
    EXPECT_EQ(only_a.values, (std::vector<int>{1, 4, -1}));
    EXPECT_EQ(all.names, (std::vector<std::string>{"a", "b", "a", "a"}));
    EXPECT_EQ(all.values, (std::vector<int>{1, 3, 4, -1}));
    j.close();
    expect_payloads_freed();
}

// -------------------------------------------------------- worker_event_take

namespace {

struct Taker {
    std::vector<void *> taken;
    int later_calls = 0, later_nulls = 0;
};

void take_value(worker_event *ev, void *ud) {
    static_cast<Taker *>(ud)->taken.push_back(worker_event_take(ev));
}

void after_take(worker_event *ev, void *ud) {
    auto *t = static_cast<Taker *>(ud);
    t->later_calls++;
    t->later_nulls += ev->value == nullptr;
}

}  // namespace

TEST(Take, TakerOwnsValueAndLaterCallbacksSeeNull) {
    reset_payloads();
    Job j([](worker_ctx *ctx) {
        for (int i = 0; i < 4; i++) yield_int(ctx, i);
    });
    Taker t;  // connected after the Recorder, which still sees the values
    ASSERT_GT(worker_connect(j.w, WORKER_EV_YIELDED, take_value, &t, nullptr), 0);
    ASSERT_GT(worker_connect(j.w, WORKER_EV_YIELDED, after_take, &t, nullptr), 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(t.later_calls, 4);
    EXPECT_EQ(t.later_nulls, 4);
    j.close();
    ASSERT_EQ(t.taken.size(), 4u);
    EXPECT_EQ(payloads_alive(), 4);  // the library did not destroy taken values
    for (size_t i = 0; i < t.taken.size(); i++) {
        ASSERT_NE(t.taken[i], nullptr);
        EXPECT_EQ(*static_cast<int *>(t.taken[i]), (int)i);
        payload_free(t.taken[i]);
    }
    expect_payloads_freed();
}

// -------------------------------------------------------- connect/disconnect

namespace {

// A YIELDED subscriber that disconnects itself after `limit` calls and
// counts how often its user_data was destroyed.
struct Sub {
    worker *w = nullptr;
    long id = 0;
    int limit = 1 << 30;
    int calls = 0, destroyed = 0;
    std::thread::id thread;
};

void sub_cb(worker_event *ev, void *ud) {
    auto *s = static_cast<Sub *>(ud);
    s->calls++;
    s->thread = std::this_thread::get_id();
    if (s->calls == s->limit) {
        EXPECT_EQ(worker_disconnect(ev->source, s->id), WORKER_OK);
    }
}

void sub_destroy(void *ud) { static_cast<Sub *>(ud)->destroyed++; }

long connect_sub(worker *w, Sub &s) {
    s.w = w;
    s.id = worker_connect(w, WORKER_EV_YIELDED, sub_cb, &s, sub_destroy);
    return s.id;
}

void yield_ten(worker_ctx *ctx) {
    for (int i = 0; i < 10; i++) yield_int(ctx, i);
}

}  // namespace

TEST(Connect, DisconnectInsideCallbackStopsFurtherCalls) {
    reset_payloads();
    Job j(yield_ten);
    Sub s;
    s.limit = 3;
    ASSERT_GT(connect_sub(j.w, s), 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(s.calls, 3);
    EXPECT_EQ(s.destroyed, 1);
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), 10);  // other connections unaffected
    j.close();
    EXPECT_EQ(s.destroyed, 1);  // not again when the worker is freed
    expect_payloads_freed();
}

// The connection list a delivery iterates is the one the home thread holds:
// a connect or disconnect from inside a callback must change later
// deliveries only (a copy), never the list being walked (in place, that
// insert moved the vector under the loop: ASan, or calls out of order).
namespace {
struct Chain {
    worker *w = nullptr;
    std::vector<std::string> calls;
    long b_id = 0;
    std::vector<long> added;
};
void chain_record(worker_event *ev, void *ud, const char *who) {
    static_cast<Chain *>(ud)->calls.push_back(who + std::to_string(int(intptr_t(ev->value))));
}
void chain_c(worker_event *ev, void *ud) { chain_record(ev, ud, "C"); }
void chain_d(worker_event *ev, void *ud) { chain_record(ev, ud, "D"); }
void chain_b(worker_event *ev, void *ud) { chain_record(ev, ud, "B"); }
void chain_a(worker_event *ev, void *ud) {
    auto *c = static_cast<Chain *>(ud);
    chain_record(ev, ud, "A");
    if (intptr_t(ev->value) != 1) return;
    EXPECT_EQ(worker_disconnect(ev->source, c->b_id), WORKER_OK);
    // Many, so the vector must grow: in place it would move under the loop.
    for (int i = 0; i < 8; i++)
        c->added.push_back(worker_connect(ev->source, WORKER_EV_YIELDED, i ? chain_d : chain_c, c, nullptr));
}
}  // namespace

TEST(Connect, ConnectAndDisconnectInsideACallbackChangeLaterDeliveriesOnly) {
    reset_payloads();
    Job j([](worker_ctx *ctx) {
        for (intptr_t i = 1; i <= 3; i++) worker_yield(ctx, (void *)i, nullptr, nullptr, nullptr);
    }, nullptr, /*record=*/false);  // the values are plain integers
    Chain c;
    ASSERT_GT(worker_connect(j.w, WORKER_EV_YIELDED, chain_a, &c, nullptr), 0);
    ASSERT_GT(worker_connect(j.w, WORKER_EV_STARTED, chain_c, &c, nullptr), 0);  // another type between
    c.b_id = worker_connect(j.w, WORKER_EV_YIELDED, chain_b, &c, nullptr);
    ASSERT_GT(c.b_id, 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.wait_done());
    for (long id : c.added) EXPECT_GT(id, 0);
    // Value 1: A only (B disconnected before its turn, C..D not yet in the
    // list being walked); values 2 and 3: A, then C and the Ds in order.
    std::vector<std::string> want = {"C0", "A1"};
    for (int v = 2; v <= 3; v++) {
        want.push_back("A" + std::to_string(v));
        want.push_back("C" + std::to_string(v));
        for (int i = 1; i < 8; i++) want.push_back("D" + std::to_string(v));
    }
    EXPECT_EQ(c.calls, want);
    j.close();
    expect_payloads_freed();
}

TEST(Connect, UserDataDestroyedOnceOnDisconnectAndOnceOnFree) {
    reset_payloads();
    Job j(yield_ten);
    Sub a, b;
    ASSERT_GT(connect_sub(j.w, a), 0);
    ASSERT_GT(connect_sub(j.w, b), 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(a.calls, 10);
    EXPECT_EQ(a.destroyed + b.destroyed, 0);  // still connected: kept alive
    // Disconnect outside any callback: the connection is gone, its user_data
    // released now (not whenever the worker happens to be freed).
    EXPECT_EQ(worker_disconnect(j.w, a.id), WORKER_OK);
    EXPECT_EQ(a.destroyed, 1);
    EXPECT_EQ(worker_disconnect(j.w, a.id), WORKER_EINVAL);  // unknown id now
    EXPECT_EQ(b.destroyed, 0);
    j.close();  // frees the worker: b's user_data goes with it
    EXPECT_EQ(a.destroyed, 1);
    EXPECT_EQ(b.destroyed, 1);
    expect_payloads_freed();
}

TEST(Connect, DisconnectBeforeStartIsNeverCalled) {
    reset_payloads();
    Job j(yield_ten);
    Sub s;
    ASSERT_GT(connect_sub(j.w, s), 0);
    EXPECT_EQ(worker_disconnect(j.w, s.id), WORKER_OK);
    EXPECT_EQ(s.destroyed, 1);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(s.calls, 0);
    j.close();
    EXPECT_EQ(s.destroyed, 1);
    expect_payloads_freed();
}

// Connecting from a plain std::thread while the worker runs; the callback
// still runs on the GUI thread and sees every later event.
TEST(Connect, FromAnotherThreadWhileRunning) {
    reset_payloads();
    std::atomic<bool> running{false}, go{false};
    Job j([&](worker_ctx *ctx) {
        running = true;
        while (!go && !worker_abort_requested(ctx)) nap();
        yield_ten(ctx);
    });
    Sub s;
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return running.load(); }));
    long id = 0;
    std::thread([&] { id = connect_sub(j.w, s); }).join();
    EXPECT_GT(id, 0);
    go = true;
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(s.calls, 10);
    EXPECT_EQ(s.thread, std::this_thread::get_id());
    j.close();
    EXPECT_EQ(s.destroyed, 1);
    expect_payloads_freed();
}
