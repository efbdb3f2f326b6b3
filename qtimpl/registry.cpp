// Registry of allocated workers (so stale handles are rejected instead of
// dereferenced) and of live ones (for worker_list / quit-all / exit).
#include "fault.h"
#include "ptr_set.h"
#include "worker_p.h"

namespace qtw {
namespace {

// Every call validates its handle here, from any thread: one lock for all
// made the GUI starting workers and the pool threads ending them take turns
// (a fifth of the GUI's samples starting 1000 short workers were this
// mutex). A worker's entries live in the shard its address picks.
struct alignas(64) Shard {
    StreamMutex mu;  // adaptive
    PtrSet all;      // allocated workers
    PtrSet live;     // started and not yet returned
};

constexpr size_t kShards = 16;

// Leaked on purpose: workers may outlive static destruction at exit.
Shard *shards() {
    static Shard *s = new Shard[kShards];
    return s;
}
QTW_MAKE_AT_LOAD(shards);

Shard &shard_of(const worker *w) {
    auto a = reinterpret_cast<uintptr_t>(w);
    return shards()[(a >> 10 ^ a >> 6) % kShards];  // workers are ~1 KB apart
}

}  // namespace

void register_worker(worker *w) {
    fault::check(fault::Registry);
    Shard &r = shard_of(w);
    std::lock_guard<StreamMutex> lk(r.mu);
    r.all.insert(w);
}

bool acquire(const worker *w) {
    if (!w) return false;
    Shard &r = shard_of(w);
    std::lock_guard<StreamMutex> lk(r.mu);
    if (!r.all.contains(w)) return false;
    // Like weak_ptr::lock: never resurrect a worker whose count reached 0.
    auto &refs = const_cast<worker *>(w)->total_refs;
    int n = refs.load();
    do {
        if (n <= 0) return false;
    } while (!refs.compare_exchange_weak(n, n + 1));
    return true;
}

void release(worker *w) {
    if (w->total_refs.fetch_sub(1) != 1) return;
    {
        Shard &r = shard_of(w);
        std::lock_guard<StreamMutex> lk(r.mu);
        r.all.erase(w);
        r.live.erase(w);
    }
    delete w;
}

void set_live(worker *w, bool live) {
    Shard &r = shard_of(w);
    if (live) fault::check(fault::Registry);
    std::lock_guard<StreamMutex> lk(r.mu);
    if (live)
        r.live.insert(w);  // may throw bad_alloc: then not live
    else
        r.live.erase(w);
}

// Shard by shard: a worker started meanwhile may be missed, as it could be
// by a call made a moment earlier (the exit join quits those at their start).
std::vector<worker *> live_workers() {
    std::vector<worker *> out;
    fault::check(fault::Registry);
    try {
        for (size_t i = 0; i < kShards; i++) {
            Shard &r = shards()[i];
            std::lock_guard<StreamMutex> lk(r.mu);
            out.reserve(out.size() + r.live.size());  // may throw: no ref taken here yet
            r.live.for_each([&](void *p) {
                auto *w = static_cast<worker *>(p);
                w->total_refs.fetch_add(1);  // a live worker holds the library's ref: > 0
                out.push_back(w);
            });
        }
    } catch (...) {
        for (worker *w : out) release(w);  // unlocked: a last ref takes its shard's lock
        throw;
    }
    return out;
}

}  // namespace qtw

static int list_into(worker **out, int max) {
    auto v = qtw::live_workers();
    int n = 0;
    for (worker *w : v) {
        if (n < max) {
            w->owner_refs.fetch_add(1);  // handed out as an owner reference
            out[n++] = w;
        } else {
            qtw::release(w);
        }
    }
    return max == 0 ? (int)v.size() : n;
}

extern "C" {

int worker_live_count(void) {
    return qtw::guarded([]() -> int {
        auto v = qtw::live_workers();
        for (worker *w : v) qtw::release(w);
        return (int)v.size();
    });
}

int worker_list(worker **out, int max) {
    if (max < 0 || (max > 0 && !out)) return WORKER_EINVAL;
    return qtw::guarded([&]() -> int { return list_into(out, max); });
}


}  // extern "C"
