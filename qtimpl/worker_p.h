// Private worker object shared by the shim's translation units.
// All state that crosses threads is guarded by a lock or is atomic (each
// part of struct worker below names its guard), so ThreadSanitizer can
// check it; Qt only carries wakeups, never payloads.
#pragma once

#include "qtworker.h"
#include "chunk_queue.h"
#include "sync.h"
#include "yield_ring.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <cerrno>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

class QObject;

namespace qtw {

// The sum of the sizes pending (capacity_bytes): each size may be up to
// PTRDIFF_MAX, so a size_t sum of three wraps; this type holds the sum of as
// many entries as memory can hold. worker_backlog shows it saturated.
#if SIZE_MAX > 0xffffffffu
__extension__ typedef unsigned __int128 ByteCount;
#else
typedef unsigned long long ByteCount;
#endif

class Dispatcher;
struct OutputStream;

// Delivered yields whose destroy waits for the producer's next yields
// (recycle.cpp): a payload freed just before the producer's next allocation
// keeps malloc reusing the same memory. Freed in bursts when the GUI caught
// up, large frames made glibc trim its thread arena (madvise) every few
// frames, and the producer page-faulted each one in again.
struct Recycler {
    static constexpr int kSlots = 16;  // a lag of up to 16 frames is absorbed
    struct Held {
        void *value = nullptr;
        worker_destroy_fn destroy = nullptr;
        std::chrono::steady_clock::time_point delivered;
    };
    std::mutex mu;
    std::atomic<int> count{0};  // lets the producer skip mu when nothing is held
    Held ring[kSlots];          // oldest at head; guarded by mu
    int head = 0;
    bool open = true;           // false once the function has returned
    bool listed = false;        // in its home thread's age check
    // Delivered on the home thread, handed to the ring in groups (home
    // thread only): one lock per group, not per value (a lock per value on
    // both sides cost the 8-byte payload row 30 %).
    Held staged[kSlots];
    int nstaged = 0;
    Recycler() = default;
    Recycler(const Recycler &) = delete;
    Recycler &operator=(const Recycler &) = delete;
    ~Recycler();                // destroys what is still held
};

// No C++ exception crosses the C API: an entry point runs its body through
// guarded(), which turns what was thrown into a status (bad_alloc ->
// WORKER_ENOMEM, a thread the system refused -> WORKER_EAGAIN).
int status_of_current_exception() noexcept;  // only inside a catch block
template <typename F>
auto guarded(F &&body) noexcept -> decltype(body()) {
    try {
        return body();
    } catch (...) {
        return status_of_current_exception();
    }
}
// Retries an allocation the library cannot do without (an event every
// worker must emit: STARTED, the outcome, FINISHED) until memory is back:
// a documented wait, never a lost event.
void wait_for_memory();

// A leaked singleton made when the library loads, not on first use: a first
// use inside a call that must not fail (worker_quit, worker_await, a scope
// close half done) threw bad_alloc there when memory was short.
#define QTW_MAKE_AT_LOAD(accessor) \
    [[maybe_unused]] const bool made_at_load_##accessor = (accessor(), true)

// A stream entry that is no event: a worker_call_home (call_home.cpp), run
// by the dispatcher in its place in the stream. Within the enum's range of
// values (0..15), above every event type.
constexpr worker_event_type kEvCallHome = worker_event_type(15);
static_assert(WORKER_EV_OUTPUT < 15, "kEvCallHome must stay apart from the event types");

// One entry of a worker's ordered event stream.
struct Entry {
    explicit Entry(worker_event_type t = WORKER_EV_YIELDED) : type(t) {}
    // Moving hands the payload over: the source no longer owns it.
    Entry(Entry &&o) noexcept { *this = std::move(o); }
    Entry &operator=(Entry &&o) noexcept {
        type = o.type;
        tombstone = o.tombstone;
        value = o.value;
        destroy = o.destroy;
        code = o.code;
        done = o.done;
        total = o.total;
        size = o.size;
        text = std::move(o.text);
        o.value = nullptr;
        o.destroy = nullptr;
        o.size = 0;
        return *this;
    }
    Entry(const Entry &) = delete;
    Entry &operator=(const Entry &) = delete;
    worker_event_type type;
    bool tombstone = false;  // LATEST replaced this entry: skip it on delivery
    void *value = nullptr;
    worker_destroy_fn destroy = nullptr;
    int code = 0;
    long long done = 0, total = 0;
    size_t size = 0;  // bytes counted against capacity_bytes (budget.cpp)
    // Message or custom event name. A pointer, so that the many entries that
    // carry no text (yields) stay small and cheap to move.
    std::unique_ptr<std::string> text;

