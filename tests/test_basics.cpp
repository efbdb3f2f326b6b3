// Function workers and generator workers: returned, yielded, the event order.
#include "harness.h"

using namespace th;

static void returns_42(worker_ctx *ctx, void *) {
    worker_return(ctx, payload(42), payload_free);
}

TEST(Basics, FunctionWorkerReturnsOnGuiThread) {
    reset_payloads();
    Job j(returns_42, nullptr);  // a Recorder is connected to every event type
    ASSERT_NE(j.w, nullptr);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());  // also checks the event order
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    EXPECT_EQ(j.rec->values(WORKER_EV_RETURNED), std::vector<int>{42});
    j.close();  // quits (a no-op now), waits for FINISHED, unrefs
    EXPECT_EQ(payloads_alive(), 0);
}

static void count_to(worker_ctx *ctx, void *arg) {
    int n = *static_cast<int *>(arg);
    for (int i = 0; i < n; i++)
        if (worker_yield(ctx, payload(i), payload_free, nullptr, nullptr) != WORKER_OK) return;
}

TEST(Basics, GeneratorYieldsInOrderThenReturnsNull) {
    reset_payloads();
    static int n = 5000;
    worker *w = worker_create(count_to, &n, nullptr, nullptr);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    std::vector<int> expect;
    for (int i = 0; i < n; i++) expect.push_back(i);
    EXPECT_EQ(r.values(WORKER_EV_YIELDED), expect);
    ASSERT_EQ(r.count(WORKER_EV_RETURNED), 1);
    EXPECT_EQ(r.events()[r.events().size() - 2].raw, nullptr);  // returned NULL
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}
