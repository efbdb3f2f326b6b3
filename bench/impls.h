// The three ways of getting values from a thread to the GUI thread that the
// benchmark compares, behind one small interface so every mode is written
// once: qtworker (public C API, one policy per Impl), one queued
// QMetaObject::invokeMethod per value (what a plugin author writes by hand),
// and QPromise + QFutureWatcher (QtConcurrent::run).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace bench {

using destroy_fn = void (*)(void *);

// GUI-thread callbacks of one or more jobs.
struct Hooks {
    std::function<void(void *)> value = [](void *) {};
    std::function<void()> started = [] {}, paused = [] {}, finished = [] {};
};

// What a job's body sees on its thread.
class Producer {
public:
    virtual ~Producer() = default;
    // Delivers v to Hooks::value on the GUI thread (then d(v)), parks here
    // while paused. false once quit was asked: return from the body.
    virtual bool put(void *v, destroy_fn d) = 0;
    // put() of a value of `size` bytes (an image frame); only qtworker's
    // budgets (capacity_bytes) look at the size.
    virtual bool put_sized(void *v, size_t size, destroy_fn d) {
        (void)size;
        return put(v, d);
    }
    // Runs fn on the GUI thread and waits for it (worker_call_home; for the
    // invoke baseline a BlockingQueuedConnection invokeMethod). false: the
    // implementation has no such call, or it failed.
    virtual bool ask(const std::function<void()> &fn) { (void)fn; return false; }
};

using Body = std::function<void(Producer &)>;

// The owner's handle; destroy it only after Hooks::finished has run.
class Job {
public:
    virtual ~Job() = default;
    virtual void pause() = 0;
    virtual void resume() = 0;
    virtual void quit() = 0;
};

class Impl {
public:
    virtual ~Impl() = default;
    // Starts body on a pooled thread; started/finished reach hooks.
    virtual std::unique_ptr<Job> start(Body body, Hooks *hooks) = 0;
};

// "qtworker-block", "qtworker-queue", "qtworker-latest", "qtworker-budget64"
// (BLOCK with capacity_bytes = 64 MiB), "invoke", "promise";
// nullptr for an unknown name.
std::unique_ptr<Impl> make_qtworker_impl(const std::string &name);
std::unique_ptr<Impl> make_qt_impl(const std::string &name);

}  // namespace bench
