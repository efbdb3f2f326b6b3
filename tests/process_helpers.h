// Helpers shared by the process-worker suites (test_process.cpp,
// test_process_reaping.cpp): where the modules are, what leaks would show
// as, counted worker_bytes values, an event recorder that copies values out
// as bytes, and a process worker with its recorder.
#pragma once

#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace th;

namespace {

// ---- where the modules are: $QTW_PROCESS_MODULES, else next to this test
[[maybe_unused]] const std::string kMods = process_module("procmods.so");

inline bool sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#else
    return std::getenv("ASAN_OPTIONS") != nullptr;
#endif
}

// ---- what leaks would show as
inline int open_fds() {
    int n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (readdir(d)) n++;
        closedir(d);
    }
    return n - 3;  // ".", ".." and the directory's own descriptor
}

// Received shared buffers are memfd mappings: count them.
inline int memfd_mappings() {
    std::ifstream maps("/proc/self/maps");
    int n = 0;
    for (std::string line; std::getline(maps, line);)
        n += line.find("memfd:qtworker-bytes") != std::string::npos;
    return n;
}

// Whether addr lies in a memfd mapping (a received frame was mapped, not copied).
inline bool in_memfd_mapping(const void *addr) {
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
inline bool process_gone(long pid) {
    if (pid <= 0) return false;
    int status;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH &&
           waitpid((pid_t)pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

// ---- values: worker_bytes, counted when the test makes them
[[maybe_unused]] std::atomic<int> made_alive{0};
inline worker_bytes *made(const void *data, size_t size) {
    made_alive++;
    return worker_bytes_copy(data, size);
}
inline worker_bytes *made_int(int v) { return made(&v, sizeof v); }
inline void made_free(void *p) {
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

inline worker_process_options grace(int ms) {
    worker_process_options po;
    worker_process_options_init(&po);
    po.kill_grace_ms = ms;
    return po;
}

inline std::vector<uint64_t> frames_arg(uint64_t count, uint64_t size) { return {count, size}; }

}  // namespace
