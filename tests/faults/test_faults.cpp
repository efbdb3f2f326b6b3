// Fault injection: allocations and thread creations made to fail at chosen
// points inside the library (qtimpl/fault.h, reached by linking the static
// library). Every call reports a status, nothing crashes, nothing hangs,
// every payload is destroyed exactly once.
#include "../harness.h"
#include "../../qtimpl/fault.h"

#include <atomic>
#include <memory>
#include <vector>

using namespace th;
namespace fault = qtw::fault;

namespace {

struct Disarm {
    ~Disarm() { fault::disarm_all(); }
};

void park_until_quit(worker_ctx *ctx, void *) {
    while (worker_yield(ctx, nullptr, nullptr, nullptr, nullptr) == WORKER_OK) {
    }
}

// Starts parked workers (paused before start) until worker_start reports
// that no thread can be had, with every thread creation failing: then no
// idle pool thread is left either.
std::vector<std::unique_ptr<Job>> use_up_idle_threads() {
    fault::arm(fault::Thread, 1, 1);
    std::vector<std::unique_ptr<Job>> parked;
    for (int i = 0; i < 2000; i++) {
        auto j = std::make_unique<Job>(park_until_quit, nullptr, nullptr, false);
        worker_pause(j->w);
        int rc = j->start();
        if (rc == WORKER_EAGAIN) break;
        EXPECT_EQ(rc, WORKER_OK);
        // Parked on a thread, or queued until the pool's monitor tries (and
        // fails) to make one: on a loaded machine the whole loop could
        // otherwise outrun the monitor and queue every worker.
        worker *w = j->w;
        wait_no_pump([w] { return worker_is_paused(w) || fault::failures(fault::Thread) > 0; }, 5000);
        parked.push_back(std::move(j));
    }
    EXPECT_GT(fault::failures(fault::Thread), 0);
    return parked;
}

}  // namespace

TEST(Faults, YieldReportsENOMEMWhenTheStreamCannotGrowAndDestroysTheValue) {
    Disarm d;
    reset_payloads();
    static std::atomic<int> failed_at{-1};
    failed_at = -1;
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_QUEUE;  // never waits: the GUI does not pump meanwhile
    Job j([](worker_ctx *ctx) {
        for (int i = 0; i < 1000; i++) {
            int rc = worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
            if (rc == WORKER_ENOMEM && failed_at < 0) failed_at = i;
            else EXPECT_EQ(rc, WORKER_OK);
        }
    }, &o);
    fault::arm(fault::StreamChunk, 3);  // STARTED's chunk, one more, then fail
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_EQ(worker_await(j.w, 10000), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    ASSERT_GE(failed_at.load(), 0) << "no yield hit the failing allocation";
    std::vector<int> want;
    for (int i = 0; i < 1000; i++)
        if (i != failed_at) want.push_back(i);
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), want);
    j.close();
    expect_payloads_freed();
}

TEST(Faults, ControlEventsWaitForMemoryAndAreNeverLost) {
    Disarm d;
    Job j([](worker_ctx *ctx) { worker_return(ctx, payload(1), payload_free); });
    fault::arm(fault::StreamChunk, 1, 2);  // STARTED's chunk fails, and every 2nd after
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    fault::disarm_all();
    EXPECT_GT(fault::failures(fault::StreamChunk), 0);
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
}

// A printed line whose event cannot be made waits for memory: every line
// arrives once, in order, and nothing is thrown through fprintf into the
// worker's code (an outside attack program caught a bad_alloc there, and a
// line fprintf had reported written never arrived). Both allocations: the
// line's text and the stream's chunk.
TEST(Faults, PrintedLinesWaitForMemoryAndNothingIsThrownIntoStdio) {
    for (fault::Point p : {fault::Text, fault::StreamChunk}) {
        Disarm d;
        std::atomic<bool> armed{false};
        Job j([&](worker_ctx *ctx) {
            FILE *out = worker_stdout(ctx);
            while (!armed.load()) {
            }
            for (int i = 0; i < 20; i++) fprintf(out, "line %d\n", i);
            worker_return(ctx, nullptr, nullptr);
        });
        ASSERT_EQ(j.start(), WORKER_OK);
        ASSERT_TRUE(j.rec->wait_for(WORKER_EV_STARTED));
        fault::arm(p, 1, 2);  // the next one fails, and every 2nd after
        armed = true;
        ASSERT_TRUE(j.rec->wait_finished());
        fault::disarm_all();
        EXPECT_GT(fault::failures(p), 0);
        std::vector<std::string> lines;
        for (const Rec &e : j.rec->events())
            if (e.type == WORKER_EV_OUTPUT) lines.push_back(e.message);
        ASSERT_EQ(lines.size(), 20u) << "point " << p;
        for (int i = 0; i < 20; i++) EXPECT_EQ(lines[size_t(i)], "line " + std::to_string(i));
        EXPECT_EQ(j.rec->outcome(), WORKER_EV_RETURNED);
    }
}

