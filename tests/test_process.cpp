// Process workers (worker_create_process): the same events and owner-side API
// as a thread worker, with the function in a helper process — a crash becomes
// ERRORED, a function that never checks for quit is killed after the grace
// period, and nothing is left behind (no zombie, no descriptor, no mapping).
// The worker modules live in tests/process_modules (built next to this test).
#include "harness.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

extern char **environ;

using namespace th;

namespace {

// ---- where the modules are: $QTW_PROCESS_MODULES, else next to this test
const std::string kMods = process_module("procmods.so");

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#else
    return std::getenv("ASAN_OPTIONS") != nullptr;
#endif
}

// ---- what leaks would show as
int open_fds() {
    int n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (readdir(d)) n++;
        closedir(d);
    }
    return n - 3;  // ".", ".." and the directory's own descriptor
}

// Received shared buffers are memfd mappings: count them.
int memfd_mappings() {
    std::ifstream maps("/proc/self/maps");
    int n = 0;
    for (std::string line; std::getline(maps, line);)
        n += line.find("memfd:qtworker-bytes") != std::string::npos;
    return n;
}

// Whether addr lies in a memfd mapping (a received frame was mapped, not copied).
bool in_memfd_mapping(const void *addr) {
    std::ifstream maps("/proc/self/maps");
    auto a = reinterpret_cast<uintptr_t>(addr);
    for (std::string line; std::getline(maps, line);) {
        uintptr_t lo, hi;
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi)
            return line.find("memfd:qtworker-bytes") != std::string::npos;
    }
    return false;
}

// Gone for good: not running, not a zombie, not ours to wait for.
bool process_gone(long pid) {
    if (pid <= 0) return false;
    int status;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH &&
           waitpid((pid_t)pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

// ---- values: worker_bytes, counted when the test makes them
std::atomic<int> made_alive{0};
worker_bytes *made(const void *data, size_t size) {
    made_alive++;
    return worker_bytes_copy(data, size);
}
worker_bytes *made_int(int v) { return made(&v, sizeof v); }
void made_free(void *p) {
    made_alive--;
    worker_bytes_free(p);
}

// ---- one recorded event, its value copied out as bytes
struct Ev {
    explicit Ev(worker_event_type t) : type(t) {}
    worker_event_type type;
    bool has_value = false;
    std::string bytes;
    int code = 0;
    std::string message, name;
    long long done = 0, total = 0;
    int as_int() const {
        int v = -1;
        if (bytes.size() == sizeof v) std::memcpy(&v, bytes.data(), sizeof v);
        return v;
    }
};

class Rec {
public:
    explicit Rec(worker *w) {
        for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
            EXPECT_GT(worker_connect(w, (worker_event_type)t, cb, this, nullptr), 0);
    }
    std::vector<Ev> ev;
    std::function<void(worker_event *)> hook;  // runs for every event, after recording

    bool finished() const { return count(WORKER_EV_FINISHED) > 0; }
    bool wait_finished(int ms = 10000) {
        bool ok = pump_until([this] { return finished(); }, ms);
        if (ok) expect_valid_order(types());
        return ok;
    }
    bool wait_for(worker_event_type t, int n = 1) {
        return pump_until([=] { return count(t) >= n; });
    }
    int count(worker_event_type t) const {
        int n = 0;
        for (auto &e : ev) n += e.type == t;
        return n;
    }
    std::vector<worker_event_type> types() const {
        std::vector<worker_event_type> out;
        for (auto &e : ev) out.push_back(e.type);
        return out;
    }
    std::vector<int> ints(worker_event_type t) const {
        std::vector<int> out;
        for (auto &e : ev)
            if (e.type == t && e.has_value) out.push_back(e.as_int());
        return out;
    }
    const Ev &first(worker_event_type t) const {
        for (auto &e : ev)
            if (e.type == t) return e;
        static const Ev none(WORKER_EV_STARTED);
        ADD_FAILURE() << "no " << type_name(t) << " event";
        return none;
    }
    worker_event_type outcome() const {
        return ev.size() >= 2 ? ev[ev.size() - 2].type : WORKER_EV_STARTED;
    }

private:
    static void cb(worker_event *e, void *self) {
        auto *r = static_cast<Rec *>(self);
        Ev x(e->type);
        if (auto *b = static_cast<worker_bytes *>(e->value)) {
            x.has_value = true;
            x.bytes.assign(reinterpret_cast<const char *>(b->data), b->size);
        }
        x.code = e->code;
        if (e->message) x.message = e->message;
        if (e->name) x.name = e->name;
        x.done = e->done;
        x.total = e->total;
        r->ev.push_back(std::move(x));
        if (r->hook) r->hook(e);
    }
};

// A process worker with a recorder; close() (also the destructor, e.g. after
// a failed ASSERT) quits it, waits for FINISHED and drops the reference.
struct Proc {
    Proc(const std::string &path, const char *symbol, const void *arg = nullptr, size_t size = 0,
         const worker_options *o = nullptr, const worker_process_options *po = nullptr) {
        w = worker_create_process(path.c_str(), symbol, arg, size, o, po);
        if (w) rec = std::make_unique<Rec>(w);
    }
    ~Proc() { close(); }
    void close() {
        if (!w) return;
        worker_quit(w);
        if (started) {
            EXPECT_TRUE(rec->wait_finished(15000)) << "never finished";
        }
        pid = worker_process_id(w);
        worker_unref(w);
        w = nullptr;
    }
    int start() {
        started = true;
        return worker_start(w);
    }
    worker *w = nullptr;
    std::unique_ptr<Rec> rec;
    bool started = false;
    long pid = 0;
};

worker_process_options grace(int ms) {
    worker_process_options po;
    worker_process_options_init(&po);
    po.kill_grace_ms = ms;
    return po;
}

std::vector<uint64_t> frames_arg(uint64_t count, uint64_t size) { return {count, size}; }

}  // namespace

TEST(Process, ReturnsItsArgumentAsBytesAndLeavesNoZombie) {
    Proc p(kMods, "pm_return_arg", "hello", 5);
    ASSERT_NE(p.w, nullptr);
    EXPECT_EQ(worker_process_id(p.w), 0);  // not spawned yet
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    EXPECT_EQ(p.rec->first(WORKER_EV_RETURNED).bytes, "echo:hello");
    long pid = worker_process_id(p.w);
    EXPECT_GT(pid, 0);
    EXPECT_NE(pid, (long)getpid());
    EXPECT_TRUE(process_gone(pid)) << "reaped before FINISHED";
    p.close();
}

TEST(Process, EveryEventKindIsRelayedInOrder) {
    Proc p(kMods, "pm_events");
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->types(),
              (Types{WORKER_EV_STARTED, WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_PROGRESS,
                     WORKER_EV_PROGRESS, WORKER_EV_CUSTOM, WORKER_EV_OUTPUT, WORKER_EV_OUTPUT,
                     WORKER_EV_YIELDED, WORKER_EV_YIELDED, WORKER_EV_RETURNED,
                     WORKER_EV_FINISHED}));
    const auto &e = p.rec->ev;
    ASSERT_EQ(e.size(), 12u);
    EXPECT_EQ(e[1].as_int(), 1);
    EXPECT_EQ(e[2].message, "careful 7");
    EXPECT_EQ(e[3].done, 1);
    EXPECT_EQ(e[3].total, 3);
    EXPECT_EQ(e[3].message, "step");
    EXPECT_EQ(e[4].done, 2);
    EXPECT_TRUE(e[4].message.empty());
    EXPECT_EQ(e[5].name, "custom");
    EXPECT_EQ(e[5].bytes, "c");
    EXPECT_EQ(e[6].name, "stdout");
    EXPECT_EQ(e[6].message, "hello");
    EXPECT_EQ(e[7].name, "stderr");
    EXPECT_EQ(e[7].message, "oops");
    EXPECT_FALSE(e[8].has_value);  // a NULL yield is a value too
    EXPECT_EQ(e[9].as_int(), 2);
    EXPECT_EQ(e[10].bytes, "done");
}

