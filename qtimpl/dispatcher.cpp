// Home-thread wake-ups: one Dispatcher QObject per event-loop thread. A worker
// whose stream goes empty -> non-empty is appended to the ready list; the
// first one posts a single wake event. The drain delivers batches round-robin
// across workers within a time budget, then gives the loop back (timers,
// paint, input run) and continues on the next turn. What one worker's
// turn delivers is delivery.cpp's.
#include "delivery.h"
#include "worker_p.h"

#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QEvent>
#include <QPointer>
#include <QSocketNotifier>
#include <QThread>

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <cstdio>
#include <map>
#include <vector>

namespace qtw {

namespace {

const QEvent::Type kQuitEvent = QEvent::Type(QEvent::User + 0x5158);
constexpr auto kTurnBudget = std::chrono::milliseconds(4);  // then yield to the loop
constexpr auto kReplyPoll = std::chrono::microseconds(200);  // see expect_reply

int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

static void forget_dispatcher(Dispatcher *d);  // its thread ended

class Dispatcher : public QObject {
public:
    StreamMutex mu;
    // Workers with entries to deliver, linked through worker::ready_next: no
    // allocation, so a schedule can never fail (a worker is in it once).
    worker *ready_head = nullptr, *ready_tail = nullptr;
    bool wake_posted = false;
    bool dead = false;  // the home thread ended: events are destroyed undelivered
    bool discarding = false, discard_again = false;  // discard_task, under mu
    int pending_exit_code = 0;  // worker_app_quit, handed over under mu
    // Producers homed here waiting for room, and worker_await calls running
    // on this thread (see wait_for_space_locked).
    std::mutex waiters_mu;
    worker *space_waiting = nullptr;
    std::atomic<int> awaiting{0};
    // The home thread's wake-up, closed once that thread has ended and no
    // post_wake is writing to it (wake_writers): else every ended QThread
    // home kept a descriptor for good, until worker_create failed (EMFILE).
    std::atomic<int> wake_fd{-1};
    std::atomic<int> wake_writers{0};
    std::atomic<bool> wake_fd_retired{false};
    QSocketNotifier *wake_notifier = nullptr;  // home thread only
    // The CPU the home thread last went back to its loop on: a producer
    // that wakes it from there hands the CPU over (see run_deferred_schedule).
    std::atomic<int> home_cpu{-1};
    // A reply the home thread asked for is due until this time (steady
    // clock, ns; 0: none): see expect_reply. wake_written: a wake-up was
    // written since the home thread last took one (what that poll waits for).
    std::atomic<int64_t> reply_due_ns{0};
    std::atomic<int> replies_due{0};
    std::atomic<bool> wake_written{false};

    Dispatcher() {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
        std::lock_guard<StreamMutex> lk(mu);  // read under mu by watch_wake_fd
        wake_fd.store(fd);
    }

    // In the home thread: a notifier needs that thread's event dispatcher
    // (created on another thread, Qt warns and only arms it later). Wakes
    // written before it exists are not lost: the eventfd stays readable.
    void watch_wake_fd() {
        int fd;
        {
            std::lock_guard<StreamMutex> lk(mu);  // the creator's writes, seen through mu
            fd = wake_fd.load();
            if (dead) return;  // the thread ended before this queued call ran
        }
        auto *n = new QSocketNotifier(qintptr(fd), QSocketNotifier::Read, this);
        wake_notifier = n;
        QObject::connect(n, &QSocketNotifier::activated, this, [this] { on_wake(); });
        if (auto *loop = QThread::currentThread()->eventDispatcher())
            QObject::connect(loop, &QAbstractEventDispatcher::aboutToBlock, this,
                             [this] { poll_for_reply(); }, Qt::DirectConnection);
    }

