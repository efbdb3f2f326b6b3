// The C++ convenience header: RAII references, lambdas, exceptions.
// Qt first, as in a plugin's own files: Qt's `emit` macro must not break the
// header (it did: Context::emit's declaration failed to compile).
#include <QObject>

#include "qtworker.hpp"
#include "harness.h"

#include <unistd.h>

#include <stdexcept>
#include <thread>

using namespace th;

namespace {

struct Tracked {
    static inline std::atomic<int> alive{0};
    int v;
    explicit Tracked(int x) : v(x) { alive++; }
    ~Tracked() { alive--; }
};

bool pump_until_finished(qtworker::Worker &w, bool &finished) {
    (void)w;
    return pump_until([&] { return finished; });
}

}  // namespace

TEST(CppHeader, LambdaGeneratorAndCallbacks) {
    std::vector<int> got;
    std::string returned;
    bool finished = false;
    {
        auto w = qtworker::Worker::create([](qtworker::Context ctx) {
            for (int i = 0; i < 5; i++)
                if (ctx.yield(new Tracked(i)) != WORKER_OK) return;
            ctx.set_result(new std::string("done"));
        });
        ASSERT_TRUE(w);
        w.on(WORKER_EV_YIELDED, [&](worker_event &ev) { got.push_back(static_cast<Tracked *>(ev.value)->v); });
        w.on(WORKER_EV_RETURNED, [&](worker_event &ev) { returned = *static_cast<std::string *>(ev.value); });
        w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
        ASSERT_EQ(w.start(), WORKER_OK);
        ASSERT_TRUE(pump_until_finished(w, finished));
    }
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(returned, "done");
    EXPECT_EQ(Tracked::alive.load(), 0) << "every yielded value deleted once";
}

TEST(CppHeader, ExceptionBecomesErrored) {
    std::string message;
    int code = 0;
    bool finished = false;
    auto w = qtworker::Worker::create([](qtworker::Context) { throw std::runtime_error("boom"); });
    w.on(WORKER_EV_ERRORED, [&](worker_event &ev) { message = ev.message; code = ev.code; });
    w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
    w.start();
    ASSERT_TRUE(pump_until_finished(w, finished));
    EXPECT_EQ(message, "boom");
    EXPECT_EQ(code, -1);
}