TEST(Process, SendsBeforeStartAreReceivedInOrderAtEachYield) {
    made_alive = 0;
    Proc p(kMods, "pm_echo");
    std::vector<int> sent;
    for (int i = 0; i < 50; i++) {
        sent.push_back(1000 + i);
        ASSERT_EQ(worker_send(p.w, made_int(1000 + i), made_free), WORKER_OK);
    }
    ASSERT_EQ(worker_send(p.w, nullptr, nullptr), WORKER_OK);  // NULL ends it
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    std::vector<int> yields;
    for (int i = 0; i <= 50; i++) yields.push_back(i);
    EXPECT_EQ(p.rec->ints(WORKER_EV_YIELDED), yields);  // one send received per yield
    EXPECT_EQ(p.rec->ints(WORKER_EV_CUSTOM), sent);
    EXPECT_EQ(p.rec->first(WORKER_EV_RETURNED).bytes, "bye");
    p.close();
    EXPECT_EQ(made_alive, 0) << "every sent value destroyed once forwarded";
}

TEST(Process, SendsWhileRunningRoundTripInOrder) {
    made_alive = 0;
    Proc p(kMods, "pm_echo");
    std::vector<int> sent;
    // Reply to every third yield, from the GUI thread, then end with NULL.
    p.rec->hook = [&](worker_event *ev) {
        if (ev->type != WORKER_EV_YIELDED || sent.size() > 20) return;
        int i;
        std::memcpy(&i, static_cast<worker_bytes *>(ev->value)->data, sizeof i);
        if (i % 3) return;
        if (sent.size() == 20) {
            worker_send(p.w, nullptr, nullptr);
            sent.push_back(-1);
            return;
        }
        sent.push_back(i * 10);
        worker_send(p.w, made_int(i * 10), made_free);
    };
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    sent.pop_back();
    EXPECT_EQ(p.rec->ints(WORKER_EV_CUSTOM), sent);
    std::vector<int> y = p.rec->ints(WORKER_EV_YIELDED);
    for (size_t i = 0; i < y.size(); i++) ASSERT_EQ(y[i], (int)i) << "yields in order, none lost";
    EXPECT_EQ(p.rec->outcome(), WORKER_EV_RETURNED);
    p.close();
    EXPECT_EQ(made_alive, 0);
}