    // worker_pause and worker_quit of a running worker: its PAUSED or
    // FINISHED typically follows within tens of microseconds (the worker's
    // next yield). A home thread that sleeps in poll() meanwhile is woken by
    // an interrupt to a halted CPU (~15 us here, and where a virtual
    // machine's scheduling tails come in); one that polls a flag instead
    // takes the reply with no wake-up (bench control rows, p50 ~27 -> ~8 us;
    // 200 us kept the p99s below invokeMethod's where 50 us did not).
    // Bounded: at most kReplyPoll of this thread's time after the last such
    // call, then it sleeps as before. It yields between polls, as the pool's
    // spinner does: the worker it waits for may share its CPU, and a pure
    // poll held that worker off for the whole kReplyPoll (one CPU-bound
    // process beside the bench: pause p50 230 us; yielding: 28 us).
    // The poll also ends once every reply asked for was delivered (counted
    // per worker by reply_expected): no poll left over after PAUSED came.
    void expect_reply(worker *w) {
        if (!w->reply_expected.exchange(true)) replies_due.fetch_add(1, std::memory_order_relaxed);
        reply_due_ns.store(steady_ns() + std::chrono::nanoseconds(kReplyPoll).count(),
                           std::memory_order_relaxed);
    }

    // w's PAUSED or FINISHED is being delivered (in the home thread), or
    // the pause it answered was cancelled.
    void reply_delivered(worker *w) {
        if (!w->reply_expected.exchange(false)) return;
        if (replies_due.fetch_sub(1, std::memory_order_relaxed) == 1)
            reply_due_ns.store(0, std::memory_order_relaxed);  // a later ask stores it again
    }

    // In the home thread, as its loop is about to sleep.
    void poll_for_reply() {
        int64_t due = reply_due_ns.load(std::memory_order_relaxed);
        if (due == 0) return;
        auto until = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(due));
        if (!poll_briefly([this] { return wake_written.load(std::memory_order_acquire); }, until, 16))
            reply_due_ns.compare_exchange_strong(due, 0, std::memory_order_relaxed);
    }

    void post_quit(int code) {
        QEvent *quit;
        {
            std::lock_guard<StreamMutex> lk(mu);
            pending_exit_code = code;
            quit = new (std::nothrow) QEvent(kQuitEvent);
        }
        if (quit) QCoreApplication::postEvent(this, quit);
    }

    bool event(QEvent *e) override {
        // The quit event was allocated under mu on another thread and handed
        // over through Qt's own (uninstrumented) lock: taking mu here lets
        // ThreadSanitizer see that hand-over.
        int exit_code;
        {
            std::lock_guard<StreamMutex> lk(mu);
            exit_code = pending_exit_code;
        }
        if (e->type() == kQuitEvent) {
            QCoreApplication::exit(exit_code);
            return true;
        }
        return QObject::event(e);
    }

    // True when the home thread was woken and last slept on this CPU.
    bool schedule(worker *w) {
        bool discard;
        {
            std::lock_guard<StreamMutex> lk(mu);
            push_ready_locked(w);
            if (wake_posted) return false;
            wake_posted = true;
            discard = dead;
        }
        if (!discard) {
            post_wake();
            return home_cpu.load(std::memory_order_relaxed) == sched_getcpu();
        }
        if (!pool_try_run(discard_task, this)) {
            // No thread: the entries wait in the ready list for the next one.
            std::lock_guard<StreamMutex> lk(mu);
            wake_posted = false;
        }
        return false;
    }

    // The home thread's event loop has ended (in that thread): nothing is
    // delivered here any more. What is queued now is destroyed, and so is
    // everything later (on a pool thread): payloads exactly once, FINISHED
    // still frees the worker.
    void home_ended() {
        forget_dispatcher(this);
        {
            std::lock_guard<StreamMutex> lk(mu);
            dead = true;
            wake_posted = true;  // the discard below takes it over
        }
        delete wake_notifier;  // in its own thread, whose dispatcher still exists
        wake_notifier = nullptr;
        wake_fd_retired.store(true);
        if (wake_writers.load() == 0) close_wake_fd();  // else the last writer does
        discard_task(this);
    }

    void close_wake_fd() {
        int fd = wake_fd.exchange(-1);
        if (fd >= 0) ::close(fd);
    }

