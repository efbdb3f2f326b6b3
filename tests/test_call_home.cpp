// worker_call_home: a worker asks its home (GUI) thread to run a function and
// waits for the answer, in order with its events; it never deadlocks with a
// home thread that waits for workers, and a call that did not begin in time
// never runs later.
#include "harness.h"
#include "home_loop.h"

#include <QCoreApplication>
#include <QObject>
#include <QThread>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <stdexcept>

using namespace th;

namespace {

// What a home function saw; touched on the home thread only, except the
// atomics (read by the test after the worker ended).
struct Gui {
    std::atomic<int> calls{0};         // fn runs
    std::atomic<int> off_home{0};      // fn runs on another thread
    int yields_seen = 0;               // YIELDED callbacks so far (home thread)
    std::vector<int> order;            // yields (>= 0) and calls (-1), as the GUI saw them
    QThread *home = nullptr;
};

void *read_gui(void *arg) {
    auto *g = static_cast<Gui *>(arg);
    g->calls++;
    if (QThread::currentThread() != g->home) g->off_home++;
    g->order.push_back(-1);
    return reinterpret_cast<void *>(static_cast<intptr_t>(g->yields_seen + 1000));
}

void on_yield(worker_event *ev, void *ud) {
    auto *g = static_cast<Gui *>(ud);
    g->yields_seen++;
    g->order.push_back(*static_cast<int *>(ev->value));
}

Gui *gui_here() {
    static Gui g;
    g.calls = 0;
    g.off_home = 0;
    g.yields_seen = 0;
    g.order.clear();
    g.home = QThread::currentThread();
    return &g;
}

worker_options queue_options() {
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_QUEUE;  // the yields never wait: the GUI is behind on purpose
    return o;
}

}  // namespace

TEST(CallHome, ValueComesBackFromTheHomeThread) {
    Gui *g = gui_here();
    std::atomic<int> rc{1};
    void *got = nullptr;
    Job job([&](worker_ctx *ctx) { rc = worker_call_home(ctx, read_gui, g, &got, -1); });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_EQ(got, reinterpret_cast<void *>(1000));
    EXPECT_EQ(g->calls.load(), 1);
    EXPECT_EQ(g->off_home.load(), 0) << "fn ran off the home thread";
    EXPECT_EQ(job.rec->outcome(), WORKER_EV_RETURNED);
}

TEST(CallHome, ResultMayBeNull) {
    Gui *g = gui_here();
    std::atomic<int> rc{1};
    Job job([&](worker_ctx *ctx) { rc = worker_call_home(ctx, read_gui, g, nullptr, 5000); });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_EQ(g->calls.load(), 1);
}