TEST(Faults, CreateFailuresReturnNullWithENOMEMAndDestroyTheArg) {
    Disarm d;
    reset_payloads();
    for (fault::Point p : {fault::Create, fault::Registry}) {
        fault::arm(p, 1);
        worker *w = worker_create(park_until_quit, payload(0), payload_free, nullptr);
        EXPECT_EQ(w, nullptr);
        EXPECT_EQ(worker_last_error(), WORKER_ENOMEM);
        EXPECT_EQ(payloads_alive(), 0) << "point " << p;
    }
}

TEST(Faults, ConnectSendWarnEmitReportENOMEMAndDestroyWhatTheyWereGiven) {
    Disarm d;
    reset_payloads();
    static std::atomic<int> warn_rc{0}, emit_rc{0};
    static std::atomic<bool> go{false};
    go = false;
    Job j([](worker_ctx *ctx) {
        wait_no_pump(go);
        fault::arm(fault::Text, 1);
        warn_rc = worker_warn(ctx, "lost %d", 1);
        fault::arm(fault::Text, 1);
        emit_rc = worker_emit(ctx, "frame", payload(2), payload_free);
    });
    fault::arm(fault::Connection, 1);
    EXPECT_EQ(worker_connect(j.w, WORKER_EV_YIELDED, [](worker_event *, void *) {}, payload(0), payload_free),
              WORKER_ENOMEM);
    EXPECT_EQ(payloads_alive(), 0) << "user_data of a failed connect";
    fault::arm(fault::Inbox, 1);
    EXPECT_EQ(worker_send(j.w, payload(1), payload_free), WORKER_ENOMEM);
    EXPECT_EQ(payloads_alive(), 0) << "a value whose send failed";
    ASSERT_EQ(j.start(), WORKER_OK);
    go = true;
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(warn_rc.load(), WORKER_ENOMEM);
    EXPECT_EQ(emit_rc.load(), WORKER_ENOMEM);
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_RETURNED);
    j.close();
    expect_payloads_freed();
}

TEST(Faults, StartWithoutAThreadIsEAgainAndTheWorkerStaysStartable) {
    Disarm d;
    reset_payloads();
    auto parked = use_up_idle_threads();
    Job j([](worker_ctx *ctx) { worker_return(ctx, payload(7), payload_free); });
    EXPECT_EQ(j.start(), WORKER_EAGAIN);
    EXPECT_STREQ(worker_strerror(WORKER_EAGAIN),
                 "a system limit was reached (no thread could be created): try again later");
    EXPECT_EQ(worker_is_running(j.w), 0);
    pump_for(50);
    EXPECT_TRUE(j.rec->events().empty()) << "a failed start emits nothing";
    fault::disarm_all();
    ASSERT_EQ(j.start(), WORKER_OK) << "startable once threads are available again";
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_RETURNED);
    parked.clear();  // quits and joins every parked worker
    j.close();
    expect_payloads_freed();
}

TEST(Faults, SerialGroupMembersRunOnTheEndingMembersThreadWhenNoneCanBeCreated) {
    Disarm d;
    reset_payloads();
    auto parked = use_up_idle_threads();
    fault::disarm_all();
    static std::atomic<bool> release{false};
    release = false;
    worker_options o;
    worker_options_init(&o);
    o.group = "faults-g";
    Job first([](worker_ctx *ctx) {
        wait_no_pump(release);
        worker_return(ctx, payload(1), payload_free);
    }, &o);
    Job second([](worker_ctx *ctx) { worker_return(ctx, payload(2), payload_free); }, &o);
    Job third([](worker_ctx *) {}, &o);
    ASSERT_EQ(first.start(), WORKER_OK);
    ASSERT_EQ(second.start(), WORKER_OK);  // queued: needs no thread now
    ASSERT_EQ(third.start(), WORKER_OK);
    // first must hold a thread before creation starts failing (it could
    // still be waiting for one in the pool's queue: a documented wait).
    ASSERT_TRUE(first.rec->wait_for(WORKER_EV_STARTED));
    fault::arm(fault::Thread, 1, 1);       // from here no thread can be created
    ASSERT_EQ(worker_quit(third.w), WORKER_OK);  // a queued member quit: ends here, at once
    ASSERT_TRUE(third.rec->wait_finished());
    EXPECT_EQ(third.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
    release = true;
    ASSERT_TRUE(first.rec->wait_finished());
    ASSERT_TRUE(second.rec->wait_finished()) << "the next member never ran";
    EXPECT_EQ(second.rec->outcome(), WORKER_EV_RETURNED);
    fault::disarm_all();
    parked.clear();
    first.close();
    second.close();
    third.close();
    expect_payloads_freed();
}

TEST(Faults, ExceptionsFromCppCodeNeverEndTheProcess) {
    // A worker function (C++ behind a C plugin) that throws ends ERRORED.
    Job j([](worker_ctx *) { throw std::runtime_error("sensor unplugged"); });
    // A callback that throws is reported; later callbacks still run.
    ASSERT_GT(worker_connect(j.w, WORKER_EV_STARTED, [](worker_event *, void *) { throw 42; }, nullptr,
                             nullptr), 0);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    ASSERT_EQ(j.rec->outcome(), WORKER_EV_ERRORED);
    EXPECT_EQ(j.rec->first(WORKER_EV_ERRORED).message, "uncaught C++ exception: sensor unplugged");
}
