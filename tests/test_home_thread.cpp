// A worker created on a QThread with its own event loop delivers there; when
// that thread ends before the worker does, nothing is delivered any more
// (no callback on a finished thread), every payload is still destroyed
// exactly once, the worker is freed, and a new thread — even at the same
// address — gets a dispatcher of its own.
#include "harness.h"
#include "home_loop.h"

#include <QObject>
#include <QThread>

#include <dirent.h>

#include <atomic>
#include <thread>
#include <vector>
#include <memory>

using namespace th;

namespace {

struct Seen {
    std::atomic<int> yielded{0}, finished{0}, wrong_thread{0};
    std::atomic<bool> more{false};
    QThread *home = nullptr;
};

void on_event(worker_event *ev, void *ud) {
    auto *s = static_cast<Seen *>(ud);
    if (QThread::currentThread() != s->home) s->wrong_thread++;
    if (ev->type == WORKER_EV_YIELDED) s->yielded++;
    if (ev->type == WORKER_EV_FINISHED) s->finished++;
}

// 50 values, then (once `more`) 50 more.
void body(worker_ctx *ctx, void *ud) {
    auto *s = static_cast<Seen *>(ud);
    for (int i = 0; i < 50; i++) worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
    wait_no_pump(s->more, 20000);
    for (int i = 50; i < 100; i++) worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
}

// A home thread with a worker made, connected and started on it.
worker *start_on(HomeLoop &t) { return t.start_home(); }

HomeLoop *new_home(Seen *s) {
    return new HomeLoop([s] {
        worker *x = worker_create(body, s, nullptr, nullptr);
        for (auto type : {WORKER_EV_YIELDED, WORKER_EV_FINISHED})
            worker_connect(x, type, on_event, s, nullptr);
        worker_start(x);
        return x;
    });
}

}  // namespace

// First in this file on purpose: the GUI thread's dispatcher is made by a
// start on a plain thread. Its wake-up notifier must be armed in the GUI
// thread (made elsewhere, Qt warns and arms it only after a thread change).
namespace {
std::atomic<int> notifier_warnings{0};
QtMessageHandler previous_handler = nullptr;
void count_notifier_warnings(QtMsgType t, const QMessageLogContext &c, const QString &m) {
    if (m.contains(QLatin1String("QSocketNotifier"))) notifier_warnings++;
    previous_handler(t, c, m);
}
void ten_values(worker_ctx *ctx, void *) {
    for (int i = 0; i < 10; i++) worker_yield(ctx, payload(i), payload_free, nullptr, nullptr);
}
}  // namespace

TEST(HomeThread, AFirstStartFromAPlainThreadWakesTheGuiWithoutAWarning) {
    reset_payloads();
    previous_handler = qInstallMessageHandler(count_notifier_warnings);
    Seen s;
    s.home = QThread::currentThread();
    worker *w = nullptr;
    std::thread([&] {
        w = worker_create(ten_values, nullptr, nullptr, nullptr);
        for (auto type : {WORKER_EV_YIELDED, WORKER_EV_FINISHED})
            worker_connect(w, type, on_event, &s, nullptr);
        EXPECT_EQ(worker_start(w), WORKER_OK);
    }).join();
    EXPECT_TRUE(pump_until([&] { return s.finished.load() == 1; }));
    qInstallMessageHandler(previous_handler);
    EXPECT_EQ(s.yielded.load(), 10);
    EXPECT_EQ(s.wrong_thread.load(), 0);
    EXPECT_EQ(notifier_warnings.load(), 0);
    worker_unref(w);
    expect_payloads_freed();
}

TEST(HomeThread, EndingBeforeTheWorkerDestroysItsEventsUndelivered) {
    reset_payloads();
    Seen s;
    std::unique_ptr<HomeLoop> t(new_home(&s));
    s.home = t.get();
    worker *w = start_on(*t);
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(wait_no_pump([&] { return s.yielded.load() == 50; })) << "delivered on its home thread";
    t->stop_and_wait();
    s.more = true;  // 50 more values, and FINISHED, after the home has ended
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    EXPECT_TRUE(wait_no_pump([] { return payloads_alive() == 0; }))
        << payloads_alive() << " values never destroyed";
    EXPECT_EQ(s.yielded.load(), 50) << "a callback ran after its home thread ended";
    EXPECT_EQ(s.finished.load(), 0);
    EXPECT_EQ(s.wrong_thread.load(), 0);
    EXPECT_TRUE(wait_no_pump([] { return worker_live_count() == 0; }));
    worker_unref(w);
    t.reset();

    // A new thread (the allocator may well reuse the address) delivers normally.
    Seen s2;
    std::unique_ptr<HomeLoop> t2(new_home(&s2));
    s2.home = t2.get();
    s2.more = true;
    worker *w2 = start_on(*t2);
    ASSERT_TRUE(wait_no_pump([&] { return s2.finished.load() == 1; }));
    EXPECT_EQ(s2.yielded.load(), 100);
    EXPECT_EQ(s2.wrong_thread.load(), 0);
    worker_unref(w2);
    t2->stop_and_wait();
    expect_payloads_freed();
}

