// Memory budget in bytes (worker_options.capacity_bytes): the stream counts
// the sizes of undelivered yields in worker::data_bytes beside data_entries
// (stream.cpp adds and waits, dispatcher.cpp subtracts after delivery, both
// under worker::mu) and in the fast lane's ring (its own atomics); here is
// the owner-side view of both counts.
#include "worker_p.h"

namespace qtw {
// Decided under mu, so the producer woken by a quit knows whether its
// oversized frame was shown (its yield: OK) or will be dropped (ABORTED).
bool claim_oversized_delivery(worker *w) {
    std::lock_guard<StreamMutex> lk(w->mu);
    if (w->abort_requested) return false;
    w->oversized_shown = true;
    return true;
}
}  // namespace qtw

extern "C" int worker_backlog(const worker *w, size_t *entries, size_t *bytes) {
    size_t n = 0, b = 0;
    int rc = WORKER_EINVAL;
    if (qtw::acquire(w)) {
        // Without w->mu (see data_entries_seen): each count as it was at
        // one moment of the call.
        qtw::YieldRing *r = w->ring.load(std::memory_order_acquire);
        n = w->data_entries_seen.load(std::memory_order_relaxed) + (r ? r->entries() : 0);
        unsigned long long all = w->data_bytes_seen.load(std::memory_order_relaxed);
        b = all > SIZE_MAX ? SIZE_MAX : (size_t)all;
        qtw::release(const_cast<worker *>(w));
        rc = WORKER_OK;
    }
    if (entries) *entries = n;
    if (bytes) *bytes = b;
    return rc;
}
