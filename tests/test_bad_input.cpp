// Bad input: every call returns the status capi/qtworker.h documents, never
// crashes, and destroys whatever it was handed (payload counts prove it).
#include "harness.h"

#include <chrono>
#include <climits>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>

using namespace th;

namespace {

// ---------------------------------------------------------------- helpers

void nothing(worker_ctx *, void *) {}

void returns_7(worker_ctx *ctx, void *) { worker_return(ctx, payload(7), payload_free); }

// A yielding generator that stops when quit (bounded so a bug cannot spin forever).
void yield_until_quit(worker_ctx *ctx, void *counter) {
    auto *n = static_cast<std::atomic<int> *>(counter);
    for (int i = 0; i < 1000000; i++) {
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
        if (n) n->fetch_add(1);
    }
}

// Holds a worker's function open so its ctx can be misused while it runs.
struct Gate {
    std::mutex m;
    std::condition_variable cv;
    worker_ctx *ctx = nullptr;
    bool open = false;

    static void fn(worker_ctx *ctx, void *self) {
        auto *g = static_cast<Gate *>(self);
        std::unique_lock<std::mutex> lk(g->m);
        g->ctx = ctx;
        g->cv.notify_all();
        g->cv.wait(lk, [g] { return g->open; });
    }
    worker_ctx *wait_ctx() {
        std::unique_lock<std::mutex> lk(m);
        cv.wait_for(lk, std::chrono::seconds(10), [this] { return ctx != nullptr; });
        return ctx;
    }
    void release() {
        std::lock_guard<std::mutex> lk(m);
        open = true;
        cv.notify_all();
    }
};

// Every worker-side call once, each handing over a counted payload where it
// takes one; returns the statuses in a fixed order (yield, yield receiving,
// return, fail, warn, progress, emit, abort_requested, sized yield, receive
// forever).
std::vector<int> call_worker_side(worker_ctx *ctx) {
    void *sent = nullptr;
    worker_destroy_fn sent_destroy = nullptr;
    void *got = nullptr;
    worker_destroy_fn got_destroy = nullptr;
    return {
        worker_yield(ctx, payload(1), payload_free, nullptr, nullptr),
        worker_yield(ctx, payload(2), payload_free, &sent, &sent_destroy),
        worker_return(ctx, payload(3), payload_free),
        worker_fail(ctx, 42, "fail %d", 42),
        worker_warn(ctx, "warn %s", "x"),
        worker_progress(ctx, 1, 2, "step"),
        worker_emit(ctx, "custom", payload(4), payload_free),
        worker_abort_requested(ctx),
        worker_yield_sized(ctx, payload(5), 1 << 20, payload_free, nullptr, nullptr),
        worker_receive(ctx, &got, &got_destroy, -1),  // must not wait
    };
}

std::vector<int> repeated(int code) { return std::vector<int>(10, code); }

std::vector<int> call_worker_side_on_thread(worker_ctx *ctx) {
    std::vector<int> codes;
    std::thread t([&] { codes = call_worker_side(ctx); });
    t.join();
    return codes;
}

// Owner-side flow-control calls with a value handed over in send.
std::vector<int> call_owner_side(worker *w) {
    return {worker_start(w), worker_send(w, payload(9), payload_free), worker_pause(w),
            worker_resume(w), worker_toggle_pause(w), worker_quit(w), worker_close_input(w)};
}

void expect_connect_rejected(worker *w, int expected) {
    auto cb = +[](worker_event *, void *) { ADD_FAILURE() << "rejected callback ran"; };
    long before = payloads_alive();
    EXPECT_EQ(worker_connect(w, WORKER_EV_RETURNED, cb, payload(0), payload_free), expected);
    EXPECT_EQ(worker_connect_custom(w, "name", cb, payload(0), payload_free), expected);
    EXPECT_EQ(payloads_alive(), before) << "user_data of a failed connect is destroyed at once";
}

void noop_cb(worker_event *, void *) {}

}  // namespace

// ----------------------------------------------------------- NULL handles

