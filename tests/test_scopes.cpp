// Plugin scopes (issue 18): worker_scope_close quits a scope's workers,
// disconnects every callback and destroys its user_data; no callback of
// theirs begins after it returns (and, from another thread, none is still
// running); their functions are awaited up to the timeout; other workers are
// untouched. Every claim is asserted with counters and flags, never timing.
#include "harness.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace {

using th::nap;
using th::pump_for;
using th::pump_until;

// ---- counted connections: every user_data must be destroyed exactly once
struct Counters {
    std::atomic<int> calls{0}, made{0}, destroyed{0};
};
struct Ud {
    Counters *c;
    std::function<void(worker_event *)> hook;
};
void ud_free(void *p) {
    auto *u = static_cast<Ud *>(p);
    u->c->destroyed++;
    delete u;
}
void counting_cb(worker_event *ev, void *p) {
    auto *u = static_cast<Ud *>(p);
    u->c->calls++;
    if (u->hook) u->hook(ev);
}
long connect_counted(worker *w, worker_event_type t, Counters &c,
                     std::function<void(worker_event *)> hook = nullptr) {
    c.made++;
    return worker_connect(w, t, counting_cb, new Ud{&c, std::move(hook)}, ud_free);
}
void connect_all(worker *w, Counters &c) {
    for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
        EXPECT_GT(connect_counted(w, (worker_event_type)t, c), 0);
}

// ---- a worker running a lambda
using Body = std::function<void(worker_ctx *)>;
void run_body(worker_ctx *ctx, void *arg) { (*static_cast<Body *>(arg))(ctx); }
std::atomic<int> bodies_freed{0};
void body_free(void *p) {
    bodies_freed++;
    delete static_cast<Body *>(p);
}
worker *make(worker_scope *s, Body b, size_t capacity = 0) {
    worker_options o;
    worker_options_init(&o);
    o.scope = s;
    if (capacity) o.capacity = capacity;
    return worker_create(run_body, new Body(std::move(b)), body_free, &o);
}
// Yields counted payloads until quit.
void yielder(worker_ctx *ctx) {
    for (int i = 0;; i++)
        if (worker_yield(ctx, th::payload(i), th::payload_free, nullptr, nullptr) == WORKER_ABORTED)
            return;
}

// Pumps until no worker is live (every function returned), then until all
// payloads are gone.
void settle() {
    EXPECT_TRUE(pump_until([] { return worker_live_count() == 0; }, 20000));
    // A quit worker's undelivered values are destroyed by later drains
    // (1024 of them take a while under TSan on a loaded machine).
    pump_until([] { return th::payloads_alive() == 0; }, 10000);
    th::expect_payloads_freed();
}

class Scopes : public ::testing::Test {
protected:
    void SetUp() override { th::reset_payloads(); }
};

TEST_F(Scopes, BadInputAndClosedScopes) {
    EXPECT_EQ(worker_scope_close(nullptr, 0), WORKER_EINVAL);
    worker_scope *s = worker_scope_new(nullptr);  // NULL name allowed
    ASSERT_NE(s, nullptr);
    char name[] = "plugin";
    worker_scope *named = worker_scope_new(name);
    name[0] = 'X';  // copied
    EXPECT_EQ(worker_scope_close(s, 0), WORKER_OK);
    EXPECT_EQ(worker_scope_close(named, 0), WORKER_OK);
    // Closed: creating into it is refused and the arg destroyed once.
    int before = bodies_freed.load();
    EXPECT_EQ(make(s, [](worker_ctx *) {}), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_ESTATE);
    EXPECT_EQ(bodies_freed.load(), before + 1);
    // Process workers too.
    worker_options o;
    worker_options_init(&o);
    o.scope = s;
    EXPECT_EQ(worker_create_process("x.so", "f", nullptr, 0, &o, nullptr), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_ESTATE);
    // A second close of the same (freed, not reused) scope is detected.
    EXPECT_EQ(worker_scope_close(s, 0), WORKER_EINVAL);
    // An empty scope closes at once.
    worker_scope *empty = worker_scope_new("empty");
    EXPECT_EQ(worker_scope_close(empty, -1), WORKER_OK);
}

