// Process workers next to thread workers: yield throughput (8-byte values)
// and 1 MiB frame throughput, producer flat out, a GUI callback that reads one
// byte per 4 KiB page. Timed from worker_start to FINISHED, start-up
// included (timing from the first value let a producer that ran ahead of a
// late first delivery inflate the rate); the start-up, worker_start to the
// first value, is reported too. Median of runs.
//   bench_process ROW [runs=N]     one JSON line (run_bench.py reads it)
//   bench_process list [runs=N]    every row, as a table
// QT_QPA_PLATFORM=offscreen. The modules come from QTW_PROCESS_MODULES.
#include <qtworker.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kValues = 200000;
constexpr uint64_t kFrames = 1024;
constexpr uint64_t kFrameSize = 1 << 20;

using Clock = std::chrono::steady_clock;

struct Run {
    bool done = false;
    uint64_t n = 0, sink = 0;
    Clock::time_point first;
};

void on_yield(worker_event *ev, void *ud) {
    auto *r = static_cast<Run *>(ud);
    if (r->n++ == 0) r->first = Clock::now();
    if (auto *b = static_cast<worker_bytes *>(ev->value))
        for (size_t off = 0; off < b->size; off += 4096) r->sink += b->data[off];
}

void on_finished(worker_event *, void *ud) { static_cast<Run *>(ud)->done = true; }

// Values per second, worker_start to FINISHED; the start-up in *startup_ms.
double time_worker(worker *w, double *startup_ms) {
    Run r;
    worker_connect(w, WORKER_EV_YIELDED, on_yield, &r, nullptr);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, &r, nullptr);
    auto t0 = Clock::now();
    worker_start(w);
    while (!r.done) worker_app_process_events(5);
    auto t1 = Clock::now();
    worker_unref(w);
    *startup_ms = std::chrono::duration<double, std::milli>(r.first - t0).count();
    return r.n / std::chrono::duration<double>(t1 - t0).count();
}

// ---- thread-worker baselines: the same values, made the same way

void heap_bytes_free(void *p) {
    auto *b = static_cast<worker_bytes *>(p);
    std::free(b->data);
    std::free(b);
}

void thread_count(worker_ctx *ctx, void *) {
    for (uint64_t i = 0; i < kValues; i++)
        if (worker_yield(ctx, worker_bytes_copy(&i, sizeof i), worker_bytes_free, nullptr, nullptr))
            return;
}

void thread_frames(worker_ctx *ctx, void *) {
    for (uint64_t i = 0; i < kFrames; i++) {
        auto *f = static_cast<worker_bytes *>(std::malloc(sizeof(worker_bytes)));
        f->size = kFrameSize;
        f->data = static_cast<unsigned char *>(std::malloc(kFrameSize));
        for (size_t off = 0; off < kFrameSize; off += 4096) f->data[off] = (unsigned char)i;
        if (worker_yield(ctx, f, heap_bytes_free, nullptr, nullptr)) return;
    }
}

// Frames: a viewer bounds what is in flight (capacity 16 of 1 MiB frames),
// which also lets the helper reuse the frames the GUI has freed.
const worker_options *frame_options() {
    static worker_options o = [] {
        worker_options x;
        worker_options_init(&x);
        x.capacity = 16;
        return x;
    }();
    return &o;
}

worker *process(const char *symbol, uint64_t a, uint64_t b, const worker_options *o = nullptr) {
    uint64_t arg[2] = {a, b};
    std::string path = std::string(QTW_PROCESS_MODULES) + "/procmods.so";
    return worker_create_process(path.c_str(), symbol, arg, sizeof arg, o, nullptr);
}

worker *thread(worker_fn fn, const worker_options *o) {
    return worker_create(fn, nullptr, nullptr, o);
}

struct Row {
    const char *id;
    const char *name;
    worker *(*make)();
    bool frames;  // 1 MiB frames: MiB/s = values/s
};

const Row kRows[] = {
    {"thread-yield", "yield 8 B, thread worker", [] { return thread(thread_count, nullptr); }, false},
    {"process-yield", "yield 8 B, process worker",
     [] { return process("pm_count", kValues, 0); }, false},
    {"thread-frame", "1 MiB frame, thread worker (malloc)",
     [] { return thread(thread_frames, nullptr); }, true},
    {"process-frame", "1 MiB frame, process (worker_bytes_new: memfd, no copy)",
     [] { return process("pm_frames", kFrames, kFrameSize); }, true},
    {"process-frame-copy", "1 MiB frame, process (module malloc: one copy)",
     [] { return process("pm_frames_heap", kFrames, kFrameSize); }, true},
    {"thread-frame-cap16", "1 MiB frame, thread worker (malloc), capacity 16",
     [] { return thread(thread_frames, frame_options()); }, true},
    {"process-frame-cap16", "1 MiB frame, process (no copy), capacity 16",
     [] { return process("pm_frames", kFrames, kFrameSize, frame_options()); }, true},
    {"process-frame-copy-cap16", "1 MiB frame, process (one copy), capacity 16",
     [] { return process("pm_frames_heap", kFrames, kFrameSize, frame_options()); }, true},
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Result {
    double rate = 0, start_ms = 0;
};

Result measure(const Row &row, int runs) {
    std::vector<double> rates, starts;
    for (int i = 0; i < runs; i++) {
        double startup;
        rates.push_back(time_worker(row.make(), &startup));
        starts.push_back(startup);
    }
    return {median(rates), median(starts)};
}

}  // namespace

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "list";
    int runs = 3;
    for (int i = 2; i < argc; i++)
        if (std::strncmp(argv[i], "runs=", 5) == 0) runs = std::max(1, std::atoi(argv[i] + 5));
    worker_app_init(&argc, argv);
    bool list = std::strcmp(which, "list") == 0;
    if (list) std::printf("%-58s %12s %10s\n", "row", "values/s", "start ms");
    for (const Row &row : kRows) {
        if (!list && std::strcmp(row.id, which) != 0) continue;
        Result r = measure(row, runs);
        if (list)
            std::printf("%-58s %12.0f %10.1f\n", row.name, r.rate, r.start_ms);
        else
            std::printf("{\"rate\": %.1f, \"mib_s\": %.1f, \"start_ms\": %.2f, \"runs\": %d}\n",
                        r.rate, row.frames ? r.rate : 0.0, r.start_ms, runs);
        std::fflush(stdout);
        if (!list) return 0;
    }
    if (list) return 0;
    std::fprintf(stderr, "bench_process: unknown row '%s' (try 'list')\n", which);
    return 2;
}
