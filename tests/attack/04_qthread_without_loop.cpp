// BREAKS guide.md "A worker created on a thread without an event loop uses the GUI thread": one created in QThread::create(fn) (run() never calls exec) is homed on that thread; its callbacks never run, FINISHED never comes; run: ./build.sh 04_qthread_without_loop.cpp && QT_QPA_PLATFORM=offscreen ./04_qthread_without_loop
#include <qtworker.h>
#include <QCoreApplication>
#include <QThread>
#include <atomic>
#include <cstdio>
#include <unistd.h>

static std::atomic<int> seen{0}, on_gui{0};
static QThread *gui;
static void cb(worker_event *ev, void *) {
    seen++;
    if (QThread::currentThread() == gui) on_gui++;
    (void)ev;
}
static void fn(worker_ctx *ctx, void *) { worker_yield(ctx, nullptr, nullptr, nullptr, nullptr); }

int main(int argc, char **argv) {
    alarm(30);
    QCoreApplication app(argc, argv);
    gui = QThread::currentThread();
    worker *w = nullptr;
    // A plugin's loader thread: plain code in run(), no event loop.
    QThread *loader = QThread::create([&] {
        w = worker_create(fn, nullptr, nullptr, nullptr);
        for (int t = 0; t <= WORKER_EV_OUTPUT; t++) worker_connect(w, (worker_event_type)t, cb, nullptr, nullptr);
        worker_start(w);
        worker_await(w, -1);
        usleep(200000);  // still busy with other loading work
    });
    loader->start();
    for (int i = 0; i < 100; i++) { QCoreApplication::processEvents(); usleep(5000); }  // the GUI pumps
    loader->wait();
    for (int i = 0; i < 50; i++) { QCoreApplication::processEvents(); usleep(2000); }
    std::printf("events delivered: %d (on the GUI thread: %d); expected 4: STARTED YIELDED RETURNED FINISHED\n",
                seen.load(), on_gui.load());
    worker_unref(w);
    delete loader;
    if (seen.load() != 4) { std::printf("BROKEN: no callback ran\n"); return 1; }
    return 0;
}
