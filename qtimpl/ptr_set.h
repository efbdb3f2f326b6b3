// A set of pointers in one array (open addressing, linear probing): an insert
// allocates nothing until the table grows, so registering a worker costs no
// malloc of its own (a node per insert was two of a short worker's mallocs).
// Not thread-safe: the owner locks around it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qtw {

class PtrSet {
public:
    // A garbage pointer equal to a marker (a handle of 0 or 1) is in no set.
    bool contains(const void *p) const {
        if (slots_.empty() || is_marker(p)) return false;
        for (size_t i = home(p);; i = (i + 1) & mask()) {
            if (slots_[i] == key(p)) return true;
            if (slots_[i] == kEmpty) return false;
        }
    }

    // May throw std::bad_alloc (the table grows): then p is not in the set.
    // p is a real object's address: never 0 or 1 (the markers).
    void insert(const void *p) {
        if (is_marker(p)) return;
        if ((used_ + 1) * 2 > slots_.size()) rehash();
        size_t free_slot = SIZE_MAX;  // the chain's first tombstone, reused
        size_t i = home(p);
        for (; slots_[i] != kEmpty; i = (i + 1) & mask()) {
            if (slots_[i] == key(p)) return;  // already in: it may sit past a tombstone
            if (slots_[i] == kGone && free_slot == SIZE_MAX) free_slot = i;
        }
        if (free_slot == SIZE_MAX) {
            free_slot = i;
            used_++;
        }
        slots_[free_slot] = key(p);
        count_++;
    }

    void erase(const void *p) {
        if (slots_.empty() || is_marker(p)) return;
        for (size_t i = home(p);; i = (i + 1) & mask()) {
            if (slots_[i] == kEmpty) return;
            if (slots_[i] == key(p)) {
                slots_[i] = kGone;  // a tombstone: later probes go past it
                count_--;
                return;
            }
        }
    }

    size_t size() const { return count_; }

    template <typename F>
    void for_each(F &&f) const {
        for (uintptr_t s : slots_)
            if (s != kEmpty && s != kGone) f(reinterpret_cast<void *>(s));
    }

private:
    static constexpr uintptr_t kEmpty = 0, kGone = 1;  // never a worker's address
    static uintptr_t key(const void *p) { return reinterpret_cast<uintptr_t>(p); }
    static bool is_marker(const void *p) { return key(p) == kEmpty || key(p) == kGone; }
    size_t mask() const { return slots_.size() - 1; }
    size_t home(const void *p) const {
        // Fibonacci hashing: malloc'd addresses differ in their middle bits.
        return size_t((uint64_t(key(p)) * 0x9E3779B97F4A7C15ull) >> 32) & mask();
    }
    // Twice the live entries (at least 16): tombstones are dropped here.
    void rehash() {
        size_t n = 16;
        while (n < 4 * (count_ + 1)) n *= 2;
        std::vector<uintptr_t> old(n, kEmpty);
        old.swap(slots_);
        used_ = count_ = 0;
        for (uintptr_t s : old)
            if (s != kEmpty && s != kGone) insert(reinterpret_cast<void *>(s));
    }

    std::vector<uintptr_t> slots_;
    size_t used_ = 0;   // slots not empty (entries and tombstones)
    size_t count_ = 0;  // entries
};

}  // namespace qtw
