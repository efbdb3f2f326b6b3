// Command queues: worker_receive (order, timeout, quit and pause while
// waiting, EOF after worker_close_input, bad input) (issue 16). Asserted by
// values and order, never by timing; a wake-up that never comes fails
// through a HangGuard or a bounded wait.
#include "receive_helpers.h"
#include "qtworker.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

using namespace th;

// ------------------------------------------------------------ command queue

TEST(Receive, CommandsRunInTheOrderSent) {
    reset_payloads();
    {
        Received got;
        Job j(receive_all(got));
        for (int i = 0; i < 50; i++) ASSERT_EQ(worker_send(j.w, payload(i), payload_free), WORKER_OK);
        ASSERT_EQ(worker_send(j.w, nullptr, nullptr), WORKER_OK);  // NULL is a command too
        ASSERT_EQ(j.start(), WORKER_OK);
        for (int i = 50; i < 100; i++) ASSERT_EQ(worker_send(j.w, payload(i), payload_free), WORKER_OK);
        ASSERT_EQ(worker_close_input(j.w), WORKER_OK);
        ASSERT_TRUE(j.rec->wait_finished());
        std::vector<int> want = range(0, 50);
        want.push_back(-1);
        for (int i = 50; i < 100; i++) want.push_back(i);
        EXPECT_EQ(got.snapshot(), want);
        EXPECT_EQ(got.last_rc, WORKER_EOF);
        EXPECT_EQ(j.rec->outcome(), WORKER_EV_RETURNED);
    }
    expect_payloads_freed();
}

