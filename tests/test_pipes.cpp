// Pipelines: worker_pipe (order, the bounded link under each policy, a
// 3-stage pipeline, fan-in, EOF when the sources end, stopping the sink
// stops the sources, bad input) (issue 16). Asserted by values, counts and
// order, never by timing.
#include "receive_helpers.h"
#include "qtworker.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

using namespace th;

// ----------------------------------------------------------------- pipelines

TEST(Pipe, SourceValuesGoToTheSinkNotToTheGui) {
    reset_payloads();
    {
        Received got;
        Job sink(receive_all(got));
        auto o = policy_options(WORKER_BLOCK, 4, "src");
        Job src([](worker_ctx *ctx) {
            for (int i = 0; i < 20; i++) {
                worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
                if (i == 10) worker_warn(ctx, "half way");
            }
            worker_progress(ctx, 20, 20, "done");
            worker_return(ctx, payload(100), payload_free);
        }, &o);
        ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
        ASSERT_TRUE(sink.rec->wait_finished());
        ASSERT_TRUE(src.rec->wait_finished());
        EXPECT_EQ(got.snapshot(), range(0, 20));
        EXPECT_EQ(got.last_rc, WORKER_EOF) << "the last source ended: input closed";
        EXPECT_EQ(src.rec->count(WORKER_EV_YIELDED), 0);
        EXPECT_EQ(src.rec->count(WORKER_EV_WARNED), 1);
        EXPECT_EQ(src.rec->count(WORKER_EV_PROGRESS), 1);
        EXPECT_EQ(src.rec->values(WORKER_EV_RETURNED), std::vector<int>{100});
        EXPECT_EQ(sink.rec->outcome(), WORKER_EV_RETURNED);
    }
    expect_payloads_freed();
}

// The link's bound: a BLOCK source stops with exactly `capacity` values
// unreceived while its sink does not receive.
TEST(Pipe, BlockSourceWaitsAtCapacityUnreceived) {
    reset_payloads();
    {
        GatedPipe p(-1, WORKER_BLOCK, 5);
        p.start();
        ASSERT_TRUE(wait_no_pump([&] { return p.s.yielded.load() >= 5; }));
        pump_for(100);  // room to run past the bound if it were broken
        EXPECT_EQ(p.s.yielded.load(), 5);
        p.go = true;
        ASSERT_TRUE(pump_until([&] { return p.got.size() >= 50; }));
        HangGuard guard("quitting the sink stops a source waiting at capacity");
        p.sink.close();  // stopping the sink stops the source
        ASSERT_TRUE(p.src.rec->wait_finished());
        EXPECT_EQ(p.src.rec->outcome(), WORKER_EV_ABORTED);
        EXPECT_EQ(p.s.last_rc.load(), WORKER_ABORTED);
        std::vector<int> g = p.got.snapshot();
        EXPECT_EQ(g, range(0, (int)g.size())) << "in order, nothing lost";
    }
    expect_payloads_freed();
}

// The sink's capacity_bytes bounds the link's unreceived bytes
// (worker_yield_sized): 400-byte values into a 1000-byte budget stop the
// BLOCK source after 2; a value larger than the budget goes alone. Then
// everything arrives, in order.
TEST(Pipe, TheSinksByteBudgetBoundsTheLink) {
    reset_payloads();
    for (size_t size : {size_t(400), size_t(5000)}) {
        std::atomic<bool> go{false};
        std::atomic<int> yielded{0};
        Received got;
        worker_options so;
        worker_options_init(&so);
        so.capacity_bytes = 1000;
        Job sink([&](worker_ctx *ctx) {
            wait_no_pump(go);
            receive_all(got)(ctx);
        }, &so);
        auto o = policy_options(WORKER_BLOCK, 100);
        Job src([&, size](worker_ctx *ctx) {
            for (int i = 0; i < 10; i++) {
                if (worker_yield_sized(ctx, payload(i), size, payload_free, nullptr, nullptr) != WORKER_OK)
                    return;
                yielded++;
            }
        }, &o);
        ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
        int bound = size < 1000 ? 2 : 1;
        ASSERT_TRUE(wait_no_pump([&] { return yielded.load() >= bound; }));
        pump_for(100);  // room to run past the budget if it were broken
        EXPECT_EQ(yielded.load(), bound) << size << "-byte values";
        go = true;
        ASSERT_TRUE(src.rec->wait_finished());
        ASSERT_TRUE(sink.rec->wait_finished());
        EXPECT_EQ(got.snapshot(), range(0, 10));
    }
    expect_payloads_freed();
}

