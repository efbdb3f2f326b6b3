// Shared test harness: a QApplication for every suite, an event recorder that
// checks the per-worker event order, counted payloads, and Job (a worker
// running a lambda, cleaned up even when a test returns early).
#pragma once

#include "qtworker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace th {

// ---- counted payloads: every one must be destroyed exactly once
int *payload(int v);                 // malloc'ed int, counted
void payload_free(void *p);          // worker_destroy_fn for payload()
long payloads_alive();               // created - destroyed
long payloads_destroyed();
void reset_payloads();
// Every payload destroyed, exactly once: checked at once; then a late one
// (a library bug) is waited for, so the next test starts from clean counts.
void expect_payloads_freed();
// payload_free after 100 ms: a destroy that takes a while (a big buffer, a
// file to close) widens the window in which a too-late destroy shows.
void slow_payload_free(void *p);

// ---- one recorded event (copied out of the callback)
struct Rec {
    worker_event_type type;
    bool has_value = false;
    int value = 0;           // *(int *)ev->value when a payload was attached
    void *raw = nullptr;     // ev->value as delivered
    int code = 0;
    std::string message, name;
    long long done = 0, total = 0;
};

// Connects to every event type of w and records them in order.
class Recorder {
public:
    explicit Recorder(worker *w, bool values_are_ints = true);
    const std::vector<Rec> &events() const { return events_; }
    std::vector<worker_event_type> types() const;
    std::vector<int> values(worker_event_type t) const;
    int count(worker_event_type t) const;
    bool finished() const { return count(WORKER_EV_FINISHED) > 0; }
    // The first event of type t; a test failure (and an empty Rec) if none.
    const Rec &first(worker_event_type t) const;
    // The type of the event right before FINISHED (meaningful once finished);
    // STARTED while fewer than two events arrived.
    worker_event_type outcome() const;
    // Pumps the event loop until FINISHED arrived or timeout; returns finished().
    bool wait_finished(int timeout_ms = 10000);
    // Pumps until n events of type t arrived or timeout; returns whether they did.
    bool wait_for(worker_event_type t, int n = 1, int timeout_ms = 10000);
    // Runs extra code for each event of a type (after recording it).
    void on(worker_event_type t, std::function<void(worker_event *)> f);

private:
    static void cb(worker_event *ev, void *self);
    std::vector<Rec> events_;
    bool ints_;
    std::vector<std::pair<worker_event_type, std::function<void(worker_event *)>>> hooks_;
};

using Types = std::vector<worker_event_type>;
using Body = std::function<void(worker_ctx *)>;

// A worker running a lambda (or a plain worker_fn), with a Recorder unless
// record is false. close() (also run by the destructor, e.g. after an early
// ASSERT return) quits it, waits for FINISHED (checking the order when
// recording) and drops the reference, so neither the body nor a callback
// outlives the test's locals.
class Job {
public:
    explicit Job(Body body, const worker_options *o = nullptr, bool record = true);
    Job(worker_fn fn, void *arg, const worker_options *o = nullptr, bool record = true);
    ~Job() { close(); }
    Job(const Job &) = delete;
    Job &operator=(const Job &) = delete;

    int start();
    // Pumps until FINISHED was delivered (works without a Recorder too).
    bool wait_done(int timeout_ms = 10000);
    void close();

    worker *w = nullptr;
    std::unique_ptr<Recorder> rec;  // null when not recording

private:
    void init(worker_fn fn, void *arg, worker_destroy_fn arg_destroy,
              const worker_options *o, bool record);
    bool done_ = false;
    bool started_ = false;
};

// Asserts the contract's order: STARTED first, one outcome, FINISHED last.
void expect_valid_order(const std::vector<worker_event_type> &types);

// Pumps events until pred() or timeout; returns pred().
bool pump_until(const std::function<bool()> &pred, int timeout_ms = 10000);
// Pumps events for ms, giving whatever should NOT arrive the chance to.
void pump_for(int ms);

// Waits WITHOUT running the event loop (nothing is delivered meanwhile: the
// GUI "falls behind") until pred() / flag or timeout; returns the last value.
// Bounded, so usable inside a worker body too: a failed test never leaves a
// body spinning forever.
bool wait_no_pump(const std::function<bool()> &pred, int timeout_ms = 10000);
bool wait_no_pump(const std::atomic<bool> &flag, int timeout_ms = 10000);

// Sleeps the calling thread (a body pacing itself, a GUI not pumping).
void nap(int ms = 1);

// Ends the process with a message if still alive after timeout_ms: a call
// that deadlocks (and cannot be unblocked from outside) fails its test
// instead of hanging the suite until meson's timeout.
class HangGuard {
public:
    HangGuard(const char *what, int timeout_ms = 30000);
    ~HangGuard();
    HangGuard(const HangGuard &) = delete;
    HangGuard &operator=(const HangGuard &) = delete;

private:
    struct State;
    std::unique_ptr<State> s_;
};

// Resident memory of this process in bytes (/proc/self/statm).
long resident_bytes();

// worker_options with defaults but for policy, capacity and name.
worker_options policy_options(worker_policy p, size_t capacity, const char *name = nullptr);
// A process worker module built next to the tests (tests/process_modules),
// or in $QTW_PROCESS_MODULES.
std::string process_module(const char *name);

const char *type_name(worker_event_type t);

}  // namespace th
