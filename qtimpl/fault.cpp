// Fault injection (see fault.h).
#include "fault.h"

namespace qtw {
namespace fault {

std::atomic<long> armed_count{0};

namespace {

struct Arm {
    std::atomic<long> countdown{0};  // > 0: fails when it reaches 0
    std::atomic<long> every{0};
    std::atomic<long> failed{0};
};
Arm arms[kPoints];

}  // namespace

void arm(Point p, long nth, long every) {
    Arm &a = arms[p];
    bool was = a.countdown.load() > 0;
    a.every.store(every);
    a.countdown.store(nth > 0 ? nth : 0);
    bool is = nth > 0;
    if (is && !was) armed_count.fetch_add(1);
    if (!is && was) armed_count.fetch_sub(1);
}

void disarm_all() {
    for (int p = 0; p < kPoints; p++) arm(Point(p), 0);
}

long failures(Point p) { return arms[p].failed.load(); }

bool hit_slow(Point p) {
    Arm &a = arms[p];
    long n = a.countdown.load();
    while (n > 0) {
        if (!a.countdown.compare_exchange_weak(n, n - 1)) continue;
        if (n != 1) return false;
        a.failed.fetch_add(1);
        long every = a.every.load();
        if (every > 0)
            a.countdown.store(every);
        else
            armed_count.fetch_sub(1);
        return true;
    }
    return false;
}

}  // namespace fault
}  // namespace qtw
