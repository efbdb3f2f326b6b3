// Two-way communication: worker_send into a generator, received by
// worker_yield (FIFO, NULL is a value, nothing lost, everything destroyed).
#include "harness.h"

#include <mutex>

using namespace th;

namespace {

// A destroy function that also counts NULL values (payload_free would free
// NULL without counting it).
std::atomic<int> null_destroys{0};
void counting_free(void *p) {
    if (p)
        payload_free(p);
    else
        null_destroys++;
}

// What the worker received, in order (-1 for NULL). Written on the worker
// thread, read on the GUI thread after FINISHED.
struct Inbox {
    std::mutex mu;
    std::vector<int> got;
    std::vector<int> codes;  // worker_yield statuses worth asserting on
    void add(void *v) {
        std::lock_guard<std::mutex> lk(mu);
        got.push_back(v ? *static_cast<int *>(v) : -1);
    }
    void code(int rc) {
        std::lock_guard<std::mutex> lk(mu);
        codes.push_back(rc);
    }
};

// Yields i and, if a value came back, records and destroys it.
int yield_receive(worker_ctx *ctx, int i, Inbox &in) {
    void *sent = nullptr;
    worker_destroy_fn sd = nullptr;
    int rc = worker_yield(ctx, payload(i), payload_free, &sent, &sd);
    if (rc == WORKER_RECEIVED) {
        in.add(sent);
        if (sd) sd(sent);
    }
    return rc;
}

// Yields until `want` values were received (or quit).
Body receive_n(Inbox &in, size_t want) {
    return [&in, want](worker_ctx *ctx) {
        for (int i = 0;; i++) {
            {
                std::lock_guard<std::mutex> lk(in.mu);
                if (in.got.size() >= want) return;
            }
            if (yield_receive(ctx, i, in) == WORKER_ABORTED) return;
        }
    };
}

}  // namespace

// ------------------------------------------------------------------ napari

// napari's multiplier example: `new = yield total; total *= new` until the
// total hits 0, then `return "Game Over"`. As in napari the generator runs
// on: a yield with nothing sent gives None (here: OK), which leaves the total.
namespace {

std::atomic<long> doubles_alive{0};
double *dbl(double v) {
    doubles_alive++;
    return new double(v);
}
void dbl_free(void *p) {
    doubles_alive--;
    delete static_cast<double *>(p);
}

const char kGameOver[] = "Game Over";

void multiplier(worker_ctx *ctx) {
    double total = 1;
    for (;;) {
        void *sent;
        worker_destroy_fn sd;
        int rc = worker_yield(ctx, payload((int)total), payload_free, &sent, &sd);
        if (rc == WORKER_ABORTED) return;
        if (rc == WORKER_RECEIVED) {
            if (sent) total *= *static_cast<double *>(sent);
            if (sd) sd(sent);
            if (total == 0) {
                worker_return(ctx, (void *)kGameOver, nullptr);
                return;
            }
        } else {
            nap();  // napari's time.sleep(0.1), shortened
        }
    }
}

}  // namespace

