// Process workers in command queues and pipelines: worker_receive inside a
// module (values are worker_bytes *), worker_close_input passed on to the
// helper, and a process worker as either end of a pipe (in order, bounded,
// stopped with its sink). Modules: tests/process_modules/procmods.c.
#include "harness.h"

#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unistd.h>

using namespace th;

namespace {

const std::string kMods = process_module("procmods.so");

std::atomic<int> bytes_alive{0};  // worker_bytes this test made, not yet freed
worker_bytes *counted_int(int v) {
    bytes_alive++;
    return worker_bytes_copy(&v, sizeof v);
}
void counted_free(void *p) {
    bytes_alive--;
    worker_bytes_free(p);
}

// A value as the integer it holds: 4 bytes (int) or 8 (u64 from pm_count).
long long as_number(const worker_bytes *b) {
    if (!b) return -1;
    if (b->size == sizeof(int)) {
        int v;
        std::memcpy(&v, b->data, sizeof v);
        return v;
    }
    uint64_t v = 0;
    if (b->size == sizeof v) std::memcpy(&v, b->data, sizeof v);
    return (long long)v;
}

// A process worker and what it delivered: its yields as numbers, its
// returned text, its events in order.
struct ProcSink {
    worker *w = nullptr;
    std::vector<long long> yields;
    std::string returned;
    std::vector<worker_event_type> types;

    ProcSink(const char *symbol, const void *arg = nullptr, size_t size = 0,
             const worker_options *o = nullptr) {
        w = worker_create_process(kMods.c_str(), symbol, arg, size, o, nullptr);
        EXPECT_NE(w, nullptr);
        for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
            worker_connect(w, (worker_event_type)t, record, this, nullptr);
    }
    ~ProcSink() {
        worker_quit(w);
        if (started) EXPECT_TRUE(pump_until([this] { return finished(); }, 15000));
        worker_unref(w);
    }
    int start() {
        started = true;
        return worker_start(w);
    }
    bool finished() const {
        return !types.empty() && types.back() == WORKER_EV_FINISHED;
    }
    worker_event_type outcome() const { return types.size() >= 2 ? types[types.size() - 2] : WORKER_EV_STARTED; }
    static void record(worker_event *ev, void *self) {
        auto *s = static_cast<ProcSink *>(self);
        s->types.push_back(ev->type);
        auto *b = static_cast<worker_bytes *>(ev->value);
        if (ev->type == WORKER_EV_YIELDED) s->yields.push_back(as_number(b));
        if (ev->type == WORKER_EV_RETURNED && b)
            s->returned.assign(reinterpret_cast<const char *>(b->data), b->size);
    }
    bool started = false;
};

// Yields counted ints 0..n-1 (n < 0: until refused); counts completed yields.
struct BytesSource {
    int n;
    std::atomic<int> yielded{0};
    Body body() {
        return [this](worker_ctx *ctx) {
            for (int i = 0; n < 0 || i < n; i++) {
                if (worker_yield(ctx, counted_int(i), counted_free, nullptr, nullptr) != WORKER_OK)
                    return;
                yielded++;
            }
        };
    }
};

std::vector<long long> numbers(long long n) {
    std::vector<long long> v;
    for (long long i = 0; i < n; i++) v.push_back(i);
    return v;
}

}  // namespace

TEST(ProcessPipes, ModuleReceivesSendsInOrderUntilTheInputIsClosed) {
    {
        ProcSink sink("pm_receive_echo");
        for (int i = 0; i < 50; i++) ASSERT_EQ(worker_send(sink.w, counted_int(i), counted_free), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        for (int i = 50; i < 60; i++) ASSERT_EQ(worker_send(sink.w, counted_int(i), counted_free), WORKER_OK);
        ASSERT_EQ(worker_close_input(sink.w), WORKER_OK);
        EXPECT_EQ(worker_send(sink.w, counted_int(99), counted_free), WORKER_ESTATE);
        ASSERT_TRUE(pump_until([&] { return sink.finished(); }, 15000));
        EXPECT_EQ(sink.yields, numbers(60));
        EXPECT_EQ(sink.returned, "eof") << "worker_receive in the module gave WORKER_EOF";
    }
    EXPECT_EQ(bytes_alive.load(), 0);
}

TEST(ProcessPipes, QuitWakesAModuleWaitingInReceive) {
    ProcSink sink("pm_receive_echo");
    ASSERT_EQ(sink.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return !sink.types.empty(); }));  // STARTED: it runs
    HangGuard guard("quit of a process worker waiting in worker_receive");
    ASSERT_EQ(worker_quit(sink.w), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return sink.finished(); }, 15000));
    EXPECT_EQ(sink.outcome(), WORKER_EV_ABORTED);
}