TEST_F(Scopes, CloseFromGuiThreadStopsEverything) {
    worker_scope *s = worker_scope_new("plugin");
    Counters c;
    std::vector<worker *> ws;
    for (int i = 0; i < 4; i++) {
        worker *w = make(s, yielder, i % 2 ? 1 : 0);  // some BLOCK at capacity 1
        ASSERT_NE(w, nullptr);
        connect_all(w, c);
        ASSERT_EQ(worker_start(w), WORKER_OK);
        ws.push_back(w);
    }
    ASSERT_TRUE(pump_until([&] { return c.calls.load() > 50; }));
    ASSERT_EQ(worker_scope_close(s, -1), WORKER_OK);
    int calls = c.calls.load();
    EXPECT_EQ(c.destroyed.load(), c.made.load());  // user_data gone before it returns
    for (worker *w : ws) {
        EXPECT_EQ(worker_is_running(w), 0);           // functions returned
        EXPECT_STREQ(worker_name(w), worker_name(w));  // handle still valid
        EXPECT_EQ(worker_connect(w, WORKER_EV_YIELDED, counting_cb, new Ud{&c, nullptr}, ud_free),
                  WORKER_ESTATE);  // refused; that user_data destroyed at once
        c.made++;
    }
    pump_for(100);
    EXPECT_EQ(c.calls.load(), calls);  // nothing begins after close returned
    for (worker *w : ws) worker_unref(w);
    settle();
    EXPECT_EQ(c.destroyed.load(), c.made.load());
}

TEST_F(Scopes, UnstartedWorkersNeverRun) {
    worker_scope *s = worker_scope_new("plugin");
    std::atomic<int> ran{0};
    Counters c;
    worker *w = make(s, [&](worker_ctx *) { ran++; });
    connect_all(w, c);
    worker *paused = make(s, [&](worker_ctx *) { ran++; });
    worker_pause(paused);
    int freed = bodies_freed.load();
    ASSERT_EQ(worker_scope_close(s, -1), WORKER_OK);
    EXPECT_EQ(c.destroyed.load(), c.made.load());
    EXPECT_EQ(worker_start(w), WORKER_ESTATE);
    EXPECT_EQ(worker_start(paused), WORKER_ESTATE);
    // Nothing will ever receive a value or run a pipe's source (an outside
    // attack program's send got OK): refused, the value destroyed at once.
    th::reset_payloads();
    EXPECT_EQ(worker_send(w, th::payload(1), th::payload_free), WORKER_ESTATE);
    EXPECT_EQ(th::payloads_alive(), 0);
    th::Job sink([](worker_ctx *) {});
    EXPECT_EQ(worker_pipe(w, sink.w), WORKER_ESTATE) << "its sink's input would never close";
    pump_for(50);
    EXPECT_EQ(ran.load(), 0);
    EXPECT_EQ(c.calls.load(), 0);
    worker_unref(w);
    worker_unref(paused);
    EXPECT_EQ(bodies_freed.load(), freed + 2);  // each arg once, when freed
}

TEST_F(Scopes, CloseFromInsideOwnCallback) {
    worker_scope *s = worker_scope_new("plugin");
    Counters c;
    worker *a = make(s, yielder);
    worker *b = make(s, yielder);
    connect_all(b, c);
    int rc = 1, destroyed_inside = -1, calls_after = -1;
    bool closed = false;
    connect_counted(a, WORKER_EV_YIELDED, c, [&](worker_event *) {
        if (closed) return;
        closed = true;
        rc = worker_scope_close(s, -1);
        // Every other user_data is gone; this running call's is not yet.
        destroyed_inside = c.destroyed.load();
        calls_after = c.calls.load();
    });
    ASSERT_EQ(worker_start(a), WORKER_OK);
    ASSERT_EQ(worker_start(b), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return closed; }));
    EXPECT_EQ(rc, WORKER_OK);
    EXPECT_EQ(destroyed_inside, c.made.load() - 1);
    EXPECT_EQ(c.destroyed.load(), c.made.load());  // destroyed when the call returned
    pump_for(100);
    EXPECT_EQ(c.calls.load(), calls_after);
    worker_unref(a);
    worker_unref(b);
    settle();
}