    void release();    // destroy the payload (exactly once)
};

struct Link;  // a pipe from one worker into another (pipe.cpp)

// A value sent into the worker, or piped in through `link`.
struct Sent {
    void *value;
    worker_destroy_fn destroy;
    Link *link = nullptr;  // null: from worker_send
    size_t size = 0;       // bytes, for a link's budget (worker_yield_sized)
};

// A callback connection. Its user_data is destroyed exactly once: by
// worker_disconnect (or, if the callback is running right then, just after
// it returns), or when the worker is freed.
struct Connection {
    // Idle -> DeadAfterCall (disconnected) -> Finishing (its user_data is
    // being destroyed, exactly once) -> Dead.
    enum State { Idle, DeadAfterCall, Finishing, Dead };
    long id;
    worker_event_type type;
    std::string custom_name;  // with filter_name: only this custom event
    bool filter_name;
    worker_callback cb;
    void *user_data;
    worker_destroy_fn user_data_destroy;
    // A call costs no atomic read-modify-write (two per value were a fifth
    // of the GUI's time at 25 M values/s): the home thread marks `running`
    // around it, a disconnect marks `state`, and an asymmetric barrier
    // (barrier.h) lets whichever side sees the other finish the disconnect.
    std::atomic<int> state{Idle};
    std::atomic<bool> running{false};  // written by the home thread only

    void destroy_user_data() {
        worker_destroy_fn d = user_data_destroy;
        user_data_destroy = nullptr;
        if (d) d(user_data);
    }
    void disconnect();                          // any thread
    bool invoke(worker_event *ev);              // home thread; false: not called
    void finish();  // a disconnect: destroy user_data (once), tell a scope close
    ~Connection() { destroy_user_data(); }
};

// A worker's connections, grouped by event type (in connection order within
// a type), so a value scans only its own type's callbacks; [begin[t],
// begin[t + 1]) are type t's. Kept grouped as they are made, so the home
// thread's snapshot is this very object (copy-on-write: worker::conns_shared),
// not a copy and a sort per change.
struct ConnectionSnapshot {
    static constexpr int kTypes = 16;  // worker_event_type and kEvCallHome fit
    std::vector<std::shared_ptr<Connection>> conns;
    uint32_t begin[kTypes + 1] = {};

    void add(std::shared_ptr<Connection> c);      // may throw bad_alloc: then unchanged
    std::shared_ptr<Connection> remove(long id);  // null if there is none
    bool has(long id) const;
};

// Ending: the function has returned, leftovers are being destroyed.
enum class Phase { Created, Started, Running, Ending, Done };

}  // namespace qtw

struct worker_ctx {
    worker *w;
};

