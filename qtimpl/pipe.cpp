// Pipes (worker_pipe): a worker's yields go into another worker's input
// instead of to its YIELDED callbacks. A Link joins one source to one sink;
// the values themselves sit in the sink's inbox (in order with its sends),
// each tagged with its link, so the link can count its unreceived ones and
// apply the source's policy: BLOCK waits at `capacity`, LATEST replaces its
// newest unreceived value, QUEUE never waits. The sink's capacity_bytes
// bounds each link's unreceived bytes (worker_yield_sized) the same way:
// BLOCK waits while the next value would pass it (one value alone always
// goes), as a yield to the GUI waits for the source's own budget.
//
// Locks: the pipes mutex (topology: who is piped into whom) comes before any
// worker's mu. A source's mu comes before its sink's (a yield holds both);
// never the other way round, which is why cycles are refused and why a sink
// that makes room wakes its source only after letting go of its own mu.
#include "fault.h"
#include "worker_p.h"

#include <algorithm>

namespace qtw {

struct Link {
    // Cleared (under the pipes mutex) when the source is freed, so no stale
    // address is ever acquired.
    std::atomic<worker *> from{nullptr};
    // The sink; the link holds a reference on it while holds_to (pipes
    // mutex), i.e. until the source has ended or was freed.
    worker *to = nullptr;
    bool holds_to = false;
    size_t capacity = 0;  // the source's (immutable)
    size_t budget = 0;    // the sink's capacity_bytes (immutable; 0 = none)
    worker_policy policy = WORKER_BLOCK;
    // Guarded by to->mu.
    size_t unreceived = 0;          // this link's values in to's inbox
    ByteCount unreceived_bytes = 0; // and their sizes
    Sent *latest = nullptr;         // LATEST: that value, replaceable
    size_t in_helper = 0;           // of unreceived: forwarded to a process sink's helper
    bool producer_waiting = false;  // BLOCK: the source waits for room
    bool source_open = true;        // the source has not ended
};

namespace {

// Constant-initialized, not allocated on first use: worker_quit takes it,
// and an allocation there threw bad_alloc out of worker_quit (and out of a
// scope close half done) when memory was short. Its destructor is trivial:
// safe at exit.
std::mutex pipes_mutex_;
std::mutex &pipes_mutex() { return pipes_mutex_; }

bool ended(const worker *w) { return w->phase == Phase::Ending || w->phase == Phase::Done; }

// A sink takes no more input: its input closed (by its owner or because its
// last source ended), it has ended, or it was asked to quit (it is ending).
bool refuses_input_locked(const worker *to) { return ended(to) || to->input_closed; }

// Would piping from into to close a loop? Walks to's chain of sinks (each
// worker pipes into at most one). Under the pipes mutex.
bool makes_cycle(const worker *from, const worker *to) {
    for (const worker *x = to; x; ) {
        if (x == from) return true;
        const Link *l = x->pipe_out.get();
        x = l && l->holds_to ? l->to : nullptr;
    }
    return false;
}

// Would a path of pipes join two members of one serial group (from or a
// worker piped into it, to or a worker it pipes into)? The first of them to
// run holds the group's slot while it waits for the other — its sink to
// take values, or its source to send them — so neither ends. Under the
// pipes mutex; groups are fixed at creation.
bool joins_serial_group(const worker *from, const worker *to) {
    std::vector<const std::string *> below;  // the groups of to's chain of sinks
    for (const worker *x = to; x;) {
        if (!x->group.empty()) below.push_back(&x->group);
        const Link *l = x->pipe_out.get();
        x = l && l->holds_to ? l->to : nullptr;
    }
    std::vector<const worker *> above{from};  // from and its sources, transitively
    while (!below.empty() && !above.empty()) {
        const worker *u = above.back();
        above.pop_back();
        for (const std::string *g : below)
            if (u->group == *g) return true;
        for (auto &l : u->pipe_in)
            if (const worker *f = l->from.load()) above.push_back(f);
    }
    return false;
}

// The sources still piped into `to`, each with a temporary reference.
std::vector<worker *> sources_of(worker *to) {
    for (;;) {
        try {
            std::lock_guard<std::mutex> lk(pipes_mutex());
            std::vector<worker *> out;
            out.reserve(to->pipe_in.size());
            for (auto &l : to->pipe_in) {
                worker *f = l->from.load();
                if (f && acquire(f)) out.push_back(f);
            }
            return out;
        } catch (const std::bad_alloc &) {
            wait_for_memory();  // quitting the pipeline must not be skipped
        }
    }
}

void quit_sources(worker *to) {
    for (worker *f : sources_of(to)) {
        worker_quit(f);  // ESTATE for one that has ended: fine
        release(f);
    }
}

// One source of `to` less; the last one closes its input. Pipes mutex held.
void unlist_source(worker *to) {
    std::lock_guard<StreamMutex> lt(to->mu);
    if (--to->open_sources == 0 && !to->input_closed && !to->pipe_in.empty()) {
        to->input_closed = true;
        wake_receiver_locked(to);
        if (to->poke) to->poke(to);
    }
}

// The source of l has ended (or is freed unstarted): the sink loses an
// open source, the last one closes its input, and the link lets go of it.
void source_done(Link *l) {
    worker *to;
    {
        std::lock_guard<std::mutex> lk(pipes_mutex());
        if (!l->holds_to) return;
        l->holds_to = false;
        to = l->to;
        {
            std::lock_guard<StreamMutex> lt(to->mu);
            l->source_open = false;
            l->producer_waiting = false;
        }
        unlist_source(to);
    }
    release(to);
}

}  // namespace

int pipe_push_locked(worker *w, std::unique_lock<StreamMutex> &lk, Entry &e, Entry *stale) {
    Link *l = w->pipe_out.get();
    worker *to = l->to;  // alive: the link holds a reference until w ends
    for (;;) {
        if (w->abort_requested) return WORKER_ABORTED;
        std::unique_lock<StreamMutex> lt(to->mu);
        if (refuses_input_locked(to)) {
            // Nothing could ever receive what it yields: it stops as if quit.
            w->abort_requested = true;
            return WORKER_ABORTED;
        }
        if (w->policy == WORKER_LATEST && l->latest) {
            stale->value = l->latest->value;
            stale->destroy = l->latest->destroy;
            l->unreceived_bytes = l->unreceived_bytes - l->latest->size + e.size;
            l->latest->value = e.value;
            l->latest->destroy = e.destroy;
            l->latest->size = e.size;
            e.value = nullptr;
            e.destroy = nullptr;
            w->dropped.fetch_add(1);
            return WORKER_OK;
        }
        bool full = w->policy == WORKER_BLOCK && l->unreceived >= w->capacity;
        bool over_budget = w->policy != WORKER_QUEUE && exceeds_budget(l->unreceived_bytes, e.size, l->budget);
        if (full || over_budget) {
            l->producer_waiting = true;  // the sink wakes us once it made room
            lt.unlock();
            run_deferred_schedule();  // what we emitted before must reach the GUI
            pool_blocking_begin();
            w->space_cv.wait(lk);  // also woken by quit
            pool_blocking_end();
            continue;
        }
        fault::check(fault::Inbox);
        Sent *queued = to->inbox.push_back({e.value, e.destroy, l, e.size});  // on throw: not queued, e keeps it
        e.value = nullptr;
        e.destroy = nullptr;
        l->unreceived++;
        l->unreceived_bytes += e.size;
        if (w->policy == WORKER_LATEST) l->latest = queued;
        wake_receiver_locked(to);
        if (to->poke) to->poke(to);
        return WORKER_OK;
    }
}

void link_taken_locked(Link *l, size_t size, worker **wake) {
    l->unreceived--;
    l->unreceived_bytes -= size;
    if (l->latest && l->unreceived == 0) l->latest = nullptr;  // LATEST holds at most one
    // Woken at half capacity (and half the budget), not at every value: the
    // source then fills half the link per wake-up instead of trading a
    // context switch per value.
    bool room = l->unreceived <= l->capacity / 2 && (!l->budget || l->unreceived_bytes <= l->budget / 2);
    if (l->producer_waiting && room) {
        l->producer_waiting = false;
        // Alive: it is waiting inside its function (source_done has not run).
        worker *from = l->from.load();
        from->total_refs.fetch_add(1);
        *wake = from;
    }
}

void wake_producer(worker *from) {
    if (!from) return;
    {
        std::lock_guard<StreamMutex> lk(from->mu);
        from->space_cv.notify_all();
    }
    release(from);
}

void take_forwardable_locked(worker *w, std::deque<Sent> &out) {
    while (!w->inbox.empty()) {
        Sent &s = w->inbox.front();
        if (Link *l = s.link) {
            if (l->policy == WORKER_LATEST && l->in_helper > 0) break;
            out.push_back(s);  // before any change: a throw leaves all as it was
            if (l->latest == &s) l->latest = nullptr;  // in the helper: no longer replaceable
            l->in_helper++;
        } else {
            out.push_back(s);
        }
        w->inbox.pop_front();
    }
    if (w->inbox.garbage_size()) ChunkQueue<Sent>::free_garbage(w->inbox.take_garbage());
}

void helper_took(worker *w, std::deque<Sent> &in_helper, long long n) {
    std::vector<worker *> wake;
    wake.reserve(std::min<size_t>(in_helper.size(), (size_t)std::max(n, 0LL)));
    {
        std::lock_guard<StreamMutex> lk(w->mu);
        for (; n > 0 && !in_helper.empty(); n--) {
            Sent taken = in_helper.front();
            in_helper.pop_front();
            Link *l = taken.link;
            if (!l) continue;  // a plain send
            worker *from = nullptr;
            l->in_helper--;
            link_taken_locked(l, taken.size, &from);
            if (from) wake.push_back(from);
        }
    }
    for (worker *from : wake) wake_producer(from);
}

int pipe_push(worker *w, Entry &&e) {
    Entry stale;
    int rc;
    {
        ScheduleAfterUnlock schedule;
        try {
            std::unique_lock<StreamMutex> lk(w->mu);
            rc = pipe_push_locked(w, lk, e, &stale);
        } catch (const std::bad_alloc &) {
            rc = WORKER_ENOMEM;
        }
    }
    stale.release();
    e.release();  // still here only if refused
    return rc;
}

void pipe_worker_ended(worker *w) {
    if (w->pipe_out) source_done(w->pipe_out.get());
    bool is_sink;
    {
        std::lock_guard<std::mutex> lk(pipes_mutex());
        is_sink = !w->pipe_in.empty();
        if (is_sink) {
            std::lock_guard<StreamMutex> lt(w->mu);
            for (auto &l : w->pipe_in) l->latest = nullptr;  // its inbox is gone
        }
    }
    if (is_sink) quit_sources(w);
}

void pipe_stop_sources(worker *w) {
    bool is_sink;
    {
        std::lock_guard<std::mutex> lk(pipes_mutex());
        is_sink = !w->pipe_in.empty();
    }
    if (is_sink) quit_sources(w);
}

void pipe_forget(worker *w) {
    if (!w->pipe_out) return;
    {
        std::lock_guard<std::mutex> lk(pipes_mutex());
        w->pipe_out->from.store(nullptr);
    }
    source_done(w->pipe_out.get());  // freed without having run: it has ended too
}

}  // namespace qtw