    // One discard drain at a time: home_ended's and a pool thread's ran
    // together, and one finished (freed) a worker while the other still
    // touched it. A drain asked for meanwhile is run by the one running.
    static void discard_task(void *self) {
        auto *d = static_cast<Dispatcher *>(self);
        {
            std::lock_guard<StreamMutex> lk(d->mu);
            d->wake_posted = false;
            if (d->discarding) {
                d->discard_again = true;
                return;
            }
            d->discarding = true;
        }
        for (;;) {
            d->drain(std::chrono::hours(24), true);
            std::lock_guard<StreamMutex> lk(d->mu);
            if (!d->discard_again) {
                d->discarding = false;
                return;
            }
            d->discard_again = false;
        }
    }

    // Delivers until nothing is ready or the budget is spent.
    void drain(std::chrono::steady_clock::duration budget, bool discard = false) {
        DrainBudget clock(budget);
        {
            std::lock_guard<StreamMutex> lk(mu);
            wake_posted = false;
        }
        for (;;) {
            worker *w;
            {
                std::lock_guard<StreamMutex> lk(mu);
                if (!ready_head) return;
                if (clock.spent()) break;
                w = ready_head;
                ready_head = w->ready_next;
                if (!ready_head) ready_tail = nullptr;
                w->ready_next = nullptr;
            }
            if (drain_worker(w, clock, discard)) {
                std::lock_guard<StreamMutex> lk(mu);
                push_ready_locked(w);  // round-robin: an endless flood starves nobody
            }
        }
        // Budget spent with work left: timers, paint and input run first,
        // then the next loop turn continues.
        {
            std::lock_guard<StreamMutex> lk(mu);
            if (wake_posted) return;
            wake_posted = true;
        }
        post_wake();
    }

private:
    void push_ready_locked(worker *w) {
        w->ready_next = nullptr;
        if (ready_tail)
            ready_tail->ready_next = w;
        else
            ready_head = w;
        ready_tail = w;
    }

    // One wake-up per drain, uv_async_send style: a write to the home
    // thread's eventfd, which its event loop polls (a QSocketNotifier). No
    // allocation (it cannot fail), no Qt lock, and no posted event for
    // ThreadSanitizer to lose track of: what it wakes for is handed over
    // under mu (the ready list).
    void post_wake() {
        // Counted, so that home_ended never closes the descriptor under a
        // write (or lets its number be reused for another file meanwhile).
        wake_writers.fetch_add(1);
        if (!wake_fd_retired.load()) {
            wake_written.store(true, std::memory_order_release);
            eventfd_write(wake_fd.load(std::memory_order_relaxed), 1);
        }
        if (wake_writers.fetch_sub(1) == 1 && wake_fd_retired.load()) close_wake_fd();
    }

