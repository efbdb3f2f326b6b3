// The fast lane of a worker's stream: a single-producer / single-consumer
// ring of plain yields. The worker thread is its only producer, the home
// thread's dispatcher its only consumer; neither takes a lock. Everything
// else (control entries, warnings, progress, LATEST, pipes, a full ring)
// takes the slow lane, worker::stream under worker::mu (stream.cpp).
//
// Head and tail live on cache lines of their own; each side caches the
// other's index and reloads it only when the cached one says full / empty.
// The consumer reads a batch, then publishes its head (and the bytes it
// consumed) with one release store, and never writes a slot: a slot's line
// is written by the producer only.
#pragma once

#include "qtworker.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

namespace qtw {

struct RingSlot {
    void *value;
    worker_destroy_fn destroy;
    size_t size;  // bytes counted against capacity_bytes
};

class YieldRing {
public:
    // Sizes above this take the slow lane, whose byte sum cannot wrap: the
    // ring's 64-bit sums stay exact for (slots x 2^40) bytes pending.
    static constexpr size_t kMaxSize = size_t(1) << 40;

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
    uint64_t bytes() const {
        return bytes_in_.load(std::memory_order_acquire) - bytes_out_.load(std::memory_order_acquire);
    }

    // --- producer
    // Entries pending as the producer sees them: exact when `fresh`, else
    // possibly more than there are (the consumer's head is cached).
    size_t producer_entries(bool fresh) {
        size_t t = tail_.load(std::memory_order_relaxed);
        if (fresh) head_cache_ = head_.load(std::memory_order_acquire);
        return t - head_cache_;
    }
    uint64_t producer_bytes() const {
        return bytes_in_.load(std::memory_order_relaxed) - bytes_out_.load(std::memory_order_acquire);
    }
    bool try_push(const RingSlot &s) {
        size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_cache_ > mask_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (t - head_cache_ > mask_) return false;  // full
        }
        slot(t) = s;
        bytes_in_.store(bytes_in_.load(std::memory_order_relaxed) + s.size, std::memory_order_relaxed);
        tail_.store(t + 1, std::memory_order_release);  // publishes the slot and its bytes
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
        consumed_bytes_ += s.size;
        return s;
    }
    // Hands the popped slots back to the producer: one store per batch.
    void publish() {
        bytes_out_.store(consumed_bytes_, std::memory_order_release);
        head_.store(next_, std::memory_order_release);
    }

private:
    explicit YieldRing(size_t slots) : mask_(slots - 1) {}
    ~YieldRing() = default;
    RingSlot &slot(size_t i) { return reinterpret_cast<RingSlot *>(this + 1)[i & mask_]; }

    // Written by the producer, read by the consumer.
    alignas(64) std::atomic<size_t> tail_{0};
    std::atomic<uint64_t> bytes_in_{0};
    size_t head_cache_ = 0;  // producer only
    // Written by the consumer once per batch, read by the producer.
    alignas(64) std::atomic<size_t> head_{0};
    std::atomic<uint64_t> bytes_out_{0};
    // Consumer only, written per value: a line of their own (beside head_,
    // the producer's reloads of head_ at capacity stalled every pop).
    alignas(64) size_t next_ = 0;
    size_t tail_cache_ = 0;
    uint64_t consumed_bytes_ = 0;
    alignas(64) const size_t mask_;
    // The slots follow the object (its size is a multiple of 64 bytes).
};

}  // namespace qtw