namespace qtw {

// A worker's state in parts, one guard each (struct worker below joins
// them, so the code names a field as w->field whatever its part).

// Set by worker_create (and worker_start: dispatcher), read-only afterwards.
struct WorkerConfig {
    worker_fn fn = nullptr;
    void *arg = nullptr;            // handed over once: arg_consumed (mu) says when
    worker_destroy_fn arg_destroy = nullptr;
    std::string name;
    worker_policy policy = WORKER_BLOCK;
    size_t capacity = WORKER_DEFAULT_CAPACITY;
    size_t capacity_bytes = 0;      // 0 = no byte bound
    long long progress_total = 0;
    std::string progress_desc;
    bool has_progress_desc = false;
    std::string group;              // serial group; empty = none
    bool group_exclusive = false;
    long long timeout_ms = 0;
    Dispatcher *home = nullptr;     // of the thread it was created on; null = GUI's
    Dispatcher *dispatcher = nullptr;  // set by worker_start, before the function runs
    bool scoped = false;            // set once, before anyone else has w
    // Process workers (process.cpp): their state, freed with the worker,
    // and a wakeup for the proxy, called under mu after send/pause/resume/quit.
    std::shared_ptr<void> ext;
    void (*poke)(worker *) = nullptr;
    // The module's function of a process worker, running in the helper
    // process (process_child.cpp): worker_call_home is refused there.
    bool helper_process = false;
    // In the helper: called (under mu) when the function takes an input
    // value, so the parent can count it received (pipes into a process).
    void (*on_input_taken)(worker *) = nullptr;
};

// Read and written without a lock; each says by whom.
struct WorkerSignals {
    std::atomic<int> owner_refs{1};  // owner refs and the library's internal refs
    std::atomic<int> total_refs{1};
    // No field here is written per value (the ring's indices, on lines of
    // their own, are): producer and GUI only read them in the steady state,
    // so they share cache lines, and the worker needs no over-aligned
    // allocation (malloc's memalign path and 1.2 KB showed in 1000 short
    // workers' profile).
    std::atomic<bool> abort_requested{false};
    // Written under mu; read without it by a yield's lock-free fast lane.
    std::atomic<bool> pause_requested{false};
    // In (or being drained by) the dispatcher. Set by whoever makes the
    // stream non-empty (under mu, or by the fast lane: see ring_yield),
    // cleared by the dispatcher under mu.
    std::atomic<bool> scheduled{false};
    // The slow lane holds undelivered entries (stream or batch): the fast
    // lane is closed meanwhile, so the worker's entries keep their order.
    // Set under mu by a slow-lane push, cleared under mu by the dispatcher.
    std::atomic<bool> slow_pending{false};
    std::atomic<long long> dropped{0};  // LATEST's replaced values
    // The fast lane: plain yields of the worker's own thread, lock-free
    // (yield_ring.h). Made by that thread at its first such yield.
    std::atomic<YieldRing *> ring{nullptr};
    // Delivered yields the producer destroys (recycle.cpp; its own mu).
    // Made by the worker's thread before its first yield with a destroy,
    // so it exists before anything of its is delivered; 832 bytes that a
    // short worker does without (a worker over 1008 bytes is a large-bin
    // malloc: malloc_consolidate in 1000 short workers' profile).
    std::atomic<Recycler *> recycler{nullptr};
    // Bumped (under mu) when conns changes; read per delivery.
    std::atomic<unsigned> conn_version{0};
};

// Guarded by worker::mu.
struct WorkerLocked {
    mutable StreamMutex mu;
    StreamCondVar space_cv;   // producer waits for room
    StreamCondVar pause_cv;   // parked worker waits for resume/quit
    StreamCondVar done_cv;    // worker_await waits for the function
    Phase phase = Phase::Created;
    bool paused = false;
    bool failed = false;
    bool timed_out = false;
    bool arg_consumed = false;
    std::atomic<bool> reply_expected{false};  // its home polls for PAUSED / FINISHED (in padding)
    int fail_code = 0;
    unsigned resumes = 0;           // parks ended by worker_resume (in padding)
    std::string fail_message;
    void *result = nullptr;
    worker_destroy_fn result_destroy = nullptr;
    // The slow lane of the stream (the fast lane is `ring`).
    ChunkQueue<Entry> stream;
    Entry *latest[2] = {nullptr, nullptr};  // LATEST: undelivered yield, progress
    size_t tombstones = 0;          // LATEST-replaced entries still in stream
    size_t data_entries = 0;        // slow-lane entries counted against capacity
    ByteCount data_bytes = 0;       // their sizes, counted against capacity_bytes
    // Their values, stored at each change (publish_counts_locked) for
    // worker_backlog, which reads them without mu: a producer flooding
    // through the slow lane held mu off the GUI for up to 350 ms (ASan).
    std::atomic<size_t> data_entries_seen{0};
    std::atomic<unsigned long long> data_bytes_seen{0};  // saturated
    bool oversized_shown = false;   // the pending oversized frame reached its callbacks
    // Producers asleep for room: changed under mu; the dispatcher also
    // reads it without the lock during a turn (settle_turn).
    std::atomic<size_t> space_waiters{0};
    size_t waiting_size = 0;        // the size a producer waits to push (0: none)
    // Sent values and piped ones, in order. A ChunkQueue, not a deque: an
    // empty std::deque allocates 576 bytes, for every worker.
    ChunkQueue<Sent> inbox;
    bool input_closed = false;      // worker_close_input, or its last source ended
    bool receive_waiting = false;   // worker_receive waits on pause_cv
    size_t open_sources = 0;        // workers piped in that have not ended
    long long yields = 0;           // auto progress steps
    // A worker_call_home entry is in the stream: changed under mu, also
    // read without it (a timeout-0 call that would only give up).
    std::atomic<bool> home_call_queued{false};
    // Null until the first connect. Once the home thread holds it
    // (conns_shared) it is never changed again: a change copies it.
    std::shared_ptr<ConnectionSnapshot> conns;
    bool conns_shared = false;
    bool finished_delivered = false;
    bool scope_closed = false;      // refuses start and connect
    bool delivering = false;        // a batch is being delivered
    bool requeue_after_delivery = false;
};

// Guarded by other parts of the shim, each under its own lock.
struct WorkerElsewhere {
    // Serial group membership (the groups mutex, groups.cpp).
    bool group_queued = false;      // started, waiting for the group's slot
    bool group_holder = false;      // holds the group's slot
    // Timeout (the watchdog mutex, watchdog.cpp).
    bool watched = false;
    std::multimap<std::chrono::steady_clock::time_point, worker *>::iterator watch_entry;
    // In its dispatcher's list of producers waiting for room (that
    // dispatcher's waiters lock), so a worker_await on the home thread can
    // wake them all.
    worker *space_prev = nullptr, *space_next = nullptr;
    bool space_kicked = false;
    worker *ready_next = nullptr;   // the dispatcher's ready list (its mu)
    worker_scope *scope = nullptr;  // the scopes mutex (scope.cpp)
    std::vector<std::shared_ptr<Link>> pipe_in;  // the pipes mutex (pipe.cpp)
};

// The worker's own thread only (its function and run_worker).
struct WorkerThreadSide {
    OutputStream *output[2] = {nullptr, nullptr};
    // Where its yields go (pipe.cpp): set before start, then read here.
    std::shared_ptr<Link> pipe_out;
};

// The home thread only (its dispatcher's delivery, delivery.cpp).
struct WorkerDeliverySide {
    ChunkQueue<Entry> batch;  // being delivered (w->delivering); swapped with stream
    std::shared_ptr<ConnectionSnapshot> snapshot;
    unsigned snapshot_version = ~0u;
    std::chrono::steady_clock::time_point woke_producer_at{};  // last wake at capacity
};

}  // namespace qtw

