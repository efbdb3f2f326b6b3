// The two C++ baselines, written the way a plugin author would with Qt alone:
//  - invoke: a QThreadPool task posting one queued QMetaObject::invokeMethod
//    per value; pause/quit by hand with an atomic flag and a condition
//    variable (no queue bound: that is the point of the baseline);
//  - promise: QtConcurrent::run with a QPromise, read by a QFutureWatcher
//    (resultsReadyAt), paused with QFuture::suspend (QPromise parks in
//    suspendIfRequested), quit with QFuture::cancel.
#include "impls.h"

#include <QFutureWatcher>
#include <QObject>
#include <QPromise>
#include <QThreadPool>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

namespace bench {
namespace {

// Receiver of the queued calls; created on the GUI thread by the first start().
QObject *gui_context() {
    static QObject *o = new QObject;
    return o;
}

template <typename F>
void post(F &&f) {
    QMetaObject::invokeMethod(gui_context(), std::forward<F>(f), Qt::QueuedConnection);
}

class InvokeJob final : public Job, public Producer {
public:
    InvokeJob(Body body, Hooks *h) : body_(std::move(body)), h_(h) {}

    void run() {  // pool thread; touches nothing of *this after posting finished
        Hooks *h = h_;
        post([h] { h->started(); });
        body_(*this);
        post([h] { h->finished(); });
    }
    bool put(void *v, destroy_fn d) override {
        if (quit_.load(std::memory_order_relaxed)) {
            if (d) d(v);
            return false;
        }
        Hooks *h = h_;
        post([h, v, d] {
            h->value(v);
            if (d) d(v);
        });
        if (pause_.load(std::memory_order_relaxed)) park();
        return !quit_.load(std::memory_order_relaxed);
    }
    bool ask(const std::function<void()> &fn) override {  // what Qt offers for this
        return QMetaObject::invokeMethod(gui_context(), fn, Qt::BlockingQueuedConnection);
    }
    void pause() override { set(pause_, true); }
    void resume() override { set(pause_, false); }
    void quit() override { set(quit_, true); }

private:
    void park() {
        std::unique_lock<std::mutex> lk(mu_);
        if (!pause_ || quit_) return;
        Hooks *h = h_;
        post([h] { h->paused(); });
        cv_.wait(lk, [this] { return !pause_ || quit_; });
    }
    void set(std::atomic<bool> &flag, bool v) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            flag = v;
        }
        cv_.notify_all();
    }

    Body body_;
    Hooks *h_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<bool> pause_{false}, quit_{false};
};

class InvokeImpl final : public Impl {
public:
    std::unique_ptr<Job> start(Body body, Hooks *h) override {
        gui_context();
        auto *job = new InvokeJob(std::move(body), h);
        QThreadPool::globalInstance()->start([job] { job->run(); });
        return std::unique_ptr<Job>(job);
    }
};

struct Item {
    void *v;
    destroy_fn d;
};

class PromiseProducer final : public Producer {
public:
    explicit PromiseProducer(QPromise<Item> &p) : p_(p) {}
    bool put(void *v, destroy_fn d) override {
        if (p_.isCanceled() || !p_.addResult(Item{v, d})) {
            if (d) d(v);
            return false;
        }
        p_.suspendIfRequested();
        return !p_.isCanceled();
    }

private:
    QPromise<Item> &p_;
};

class PromiseJob final : public Job {
public:
    PromiseJob(Body body, Hooks *h) : watcher_(new QFutureWatcher<Item>) {
        auto *w = watcher_;
        QObject::connect(w, &QFutureWatcherBase::resultsReadyAt, w, [w, h](int b, int e) {
            for (int i = b; i < e; i++) {
                Item it = w->resultAt(i);
                h->value(it.v);
                if (it.d) it.d(it.v);
            }
        });
        // QFutureWatcher::started fires when run() is called, before the pool
        // thread runs: the task's first progress report marks its real start.
        QObject::connect(w, &QFutureWatcherBase::progressValueChanged, w,
                         [h, seen = false](int v) mutable {
                             if (v == 1 && !seen) {
                                 seen = true;
                                 h->started();
                             }
                         });
        QObject::connect(w, &QFutureWatcherBase::suspended, w, [h] { h->paused(); });
        QObject::connect(w, &QFutureWatcherBase::finished, w, [h] { h->finished(); });
        future_ = QtConcurrent::run([body = std::move(body)](QPromise<Item> &p) {
            p.setProgressRange(0, 1);
            p.setProgressValue(1);
            PromiseProducer prod(p);
            body(prod);
        });
        w->setFuture(future_);
    }
    ~PromiseJob() override { watcher_->deleteLater(); }
    void pause() override { future_.suspend(); }
    void resume() override { future_.resume(); }
    void quit() override { future_.cancel(); }

private:
    QFutureWatcher<Item> *watcher_;
    QFuture<Item> future_;
};

class PromiseImpl final : public Impl {
public:
    std::unique_ptr<Job> start(Body body, Hooks *h) override {
        return std::make_unique<PromiseJob>(std::move(body), h);
    }
};

}  // namespace

std::unique_ptr<Impl> make_qt_impl(const std::string &name) {
    // The global pool defaults to one thread per core (2 here): too few for
    // the 4-worker rows and a flood next to a second worker.
    QThreadPool *pool = QThreadPool::globalInstance();
    pool->setMaxThreadCount(std::max(8, pool->maxThreadCount()));
    if (name == "invoke") return std::make_unique<InvokeImpl>();
    if (name == "promise") return std::make_unique<PromiseImpl>();
    return nullptr;
}

}  // namespace bench
