#include "harness.h"

#include <chrono>
#include <cstdlib>

namespace th {

static std::atomic<long> created{0}, destroyed{0};

int *payload(int v) {
    int *p = static_cast<int *>(std::malloc(sizeof(int)));
    *p = v;
    created.fetch_add(1);
    return p;
}

void payload_free(void *p) {
    destroyed.fetch_add(1);
    std::free(p);
}

long payloads_alive() { return created.load() - destroyed.load(); }
long payloads_destroyed() { return destroyed.load(); }
void reset_payloads() { created = 0; destroyed = 0; }

Recorder::Recorder(worker *w, bool values_are_ints) : ints_(values_are_ints) {
    for (int t = WORKER_EV_STARTED; t <= WORKER_EV_CUSTOM; t++)
        EXPECT_GT(worker_connect(w, (worker_event_type)t, &Recorder::cb, this, nullptr), 0);
}

void Recorder::cb(worker_event *ev, void *self) {
    auto *r = static_cast<Recorder *>(self);
    Rec rec;
    rec.type = ev->type;
    rec.raw = ev->value;
    if (ev->value && r->ints_ &&
        (ev->type == WORKER_EV_YIELDED || ev->type == WORKER_EV_RETURNED ||
         ev->type == WORKER_EV_CUSTOM)) {
        rec.has_value = true;
        rec.value = *static_cast<int *>(ev->value);
    }
    rec.code = ev->code;
    if (ev->message) rec.message = ev->message;
    if (ev->name) rec.name = ev->name;
    rec.done = ev->done;
    rec.total = ev->total;
    r->events_.push_back(rec);
    for (auto &h : r->hooks_)
        if (h.first == ev->type) h.second(ev);
}

void Recorder::on(worker_event_type t, std::function<void(worker_event *)> f) {
    hooks_.emplace_back(t, std::move(f));
}

std::vector<worker_event_type> Recorder::types() const {
    std::vector<worker_event_type> out;
    for (auto &e : events_) out.push_back(e.type);
    return out;
}

std::vector<int> Recorder::values(worker_event_type t) const {
    std::vector<int> out;
    for (auto &e : events_)
        if (e.type == t && e.has_value) out.push_back(e.value);
    return out;
}

int Recorder::count(worker_event_type t) const {
    int n = 0;
    for (auto &e : events_) n += e.type == t;
    return n;
}

bool Recorder::wait_finished(int timeout_ms) {
    bool ok = pump_until([this] { return finished(); }, timeout_ms);
    if (ok) expect_valid_order(types());
    return ok;
}

bool pump_until(const std::function<bool()> &pred, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        worker_app_process_events(5);
    }
    return true;
}

static bool is_outcome(worker_event_type t) {
    return t == WORKER_EV_RETURNED || t == WORKER_EV_ERRORED || t == WORKER_EV_ABORTED;
}

void expect_valid_order(const std::vector<worker_event_type> &types) {
    ASSERT_GE(types.size(), 3u) << "at least started, an outcome, finished";
    EXPECT_EQ(types.front(), WORKER_EV_STARTED);
    EXPECT_EQ(types.back(), WORKER_EV_FINISHED);
    EXPECT_TRUE(is_outcome(types[types.size() - 2]))
        << "outcome right before finished, got " << type_name(types[types.size() - 2]);
    int started = 0, outcomes = 0, finished = 0;
    for (auto t : types) {
        started += t == WORKER_EV_STARTED;
        outcomes += is_outcome(t);
        finished += t == WORKER_EV_FINISHED;
    }
    EXPECT_EQ(started, 1);
    EXPECT_EQ(outcomes, 1);
    EXPECT_EQ(finished, 1);
}

const char *type_name(worker_event_type t) {
    static const char *names[] = {"started", "yielded", "returned", "errored",
                                  "warned", "progress", "paused", "resumed",
                                  "aborted", "finished", "custom"};
    return (int)t >= 0 && (int)t <= WORKER_EV_CUSTOM ? names[t] : "?";
}

}  // namespace th
