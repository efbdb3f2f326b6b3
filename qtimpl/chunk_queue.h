// The stream's FIFO: a list of fixed-size chunks. A push or pop is O(1) and
// never moves other entries (a growing ring copies the whole backlog under
// the producer's lock: measured as 0.6 s GUI stalls at a 4 M entry backlog).
// Emptied chunks are kept as spares, and swap() hands them to the other
// queue, so the producer reuses what the consumer freed: no allocation in
// steady state. Chunks beyond the spares are collected, not freed: the owner
// frees them on another thread (take_garbage), because the free() that ends a
// large backlog returns the heap to the kernel, which took the GUI 20-35 ms
// for an 800 MB backlog.
//
// Chunks grow from First to N entries (doubling): a short worker's stream
// (started, returned, finished) fits in a small chunk that malloc serves
// from its per-thread cache, where a full chunk (7 KB of entries, all
// constructed) cost 1000 short workers page faults and arena growth.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace qtw {

template <typename T, size_t N = 128, size_t First = 8>
class ChunkQueue {
    static_assert(First > 0 && First <= N, "chunks grow from First to N entries");
    struct alignas(alignof(T)) Chunk {
        size_t head = 0, tail = 0, cap = 0;
        Chunk *next = nullptr;
        T *items() { return reinterpret_cast<T *>(this + 1); }
    };

public:
    ChunkQueue() = default;
    ChunkQueue(const ChunkQueue &) = delete;
    ChunkQueue &operator=(const ChunkQueue &) = delete;
    ~ChunkQueue() {
        free_list(first_);
        free_list(spare_);
        free_list(garbage_);
    }

    bool empty() const { return size_ == 0; }
    // The next push_back needs a new chunk (it allocates, and may throw).
    bool next_push_allocates() const { return (!last_ || last_->tail == last_->cap) && !spare_; }
    size_t size() const { return size_; }

    // Appends v; the returned slot stays valid until it is popped.
    T *push_back(T &&v) {
        if (!last_ || last_->tail == last_->cap) append_chunk();
        T *slot = &last_->items()[last_->tail++];
        *slot = std::move(v);
        size_++;
        return slot;
    }

    T &front() { return first_->items()[first_->head]; }  // not empty

    T pop_front() {
        T v = std::move(first_->items()[first_->head++]);
        size_--;
        if (first_->head == first_->tail) {
            Chunk *c = first_;
            first_ = c->next;
            if (!first_) last_ = nullptr;
            recycle(c);
        }
        return v;
    }

    void swap(ChunkQueue &o) noexcept {
        std::swap(first_, o.first_);
        std::swap(last_, o.last_);
        std::swap(size_, o.size_);
        std::swap(spare_, o.spare_);
        std::swap(nspare_, o.nspare_);
    }

    // Chunks collected since the last call (an opaque list, or null), and
    // how many: pass the list to free_garbage on any thread.
    size_t garbage_size() const { return ngarbage_; }
    void *take_garbage() {
        Chunk *g = garbage_;
        garbage_ = nullptr;
        ngarbage_ = 0;
        return g;
    }
    static void free_garbage(void *list) { free_list(static_cast<Chunk *>(list)); }

    // Removes, in place and in order, every item for which drop(item) holds
    // (a dropped item is reset to T{}), calls moved(from, to) for each kept
    // item that changes place, and recycles the chunks left empty. Never
    // allocates: LATEST compacts its tombstones with it under the
    // producer's lock, so it must not fail or stall.
    template <typename Drop, typename Moved>
    void compact(Drop &&drop, Moved &&moved) {
        if (!first_) return;
        Chunk *wc = first_;
        size_t wi = first_->head;
        for (Chunk *rc = first_; rc; rc = rc->next) {
            for (size_t ri = rc->head; ri < rc->tail; ri++) {
                T &item = rc->items()[ri];
                if (drop(item)) {
                    item = T{};
                    size_--;
                    continue;
                }
                if (wi == wc->cap) {
                    wc = wc->next;
                    wi = 0;
                }
                if (&wc->items()[wi] != &item) {
                    wc->items()[wi] = std::move(item);
                    moved(&item, &wc->items()[wi]);
                }
                wi++;
            }
        }
        Chunk *rest = wc->next;
        wc->next = nullptr;
        wc->tail = wi;
        last_ = wc;
        if (wc->head == wc->tail) {  // nothing kept: wc is the first chunk
            first_ = last_ = nullptr;
            keep_spare(wc);
        }
        // All kept as spares (not garbage): the queue refills to about the
        // same length, and garbage would pile up until its owner swaps it.
        while (rest) {
            Chunk *next = rest->next;
            keep_spare(rest);
            rest = next;
        }
    }

    template <typename F>
    void for_each(F &&f) {
        for (Chunk *c = first_; c; c = c->next)
            for (size_t i = c->head; i < c->tail; i++) f(c->items()[i]);
    }

private:
    static constexpr int kMaxSpares = 8;

    void append_chunk() {
        Chunk *c = spare_;
        if (c) {
            spare_ = c->next;
            nspare_--;
            c->head = c->tail = 0;
            c->next = nullptr;
        } else {
            c = new_chunk(last_ ? std::min(N, 2 * last_->cap) : First);
        }
        if (last_)
            last_->next = c;
        else
            first_ = c;
        last_ = c;
    }

    void keep_spare(Chunk *c) {
        c->next = spare_;
        spare_ = c;
        nspare_++;
    }

    void recycle(Chunk *c) {
        if (nspare_ >= kMaxSpares) {
            c->next = garbage_;
            garbage_ = c;
            ngarbage_++;
            return;
        }
        c->next = spare_;
        spare_ = c;
        nspare_++;
    }

    static Chunk *new_chunk(size_t cap) {
        void *mem = ::operator new(sizeof(Chunk) + cap * sizeof(T));  // may throw: nothing changed
        Chunk *c = new (mem) Chunk;
        c->cap = cap;
        std::uninitialized_value_construct_n(c->items(), cap);
        return c;
    }

    static void free_list(Chunk *c) {
        while (c) {
            Chunk *next = c->next;
            std::destroy_n(c->items(), c->cap);
            c->~Chunk();
            ::operator delete(static_cast<void *>(c));
            c = next;
        }
    }

    Chunk *first_ = nullptr, *last_ = nullptr, *spare_ = nullptr, *garbage_ = nullptr;
    size_t size_ = 0, ngarbage_ = 0;
    int nspare_ = 0;
};

}  // namespace qtw
