// A QThread that becomes a worker's home: it runs its own event loop and
// creates (and starts) the worker from inside it, and ends that loop itself when asked.
// No Qt cross-thread call sets it up or stops it: a quit() from another
// thread writes Qt's wake-up descriptor while the ending thread closes it,
// across a Qt lock ThreadSanitizer cannot see. The worker is handed over
// through a std::atomic, which it can.
#pragma once

#include "qtworker.h"

#include <QThread>
#include <QTimer>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace th {

class HomeLoop : public QThread {
public:
    explicit HomeLoop(std::function<worker *()> make) : make_(std::move(make)) {}
    // Starts the thread; returns the worker it made (nullptr after 10 s).
    worker *start_home() {
        start();
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!made_.load() && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return made_.load();
    }
    void stop_and_wait() {
        stop_ = true;
        wait();
    }

private:
    void run() override {
        // Made from inside the loop: a thread is a worker's home only while
        // it runs one (made before exec(), the worker would use the GUI).
        QTimer::singleShot(0, [this] { made_ = make_(); });
        QTimer poll;
        QObject::connect(&poll, &QTimer::timeout, [this] {
            if (stop_.load()) quit();
        });
        poll.start(1);
        exec();
    }

    std::function<worker *()> make_;
    std::atomic<worker *> made_{nullptr};
    std::atomic<bool> stop_{false};
};

}  // namespace th
