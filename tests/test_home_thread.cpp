// A worker created on a QThread with its own event loop delivers there; when
// that thread ends before the worker does, nothing is delivered any more
// (no callback on a finished thread), every payload is still destroyed
// exactly once, the worker is freed, and a new thread — even at the same
// address — gets a dispatcher of its own.
#include "harness.h"
#include "home_loop.h"

#include <QObject>
#include <QThread>

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