TEST(BadInput, NullHandleOwnerCalls) {
    reset_payloads();
    EXPECT_EQ(worker_start(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_send(nullptr, payload(1), payload_free), WORKER_EINVAL);
    EXPECT_EQ(payloads_alive(), 0) << "a refused send destroys its value";
    EXPECT_EQ(worker_send(nullptr, nullptr, nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_pause(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_resume(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_toggle_pause(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_quit(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_is_running(nullptr), 0);
    EXPECT_EQ(worker_is_paused(nullptr), 0);
    EXPECT_EQ(worker_await(nullptr, 0), WORKER_EINVAL);
    EXPECT_EQ(worker_await(nullptr, -1), WORKER_EINVAL);  // must not wait forever
    expect_connect_rejected(nullptr, WORKER_EINVAL);
    EXPECT_EQ(worker_connect_custom(nullptr, nullptr, noop_cb, payload(0), payload_free),
              WORKER_EINVAL);
    EXPECT_EQ(worker_disconnect(nullptr, 1), WORKER_EINVAL);
    EXPECT_EQ(worker_close_input(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_pipe(nullptr, nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_name(nullptr), nullptr);
    EXPECT_EQ(worker_dropped(nullptr), 0);
    size_t entries = 1, bytes = 1;
    EXPECT_EQ(worker_backlog(nullptr, &entries, &bytes), WORKER_EINVAL);
    EXPECT_EQ(entries + bytes, 0u) << "outputs zeroed";
    EXPECT_EQ(worker_backlog(nullptr, nullptr, nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_ref(nullptr), nullptr);
    worker_unref(nullptr);  // ignored
    EXPECT_EQ(worker_list(nullptr, 4), WORKER_EINVAL);
    EXPECT_EQ(worker_event_take(nullptr), nullptr);
    worker_options_init(nullptr);  // ignored
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(BadInput, ConnectRejectsNullCallbackNullNameAndTypeOutOfRange) {
    reset_payloads();
    worker *w = worker_create(nothing, nullptr, nullptr, nullptr);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(worker_connect(w, WORKER_EV_YIELDED, nullptr, payload(0), payload_free),
              WORKER_EINVAL);
    EXPECT_EQ(worker_connect_custom(w, nullptr, noop_cb, payload(0), payload_free),
              WORKER_EINVAL);
    EXPECT_EQ(worker_connect_custom(w, "x", nullptr, payload(0), payload_free), WORKER_EINVAL);
    for (int t : {-1, (int)WORKER_EV_OUTPUT + 1, INT_MAX, INT_MIN}) {
        EXPECT_EQ(worker_connect(w, static_cast<worker_event_type>(t), noop_cb, payload(0),
                                 payload_free),
                  WORKER_EINVAL)
            << "type " << t;
    }
    EXPECT_EQ(payloads_alive(), 0) << "user_data destroyed on every refused connect";
    // The boundary types are valid.
    long first = worker_connect(w, WORKER_EV_STARTED, noop_cb, payload(0), payload_free);
    long last = worker_connect(w, WORKER_EV_OUTPUT, noop_cb, payload(0), payload_free);
    EXPECT_GT(first, 0);
    EXPECT_GT(last, 0);
    worker_unref(w);  // frees the never-started worker and both user_data
    EXPECT_EQ(payloads_alive(), 0);
}

// --------------------------------------------------------------- create

TEST(BadInput, CreateRejectsBadArguments) {
    reset_payloads();
    worker_options o;
    auto expect_refused = [](worker_fn fn, const worker_options *opts, const char *what) {
        EXPECT_EQ(worker_create(fn, payload(1), payload_free, opts), nullptr) << what;
        EXPECT_EQ(worker_last_error(), WORKER_EINVAL) << what;
        EXPECT_EQ(payloads_alive(), 0) << what << ": arg destroyed on failure";
    };
    expect_refused(nullptr, nullptr, "fn NULL");
    for (int p : {-1, (int)WORKER_LATEST + 1, INT_MAX}) {
        worker_options_init(&o);
        o.policy = static_cast<worker_policy>(p);
        expect_refused(nothing, &o, "policy out of range");
    }
    worker_options_init(&o);
    o.capacity = (size_t)WORKER_MAX_CAPACITY + 1;
    expect_refused(nothing, &o, "capacity > max");
    o.capacity = (size_t)-1;
    expect_refused(nothing, &o, "capacity SIZE_MAX");
    worker_options_init(&o);
    o.policy = WORKER_QUEUE;
    o.capacity_bytes = 1;
    expect_refused(nothing, &o, "QUEUE with a byte budget (QUEUE is unbounded)");
    worker_options_init(&o);

    // last_error is per thread: a thread that never failed sees OK.
    int other = -100;
    std::thread([&] { other = worker_last_error(); }).join();
    EXPECT_EQ(other, WORKER_OK);

    // Success resets it; the largest capacity is accepted.
    o.capacity = WORKER_MAX_CAPACITY;
    worker *w = worker_create(nothing, payload(2), payload_free, &o);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_OK);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0) << "arg of a never-started worker destroyed when freed";
}

// capacity 0 = WORKER_DEFAULT_CAPACITY: with the GUI not draining, a BLOCK
// producer gets exactly that many yields in, then waits.
TEST(BadInput, CapacityZeroMeansDefault) {
    reset_payloads();
    Gate gate;
    std::atomic<int> yielded{0};
    worker_options o;
    worker_options_init(&o);
    o.capacity = 0;
    Job j([&](worker_ctx *ctx) {
        Gate::fn(ctx, &gate);
        yield_until_quit(ctx, &yielded);
    }, &o);
    ASSERT_NE(j.w, nullptr);
    ASSERT_EQ(j.start(), WORKER_OK);
    // Let the start be delivered, then stop pumping before the first yield.
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_STARTED));
    gate.release();
    ASSERT_TRUE(wait_no_pump([&] { return yielded.load() >= (int)WORKER_DEFAULT_CAPACITY; }))
        << "only " << yielded.load() << " yields before blocking: capacity 0 taken literally?";
    // Generous settle time; a producer that does not block exceeds the count.
    nap(200);
    EXPECT_EQ(yielded.load(), (int)WORKER_DEFAULT_CAPACITY);
    // Quit wakes the BLOCK-waiting producer; the undelivered yields are
    // destroyed, not delivered (the payload count below checks that).
    EXPECT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->count(WORKER_EV_ABORTED), 1);
    j.close();
    EXPECT_EQ(payloads_alive(), 0);
}

// ---------------------------------------------------- state misuse

TEST(BadInput, DoubleStartIsEstate) {
    reset_payloads();
    Job j(returns_7, nullptr);
    ASSERT_EQ(j.start(), WORKER_OK);
    EXPECT_EQ(worker_start(j.w), WORKER_ESTATE);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->count(WORKER_EV_STARTED), 1);
    EXPECT_EQ(j.rec->values(WORKER_EV_RETURNED), std::vector<int>{7});
    j.close();
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(BadInput, AwaitNeverStartedIsEstate) {
    worker *w = worker_create(nothing, nullptr, nullptr, nullptr);
    EXPECT_EQ(worker_await(w, 0), WORKER_ESTATE);
    EXPECT_EQ(worker_await(w, -1), WORKER_ESTATE);  // must not wait forever
    worker_unref(w);
}

TEST(BadInput, DisconnectUnknownId) {
    reset_payloads();
    worker *w = worker_create(nothing, nullptr, nullptr, nullptr);
    long id = worker_connect(w, WORKER_EV_FINISHED, noop_cb, payload(0), payload_free);
    ASSERT_GT(id, 0);
    EXPECT_EQ(worker_disconnect(w, id + 1000), WORKER_EINVAL);
    EXPECT_EQ(worker_disconnect(w, 0), WORKER_EINVAL);
    EXPECT_EQ(worker_disconnect(w, -1), WORKER_EINVAL);
    EXPECT_EQ(payloads_alive(), 1) << "failed disconnects leave the connection alone";
    EXPECT_EQ(worker_disconnect(w, id), WORKER_OK);
    EXPECT_EQ(payloads_alive(), 0) << "user_data destroyed on disconnect";
    EXPECT_EQ(worker_disconnect(w, id), WORKER_EINVAL) << "already disconnected";
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// Connection ids are unique in the process: an id of one worker passed
// with another (a plugin mixing up its handles) is unknown there, instead
// of removing that worker's connection with the same number.
TEST(BadInput, AnotherWorkersConnectionIdIsUnknown) {
    reset_payloads();
    worker *a = worker_create(nothing, nullptr, nullptr, nullptr);
    worker *b = worker_create(nothing, nullptr, nullptr, nullptr);
    long ida = worker_connect(a, WORKER_EV_FINISHED, noop_cb, payload(0), payload_free);
    long idb = worker_connect(b, WORKER_EV_FINISHED, noop_cb, payload(1), payload_free);
    ASSERT_GT(ida, 0);
    ASSERT_GT(idb, 0);
    EXPECT_NE(ida, idb);
    EXPECT_EQ(worker_disconnect(a, idb), WORKER_EINVAL);
    EXPECT_EQ(worker_disconnect(b, ida), WORKER_EINVAL);
    EXPECT_EQ(payloads_alive(), 2) << "both connections untouched";
    EXPECT_EQ(worker_disconnect(b, idb), WORKER_OK);
    EXPECT_EQ(worker_disconnect(a, ida), WORKER_OK);
    EXPECT_EQ(payloads_alive(), 0);
    worker_unref(a);
    worker_unref(b);
}

// ---------------------------------------------------- worker-side misuse

// A running worker's ctx used from the GUI thread, a plain thread and another
// worker's function: ETHREAD, nothing reaches the stream, payloads freed.
TEST(BadInput, WorkerSideCallsOutsideTheFunction) {
    reset_payloads();
    Gate gate;
    Job a(Gate::fn, &gate);
    ASSERT_EQ(a.start(), WORKER_OK);
    worker_ctx *ctx = gate.wait_ctx();
    ASSERT_NE(ctx, nullptr);

    EXPECT_EQ(call_worker_side(ctx), repeated(WORKER_ETHREAD)) << "GUI thread";
    EXPECT_EQ(payloads_alive(), 0);
    EXPECT_EQ(call_worker_side_on_thread(ctx), repeated(WORKER_ETHREAD)) << "std::thread";
    EXPECT_EQ(payloads_alive(), 0);

    // Inside worker b's function, worker a's ctx is still the wrong one.
    std::vector<int> foreign_codes;
    Job b([&](worker_ctx *) { foreign_codes = call_worker_side(ctx); });
    ASSERT_EQ(b.start(), WORKER_OK);
    ASSERT_TRUE(b.rec->wait_finished());
    EXPECT_EQ(foreign_codes, repeated(WORKER_ETHREAD)) << "another worker's function";
    EXPECT_EQ(payloads_alive(), 0);

    gate.release();
    ASSERT_TRUE(a.rec->wait_finished());
    // The misuse injected nothing: no yield/warn/progress/custom, no error, no result.
    const Types plain_return{WORKER_EV_STARTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED};
    EXPECT_EQ(a.rec->types(), plain_return);
    EXPECT_EQ(a.rec->events()[1].raw, nullptr);
    EXPECT_EQ(b.rec->types(), plain_return);

    // After the function returned, the kept ctx is still refused.
    EXPECT_EQ(call_worker_side(ctx), repeated(WORKER_ETHREAD)) << "after return";
    EXPECT_EQ(call_worker_side_on_thread(ctx), repeated(WORKER_ETHREAD)) << "after return";
    b.close();
    a.close();
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(BadInput, WorkerSideCallsWithNullCtx) {
    reset_payloads();
    EXPECT_EQ(call_worker_side(nullptr), repeated(WORKER_EINVAL));
    EXPECT_EQ(call_worker_side_on_thread(nullptr), repeated(WORKER_EINVAL));
    EXPECT_EQ(payloads_alive(), 0);
}

// Bad arguments from inside the function: EINVAL, payload destroyed, no event.
TEST(BadInput, WorkerSideBadArguments) {
    reset_payloads();
    std::vector<int> codes;
    Job j([&codes](worker_ctx *ctx) {
        void *sent = nullptr;
        worker_destroy_fn sent_destroy = nullptr;
        codes = {
            worker_progress(ctx, -1, 10, "neg done"),
            worker_progress(ctx, 1, -1, nullptr),
            worker_progress(ctx, LLONG_MIN, LLONG_MIN, "both"),
            worker_emit(ctx, nullptr, payload(1), payload_free),
            worker_yield(ctx, payload(2), payload_free, &sent, nullptr),
            worker_yield(ctx, payload(3), payload_free, nullptr, &sent_destroy),
            worker_yield_sized(ctx, payload(4), 10, payload_free, &sent, nullptr),
            worker_yield_sized(ctx, payload(5), (size_t)PTRDIFF_MAX + 1, payload_free, nullptr,
                               nullptr),
            worker_yield_sized(ctx, payload(6), SIZE_MAX, payload_free, nullptr, nullptr),
        };
        worker_return(ctx, payload(7), payload_free);
    });
    // A refused half-pair yield must not take the sent value (the function
    // would leak it). Left unreceived, it is destroyed when the worker ends,
    // which must be before FINISHED: a host frees its state on FINISHED. The
    // slow destroy only widens the window in which a late destroy shows.
    long alive_at_finished = -1;
    j.rec->on(WORKER_EV_FINISHED, [&](worker_event *) { alive_at_finished = payloads_alive(); });
    ASSERT_EQ(worker_send(j.w, payload(100), slow_payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(codes, std::vector<int>(9, WORKER_EINVAL));
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    EXPECT_EQ(j.rec->values(WORKER_EV_RETURNED), std::vector<int>{7});
    EXPECT_EQ(alive_at_finished, 0) << "the unreceived send was not destroyed before FINISHED";
    j.close();
    EXPECT_EQ(payloads_alive(), 0) << "refused payloads and the unreceived send destroyed";
    wait_no_pump([] { return payloads_alive() <= 0; }, 2000);  // keep a late destroy in this test
}

// ------------------------------------------------ after the function ended

TEST(BadInput, OwnerCallsAfterTheFunctionReturned) {
    reset_payloads();
    Job j(returns_7, nullptr);
    worker *w = j.w;
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    // Function returned, FINISHED maybe not yet delivered.
    EXPECT_EQ(call_owner_side(w), std::vector<int>(7, WORKER_ESTATE)) << "before FINISHED";
    EXPECT_EQ(worker_is_running(w), 0);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(call_owner_side(w), std::vector<int>(7, WORKER_ESTATE)) << "after FINISHED";
    Job other(nothing, nullptr);
    EXPECT_EQ(worker_pipe(w, other.w), WORKER_ESTATE) << "from has ended";
    EXPECT_EQ(worker_pipe(other.w, w), WORKER_ESTATE) << "to has ended";
    expect_connect_rejected(w, WORKER_ESTATE);
    EXPECT_EQ(worker_await(w, 0), WORKER_OK) << "the function has returned";
    EXPECT_EQ(worker_is_running(w), 0);
    EXPECT_EQ(worker_is_paused(w), 0);
    EXPECT_EQ(j.rec->values(WORKER_EV_RETURNED), std::vector<int>{7});
    EXPECT_EQ(j.rec->count(WORKER_EV_ABORTED), 0) << "the late quit changed nothing";
    EXPECT_EQ(j.rec->count(WORKER_EV_PAUSED) + j.rec->count(WORKER_EV_RESUMED), 0);
    j.close();
    EXPECT_EQ(payloads_alive(), 0) << "refused sends destroyed";
}

// ------------------------------------------------------- stale handles

// The registry rejects a freed handle. No other worker is created between
// the free and the calls, so the address cannot belong to a new worker.
// Small integers as handles (a cast int, a flag): never an object, so never
// dereferenced. 0x1 once matched the registry's erased-slot marker.
TEST(BadInput, SmallIntegerHandlesAreRejected) {
    // Registered and unregistered workers first, so the registry holds
    // erased slots for a garbage handle to collide with.
    for (int i = 0; i < 64; i++) worker_unref(worker_create(nothing, nullptr, nullptr, nullptr));
    for (uintptr_t v : {uintptr_t(1), uintptr_t(2), uintptr_t(8), uintptr_t(16)}) {
        auto *w = reinterpret_cast<worker *>(v);
        EXPECT_EQ(worker_start(w), WORKER_EINVAL) << v;
        EXPECT_EQ(worker_quit(w), WORKER_EINVAL) << v;
        EXPECT_EQ(worker_pause(w), WORKER_EINVAL) << v;
        expect_connect_rejected(w, WORKER_EINVAL);
        EXPECT_EQ(worker_ref(w), nullptr) << v;
        worker_unref(w);  // ignored
    }
}

TEST(BadInput, StaleHandleIsRejected) {
    reset_payloads();
    worker *w = worker_create(nothing, payload(1), payload_free, nullptr);
    ASSERT_NE(w, nullptr);
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0) << "arg destroyed when the never-started worker is freed";

    EXPECT_EQ(worker_start(w), WORKER_EINVAL);
    EXPECT_EQ(worker_send(w, payload(2), payload_free), WORKER_EINVAL);
    EXPECT_EQ(worker_pause(w), WORKER_EINVAL);
    EXPECT_EQ(worker_resume(w), WORKER_EINVAL);
    EXPECT_EQ(worker_toggle_pause(w), WORKER_EINVAL);
    EXPECT_EQ(worker_quit(w), WORKER_EINVAL);
    EXPECT_EQ(worker_await(w, -1), WORKER_EINVAL);
    expect_connect_rejected(w, WORKER_EINVAL);
    EXPECT_EQ(worker_disconnect(w, 1), WORKER_EINVAL);
    EXPECT_EQ(worker_close_input(w), WORKER_EINVAL);
    EXPECT_EQ(worker_is_running(w), 0);
    EXPECT_EQ(worker_is_paused(w), 0);
    EXPECT_EQ(worker_name(w), nullptr);
    EXPECT_EQ(worker_dropped(w), 0);
    EXPECT_EQ(worker_backlog(w, nullptr, nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_ref(w), nullptr);
    worker_unref(w);  // double unref: ignored
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// Unrefs beyond the owner's references must not drop the library's own
// reference to a running worker (that would free it under its thread).
TEST(BadInput, ExtraUnrefOfRunningWorkerIsIgnored) {
    reset_payloads();
    worker *w = worker_create(yield_until_quit, nullptr, nullptr, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_for(WORKER_EV_YIELDED));
    worker_unref(w);  // the last owner ref: quits it, library keeps it alive
    worker_unref(w);  // beyond the refs held: ignored
    worker_unref(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.count(WORKER_EV_ABORTED), 1);
    // FINISHED delivered: freed now; one more stale unref is ignored too.
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

// ------------------------------------------------------------ misc

TEST(BadInput, StrerrorIsDistinctForEveryCode) {
    const int codes[] = {WORKER_OK,      WORKER_RECEIVED, WORKER_EINVAL,
                         WORKER_ESTATE,  WORKER_ETHREAD,  WORKER_ENOMEM,
                         WORKER_ETIMEDOUT, WORKER_ABORTED, WORKER_ENOAPP,
                         WORKER_EOF};
    std::set<std::string> texts;
    for (int c : codes) {
        const char *s = worker_strerror(c);
        ASSERT_NE(s, nullptr) << c;
        EXPECT_STRNE(s, "") << c;
        texts.insert(s);
    }
    EXPECT_EQ(texts.size(), sizeof codes / sizeof codes[0]) << "one distinct text per code";
    for (int unknown : {3, -8, 12345, INT_MIN, INT_MAX}) {
        const char *s = worker_strerror(unknown);
        ASSERT_NE(s, nullptr) << unknown;
        EXPECT_STRNE(s, "") << unknown;
        EXPECT_EQ(texts.count(s), 0u) << unknown << " must not read like a known code";
    }
}

TEST(BadInput, ProcessEventsNegativeTimeout) {
    EXPECT_EQ(worker_app_process_events(-1), WORKER_EINVAL);
    EXPECT_EQ(worker_app_process_events(INT_MIN), WORKER_EINVAL);
    EXPECT_EQ(worker_app_process_events(0), WORKER_OK);
}

TEST(BadInput, AwaitOnItselfFromInsideIsRefused) {
    static std::atomic<int> rc{1};
    static worker *self = nullptr;
    rc = 1;
    self = worker_create([](worker_ctx *, void *) { rc = worker_await(self, -1); }, nullptr, nullptr, nullptr);
    Recorder r(self);
    ASSERT_EQ(worker_start(self), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(rc.load(), WORKER_ETHREAD) << "it would wait for itself forever";
    worker_unref(self);
}

TEST(BadInput, ConnectFromAFinishedCallbackIsRefused) {
    static long late = 0;
    worker *w = worker_create([](worker_ctx *, void *) {}, nullptr, nullptr, nullptr);
    Recorder r(w);
    worker_connect(w, WORKER_EV_FINISHED,
                   [](worker_event *ev, void *) {
                       late = worker_connect(ev->source, WORKER_EV_STARTED,
                                             [](worker_event *, void *) {}, nullptr, nullptr);
                   },
                   nullptr, nullptr);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(late, WORKER_ESTATE);
    worker_unref(w);
}