// The GUI falls behind by 2000 slow callbacks (far more than one loop turn's
// budget): fn still sees every one of them, and the yields after the call
// come after it.
TEST(CallHome, RunsAfterEveryEarlierEventAndBeforeLaterOnes) {
    reset_payloads();
    Gui *g = gui_here();
    constexpr int kBefore = 2000, kAfter = 20;
    std::atomic<int> rc{1};
    std::atomic<bool> calling{false};
    void *got = nullptr;
    worker_options o = queue_options();
    Job job([&](worker_ctx *ctx) {
        for (int i = 0; i < kBefore; i++) worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
        calling = true;
        rc = worker_call_home(ctx, read_gui, g, &got, -1);
        for (int i = 0; i < kAfter; i++)
            worker_yield(ctx, payload(kBefore + i), payload_free, nullptr, nullptr);
    }, &o);
    worker_connect(job.w, WORKER_EV_YIELDED, on_yield, g, nullptr);
    job.rec->on(WORKER_EV_YIELDED, [](worker_event *) {
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        while (std::chrono::steady_clock::now() < until) {}  // a GUI that takes its time
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(calling));  // everything queued before the GUI looks
    nap(20);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_EQ(got, reinterpret_cast<void *>(static_cast<intptr_t>(1000 + kBefore)))
        << "fn ran before the GUI had seen every earlier yield";
    ASSERT_EQ(g->order.size(), size_t(kBefore + kAfter + 1));
    for (int i = 0; i < kBefore; i++) ASSERT_EQ(g->order[i], i);
    EXPECT_EQ(g->order[kBefore], -1);
    for (int i = 0; i < kAfter; i++) ASSERT_EQ(g->order[kBefore + 1 + i], kBefore + i);
    job.close();
    expect_payloads_freed();
}

// The GUI does not run its loop: the call times out, and fn never runs
// afterwards either (the cancelled entry is skipped when the loop runs).
TEST(CallHome, TimeoutReturnsAndFnNeverRunsLater) {
    Gui *g = gui_here();
    std::atomic<int> rc{1};
    std::atomic<bool> back{false};
    void *got = reinterpret_cast<void *>(1);
    Job job([&](worker_ctx *ctx) {
        rc = worker_call_home(ctx, read_gui, g, &got, 50);
        back = true;
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(back));
    EXPECT_EQ(rc.load(), WORKER_ETIMEDOUT);
    EXPECT_EQ(got, nullptr);
    ASSERT_TRUE(job.rec->wait_finished());
    pump_for(50);
    EXPECT_EQ(g->calls.load(), 0) << "a timed-out call ran later";
    EXPECT_EQ(job.rec->outcome(), WORKER_EV_RETURNED);
}

// Retries with timeout 0 while a timed-out call is still queued (the GUI
// does not run its loop) give up at once and never run fn, not even later;
// after a quit they say ABORTED. (They are answered without a lock: a loop
// of them no longer holds up the GUI's delivery.)
TEST(CallHome, ZeroTimeoutRetriesWhileOneIsQueuedGiveUpAndNeverRun) {
    Gui *g = gui_here();
    std::atomic<int> first{1}, timed_out{0}, other{0}, after_quit{1};
    std::atomic<bool> retried{false}, back{false};
    Job job([&](worker_ctx *ctx) {
        first = worker_call_home(ctx, read_gui, g, nullptr, 20);
        for (int i = 0; i < 10000; i++) {
            void *got = reinterpret_cast<void *>(1);
            int rc = worker_call_home(ctx, read_gui, g, &got, 0);
            (rc == WORKER_ETIMEDOUT && got == nullptr ? timed_out : other)++;
        }
        retried = true;
        while (!worker_abort_requested(ctx)) nap(1);
        after_quit = worker_call_home(ctx, read_gui, g, nullptr, 0);
        back = true;
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(retried));
    EXPECT_EQ(first.load(), WORKER_ETIMEDOUT);
    EXPECT_EQ(timed_out.load(), 10000);
    EXPECT_EQ(other.load(), 0);
    ASSERT_EQ(worker_quit(job.w), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(back));
    EXPECT_EQ(after_quit.load(), WORKER_ABORTED);
    ASSERT_TRUE(job.rec->wait_finished());
    pump_for(50);
    EXPECT_EQ(g->calls.load(), 0) << "a call that gave up ran later";
}

TEST(CallHome, QuitWhileWaitingAbortsAndFnNeverRunsLater) {
    Gui *g = gui_here();
    std::atomic<int> rc{1}, again{1};
    std::atomic<bool> calling{false}, back{false};
    Job job([&](worker_ctx *ctx) {
        calling = true;
        rc = worker_call_home(ctx, read_gui, g, nullptr, -1);
        again = worker_call_home(ctx, read_gui, g, nullptr, -1);  // after quit: at once
        back = true;
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(calling));
    nap(20);  // most likely waiting by now; ABORTED either way
    HangGuard guard("call_home waiting through a quit");
    ASSERT_EQ(worker_quit(job.w), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(back));
    EXPECT_EQ(rc.load(), WORKER_ABORTED);
    EXPECT_EQ(again.load(), WORKER_ABORTED);
    ASSERT_TRUE(job.rec->wait_finished());
    pump_for(50);
    EXPECT_EQ(g->calls.load(), 0) << "a call abandoned at quit ran later";
    EXPECT_EQ(job.rec->outcome(), WORKER_EV_ABORTED);
}

// worker_await on the home thread while the worker waits for that thread:
// the call ends with EBUSY at once (also one made during the wait), fn never
// runs, and the await returns.
TEST(CallHome, AwaitOnTheHomeThreadDoesNotDeadlock) {
    Gui *g = gui_here();
    std::atomic<int> rc{1}, during{1};
    std::atomic<bool> calling{false};
    Job job([&](worker_ctx *ctx) {
        calling = true;
        rc = worker_call_home(ctx, read_gui, g, nullptr, -1);
        during = worker_call_home(ctx, read_gui, g, nullptr, -1);
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(calling));
    nap(20);
    {
        HangGuard guard("worker_await on the home thread with a call_home pending");
        EXPECT_EQ(worker_await(job.w, -1), WORKER_OK);
    }
    EXPECT_EQ(rc.load(), WORKER_EBUSY);
    EXPECT_EQ(during.load(), WORKER_EBUSY);
    ASSERT_TRUE(job.rec->wait_finished());
    pump_for(50);
    EXPECT_EQ(g->calls.load(), 0);
}

// The awaited worker waits for its serial group's earlier member, which
// waits in call_home: still no deadlock.
TEST(CallHome, AwaitOfALaterSerialGroupMemberDoesNotDeadlock) {
    Gui *g = gui_here();
    std::atomic<int> rc{1};
    std::atomic<bool> calling{false}, second_ran{false};
    worker_options o;
    worker_options_init(&o);
    o.group = "call-home-group";
    Job first([&](worker_ctx *ctx) {
        calling = true;
        rc = worker_call_home(ctx, read_gui, g, nullptr, -1);
    }, &o);
    Job second([&](worker_ctx *) { second_ran = true; }, &o);
    ASSERT_EQ(first.start(), WORKER_OK);
    ASSERT_EQ(second.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(calling));
    nap(20);
    {
        HangGuard guard("worker_await of a serial group member behind a call_home");
        EXPECT_EQ(worker_await(second.w, -1), WORKER_OK);
    }
    EXPECT_EQ(rc.load(), WORKER_EBUSY);
    EXPECT_TRUE(second_ran.load());
    ASSERT_TRUE(first.rec->wait_finished());
    ASSERT_TRUE(second.rec->wait_finished());
    EXPECT_EQ(g->calls.load(), 0);
}

namespace {
struct SelfAwait {
    worker *w = nullptr;
    std::atomic<int> rc{1};
};
void *await_own_worker(void *arg) {
    auto *s = static_cast<SelfAwait *>(arg);
    s->rc = worker_await(s->w, -1);
    return nullptr;
}
}  // namespace

TEST(CallHome, FnAwaitingItsOwnWorkerIsRefused) {
    SelfAwait s;
    std::atomic<int> rc{1};
    Job job([&](worker_ctx *ctx) { rc = worker_call_home(ctx, await_own_worker, &s, nullptr, -1); });
    s.w = job.w;
    HangGuard guard("worker_await of the calling worker from its call_home fn");
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_EQ(s.rc.load(), WORKER_ETHREAD);
}

namespace {
struct AllAwait {
    std::atomic<bool> other_returned{false};
    std::atomic<bool> seen_returned{false};
    std::atomic<int> rc{1};
};
void *await_everyone(void *arg) {
    auto *s = static_cast<AllAwait *>(arg);
    s->rc = worker_await_all(10000);
    s->seen_returned = s->other_returned.load();
    return nullptr;
}
}  // namespace

// worker_await_all from a call_home fn skips its caller (which waits for
// that very fn) and waits for every other worker (an outside read asked
// which of the two the header meant).
TEST(CallHome, FnAwaitingEveryoneSkipsItsCaller) {
    AllAwait s;
    std::atomic<int> rc{1};
    Job other([&](worker_ctx *) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        s.other_returned = true;
    });
    Job job([&](worker_ctx *ctx) { rc = worker_call_home(ctx, await_everyone, &s, nullptr, -1); });
    HangGuard guard("worker_await_all from a call_home fn");
    ASSERT_EQ(other.start(), WORKER_OK);
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_EQ(s.rc.load(), WORKER_OK);
    EXPECT_TRUE(s.seen_returned.load()) << "it returned before the other worker's function did";
    ASSERT_TRUE(other.rec->wait_finished());
}

namespace {
struct GroupAwait {
    worker *later = nullptr;  // the next member of the caller's serial group
    std::atomic<int> rc{1};
};
void *await_later_member(void *arg) {
    auto *s = static_cast<GroupAwait *>(arg);
    s->rc = worker_await(s->later, -1);
    return nullptr;
}
}  // namespace

// fn (on the home thread) awaits the worker queued behind its caller in a
// serial group: that one waits for the caller, the caller for fn. The header
// promises that an await on the home thread does not deadlock "through the
// earlier members of its serial group"; it hung here forever.
TEST(CallHome, FnAwaitingTheNextMemberOfItsGroupDoesNotDeadlock) {
    GroupAwait s;
    std::atomic<int> rc{1};
    worker_options o;
    worker_options_init(&o);
    o.group = "call-home-fn-awaits";
    Job first([&](worker_ctx *ctx) { rc = worker_call_home(ctx, await_later_member, &s, nullptr, -1); }, &o);
    Job second([](worker_ctx *) {}, &o);
    s.later = second.w;
    HangGuard guard("worker_await of the next serial group member from a call_home fn");
    ASSERT_EQ(first.start(), WORKER_OK);
    ASSERT_EQ(second.start(), WORKER_OK);
    ASSERT_TRUE(first.rec->wait_finished());
    ASSERT_TRUE(second.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_OK);
    EXPECT_NE(s.rc.load(), 1) << "the await never returned";
}

namespace {
struct Catch {
    std::atomic<int> rc{1};
    worker_ctx *ctx = nullptr;
};
void *nothing(void *) { return reinterpret_cast<void *>(7); }
void *throws(void *) { throw std::runtime_error("from the GUI"); }
void *call_home_from_fn(void *arg) {
    auto *c = static_cast<Catch *>(arg);
    c->rc = worker_call_home(c->ctx, nothing, nullptr, nullptr, -1);
    return nullptr;
}
}  // namespace

TEST(CallHome, BadInput) {
    void *got = reinterpret_cast<void *>(1);
    EXPECT_EQ(worker_call_home(nullptr, nothing, nullptr, &got, -1), WORKER_EINVAL);
    EXPECT_EQ(got, nullptr);
    std::atomic<int> null_fn{1}, fine{1};
    std::atomic<bool> go{false}, done{false};
    worker_ctx *seen = nullptr;
    std::atomic<bool> have_ctx{false};
    Job job([&](worker_ctx *ctx) {
        seen = ctx;
        have_ctx = true;
        null_fn = worker_call_home(ctx, nullptr, nullptr, nullptr, -1);
        wait_no_pump(go);
        fine = worker_call_home(ctx, nothing, nullptr, nullptr, 5000);
        done = true;
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(have_ctx));
    // The ctx of a running worker, from another thread: not its function.
    got = reinterpret_cast<void *>(1);
    EXPECT_EQ(worker_call_home(seen, nothing, nullptr, &got, -1), WORKER_ETHREAD);
    EXPECT_EQ(got, nullptr);
    go = true;
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(null_fn.load(), WORKER_EINVAL);
    EXPECT_EQ(fine.load(), WORKER_OK) << "still usable after a refused call";
    EXPECT_TRUE(done.load());
}

// From a callback and from fn itself (both on the GUI thread): ETHREAD.
TEST(CallHome, FromTheGuiThreadIsRefused) {
    Catch from_cb, from_fn;
    std::atomic<int> rc{1};
    Job job([&](worker_ctx *ctx) {
        from_fn.ctx = ctx;
        worker_yield(ctx, payload(1), payload_free, nullptr, nullptr);
        rc = worker_call_home(ctx, call_home_from_fn, &from_fn, nullptr, -1);
    });
    job.rec->on(WORKER_EV_YIELDED, [&](worker_event *) {
        from_cb.rc = worker_call_home(from_fn.ctx, nothing, nullptr, nullptr, -1);
    });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(from_cb.rc.load(), WORKER_ETHREAD);
    EXPECT_EQ(from_fn.rc.load(), WORKER_ETHREAD);
    EXPECT_EQ(rc.load(), WORKER_OK);
}

TEST(CallHome, FnThrowingIsAnErrorNotTheEnd) {
    std::atomic<int> rc{1};
    void *got = reinterpret_cast<void *>(1);
    Job job([&](worker_ctx *ctx) { rc = worker_call_home(ctx, throws, nullptr, &got, -1); });
    ASSERT_EQ(job.start(), WORKER_OK);
    ASSERT_TRUE(job.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_ESTATE);
    EXPECT_EQ(got, nullptr);
}

// A worker homed on a QThread whose loop has ended: the call is cancelled
// (fn never runs on a finished thread), it does not wait for ever.
namespace {
struct Homed {
    std::atomic<int> rc{1};
    std::atomic<bool> go{false}, back{false};
    Gui *g = nullptr;
};
void homed_body(worker_ctx *c, void *arg) {
    auto *h = static_cast<Homed *>(arg);
    wait_no_pump(h->go);
    h->rc = worker_call_home(c, read_gui, h->g, nullptr, 20000);
    h->back = true;
}
}  // namespace

TEST(CallHome, HomeThreadEndedCancelsTheCall) {
    Homed h;
    h.g = gui_here();
    HomeLoop t([&h] {
        worker *x = worker_create(homed_body, &h, nullptr, nullptr);
        worker_start(x);
        return x;
    });
    worker *w = t.start_home();
    ASSERT_NE(w, nullptr);
    t.stop_and_wait();
    h.go = true;
    HangGuard guard("call_home of a worker whose home thread ended");
    ASSERT_EQ(worker_await(w, 20000), WORKER_OK);
    EXPECT_TRUE(h.back.load());
    EXPECT_EQ(h.rc.load(), WORKER_ESTATE);
    EXPECT_EQ(h.g->calls.load(), 0);
    worker_unref(w);
    EXPECT_TRUE(wait_no_pump([] { return worker_live_count() == 0; }));
}

// Many workers calling home at once, some timing out, some quit: every call
// either ran once (and returned OK) or never ran.
TEST(CallHome, ManyWorkersEachCallRunsAtMostOnce) {
    constexpr int kWorkers = 8, kCalls = 200;
    std::atomic<int> ran{0}, ok{0};
    std::vector<std::unique_ptr<Job>> jobs;
    for (int i = 0; i < kWorkers; i++) {
        jobs.push_back(std::make_unique<Job>([&, i](worker_ctx *ctx) {
            for (int k = 0; k < kCalls; k++) {
                int rc = worker_call_home(ctx, [](void *r) -> void * {
                    static_cast<std::atomic<int> *>(r)->fetch_add(1);
                    return nullptr;
                }, &ran, nullptr, (k + i) % 3 == 0 ? 0 : -1);
                if (rc == WORKER_OK) ok++;
                else if (rc == WORKER_ABORTED) return;
                else EXPECT_EQ(rc, WORKER_ETIMEDOUT);
            }
        }));
        ASSERT_EQ(jobs.back()->start(), WORKER_OK);
    }
    pump_until([&] { return ok.load() > kWorkers * kCalls / 2; });
    worker_quit(jobs[0]->w);
    for (auto &j : jobs) ASSERT_TRUE(j->rec->wait_finished());
    pump_for(20);
    EXPECT_EQ(ran.load(), ok.load()) << "a call ran without returning OK, or the reverse";
}