TEST(Process, LargeFramesArriveMappedNotCopied) {
    int seen = 0, mapped = 0, intact = 0;
    auto arg = frames_arg(8, 1 << 20);
    Proc p(kMods, "pm_frames", arg.data(), arg.size() * sizeof(uint64_t));
    p.rec->hook = [&](worker_event *ev) {
        auto *b = static_cast<worker_bytes *>(ev->value);
        if (ev->type != WORKER_EV_YIELDED || !b) return;
        mapped += in_memfd_mapping(b->data);
        auto tag = (unsigned char)seen++;  // frame i is marked i on every page
        bool ok = b->size == (1u << 20) && b->data[b->size - 1] == tag;
        for (size_t off = 0; ok && off < b->size; off += 4096) ok = b->data[off] == tag;
        intact += ok;
    };
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->count(WORKER_EV_YIELDED), 8);
    EXPECT_EQ(intact, 8) << "every page of every frame, in order";
    EXPECT_EQ(mapped, 8) << "shared memory: the descriptor crossed, not the bytes";
    p.close();
    EXPECT_EQ(memfd_mappings(), 0) << "every frame unmapped after delivery";
}

TEST(Process, LargeBuffersTheModuleAllocatedAreCopiedOnce) {
    int intact = 0;
    auto arg = frames_arg(4, 300000);
    Proc p(kMods, "pm_frames_heap", arg.data(), arg.size() * sizeof(uint64_t));
    int seen = 0;
    p.rec->hook = [&](worker_event *ev) {
        auto *b = static_cast<worker_bytes *>(ev->value);
        if (ev->type != WORKER_EV_YIELDED || !b) return;
        auto tag = (unsigned char)seen++;
        bool ok = b->size == 300000 && b->data[b->size - 1] == tag;
        for (size_t off = 0; ok && off < b->size; off += 4096) ok = b->data[off] == tag;
        intact += ok;
    };
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(intact, 4);
    p.close();
    EXPECT_EQ(memfd_mappings(), 0);
}

TEST(Process, LargeSendsReachTheProcessIntact) {
    made_alive = 0;
    Proc p(kMods, "pm_echo");
    worker_bytes *shared = worker_bytes_new(1 << 20);  // memfd: passed as a descriptor
    for (size_t i = 0; i < shared->size; i++) shared->data[i] = (unsigned char)(i * 7);
    std::string expect_shared(reinterpret_cast<char *>(shared->data), shared->size);
    std::string big(200000, 'x');  // made by hand: copied into shared memory
    big[12345] = 'y';
    ASSERT_EQ(worker_send(p.w, shared, worker_bytes_free), WORKER_OK);
    ASSERT_EQ(worker_send(p.w, made(big.data(), big.size()), made_free), WORKER_OK);
    ASSERT_EQ(worker_send(p.w, nullptr, nullptr), WORKER_OK);
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    ASSERT_EQ(p.rec->count(WORKER_EV_CUSTOM), 2);
    int k = 0;
    for (auto &e : p.rec->ev)
        if (e.type == WORKER_EV_CUSTOM) {
            EXPECT_EQ(e.bytes, k++ == 0 ? expect_shared : big);
        }
    p.close();
    EXPECT_EQ(made_alive, 0);
    EXPECT_EQ(memfd_mappings(), 0);
}

// Backpressure crosses the boundary for frames too: with the GUI not
// pumping, the process runs only a few frames ahead of the stream's capacity
// (the socket alone would hold hundreds of descriptors: ~256 MiB here).
TEST(Process, LargeFramesInFlightAreBoundedWhenTheGuiFallsBehind) {
    char path[] = "/tmp/qtw_frames_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    std::string arg(16, '\0');
    uint64_t count_size[2] = {100000, 1 << 20};
    std::memcpy(&arg[0], count_size, 16);
    arg += path;
    worker_options o;
    worker_options_init(&o);
    o.capacity = 4;
    Proc p(kMods, "pm_frames_counted", arg.data(), arg.size(), &o);
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED));
    auto made = [&] {
        long n = 0;
        if (FILE *f = std::fopen(path, "r")) {
            if (std::fscanf(f, "%ld", &n) != 1) n = 0;
            std::fclose(f);
        }
        return n;
    };
    wait_no_pump([&] { return false; }, 400);  // the GUI falls behind
    long made_then = made();
    wait_no_pump([&] { return false; }, 200);
    EXPECT_EQ(made(), made_then) << "the process waits";
    // Undelivered: capacity 4 here, 4 in the helper's stream, the window of 4,
    // one in each hand. Without the window this is ~290 (the socket's share).
    long undelivered = made_then - p.rec->count(WORKER_EV_YIELDED);
    EXPECT_LE(undelivered, 20) << "frames made that nobody took";
    p.close();
    std::remove(path);
}

TEST(Process, FailIsErroredWithItsCodeAndMessage) {
    Proc p(kMods, "pm_fail");
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_ERRORED, WORKER_EV_FINISHED}));
    EXPECT_EQ(p.rec->first(WORKER_EV_ERRORED).code, 7);
    EXPECT_EQ(p.rec->first(WORKER_EV_ERRORED).message, "bad input");
}

// Its function lives in the helper process: the home thread cannot run it.
TEST(Process, CallHomeIsRefusedWithEinval) {
    Proc p(kMods, "pm_call_home");
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->first(WORKER_EV_ERRORED).code, WORKER_EINVAL);
    EXPECT_EQ(p.rec->first(WORKER_EV_ERRORED).message, "call_home cleared result");
}

