// Delivery of one worker's entries: the fast lane's ring first, then the
// slow lane's batch; each entry shown to the callbacks, run (a call_home)
// or destroyed (keep_for_delivery); capacity handed back to the producer.
#include "barrier.h"
#include "delivery.h"

namespace qtw {

namespace {

constexpr size_t kQuota = 512;  // entries per worker per round-robin turn
constexpr size_t kGarbageBatch = 64;  // emptied chunks (~450 KB) per hand-off
constexpr auto kRefillGrace = std::chrono::microseconds(20);

struct EventBox {
    worker_event ev;
    bool taken;
};

}  // namespace

static void deliver(worker *w, Entry &e);

// Shared by every worker without a callback (leaked: workers may deliver
// during static destruction).
static const std::shared_ptr<ConnectionSnapshot> &no_connections() {
    static auto *none = new std::shared_ptr<ConnectionSnapshot>(std::make_shared<ConnectionSnapshot>());
    return *none;
}
QTW_MAKE_AT_LOAD(no_connections);

static bool ring_readable(worker *w) {
    YieldRing *r = w->ring.load(std::memory_order_acquire);
    return r && r->readable();
}

struct Freed {
    size_t entries = 0;  // slow-lane data entries delivered or dropped
    ByteCount bytes = 0;
    bool finished = false;
};

// One entry: shown to the callbacks, run (a call_home), or destroyed.
static void handle(worker *w, Entry &e, bool discard, Freed &freed) {
    if (e.type == WORKER_EV_PAUSED || e.type == WORKER_EV_FINISHED) dispatcher_reply_delivered(w);
    if (e.type == WORKER_EV_FINISHED) {
        freed.finished = true;
        flush_delivered(w);  // a FINISHED callback sees every delivered value destroyed
        // Before its callbacks run: a connect from one of them is
        // refused (ESTATE) instead of returning an id never called.
        std::lock_guard<qtw::StreamMutex> lk(w->mu);
        w->finished_delivered = true;
    }
    if (discard || !keep_for_delivery(w, e.type, e.size))
        e.release();  // quit (or no home left): destroyed, not shown
    else if (e.type == kEvCallHome)
        run_home_call(w, e);  // a worker_call_home's turn
    else
        deliver(w, e);
}

// Makes w->snapshot w's connections as of now (under w->mu); the one it
// replaces goes to `old`, to die outside the lock (a last reference
// destroys user_data). The snapshot is w->conns itself, frozen from now on.
static void refresh_snapshot_locked(worker *w, std::shared_ptr<ConnectionSnapshot> &old) {
    std::shared_ptr<ConnectionSnapshot> fresh = w->conns ? w->conns : no_connections();
    w->conns_shared = true;
    w->snapshot_version = w->conn_version.load();
    old = std::move(w->snapshot);
    w->snapshot = std::move(fresh);
}

static bool snapshot_stale(const worker *w) {
    return w->conn_version.load() != w->snapshot_version || !w->snapshot;
}

// w's connections as of now, by type. A raw pointer, not a shared_ptr copy: two
// atomic read-modify-writes per value were a fifth of the GUI's time at
// 25 M values/s. Safe: only this thread replaces w->snapshot, and a nested
// delivery of w cannot start (w->delivering).
static const ConnectionSnapshot *connections(worker *w) {
    if (snapshot_stale(w)) {  // a connect or disconnect during this turn
        std::shared_ptr<ConnectionSnapshot> old;
        std::lock_guard<qtw::StreamMutex> lk(w->mu);
        refresh_snapshot_locked(w, old);
    }
    return w->snapshot.get();
}

// Calls w's callbacks for box's event (custom ones filtered by name); true
// if one ran. Only a callback that ran handles an error: one disconnected
// during this delivery must not make it silent.
static bool call_connections(worker *w, EventBox &box, const std::string *name) {
    bool handled = false;
    const ConnectionSnapshot *snap = connections(w);
    int t = box.ev.type;
    for (size_t i = snap->begin[t], end = snap->begin[t + 1]; i < end; i++) {
        const auto &c = snap->conns[i];
        if (c->filter_name && (!name || c->custom_name != *name)) continue;
        if (c->invoke(&box.ev)) handled = true;
    }
    return handled;
}

static void deliver(worker *w, Entry &e) {
    EventBox box{};
    box.ev.type = e.type;
    box.ev.source = w;
    box.ev.value = e.value;
    box.ev.code = e.code;
    box.ev.done = e.done;
    box.ev.total = e.total;
    if (e.text) {
        if (e.type == WORKER_EV_CUSTOM)
            box.ev.name = e.text->c_str();
        else
            box.ev.message = e.text->c_str();
    }
    if (e.type == WORKER_EV_OUTPUT) box.ev.name = e.code == 2 ? "stderr" : "stdout";
    bool handled = call_connections(w, box, e.text.get());
    if (e.type == WORKER_EV_ERRORED && !handled) report_unhandled_error(&box.ev);
    void *value = e.value;
    worker_destroy_fn destroy = box.taken ? nullptr : e.destroy;  // taken: the callback owns it
    e.value = nullptr;
    e.destroy = nullptr;
    release_delivered(w, e.type, value, destroy);
}

// A value of the fast lane: a plain yield (no text, no size to claim).
static void deliver_ring_value(worker *w, const RingSlot &s, bool discard) {
    if (discard || !keep_for_delivery(w, WORKER_EV_YIELDED, 0)) {
        if (s.destroy) s.destroy(s.value);  // quit (or no home left): destroyed, not shown
        return;
    }
    EventBox box{};
    box.ev.type = WORKER_EV_YIELDED;
    box.ev.source = w;
    box.ev.value = s.value;
    call_connections(w, box, nullptr);
    release_delivered(w, WORKER_EV_YIELDED, s.value, box.taken ? nullptr : s.destroy);
}

// Room is handed back to a waiting producer during a turn, not only at
// its end: the entries delivered so far stop counting before the next
// callback runs, so a slow callback later in the turn does not hold room
// that is free (a capacity-2 worker computes its next frame while the GUI
// draws the current one). At most once per step of entries or bytes: a
// flood at capacity would otherwise take the lock per value.
// (space_waiters is looked at once per step too: per value, its load cost
// the flood 5-10 %.)
struct Settle {
    size_t step;           // entries delivered between two looks
    ByteCount bytes_step;  // or bytes (0: no budget)
    size_t at = 0;         // the turn's entry count at the last look
    ByteCount bytes_at = 0;
    explicit Settle(const worker *w)
        : step(std::max<size_t>(1, w->capacity / 8)), bytes_step(w->capacity_bytes / 8) {}
    bool due(const worker *w, size_t n, const Freed &freed) {
        if (n - at < step && !(bytes_step && freed.bytes - bytes_at >= bytes_step)) return false;
        if (w->space_waiters.load(std::memory_order_relaxed)) return true;
        at = n;
        bytes_at = freed.bytes;
        return false;
    }
};

// Under w->mu: what was delivered stops counting against the capacity; a
// producer waiting for room is woken once half is free (one wake-up per
// half capacity, not one per value) or its frame fits the budget.
static void hand_back_room_locked(worker *w, Freed &freed) {
    w->data_entries -= freed.entries;
    w->data_bytes -= freed.bytes;
    publish_counts_locked(w);
    freed.entries = 0;
    freed.bytes = 0;
    if (w->space_waiters.load(std::memory_order_relaxed) && half_free_locked(w)) {
        w->space_cv.notify_all();
        w->woke_producer_at = std::chrono::steady_clock::now();
    }
}

static void settle_turn(worker *w, YieldRing *ring, Freed &freed, Settle &settle, size_t n) {
    settle.at = n;
    settle.bytes_at = 0;
    if (ring) ring->publish();
    flush_delivered(w);  // to the producer, which destroys them at its next yield
    // space_waiters stays set until the producer has woken: should it find
    // too little room and wait again during the next callback, what that
    // turn delivers before it is still handed back.
    std::lock_guard<qtw::StreamMutex> lk(w->mu);
    hand_back_room_locked(w, freed);
}

// Delivers part of w's stream; true if w has more and stays ready.
// The fast lane (the ring) goes first: while the slow lane holds an
// entry the worker adds nothing to the ring, so every ring entry is
// older than the worker's slow ones. The slow lane is swapped out whole
// (O(1) under the lock) into w->batch, so the producer keeps filling
// while the GUI delivers; capacity counts both.
bool drain_worker(worker *w, DrainBudget &clock, bool discard) {
    ChunkQueue<Entry> &batch = w->batch;  // home thread only, w->delivering guards it
    std::shared_ptr<ConnectionSnapshot> old_snapshot;  // dies unlocked (after lk)
    // One critical section starts the turn (and, for a short worker, a
    // second one ends it): a short worker's whole stream is delivered
    // with two lock round trips on w->mu besides FINISHED's.
    std::unique_lock<qtw::StreamMutex> lk(w->mu);
    if (w->delivering) {
        // A callback re-entered the loop: delivering here would
        // overtake its batch. The outer drain requeues w when done.
        w->requeue_after_delivery = true;
        return false;
    }
    w->delivering = true;
    // The ring's entries are all older than the slow lane's (the worker
    // adds none to the ring while the slow lane holds one): taking the
    // slow lane now keeps the order.
    if (batch.empty() && !w->stream.empty()) take_stream_locked(w, batch);
    if (snapshot_stale(w)) refresh_snapshot_locked(w, old_snapshot);
    lk.unlock();
    YieldRing *ring = w->ring.load(std::memory_order_acquire);
    Freed freed;
    Settle settle(w);
    size_t n = 0;
    bool stop = false;
    while (!stop && n < kQuota) {
        // Made meanwhile (its first yield): looked for again before every
        // slow entry, or a ring value made before it would be overtaken
        // (the stress test saw values after FINISHED).
        if (!ring) ring = w->ring.load(std::memory_order_acquire);
        if (size_t ready = ring ? ring->readable() : 0) {
            for (; ready && n < kQuota; ready--, n++) {
                if (settle.due(w, n, freed)) settle_turn(w, ring, freed, settle, n);
                deliver_ring_value(w, ring->pop(), discard);
                if (clock.tick()) {
                    stop = true;
                    break;
                }
            }
            ring->publish();  // room for the producer: one store per batch
            continue;
        }
        if (batch.empty()) {
            lk.lock();
            if (w->stream.empty()) break;  // w->mu stays held: the end of the turn
            take_stream_locked(w, batch);
            lk.unlock();
            continue;  // an entry the ring got meanwhile goes first
        }
        if (settle.due(w, n, freed)) settle_turn(w, ring, freed, settle, n);
        Entry e = batch.pop_front();
        n++;
        if (e.tombstone) continue;
        if (counts_against_capacity(e.type)) {
            freed.entries++;
            freed.bytes += e.size;
        }
        handle(w, e, discard, freed);
        if (clock.tick()) break;
    }
    if (has_staged_deliveries(w)) {
        if (lk.owns_lock()) lk.unlock();  // a destroy function may run in there
        flush_delivered(w);  // the values delivered in this turn, to the producer
    }
    bool more;
    {
        if (!lk.owns_lock()) lk.lock();
        w->delivering = false;
        hand_back_room_locked(w, freed);
        bool slow_left = !batch.empty() || !w->stream.empty();
        if (!slow_left) w->slow_pending.store(false, std::memory_order_release);  // the fast lane reopens
        more = slow_left || ring_readable(w);
        // A producer woken at capacity refills within microseconds: w stays
        // ready that long instead of a round trip through idle (a heavy
        // fence, the eventfd, poll) per half capacity; measured with 4
        // flooding workers. (No clock read for a worker never woken so.)
        if (!more && !discard && w->woke_producer_at != std::chrono::steady_clock::time_point{} &&
            std::chrono::steady_clock::now() - w->woke_producer_at < kRefillGrace)
            more = true;
        if (!more) {
            // Idle: the Dekker half of ring_yield's. A yield that did
            // not see `scheduled` cleared is seen in the ring here
            // (loaded afresh: the first yield may have made the ring).
            // A worker that never used the ring (most short ones) costs
            // no system call: ring_yield fences after making the ring,
            // so a ring not seen here is one whose yield sees this store.
            w->scheduled.store(false, std::memory_order_seq_cst);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (w->ring.load(std::memory_order_acquire)) {
                heavy_fence();
                if (ring_readable(w) && !w->scheduled.exchange(true)) more = true;
            }
        }
        if (w->requeue_after_delivery) {
            w->requeue_after_delivery = false;
            more = more || w->scheduled.load();
        }
        if (freed.finished) w->finished_delivered = true;
        lk.unlock();
    }
    // Emptied chunks of a large backlog are freed on a pool thread: the
    // free() that ends a backlog can hand the heap back to the kernel
    // (20-35 ms for 800 MB), which must not stall this loop.
    if (batch.garbage_size() >= kGarbageBatch || (freed.finished && batch.garbage_size()))
        pool_run_here_or_after(ChunkQueue<Entry>::free_garbage, batch.take_garbage());
    if (freed.finished) {
        release(w);  // the library's reference taken by worker_start
        return false;
    }
    return more;
}

}  // namespace qtw

extern "C" {

void *worker_event_take(worker_event *ev) {
    if (!ev) return nullptr;
    auto *box = reinterpret_cast<qtw::EventBox *>(ev);
    void *v = ev->value;
    ev->value = nullptr;
    box->taken = true;
    return v;
}

}  // extern "C"
