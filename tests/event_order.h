// The contract's event order for one worker, as a reason string ("" = valid):
// STARTED first, exactly one outcome right before FINISHED last, exactly one
// of each, PAUSED/RESUMED alternating. Header-only: shared by the stress test
// and the fuzzers, which do not link the gtest harness.
#pragma once

#include "qtworker.h"

#include <string>
#include <vector>

namespace event_order {

inline bool is_outcome(worker_event_type t) {
    return t == WORKER_EV_RETURNED || t == WORKER_EV_ERRORED || t == WORKER_EV_ABORTED;
}

inline std::string problem(const std::vector<worker_event_type> &ev) {
    if (ev.size() < 3 || ev.front() != WORKER_EV_STARTED || ev.back() != WORKER_EV_FINISHED ||
        !is_outcome(ev[ev.size() - 2]))
        return "bad event order";
    int starts = 0, outcomes = 0, finishes = 0;
    bool paused = false;
    for (auto e : ev) {
        starts += e == WORKER_EV_STARTED;
        outcomes += is_outcome(e);
        finishes += e == WORKER_EV_FINISHED;
        if (e == WORKER_EV_PAUSED && paused) return "PAUSED twice without RESUMED";
        if (e == WORKER_EV_RESUMED && !paused) return "RESUMED without PAUSED";
        if (e == WORKER_EV_PAUSED || e == WORKER_EV_RESUMED) paused = e == WORKER_EV_PAUSED;
    }
    if (starts != 1 || outcomes != 1 || finishes != 1) return "not exactly one started/outcome/finished";
    return "";
}

}  // namespace event_order
