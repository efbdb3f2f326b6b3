// The registry's pointer set (qtimpl/ptr_set.h) on its own: membership after
// inserts and erases, probes past tombstones, growth and the rehash that
// drops tombstones, and a random workload checked against std::set.
#include "../qtimpl/ptr_set.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>

namespace {

// Scattered like heap addresses (16-byte aligned, never 0 or 1): evenly
// spaced ones would land in distinct slots and never build a probe chain.
const void *ptr(uintptr_t i) {
    uint64_t z = i + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return reinterpret_cast<const void *>(uintptr_t((z ^ (z >> 31)) & ~uint64_t(15)) | 4096);
}

TEST(PtrSet, InsertEraseAndContains) {
    qtw::PtrSet s;
    EXPECT_FALSE(s.contains(ptr(1)));
    s.erase(ptr(1));  // erasing from an empty set is harmless
    s.insert(ptr(1));
    s.insert(ptr(1));  // twice: still one entry
    EXPECT_EQ(s.size(), 1u);
    EXPECT_TRUE(s.contains(ptr(1)));
    EXPECT_FALSE(s.contains(ptr(2)));
    s.erase(ptr(1));
    EXPECT_FALSE(s.contains(ptr(1)));
    EXPECT_EQ(s.size(), 0u);
}

TEST(PtrSet, TheMarkerValuesAreNeverMembers) {
    // 0 and 1 mark empty and erased slots: a garbage handle equal to one of
    // them must not match a marker (the API fuzzer's handle 0x1 did, and the
    // registry then dereferenced it).
    qtw::PtrSet s;
    for (uintptr_t i = 0; i < 40; i++) s.insert(ptr(i));
    for (uintptr_t i = 0; i < 40; i += 3) s.erase(ptr(i));  // tombstones present
    EXPECT_FALSE(s.contains(nullptr));
    EXPECT_FALSE(s.contains(reinterpret_cast<const void *>(1)));
    s.insert(reinterpret_cast<const void *>(1));  // refused: not an object's address
    s.erase(reinterpret_cast<const void *>(1));
    EXPECT_FALSE(s.contains(reinterpret_cast<const void *>(1)));
    for (uintptr_t i = 0; i < 40; i++) EXPECT_EQ(s.contains(ptr(i)), i % 3 != 0) << i;
}

TEST(PtrSet, ProbesGoPastTombstones) {
    qtw::PtrSet s;
    // Many entries: some share a probe chain; erasing one in the middle of a
    // chain must leave the later ones findable.
    for (uintptr_t i = 0; i < 200; i++) s.insert(ptr(i));
    for (uintptr_t i = 0; i < 200; i += 2) s.erase(ptr(i));
    for (uintptr_t i = 0; i < 200; i++) EXPECT_EQ(s.contains(ptr(i)), i % 2 == 1) << i;
    EXPECT_EQ(s.size(), 100u);
}

TEST(PtrSet, ChurnNeverFillsTheTableWithTombstones) {
    qtw::PtrSet s;
    // One live entry, a million inserted and erased: without the rehash that
    // drops tombstones, a probe for an absent pointer would never end.
    s.insert(ptr(0));
    for (uintptr_t i = 1; i < 1000000; i++) {
        s.insert(ptr(i));
        s.erase(ptr(i));
    }
    EXPECT_TRUE(s.contains(ptr(0)));
    EXPECT_FALSE(s.contains(ptr(5)));
    EXPECT_EQ(s.size(), 1u);
}

TEST(PtrSet, MatchesStdSetUnderARandomWorkload) {
    qtw::PtrSet s;
    std::set<const void *> ref;
    std::mt19937 rng(7);
    for (int step = 0; step < 200000; step++) {
        const void *p = ptr(rng() % 5000);
        if (rng() % 3 == 0) {
            s.erase(p);
            ref.erase(p);
        } else {
            s.insert(p);
            ref.insert(p);
        }
    }
    EXPECT_EQ(s.size(), ref.size());
    size_t seen = 0;
    s.for_each([&](void *p) {
        EXPECT_TRUE(ref.count(p));
        seen++;
    });
    EXPECT_EQ(seen, ref.size());
    for (uintptr_t i = 0; i < 5000; i++) EXPECT_EQ(s.contains(ptr(i)), ref.count(ptr(i)) == 1);
}

}  // namespace