TEST(ProcessPipes, ThreadSourceIntoAProcessSinkInOrder) {
    reset_payloads();
    {
        ProcSink sink("pm_receive_echo");
        BytesSource src{2000};
        auto o = policy_options(WORKER_BLOCK, 4);
        Job job(src.body(), &o);
        ASSERT_EQ(worker_pipe(job.w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(job.start(), WORKER_OK);
        HangGuard guard("a thread source into a process sink");
        ASSERT_TRUE(pump_until([&] { return sink.finished(); }, 30000));
        EXPECT_EQ(sink.yields, numbers(2000));
        EXPECT_EQ(sink.returned, "eof") << "the source ended: the helper's input closed";
        ASSERT_TRUE(job.rec->wait_finished());
        EXPECT_EQ(job.rec->outcome(), WORKER_EV_RETURNED);
    }
    EXPECT_EQ(bytes_alive.load(), 0);
}

// The link counts a value unreceived until the helper's function took it: a
// paused process sink holds a BLOCK source at exactly its capacity.
TEST(ProcessPipes, APausedProcessSinkHoldsItsSourceAtCapacity) {
    reset_payloads();
    {
        ProcSink sink("pm_receive_echo");
        BytesSource src{-1};
        auto o = policy_options(WORKER_BLOCK, 3);
        Job job(src.body(), &o);
        ASSERT_EQ(worker_pipe(job.w, sink.w), WORKER_OK);
        ASSERT_EQ(worker_pause(sink.w), WORKER_OK);  // parks at its first receive
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(job.start(), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return src.yielded.load() >= 3; }));
        pump_for(200);  // room to run past the bound if it were broken
        EXPECT_EQ(src.yielded.load(), 3);
        ASSERT_EQ(worker_resume(sink.w), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return sink.yields.size() >= 100; }, 15000));
        HangGuard guard("quitting a process sink stops its source");
        ASSERT_EQ(worker_quit(sink.w), WORKER_OK);
        ASSERT_TRUE(job.rec->wait_finished());
        EXPECT_EQ(job.rec->outcome(), WORKER_EV_ABORTED);
        ASSERT_TRUE(pump_until([&] { return sink.finished(); }, 15000));
        std::vector<long long> got = sink.yields;
        EXPECT_EQ(got, numbers((long long)got.size())) << "in order, nothing lost";
    }
    EXPECT_EQ(bytes_alive.load(), 0) << "values left in the link and the helper destroyed";
}

TEST(ProcessPipes, ProcessSourceIntoAThreadSink) {
    reset_payloads();
    uint64_t n = 500;
    std::vector<long long> got;
    int last = 0;
    Job sink([&](worker_ctx *ctx) {
        void *v;
        worker_destroy_fn d;
        while ((last = worker_receive(ctx, &v, &d, -1)) == WORKER_RECEIVED) {
            got.push_back(as_number(static_cast<worker_bytes *>(v)));
            if (d) d(v);
        }
    });
    {
        auto o = policy_options(WORKER_BLOCK, 4);
        ProcSink src("pm_count", &n, sizeof n, &o);
        ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
        ASSERT_TRUE(sink.rec->wait_finished(30000));
        ASSERT_TRUE(pump_until([&] { return src.finished(); }, 15000));
        EXPECT_EQ(src.yields.size(), 0u) << "its values went into the sink";
        EXPECT_EQ(src.outcome(), WORKER_EV_RETURNED);
    }
    EXPECT_EQ(got, numbers((long long)n));
    EXPECT_EQ(last, WORKER_EOF);
}

TEST(ProcessPipes, ProcessIntoProcess) {
    uint64_t n = 300;
    auto o = policy_options(WORKER_BLOCK, 4);
    ProcSink src("pm_count", &n, sizeof n, &o);
    ProcSink sink("pm_receive_echo");
    ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
    ASSERT_EQ(sink.start(), WORKER_OK);
    ASSERT_EQ(src.start(), WORKER_OK);
    HangGuard guard("process into process");
    ASSERT_TRUE(pump_until([&] { return sink.finished(); }, 30000));
    EXPECT_EQ(sink.yields, numbers((long long)n));
    EXPECT_EQ(sink.returned, "eof");
}

TEST(ProcessPipes, LatestIntoAPausedProcessSinkKeepsTheNewest) {
    {
        ProcSink sink("pm_receive_echo");
        BytesSource src{1000};
        auto o = policy_options(WORKER_LATEST, 8);
        Job job(src.body(), &o);
        ASSERT_EQ(worker_pipe(job.w, sink.w), WORKER_OK);
        ASSERT_EQ(worker_pause(sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(job.start(), WORKER_OK);
        ASSERT_TRUE(job.rec->wait_finished());  // LATEST never waits
        ASSERT_EQ(worker_resume(sink.w), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return sink.finished(); }, 15000));
        // One value was already in the helper; the rest were replaced by the newest.
        ASSERT_GE(sink.yields.size(), 1u);
        ASSERT_LE(sink.yields.size(), 2u);
        EXPECT_EQ(sink.yields.back(), 999);
        EXPECT_GE(worker_dropped(job.w), 998);
        EXPECT_EQ(sink.returned, "eof");
    }
    EXPECT_EQ(bytes_alive.load(), 0);
}