    // The eventfd is read after the drain, not before: the first entry (a
    // call_home, a value someone waits to see) is delivered one system call
    // sooner. That read may swallow a wake-up written during the drain, so
    // a wake still owed (wake_posted) is written again.
    void on_wake() {
        wake_written.store(false, std::memory_order_relaxed);
        drain(kTurnBudget);
        eventfd_t n;
        eventfd_read(wake_fd.load(std::memory_order_relaxed), &n);
        bool owed;
        {
            std::lock_guard<StreamMutex> lk(mu);
            owed = wake_posted;
        }
        if (owed) post_wake();
        home_cpu.store(sched_getcpu(), std::memory_order_relaxed);
    }

};

namespace {

struct Dispatchers {
    std::mutex mu;
    std::map<QThread *, Dispatcher *> by_thread;
    // Dispatchers whose thread ended: workers may still point at them, so
    // they live on (reachable: not a leak to the leak checkers).
    std::vector<Dispatcher *> retired;
    QPointer<QCoreApplication> hooked_app;
    int exit_timeout_ms = 1000;
};

// Leaked on purpose: worker threads may still post during static destruction.
Dispatchers &dispatchers() {
    static Dispatchers *d = new Dispatchers;
    return *d;
}
QTW_MAKE_AT_LOAD(dispatchers);

}  // namespace

static void forget_dispatcher(Dispatcher *d) {
    Dispatchers &ds = dispatchers();
    std::lock_guard<std::mutex> lk(ds.mu);
    for (auto it = ds.by_thread.begin(); it != ds.by_thread.end(); ++it) {
        if (it->second != d) continue;
        ds.by_thread.erase(it);  // a new thread at this address starts afresh
        try {
            ds.retired.push_back(d);
        } catch (...) {
            // no memory: it stays allocated all the same, only unlisted
        }
        return;
    }
}

static Dispatcher *dispatcher_for_thread(QThread *home) {
    Dispatchers &ds = dispatchers();
    std::lock_guard<std::mutex> lk(ds.mu);
    Dispatcher *&d = ds.by_thread[home];
    if (!d) {
        d = new Dispatcher;
        if (home == QThread::currentThread()) {
            d->watch_wake_fd();
        } else {
            Dispatcher *fresh = d;
            fresh->moveToThread(home);
            QMetaObject::invokeMethod(fresh, [fresh] { fresh->watch_wake_fd(); }, Qt::QueuedConnection);
        }
        auto *app = QCoreApplication::instance();
        if (!app || home != app->thread()) {
            // Emitted in the ending thread, after its event loop: from here
            // the worker's events are destroyed undelivered, and a new
            // thread at the same address gets a dispatcher of its own.
            Dispatcher *dying = d;
            QObject::connect(home, &QThread::finished, dying, [dying] { dying->home_ended(); },
                             Qt::DirectConnection);
        }
    }
    return d;
}

// Resolved when the worker is created, while its thread surely lives: a
// thread without its own event loop would never deliver, so it gets the
// GUI thread's dispatcher (at start, when an application exists).
// The creating thread is the home only while it runs an event loop (the
// worker is made in a slot, a timer, a queued call). Every started QThread
// has an event dispatcher, but one whose run() never calls exec()
// (QThread::create, a QThreadPool or QtConcurrent task, a loader thread)
// would never deliver: its workers use the GUI thread.
Dispatcher *creator_home_dispatcher() {
    QThread *t = QThread::currentThread();
    auto *app = QCoreApplication::instance();
    if (!app || t == app->thread() || !t->eventDispatcher() || t->loopLevel() == 0) return nullptr;
    return dispatcher_for_thread(t);
}

Dispatcher *dispatcher_for(worker *w) {
    if (w->home) return w->home;
    return dispatcher_for_thread(QCoreApplication::instance()->thread());
}


void post_app_quit(int code) {
    dispatcher_for_thread(QCoreApplication::instance()->thread())->post_quit(code);
}

QObject *dispatcher_object(Dispatcher *d) { return d; }

bool dispatcher_is_current_thread(const Dispatcher *d) {
    return d && d->thread() == QThread::currentThread();
}

bool dispatcher_schedule(Dispatcher *d, worker *w) { return d->schedule(w); }

void dispatcher_reply_asked(worker *w, bool asked) {
    if (asked)
        w->dispatcher->expect_reply(w);
    else
        w->dispatcher->reply_delivered(w);  // it will not come: no longer counted
}

void dispatcher_reply_delivered(worker *w) {
    if (w->reply_expected.load(std::memory_order_relaxed)) w->dispatcher->reply_delivered(w);
}

bool home_is_awaiting(const worker *w) {
    return w->dispatcher && w->dispatcher->awaiting.load(std::memory_order_acquire) > 0;
}

// The producer holds w->mu from its check of `awaiting` (under waiters_mu)
// until wait() releases it; begin_home_await takes w->mu before notifying,
// so the wake-up cannot fall between the two. Lock order: w->mu, then
// waiters_mu (begin_home_await never holds both).
void wait_for_space_locked(worker *w, std::unique_lock<StreamMutex> &lk) {
    Dispatcher *d = w->dispatcher;
    {
        std::lock_guard<std::mutex> g(d->waiters_mu);
        if (d->awaiting.load() > 0) return;
        w->space_prev = nullptr;
        w->space_kicked = false;
        w->space_next = d->space_waiting;
        if (d->space_waiting) d->space_waiting->space_prev = w;
        d->space_waiting = w;
    }
    w->space_waiters.fetch_add(1, std::memory_order_relaxed);
    run_deferred_schedule();  // the GUI must hear of what is queued before we sleep
    pool_blocking_begin();
    w->space_cv.wait(lk);
    pool_blocking_end();
    w->space_waiters.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> g(d->waiters_mu);
    if (w->space_prev)
        w->space_prev->space_next = w->space_next;
    else
        d->space_waiting = w->space_next;
    if (w->space_next) w->space_next->space_prev = w->space_prev;
    w->space_prev = w->space_next = nullptr;
}

// Wakes every producer waiting for room, a few at a time (no allocation:
// this must work when memory is short).
void begin_home_await(Dispatcher *d) {
    constexpr int kBatch = 32;
    {
        std::lock_guard<std::mutex> g(d->waiters_mu);
        d->awaiting.fetch_add(1);
        for (worker *w = d->space_waiting; w; w = w->space_next) w->space_kicked = false;
    }
    cancel_home_calls(d);  // pending worker_call_home calls end with WORKER_EBUSY
    for (;;) {
        worker *batch[kBatch];
        int n = 0;
        {
            std::lock_guard<std::mutex> g(d->waiters_mu);
            for (worker *w = d->space_waiting; w && n < kBatch; w = w->space_next) {
                if (w->space_kicked || !acquire(w)) continue;
                w->space_kicked = true;
                batch[n++] = w;
            }
        }
        if (n == 0) return;
        for (int i = 0; i < n; i++) {
            {
                std::lock_guard<StreamMutex> lk(batch[i]->mu);
                batch[i]->space_cv.notify_all();
            }
            release(batch[i]);
        }
    }
}

void end_home_await(Dispatcher *d) { d->awaiting.fetch_sub(1); }

void deliver_all_on_this_thread() {
    Dispatcher *d = nullptr;
    {
        Dispatchers &ds = dispatchers();
        std::lock_guard<std::mutex> lk(ds.mu);
        auto it = ds.by_thread.find(QThread::currentThread());
        if (it != ds.by_thread.end()) d = it->second;
    }
    if (d) d->drain(std::chrono::hours(1));
}

std::atomic<int> exit_joining{0};

static void on_about_to_quit() {
    int timeout;
    {
        std::lock_guard<std::mutex> lk(dispatchers().mu);
        timeout = dispatchers().exit_timeout_ms;
    }
    // Bounded quit-and-join (napari #7446, #7633), then every worker's
    // remaining events, so each one still ends with FINISHED. A worker that
    // a callback starts meanwhile is started quit (worker_start checks
    // exit_joining): the join goes on until it has ended too, within the
    // same bound (it was accepted, then never joined nor finished).
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::milliseconds(timeout);
    exit_joining.fetch_add(1);
    worker_quit_all();
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        worker_await_all(left.count() > 0 ? (int)left.count() : 0);
        deliver_all_on_this_thread();
        if (worker_live_count() == 0 || clock::now() >= deadline) break;
    }
    exit_joining.fetch_sub(1);
}

void ensure_exit_hook() {
    QCoreApplication *app = QCoreApplication::instance();
    Dispatchers &ds = dispatchers();
    std::lock_guard<std::mutex> lk(ds.mu);
    if (ds.hooked_app == app) return;
    ds.hooked_app = app;
    QObject::connect(app, &QCoreApplication::aboutToQuit, app, on_about_to_quit,
                     Qt::DirectConnection);
}

}  // namespace qtw

extern "C" {

void worker_set_exit_timeout(int timeout_ms) {
    std::lock_guard<std::mutex> lk(qtw::dispatchers().mu);
    qtw::dispatchers().exit_timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
}

}  // extern "C"
