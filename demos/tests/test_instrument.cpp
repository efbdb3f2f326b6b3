// The serial instrument plugin (instrument.c) driven through its dock: every
// command runs, one at a time, in click order; the exclusive command is
// refused while the stage is busy; the stuck command times out. What the
// device printed is read back from the Log dock. No timing assertions.
#include "demo_harness.h"

#include <QRegularExpression>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

using demo::pump_until;
using demo::ViewerTest;

namespace {

const char *const kDock = "Instrument";

// What the simulated detector reads at a position (instrument.c: a peak of
// height 1 at 30, half width 15, noise within +-0.005).
double peak(int position) {
    double x = (position - 30) / 15.0;
    return 1.0 / (1.0 + x * x);
}

// The numbers in a label such as "device: 3 commands run\n0 overlapped, ...".
std::vector<int> numbers_in(const QString &text) {
    std::vector<int> out;
    QRegularExpressionMatchIterator it = QRegularExpression("-?\\d+").globalMatch(text);
    while (it.hasNext()) out.push_back(it.next().captured().toInt());
    return out;
}

// Holds the serial group "stage" until released: the stage is busy for as
// long as the test wants, with no timing involved.
struct Blocker {
    std::atomic<bool> release{false};
    worker *w = nullptr;
    static void run(worker_ctx *ctx, void *self) {
        auto *b = static_cast<Blocker *>(self);
        while (!b->release && !worker_abort_requested(ctx))
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    void start() {
        worker_options o;
        worker_options_init(&o);
        o.name = "test blocker";
        o.group = "stage";
        w = worker_create(run, this, nullptr, &o);
        ASSERT_NE(w, nullptr);
        ASSERT_EQ(worker_start(w), WORKER_OK);
    }
    void finish() {
        release = true;
        ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
        ASSERT_TRUE(pump_until([&] { return !worker_is_running(w); }));
        worker_unref(w);
    }
};

struct Outcome {
    int aborted_code = 0;
    QString message;
    static void cb(worker_event *ev, void *self) {
        auto *o = static_cast<Outcome *>(self);
        o->aborted_code = ev->code;
        o->message = QString::fromUtf8(ev->message ? ev->message : "");
    }
};

}  // namespace

class Instrument : public ViewerTest {
protected:
    void SetUp() override {
        ViewerTest::SetUp();
        load("instrument");
    }
    QString label(const char *name) const { return v->text_of(kDock, name); }
    bool wait_idle() { return pump_until([&] { return label("idle") == "idle"; }); }
    // {commands run, overlapped, out of order}, as the device counted them.
    std::vector<int> device() const { return numbers_in(label("device")); }
    // The index of the first Log line starting with `prefix`, from `from` on.
    int line_from(const QStringList &log, const QString &prefix, int from = 0) const {
        for (int i = from; i < log.size(); i++)
            if (log[i].startsWith(prefix)) return i;
        return -1;
    }
};

// Clicked as fast as a script can, without the event loop running between
// clicks: every command still runs, one at a time, in click order.
TEST_F(Instrument, RapidClicksRunEveryCommandOnceInClickOrder) {
    const QStringList clicks = {"home",    "move +10",   "move +10", "measure", "move -10",
                                "measure x5", "move +10", "move +10", "measure", "home",
                                "move -10", "measure",   "move +10", "measure x5", "move -10"};
    for (const QString &c : clicks) ASSERT_TRUE(v->click(kDock, c)) << qPrintable(c);
    EXPECT_EQ(label("idle"), QString("%1 commands pending").arg(clicks.size()))
        << "every start succeeded (queued in the group)";
    ASSERT_TRUE(wait_idle()) << qPrintable(label("idle"));
    EXPECT_EQ(device(), (std::vector<int>{(int)clicks.size(), 0, 0}))
        << "all run, none overlapped, none out of order: " << qPrintable(label("device"));

    // Each command's device log, prefixed with its worker's name, says what
    // it did at the position the commands before it (in click order) left.
    QStringList log = log_view();
    int position = 0;
    for (int i = 0; i < clicks.size(); i++) {
        QString name = QString("stage #%1 %2").arg(i + 1).arg(clicks[i]);
        int at = line_from(log, name + ": started");
        ASSERT_GE(at, 0) << qPrintable(name);
        if (clicks[i].startsWith("measure")) {
            int n = clicks[i] == "measure x5" ? 5 : 1;
            for (int r = 1; r <= n; r++) {
                at = line_from(log, QString("%1 > reading %2/%3: ").arg(name).arg(r).arg(n), at);
                ASSERT_GE(at, 0) << qPrintable(name) << " reading " << r;
                double value = log[at].section(": ", -1).toDouble();
                EXPECT_NEAR(value, peak(position), 0.006) << qPrintable(log[at]);
            }
        } else {
            position = clicks[i] == "home" ? 0 : position + (clicks[i] == "move +10" ? 10 : -10);
            at = line_from(log, name + " > ", at);
            ASSERT_GE(at, 0) << qPrintable(name);
            EXPECT_TRUE(log[at].endsWith(QString(": at %1").arg(position))) << qPrintable(log[at]);
        }
        EXPECT_GE(line_from(log, name + ": returned", at), 0) << qPrintable(name);
    }
    EXPECT_EQ(line_from(log, QString("stage #%1 ").arg(clicks.size() + 1)), -1) << "no extra command";
}

// The exclusive command is refused (WORKER_EBUSY), not queued, while any
// command holds the stage; once it is free it runs.
TEST_F(Instrument, ExclusiveMeasureIsRefusedWhileTheStageIsBusy) {
    Blocker blocker;
    blocker.start();
    ASSERT_TRUE(v->click(kDock, "measure (exclusive)"));
    EXPECT_EQ(label("exclusive: not run yet"), "exclusive: busy, not queued");
    EXPECT_EQ(label("idle"), "idle") << "nothing was queued";
    EXPECT_EQ(v->watched_pending(), 0) << "the refused worker was freed: the viewer must not wait for it";
    ASSERT_TRUE(v->click(kDock, "measure"));  // an ordinary command queues instead
    EXPECT_EQ(label("idle"), "1 command pending");
    blocker.finish();

    ASSERT_TRUE(wait_idle());
    ASSERT_TRUE(v->click(kDock, "measure (exclusive)"));
    EXPECT_EQ(label("exclusive: not run yet"), "exclusive: measuring...");
    ASSERT_TRUE(wait_idle());
    EXPECT_TRUE(label("exclusive: not run yet").startsWith("exclusive: 0.")) << qPrintable(label("exclusive: not run yet"));
    EXPECT_EQ(device(), (std::vector<int>{2, 0, 0}));
    QStringList log = log_view();
    EXPECT_GE(line_from(log, "stage #1 measure: returned"), 0);
    EXPECT_GE(line_from(log, "stage #2 measure (exclusive): returned"), 0) << "#2: the refusal took no number";
}

// The stuck command never gets a reply: its 2 s timeout aborts it with
// WORKER_ETIMEDOUT, and the command queued behind it runs afterwards.
TEST_F(Instrument, StuckCommandIsAbortedWithETimedOutAndTheQueueMovesOn) {
    ASSERT_TRUE(v->click(kDock, "stuck command"));
    ASSERT_TRUE(v->click(kDock, "move +10"));
    worker *stuck = demo::find_worker("stage #1 stuck command");
    ASSERT_NE(stuck, nullptr);
    Outcome outcome;
    ASSERT_GT(worker_connect(stuck, WORKER_EV_ABORTED, Outcome::cb, &outcome, nullptr), 0);
    worker_unref(stuck);

    ASSERT_TRUE(pump_until([&] { return label("timeouts: none") != "timeouts: none"; }));
    EXPECT_EQ(outcome.aborted_code, WORKER_ETIMEDOUT);
    EXPECT_EQ(outcome.message, "timed out after 2000 ms");
    EXPECT_EQ(label("timeouts: none"),
              "stage #1 stuck command:\nABORTED, WORKER_ETIMEDOUT\ntimed out after 2000 ms");
    ASSERT_TRUE(wait_idle());
    EXPECT_EQ(device(), (std::vector<int>{2, 0, 0}));
    EXPECT_EQ(label("no reply yet"), "#2 move +10: at 10");

    QStringList log = log_view();
    int sent = line_from(log, "stage #1 stuck command > sent; waiting for a reply that never comes");
    int gave_up = line_from(log, "stage #1 stuck command > no reply: gave up");
    int aborted = line_from(log, "stage #1 stuck command: aborted (-5): timed out after 2000 ms");
    ASSERT_GE(sent, 0);
    EXPECT_GT(gave_up, sent);
    EXPECT_GT(aborted, gave_up);
    EXPECT_GT(line_from(log, "stage #1 stuck command: finished"), aborted);
    EXPECT_EQ(line_from(log, "stage #1 stuck command: returned"), -1);
    EXPECT_GE(line_from(log, "stage #2 move +10: returned"), 0);
}

// Closing with commands queued behind a stuck one: the queued ones end at
// once without reaching the device, and the window closes.
TEST_F(Instrument, ClosingQuitsTheRunningCommandAndDropsTheQueuedOnes) {
    for (const char *c : {"stuck command", "move +10", "measure", "home"}) ASSERT_TRUE(v->click(kDock, c));
    ASSERT_TRUE(wait_logged("stage #1 stuck command: started"));
    close_viewer();
    EXPECT_EQ(device(), (std::vector<int>{1, 0, 0})) << "only the stuck command reached the device";
    for (const char *name : {"stage #2 move +10", "stage #3 measure", "stage #4 home"}) {
        EXPECT_GE(logged(QString(name) + ": aborted"), 0) << name;
        EXPECT_GE(logged(QString(name) + ": finished"), 0) << name;
        EXPECT_EQ(v->activity().filter(QRegularExpression("^" + QRegularExpression::escape(name) + " > ")).size(), 0)
            << name << " never ran";
    }
}

// The device's own check works: without the serial group, commands started
// together overlap on the device, and it counts them.
TEST_F(Instrument, WithoutTheSerialGroupTheDeviceSeesOverlaps) {
    ASSERT_TRUE(v->click(kDock, "serial group: on"));
    EXPECT_EQ(label("serial group: on"), "serial group: OFF");
    for (int round = 0; round < 20 && device()[1] == 0; round++) {
        for (int i = 0; i < 6; i++) ASSERT_TRUE(v->click(kDock, "move +10"));
        ASSERT_TRUE(wait_idle());
    }
    EXPECT_GT(device()[1], 0) << qPrintable(label("device"));
    ASSERT_TRUE(v->click(kDock, "serial group: on"));
    EXPECT_EQ(label("serial group: on"), "serial group: on");
}

// The command queue: one long-lived worker runs every command sent to it,
// in click order; switching the queue off closes its input, so it runs what
// it was sent and ends with WORKER_EOF.
TEST_F(Instrument, CommandQueueRunsEveryCommandInOneWorkerInOrder) {
    ASSERT_TRUE(v->click(kDock, "command queue: off"));
    EXPECT_EQ(label("command queue: off"), "command queue: on");
    const QStringList clicks = {"home", "move +10", "measure", "move +10", "measure x5", "move -10"};
    for (const QString &c : clicks) ASSERT_TRUE(v->click(kDock, c)) << qPrintable(c);
    EXPECT_EQ(label("idle"), QString("%1 commands pending").arg(clicks.size()));
    ASSERT_TRUE(wait_idle()) << qPrintable(label("idle"));
    EXPECT_EQ(device(), (std::vector<int>{(int)clicks.size(), 0, 0})) << qPrintable(label("device"));
    EXPECT_EQ(label("no reply yet"), QString("#6 move -10: at 10"));
    QStringList log = log_view();
    EXPECT_EQ(log.filter(QRegularExpression("^stage queue: started$")).size(), 1) << "one worker";
    EXPECT_EQ(log.filter(QRegularExpression("^stage #")).size(), 0) << "no worker per command";
    int at = line_from(log, "stage queue > homed: at 0");
    ASSERT_GE(at, 0);
    at = line_from(log, "stage queue > moved: at 10", at);
    ASSERT_GE(at, 0);
    at = line_from(log, "stage queue > reading 1/1: ", at);
    ASSERT_GE(at, 0);
    EXPECT_NEAR(log[at].section(": ", -1).toDouble(), peak(10), 0.006);
    at = line_from(log, "stage queue > moved: at 20", at);
    ASSERT_GE(at, 0);
    EXPECT_GE(line_from(log, "stage queue > reading 5/5: ", at), 0);
    EXPECT_EQ(line_from(log, "stage queue: finished"), -1) << "it waits for the next command";

    ASSERT_TRUE(v->click(kDock, "command queue: off"));  // now "on": switch it off
    ASSERT_TRUE(wait_logged("stage queue: finished"));
    EXPECT_GE(logged("stage queue > queue closed: every command ran"), 0);
    EXPECT_GE(logged("stage queue: returned"), 0);
    EXPECT_EQ(worker_live_count(), 0);
}

// Closing the viewer with commands queued: the queue worker is quit, the
// commands it had not run are dropped (never reach the device).
TEST_F(Instrument, ClosingDropsTheCommandsLeftInTheQueue) {
    ASSERT_TRUE(v->click(kDock, "command queue: off"));
    for (const char *c : {"stuck command", "move +10", "measure"}) ASSERT_TRUE(v->click(kDock, c));
    ASSERT_TRUE(wait_logged("stage queue > sent; waiting for a reply that never comes"));
    close_viewer();
    EXPECT_EQ(device(), (std::vector<int>{1, 0, 0})) << "only the stuck command reached the device";
    EXPECT_GE(logged("stage queue > quit: the commands not yet run were dropped"), 0);
    EXPECT_GE(logged("stage queue: aborted"), 0);
}