TEST(Process, CrashIsErroredWithTheSignalAndLastStderrLinesThenFinished) {
    int32_t steps = 3;
    worker_process_options po;
    worker_process_options_init(&po);
    po.stderr_lines = 60;  // room for a sanitizer's report after the module's lines
    Proc p(process_module("crash_plugin.so"), "crashy_plugin_run", &steps, sizeof steps, nullptr, &po);
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->count(WORKER_EV_YIELDED), 3) << "what it yielded before crashing arrives";
    EXPECT_EQ(p.rec->count(WORKER_EV_PROGRESS), 3);
    ASSERT_EQ(p.rec->outcome(), WORKER_EV_ERRORED);
    const Ev &err = p.rec->first(WORKER_EV_ERRORED);
    // Sanitized, the module's crash ends in ASan's SEGV report or, when UBSan
    // halts on errors (as in CI), in UBSan's null-pointer report: exit 1.
    bool named = err.message.find("SEGV") != std::string::npos ||
                 (sanitized() && err.message.find("null pointer") != std::string::npos);
    EXPECT_TRUE(named) << err.message;
    if (!sanitized()) {  // ASan turns the signal into its own report and exit 1
        EXPECT_EQ(err.code, SIGSEGV);
        EXPECT_NE(err.message.find("killed by SIGSEGV (Segmentation fault)"), std::string::npos)
            << err.message;
    }
    EXPECT_NE(err.message.find("crashy: step 3 of 3"), std::string::npos) << err.message;
    EXPECT_NE(err.message.find("crashy: about to dereference NULL"), std::string::npos)
        << err.message;
    EXPECT_NE(err.message.find("process 'worker-"), std::string::npos) << "names the worker";
    long pid = worker_process_id(p.w);
    EXPECT_TRUE(process_gone(pid));
}

TEST(Process, StuckFunctionIsKilledAfterTheGracePeriodOnQuit) {
    const int grace_ms = 300;
    worker_process_options po = grace(grace_ms);
    Proc p(process_module("stuck_plugin.so"), "stubborn_plugin_run", nullptr, 0, nullptr, &po);
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED)) << "the function runs";
    long pid = worker_process_id(p.w);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(worker_quit(p.w), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(ms, grace_ms - 20) << "asked first, killed only after the grace period";
    EXPECT_LT(ms, grace_ms + 8000) << "killed, not left running";
    EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
    ASSERT_EQ(p.rec->count(WORKER_EV_WARNED), 1);
    EXPECT_NE(p.rec->first(WORKER_EV_WARNED).message.find("killed"), std::string::npos);
    EXPECT_TRUE(process_gone(pid));
}

TEST(Process, CooperativeQuitEndsWithoutAKill) {
    Proc p(kMods, "pm_ticker");
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED, 3));
    ASSERT_EQ(worker_quit(p.w), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
    EXPECT_EQ(p.rec->count(WORKER_EV_WARNED), 0) << "it ended on its own";
    EXPECT_EQ(p.rec->count(WORKER_EV_ERRORED), 0);
}

TEST(Process, QuitWhileTheProcessStartsIsAbortedNotErrored) {
    for (int i = 0; i < 4; i++) {
        Proc p(kMods, "pm_ticker");
        // STARTED is delivered while the proxy spawns the helper / sends INIT.
        p.rec->hook = [&](worker_event *ev) {
            if (ev->type == WORKER_EV_STARTED) worker_quit(p.w);
        };
        ASSERT_EQ(p.start(), WORKER_OK);
        ASSERT_TRUE(p.rec->wait_finished());
        EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
        EXPECT_EQ(p.rec->count(WORKER_EV_WARNED), 0) << "ended on its own, not killed";
    }
}

TEST(Process, PauseParksTheFunctionInTheProcessAndResumeContinues) {
    Proc p(kMods, "pm_ticker");
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED, 3));
    ASSERT_EQ(worker_pause(p.w), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_PAUSED));
    EXPECT_TRUE(worker_is_paused(p.w));
    int before = p.rec->count(WORKER_EV_YIELDED);
    pump_for(150);  // a ticker that still ran would yield ~70 values now
    EXPECT_EQ(p.rec->count(WORKER_EV_YIELDED), before) << "parked: nothing after PAUSED";
    ASSERT_EQ(worker_resume(p.w), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_RESUMED));
    ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED, before + 3));
    p.close();
    std::vector<int> y = p.rec->ints(WORKER_EV_YIELDED);
    for (size_t i = 0; i < y.size(); i++)
        ASSERT_EQ(y[i], (int)i) << "nothing lost across the pause";
    auto t = p.rec->types();
    auto paused = std::find(t.begin(), t.end(), WORKER_EV_PAUSED);
    ASSERT_NE(paused, t.end());
    EXPECT_EQ(*(paused + 1), WORKER_EV_RESUMED) << "no event between PAUSED and RESUMED";
}

TEST(Process, ExitWithoutOutcomeIsErroredWithTheStatus) {
    Proc p(kMods, "pm_exit");
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    ASSERT_EQ(p.rec->outcome(), WORKER_EV_ERRORED);
    const Ev &err = p.rec->first(WORKER_EV_ERRORED);
    EXPECT_EQ(err.code, 3);
    EXPECT_NE(err.message.find("exited with status 3"), std::string::npos) << err.message;
    EXPECT_NE(err.message.find("pm_exit: leaving with status 3"), std::string::npos) << err.message;
}

