// Helpers shared by test_receive.cpp and test_pipes.cpp: receiving counted
// ints, a record of what a worker received, a counting source, and two
// fixtures (a receiver already waiting; a gated sink with a source piped in).
#pragma once

#include "harness.h"

#include <atomic>
#include <mutex>
#include <vector>

namespace th {
namespace {

// worker_receive of a counted int: *out = its value (-1 for NULL), destroyed.
inline int receive_int(worker_ctx *ctx, int *out, int timeout_ms = -1) {
    void *v = nullptr;
    worker_destroy_fn d = nullptr;
    int rc = worker_receive(ctx, &v, &d, timeout_ms);
    if (rc == WORKER_RECEIVED) {
        *out = v ? *static_cast<int *>(v) : -1;
        if (d) d(v);
    } else {
        EXPECT_EQ(v, nullptr);
        EXPECT_EQ(d, nullptr);
    }
    return rc;
}

// What a receiving worker got, and how its loop ended. Written on the worker
// thread, read after its function returned (worker_await / FINISHED).
struct Received {
    std::mutex mu;
    std::vector<int> values;
    int last_rc = 0;
    std::vector<int> snapshot() {
        std::lock_guard<std::mutex> lk(mu);
        return values;
    }
    size_t size() {
        std::lock_guard<std::mutex> lk(mu);
        return values.size();
    }
};

// Receives until anything but RECEIVED.
inline Body receive_all(Received &r) {
    return [&r](worker_ctx *ctx) {
        int v, rc;
        while ((rc = receive_int(ctx, &v)) == WORKER_RECEIVED) {
            std::lock_guard<std::mutex> lk(r.mu);
            r.values.push_back(v);
        }
        std::lock_guard<std::mutex> lk(r.mu);
        r.last_rc = rc;
    };
}

// Yields base+0 .. base+n-1 (n < 0: until refused); counts completed yields.
struct Source {
    int n, base;
    std::atomic<int> yielded{0};
    std::atomic<int> last_rc{0};
    Body body() {
        return [this](worker_ctx *ctx) {
            for (int i = 0; n < 0 || i < n; i++) {
                int rc = worker_yield(ctx, payload(base + i), payload_free, nullptr, nullptr);
                last_rc = rc;
                if (rc != WORKER_OK) return;
                yielded++;
            }
        };
    }
};

inline std::vector<int> range(int from, int n) {
    std::vector<int> v(n);
    for (int i = 0; i < n; i++) v[i] = from + i;
    return v;
}

// A worker receiving everything, started and (most likely) inside its
// wait once start() returns: what wakes it must wake it.
struct WaitingReceiver {
    std::atomic<bool> waiting{false};
    Received got;
    Job j;
    WaitingReceiver()
        : j([this](worker_ctx *ctx) {
              waiting = true;
              receive_all(got)(ctx);
          }) {}
    void start() {
        ASSERT_EQ(j.start(), WORKER_OK);
        ASSERT_TRUE(wait_no_pump(waiting));
        nap(20);
    }
};

// A sink that receives everything once `go` is set, and a Source of n
// values piped into it under a policy; start() starts both.
struct GatedPipe {
    std::atomic<bool> go{false};
    Received got;
    Source s;
    worker_options o;
    Job sink, src;
    GatedPipe(int n, worker_policy p, size_t capacity)
        : s{n, 0}, o(policy_options(p, capacity)),
          sink([this](worker_ctx *ctx) {
              wait_no_pump(go);
              receive_all(got)(ctx);
          }),
          src(s.body(), &o) {}
    void start() {
        ASSERT_EQ(worker_pipe(src.w, sink.w), WORKER_OK);
        ASSERT_EQ(sink.start(), WORKER_OK);
        ASSERT_EQ(src.start(), WORKER_OK);
    }
};

}  // namespace
}  // namespace th