TEST(CppHeader, CopiesShareOneWorkerAndLastDestructionQuits) {
    bool finished = false, aborted = false;
    worker *raw;
    {
        auto w = qtworker::Worker::create([](qtworker::Context ctx) {
            while (!ctx.abort_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        raw = w.get();
        w.on(WORKER_EV_ABORTED, [&](worker_event &) { aborted = true; });
        w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
        w.start();
        qtworker::Worker copy = w;
        EXPECT_EQ(copy.get(), raw);
        EXPECT_TRUE(copy.running());
    }  // both references gone: the worker is quit, and still delivers
    ASSERT_TRUE(pump_until([&] { return finished; }));
    EXPECT_TRUE(aborted);
}

TEST(CppHeader, SendReceivesTypedValues) {
    std::vector<int> echoed;
    bool finished = false;
    auto w = qtworker::Worker::create([](qtworker::Context ctx) {
        int received = 0;
        while (received < 3) {
            void *sent = nullptr;
            worker_destroy_fn destroy = nullptr;
            int rc = ctx.yield_receive(nullptr, nullptr, &sent, &destroy);
            if (rc == WORKER_ABORTED) return;
            if (rc == WORKER_RECEIVED) {
                ctx.emit_custom("echo", new int(*static_cast<int *>(sent) * 10));
                destroy(sent);
                received++;
            }
        }
    });
    w.on_custom("echo", [&](worker_event &ev) { echoed.push_back(*static_cast<int *>(ev.value)); });
    w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
    for (int i = 1; i <= 3; i++) w.send(new int(i));
    w.start();
    ASSERT_TRUE(pump_until([&] { return finished; }));
    EXPECT_EQ(echoed, (std::vector<int>{10, 20, 30}));
}

// ---- scopes: RAII and bound to a QObject (issue 18)

// Included here, after the code above: Qt's `emit` macro would empty
// Context::emit's name.
#include <QObject>

namespace {
void yield_tracked(qtworker::Context ctx) {
    for (int i = 0;; i++)
        if (ctx.yield(new Tracked(i)) == WORKER_ABORTED) return;
}
}  // namespace

TEST(CppHeader, ScopeClosesWhenDestroyed) {
    int calls = 0;
    qtworker::Worker w;
    {
        qtworker::Scope scope("widget");
        ASSERT_TRUE(scope);
        w = scope.create(yield_tracked);
        ASSERT_TRUE(w);
        w.on(WORKER_EV_YIELDED, [&](worker_event &) { calls++; });
        ASSERT_EQ(w.start(), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return calls > 5; }));
    }  // closed here: quit, disconnected, awaited
    int seen = calls;
    EXPECT_FALSE(w.running());
    EXPECT_EQ(w.on(WORKER_EV_YIELDED, [&](worker_event &) { calls++; }), WORKER_ESTATE);
    pump_for(50);
    EXPECT_EQ(calls, seen);
    w = qtworker::Worker();
    EXPECT_TRUE(pump_until([] { return Tracked::alive.load() == 0; }));
}

TEST(CppHeader, ScopeCloseTwiceAndCreateAfterClose) {
    qtworker::Scope scope("once");
    EXPECT_EQ(scope.close(0), WORKER_OK);
    EXPECT_FALSE(scope);
    EXPECT_EQ(scope.close(0), WORKER_ESTATE);
    EXPECT_FALSE(scope.create([](qtworker::Context) {}));
    EXPECT_EQ(worker_last_error(), WORKER_ESTATE);
    qtworker::Scope moved("moved");
    qtworker::Scope other(std::move(moved));
    EXPECT_FALSE(moved);
    EXPECT_TRUE(other);
}

// A widget-like object owns its workers: deleting it closes the scope, so
// its state can be freed at once (a callback after that would be a
// use-after-free, which ASan reports).
TEST(CppHeader, ScopeBoundToQObject) {
    auto *owner = new QObject;
    qtworker::Scope *scope = qtworker::Scope::bind(owner, "dock");
    ASSERT_NE(scope, nullptr);
    auto *state = new int(0);
    qtworker::Worker a = scope->create(yield_tracked);
    qtworker::Worker b = scope->create(yield_tracked);
    for (auto *w : {&a, &b}) {
        w->on(WORKER_EV_YIELDED, [state](worker_event &) { ++*state; });
        ASSERT_EQ(w->start(), WORKER_OK);
    }
    ASSERT_TRUE(pump_until([&] { return *state > 10; }));
    delete owner;  // closes the scope
    delete state;
    EXPECT_FALSE(a.running());
    EXPECT_FALSE(b.running());
    pump_for(50);
    a = qtworker::Worker();
    b = qtworker::Worker();
    EXPECT_TRUE(pump_until([] { return Tracked::alive.load() == 0; }));
}

TEST(CppHeader, CallHomeReturnsTheLambdasValue) {
    std::atomic<bool> finished{false};
    qtworker::HomeResult<std::string> got;
    qtworker::HomeResult<void> none;
    qtworker::HomeResult<int> threw;
    std::thread::id ran_on;
    std::string seen_by_gui = "limits 0..255";  // GUI state, read on the GUI thread
    {
        auto w = qtworker::Worker::create([&](qtworker::Context ctx) {
            got = ctx.call_home([&] {
                ran_on = std::this_thread::get_id();
                return seen_by_gui;
            });
            none = ctx.call_home([] {});
            threw = ctx.call_home([]() -> int { throw std::runtime_error("gui says no"); });
        });
        w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
        ASSERT_EQ(w.start(), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return finished.load(); }));
    }
    EXPECT_EQ(ran_on, std::this_thread::get_id()) << "the lambda ran off the home thread";
    ASSERT_TRUE(got);
    EXPECT_EQ(got.status, WORKER_OK);
    EXPECT_EQ(*got.value, "limits 0..255");
    EXPECT_TRUE(none);
    EXPECT_FALSE(threw) << "an exception on the home thread is an error";
    EXPECT_EQ(threw.status, WORKER_ESTATE);
    EXPECT_FALSE(threw.value.has_value());
    ASSERT_TRUE(threw.error);
    try {
        std::rethrow_exception(threw.error);
    } catch (const std::runtime_error &e) {
        EXPECT_STREQ(e.what(), "gui says no");
    }
}

TEST(CppHeader, CallHomeTimesOutWithoutRunning) {
    std::atomic<bool> back{false}, finished{false};
    std::atomic<int> runs{0};
    qtworker::HomeResult<int> r;
    auto w = qtworker::Worker::create([&](qtworker::Context ctx) {
        r = ctx.call_home([&] { return ++runs; }, 20);
        back = true;
    });
    w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
    ASSERT_EQ(w.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(back));  // the GUI never looked
    ASSERT_TRUE(pump_until([&] { return finished.load(); }));
    pump_for(20);
    EXPECT_EQ(r.status, WORKER_ETIMEDOUT);
    EXPECT_FALSE(r.value.has_value());
    EXPECT_EQ(runs.load(), 0);
}

