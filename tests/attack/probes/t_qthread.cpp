// probe (held): a worker homed on a QThread whose loop ends while the worker is in call_home / blocked at capacity.
#include <qtworker.h>
#include <QCoreApplication>
#include <QThread>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

static std::atomic<int> alive{0}, made{0};
static void pfree(void *p) { alive--; free(p); }
static void *pnew() { alive++; made++; return malloc(4); }
static std::atomic<int> rc_estate{0}, rc_other{0}, delivered{0}, fin{0};
static std::atomic<bool> wrong_thread{false};
static QThread *home;
static void *home_fn(void *) {
    if (QThread::currentThread() != home) wrong_thread = true;
    return nullptr;
}
static void fn(worker_ctx *ctx, void *mode) {
    for (int i = 0; i < 100000; i++) {
        if ((long)mode == 0) {
            void *r;
            int rc = worker_call_home(ctx, home_fn, nullptr, &r, -1);
            if (rc == WORKER_ESTATE) { rc_estate++; }
            else if (rc != WORKER_OK) { rc_other++; return; }
        }
        if (worker_yield(ctx, pnew(), pfree, nullptr, nullptr) == WORKER_ABORTED) return;
        if (rc_estate > 3) return;
    }
}
static void cb(worker_event *ev, void *) {
    if (QThread::currentThread() != home) wrong_thread = true;
    if (ev->type == WORKER_EV_FINISHED) fin++;
    else if (++delivered == 50) QThread::currentThread()->quit();  // the home's loop ends early
}
int main(int argc, char **argv) {
    alarm(50);
    QCoreApplication app(argc, argv);
    for (long mode = 0; mode < 2; mode++) {
        home = new QThread;
        std::atomic<worker *> made_w{nullptr};
        home->start();
        QObject ctxobj;
        ctxobj.moveToThread(home);
        QMetaObject::invokeMethod(&ctxobj, [&] {
            worker_options o; worker_options_init(&o); o.capacity = 4;
            worker *x = worker_create(fn, (void *)mode, nullptr, &o);
            for (int t = 0; t <= WORKER_EV_OUTPUT; t++) worker_connect(x, (worker_event_type)t, cb, nullptr, nullptr);
            worker_start(x);
            made_w = x;
        }, Qt::BlockingQueuedConnection);
        worker *w = made_w;
        home->wait();
        int arc = worker_await(w, 10000);
        worker_unref(w);
        for (int i = 0; i < 100 && worker_live_count(); i++) { QCoreApplication::processEvents(); usleep(10000); }
        printf("mode %ld: await %d, estate %d other %d delivered %d fin %d wrong thread %d, live %d, payloads alive %d of %d\n",
               mode, arc, rc_estate.load(), rc_other.load(), delivered.load(), fin.load(), (int)wrong_thread, worker_live_count(), alive.load(), made.load());
        delete home;
        delivered = 0; rc_estate = 0;
    }
    return 0;
}
