// The stream's chunked FIFO (qtimpl/chunk_queue.h) on its own: order across
// chunks, spares kept for reuse, chunks beyond the spares collected as
// garbage for another thread to free (the sanitizers and valgrind check that
// every chunk is freed exactly once).
#include "../qtimpl/chunk_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>
#include <thread>

namespace {

using Queue = qtw::ChunkQueue<std::unique_ptr<int>, 4, 4>;  // fixed-size chunks: counts below

void fill(Queue &q, int from, int n) {
    for (int i = from; i < from + n; i++) q.push_back(std::make_unique<int>(i));
}

TEST(ChunkQueue, KeepsOrderAcrossChunks) {
    Queue q;
    fill(q, 0, 50);
    EXPECT_EQ(q.size(), 50u);
    for (int i = 0; i < 50; i++) ASSERT_EQ(*q.pop_front(), i);
    EXPECT_TRUE(q.empty());
    fill(q, 50, 3);  // reuses a spare
    EXPECT_EQ(*q.pop_front(), 50);
}

TEST(ChunkQueue, CollectsChunksBeyondTheSparesAsGarbage) {
    Queue q;
    fill(q, 0, 4 * 20);  // 20 chunks
    for (int i = 0; i < 4 * 20; i++) q.pop_front();
    EXPECT_EQ(q.garbage_size(), 20u - 8u);  // 8 spares are kept
    void *g = q.take_garbage();
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(q.garbage_size(), 0u);
    EXPECT_EQ(q.take_garbage(), nullptr);
    std::thread([g] { Queue::free_garbage(g); }).join();  // freed elsewhere
    fill(q, 0, 4 * 8);  // the spares are still usable
    EXPECT_EQ(*q.pop_front(), 0);
}

TEST(ChunkQueue, SwapMovesEntriesAndSpares) {
    Queue producer, consumer;
    fill(producer, 0, 10);
    consumer.swap(producer);
    EXPECT_TRUE(producer.empty());
    ASSERT_EQ(consumer.size(), 10u);
    for (int i = 0; i < 10; i++) ASSERT_EQ(*consumer.pop_front(), i);
    consumer.swap(producer);  // emptied chunks go back to the producer side
    fill(producer, 10, 10);
    EXPECT_EQ(*producer.pop_front(), 10);
}

TEST(ChunkQueue, DestructorFreesEntriesSparesAndGarbage) {
    Queue q;
    fill(q, 0, 4 * 30);
    for (int i = 0; i < 4 * 25; i++) q.pop_front();  // garbage left in place
    EXPECT_GT(q.garbage_size(), 0u);
    // ~Queue: the leak checkers of the sanitizer and valgrind stages fail on a
    // chunk or an entry left behind.
}

// compact(): drops in place, keeps order across chunks (also after the
// first chunk was partly popped), reports every move, keeps working after.
TEST(ChunkQueue, CompactDropsInPlaceKeepsOrderAndReportsMoves) {
    Queue q;
    fill(q, 0, 3);
    q.pop_front();  // the first chunk starts at index 1
    fill(q, 3, 30);
    std::vector<std::pair<int *, int *>> moves;
    q.compact([](const std::unique_ptr<int> &p) { return *p % 3 != 0; },
              [&](std::unique_ptr<int> *from, std::unique_ptr<int> *to) {
                  moves.push_back({from->get(), to->get()});
              });
    ASSERT_EQ(q.size(), 10u);  // 3, 6, ..., 30
    EXPECT_FALSE(moves.empty());
    for (auto &m : moves) EXPECT_EQ(m.first, nullptr) << "the source of a move is left empty";
    for (int i = 1; i <= 10; i++) ASSERT_EQ(*q.pop_front(), 3 * i);
    EXPECT_TRUE(q.empty());
    fill(q, 100, 9);  // the chunks given back are reused
    for (int i = 100; i < 109; i++) ASSERT_EQ(*q.pop_front(), i);
}

TEST(ChunkQueue, CompactToEmptyAndToFull) {
    Queue q;
    fill(q, 0, 17);
    q.compact([](const std::unique_ptr<int> &) { return true; }, [](auto *, auto *) {});
    EXPECT_TRUE(q.empty());
    fill(q, 0, 17);
    int moved = 0;
    q.compact([](const std::unique_ptr<int> &) { return false; }, [&](auto *, auto *) { moved++; });
    EXPECT_EQ(moved, 0) << "nothing dropped: nothing moves";
    ASSERT_EQ(q.size(), 17u);
    for (int i = 0; i < 17; i++) ASSERT_EQ(*q.pop_front(), i);
}

}  // namespace

// Chunks that grow from 2 to 16 entries: order, compaction across chunks
// of different sizes, and reuse of small spares behind large ones.
TEST(ChunkQueue, GrowingChunksKeepOrderAndCompactAcrossSizes) {
    qtw::ChunkQueue<std::unique_ptr<int>, 16, 2> q;
    for (int i = 0; i < 100; i++) q.push_back(std::make_unique<int>(i));  // 2+4+8+16+16+...
    q.pop_front();
    q.compact([](const std::unique_ptr<int> &p) { return *p % 2 == 0; },
              [](std::unique_ptr<int> *, std::unique_ptr<int> *) {});
    ASSERT_EQ(q.size(), 50u);
    for (int i = 1; i < 100; i += 2) ASSERT_EQ(*q.pop_front(), i);
    EXPECT_TRUE(q.empty());
    for (int round = 0; round < 3; round++) {  // spares of every size, reused
        for (int i = 0; i < 70; i++) q.push_back(std::make_unique<int>(i));
        for (int i = 0; i < 70; i++) ASSERT_EQ(*q.pop_front(), i);
    }
    decltype(q)::free_garbage(q.take_garbage());
}