// The GUI thread is inside a callback of a scope worker when another thread
// closes the scope: that call must have returned when close returns, and no
// callback may begin afterwards.
TEST_F(Scopes, CloseFromAnotherThreadWhileDelivering) {
    for (int round = 0; round < 20; round++) {
        worker_scope *s = worker_scope_new("plugin");
        Counters c;
        std::atomic<bool> entered{false}, closing{false}, in_call{false};
        std::atomic<int> late{0};  // calls that began after close returned
        std::atomic<bool> close_returned{false};
        worker *w = make(s, yielder);
        connect_all(w, c);
        connect_counted(w, WORKER_EV_YIELDED, c, [&](worker_event *) {
            if (close_returned) late++;
            in_call = true;
            entered = true;
            // Stay in the callback until the closer has started, and a bit
            // longer: a close that does not wait returns meanwhile.
            if (th::wait_no_pump(closing, 5000)) nap(round % 4 == 0 ? 20 : 1);
            in_call = false;
        });
        bool running_at_return = true;
        int rc = 1;
        ASSERT_EQ(worker_start(w), WORKER_OK);
        std::thread closer([&] {
            th::wait_no_pump(entered, 10000);
            closing = true;
            rc = worker_scope_close(s, -1);
            running_at_return = in_call.load();
            close_returned = true;
        });
        EXPECT_TRUE(pump_until([&] { return close_returned.load(); }));
        closer.join();
        EXPECT_EQ(rc, WORKER_OK);
        EXPECT_FALSE(running_at_return) << "round " << round;
        EXPECT_EQ(c.destroyed.load(), c.made.load());
        int calls = c.calls.load();
        pump_for(20);
        EXPECT_EQ(c.calls.load(), calls);
        EXPECT_EQ(late.load(), 0);
        worker_unref(w);
    }
    settle();
}

// Closed from another thread while a member's callback (on the GUI) waits
// for sibling members that run until quit: the close waited for that
// callback before it had quit the siblings, the callback for the siblings.
// Members created in both orders, so whichever the close visits first, a
// sibling is still running when it reaches the loader.
TEST_F(Scopes, CloseWhileACallbackAwaitsASiblingDoesNotDeadlock) {
    worker_scope *s = worker_scope_new("plugin");
    auto until_quit = [](worker_ctx *ctx) {
        while (!worker_abort_requested(ctx)) nap(1);
    };
    std::vector<worker *> savers;
    for (int i = 0; i < 3; i++) savers.push_back(make(s, until_quit));
    worker *loader = make(s, [](worker_ctx *ctx) {
        worker_yield(ctx, nullptr, nullptr, nullptr, nullptr);
    });
    for (int i = 0; i < 3; i++) savers.push_back(make(s, until_quit));
    Counters c;
    std::atomic<bool> in_callback{false}, close_returned{false};
    std::atomic<int> awaited{0};
    connect_counted(loader, WORKER_EV_YIELDED, c, [&](worker_event *) {
        in_callback = true;
        for (worker *x : savers)
            if (worker_await(x, -1) == WORKER_OK) awaited++;
    });
    for (worker *x : savers) ASSERT_EQ(worker_start(x), WORKER_OK);
    ASSERT_EQ(worker_start(loader), WORKER_OK);
    int rc = 1;
    th::HangGuard guard("worker_scope_close while a callback awaits a sibling member");
    std::thread closer([&] {
        th::wait_no_pump(in_callback, 10000);
        nap(20);  // the callback is waiting for the savers by now
        rc = worker_scope_close(s, -1);
        close_returned = true;
    });
    EXPECT_TRUE(pump_until([&] { return close_returned.load(); }, 20000));
    closer.join();
    EXPECT_EQ(rc, WORKER_OK);
    EXPECT_EQ(awaited.load(), 6);
    EXPECT_EQ(c.destroyed.load(), c.made.load());
    for (worker *x : savers) worker_unref(x);
    worker_unref(loader);
    settle();
}

// A function that never checks for quit: close times out, the worker is
// abandoned (still listed), and what it produces later is destroyed
// undelivered — except that its error still reaches the error handler.
std::atomic<int> reported{0};
void count_errors(worker_event *ev, void *) {
    if (ev->type == WORKER_EV_ERRORED) reported++;
}