TEST(Process, MissingModuleOrSymbolIsErroredWithTheReason) {
    Proc missing(process_module("no_such_module.so"), "f");
    Proc nosym(kMods, "no_such_function");
    ASSERT_EQ(missing.start(), WORKER_OK);
    ASSERT_EQ(nosym.start(), WORKER_OK);
    ASSERT_TRUE(missing.rec->wait_finished());
    ASSERT_TRUE(nosym.rec->wait_finished());
    const Ev &a = missing.rec->first(WORKER_EV_ERRORED);
    EXPECT_EQ(a.code, WORKER_EINVAL);
    EXPECT_NE(a.message.find("cannot load module"), std::string::npos) << a.message;
    EXPECT_NE(a.message.find("no_such_module.so"), std::string::npos) << a.message;
    const Ev &b = nosym.rec->first(WORKER_EV_ERRORED);
    EXPECT_EQ(b.code, WORKER_EINVAL);
    EXPECT_NE(b.message.find("has no function 'no_such_function'"), std::string::npos) << b.message;
}

TEST(Process, MissingHelperProgramIsErroredWithTheReason) {
    setenv("QTWORKER_PROCD", "/nonexistent/qtworker-procd", 1);  // before the proxy runs
    Proc p(kMods, "pm_return_arg");
    ASSERT_EQ(p.start(), WORKER_OK);
    bool done = p.rec->wait_finished();
    unsetenv("QTWORKER_PROCD");
    ASSERT_TRUE(done);
    const Ev &e = p.rec->first(WORKER_EV_ERRORED);
    EXPECT_EQ(e.code, WORKER_EINVAL);
    EXPECT_NE(e.message.find("cannot start the helper program /nonexistent/qtworker-procd"),
              std::string::npos) << e.message;
    EXPECT_EQ(worker_process_id(p.w), 0);
}

TEST(Process, CreateRejectsBadInput) {
    worker_process_options bad = grace(-1);
    worker_options big;
    worker_options_init(&big);
    big.capacity = WORKER_MAX_CAPACITY + 1u;
    EXPECT_EQ(worker_create_process(nullptr, "f", nullptr, 0, nullptr, nullptr), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_EINVAL);
    EXPECT_EQ(worker_create_process("", "f", nullptr, 0, nullptr, nullptr), nullptr);
    EXPECT_EQ(worker_create_process(kMods.c_str(), "", nullptr, 0, nullptr, nullptr), nullptr);
    EXPECT_EQ(worker_create_process(kMods.c_str(), "f", nullptr, 3, nullptr, nullptr), nullptr);
    EXPECT_EQ(worker_create_process(kMods.c_str(), "f", nullptr, 0, nullptr, &bad), nullptr);
    EXPECT_EQ(worker_create_process(kMods.c_str(), "f", nullptr, 0, &big, nullptr), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_EINVAL);
    EXPECT_EQ(worker_process_id(nullptr), WORKER_EINVAL);
    worker *t = worker_create([](worker_ctx *, void *) {}, nullptr, nullptr, nullptr);
    EXPECT_EQ(worker_process_id(t), WORKER_EINVAL) << "a thread worker has no process";
    worker_unref(t);
}

TEST(Process, TimeoutOptionQuitsTheProcess) {
    worker_options o;
    worker_options_init(&o);
    o.timeout_ms = 200;
    worker_process_options po = grace(100);
    Proc p(process_module("stuck_plugin.so"), "stubborn_plugin_run", nullptr, 0, &o, &po);
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
    EXPECT_EQ(p.rec->ev[p.rec->ev.size() - 2].code, WORKER_ETIMEDOUT);
}

TEST(Process, AutoProgressCountsRelayedYields) {
    worker_options o;
    worker_options_init(&o);
    o.progress_total = 3;
    uint64_t n = 5;
    Proc p(kMods, "pm_count", &n, sizeof n, &o);
    ASSERT_EQ(p.start(), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished());
    std::vector<long long> done, total;
    for (auto &e : p.rec->ev)
        if (e.type == WORKER_EV_PROGRESS) {
            done.push_back(e.done);
            total.push_back(e.total);
        }
    EXPECT_EQ(done, (std::vector<long long>{1, 2, 3, 4, 5}));
    EXPECT_EQ(total, (std::vector<long long>{3, 3, 3, 0, 0}));
}

// The helper's tally file of pm_frames_tallied: made, destroyed, returned.
struct Tally {
    long made = -1, destroyed = -1, returned = -1;
};
Tally read_tally(const char *path) {
    Tally t;
    if (FILE *f = std::fopen(path, "r")) {
        if (std::fscanf(f, "%ld %ld %ld", &t.made, &t.destroyed, &t.returned) != 3) t = Tally{};
        std::fclose(f);
    }
    return t;
}