TEST(Pipe, LatestKeepsOnlyTheNewestUnreceivedValue) {
    reset_payloads();
    {
        GatedPipe p(1000, WORKER_LATEST, 16);
        p.start();
        ASSERT_TRUE(p.src.rec->wait_finished());  // never waited on the sink
        EXPECT_EQ(worker_dropped(p.src.w), 999);
        EXPECT_EQ(payloads_alive(), 1) << "replaced values are destroyed at once";
        p.go = true;
        ASSERT_TRUE(p.sink.rec->wait_finished());
        EXPECT_EQ(p.got.snapshot(), std::vector<int>{999});
        EXPECT_EQ(p.got.last_rc, WORKER_EOF);
    }
    expect_payloads_freed();
}

TEST(Pipe, QueueNeverWaits) {
    reset_payloads();
    {
        GatedPipe p(300, WORKER_QUEUE, 1);
        p.start();
        ASSERT_TRUE(p.src.rec->wait_finished());
        p.go = true;
        ASSERT_TRUE(p.sink.rec->wait_finished());
        EXPECT_EQ(p.got.snapshot(), range(0, 300));
    }
    expect_payloads_freed();
}

// Source -> refine -> sink, 10 000 values through two bounded links. The
// middle stage samples how far the source is ahead of what it received: a
// lower bound of the unreceived count, which must stay within capacity.
TEST(Pipe, ThreeStagePipelineInOrderWithinCapacity) {
    reset_payloads();
    constexpr int kValues = 10000;
    constexpr size_t kCap = 16;
    {
        Received got;
        Job sink(receive_all(got));
        std::atomic<int> peak{0}, over{0};
        Source s{kValues, 0};
        auto om = policy_options(WORKER_BLOCK, kCap, "refine");
        Job mid([&](worker_ctx *ctx) {
            int v, received = 0;
            while (receive_int(ctx, &v) == WORKER_RECEIVED) {
                received++;
                int ahead = s.yielded.load() - received;  // the source is not counting a take now
                if (ahead > peak) peak = ahead;
                if (ahead > (int)kCap) over++;
                if (worker_yield(ctx, payload(v * 2), payload_free, nullptr, nullptr) != WORKER_OK) return;
            }
        }, &om);
        auto os = policy_options(WORKER_BLOCK, kCap, "source");
        Job src(s.body(), &os);
        ASSERT_EQ(worker_pipe(src.w, mid.w), WORKER_OK);
        ASSERT_EQ(worker_pipe(mid.w, sink.w), WORKER_OK);
        auto t0 = std::chrono::steady_clock::now();
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(mid.start(), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
        {
            HangGuard guard("3-stage pipeline", 60000);
            ASSERT_EQ(worker_await(sink.w, -1), WORKER_OK);
        }
        double s_elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("3-stage pipeline: %d values in %.3f s = %.0f values/s, peak unreceived "
                    "seen %d of capacity %zu\n", kValues, s_elapsed, kValues / s_elapsed,
                    peak.load(), kCap);
        std::vector<int> g = got.snapshot();
        ASSERT_EQ(g.size(), (size_t)kValues);
        for (int i = 0; i < kValues; i++) ASSERT_EQ(g[i], 2 * i) << i;
        EXPECT_EQ(got.last_rc, WORKER_EOF);
        EXPECT_EQ(over.load(), 0) << "peak " << peak.load();
        EXPECT_GT(peak.load(), 0);
        for (Job *j : {&src, &mid, &sink}) {
            ASSERT_TRUE(j->rec->wait_finished());
            EXPECT_EQ(j->rec->outcome(), WORKER_EV_RETURNED);
            EXPECT_EQ(j->rec->count(WORKER_EV_YIELDED), 0);
        }
    }
    expect_payloads_freed();
}

TEST(Pipe, FanInClosesTheSinkWhenEverySourceEnded) {
    reset_payloads();
    {
        Received got;
        Job sink(receive_all(got));
        Source a{500, 0}, b{500, 10000}, c{0, 0};
        auto o = policy_options(WORKER_BLOCK, 3);
        Job ja(a.body(), &o), jb(b.body(), &o), jc(c.body(), &o);
        for (Job *j : {&ja, &jb, &jc}) ASSERT_EQ(worker_pipe(j->w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(ja.start(), WORKER_OK);
        ASSERT_EQ(jc.start(), WORKER_OK);
        ASSERT_TRUE(jc.rec->wait_finished());
        ASSERT_TRUE(ja.rec->wait_finished());
        pump_for(30);
        EXPECT_EQ(sink.rec->count(WORKER_EV_FINISHED), 0) << "b has not run yet: input stays open";
        ASSERT_EQ(jb.start(), WORKER_OK);
        ASSERT_TRUE(sink.rec->wait_finished());
        EXPECT_EQ(got.last_rc, WORKER_EOF);
        std::vector<int> g = got.snapshot(), fa, fb;
        for (int v : g) (v < 10000 ? fa : fb).push_back(v);
        EXPECT_EQ(fa, range(0, 500)) << "each source's order kept";
        EXPECT_EQ(fb, range(10000, 500));
        // Piping into a sink whose input closed is refused.
        Job late([](worker_ctx *) {});
        EXPECT_EQ(worker_pipe(late.w, sink.w), WORKER_ESTATE);
    }
    expect_payloads_freed();
}

TEST(Pipe, SendsAndPipedValuesShareTheSinksInput) {
    reset_payloads();
    {
        Received got;
        Job sink(receive_all(got));
        Source s{10, 100};
        Job src(s.body());
        ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
        ASSERT_EQ(worker_send(sink.w, payload(1), payload_free), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
        ASSERT_TRUE(src.rec->wait_finished());
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_TRUE(sink.rec->wait_finished());
        std::vector<int> want{1};
        for (int i = 0; i < 10; i++) want.push_back(100 + i);
        EXPECT_EQ(got.snapshot(), want);
    }
    expect_payloads_freed();
}

TEST(Pipe, SinkEndingStopsItsSourcesAndDestroysWhatItLeft) {
    reset_payloads();
    {
        Job sink([](worker_ctx *ctx) {
            int v;
            for (int i = 0; i < 3; i++) receive_int(ctx, &v);
            // returns with values still unreceived
        });
        Source a{-1, 0}, b{-1, 1000};
        auto o = policy_options(WORKER_BLOCK, 8);
        Job ja(a.body(), &o), jb(b.body(), &o);
        ASSERT_EQ(worker_pipe(ja.w, sink.w), WORKER_OK);
        ASSERT_EQ(worker_pipe(jb.w, sink.w), WORKER_OK);
        ASSERT_EQ(ja.start(), WORKER_OK);
        ASSERT_EQ(jb.start(), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        HangGuard guard("sources of an ended sink stop");
        ASSERT_TRUE(sink.rec->wait_finished());
        ASSERT_TRUE(ja.rec->wait_finished());
        ASSERT_TRUE(jb.rec->wait_finished());
        EXPECT_EQ(ja.rec->outcome(), WORKER_EV_ABORTED);
        EXPECT_EQ(jb.rec->outcome(), WORKER_EV_ABORTED);
        // A source still waiting for a pool thread is quit before it runs.
        for (Source *s : {&a, &b}) {
            if (s->yielded > 0) {
                EXPECT_EQ(s->last_rc.load(), WORKER_ABORTED);
            }
        }
    }
    expect_payloads_freed();
}

TEST(Pipe, QuittingTheSinkStopsAChain) {
    reset_payloads();
    {
        Received got;
        Job sink(receive_all(got));
        Job mid([](worker_ctx *ctx) {
            int v;
            while (receive_int(ctx, &v) == WORKER_RECEIVED)
                if (worker_yield(ctx, payload(v), payload_free, nullptr, nullptr) != WORKER_OK) return;
        });
        Source s{-1, 0};
        auto o = policy_options(WORKER_BLOCK, 4);
        Job src(s.body(), &o);
        ASSERT_EQ(worker_pipe(src.w, mid.w), WORKER_OK);
        ASSERT_EQ(worker_pipe(mid.w, sink.w), WORKER_OK);
        for (Job *j : {&sink, &mid, &src}) ASSERT_EQ(j->start(), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return got.size() >= 20; }));
        HangGuard guard("quit of the sink stops the chain");
        ASSERT_EQ(worker_quit(sink.w), WORKER_OK);
        for (Job *j : {&sink, &mid, &src}) {
            ASSERT_TRUE(j->rec->wait_finished());
            EXPECT_EQ(j->rec->outcome(), WORKER_EV_ABORTED);
        }
    }
    expect_payloads_freed();
}

TEST(Pipe, ClosingTheSinksInputStopsABlockedSource) {
    reset_payloads();
    {
        GatedPipe p(-1, WORKER_BLOCK, 2);
        p.start();
        ASSERT_TRUE(wait_no_pump([&] { return p.s.yielded.load() >= 2; }));
        HangGuard guard("close_input stops a source waiting at capacity");
        ASSERT_EQ(worker_close_input(p.sink.w), WORKER_OK);
        ASSERT_TRUE(p.src.rec->wait_finished());
        EXPECT_EQ(p.src.rec->outcome(), WORKER_EV_ABORTED);
        p.go = true;
        ASSERT_TRUE(p.sink.rec->wait_finished());
        EXPECT_EQ(p.got.snapshot(), range(0, 2)) << "what was piped before the close is received";
        EXPECT_EQ(p.got.last_rc, WORKER_EOF);
    }
    expect_payloads_freed();
}

TEST(Pipe, UnstartedSourceFreedCountsAsEnded) {
    reset_payloads();
    {
        Received got;
        Job sink(receive_all(got));
        worker *never = worker_create([](worker_ctx *, void *) {}, payload(1), payload_free, nullptr);
        ASSERT_NE(never, nullptr);
        ASSERT_EQ(worker_pipe(never, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        pump_for(20);
        EXPECT_EQ(sink.rec->count(WORKER_EV_FINISHED), 0);
        HangGuard guard("a freed unstarted source closes the sink's input");
        worker_unref(never);  // its last reference: freed, never run
        ASSERT_TRUE(sink.rec->wait_finished());
        EXPECT_EQ(got.last_rc, WORKER_EOF);
    }
    expect_payloads_freed();
}

TEST(Pipe, UnstartedSourceOfAnEndedSinkRunsAlreadyQuit) {
    reset_payloads();
    {
        Job sink([](worker_ctx *) {});
        Source s{5, 0};
        Job src(s.body());
        ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_TRUE(sink.rec->wait_finished());
        ASSERT_EQ(src.start(), WORKER_OK);
        ASSERT_TRUE(src.rec->wait_finished());
        EXPECT_EQ(src.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ABORTED, WORKER_EV_FINISHED}));
        EXPECT_EQ(s.yielded.load(), 0);
    }
    expect_payloads_freed();
}

TEST(Pipe, UnrefOfAnUnstartedSinkStopsItsSources) {
    reset_payloads();
    Source s{-1, 0};
    auto o = policy_options(WORKER_BLOCK, 2);
    Job src(s.body(), &o);
    worker *sink = worker_create([](worker_ctx *, void *) {}, nullptr, nullptr, nullptr);
    ASSERT_EQ(worker_pipe(src.w, sink), WORKER_OK);
    ASSERT_EQ(src.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump([&] { return s.yielded.load() >= 2; }));
    HangGuard guard("dropping a never-started sink stops its sources");
    worker_unref(sink);  // nobody owns it: quit, so its sources are quit
    ASSERT_TRUE(src.rec->wait_finished());
    EXPECT_EQ(src.rec->outcome(), WORKER_EV_ABORTED);
    src.close();
    expect_payloads_freed();  // the two values in the dead sink's input too
}

TEST(Pipe, CppWrapper) {
    reset_payloads();
    std::vector<int> got;
    {
        auto sink = qtworker::Worker::create([&](qtworker::Context ctx) {
            void *v;
            worker_destroy_fn d;
            while (ctx.receive(&v, &d) == WORKER_RECEIVED) {
                got.push_back(*static_cast<int *>(v));
                d(v);
            }
        });
        auto src = qtworker::Worker::create([](qtworker::Context ctx) {
            for (int i = 0; i < 5; i++) ctx.yield(payload(i), payload_free);
        });
        ASSERT_EQ(src.pipe_into(sink), WORKER_OK);
        long fin = sink.on(WORKER_EV_FINISHED, [](worker_event &) {});
        EXPECT_GT(fin, 0);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
        ASSERT_EQ(sink.await(10000), WORKER_OK);
        auto closed = qtworker::Worker::create([](qtworker::Context) {});
        EXPECT_EQ(closed.close_input(), WORKER_OK);
        pump_for(10);
    }
    EXPECT_EQ(got, range(0, 5));
    wait_no_pump([] { return payloads_alive() <= 0; }, 5000);
    expect_payloads_freed();
}

// ------------------------------------------------------------- bad input

TEST(PipeBadInput, NullAndSelfAndLoops) {
    reset_payloads();
    Job a([](worker_ctx *) {}), b([](worker_ctx *) {}), c([](worker_ctx *) {});
    EXPECT_EQ(worker_pipe(nullptr, a.w), WORKER_EINVAL);
    EXPECT_EQ(worker_pipe(a.w, nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_pipe(nullptr, nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_pipe(a.w, a.w), WORKER_EINVAL);
    EXPECT_EQ(worker_close_input(nullptr), WORKER_EINVAL);
    EXPECT_EQ(worker_receive(nullptr, nullptr, nullptr, 0), WORKER_EINVAL);
    ASSERT_EQ(worker_pipe(a.w, b.w), WORKER_OK);
    ASSERT_EQ(worker_pipe(b.w, c.w), WORKER_OK);
    EXPECT_EQ(worker_pipe(c.w, a.w), WORKER_EINVAL) << "a -> b -> c -> a";
    EXPECT_EQ(worker_pipe(b.w, a.w), WORKER_EINVAL) << "a -> b -> a";
    EXPECT_EQ(worker_pipe(a.w, c.w), WORKER_ESTATE) << "a pipes into b already";
    // Everything still works: the chain runs and ends.
    for (Job *j : {&c, &b, &a}) ASSERT_EQ(j->start(), WORKER_OK);
    for (Job *j : {&c, &b, &a}) ASSERT_TRUE(j->rec->wait_finished());
    EXPECT_EQ(c.rec->outcome(), WORKER_EV_RETURNED);
}

// A path of pipes between two members of one serial group: the first to
// run would hold the group while it waits for the other (an outside attack
// program's BLOCK source and its sink, both live after 1.5 s). Refused,
// directly and through an ungrouped worker in between, either way round.
TEST(PipeBadInput, APathBetweenMembersOfOneSerialGroupIsRefused) {
    worker_options g;
    worker_options_init(&g);
    g.group = "instrument";
    worker_options h = g;
    h.group = "other";
    Job a([](worker_ctx *) {}, &g), b([](worker_ctx *) {}, &g), mid([](worker_ctx *) {}),
        c([](worker_ctx *) {}, &g), other([](worker_ctx *) {}, &h);
    EXPECT_EQ(worker_pipe(a.w, b.w), WORKER_EINVAL) << "source and sink in one group";
    EXPECT_EQ(worker_pipe(b.w, a.w), WORKER_EINVAL);
    ASSERT_EQ(worker_pipe(a.w, mid.w), WORKER_OK);
    EXPECT_EQ(worker_pipe(mid.w, c.w), WORKER_EINVAL) << "a -> mid -> c, a and c in one group";
    ASSERT_EQ(worker_pipe(mid.w, other.w), WORKER_OK) << "another group is fine";
    EXPECT_EQ(worker_pipe(b.w, c.w), WORKER_EINVAL);
    // The accepted chain runs and ends.
    for (Job *j : {&other, &mid, &a}) ASSERT_EQ(j->start(), WORKER_OK);
    for (Job *j : {&other, &mid, &a}) ASSERT_TRUE(j->rec->wait_finished());
    EXPECT_EQ(other.rec->outcome(), WORKER_EV_RETURNED);
}

TEST(PipeBadInput, PipeAfterStartOrIntoAnEndedSink) {
    reset_payloads();
    Job started([](worker_ctx *) {}), sink([](worker_ctx *) {}), other([](worker_ctx *) {});
    ASSERT_EQ(started.start(), WORKER_OK);
    EXPECT_EQ(worker_pipe(started.w, sink.w), WORKER_ESTATE);
    ASSERT_EQ(sink.start(), WORKER_OK);
    ASSERT_TRUE(sink.rec->wait_finished());
    EXPECT_EQ(worker_pipe(other.w, sink.w), WORKER_ESTATE) << "sink ended";
    Job quit_sink([](worker_ctx *) {});
    ASSERT_EQ(worker_quit(quit_sink.w), WORKER_OK);
    EXPECT_EQ(worker_pipe(other.w, quit_sink.w), WORKER_ESTATE) << "sink quit";
    Job closed([](worker_ctx *) {});
    ASSERT_EQ(worker_close_input(closed.w), WORKER_OK);
    EXPECT_EQ(worker_pipe(other.w, closed.w), WORKER_ESTATE) << "sink input closed";
    Received got;
    Job running(receive_all(got));
    ASSERT_EQ(running.start(), WORKER_OK);
    EXPECT_EQ(worker_pipe(other.w, running.w), WORKER_OK) << "a running sink is fine";
    ASSERT_EQ(other.start(), WORKER_OK);
    ASSERT_TRUE(running.rec->wait_finished());
    EXPECT_EQ(got.last_rc, WORKER_EOF);
}