TEST_F(Scopes, StuckWorkerTimesOutAndIsAbandoned) {
    worker_scope *s = worker_scope_new("plugin");
    Counters c;
    std::atomic<bool> release{false}, began{false};
    worker *w = make(s, [&](worker_ctx *ctx) {
        began = true;
        th::wait_no_pump(release, 20000);  // never looks at quit
        worker_emit(ctx, "late", th::payload(1), th::payload_free);
        worker_warn(ctx, "late warning");
        worker_yield(ctx, th::payload(2), th::payload_free, nullptr, nullptr);
        worker_return(ctx, th::payload(3), th::payload_free);
        worker_fail(ctx, 7, "failed after its plugin was closed");
    });
    connect_all(w, c);
    worker_connect_custom(w, "late", counting_cb, new Ud{&c, nullptr}, ud_free);
    c.made++;
    worker *outside = make(nullptr, yielder);
    Counters oc;
    connect_all(outside, oc);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_EQ(worker_start(outside), WORKER_OK);
    ASSERT_TRUE(th::wait_no_pump(began));
    EXPECT_EQ(worker_scope_close(s, 50), WORKER_ETIMEDOUT);
    EXPECT_EQ(c.destroyed.load(), c.made.load());
    int calls = c.calls.load();
    EXPECT_EQ(worker_is_running(w), 1);
    std::vector<worker *> listed(16);
    int n = worker_list(listed.data(), 16);
    bool found = false;
    for (int i = 0; i < n; i++) {
        found = found || listed[i] == w;
        worker_unref(listed[i]);
    }
    EXPECT_TRUE(found);  // the registry still lists it
    worker_set_error_handler(count_errors, nullptr);
    reported = 0;
    release = true;
    worker_unref(w);
    ASSERT_TRUE(pump_until([&] { return reported.load() == 1; }));
    // The worker outside the scope kept delivering throughout.
    int before = oc.calls.load();
    EXPECT_TRUE(pump_until([&] { return oc.calls.load() > before + 10; }));
    worker_quit(outside);
    EXPECT_TRUE(pump_until([&] { return oc.calls.load() > 0 && !worker_is_running(outside); }));
    worker_unref(outside);
    settle();
    worker_set_error_handler(nullptr, nullptr);
    EXPECT_EQ(c.calls.load(), calls);
    // Not in a scope: its user_data goes when it is freed, once its
    // FINISHED is delivered (it leaves the live count before that).
    EXPECT_TRUE(pump_until([&] { return oc.destroyed.load() == oc.made.load(); }))
        << oc.destroyed.load() << " of " << oc.made.load();
}

TEST_F(Scopes, OutsideWorkersAreUntouched) {
    worker_scope *s = worker_scope_new("plugin");
    worker_scope *other = worker_scope_new("other plugin");
    Counters in, out, out2;
    worker *a = make(s, yielder);
    worker *b = make(nullptr, [](worker_ctx *ctx) {
        for (int i = 0; i < 2000; i++)
            worker_yield(ctx, th::payload(i), th::payload_free, nullptr, nullptr);
        worker_return(ctx, th::payload(-1), th::payload_free);
    });
    worker *d = make(other, yielder);
    connect_all(a, in);
    std::atomic<int> returned{0};
    connect_all(b, out);
    connect_counted(b, WORKER_EV_RETURNED, out, [&](worker_event *) { returned++; });
    connect_all(d, out2);
    for (worker *w : {a, b, d}) ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return in.calls.load() > 10; }));
    ASSERT_EQ(worker_scope_close(s, -1), WORKER_OK);
    EXPECT_TRUE(pump_until([&] { return returned.load() == 1; }));
    EXPECT_EQ(out.destroyed.load(), 0);
    int d_calls = out2.calls.load();
    EXPECT_TRUE(pump_until([&] { return out2.calls.load() > d_calls + 10; }));
    EXPECT_EQ(worker_is_running(d), 1);
    EXPECT_EQ(worker_scope_close(other, -1), WORKER_OK);
    for (worker *w : {a, b, d}) worker_unref(w);
    settle();
    EXPECT_TRUE(pump_until([&] { return out.destroyed.load() == out.made.load(); }))  // as above
        << out.destroyed.load() << " of " << out.made.load();
}