// Issue #14: a quit while the stream of frames is full (the GUI not
// draining) must end the process on its own, at once: the function returns
// on WORKER_ABORTED, so nothing may keep the helper waiting for the parent
// (flow-control credits) until the grace period's SIGKILL.
TEST(Process, QuitWithAFullStreamOfFramesEndsWithoutAKill) {
    int fds = open_fds();
    char path[] = "/tmp/qtw_tally_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    std::string arg(16, '\0');
    uint64_t count_size[2] = {1000000, 1 << 20};
    std::memcpy(&arg[0], count_size, 16);
    arg += path;
    worker_options o;
    worker_options_init(&o);
    o.capacity = 2;
    // A long grace, so that "well before it" holds on a loaded machine and
    // under ThreadSanitizer (which sleeps 1 s in every process's exit).
    const int grace_ms = 6000;
    worker_process_options po = grace(grace_ms);
    long pid = 0;
    {
        Proc p(kMods, "pm_frames_tallied", arg.data(), arg.size(), &o, &po);
        ASSERT_EQ(p.start(), WORKER_OK);
        ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED)) << "the function runs";
        // The GUI stops draining: wait until the process has filled every
        // buffer between it and the GUI (the stream's capacity and the
        // window of 4 frames at least) and waits: its tally stops growing.
        long before = -2;
        auto delivered = [&] { return (long)p.rec->count(WORKER_EV_YIELDED); };
        for (int i = 0; i < 50; i++) {
            long now = read_tally(path).made;
            if (now == before && now - delivered() >= (long)o.capacity + 4) break;
            before = now;
            wait_no_pump([] { return false; }, 200);
        }
        Tally full = read_tally(path);
        ASSERT_EQ(full.made, before) << "the process waits for the GUI";
        EXPECT_GT(full.made - delivered(), (long)o.capacity) << "the stream is full";
        pid = worker_process_id(p.w);

        auto t0 = std::chrono::steady_clock::now();
        ASSERT_EQ(worker_quit(p.w), WORKER_OK);
        ASSERT_TRUE(p.rec->wait_finished(15000));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0).count();
        std::printf("FINISHED %lld ms after quit\n", (long long)ms);
        for (auto &e : p.rec->ev)
            if (e.type == WORKER_EV_WARNED) ADD_FAILURE() << "WARNED: " << e.message;
        EXPECT_LT(ms, grace_ms - 2000) << "ended on its own, well before the grace period and its kill";
        EXPECT_EQ(p.rec->count(WORKER_EV_ERRORED), 0);
        EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
        Tally end = read_tally(path);
        EXPECT_EQ(end.returned, 1) << "the function returned";
        EXPECT_EQ(end.destroyed, end.made) << "every frame destroyed once in the helper";
        p.close();
    }
    std::remove(path);
    EXPECT_TRUE(process_gone(pid));
    EXPECT_EQ(memfd_mappings(), 0) << "every received frame unmapped";
    EXPECT_EQ(open_fds(), fds) << "no descriptor left";
}

// ---- a host application that reaps every child itself (issue #14): a
// thread looping waitpid(-1, WNOHANG), as a host handling SIGCHLD would. It
// would reap the other tests' children too, so these tests run in a process
// of their own (Process.AHostThatReapsEveryChildItself starts it), in its
// own pid namespace where allowed: there, pids are reused only by that
// process, so a test can give a pid the host reaped to another process.
namespace {

constexpr const char *kHostReapsEnv = "QTW_TEST_HOST_REAPS";

class HostReaper {
public:
    HostReaper() : thread_([this] { loop(); }) {}
    ~HostReaper() {
        stop_ = true;
        thread_.join();
    }
    // Where the record stands now (reaped_since looks after it).
    size_t mark() {
        std::lock_guard<std::mutex> lk(mu_);
        return got_.size();
    }
    // Whether the host reaped pid since mark (waiting up to ms, without
    // pumping); its wait status in *status.
    bool reaped_since(pid_t pid, size_t mark, int *status = nullptr, int ms = 0) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            {
                std::lock_guard<std::mutex> lk(mu_);
                for (size_t i = mark; i < got_.size(); i++)
                    if (got_[i].first == pid) {
                        if (status) *status = got_[i].second;
                        return true;
                    }
            }
            if (std::chrono::steady_clock::now() >= until) return false;
            nap(1);
        }
    }

private:
    void loop() {
        while (!stop_) {
            int st = 0;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p > 0) {
                std::lock_guard<std::mutex> lk(mu_);
                got_.emplace_back(p, st);
                continue;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::pair<pid_t, int>> got_;
    std::thread thread_;  // last: starts once the rest exists
};

class ProcessHostReaps : public ::testing::Test {
protected:
    static bool inside() { return std::getenv(kHostReapsEnv) != nullptr; }
    static void SetUpTestSuite() {
        if (inside()) reaper = new HostReaper;
    }
    static void TearDownTestSuite() {
        delete reaper;
        reaper = nullptr;
    }
    void SetUp() override {
        if (!inside()) GTEST_SKIP() << "runs in a process of its own: Process.AHostThatReapsEveryChildItself";
    }
    static HostReaper *reaper;

    // Starts p ("pm_ignores_quit": a process it starts holds the socket
    // open), parks it, kills the helper and waits until the host reaped it.
    // Returns the holder's pid (kill it at the end); *pid is the helper's.
    static pid_t kill_parked_helper(struct Proc &p, pid_t *pid, int *status);
};
HostReaper *ProcessHostReaps::reaper = nullptr;

// Without pidfds (Linux < 5.4) the library falls back to plain pids: it
// cannot tell a helper the host reaped from a recycled pid.
bool have_pidfds() {
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0u);
    if (fd < 0) return false;
    siginfo_t si{};
    bool waitable = waitid(static_cast<idtype_t>(3), (id_t)fd, &si, WEXITED | WNOHANG) == 0 ||
                    errno != EINVAL;  // P_PIDFD; ECHILD here: known, and we are no child
    close(fd);
    return waitable;
#else
    return false;
#endif
}

