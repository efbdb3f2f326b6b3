// Shared test harness: a QApplication for every suite, an event recorder that
// checks the per-worker event order, and counted payloads.
#pragma once

#include "qtworker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace th {

// ---- counted payloads: every one must be destroyed exactly once
int *payload(int v);                 // malloc'ed int, counted
void payload_free(void *p);          // worker_destroy_fn for payload()
long payloads_alive();               // created - destroyed
long payloads_destroyed();
void reset_payloads();

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
    // Pumps the event loop until FINISHED arrived or timeout; returns finished().
    bool wait_finished(int timeout_ms = 10000);
    // Runs extra code for each event of a type (after recording it).
    void on(worker_event_type t, std::function<void(worker_event *)> f);

private:
    static void cb(worker_event *ev, void *self);
    std::vector<Rec> events_;
    bool ints_;
    std::vector<std::pair<worker_event_type, std::function<void(worker_event *)>>> hooks_;
};

// Asserts the contract's order: STARTED first, one outcome, FINISHED last.
void expect_valid_order(const std::vector<worker_event_type> &types);

// Pumps events until pred() or timeout; returns pred().
bool pump_until(const std::function<bool()> &pred, int timeout_ms = 10000);

const char *type_name(worker_event_type t);

}  // namespace th
