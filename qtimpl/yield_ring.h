// The fast lane of a worker's stream: a single-producer / single-consumer
// ring of plain yields. The worker thread is its only producer, the home
// thread's dispatcher its only consumer; neither takes a lock. Everything
// else (control entries, warnings, progress, LATEST, pipes, a full ring)
// takes the slow lane, worker::stream under worker::mu (stream.cpp).
//
// Head and tail live on cache lines of their own; each side caches the
// other's index and reloads it only when the cached one says full / empty.
// The consumer reads a batch, then publishes its head with one release
// store, and never writes a slot: a slot's line
// is written by the producer only.
#pragma once

#include "qtworker.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

namespace qtw {

// 16 bytes, four to a cache line: the slow host regime is bound by the
// transfers of slot lines between the two CPUs. A value with a size
// (worker_yield_sized: counted by worker_backlog and the byte budget)
// takes the slow lane, so the ring counts no bytes.
struct RingSlot {
    void *value;
    worker_destroy_fn destroy;
};

class YieldRing {
public:
    // slots: a power of two. Null without memory (the slow lane serves).
    static YieldRing *create(size_t slots) noexcept {
        void *mem = ::operator new(sizeof(YieldRing) + slots * sizeof(RingSlot),
                                   std::align_val_t(alignof(YieldRing)), std::nothrow);
        if (!mem) return nullptr;
        auto *r = new (mem) YieldRing(slots);
        for (size_t i = 0; i < slots; i++) new (&r->slot(i)) RingSlot{};
        return r;
    }
    static void destroy(YieldRing *r) noexcept {
        if (!r) return;
        r->~YieldRing();
        ::operator delete(static_cast<void *>(r), std::align_val_t(alignof(YieldRing)));
    }
    YieldRing(const YieldRing &) = delete;
    YieldRing &operator=(const YieldRing &) = delete;

    size_t slots() const { return mask_ + 1; }

    // --- any thread: what is pending (pushed, not yet published consumed)
    size_t entries() const {
        return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
    }

    // --- producer
    // Entries pending as the producer sees them: exact when `fresh`, else
    // possibly more than there are (the consumer's head is cached).
    size_t producer_entries(bool fresh) {
        size_t t = tail_.load(std::memory_order_relaxed);
        if (fresh) head_cache_ = head_.load(std::memory_order_acquire);
        return t - head_cache_;
    }
    bool try_push(const RingSlot &s) {
        size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_cache_ > mask_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (t - head_cache_ > mask_) return false;  // full
        }
        slot(t) = s;
        tail_.store(t + 1, std::memory_order_release);  // publishes the slot
        return true;
    }

    // --- consumer
    // Entries it may pop now (reloads the producer's tail once they run out).
    size_t readable() {
        if (tail_cache_ == next_) tail_cache_ = tail_.load(std::memory_order_acquire);
        return tail_cache_ - next_;
    }
    // Only after readable() said so. Copies the slot, never writes it.
    RingSlot pop() {
        RingSlot s = slot(next_);
        next_++;
        return s;
    }
    // Hands the popped slots back to the producer: one store per batch.
    void publish() {
        head_.store(next_, std::memory_order_release);
    }

private:
    explicit YieldRing(size_t slots) : mask_(slots - 1) {}
    ~YieldRing() = default;
    RingSlot &slot(size_t i) { return reinterpret_cast<RingSlot *>(this + 1)[i & mask_]; }

    // Written by the producer, read by the consumer.
    alignas(64) std::atomic<size_t> tail_{0};
    size_t head_cache_ = 0;  // producer only
    // Written by the consumer once per batch, read by the producer.
    alignas(64) std::atomic<size_t> head_{0};
    // Consumer only, written per value: a line of their own (beside head_,
    // the producer's reloads of head_ at capacity stalled every pop).
    alignas(64) size_t next_ = 0;
    size_t tail_cache_ = 0;
    alignas(64) const size_t mask_;
    // The slots follow the object (its size is a multiple of 64 bytes).
};

}  // namespace qtw
