// Serial groups and timeouts: one instrument, one command at a time.
// Order and overlap are observed through shared counters, never by timing.
#include "harness.h"

#include <atomic>
#include <mutex>
#include <thread>

using namespace th;

namespace {

// What the "instrument" saw: the order commands ran in, and how many ran at
// once (max_inside > 1 means two commands interleaved).
struct Instrument {
    std::mutex mu;
    std::vector<int> order;
    std::atomic<int> inside{0}, max_inside{0};
    std::atomic<bool> release{false};  // commands wait for this while inside
};

struct Command {
    Instrument *ins;
    int id;
};

void run_command(worker_ctx *ctx, void *arg) {
    auto *c = static_cast<Command *>(arg);
    int now = ++c->ins->inside;
    int seen = c->ins->max_inside.load();
    while (now > seen && !c->ins->max_inside.compare_exchange_weak(seen, now)) {
    }
    {
        std::lock_guard<std::mutex> lk(c->ins->mu);
        c->ins->order.push_back(c->id);
    }
    auto t0 = std::chrono::steady_clock::now();
    while (!c->ins->release.load() && !worker_abort_requested(ctx) &&
           std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    --c->ins->inside;
    worker_return(ctx, payload(c->id), payload_free);
}

void free_command(void *p) { delete static_cast<Command *>(p); }

worker *command(Instrument *ins, int id, const char *group, bool exclusive = false) {
    worker_options o;
    worker_options_init(&o);
    o.group = group;
    o.group_exclusive = exclusive;
    return worker_create(run_command, new Command{ins, id}, free_command, &o);
}

}  // namespace

TEST(Groups, MembersRunOneAtATimeInStartOrder) {
    reset_payloads();
    Instrument ins;
    ins.release = true;  // each command ends at once
    std::vector<worker *> ws;
    std::vector<std::unique_ptr<Recorder>> recs;
    for (int i = 0; i < 8; i++) {
        ws.push_back(command(&ins, i, "stage"));
        recs.push_back(std::make_unique<Recorder>(ws.back()));
        ASSERT_EQ(worker_start(ws.back()), WORKER_OK);
    }
    for (auto &r : recs) ASSERT_TRUE(r->wait_finished());
    EXPECT_EQ(ins.order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(ins.max_inside.load(), 1) << "two commands of one group interleaved";
    for (int i = 0; i < 8; i++) EXPECT_EQ(recs[i]->values(WORKER_EV_RETURNED), std::vector<int>{i});
    for (worker *w : ws) worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Groups, DifferentGroupsRunInParallel) {
    reset_payloads();
    Instrument ins;
    worker *a = command(&ins, 1, "camera");
    worker *b = command(&ins, 2, "stage");
    worker *c = command(&ins, 3, nullptr);  // ungrouped
    Recorder ra(a), rb(b), rc(c);
    worker_start(a);
    worker_start(b);
    worker_start(c);
    // All three are inside at once: proof of overlap, no clock involved.
    ASSERT_TRUE(pump_until([&] { return ins.inside.load() == 3; }));
    ins.release = true;
    ASSERT_TRUE(ra.wait_finished() && rb.wait_finished() && rc.wait_finished());
    EXPECT_EQ(ins.max_inside.load(), 3);
    worker_unref(a);
    worker_unref(b);
    worker_unref(c);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Groups, QuitOfAQueuedMemberAbortsWithoutRunning) {
    reset_payloads();
    Instrument ins;
    worker *first = command(&ins, 1, "serial");
    worker *queued = command(&ins, 2, "serial");
    worker *last = command(&ins, 3, "serial");
    Recorder r1(first), r2(queued), r3(last);
    worker_start(first);
    worker_start(queued);
    worker_start(last);
    ASSERT_TRUE(pump_until([&] { return ins.inside.load() == 1; }));
    EXPECT_EQ(worker_is_running(queued), 1) << "a queued member counts as started";
    EXPECT_EQ(worker_live_count(), 3);
    ASSERT_EQ(worker_quit(queued), WORKER_OK);
    ASSERT_TRUE(r2.wait_finished());  // while `first` still holds the group
    EXPECT_EQ(r2.types(), (std::vector<worker_event_type>{WORKER_EV_STARTED, WORKER_EV_ABORTED,
                                                          WORKER_EV_FINISHED}));
    ins.release = true;
    ASSERT_TRUE(r1.wait_finished() && r3.wait_finished());
    EXPECT_EQ(ins.order, (std::vector<int>{1, 3})) << "the quit member never ran";
    worker_unref(first);
    worker_unref(queued);
    worker_unref(last);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Groups, ExclusiveStartIsRefusedWhileBusyAndWorksLater) {
    reset_payloads();
    Instrument ins;
    worker *running = command(&ins, 1, "measure");
    worker *second = command(&ins, 2, "measure", true);
    Recorder r1(running), r2(second);
    worker_start(running);
    ASSERT_TRUE(pump_until([&] { return ins.inside.load() == 1; }));
    EXPECT_EQ(worker_start(second), WORKER_EBUSY);   // the double-click guard
    EXPECT_EQ(worker_is_running(second), 0);
    EXPECT_STRNE(worker_strerror(WORKER_EBUSY), worker_strerror(-1000));
    ins.release = true;
    ASSERT_TRUE(r1.wait_finished());
    ASSERT_EQ(worker_start(second), WORKER_OK);       // idle group: accepted
    ASSERT_TRUE(r2.wait_finished());
    EXPECT_EQ(ins.order, (std::vector<int>{1, 2}));
    worker_unref(running);
    worker_unref(second);
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Groups, TimeoutAbortsWithTheReason) {
    reset_payloads();
    Instrument ins;  // never released: only the timeout ends the command
    worker_options o;
    worker_options_init(&o);
    o.timeout_ms = 50;
    worker *w = worker_create(run_command, new Command{&ins, 7}, free_command, &o);
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    ASSERT_EQ(r.count(WORKER_EV_ABORTED), 1);
    EXPECT_EQ(r.count(WORKER_EV_RETURNED), 0);
    const Rec &ab = r.events()[r.events().size() - 2];
    EXPECT_EQ(ab.code, WORKER_ETIMEDOUT);
    EXPECT_NE(ab.message.find("timed out after 50 ms"), std::string::npos) << ab.message;
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);  // the hidden result was destroyed too
}

TEST(Groups, TimeoutDoesNotFireForAWorkerThatEndsInTime) {
    reset_payloads();
    Instrument ins;
    ins.release = true;
    worker_options o;
    worker_options_init(&o);
    o.timeout_ms = 60000;
    worker *w = worker_create(run_command, new Command{&ins, 1}, free_command, &o);
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.values(WORKER_EV_RETURNED), std::vector<int>{1});
    worker_unref(w);  // freed now, not held until the 60 s deadline
    EXPECT_EQ(payloads_alive(), 0);
}

TEST(Groups, BadOptionsAreRefused) {
    worker_options o;
    worker_options_init(&o);
    o.group = "";
    EXPECT_EQ(worker_create(run_command, nullptr, nullptr, &o), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_EINVAL);
    worker_options_init(&o);
    o.timeout_ms = -1;
    EXPECT_EQ(worker_create(run_command, nullptr, nullptr, &o), nullptr);
    EXPECT_EQ(worker_last_error(), WORKER_EINVAL);
}

TEST(Groups, ExclusiveWithoutAGroupStartsNormally) {
    reset_payloads();
    Instrument ins;
    ins.release = true;
    worker *w = command(&ins, 5, nullptr, true);
    Recorder r(w);
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(r.values(WORKER_EV_RETURNED), std::vector<int>{5});
    worker_unref(w);
    EXPECT_EQ(payloads_alive(), 0);
}
