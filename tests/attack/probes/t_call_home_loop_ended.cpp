// probe (held): worker_call_home "WORKER_ESTATE: the home thread's event loop has ended (fn never runs)": a worker homed on a QThread (made in its loop) calls home after that loop has returned from exec() while run() still does its cleanup — the call waits until the thread itself finishes (forever, with timeout -1, if the cleanup waits for the worker); run: ./build.sh 08_call_home_after_home_loop_ended.cpp && QT_QPA_PLATFORM=offscreen ./08_call_home_after_home_loop_ended
#include <qtworker.h>
#include <QCoreApplication>
#include <QThread>
#include <QTimer>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <unistd.h>

static std::atomic<int> loop_ended{0}, call_rc{99}, call_done{0};
static void *fn_home(void *) { return nullptr; }
static void fn(worker_ctx *ctx, void *) {
    while (!loop_ended) usleep(1000);
    call_rc = worker_call_home(ctx, fn_home, nullptr, nullptr, -1);
    call_done = 1;
}

class Loader : public QThread {
public:
    worker *w = nullptr;
    void run() override {
        QTimer::singleShot(0, [this] {  // inside this thread's loop: homed here
            w = worker_create(fn, nullptr, nullptr, nullptr);
            worker_start(w);
            exit(0);
        });
        exec();
        loop_ended = 1;
        // The loop has ended; the thread cleans up for a while (e.g. joins what it started).
        auto t0 = std::chrono::steady_clock::now();
        while (!call_done && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3)) usleep(1000);
    }
};

int main(int argc, char **argv) {
    alarm(30);
    QCoreApplication app(argc, argv);
    Loader loader;
    loader.start();
    loader.wait();
    bool broken = !call_done.load();
    for (int i = 0; i < 200 && !call_done; i++) { QCoreApplication::processEvents(); usleep(5000); }
    std::printf("%s: call_home %s while the home loop had ended and its thread still ran (rc %d after the thread ended)\n",
                broken ? "BROKEN" : "held", broken ? "kept waiting" : "returned", call_rc.load());
    worker_await(loader.w, 2000);
    worker_unref(loader.w);
    return broken;
}