extern "C" {

int worker_pipe(worker *from, worker *to) {
    if (!from || !to || from == to) return WORKER_EINVAL;
    if (!qtw::acquire(from)) return WORKER_EINVAL;
    if (!qtw::acquire(to)) {
        qtw::release(from);
        return WORKER_EINVAL;
    }
    int rc = qtw::guarded([&]() -> int {
        auto link = std::make_shared<qtw::Link>();
        std::lock_guard<std::mutex> lk(qtw::pipes_mutex());
        if (qtw::makes_cycle(from, to) || qtw::joins_serial_group(from, to)) return WORKER_EINVAL;
        to->pipe_in.reserve(to->pipe_in.size() + 1);  // nothing can throw below
        // One worker's mu at a time (a yield takes from's, then to's): first
        // count the source in to, then claim from. A close, quit or end of
        // `to` in between finds the link (we hold the pipes mutex) and quits
        // from, as for any source.
        {
            std::lock_guard<qtw::StreamMutex> lt(to->mu);
            if (qtw::refuses_input_locked(to) || to->abort_requested) return WORKER_ESTATE;
            to->open_sources++;
        }
        link->from.store(from);
        link->to = to;
        link->holds_to = true;
        link->capacity = from->capacity;
        link->budget = to->capacity_bytes;
        link->policy = from->policy;
        {
            std::lock_guard<qtw::StreamMutex> lf(from->mu);
            // A closed scope's unstarted worker never runs: to's input would
            // wait for it for ever.
            if (from->phase == qtw::Phase::Created && !from->pipe_out && !from->scope_closed) {
                from->pipe_out = link;
                to->total_refs.fetch_add(1);  // the link's reference, until from has ended
                to->pipe_in.push_back(std::move(link));
                return WORKER_OK;
            }
        }
        link->holds_to = false;
        qtw::unlist_source(to);  // from had started or was piped already
        return WORKER_ESTATE;
    });
    qtw::release(to);
    qtw::release(from);
    return rc;
}

}  // extern "C"
