// The per-worker ordered event stream: the worker thread pushes, the home
// thread's dispatcher drains. Policies (BLOCK / QUEUE / LATEST) apply to data
// entries; control entries (started, paused, outcome, finished) never wait.
#include "barrier.h"
#include "fault.h"
#include "worker_p.h"

#include <sched.h>

namespace qtw {

namespace {
// The worker whose wake-up this thread owes (see append_locked). Nobody
// else drains or frees it before: it is scheduled but in no ready list.
thread_local worker *owed_schedule = nullptr;
thread_local std::chrono::steady_clock::time_point last_wake;

// Only a sparse producer hands off: a flood wakes the home thread each time
// it catches up, and handing the CPU over then keeps both threads on one
// CPU, taking turns (1 worker: 97 -> 59 M values/s).
constexpr auto kSparse = std::chrono::microseconds(100);

bool sparse_wake(bool home_sleeps_here) {
    auto now = std::chrono::steady_clock::now();
    bool sparse = now - last_wake >= kSparse;
    last_wake = now;
    return home_sleeps_here && sparse;
}
}  // namespace

void defer_schedule_locked(worker *w) {
    if (owed_schedule && owed_schedule != w) run_deferred_schedule();  // rare: two at once
    owed_schedule = w;
}

void run_deferred_schedule(bool hand_off) {
    worker *w = owed_schedule;
    if (!w) return;
    owed_schedule = nullptr;
    bool here = dispatcher_schedule(w->dispatcher, w);  // w may be freed now
    if (sparse_wake(here) && hand_off) sched_yield();
}

void Entry::release() {
    if (destroy) destroy(value);
    destroy = nullptr;
    value = nullptr;
}

bool counts_against_capacity(worker_event_type t) {
    return t == WORKER_EV_YIELDED || t == WORKER_EV_WARNED ||
           t == WORKER_EV_PROGRESS || t == WORKER_EV_CUSTOM || t == WORKER_EV_OUTPUT;
}

// LATEST keeps one undelivered yield and one progress entry: their slots.
static int latest_slot(worker_event_type t) {
    return t == WORKER_EV_YIELDED ? 0 : t == WORKER_EV_PROGRESS ? 1 : -1;
}

constexpr size_t kMinCompaction = 64;  // tombstones tolerated before compacting

// May throw bad_alloc (a new chunk) before anything changed: e keeps its payload.
static Entry *append_locked(worker *w, Entry &&e) {
    if (w->stream.next_push_allocates()) fault::check(fault::StreamChunk);
    bool counted = counts_against_capacity(e.type);
    size_t size = e.size;
    Entry *slot = w->stream.push_back(std::move(e));
    if (counted) {
        w->data_entries++;
        w->data_bytes += size;
        publish_counts_locked(w);
    }
    if (!w->slow_pending.load(std::memory_order_relaxed))
        w->slow_pending.store(true, std::memory_order_release);  // closes the fast lane
    // Empty -> non-empty: exactly one wakeup for the whole batch, posted
    // once this thread has let go of w->mu (the GUI, woken by it, takes
    // w->mu first thing: posting under it cost a context switch).
    if (!w->scheduled.load(std::memory_order_relaxed) && !w->scheduled.exchange(true))
        defer_schedule_locked(w);
    return slot;
}

// Large enough for a full default capacity; a worker allowed more queues
// the rest in the slow lane.
static size_t ring_slots(const worker *w) {
    size_t want = w->policy == WORKER_BLOCK ? w->capacity : WORKER_DEFAULT_CAPACITY;
    size_t n = 16;
    while (n < want && n < 1024) n *= 2;
    return n;
}

bool ring_yield(worker *w, Entry &e, std::unique_lock<qtw::StreamMutex> *lk) {
    if (e.type != WORKER_EV_YIELDED || w->policy == WORKER_LATEST || w->pipe_out ||
        w->helper_process || w->progress_total > 0 || e.size != 0 || current_ctx() != &w->ctx)
        return false;
    // Entries of the slow lane go first; pause and quit are the slow lane's.
    if (w->slow_pending.load(std::memory_order_acquire) ||
        w->abort_requested.load(std::memory_order_relaxed) ||
        w->pause_requested.load(std::memory_order_relaxed))
        return false;
    YieldRing *r = w->ring.load(std::memory_order_relaxed);  // only this thread stores it
    if (!r) {
        r = YieldRing::create(ring_slots(w));
        if (!r) return false;
        w->ring.store(r, std::memory_order_release);
        // Once per worker, a full fence: the home thread going idle looks
        // for the ring after a fence of its own and skips its heavy fence
        // when there is none (drain_worker); one of the two sees the other.
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    if (w->policy == WORKER_BLOCK && r->producer_entries(false) >= w->capacity &&
        r->producer_entries(true) >= w->capacity)
        return false;  // at capacity: the slow lane waits for room
    if (!r->try_push(RingSlot{e.value, e.destroy})) return false;
    e.value = nullptr;
    e.destroy = nullptr;
    // Dekker with the dispatcher going idle (it clears `scheduled`, passes
    // heavy_fence, then looks at the ring): one of the two sees the
    // other, and exactly one of them wins the exchange and schedules w.
    light_fence();
    if (!w->scheduled.load(std::memory_order_relaxed) && !w->scheduled.exchange(true)) {
        if (lk)
            defer_schedule_locked(w);
        else if (sparse_wake(dispatcher_schedule(w->dispatcher, w)))
            sched_yield();  // no lock held: the home thread's turn (see ScheduleAfterUnlock)
    }
    return true;
}

bool keep_for_delivery(worker *w, worker_event_type type, size_t size) {
    if (w->abort_requested.load(std::memory_order_relaxed) &&
        (type == WORKER_EV_YIELDED || type == WORKER_EV_PROGRESS))
        return false;
    if (type == WORKER_EV_YIELDED && oversized(w, size)) return claim_oversized_delivery(w);
    return true;
}

void free_ring(worker *w) {
    YieldRing *r = w->ring.exchange(nullptr);
    if (!r) return;
    while (r->readable()) {
        RingSlot s = r->pop();
        if (s.destroy) s.destroy(s.value);
    }
    YieldRing::destroy(r);
}

// Control entries are never lost: without memory they wait for some (the
// lock released meanwhile, so the GUI keeps delivering and freeing).
void push_control_locked(worker *w, std::unique_lock<qtw::StreamMutex> &lk, Entry &&e) {
    for (;;) {
        try {
            append_locked(w, std::move(e));
            return;
        } catch (const std::bad_alloc &) {
            lk.unlock();
            run_deferred_schedule();  // the GUI drains (and frees memory) meanwhile
            wait_for_memory();
            lk.lock();
        }
    }
}

// Like push_control_locked, then unlocks, and only then posts the home
// thread's wakeup: woken at once (often onto this CPU), it does not find
// w->mu still held by the pusher. For worker_call_home's round trip.
void push_control_then_unlock(worker *w, std::unique_lock<qtw::StreamMutex> &lk, Entry &&e) {
    push_control_locked(w, lk, std::move(e));
    lk.unlock();
    run_deferred_schedule();
}

// LATEST: the undelivered entry of the same kind is replaced in O(1): its
// payload moves out (destroyed after unlocking) and its place in the stream
// becomes a tombstone the dispatcher skips. Tombstones are compacted away
// once they outnumber the live entries, so a LATEST stream holds O(capacity)
// entries however long the GUI stalls (it grew by 655 MB/s before).
static void compact_tombstones_locked(worker *w) {
    w->stream.compact([](const Entry &e) { return e.tombstone; },
                      [w](Entry *from, Entry *to) {
                          for (Entry *&l : w->latest)
                              if (l == from) l = to;
                      });
    w->tombstones = 0;
}

static bool take_stale_locked(worker *w, int slot, Entry *stale) {
    Entry *old = w->latest[slot];
    if (!old) return false;
    *stale = std::move(*old);
    old->tombstone = true;
    w->latest[slot] = nullptr;
    w->data_entries--;
    w->data_bytes -= stale->size;
    publish_counts_locked(w);
    if (++w->tombstones > kMinCompaction && w->tombstones * 2 > w->stream.size())
        compact_tombstones_locked(w);
    return true;
}

void take_stream_locked(worker *w, ChunkQueue<Entry> &batch) {
    batch.swap(w->stream);
    w->latest[0] = w->latest[1] = nullptr;  // now being delivered: not replaceable
    w->tombstones = 0;
}

bool release_unlocked(std::unique_lock<qtw::StreamMutex> &lk, Entry *e) {
    if (!e->destroy) return false;
    lk.unlock();
    e->release();
    lk.lock();
    return true;
}

int push_data_locked(worker *w, std::unique_lock<qtw::StreamMutex> &lk, Entry &e, Entry *stale) {
    int slot = w->policy == WORKER_LATEST ? latest_slot(e.type) : -1;
    if (slot >= 0 && take_stale_locked(w, slot, stale) && slot == 0) w->dropped.fetch_add(1);
    // Output waits at capacity under every policy: a chatty worker cannot
    // exhaust memory, and no line is ever dropped.
    bool bounded = w->policy != WORKER_QUEUE || e.type == WORKER_EV_OUTPUT;
    while (!w->abort_requested && bounded &&
           (pending_entries_locked(w) >= w->capacity || over_budget_locked(w, e.size)) &&
           !home_is_awaiting(w)) {
        // The dropped frame goes before the wait, not after: else it and
        // the frame being drawn both live, past the budget.
        if (release_unlocked(lk, stale)) continue;
        w->waiting_size = e.size;
        wait_for_space_locked(w, lk);
        w->waiting_size = 0;
    }
    // After quit, yields are refused (the producer should return) but a
    // warning, progress or custom event still reaches the GUI, unblocked.
    if (w->abort_requested && e.type == WORKER_EV_YIELDED) return WORKER_ABORTED;
    if (ring_yield(w, e, &lk)) return WORKER_OK;  // room again, and the slow lane is empty
    bool alone = oversized(w, e.size);
    if (alone) w->oversized_shown = false;
    Entry *placed = append_locked(w, std::move(e));
    if (slot >= 0) w->latest[slot] = placed;
    // A value larger than the budget went in alone: nothing more until it
    // has been delivered, so the bytes pending fall back within the budget.
    // (A quit meanwhile drops it, ABORTED, unless it was being shown.)
    while (alone && !w->abort_requested && past_budget_locked(w) && !home_is_awaiting(w))
        wait_for_space_locked(w, lk);
    bool dropped = alone && w->abort_requested && past_budget_locked(w) && !w->oversized_shown;
    return dropped ? WORKER_ABORTED : WORKER_OK;
}

int push_data(worker *w, Entry &&e) {
    Entry stale;
    int rc;
    ScheduleAfterUnlock wake;
    try {
        std::unique_lock<qtw::StreamMutex> lk(w->mu);
        rc = push_data_locked(w, lk, e, &stale);
    } catch (const std::bad_alloc &) {
        rc = WORKER_ENOMEM;  // e still holds its payload: destroyed below
    }
    stale.release();
    if (rc != WORKER_OK) e.release();
    return rc;
}

bool try_push_output(worker *w, std::string &&line, int stream_no) {
    ScheduleAfterUnlock wake;
    try {
        Entry e(WORKER_EV_OUTPUT);
        e.text = std::make_unique<std::string>(std::move(line));
        e.code = stream_no;
        std::lock_guard<StreamMutex> lk(w->mu);
        // Never after the function ended: the outcome is the last data entry.
        if (w->phase != Phase::Running || pending_entries_locked(w) >= w->capacity) return false;
        append_locked(w, std::move(e));
        return true;
    } catch (const std::bad_alloc &) {
        return false;  // passed through only, and counted, like a line at capacity
    }
}

}  // namespace qtw