TEST(Send, NapariMultiplier) {
    reset_payloads();
    doubles_alive = 0;
    Job j(multiplier);
    const double factors[] = {2, 3, 4, 0};
    const int products[] = {1, 2, 6, 24};
    size_t k = 0;  // next factor to send, once products[k] was seen
    // The GUI's spin box: one value per new product.
    j.rec->on(WORKER_EV_YIELDED, [&](worker_event *ev) {
        if (k < 4 && *static_cast<int *>(ev->value) == products[k]) {
            EXPECT_EQ(worker_send(ev->source, dbl(factors[k++]), dbl_free), WORKER_OK);
        }
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(k, 4u);
    std::vector<int> distinct;
    for (int v : j.rec->values(WORKER_EV_YIELDED))
        if (distinct.empty() || distinct.back() != v) distinct.push_back(v);
    EXPECT_EQ(distinct, (std::vector<int>{1, 2, 6, 24}));
    ASSERT_EQ(j.rec->count(WORKER_EV_RETURNED), 1);
    EXPECT_EQ(j.rec->first(WORKER_EV_RETURNED).raw, (void *)kGameOver);
    j.close();
    expect_payloads_freed();
    EXPECT_EQ(doubles_alive.load(), 0);
}

// ---------------------------------------------------------- FIFO, timing

TEST(Send, BeforeStartReceivedInOrder) {
    reset_payloads();
    Inbox in;
    Job j(receive_n(in, 5));
    for (int v = 10; v < 15; v++) ASSERT_EQ(worker_send(j.w, payload(v), payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(in.got, (std::vector<int>{10, 11, 12, 13, 14}));
    EXPECT_EQ(j.rec->count(WORKER_EV_RETURNED), 1);
    j.close();
    expect_payloads_freed();
}

// Several sends while the worker runs but has not yielded yet: one per
// receiving yield, in send order, none lost.
TEST(Send, BeforeFirstYieldFifoNoneLost) {
    reset_payloads();
    Inbox in;
    std::atomic<bool> running{false}, go{false};
    Body rest = receive_n(in, 4);
    Job j([&](worker_ctx *ctx) {
        running = true;
        wait_no_pump(go);
        rest(ctx);
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(pump_until([&] { return running.load(); }));
    for (int v = 1; v <= 4; v++) ASSERT_EQ(worker_send(j.w, payload(v), payload_free), WORKER_OK);
    go = true;
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(in.got, (std::vector<int>{1, 2, 3, 4}));
    // One value per yield: the first four yields each received one.
    EXPECT_EQ(j.rec->count(WORKER_EV_YIELDED), 4);
    j.close();
    expect_payloads_freed();
}

// -------------------------------------------------------------- NULL value

TEST(Send, NullIsAValueAndItsDestroyRuns) {
    reset_payloads();
    null_destroys = 0;
    std::atomic<int> rc{0};
    std::atomic<bool> got_null{false}, right_destroy{false};
    Job j([&](worker_ctx *ctx) {
        void *sent = &rc;  // not NULL: the call must write NULL
        worker_destroy_fn sd = nullptr;
        rc = worker_yield(ctx, payload(0), payload_free, &sent, &sd);
        got_null = sent == nullptr;
        right_destroy = sd == counting_free;
        if (sd) sd(sent);
    });
    ASSERT_EQ(worker_send(j.w, nullptr, counting_free), WORKER_OK);
    ASSERT_EQ(worker_send(j.w, nullptr, counting_free), WORKER_OK);  // never received
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(rc.load(), WORKER_RECEIVED);
    EXPECT_TRUE(got_null.load());
    EXPECT_TRUE(right_destroy.load());
    j.close();
    EXPECT_EQ(null_destroys.load(), 2);  // the received one and the leftover
    expect_payloads_freed();
}

// --------------------------------------------- not receiving, leftovers

// worker_yield without sent/sent_destroy leaves sends queued; a later
// receiving yield gets the oldest; what is never received is destroyed when
// the worker ends.
TEST(Send, NonReceivingYieldKeepsQueueLeftoversDestroyed) {
    reset_payloads();
    Inbox in;
    Job j([&](worker_ctx *ctx) {
        for (int i = 0; i < 3; i++)
            in.code(worker_yield(ctx, payload(i), payload_free, nullptr, nullptr));
        in.code(yield_receive(ctx, 3, in));
    });
    // Slow destroys: what the library destroys "when the worker ends" must
    // still be gone by FINISHED.
    for (int v = 100; v < 103; v++)
        ASSERT_EQ(worker_send(j.w, payload(v), slow_payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(in.codes, (std::vector<int>{WORKER_OK, WORKER_OK, WORKER_OK, WORKER_RECEIVED}));
    EXPECT_EQ(in.got, std::vector<int>{100});
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), (std::vector<int>{0, 1, 2, 3}));
    // 101, 102 were never received: destroyed by the time FINISHED arrived.
    expect_payloads_freed();
    j.close();
    expect_payloads_freed();
}

// ------------------------------------------------------------ after the end

TEST(Send, AfterEndIsEstateAndDestroysValue) {
    reset_payloads();
    null_destroys = 0;
    Job j([](worker_ctx *) {});
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(worker_send(j.w, payload(1), payload_free), WORKER_ESTATE);
    expect_payloads_freed();
    EXPECT_EQ(worker_send(j.w, nullptr, counting_free), WORKER_ESTATE);
    EXPECT_EQ(null_destroys.load(), 1);
    j.close();
    expect_payloads_freed();
}

// --------------------------------------------------- sent without its pair

TEST(Send, SentOrSentDestroyAloneIsEinval) {
    reset_payloads();
    Inbox in;
    Job j([&](worker_ctx *ctx) {
        void *sent = nullptr;
        worker_destroy_fn sd = nullptr;
        in.code(worker_yield(ctx, payload(1), payload_free, &sent, nullptr));
        in.code(worker_yield(ctx, payload(2), payload_free, nullptr, &sd));
        // The queued value was not consumed by the failed calls.
        in.code(yield_receive(ctx, 3, in));
    });
    ASSERT_EQ(worker_send(j.w, payload(7), payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(in.codes, (std::vector<int>{WORKER_EINVAL, WORKER_EINVAL, WORKER_RECEIVED}));
    EXPECT_EQ(in.got, std::vector<int>{7});
    // The refused values were destroyed, not delivered.
    EXPECT_EQ(j.rec->values(WORKER_EV_YIELDED), std::vector<int>{3});
    j.close();
    expect_payloads_freed();
}