// A worker closing its own scope from its function: the others are awaited,
// it is quit and not waited for (it would wait for itself).
TEST_F(Scopes, CloseFromAWorkersFunction) {
    worker_scope *s = worker_scope_new("plugin");
    Counters c;
    std::atomic<int> rc{1};
    std::atomic<bool> other_running{false};
    worker *other = make(s, [&](worker_ctx *ctx) {
        other_running = true;
        yielder(ctx);
    });
    worker *self = make(s, [&](worker_ctx *ctx) {
        th::wait_no_pump(other_running);
        rc = worker_scope_close(s, 10000);
        while (!worker_abort_requested(ctx)) nap(1);  // quit by the close
    });
    connect_all(other, c);
    connect_all(self, c);
    worker_start(other);
    worker_start(self);
    ASSERT_TRUE(pump_until([&] { return rc.load() != 1; }));
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_EQ(worker_is_running(other), 0);
    worker_unref(other);
    worker_unref(self);
    settle();
    EXPECT_EQ(c.destroyed.load(), c.made.load());
}

// Threads create and start workers into a scope while another closes it:
// every worker they got back was closed with it (none escapes), the rest
// were refused, and every arg and user_data is destroyed once.
TEST_F(Scopes, CreateAndStartWhileClosing) {
    for (int round = 0; round < 10; round++) {
        worker_scope *s = worker_scope_new("racy");
        Counters c;
        std::atomic<bool> go{false};
        std::atomic<int> ran_after{0}, refused{0};
        std::atomic<bool> closed{false};
        std::vector<worker *> got[2];
        std::thread makers[2];
        int freed = bodies_freed.load();
        std::atomic<int> made{0};
        for (int t = 0; t < 2; t++)
            makers[t] = std::thread([&, t] {
                th::wait_no_pump(go);
                for (int i = 0; i < 200; i++) {
                    worker *w = make(s, [&](worker_ctx *ctx) {
                        if (closed) ran_after++;
                        yielder(ctx);
                    });
                    made++;
                    if (!w) {
                        EXPECT_EQ(worker_last_error(), WORKER_ESTATE);
                        refused++;
                        break;
                    }
                    connect_counted(w, WORKER_EV_YIELDED, c);
                    if (i % 2) worker_start(w);
                    got[t].push_back(w);
                }
            });
        go = true;
        nap(round % 3);
        ASSERT_EQ(worker_scope_close(s, -1), WORKER_OK);
        closed = true;
        for (auto &m : makers) m.join();
        int calls = c.calls.load();
        pump_for(10);
        EXPECT_EQ(c.calls.load(), calls);
        for (auto &v : got)
            for (worker *w : v) {
                EXPECT_EQ(worker_start(w), WORKER_ESTATE);  // closed with the scope
                worker_unref(w);
            }
        EXPECT_EQ(ran_after.load(), 0);
        EXPECT_TRUE(pump_until([&] { return bodies_freed.load() == freed + made.load(); }));
        EXPECT_EQ(c.destroyed.load(), c.made.load());
    }
    settle();
}

// Process workers belong to scopes like thread workers; one that ignores
// quit is killed after its grace period, so the close still returns OK.
std::string module(const char *name) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string self = n > 0 ? std::string(exe, (size_t)n) : std::string("./x");
    return self.substr(0, self.rfind('/')) + "/process_modules/" + name;
}

TEST_F(Scopes, ProcessWorkersInAScope) {
    worker_scope *s = worker_scope_new("isolated plugin");
    worker_options o;
    worker_options_init(&o);
    o.scope = s;
    worker_process_options po;
    worker_process_options_init(&po);
    po.kill_grace_ms = 100;
    std::string mods = module("procmods.so");
    unsigned long long hold = 0;
    worker *ticker = worker_create_process(mods.c_str(), "pm_ticker", nullptr, 0, &o, &po);
    worker *stubborn =
        worker_create_process(mods.c_str(), "pm_ignores_quit", &hold, sizeof hold, &o, &po);
    ASSERT_NE(ticker, nullptr);
    ASSERT_NE(stubborn, nullptr);
    Counters c;
    connect_all(ticker, c);
    connect_all(stubborn, c);
    ASSERT_EQ(worker_start(ticker), WORKER_OK);
    ASSERT_EQ(worker_start(stubborn), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return c.calls.load() > 10; }));
    EXPECT_EQ(worker_scope_close(s, 20000), WORKER_OK);
    EXPECT_EQ(c.destroyed.load(), c.made.load());
    int calls = c.calls.load();
    EXPECT_GT(worker_process_id(stubborn), 0);
    pump_for(50);
    EXPECT_EQ(c.calls.load(), calls);
    worker_unref(ticker);
    worker_unref(stubborn);
    settle();
}

}  // namespace
