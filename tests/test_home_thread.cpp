// A worker created on a QThread with its own event loop delivers there; when
// that thread ends before the worker does, nothing is delivered any more
// (no callback on a finished thread), every payload is still destroyed
// exactly once, the worker is freed, and a new thread — even at the same
// address — gets a dispatcher of its own.
#include "harness.h"

#include <QObject>
#include <QThread>
#include <QTimer>

#include <atomic>
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

// A thread that creates, connects and starts a worker, then runs its event
// loop: the worker's home. (No Qt cross-thread call is needed to set it up,
// so ThreadSanitizer sees every hand-over.)
class Home : public QThread {
public:
    explicit Home(Seen *s) : s_(s) {}
    std::atomic<worker *> w{nullptr};

protected:
    void run() override {
        worker *x = worker_create(body, s_, nullptr, nullptr);
        for (auto type : {WORKER_EV_YIELDED, WORKER_EV_FINISHED})
            worker_connect(x, type, on_event, s_, nullptr);
        worker_start(x);
        w = x;
        // Ends its loop itself when asked (a quit() from another thread
        // writes Qt's wake-up descriptor, which the ending thread closes:
        // ThreadSanitizer cannot see the Qt lock between the two).
        QTimer poll;
        QObject::connect(&poll, &QTimer::timeout, [this] {
            if (stop.load()) quit();
        });
        poll.start(1);
        exec();
    }

public:
    std::atomic<bool> stop{false};

private:
    Seen *s_;
};

worker *start_on(Home *t) {
    t->start();
    EXPECT_TRUE(wait_no_pump([t] { return t->w.load() != nullptr; }));
    return t->w.load();
}

}  // namespace

TEST(HomeThread, EndingBeforeTheWorkerDestroysItsEventsUndelivered) {
    reset_payloads();
    Seen s;
    auto t = std::make_unique<Home>(&s);
    s.home = t.get();
    worker *w = start_on(t.get());
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(wait_no_pump([&] { return s.yielded.load() == 50; })) << "delivered on its home thread";
    t->stop = true;
    t->wait();
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
    auto t2 = std::make_unique<Home>(&s2);
    s2.home = t2.get();
    s2.more = true;
    worker *w2 = start_on(t2.get());
    ASSERT_TRUE(wait_no_pump([&] { return s2.finished.load() == 1; }));
    EXPECT_EQ(s2.yielded.load(), 100);
    EXPECT_EQ(s2.wrong_thread.load(), 0);
    worker_unref(w2);
    t2->stop = true;
    t2->wait();
    expect_payloads_freed();
}
