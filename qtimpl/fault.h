// Fault injection for the tests: makes chosen allocations and thread
// creations fail, so every path that handles a failure can be walked.
// Disarmed (the normal case) a check is one relaxed atomic load. The tests
// reach it by linking the static library (these symbols are not exported).
#pragma once

#include <atomic>
#include <new>
#include <system_error>

namespace qtw {
namespace fault {

enum Point {
    StreamChunk,  // a new chunk of a worker's event stream
    Text,         // a message / name of an event
    Inbox,        // a value sent into a worker
    Connection,   // a callback connection
    Create,       // worker_create's own allocations
    Registry,     // the registry of live workers
    Thread,       // a pool thread
    kPoints
};

// nth > 0: the nth check of p from now fails (then p is disarmed);
// every > 0 too: after that, every `every`th check fails as well. 0 disarms.
void arm(Point p, long nth, long every = 0);
void disarm_all();
long failures(Point p);  // how many checks of p have failed so far

extern std::atomic<long> armed_count;  // nonzero while any point is armed
bool hit_slow(Point p);

// True when this check must fail.
inline bool hit(Point p) {
    return armed_count.load(std::memory_order_relaxed) != 0 && hit_slow(p);
}
// Throws what a real failure at p throws.
inline void check(Point p) {
    if (!hit(p)) return;
    if (p == Thread) throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
    throw std::bad_alloc();
}

}  // namespace fault
}  // namespace qtw
