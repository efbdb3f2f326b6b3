// The memory budget for process workers: their `worker_bytes *` frames count
// their own size against capacity_bytes (issue 17), by descriptor (shared
// memory) and copied alike. The modules live in tests/process_modules.
#include "harness.h"

#include <QCoreApplication>

#include <cstdint>
#include <memory>

using namespace th;

namespace {

std::string procmods() {
    if (const char *dir = std::getenv("QTW_PROCESS_MODULES")) return std::string(dir) + "/procmods.so";
    return QCoreApplication::applicationDirPath().toStdString() + "/process_modules/procmods.so";
}

// A process worker yielding `count` frames of `size` bytes (pm_frames),
// recorded; quit, finished and unreferenced at the end of the test.
struct Frames {
    Frames(uint64_t count, uint64_t size, const worker_options &o) {
        uint64_t arg[2] = {count, size};
        w = worker_create_process(procmods().c_str(), "pm_frames", arg, sizeof arg, &o, nullptr);
        if (w) rec = std::make_unique<Recorder>(w, false);
    }
    ~Frames() {
        if (!w) return;
        worker_quit(w);
        EXPECT_TRUE(rec->wait_finished(15000));
        worker_unref(w);
    }
    size_t bytes() const {
        size_t b = 0;
        EXPECT_EQ(worker_backlog(w, nullptr, &b), WORKER_OK);
        return b;
    }
    size_t entries() const {
        size_t n = 0;
        EXPECT_EQ(worker_backlog(w, &n, nullptr), WORKER_OK);
        return n;
    }
    worker *w = nullptr;
    std::unique_ptr<Recorder> rec;
};

worker_options options(size_t capacity, size_t capacity_bytes) {
    worker_options o;
    worker_options_init(&o);
    o.capacity = capacity;
    o.capacity_bytes = capacity_bytes;
    return o;
}

// The GUI falls behind: the proxy stops at the budget, exactly, and stays.
void expect_stops_at(Frames &f, size_t bytes, size_t entries) {
    EXPECT_TRUE(wait_no_pump([&] { return f.bytes() == bytes; }, 15000)) << f.bytes();
    wait_no_pump([] { return false; }, 100);
    EXPECT_EQ(f.bytes(), bytes);
    EXPECT_EQ(f.entries(), entries);
}

}  // namespace

TEST(BudgetProcess, SharedMemoryFramesCountTheirSize) {
    constexpr size_t kFrame = 256 * 1024, kBudget = 4 * kFrame;
    worker_options o = options(1024, kBudget);
    Frames f(40, kFrame, o);
    ASSERT_NE(f.w, nullptr);
    size_t most = 0;
    bool sized = true;
    f.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        size_t b = f.bytes();
        most = std::max(most, b);
        sized = sized && b % kFrame == 0 && static_cast<worker_bytes *>(ev->value)->size == kFrame;
    });
    ASSERT_EQ(worker_start(f.w), WORKER_OK);
    expect_stops_at(f, kBudget, 4);
    ASSERT_TRUE(f.rec->wait_finished(15000));
    EXPECT_EQ(f.rec->count(WORKER_EV_YIELDED), 40);
    EXPECT_LE(most, kBudget);
    EXPECT_TRUE(sized);
    EXPECT_EQ(f.bytes(), 0u);
}

// `count` frames of `size` bytes: the proxy stops at `frames` of them (the
// budget or the entry capacity), then everything arrives.
void expect_frames_stop_and_arrive(uint64_t count, size_t size, size_t capacity,
                                   size_t capacity_bytes, size_t frames) {
    Frames f(count, size, options(capacity, capacity_bytes));
    ASSERT_NE(f.w, nullptr);
    ASSERT_EQ(worker_start(f.w), WORKER_OK);
    expect_stops_at(f, frames * size, frames);
    ASSERT_TRUE(f.rec->wait_finished(15000));
    EXPECT_EQ(f.rec->count(WORKER_EV_YIELDED), (int)count);
}

TEST(BudgetProcess, CopiedFramesCountTheirSizeToo) {
    expect_frames_stop_and_arrive(100, 1000, 1024, 10 * 1000, 10);
}

TEST(BudgetProcess, WithoutABudgetTheBacklogStillShowsBytes) {
    expect_frames_stop_and_arrive(20, 128 * 1024, 3, 0, 3);
}

TEST(BudgetProcess, AFrameLargerThanTheBudgetGetsThrough) {
    constexpr size_t kFrame = 2 * 1024 * 1024;
    worker_options o = options(1024, kFrame / 4);
    Frames f(6, kFrame, o);
    ASSERT_NE(f.w, nullptr);
    size_t most = 0;
    f.rec->on(WORKER_EV_YIELDED, [&](worker_event *) { most = std::max(most, f.bytes()); });
    HangGuard guard("oversized process frames");
    ASSERT_EQ(worker_start(f.w), WORKER_OK);
    ASSERT_TRUE(f.rec->wait_finished(15000));
    EXPECT_EQ(f.rec->count(WORKER_EV_YIELDED), 6);
    EXPECT_EQ(most, kFrame) << "one at a time";
}