// yield_sized() and backlog(): a value being delivered still counts.
TEST(CppHeader, SizedYieldsShowInTheBacklog) {
    worker_options o;
    worker_options_init(&o);
    o.capacity_bytes = 10000;
    bool finished = false;
    std::vector<size_t> bytes_seen;
    auto w = qtworker::Worker::create([](qtworker::Context ctx) {
        for (int i = 0; i < 3; i++) ctx.yield_sized(new Tracked(i), 1000, [](void *p) { delete static_cast<Tracked *>(p); });
    }, &o);
    ASSERT_TRUE(w);
    w.on(WORKER_EV_YIELDED, [&](worker_event &) {
        size_t entries = 0, bytes = 0;
        EXPECT_EQ(w.backlog(&entries, &bytes), WORKER_OK);
        EXPECT_GE(entries, 1u);
        bytes_seen.push_back(bytes);
    });
    w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
    ASSERT_EQ(w.start(), WORKER_OK);
    ASSERT_TRUE(pump_until_finished(w, finished));
    ASSERT_EQ(bytes_seen.size(), 3u);
    for (size_t b : bytes_seen) EXPECT_GE(b, 1000u);
    size_t e = 1, b = 1;
    EXPECT_EQ(w.backlog(&e, &b), WORKER_OK);
    EXPECT_EQ(b, 0u);
    EXPECT_EQ(Tracked::alive.load(), 0);
}

// ------------------------------------------- found by an outside read (s9a)

namespace {
struct Bomb {  // a value whose destructor throws
    static inline std::atomic<int> destroyed{0};
    ~Bomb() noexcept(false) {
        destroyed++;
        throw std::runtime_error("~Bomb");
    }
};

// Runs fn as a worker and pumps until FINISHED; false if it never came.
template <typename F>
bool run_to_finished(F &&fn) {
    std::atomic<bool> finished{false};
    auto w = qtworker::Worker::create(std::forward<F>(fn));
    w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
    if (w.start() != WORKER_OK) return false;
    return pump_until([&] { return finished.load(); }, 5000);
}
}  // namespace

// No exception leaves the library, whoever's destructor throws it: a value
// sent and never received (destroyed on the pool thread: the worker never
// finished), returned and emitted (destroyed on the GUI thread: it came out
// of processEvents, FINISHED never arrived).
TEST(CppHeader, ADestructorThatThrowsIsReportedAndTheWorkerStillFinishes) {
    Bomb::destroyed = 0;
    {
        auto w = qtworker::Worker::create([](qtworker::Context) {});
        std::atomic<bool> finished{false};
        w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
        ASSERT_EQ(w.send(new Bomb), WORKER_OK);
        ASSERT_EQ(w.start(), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return finished.load(); }, 5000));
        EXPECT_EQ(w.await(5000), WORKER_OK);
    }
    EXPECT_TRUE(run_to_finished([](qtworker::Context c) { c.set_result(new Bomb); }));
    EXPECT_TRUE(run_to_finished([](qtworker::Context c) { c.emit_custom("b", new Bomb); }));
    EXPECT_TRUE(run_to_finished([](qtworker::Context c) { c.yield(new Bomb); }));
    EXPECT_EQ(Bomb::destroyed.load(), 4);
    EXPECT_TRUE(pump_until([] { return worker_live_count() == 0; }));
}

// A worker function and a callback may own move-only state (it did not
// compile: both were stored in a std::function).
TEST(CppHeader, MoveOnlyCapturesAreAccepted) {
    int seen = 0;
    bool finished = false;
    {
        auto w = qtworker::Worker::create([p = std::make_unique<int>(7)](qtworker::Context c) {
            c.yield(new int(*p));
        });
        w.on(WORKER_EV_YIELDED, [q = std::make_unique<int>(3), &seen](worker_event &ev) {
            seen = *static_cast<int *>(ev.value) * *q;
        });
        w.on(WORKER_EV_FINISHED, [&](worker_event &) { finished = true; });
        ASSERT_EQ(w.start(), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return finished; }));
    }
    EXPECT_EQ(seen, 21);
}

// A Scope member stops the widget's workers before the members declared
// before it go: its destructor waits for a function that looks at quit only
// every 1.2 s (the old default waited 1000 ms, then abandoned it to run on
// against freed members).
TEST(CppHeader, AScopeMemberWaitsForItsWorkersFunctionsToReturn) {
    struct Widget {
        std::unique_ptr<std::vector<int>> lut = std::make_unique<std::vector<int>>(256, 1);
        std::atomic<bool> function_returned{false};
        qtworker::Scope scope{"widget"};
    };
    auto *widget = new Widget;
    std::atomic<bool> started{false};
    qtworker::Worker w = widget->scope.create([widget, &started](qtworker::Context c) {
        started = true;
        while (!c.abort_requested()) {
            usleep(1200 * 1000);
            volatile int sum = 0;
            for (int v : *widget->lut) sum = sum + v;  // the widget's state
        }
        widget->function_returned = true;  // a use-after-free if the widget is gone
    });
    ASSERT_EQ(w.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump([&] { return started.load(); }));
    delete widget;  // waits: quit, then the function's return
    EXPECT_FALSE(w.running()) << "the function was still running after the widget was gone";
}

TEST(CppHeader, BindingANullOwnerIsRefused) {
    EXPECT_EQ(qtworker::Scope::bind(static_cast<QObject *>(nullptr), "none"), nullptr);
}
