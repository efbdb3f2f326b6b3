// probe (held): ChunkQueue against std::deque: push/pop/compact/swap at random, growing chunks.
// c++ -std=c++17 -g -O1 -fsanitize=address,undefined t_chunk_fuzz.cpp -o t_chunk_fuzz && ./t_chunk_fuzz
#include "../../qtimpl/chunk_queue.h"
#include <cstdio>
#include <deque>
#include <random>
struct T { long v = -1; bool dead = false; };
int main() {
    std::mt19937 rng(1);
    for (int round = 0; round < 300; round++) {
        qtw::ChunkQueue<T> q, other;
        std::deque<long> ref;
        long next = 0;
        T *tracked = nullptr; long tracked_v = -1;
        for (int op = 0; op < 5000; op++) {
            int r = rng() % 100;
            if (r < 55) { T t; t.v = next; T *s = q.push_back(std::move(t)); ref.push_back(next); if (rng() % 10 == 0) { tracked = s; tracked_v = next; } next++; }
            else if (r < 80 && !ref.empty()) { T t = q.pop_front(); if (t.v != ref.front()) { printf("BROKEN pop %ld vs %ld\n", t.v, ref.front()); return 1; } if (tracked && tracked_v == ref.front()) tracked = nullptr; ref.pop_front(); }
            else if (r < 90) {
                long mod = 2 + rng() % 4;
                q.compact([&](const T &t) { return t.v % mod == 0; }, [&](T *from, T *to) { if (from == tracked) tracked = to; });
                std::deque<long> n; for (long v : ref) if (v % mod) n.push_back(v); ref.swap(n);
                if (tracked && tracked_v % mod == 0) tracked = nullptr;
            } else if (r < 95) { if (q.empty() && other.empty()) q.swap(other); }
            else { void *g = q.take_garbage(); qtw::ChunkQueue<T>::free_garbage(g); }
            if (tracked && tracked->v != tracked_v) { printf("BROKEN tracked slot %ld vs %ld\n", tracked->v, tracked_v); return 1; }
            if (q.size() != ref.size()) { printf("BROKEN size %zu vs %zu\n", q.size(), ref.size()); return 1; }
        }
        size_t i = 0; bool bad = false;
        q.for_each([&](T &t) { if (i >= ref.size() || t.v != ref[i]) bad = true; i++; });
        if (bad || i != ref.size()) { printf("BROKEN order round %d\n", round); return 1; }
    }
    printf("chunk queue model: held\n");
    return 0;
}
