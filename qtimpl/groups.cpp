// Serial groups: workers sharing worker_options.group run one at a time, in
// the order they were started (one instrument, one command at a time).
// Lock order: the groups mutex may be held while taking a worker's mu,
// never the other way round.
#include "worker_p.h"

#include <unordered_map>

namespace qtw {
namespace {

struct Group {
    bool busy = false;            // a member holds the slot (runs or ends)
    std::deque<worker *> queue;   // started members waiting for the slot
};

struct Groups {
    std::mutex mu;
    std::unordered_map<std::string, Group> by_name;
};

// Leaked on purpose: pool threads may still end workers at exit.
Groups &groups() {
    static Groups *g = new Groups;
    return *g;
}
QTW_MAKE_AT_LOAD(groups);

}  // namespace

std::unique_lock<std::mutex> group_lock(const worker *w) {
    if (w->group.empty()) return std::unique_lock<std::mutex>();
    return std::unique_lock<std::mutex>(groups().mu);
}

bool group_busy_locked(const worker *w) {
    if (w->group.empty()) return false;  // exclusive without a group: no lock held
    auto it = groups().by_name.find(w->group);
    return it != groups().by_name.end() && it->second.busy;
}

bool group_waits_for(const worker *b, const worker *a) {
    if (b->group.empty() || b->group != a->group) return false;  // immutable after create
    std::lock_guard<std::mutex> lk(groups().mu);
    return b->group_queued && a->group_holder;
}

bool group_admit_locked(worker *w) {
    if (w->group.empty()) return true;
    Group &g = groups().by_name[w->group];
    if (!g.busy) {
        g.busy = true;
        w->group_holder = true;
        return true;
    }
    g.queue.push_back(w);
    w->group_queued = true;
    return false;
}

void group_unadmit_locked(worker *w) {
    if (w->group.empty() || !w->group_holder) return;
    w->group_holder = false;
    auto it = groups().by_name.find(w->group);
    if (it == groups().by_name.end()) return;
    it->second.busy = false;  // the group lock was held since the admission:
    if (it->second.queue.empty()) groups().by_name.erase(it);  // nobody queued since
}

void group_release(worker *w) {
    if (w->group.empty()) return;
    worker *next = nullptr;
    {
        std::lock_guard<std::mutex> lk(groups().mu);
        if (!w->group_holder) return;  // quit while queued: never held the slot
        w->group_holder = false;
        auto it = groups().by_name.find(w->group);
        Group &g = it->second;
        if (g.queue.empty()) {
            groups().by_name.erase(it);  // idle groups take no memory
        } else {
            next = g.queue.front();
            g.queue.pop_front();
            next->group_queued = false;
            next->group_holder = true;
        }
    }
    // The next member runs on this thread once the current task returns:
    // members run one at a time anyway, and it needs no thread of its own.
    if (next) pool_run_after_current(next);
}

void group_on_quit(worker *w) {
    if (w->group.empty()) return;
    {
        std::lock_guard<std::mutex> lk(groups().mu);
        if (!w->group_queued) return;
        Group &g = groups().by_name[w->group];
        for (auto it = g.queue.begin(); it != g.queue.end(); ++it) {
            if (*it != w) continue;
            g.queue.erase(it);
            break;
        }
        w->group_queued = false;
    }
    // Never runs its function: STARTED, ABORTED, FINISHED come at once,
    // emitted here (it takes no time, and needs no thread of its own).
    run_worker(w);
}

}  // namespace qtw