TEST(Receive, TimesOutAndPolls) {
    reset_payloads();
    std::vector<int> codes;
    std::atomic<bool> timed_out{false};
    int value = 0;
    Job j([&](worker_ctx *ctx) {
        int v = 0;
        codes.push_back(receive_int(ctx, &v, 0));   // poll, empty
        codes.push_back(receive_int(ctx, &v, 30));  // wait, nothing comes
        timed_out = true;
        codes.push_back(receive_int(ctx, &v, -1));  // the send below wakes it
        value = v;
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(timed_out));
    nap(20);  // most likely waiting by now: the send must wake it
    ASSERT_EQ(worker_send(j.w, payload(8), payload_free), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(codes, (std::vector<int>{WORKER_ETIMEDOUT, WORKER_ETIMEDOUT, WORKER_RECEIVED}));
    EXPECT_EQ(value, 8);
    j.close();
    expect_payloads_freed();
}

TEST(Receive, PollTakesWhatWasSentBefore) {
    reset_payloads();
    std::vector<int> codes, values;
    Job j([&](worker_ctx *ctx) {
        int v = 0;
        for (int i = 0; i < 3; i++) {
            codes.push_back(receive_int(ctx, &v, 0));
            values.push_back(v);
        }
    });
    ASSERT_EQ(worker_send(j.w, payload(5), payload_free), WORKER_OK);
    ASSERT_EQ(worker_send(j.w, payload(6), payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(codes, (std::vector<int>{WORKER_RECEIVED, WORKER_RECEIVED, WORKER_ETIMEDOUT}));
    EXPECT_EQ(values[0], 5);
    EXPECT_EQ(values[1], 6);
    j.close();
    expect_payloads_freed();
}

TEST(Receive, QuitWhileWaitingForeverReturnsAborted) {
    reset_payloads();
    std::atomic<bool> waiting{false};
    std::atomic<int> rc{0};
    Job j([&](worker_ctx *ctx) {
        int v;
        waiting = true;
        rc = receive_int(ctx, &v, -1);
        // Once quit, it stays so.
        if (receive_int(ctx, &v, -1) != WORKER_ABORTED) rc = 99;
    });
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump(waiting));
    nap(20);  // most likely inside the wait by now
    HangGuard guard("worker_receive(-1) woken by quit");
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_EQ(worker_await(j.w, -1), WORKER_OK);
    EXPECT_EQ(rc.load(), WORKER_ABORTED);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(j.rec->outcome(), WORKER_EV_ABORTED);
    j.close();
    expect_payloads_freed();
}

TEST(Receive, QuitWinsOverValuesWaiting) {
    reset_payloads();
    std::atomic<int> rc{0};
    Job j([&](worker_ctx *ctx) {
        int v;
        rc = receive_int(ctx, &v, -1);
    });
    ASSERT_EQ(worker_send(j.w, payload(1), payload_free), WORKER_OK);
    ASSERT_EQ(worker_quit(j.w), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(rc.load(), 0) << "quit before start: the function never runs";
    j.close();
    expect_payloads_freed();  // the unreceived send was destroyed
}

TEST(Receive, PauseWhileWaitingParksAndReceivesNothingUntilResumed) {
    reset_payloads();
    WaitingReceiver r;
    Received &got = r.got;
    Job &j = r.j;
    r.start();
    {
        HangGuard guard("a pause wakes worker_receive to park");
        ASSERT_EQ(worker_pause(j.w), WORKER_OK);
        ASSERT_TRUE(j.rec->wait_for(WORKER_EV_PAUSED));
    }
    EXPECT_EQ(worker_is_paused(j.w), 1);
    ASSERT_EQ(worker_send(j.w, payload(7), payload_free), WORKER_OK);
    pump_for(50);  // a value arriving must not unpark it
    EXPECT_EQ(got.size(), 0u) << "received while paused";
    EXPECT_EQ(worker_is_paused(j.w), 1);
    ASSERT_EQ(worker_resume(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_for(WORKER_EV_RESUMED));
    ASSERT_TRUE(pump_until([&] { return got.size() == 1; }));
    EXPECT_EQ(got.snapshot(), std::vector<int>{7});
    ASSERT_EQ(worker_close_input(j.w), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(got.last_rc, WORKER_EOF);
    EXPECT_EQ(j.rec->types(), (Types{WORKER_EV_STARTED, WORKER_EV_PAUSED, WORKER_EV_RESUMED,
                                     WORKER_EV_RETURNED, WORKER_EV_FINISHED}));
    j.close();
    expect_payloads_freed();
}

TEST(Receive, EofAfterCloseOnceEverythingBeforeWasReceived) {
    reset_payloads();
    {
        Received got;
        Job j(receive_all(got));
        for (int i = 0; i < 3; i++) ASSERT_EQ(worker_send(j.w, payload(i), payload_free), WORKER_OK);
        ASSERT_EQ(worker_close_input(j.w), WORKER_OK);  // before start
        EXPECT_EQ(worker_close_input(j.w), WORKER_ESTATE) << "closed twice";
        EXPECT_EQ(worker_send(j.w, payload(9), payload_free), WORKER_ESTATE);
        EXPECT_EQ(payloads_alive(), 3) << "the refused send was destroyed at once";
        ASSERT_EQ(j.start(), WORKER_OK);
        ASSERT_TRUE(j.rec->wait_finished());
        EXPECT_EQ(got.snapshot(), range(0, 3));
        EXPECT_EQ(got.last_rc, WORKER_EOF);
        EXPECT_EQ(worker_close_input(j.w), WORKER_ESTATE) << "after the end";
    }
    expect_payloads_freed();
}

TEST(Receive, CloseWakesAWaitingReceiver) {
    reset_payloads();
    WaitingReceiver r;
    r.start();
    HangGuard guard("worker_close_input wakes worker_receive");
    ASSERT_EQ(worker_close_input(r.j.w), WORKER_OK);
    ASSERT_EQ(worker_await(r.j.w, -1), WORKER_OK);
    EXPECT_EQ(r.got.last_rc, WORKER_EOF);
}

TEST(Receive, YieldAndReceiveShareOneOrderedInput) {
    reset_payloads();
    std::vector<int> order;
    Job j([&](worker_ctx *ctx) {
        int v;
        void *s;
        worker_destroy_fn sd;
        for (int i = 0; i < 4; i++) {
            if (i % 2 == 0) {
                if (receive_int(ctx, &v) == WORKER_RECEIVED) order.push_back(v);
            } else if (worker_yield(ctx, nullptr, nullptr, &s, &sd) == WORKER_RECEIVED) {
                order.push_back(*static_cast<int *>(s));
                sd(s);
            }
        }
    });
    for (int i = 0; i < 4; i++) ASSERT_EQ(worker_send(j.w, payload(i), payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(order, range(0, 4));
    j.close();
    expect_payloads_freed();
}

// ------------------------------------------------------------- bad input

TEST(ReceiveBadInput, OutsideTheFunctionAndNullOutputs) {
    reset_payloads();
    std::atomic<worker_ctx *> kept{nullptr};
    std::atomic<bool> release{false};
    std::vector<int> inside;
    Job j([&](worker_ctx *ctx) {
        void *v = nullptr;
        worker_destroy_fn d = nullptr;
        inside = {worker_receive(ctx, nullptr, &d, 0), worker_receive(ctx, &v, nullptr, 0),
                  worker_receive(ctx, nullptr, nullptr, -1)};
        kept = ctx;
        wait_no_pump(release);
    });
    ASSERT_EQ(worker_send(j.w, payload(3), payload_free), WORKER_OK);
    ASSERT_EQ(j.start(), WORKER_OK);
    ASSERT_TRUE(wait_no_pump([&] { return kept.load() != nullptr; }));
    void *v = nullptr;
    worker_destroy_fn d = nullptr;
    EXPECT_EQ(worker_receive(kept, &v, &d, 0), WORKER_ETHREAD) << "GUI thread";
    EXPECT_EQ(worker_receive(kept, &v, &d, -1), WORKER_ETHREAD) << "must not wait";
    int from_thread = 0;
    std::thread t([&] { from_thread = worker_receive(kept, &v, &d, -1); });
    t.join();
    EXPECT_EQ(from_thread, WORKER_ETHREAD);
    int from_other_worker = 0;
    Job other([&](worker_ctx *) { from_other_worker = worker_receive(kept, &v, &d, 0); });
    ASSERT_EQ(other.start(), WORKER_OK);
    ASSERT_TRUE(other.rec->wait_finished());
    EXPECT_EQ(from_other_worker, WORKER_ETHREAD);
    EXPECT_EQ(v, nullptr);
    release = true;
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(inside, std::vector<int>(3, WORKER_EINVAL));
    j.close();
    expect_payloads_freed();  // the send nobody could receive
}

TEST(ReceiveBadInput, StrerrorOfEof) {
    EXPECT_STRNE(worker_strerror(WORKER_EOF), worker_strerror(12345));
    EXPECT_GT(WORKER_EOF, 0);
}