int outcomes(const Rec &r) {
    return r.count(WORKER_EV_RETURNED) + r.count(WORKER_EV_ERRORED) + r.count(WORKER_EV_ABORTED);
}

int kill_warnings(const Rec &r) {
    int n = 0;
    for (auto &e : r.ev) n += e.type == WORKER_EV_WARNED && e.message.find("killed") != std::string::npos;
    return n;
}

// Gives pid, which the host has reaped, to a new process (a child of this
// test that just waits): 0 if this is not our own pid namespace or the pid
// went elsewhere.
pid_t recycle(pid_t pid) {
    if (getpid() != 1) return 0;  // another program could take the pid
    for (int i = 0; i < 5; i++) {
        FILE *f = std::fopen("/proc/sys/kernel/ns_last_pid", "w");
        if (!f) return 0;
        std::fprintf(f, "%d", (int)pid - 1);
        if (std::fclose(f) != 0) return 0;
        pid_t d = fork();
        if (d == 0)
            for (;;) pause();  // until killed (this process has threads: nothing else)
        if (d == pid) return d;
        if (d > 0) kill(d, SIGKILL);
    }
    return 0;
}

}  // namespace

// Every way a process worker ends, while the host reaps every child as soon
// as it exits (usually before the proxy does): FINISHED, exactly one
// outcome, and the one the function gave when it gave one.
TEST_F(ProcessHostReaps, EveryEndIsFinishedWithOneOutcome) {
    struct Case {
        std::string path;
        const char *symbol;
        bool quit;
        worker_event_type outcome;
    };
    const Case cases[] = {
        {kMods, "pm_return_arg", false, WORKER_EV_RETURNED},
        {kMods, "pm_fail", false, WORKER_EV_ERRORED},
        {process_module("crash_plugin.so"), "crashy_plugin_run", false, WORKER_EV_ERRORED},
        {kMods, "pm_exit", false, WORKER_EV_ERRORED},
        {kMods, "pm_ticker", true, WORKER_EV_ABORTED},
    };
    int host_first = 0;
    for (int round = 0; round < 3; round++)
        for (const Case &c : cases) {
            SCOPED_TRACE(std::string(c.symbol) + " round " + std::to_string(round));
            size_t mark = reaper->mark();
            Proc p(c.path, c.symbol, "x", 1);
            ASSERT_EQ(p.start(), WORKER_OK);
            if (c.quit) {
                ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED));
                ASSERT_EQ(worker_quit(p.w), WORKER_OK);
            }
            ASSERT_TRUE(p.rec->wait_finished(15000)) << "no hang";
            EXPECT_EQ(outcomes(*p.rec), 1);
            EXPECT_EQ(p.rec->outcome(), c.outcome);
            EXPECT_EQ(kill_warnings(*p.rec), 0);
            long pid = worker_process_id(p.w);
            bool by_host = reaper->reaped_since((pid_t)pid, mark);
            host_first += by_host;
            if (by_host && c.outcome == WORKER_EV_ERRORED && std::strcmp(c.symbol, "pm_fail") != 0) {
                // No outcome from the function, and its wait status is gone.
                const Ev &e = p.rec->first(WORKER_EV_ERRORED);
                EXPECT_EQ(e.code, WORKER_ESTATE);
                EXPECT_NE(e.message.find("exit status is unknown"), std::string::npos) << e.message;
            }
        }
    std::printf("the host reaped %d of %d processes first\n", host_first,
                3 * (int)(sizeof cases / sizeof cases[0]));
}

pid_t ProcessHostReaps::kill_parked_helper(Proc &p, pid_t *pid, int *status) {
    if (p.start() != WORKER_OK || !p.rec->wait_for(WORKER_EV_YIELDED)) return -1;
    pid_t holder = (pid_t)p.rec->ints(WORKER_EV_YIELDED).at(0);
    // Paused, the proxy waits for the resume: the host is the first to see
    // the death, for sure.
    if (worker_pause(p.w) != WORKER_OK || !p.rec->wait_for(WORKER_EV_PAUSED)) return -1;
    *pid = (pid_t)worker_process_id(p.w);
    size_t mark = reaper->mark();
    if (kill(*pid, SIGKILL) != 0 || !reaper->reaped_since(*pid, mark, status, 5000)) return -1;
    return holder;
}

// The helper dies (killed, as by the OOM killer) and the host reaps it while
// a process it started still holds its socket open: the worker ends anyway,
// ERRORED with an unknown exit status; it does not wait for the socket.
TEST_F(ProcessHostReaps, ADeathTheHostReapedIsErroredWithAnUnknownStatus) {
    if (!have_pidfds()) GTEST_SKIP() << "no pidfds: the end of the stream is what ends it";
    uint64_t hold_ms = 30000;
    worker_process_options po = grace(1000);
    Proc p(kMods, "pm_ignores_quit", &hold_ms, sizeof hold_ms, nullptr, &po);
    pid_t pid = 0;
    int st = 0;
    pid_t holder = kill_parked_helper(p, &pid, &st);
    ASSERT_GT(holder, 0);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ASSERT_EQ(worker_resume(p.w), WORKER_OK);
    EXPECT_TRUE(p.rec->wait_finished(10000)) << "hangs while the socket stays open";
    EXPECT_EQ(outcomes(*p.rec), 1);
    ASSERT_EQ(p.rec->outcome(), WORKER_EV_ERRORED);
    const Ev &e = p.rec->first(WORKER_EV_ERRORED);
    EXPECT_EQ(e.code, WORKER_ESTATE);
    EXPECT_NE(e.message.find("exit status is unknown"), std::string::npos) << e.message;
    kill(holder, SIGKILL);
}