struct worker : qtw::WorkerConfig, qtw::WorkerSignals, qtw::WorkerLocked, qtw::WorkerElsewhere,
                qtw::WorkerThreadSide, qtw::WorkerDeliverySide {
    worker_ctx ctx{this};
    ~worker();
};

namespace qtw {

// w's connection list to change, under w->mu: made, or copied if the home
// thread holds it (may throw bad_alloc: then nothing changed).
ConnectionSnapshot &writable_conns_locked(worker *w);

// Delivered payloads (recycle.cpp). On the home thread, after the callbacks:
// destroys e's payload, or keeps it for the producer to destroy.
void release_delivered(worker *w, worker_event_type type, void *value, worker_destroy_fn destroy);
void flush_delivered(worker *w);  // the home thread: hands over what it staged
bool has_staged_deliveries(const worker *w);  // the home thread: anything to flush
void make_recycler(worker *w);  // the producer, before its first yield with a destroy
void free_recycler(worker *w);  // ~worker: destroys what it still holds
void recycle_one(worker *w);    // the producer, after each yield
void recycle_close(worker *w);  // the producer, its function returned: destroys all

// Registry of every allocated worker (to reject stale handles) and of live ones.
bool acquire(const worker *w);          // validates and takes a temporary ref
void release(worker *w);                // drops one total ref; frees at zero
void set_live(worker *w, bool live);    // registry of started, running workers
std::vector<worker *> live_workers();   // new total refs
void register_worker(worker *w);

// Stream: push an entry from the worker thread (policy applies to data
// entries) or a control entry (never waits, never dropped).
bool counts_against_capacity(worker_event_type t);
int push_data(worker *w, Entry &&e);
// The same with mu held; a value LATEST replaced goes to *stale (destroy it
// after unlocking), a refused entry stays in e.
int push_data_locked(worker *w, std::unique_lock<qtw::StreamMutex> &lk, Entry &e, Entry *stale);
// Destroys e's payload with lk unlocked (then relocks); false if it had none.
bool release_unlocked(std::unique_lock<qtw::StreamMutex> &lk, Entry *e);
void push_control_locked(worker *w, std::unique_lock<qtw::StreamMutex> &lk, Entry &&e);
// The fast lane (worker thread only, in its function): a plain yield goes
// into the ring without a lock when nothing needs the slow lane (no pause,
// quit, LATEST, pipe, progress, budget wait, pending slow entry, full
// ring). False: e is untouched, take the slow lane. With lk (the slow lane
// after a wait, mu held) the wake-up is deferred to after unlocking.
bool ring_yield(worker *w, Entry &e, std::unique_lock<qtw::StreamMutex> *lk = nullptr);
// The dispatcher reached e: false if the stream's rules drop it instead of
// showing it (values and progress after a quit, an oversized frame a quit
// overtook); the dispatcher knows no policy of its own.
bool keep_for_delivery(worker *w, worker_event_type type, size_t size);
// ~worker: destroys what the ring still holds.
void free_ring(worker *w);
// A push that makes the stream non-empty owes the dispatcher a wake-up;
// it is posted after w->mu is released: declare a ScheduleAfterUnlock
// before the lock (destroyed after it), or call run_deferred_schedule()
// before waiting with the lock held.
void defer_schedule_locked(worker *w);
// hand_off, on a worker thread holding no lock: a sparse producer that
// woke a home thread sleeping on this CPU gives it the CPU (sched_yield)
// instead of running on until the scheduler preempts (7 µs and more on
// this VM) or the worker blocks.
void run_deferred_schedule(bool hand_off = false);
struct ScheduleAfterUnlock {
    enum HandOff { kHandOff };
    ScheduleAfterUnlock() = default;
    explicit ScheduleAfterUnlock(HandOff) : hand_off_(true) {}
    ScheduleAfterUnlock(const ScheduleAfterUnlock &) = delete;
    ScheduleAfterUnlock &operator=(const ScheduleAfterUnlock &) = delete;
    ~ScheduleAfterUnlock() { run_deferred_schedule(hand_off_); }

private:
    bool hand_off_ = false;
};
// The same, returning with lk unlocked; the wakeup is posted after unlocking.
void push_control_then_unlock(worker *w, std::unique_lock<qtw::StreamMutex> &lk, Entry &&e);
// Hands the whole stream to the dispatcher (batch must be empty).
void take_stream_locked(worker *w, ChunkQueue<Entry> &batch);

// Memory budget (budget.cpp). over_budget_locked: a value of `size` bytes
// must wait for room now; past_budget_locked: more bytes are pending than
// the budget allows (an oversized value: its producer waits for it to go).
// The one rule for a stream and for a piped link: a sized value waits while
// it would take `pending` past `budget` (0 = none); alone, it always goes.
inline bool exceeds_budget(ByteCount pending, size_t size, size_t budget) {
    if (!budget || pending == 0 || size == 0) return false;
    return pending > budget || size > budget - pending;
}
// What is pending in both lanes: the slow lane's counts (under mu) plus
// the ring's (atomics).
inline size_t pending_entries_locked(const worker *w) {
    YieldRing *r = w->ring.load(std::memory_order_acquire);
    return w->data_entries + (r ? r->entries() : 0);
}
inline ByteCount pending_bytes_locked(const worker *w) {
    return w->data_bytes;  // sized values never take the ring
}
inline void publish_counts_locked(worker *w) {
    w->data_entries_seen.store(w->data_entries, std::memory_order_relaxed);
    unsigned long long b = w->data_bytes > ~0ULL ? ~0ULL : (unsigned long long)w->data_bytes;
    w->data_bytes_seen.store(b, std::memory_order_relaxed);
}
inline bool over_budget_locked(const worker *w, size_t size) {
    return exceeds_budget(pending_bytes_locked(w), size, w->capacity_bytes);
}
inline bool oversized(const worker *w, size_t size) {
    return w->capacity_bytes && size > w->capacity_bytes;
}
// Dispatcher: an oversized frame is about to be shown; false if quit came
// first (it is dropped). Its producer's yield says OK once this claimed it.
bool claim_oversized_delivery(worker *w);
inline bool past_budget_locked(const worker *w) {
    return w->capacity_bytes && pending_bytes_locked(w) > w->capacity_bytes;
}
// Room enough to wake a waiting producer: half of capacity and budget
// free — or, with a budget, room for the frame it waits with (frames are
// large: a wake-up per frame is cheap, and a producer held until half the
// budget is free would sit idle beside room for its frame).
inline bool half_free_locked(const worker *w) {
    size_t entries = pending_entries_locked(w);
    if (entries <= w->capacity / 2 &&
        (!w->capacity_bytes || pending_bytes_locked(w) <= w->capacity_bytes / 2))
        return true;
    return w->capacity_bytes && w->waiting_size && entries < w->capacity &&
           !exceeds_budget(pending_bytes_locked(w), w->waiting_size, w->capacity_bytes);
}
// A yield's size: in a process worker every value is a `worker_bytes *`,
// which counts its own.
inline size_t yield_size(const worker *w, const void *value, size_t size) {
    if (!w->helper_process) return size;
    return value ? static_cast<const worker_bytes *>(value)->size : 0;
}

// Serial groups (groups.cpp).
std::unique_lock<std::mutex> group_lock(const worker *w);  // empty lock if no group
bool group_busy_locked(const worker *w);
bool group_admit_locked(worker *w);     // true: run now; false: queued
void group_release(worker *w);          // the function ended: start the next
// b cannot start before a has ended: b is queued in the serial group a holds.
bool group_waits_for(const worker *b, const worker *a);
void group_unadmit_locked(worker *w);   // undo an admission (its start failed)
void group_on_quit(worker *w);          // a queued member is quit: end it now

// Timeouts (watchdog.cpp).
bool watch_timeout(worker *w);  // false: could not be watched (no thread)
void unwatch_timeout(worker *w);

// Worker output streams (output.cpp).
FILE *open_output(worker *w, int stream_no);  // 1 = stdout, 2 = stderr
void close_outputs(worker *w);                  // emits partial lines
// Calls emit(line) for each complete line of buf, carrying the rest in
// partial; a line longer than WORKER_MAX_LINE is emitted in pieces that
// long. A full piece waits for the next byte: a line of exactly that
// length (or a multiple) ends at its '\n' with no empty piece after it.
// `done` counts the bytes taken: emit and partial may throw bad_alloc
// (partial intact), and a retry from `done` emits every line exactly once.
template <typename F>
void split_lines(std::string &partial, const char *buf, size_t n, F &&emit, size_t &done) {
    for (; done < n; done++) {
        if (buf[done] == '\n' || partial.size() == WORKER_MAX_LINE) {
            emit(static_cast<const std::string &>(partial));
            partial.clear();
        }
        if (buf[done] != '\n') partial.push_back(buf[done]);
    }
}
template <typename F>
void split_lines(std::string &partial, const char *buf, size_t n, F &&emit) {
    size_t done = 0;
    split_lines(partial, buf, n, std::forward<F>(emit), done);
}

// A captured line (capture.cpp) as an OUTPUT event of w, without waiting:
// false when w's stream is at capacity or its function is not running.
bool try_push_output(worker *w, std::string &&line, int stream_no);

// Thread pool. pool_try_run / pool_try_submit return false, having queued
// nothing, when no thread can be had (thread limit, memory). The *_here
// forms never fail: without a thread of its own the task runs on this
// thread — on a pool thread right after its current task — so use them for
// short tasks only (freeing memory, ending a worker that never runs, or the
// next member of a serial group, which inherits the ending member's thread).
bool pool_try_run(void (*run)(void *), void *arg);
// Around a wait inside a task (parked, waiting for room): the task stops
// counting against the pool's limit, so a queued task gets a thread.
void pool_blocking_begin();
void pool_blocking_end();
bool pool_try_submit(worker *w);                // run_worker(w) on a pool thread
void pool_run_here_or_after(void (*run)(void *), void *arg);
void pool_submit_or_run_here(worker *w);
// The next member of a serial group: on this pool thread, right after the
// current task (no hand-off, no new thread); elsewhere as above.
void pool_run_after_current(worker *w);

// Body run on the pool thread.
void run_worker(worker *w);

// Home-thread delivery.
Dispatcher *creator_home_dispatcher();
Dispatcher *dispatcher_for(worker *w);
bool dispatcher_is_current_thread(const Dispatcher *d);
QObject *dispatcher_object(Dispatcher *d);  // lives on its home thread
// Wakes d's thread for w; true when that thread sleeps on this CPU (the
// caller may then hand it the CPU: run_deferred_schedule).
bool dispatcher_schedule(Dispatcher *d, worker *w);
// A PAUSED or FINISHED the home thread asked for is due soon: its loop
// polls for it briefly before it sleeps (dispatcher.cpp expect_reply).
// Under w->mu.
// asked: false when a pause still pending was cancelled (worker_resume).
void dispatcher_reply_asked(worker *w, bool asked);
void dispatcher_reply_delivered(worker *w);  // home thread, as PAUSED / FINISHED is delivered
// While the home thread waits (worker_await), no producer homed there waits
// for room: everything the awaited worker waits on (itself, a serial group's
// earlier members, a pipeline's stages) keeps moving. wait_for_space_locked
// waits on w->space_cv unless that is the case.
void wait_for_space_locked(worker *w, std::unique_lock<StreamMutex> &lk);
bool home_is_awaiting(const worker *w);
void begin_home_await(Dispatcher *d);
void end_home_await(Dispatcher *d);
void deliver_all_on_this_thread();
void ensure_exit_hook();
extern std::atomic<int> exit_joining;  // > 0 while the exit hook joins workers
void post_app_quit(int code);  // QCoreApplication::exit(code) on the app thread

// Plugin scopes (scope.cpp).
int scope_join(worker *w, worker_scope *s);  // at create; ESTATE: not open
void scope_forget(worker *w);                // ~worker of a scoped worker
void scope_call_ended();  // a disconnected connection's running call returned
// worker_call_home (call_home.cpp). run_home_call: the dispatcher reached a
// kEvCallHome entry (home thread; consumes it). cancel_home_calls: the home
// thread of d begins a wait (begin_home_await): pending calls of workers
// homed there end with WORKER_EBUSY. home_call_running_for: a call of w, or
// of the member holding the serial group slot w is queued for, is running
// on this thread (worker_await(w) here would never end).
void run_home_call(worker *w, Entry &e);
void cancel_home_calls(Dispatcher *d);
bool home_call_running_for(const worker *w);

// Input (receive.cpp) and pipes (pipe.cpp). take_input_locked pops the
// oldest input value; a source whose link has room again goes to *wake:
// call wake_producer(*wake) once w->mu is released (a source's mu is taken
// before its sink's, never after).
bool take_input_locked(worker *w, void **value, worker_destroy_fn *destroy, worker **wake);
void link_taken_locked(Link *l, size_t size, worker **wake);  // a value of l left the sink's input
void wake_producer(worker *from);                // null: nothing to do
inline void wake_receiver_locked(worker *w) {
    if (w->receive_waiting) w->pause_cv.notify_all();
}
// worker_yield of a piped worker: the value goes into its sink's input
// (policy and capacity apply to the link); same contract as push_data_locked.
int pipe_push_locked(worker *w, std::unique_lock<StreamMutex> &lk, Entry &e, Entry *stale);
void pipe_worker_ended(worker *w);  // run_worker, leftovers destroyed: close / quit
void pipe_stop_sources(worker *w);  // quit, or input closed: quit the workers piped into w
void pipe_forget(worker *w);        // ~worker
// Process workers as pipe ends (pipe.cpp). A process sink forwards its
// input in order (take_forwardable_locked: a LATEST link's value waits while
// one is in the helper, staying replaceable); helper_took: the helper's
// function took n forwarded values, whose links (null for a send) are the
// front of in_helper. pipe_push: a process source's relayed yield.
void take_forwardable_locked(worker *w, std::deque<Sent> &out);
void helper_took(worker *w, std::deque<Sent> &in_helper, long long n);
int pipe_push(worker *w, Entry &&e);
// Worker-side helpers of worker_side.cpp for receive.cpp.
int check_worker_ctx(worker_ctx *ctx);
int park_worker_locked(worker *w, std::unique_lock<StreamMutex> &lk);

// Default error handler.
void report_unhandled_error(worker_event *ev);

// Thread-local current worker context (valid only inside the function).
worker_ctx *current_ctx();
void set_current_ctx(worker_ctx *ctx);

}  // namespace qtw
