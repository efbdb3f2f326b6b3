// Delivered yields handed back to the producer for destruction.
//
// Why: a producer that mallocs large frames (1 MiB image frames) and a GUI
// that frees each one after its callback meet in glibc's thread arena. When
// the GUI catches up with a producer a few frames ahead, it frees them in a
// burst; they merge with the top of the arena, glibc trims it (madvise
// MADV_DONTNEED, with TLB shoot-downs to the producer's CPU), and the
// producer page-faults every page of its next frames in again: ~10 k
// frames/s instead of 50-130 k, decided by scheduling luck run by run.
//
// So a delivered payload (thread workers without a byte budget) goes into a
// small per-worker ring instead, and the producer destroys the oldest one
// at each of its yields — right after it allocated the next frame, right
// before it allocates another, so malloc hands the same memory back and the
// working set stays constant. What the producer does not take back in time
// is destroyed by its home thread after kMaxAge (a timer that runs only
// while something is held), and everything when the function returns.
#include "worker_p.h"

#include <QObject>
#include <QTimer>

#include <algorithm>

namespace qtw {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMaxAge = std::chrono::milliseconds(5);  // then the home thread destroys it

// Takes the oldest held payload out (under r.mu).
Recycler::Held take_oldest_locked(Recycler &r) {
    Recycler::Held h = r.ring[r.head];
    r.ring[r.head] = Recycler::Held{};
    r.head = (r.head + 1) % Recycler::kSlots;
    r.count.store(r.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return h;
}

void destroy_held(const Recycler::Held &h) {
    if (h.destroy) h.destroy(h.value);
}

// Destroys everything held, one at a time with r.mu released (a destroy
// function runs user code).
void destroy_all(Recycler &r, std::unique_lock<std::mutex> &lk) {
    while (r.count.load(std::memory_order_relaxed) > 0) {
        Recycler::Held h = take_oldest_locked(r);
        lk.unlock();
        destroy_held(h);
        lk.lock();
    }
}

// The workers holding payloads delivered on this (home) thread, and the
// timer that ages them out. Raw pointers, validated with acquire() at each
// tick: a worker freed meanwhile is simply skipped (its ring died with it).
struct HomeAging {
    QTimer *timer = nullptr;  // a child of this thread's dispatcher
    std::vector<worker *> holding;
};
thread_local HomeAging home_aging;

void age_out(Clock::time_point now) {
    auto &list = home_aging.holding;
    auto keep = list.begin();
    for (worker *w : list) {
        if (!acquire(w)) continue;  // freed: its Recycler destroyed what it held
        Recycler::Held old[Recycler::kSlots];
        int n = 0;
        bool still;
        Recycler *rp = w->recycler.load(std::memory_order_acquire);
        if (!rp) {  // a new worker at a freed one's address: nothing held
            release(w);
            continue;
        }
        {
            Recycler &r = *rp;
            std::lock_guard<std::mutex> lk(r.mu);
            while (r.count.load(std::memory_order_relaxed) > 0 && now - r.ring[r.head].delivered >= kMaxAge)
                old[n++] = take_oldest_locked(r);
            still = r.count.load(std::memory_order_relaxed) > 0;
            r.listed = still;
        }
        for (int i = 0; i < n; i++) destroy_held(old[i]);
        if (still) *keep++ = w;
        release(w);
    }
    list.erase(keep, list.end());
    if (list.empty()) home_aging.timer->stop();
}

// On the home thread: makes sure the age check runs. false: no memory for it
// (the caller then destroys the payload at once).
bool watch_ages(worker *w) {
    HomeAging &a = home_aging;
    try {
        if (!a.timer) {
            a.timer = new QTimer(dispatcher_object(w->dispatcher));
            a.timer->setInterval(int(kMaxAge.count()));
            QObject::connect(a.timer, &QTimer::timeout, a.timer, [] { age_out(Clock::now()); });
        }
        a.holding.push_back(w);
    } catch (const std::bad_alloc &) {
        return false;
    }
    if (!a.timer->isActive()) a.timer->start();
    return true;
}

bool may_hold(const worker *w, worker_event_type type, worker_destroy_fn destroy) {
    // A budgeted stream counts bytes until destroyed: held frames would hold
    // up its producer. Process workers' frames are shared memory, recycled
    // by the helper's own protocol.
    return type == WORKER_EV_YIELDED && destroy && w->capacity_bytes == 0 &&
           !w->helper_process && w->dispatcher;
}

}  // namespace

Recycler::~Recycler() {
    for (int i = 0; i < nstaged; i++) destroy_held(staged[i]);
    while (count.load(std::memory_order_relaxed) > 0) destroy_held(take_oldest_locked(*this));
}

void release_delivered(worker *w, worker_event_type type, void *value, worker_destroy_fn destroy) {
    Recycler *rp = w->recycler.load(std::memory_order_acquire);
    if (!rp || !may_hold(w, type, destroy)) {
        if (destroy) destroy(value);
        return;
    }
    Recycler &r = *rp;
    r.staged[r.nstaged++] = Recycler::Held{value, destroy, {}};  // the recycler owns it now
    if (r.nstaged == Recycler::kSlots) flush_delivered(w);
}

bool has_staged_deliveries(const worker *w) {
    Recycler *rp = w->recycler.load(std::memory_order_acquire);
    return rp && rp->nstaged > 0;
}

void flush_delivered(worker *w) {
    if (!has_staged_deliveries(w)) return;
    Recycler *rp = w->recycler.load(std::memory_order_acquire);
    Recycler &r = *rp;
    int n = r.nstaged;
    r.nstaged = 0;
    Recycler::Held evicted[Recycler::kSlots];
    int nevicted = 0;
    bool held = false, list = false;
    {
        // Never waits for the producer: when it has the ring, destroy here.
        std::unique_lock<std::mutex> lk(r.mu, std::try_to_lock);
        if (lk && r.open) {
            auto now = Clock::now();
            for (int i = 0; i < n; i++) {
                // Full: the oldest goes now (a lag beyond kSlots frames).
                if (r.count.load(std::memory_order_relaxed) == Recycler::kSlots)
                    evicted[nevicted++] = take_oldest_locked(r);
                int tail = (r.head + r.count.load(std::memory_order_relaxed)) % Recycler::kSlots;
                r.ring[tail] = r.staged[i];
                r.ring[tail].delivered = now;
                r.count.store(r.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            }
            held = true;
            list = !r.listed;
            r.listed = true;
        }
    }
    for (int i = 0; i < nevicted; i++) destroy_held(evicted[i]);
    if (!held) {
        for (int i = 0; i < n; i++) destroy_held(r.staged[i]);
        return;
    }
    if (list && !watch_ages(w)) {
        // No age check: give back what this worker holds at once.
        std::unique_lock<std::mutex> lk(r.mu);
        r.listed = false;
        destroy_all(r, lk);
    }
}

void make_recycler(worker *w) {
    if (w->capacity_bytes || w->helper_process) return;  // never held: see may_hold
    w->recycler.store(new (std::nothrow) Recycler, std::memory_order_release);  // none: not held
}

void free_recycler(worker *w) { delete w->recycler.exchange(nullptr); }

void recycle_one(worker *w) {
    Recycler *rp = w->recycler.load(std::memory_order_relaxed);  // made by this thread
    if (!rp || rp->count.load(std::memory_order_relaxed) == 0) return;  // most yields: no lock
    Recycler &r = *rp;
    Recycler::Held h;
    {
        std::unique_lock<std::mutex> lk(r.mu, std::try_to_lock);  // busy: at the next yield
        if (lk && r.count.load(std::memory_order_relaxed) > 0) h = take_oldest_locked(r);
    }
    destroy_held(h);
}

void recycle_close(worker *w) {
    Recycler *rp = w->recycler.load(std::memory_order_relaxed);  // made by this thread
    if (!rp) return;  // nothing was ever held
    Recycler &r = *rp;
    std::unique_lock<std::mutex> lk(r.mu);
    r.open = false;
    destroy_all(r, lk);
}

}  // namespace qtw