// A process that ignores quit is quit; it dies before the grace period is
// over, the host reaps it, and its pid goes to another process: that one
// must not get the SIGKILL meant for the helper.
TEST_F(ProcessHostReaps, AfterTheHostReapedAStuckOneNoOtherProcessIsSignalled) {
    if (!have_pidfds()) GTEST_SKIP() << "no pidfds: a plain pid cannot tell";
    uint64_t hold_ms = 30000;  // keeps the socket open: no end of stream to see
    worker_process_options po = grace(1000);
    Proc p(kMods, "pm_ignores_quit", &hold_ms, sizeof hold_ms, nullptr, &po);
    pid_t pid = 0;
    pid_t holder = kill_parked_helper(p, &pid, nullptr);
    ASSERT_GT(holder, 0);
    pid_t decoy = recycle(pid);
    size_t decoy_mark = reaper->mark();
    ASSERT_EQ(worker_quit(p.w), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished(10000));
    EXPECT_EQ(outcomes(*p.rec), 1);
    EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
    EXPECT_EQ(kill_warnings(*p.rec), 0) << "nothing of ours was left to kill";
    if (decoy) {
        pump_for(200);  // a late kill would land now
        EXPECT_EQ(kill(decoy, 0), 0) << "the process that got the pid is alive";
        EXPECT_FALSE(reaper->reaped_since(decoy, decoy_mark)) << "the process that got the pid died";
        kill(decoy, SIGKILL);
    }
    kill(holder, SIGKILL);
    if (!decoy) GTEST_SKIP() << "no pid namespace of our own: the pid could not be reused on purpose";
}

// Runs the ProcessHostReaps tests in a process of their own (see above).
// With isolate, in new pid and mount namespaces with their own /proc (the
// sanitizers and /proc/self must see the namespace's pids); exit status
// 125 when that could not be set up after all.
int run_host_reaps_process(bool isolate) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    std::vector<std::string> strings = {exe, "--gtest_filter=ProcessHostReaps.*"};
    size_t nargs = strings.size();
    for (char **e = environ; *e; e++) strings.push_back(*e);
    strings.push_back(std::string(kHostReapsEnv) + "=1");
    std::vector<char *> argv, envp;
    for (size_t i = 0; i < strings.size(); i++)
        (i < nargs ? argv : envp).push_back(const_cast<char *>(strings[i].c_str()));
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    std::fflush(nullptr);
    pid_t mid = fork();
    if (mid == 0) {  // this process has threads: only system calls until exec
        if (isolate && unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) _exit(125);
        pid_t inner = fork();  // pid 1 of the new namespace
        if (inner == 0) {
            // Private mounts first: the new /proc must not reach the host's.
            if (isolate && (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                  nullptr) != 0))
                _exit(125);
            execve(argv[0], argv.data(), envp.data());
            _exit(127);
        }
        int st = 0;
        while (inner > 0 && waitpid(inner, &st, 0) < 0 && errno == EINTR) {
        }
        _exit(inner < 0 ? 126 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    if (mid < 0) return -1;
    int st = 0;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(Process, AHostThatReapsEveryChildItself) {
    if (std::getenv(kHostReapsEnv)) GTEST_SKIP() << "this is that process";
    int rc = run_host_reaps_process(true);
    if (rc == 125) {
        std::printf("no namespaces here (not privileged): the host-reaps tests run unisolated\n");
        rc = run_host_reaps_process(false);
    }
    EXPECT_EQ(rc, 0) << "the ProcessHostReaps tests failed: their output is above";
}

// Last: after all of the above, and a crash, a kill and a return here,
// nothing is left: no descriptor, no mapping, no process.
TEST(Process, NothingLeaks) {
    int fds = open_fds();
    std::vector<long> pids;
    {
        int32_t steps = 1;
        worker_process_options po = grace(100);
        auto arg = frames_arg(4, 1 << 20);
        Proc crash(process_module("crash_plugin.so"), "crashy_plugin_run", &steps, sizeof steps);
        Proc stuck(process_module("stuck_plugin.so"), "stubborn_plugin_run", nullptr, 0, nullptr, &po);
        Proc frames(kMods, "pm_frames", arg.data(), arg.size() * sizeof(uint64_t));
        for (Proc *p : {&crash, &stuck, &frames}) ASSERT_EQ(p->start(), WORKER_OK);
        ASSERT_TRUE(crash.rec->wait_finished());
        ASSERT_TRUE(frames.rec->wait_finished());
        ASSERT_TRUE(stuck.rec->wait_for(WORKER_EV_YIELDED));
        for (Proc *p : {&crash, &stuck, &frames}) {
            p->close();
            pids.push_back(p->pid);
        }
    }
    for (long pid : pids) EXPECT_TRUE(process_gone(pid)) << pid;
    EXPECT_EQ(open_fds(), fds);
    EXPECT_EQ(memfd_mappings(), 0);
}
