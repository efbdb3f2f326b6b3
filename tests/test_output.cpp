// Worker output: lines printed to worker_stdout()/worker_stderr() arrive as
// OUTPUT events, in order with the worker's other events.
#include "harness.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <string>

using namespace th;

namespace {

std::vector<std::string> lines(const Recorder &r, const char *stream = nullptr) {
    std::vector<std::string> out;
    for (auto &e : r.events())
        if (e.type == WORKER_EV_OUTPUT && (!stream || e.name == stream)) out.push_back(e.message);
    return out;
}

worker *run(worker_fn fn, const worker_options *o = nullptr) {
    worker *w = worker_create(fn, nullptr, nullptr, o);
    EXPECT_NE(w, nullptr);
    return w;
}

}  // namespace

TEST(Output, LinesArriveInOrderWithStreamNames) {
    worker *w = run([](worker_ctx *ctx, void *) {
        FILE *out = worker_stdout(ctx), *err = worker_stderr(ctx);
        ASSERT_NE(out, nullptr);
        for (int epoch = 0; epoch < 3; epoch++) fprintf(out, "epoch %d loss %g\n", epoch, 1.0 / (epoch + 1));
        fputs("bad pixel\n", err);
        EXPECT_EQ(worker_stdout(ctx), out) << "one stream per worker";
    });
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(lines(r, "stdout"), (std::vector<std::string>{"epoch 0 loss 1", "epoch 1 loss 0.5",
                                                             "epoch 2 loss 0.333333"}));
    EXPECT_EQ(lines(r, "stderr"), std::vector<std::string>{"bad pixel"});
    for (auto &e : r.events())
        if (e.type == WORKER_EV_OUTPUT) {
            EXPECT_EQ(e.code, e.name == "stderr" ? 2 : 1);
        }
    worker_unref(w);
}

TEST(Output, InterleavesWithYieldsInProductionOrder) {
    reset_payloads();
    worker *w = run([](worker_ctx *ctx, void *) {
        FILE *out = worker_stdout(ctx);
        for (int i = 0; i < 3; i++) {
            fprintf(out, "before %d\n", i);
            worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
        }
    });
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    std::vector<std::string> seq;
    for (auto &e : r.events()) {
        if (e.type == WORKER_EV_OUTPUT) seq.push_back(e.message);
        if (e.type == WORKER_EV_YIELDED) seq.push_back("y" + std::to_string(e.value));
    }
    EXPECT_EQ(seq, (std::vector<std::string>{"before 0", "y0", "before 1", "y1", "before 2", "y2"}));
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Output, PartialLineIsFlushedWhenTheWorkerEnds) {
    worker *w = run([](worker_ctx *ctx, void *) {
        fputs("done: 100%", worker_stdout(ctx));  // no newline
        worker_return(ctx, nullptr, nullptr);
    });
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(lines(r), std::vector<std::string>{"done: 100%"});
    // The last line comes before the outcome.
    auto types = r.types();
    ASSERT_GE(types.size(), 4u);
    EXPECT_EQ(types[types.size() - 3], WORKER_EV_OUTPUT);
    worker_unref(w);
}

TEST(Output, VeryLongLinesAreSplitNotLost) {
    worker *w = run([](worker_ctx *ctx, void *) {
        std::string big(WORKER_MAX_LINE * 2 + 10, 'x');
        fprintf(worker_stdout(ctx), "%s\nshort\n", big.c_str());
    });
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    auto got = lines(r);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].size(), (size_t)WORKER_MAX_LINE);
    EXPECT_EQ(got[1].size(), (size_t)WORKER_MAX_LINE);
    EXPECT_EQ(got[2], std::string(10, 'x'));
    EXPECT_EQ(got[3], "short");
    worker_unref(w);
}

// A line of exactly WORKER_MAX_LINE characters (or a multiple) is not
// longer than the longest: it ends at its newline, with no empty piece
// after it (an outside attack program saw one), written at once or a
// character at a time.
TEST(Output, LinesOfExactlyTheMaximumLengthGetNoEmptyPieceAfterThem) {
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        worker *w = worker_create(
            [](worker_ctx *ctx, void *arg) {
                FILE *out = worker_stdout(ctx);
                for (size_t n : {size_t(WORKER_MAX_LINE), size_t(WORKER_MAX_LINE) * 2}) {
                    std::string line(n, 'x');
                    if (arg)
                        for (char c : line) fputc(c, out);
                    else
                        fputs(line.c_str(), out);
                    fputs("\nnext\n", out);
                }
            },
            bytewise ? &bytewise : nullptr, nullptr, nullptr);
        ASSERT_NE(w, nullptr);
        Recorder r(w);
        worker_start(w);
        ASSERT_TRUE(r.wait_finished());
        std::vector<size_t> sizes;
        for (const std::string &l : lines(r)) sizes.push_back(l.size());
        const size_t m = WORKER_MAX_LINE;
        EXPECT_EQ(sizes, (std::vector<size_t>{m, 4, m, m, 4})) << "bytewise " << bytewise;
        worker_unref(w);
    }
}

TEST(Output, FloodStaysBoundedEvenUnderQueueAndLosesNothing) {
    worker_options o;
    worker_options_init(&o);
    o.policy = WORKER_QUEUE;
    o.capacity = 16;
    static std::atomic<int> printed{0};
    printed = 0;
    worker *w = run([](worker_ctx *ctx, void *) {
        for (int i = 0; i < 2000; i++) {
            fprintf(worker_stdout(ctx), "%d\n", i);
            printed = i + 1;
        }
    }, &o);
    Recorder r(w);
    worker_start(w);
    // Nobody drains: the writer must stop near the capacity.
    auto t0 = std::chrono::steady_clock::now();
    while (printed < 16 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_LE(printed.load(), 17) << "output must not grow without bound";
    ASSERT_TRUE(r.wait_finished());
    auto got = lines(r);
    ASSERT_EQ(got.size(), 2000u);
    for (int i = 0; i < 2000; i++) EXPECT_EQ(got[i], std::to_string(i));
    worker_unref(w);
}

TEST(Output, NullOutsideTheWorkerFunction) {
    static worker_ctx *kept = nullptr;
    worker *w = run([](worker_ctx *ctx, void *) { kept = ctx; });
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(worker_stdout(kept), nullptr);
    EXPECT_EQ(worker_stderr(nullptr), nullptr);
    worker_unref(w);
}