// The guide: "A worker created on a thread without an event loop uses the
// GUI thread." A QThread whose run() never calls exec() (QThread::create, a
// QThreadPool / QtConcurrent task, a loader thread) is such a thread, but it
// has an event dispatcher all the same, so the worker was homed there: no
// callback ever ran, and once the thread ended its events were destroyed.
TEST(HomeThread, AWorkerMadeOnAQThreadThatRunsNoLoopDeliversOnTheGui) {
    reset_payloads();
    Seen s;
    s.home = QThread::currentThread();
    s.more = true;  // all 100 values at once
    std::atomic<worker *> made{nullptr};
    std::atomic<bool> loader_done{false};
    std::unique_ptr<QThread> loader(QThread::create([&] {
        worker *x = worker_create(body, &s, nullptr, nullptr);
        for (auto type : {WORKER_EV_YIELDED, WORKER_EV_FINISHED})
            worker_connect(x, type, on_event, &s, nullptr);
        worker_start(x);
        made = x;
        // Plain code goes on in run() (no exec()) until the GUI saw it all.
        wait_no_pump([&] { return s.finished.load() > 0; }, 20000);
        loader_done = true;
    }));
    loader->start();
    EXPECT_TRUE(pump_until([&] { return s.finished.load() > 0; }, 20000))
        << "FINISHED never reached a callback; " << s.yielded.load() << " of 100 values did";
    EXPECT_EQ(s.yielded.load(), 100);
    EXPECT_EQ(s.wrong_thread.load(), 0) << "callbacks ran off the GUI thread";
    // Seen through the atomic before wait(): ThreadSanitizer cannot see
    // QThread::wait's hand-over, and reported the loader's last store to
    // this frame as racing with the next test's use of the same stack.
    EXPECT_TRUE(wait_no_pump(loader_done));
    loader->wait();
    // Not destroyed: QThread's own QWaitCondition is woken by the ending
    // thread through a Qt lock ThreadSanitizer cannot see, and destroying it
    // right after wait() is reported as a race inside Qt. Kept reachable.
    static auto *finished_loaders = new std::vector<QThread *>;  // never destroyed
    finished_loaders->push_back(loader.release());
    worker_unref(made.load());
    pump_for(20);
    expect_payloads_freed();
}

// Once a home thread has ended, its workers' events are destroyed on pool
// threads. Two such drains ran at once (the ending thread's own and a pool
// thread's): one finished and freed a worker the other still touched (ASan:
// heap-use-after-free in drain_worker; a SIGSEGV in the plain build).
TEST(HomeThread, DrainsOfAnEndedHomeNeverTouchAFreedWorker) {
    reset_payloads();
    auto body = [](worker_ctx *ctx, void *) {
        for (int i = 0;; i++) {
            if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
        }
    };
    for (int round = 0; round < 200; round++) {
        std::vector<worker *> ws;
        HomeLoop home([&] {
            worker_options o;
            worker_options_init(&o);
            o.capacity = 8;
            for (int i = 0; i < 8; i++) {
                worker *w = worker_create(body, nullptr, nullptr, &o);
                worker_start(w);
                ws.push_back(w);
            }
            return ws[0];
        });
        ASSERT_NE(home.start_home(), nullptr);
        home.stop_and_wait();
        for (worker *w : ws) worker_quit(w);
        for (worker *w : ws) ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
        for (worker *w : ws) worker_unref(w);
    }
    EXPECT_TRUE(wait_no_pump([] { return payloads_alive() == 0; }));
    expect_payloads_freed();
}

namespace {
int open_descriptors() {
    int n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (dirent *e = readdir(d)) n += e->d_name[0] != '.';
        closedir(d);
    }
    return n;
}
}  // namespace

// An ended home gives back its wake-up descriptor (an outside read, s9c:
// every QThread home that ended kept an eventfd, so after ~60 of them under
// a limit of 64 descriptors worker_create failed for good).
TEST(HomeThread, AnEndedHomeClosesItsWakeUpDescriptor) {
    auto one_home = [] {
        HomeLoop t([] {
            worker *x = worker_create([](worker_ctx *, void *) {}, nullptr, nullptr, nullptr);
            worker_start(x);
            return x;
        });
        worker *x = t.start_home();
        EXPECT_NE(x, nullptr);
        if (!x) return;
        EXPECT_EQ(worker_await(x, 10000), WORKER_OK);
        worker_unref(x);
        t.stop_and_wait();
    };
    one_home();  // whatever is made once per process (pool, watchdog) exists now
    pump_for(20);
    int before = open_descriptors();
    for (int i = 0; i < 40; i++) one_home();
    pump_for(20);
    EXPECT_LE(open_descriptors(), before + 2) << "40 ended homes kept their descriptors";
}
