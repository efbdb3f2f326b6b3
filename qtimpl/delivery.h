// Delivery of one worker's entries on its home thread (the dispatcher's
// drain loop, dispatcher.cpp, calls drain_worker per worker and turn).
#pragma once

#include "worker_p.h"

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace qtw {

// Reads the clock every `stride` entries: stride grows while entries are
// cheap (the clock would dominate at 10 M values/s) and shrinks to 1 when
// callbacks are slow, so a batch never overruns the budget by much.
class DrainBudget {
public:
    explicit DrainBudget(std::chrono::steady_clock::duration d)
        : last_(std::chrono::steady_clock::now()), deadline_(last_ + d) {}
    bool spent() { return std::chrono::steady_clock::now() >= deadline_; }
    bool tick() {
        if (++since_ < stride_) return false;
        auto now = std::chrono::steady_clock::now();
        if (now - last_ < std::chrono::microseconds(100))
            stride_ = std::min<size_t>(stride_ * 2, 256);
        else
            stride_ = std::max<size_t>(stride_ / 2, 1);
        since_ = 0;
        last_ = now;
        return now >= deadline_;
    }

private:
    std::chrono::steady_clock::time_point last_, deadline_;
    size_t stride_ = 1, since_ = 0;
};

// Delivers part of w's stream (home thread; the discard drain of an ended
// home elsewhere); true if w has more and stays ready.
bool drain_worker(worker *w, DrainBudget &clock, bool discard);

}  // namespace qtw
