// The fast lane's ring (qtimpl/yield_ring.h) on its own: full and empty
// edges, wrap-around over many laps, the consumer's batch
// publication, and one producer / one consumer on two threads (the
// sanitizers check the hand-over of every slot).
#include "../qtimpl/yield_ring.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <thread>

namespace {

struct RingDeleter {
    void operator()(qtw::YieldRing *r) const { qtw::YieldRing::destroy(r); }
};
using Ring = std::unique_ptr<qtw::YieldRing, RingDeleter>;

qtw::RingSlot slot(uintptr_t v) { return qtw::RingSlot{reinterpret_cast<void *>(v), nullptr}; }
uintptr_t value_of(const qtw::RingSlot &s) { return reinterpret_cast<uintptr_t>(s.value); }

TEST(YieldRing, FullAtItsSlotCountAndEmptyAfterwards) {
    Ring r(qtw::YieldRing::create(16));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->slots(), 16u);
    EXPECT_EQ(r->readable(), 0u);
    for (uintptr_t i = 0; i < 16; i++) ASSERT_TRUE(r->try_push(slot(i)));
    EXPECT_FALSE(r->try_push(slot(99))) << "a 17th value in 16 slots";
    EXPECT_EQ(r->entries(), 16u);
    EXPECT_EQ(r->readable(), 16u);
    for (uintptr_t i = 0; i < 16; i++) ASSERT_EQ(value_of(r->pop()), i);
    EXPECT_EQ(r->readable(), 0u);
    // Popped but not published: still pending, and still no room.
    EXPECT_EQ(r->entries(), 16u);
    EXPECT_FALSE(r->try_push(slot(99)));
    r->publish();
    EXPECT_EQ(r->entries(), 0u);
    EXPECT_TRUE(r->try_push(slot(16)));
    EXPECT_EQ(r->readable(), 1u);
    EXPECT_EQ(value_of(r->pop()), 16u);
}

TEST(YieldRing, KeepsOrderOverManyLapsInUnevenBatches) {
    Ring r(qtw::YieldRing::create(16));
    ASSERT_TRUE(r);
    uintptr_t pushed = 0, popped = 0;
    unsigned x = 7;
    for (int round = 0; round < 10000; round++) {
        x = x * 1103515245u + 12345u;
        int n = int((x >> 16) % 20);  // sometimes more than fits: the rest is refused
        for (int i = 0; i < n && r->try_push(slot(pushed)); i++) pushed++;
        ASSERT_LE(pushed - popped, 16u);
        size_t take = r->readable() ? 1 + (x >> 8) % r->readable() : 0;
        for (size_t i = 0; i < take; i++) ASSERT_EQ(value_of(r->pop()), popped++);
        r->publish();
    }
    EXPECT_GT(pushed, 16u * 1000) << "the indices wrapped the slots many times";
}

TEST(YieldRing, OneProducerOneConsumerOnTwoThreads) {
    Ring r(qtw::YieldRing::create(64));
    ASSERT_TRUE(r);
    constexpr uintptr_t kValues = 2000000;
    std::thread producer([&] {
        for (uintptr_t i = 1; i <= kValues; i++)
            while (!r->try_push(slot(i))) std::this_thread::yield();
    });
    uintptr_t next = 1;
    bool in_order = true;
    while (next <= kValues) {
        size_t n = r->readable();
        if (!n) {
            std::this_thread::yield();
            continue;
        }
        while (n--) in_order = in_order && value_of(r->pop()) == next++;
        r->publish();
    }
    producer.join();
    EXPECT_TRUE(in_order);
    EXPECT_EQ(r->entries(), 0u);
}

}  // namespace
