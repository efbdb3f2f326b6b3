// Registry of allocated workers (so stale handles are rejected instead of
// dereferenced) and of live ones (for worker_list / quit-all / exit).
#include "fault.h"
#include "worker_p.h"

#include <unordered_set>

namespace qtw {
namespace {

struct Registry {
    StreamMutex mu;  // adaptive: every call validates its handle here, from any thread
    std::unordered_set<const worker *> all;
    std::unordered_set<worker *> live;
};

// Leaked on purpose: workers may outlive static destruction at exit.
Registry &registry() {
    static Registry *r = new Registry;
    return *r;
}

}  // namespace

void register_worker(worker *w) {
    fault::check(fault::Registry);
    Registry &r = registry();
    std::lock_guard<StreamMutex> lk(r.mu);
    r.all.insert(w);
}

bool acquire(const worker *w) {
    if (!w) return false;
    Registry &r = registry();
    std::lock_guard<StreamMutex> lk(r.mu);
    if (!r.all.count(w)) return false;
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
        Registry &r = registry();
        std::lock_guard<StreamMutex> lk(r.mu);
        r.all.erase(w);
        r.live.erase(w);
    }
    delete w;
}

void set_live(worker *w, bool live) {
    Registry &r = registry();
    if (live) fault::check(fault::Registry);
    std::lock_guard<StreamMutex> lk(r.mu);
    if (live)
        r.live.insert(w);  // may throw bad_alloc: then not live
    else
        r.live.erase(w);
}

std::vector<worker *> live_workers() {
    Registry &r = registry();
    std::lock_guard<StreamMutex> lk(r.mu);
    std::vector<worker *> out;
    fault::check(fault::Registry);
    out.reserve(r.live.size());
    for (worker *w : r.live) {
        // A live worker holds the library's ref, so its count is > 0.
        w->total_refs.fetch_add(1);
        out.push_back(w);
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
