// Each demo plugin driven headless through the viewer, checking outcomes:
// what the layers hold, what the docks show, which events arrived in which
// order. No timing assertions: every wait is for a condition.
#include "demo_harness.h"

#include <QAction>
#include <QDockWidget>
#include <QLabel>
#include <QLibrary>
#include <QPushButton>
#include <QRegularExpression>
#include <QStatusBar>

#include <atomic>
#include <chrono>
#include <thread>
#include <map>
#include <cmath>

using demo::pump_for;
using demo::pump_until;
using demo::ViewerTest;

namespace {

double read_double(const void *p) { return *static_cast<const double *>(p); }

// The camera plugin's yielded payload (camera.c: typedef ... frame).
struct CameraFrame {
    long long index;
    vimage *img;
};
long long read_frame_index(const void *p) { return static_cast<const CameraFrame *>(p)->index; }

// "frame N\nshown S\ndropped D\nbuffer X% of 64 MiB" -> {N, S, D, 64}
std::vector<long long> numbers_in(const QString &text) {
    std::vector<long long> out;
    for (const QString &word : text.split(QRegularExpression("\\s+"))) {
        bool ok;
        long long n = word.toLongLong(&ok);
        if (ok) out.push_back(n);
    }
    return out;
}

}  // namespace

class Average : public ViewerTest {};

// The result appears as a layer exactly when `returned` arrives.
TEST_F(Average, ResultBecomesALayerWhenReturnedArrives) {
    load("average");
    worker *w = demo::find_worker("average large image");
    ASSERT_NE(w, nullptr);
    bool layer_at_return = false;
    auto check = [](worker_event *, void *self) {
        auto *t = static_cast<std::pair<Viewer *, bool *> *>(self);
        *t->second = t->first->layer("average") != nullptr;
    };
    std::pair<Viewer *, bool *> ctx{v.get(), &layer_at_return};
    ASSERT_GT(worker_connect(w, WORKER_EV_RETURNED, check, &ctx, nullptr), 0);
    EXPECT_EQ(v->layer("average"), nullptr) << "no layer before the worker returned";
    worker_unref(w);
    ASSERT_TRUE(wait_logged("average large image: finished", 30000));  // slow under TSan
    EXPECT_TRUE(layer_at_return);
    EXPECT_LT(logged("average large image: started"), logged("average large image: returned"));
    EXPECT_LT(logged("average large image: returned"), logged("average large image: finished"));

    Layer *l = v->layer("average");
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->width, 512);
    EXPECT_EQ(l->type, VIEWER_F32);
    EXPECT_EQ(l->version, 1u) << "set once, from RETURNED";
    double sum = 0;
    for (int y = 0; y < l->height; y++)
        for (int x = 0; x < l->width; x++) {
            double p = l->value(x, y);
            ASSERT_TRUE(p > 0 && p < 1) << p;
            sum += p;
        }
    EXPECT_NEAR(sum / (512.0 * 512), 0.5, 0.005) << "mean of 128 uniform frames";
}

class MeanProjection : public ViewerTest {};

TEST_F(MeanProjection, PlainPrintfReachesTheLogDockWhenStdoutIsCaptured) {
    // What qtviewer does at start-up (main.cpp); the tests build the viewer
    // themselves, so they turn it on here.
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
    load("mean_projection");
    bool seen = wait_logged("mean projection > 256 frames averaged", 30000);
    ASSERT_TRUE(wait_logged("mean projection: finished", 30000));
    EXPECT_EQ(worker_capture_stdio(0), WORKER_OK);
    EXPECT_TRUE(seen) << qPrintable(log_view().join('\n'));
}

TEST_F(MeanProjection, FinalMeanEqualsAnIndependentMean) {
    load("mean_projection");
    worker *w = demo::find_worker("mean projection");
    ASSERT_NE(w, nullptr);
    demo::Yields<int> yields{{}, [](const void *) { return 1; }};
    yields.connect(w);
    worker_unref(w);
    ASSERT_TRUE(wait_logged("mean projection: finished", 30000));
    EXPECT_EQ(yields.values.size(), 16u) << "one yield every 16 of 256 frames";
    EXPECT_EQ(v->last_progress("mean projection"), std::make_pair(16LL, 16LL));

    // Regenerate the stack with the plugin's own frame function and average
    // it in double, in one pass: independent of the running mean and of the
    // yield / delivery path.
    QLibrary lib(demo::plugin_path("mean_projection"));
    auto frame = (void (*)(int, float *))lib.resolve("mean_projection_frame");
    ASSERT_NE(frame, nullptr) << qPrintable(lib.errorString());
    const int n = 256 * 256;
    std::vector<double> mean(n, 0.0);
    std::vector<float> f(n);
    for (int i = 0; i < 256; i++) {
        frame(i, f.data());
        for (int p = 0; p < n; p++) mean[p] += f[p] / 256.0;
    }
    Layer *l = v->layer("mean projection");
    ASSERT_NE(l, nullptr);
    ASSERT_EQ(l->width * l->height, n);
    EXPECT_EQ(l->version, 16u);
    double worst = 0;
    for (int p = 0; p < n; p++) worst = std::max(worst, std::fabs(l->value(p % 256, p / 256) - mean[p]));
    EXPECT_LT(worst, 1e-4);
    EXPECT_DOUBLE_EQ(l->lo, 0.3);  // set by the plugin when the layer was added
    EXPECT_DOUBLE_EQ(l->hi, 0.75);
}

// Every 64 frames the worker asks the GUI for the layer's contrast limits
// (worker_call_home): it sees what the user set after the first yield.
TEST_F(MeanProjection, WorkerReadsTheCurrentContrastLimitsThroughCallHome) {
    load("mean_projection");
    worker *w = demo::find_worker("mean projection");
    ASSERT_NE(w, nullptr);
    struct User {
        viewer *v;
        int yields = 0;
    } user{v->handle()};
    // Connected after the plugin's callback, which adds the layer (0.3..0.75).
    ASSERT_GT(worker_connect(w, WORKER_EV_YIELDED, [](worker_event *, void *ud) {
        auto *u = static_cast<User *>(ud);
        if (++u->yields == 1) viewer_set_contrast(u->v, "mean projection", 0.4, 0.6);
    }, &user, nullptr), 0);
    worker_unref(w);
    ASSERT_TRUE(wait_logged("mean projection: finished", 30000));
    QStringList asked = log_view().filter("within contrast");
    ASSERT_EQ(asked.size(), 4) << qPrintable(log_view().join('\n'));
    for (int k = 0; k < 4; k++)
        EXPECT_TRUE(asked[k].startsWith(QString("mean projection > frame %1: ").arg(64 * (k + 1))) &&
                    asked[k].endsWith("within contrast 0.40..0.60"))
            << qPrintable(asked[k]);
}

class RandomImages : public ViewerTest {};

// STOP! after N yields: aborted, then finished; the button is disconnected
// and disabled.
TEST_F(RandomImages, StopGivesAbortedThenFinishedAndDisablesTheButton) {
    load("random_images");
    ASSERT_TRUE(pump_until([&] { Layer *l = v->layer("random"); return l && l->version >= 5; }));
    EXPECT_EQ(v->connection_count("Random images", "STOP!"), 1);
    ASSERT_TRUE(v->click("Random images", "STOP!"));
    ASSERT_TRUE(wait_logged("random images forever: finished"));

    QStringList mine = v->activity().filter("random images forever:");
    ASSERT_GE(mine.size(), 3);
    EXPECT_EQ(mine.first(), "random images forever: started");
    EXPECT_EQ(mine[mine.size() - 2], "random images forever: aborted");
    EXPECT_EQ(mine.last(), "random images forever: finished");
    EXPECT_EQ(logged("random images forever: returned"), -1);

    auto *stop = qobject_cast<QPushButton *>(v->find_widget("Random images", "STOP!"));
    ASSERT_NE(stop, nullptr);
    EXPECT_FALSE(stop->isEnabled());
    EXPECT_EQ(v->connection_count("Random images", "STOP!"), 0) << "disconnected on finished";
    EXPECT_FALSE(v->click("Random images", "STOP!"));
    long shown = v->layer("random")->version;
    EXPECT_EQ(v->text_of("Random images", "starting"),
              QString("stopped after %1 images").arg(shown));
}

class Multiplier : public ViewerTest {
protected:
    void SetUp() override {
        ViewerTest::SetUp();
        load("multiplier");
        w = demo::find_worker("multiplier");
        ASSERT_NE(w, nullptr);
        totals.connect(w);
    }
    void TearDown() override {
        worker_unref(w);
        ViewerTest::TearDown();
    }
    QString total() const { return v->text_of("Multiplier", "total"); }
    // Consecutive duplicates removed: the worker re-yields its total
    // every 100 ms whether or not a value arrived.
    std::vector<double> distinct_totals() const {
        std::vector<double> out;
        for (double t : totals.values)
            if (out.empty() || out.back() != t) out.push_back(t);
        return out;
    }
    worker *w = nullptr;
    demo::Yields<double> totals{{}, read_double};
};

TEST_F(Multiplier, ReturnsTheProductsOfSentValuesNoneLost) {
    // All sent before the worker can take more than one: FIFO, none lost.
    for (const char *x : {"2", "3", "0.5", "7", "10"})
        ASSERT_TRUE(v->submit("Multiplier", "multiply by", x));
    ASSERT_TRUE(pump_until([&] { return total() == "210"; })) << qPrintable(total());
    EXPECT_EQ(distinct_totals(), (std::vector<double>{1, 2, 6, 3, 21, 210}));

    ASSERT_TRUE(v->submit("Multiplier", "multiply by", "x"));  // not a number: nothing sent
    EXPECT_EQ(total(), "not a number");
    ASSERT_TRUE(v->submit("Multiplier", "multiply by", "-1"));
    ASSERT_TRUE(pump_until([&] { return total() == "-210"; }));
    ASSERT_TRUE(v->submit("Multiplier", "multiply by", "0"));
    ASSERT_TRUE(wait_logged("multiplier: finished"));
    EXPECT_EQ(total(), "Game Over!");
    EXPECT_GE(logged("multiplier: returned"), 0);
    EXPECT_FALSE(v->find_widget("Multiplier", "multiply by")->isEnabled());
    EXPECT_EQ(distinct_totals(), (std::vector<double>{1, 2, 6, 3, 21, 210, -210}));
}

TEST_F(Multiplier, PauseStopsTheYieldsAndResumeRestartsThem) {
    ASSERT_TRUE(pump_until([&] { return totals.values.size() >= 2; }));
    ASSERT_TRUE(v->click("Multiplier", "Pause"));
    ASSERT_TRUE(wait_logged("multiplier: paused"));
    EXPECT_TRUE(worker_is_paused(w));
    EXPECT_FALSE(v->find_widget("Multiplier", "Pause")->isEnabled());
    EXPECT_TRUE(v->find_widget("Multiplier", "Resume")->isEnabled());
    size_t at_pause = totals.values.size();
    pump_for(400);  // ~4 yield periods: none may arrive while parked
    EXPECT_EQ(totals.values.size(), at_pause);
    EXPECT_TRUE(worker_is_paused(w));

    ASSERT_TRUE(v->click("Multiplier", "Resume"));
    ASSERT_TRUE(pump_until([&] { return totals.values.size() > at_pause + 1; }));
    EXPECT_GE(logged("multiplier: resumed"), 0);
    EXPECT_TRUE(v->find_widget("Multiplier", "Pause")->isEnabled());
    EXPECT_FALSE(v->find_widget("Multiplier", "Resume")->isEnabled());
}

TEST_F(Multiplier, AValueSentWhilePausedIsReceivedAfterResume) {
    ASSERT_TRUE(v->click("Multiplier", "Pause"));
    ASSERT_TRUE(wait_logged("multiplier: paused"));
    ASSERT_TRUE(v->submit("Multiplier", "multiply by", "5"));  // sends and resumes
    ASSERT_TRUE(pump_until([&] { return total() == "5"; })) << qPrintable(total());
    EXPECT_GE(logged("multiplier: resumed"), 0);
}

class Camera : public ViewerTest {};

// LATEST: frames arrive newest-first-wins, never out of order; every frame
// not shown was counted as dropped.
TEST_F(Camera, ShowsTheNewestFramesInOrderAndCountsTheDropped) {
    load("camera");
    worker *w = demo::find_worker("camera 1 kHz");
    ASSERT_NE(w, nullptr);
    demo::Yields<long long> frames{{}, read_frame_index};
    frames.connect(w);
    ASSERT_TRUE(pump_until([&] { return frames.values.size() >= 10; }, 30000));
    ASSERT_TRUE(v->click("Camera", "Pause"));
    ASSERT_TRUE(wait_logged("camera 1 kHz: paused"));
    EXPECT_EQ(v->text_of("Camera", "Pause"), "Resume");

    for (size_t i = 1; i < frames.values.size(); i++)
        ASSERT_LT(frames.values[i - 1], frames.values[i]) << "frame order at " << i;
    // The plugin's label, written when the last frame was shown.
    QString label = v->text_of("Camera", "waiting for frames");
    auto n = numbers_in(label);
    ASSERT_EQ(n.size(), 4u) << label.toStdString();
    long long last = n[0], shown = n[1], dropped = n[2];
    EXPECT_EQ(last, frames.values.back());
    EXPECT_EQ(shown, (long long)frames.values.size());
    // Frames 0..last were each shown or dropped (dropped may also count
    // newer frames replaced after it).
    EXPECT_GE(shown + dropped, last + 1);
    EXPECT_LE(dropped, worker_dropped(w));
    // The budget's fill, with the frame being shown still counted (1 MiB of
    // 64): LATEST holds it and at most one newer frame.
    auto fill = QRegularExpression("buffer ([0-9.]+)%").match(label);
    ASSERT_TRUE(fill.hasMatch()) << label.toStdString();
    EXPECT_GE(fill.captured(1).toDouble(), 1.5);
    EXPECT_LE(fill.captured(1).toDouble(), 3.2);
    Layer *l = v->layer("camera");
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(l->type, VIEWER_U8);
    EXPECT_EQ(l->version, (quint64)shown);
    worker_unref(w);
}

// The status bar shows, per running worker, the bytes it has pending
// (worker_backlog): the camera's 1 MiB frames, while the GUI does not draw.
TEST_F(Camera, TheStatusBarShowsTheBytesPending) {
    load("camera");
    worker *w = demo::find_worker("camera 1 kHz");
    ASSERT_NE(w, nullptr);
    auto pending_label = [&]() -> QLabel * {
        for (QLabel *l : v->statusBar()->findChildren<QLabel *>())
            if (l->text().endsWith(" pending")) return l;
        return nullptr;
    };
    ASSERT_TRUE(pump_until([&] { return pending_label() != nullptr; }, 30000));
    // The GUI stalls: a frame waits, and the next poll shows it.
    size_t bytes = 0;
    for (int i = 0; i < 10000 && (worker_backlog(w, nullptr, &bytes) != WORKER_OK || !bytes); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(bytes, size_t(1) << 20) << "LATEST: the newest frame, undelivered";
    // The status bar's poll, while the frame is still held back (pumping
    // would let the GUI draw it first, and the poll could see 0 pending).
    v->show_pending();
    EXPECT_EQ(pending_label()->text(), QString("1.0 MiB pending"));
    worker_unref(w);
}

// Closing a busy plugin's dock closes the plugin: when close() returns the
// camera's function has returned, every connection to it is gone (user_data
// destroyed), no callback of it runs again and the plugin's state (its
// dock's user_data, which those callbacks use) has been freed: a callback
// after that would be a use-after-free, which ASan shows.
TEST_F(Camera, ClosingItsDockWhileBusyStopsItAndFreesItsStateAtOnce) {
    load("camera");
    worker *w = demo::find_worker("camera 1 kHz");
    ASSERT_NE(w, nullptr);
    static std::atomic<int> calls{0}, gone{0};
    calls = gone = 0;
    ASSERT_GT(worker_connect(w, WORKER_EV_YIELDED, [](worker_event *, void *) { calls++; }, nullptr,
                             [](void *) { gone++; }), 0);
    ASSERT_TRUE(pump_until([&] { return calls.load() >= 10; }, 30000));
    auto *dock = v->findChild<QDockWidget *>("plugin:Camera");
    ASSERT_NE(dock, nullptr);
    ASSERT_TRUE(dock->close());  // its title bar's close button
    EXPECT_EQ(gone.load(), 1);
    EXPECT_EQ(worker_is_running(w), 0);
    EXPECT_EQ(v->find_widget("Camera", "Pause"), nullptr);  // docks, widgets, state: gone
    EXPECT_GE(logged("plugin camera: closed"), 0);
    EXPECT_FALSE(v->close_plugin("camera"));  // once
    int n = calls.load();
    quint64 shown = v->layer("camera")->version;
    pump_for(200);
    EXPECT_EQ(calls.load(), n);
    EXPECT_EQ(v->layer("camera")->version, shown);  // the layer stays, unchanged
    EXPECT_EQ(worker_connect(w, WORKER_EV_YIELDED, [](worker_event *, void *) { calls++; }, nullptr,
                             nullptr), WORKER_ESTATE);
    worker_unref(w);
}

// Plugins > Close camera does the same; another plugin's worker keeps
// delivering (it is in another scope).
TEST_F(Camera, ThePluginsMenuClosesOnePluginAndLeavesTheOthersRunning) {
    load("camera");
    load("random_images");
    ASSERT_TRUE(pump_until([&] { Layer *l = v->layer("camera"); return l && l->version >= 3; }, 30000));
    QAction *close = nullptr;
    for (QAction *a : v->findChildren<QAction *>())
        if (a->text() == "Close camera") close = a;
    ASSERT_NE(close, nullptr);
    close->trigger();
    EXPECT_EQ(v->find_widget("Camera", "Pause"), nullptr);
    EXPECT_NE(v->find_widget("Random images", "STOP!"), nullptr);
    quint64 random = v->layer("random")->version;
    EXPECT_TRUE(pump_until([&] { return v->layer("random")->version >= random + 3; }));
    EXPECT_TRUE(v->click("Random images", "STOP!"));
    EXPECT_TRUE(wait_logged("random images forever: finished"));
}

// Every plugin with a dock creates its workers into its scope: closing the
// dock of a busy plugin frees its state at once, and nothing of it runs
// again (a callback on the freed state would be a use-after-free: ASan).
class ClosePlugin : public ViewerTest, public ::testing::WithParamInterface<const char *> {};

TEST_P(ClosePlugin, ClosingItsDockWhileBusyLeavesNothingRunningOnItsState) {
    struct Dock { const char *title, *widget; };
    static const std::map<std::string, Dock> dock_of = {
        {"random_images", {"Random images", "STOP!"}}, {"multiplier", {"Multiplier", "Pause"}},
        {"training", {"Training", "Train"}}, {"instrument", {"Instrument", "home"}},
        {"isolated", {"Isolated plugins", "run crashing"}}, {"pipeline", {"Pipeline", "Stop"}}};
    const std::string plugin = GetParam();
    load(plugin.c_str());
    if (plugin == "instrument") EXPECT_TRUE(v->click("Instrument", "measure x5"));
    if (plugin == "isolated") EXPECT_TRUE(v->click("Isolated plugins", "run stuck"));
    if (plugin == "pipeline") EXPECT_TRUE(v->click("Pipeline", "Start"));
    pump_for(150);  // busy: workers running and delivering
    const Dock &d = dock_of.at(plugin);
    auto *dock = v->findChild<QDockWidget *>(QString("plugin:") + d.title);
    ASSERT_NE(dock, nullptr);
    ASSERT_NE(v->find_widget(d.title, d.widget), nullptr);
    ASSERT_TRUE(dock->close());
    EXPECT_EQ(v->find_widget(d.title, d.widget), nullptr) << "its widgets and state are gone";
    pump_for(300);  // anything still delivering to the freed state would show now
}

INSTANTIATE_TEST_SUITE_P(EveryDockedPlugin, ClosePlugin,
                         ::testing::Values("random_images", "multiplier", "training", "instrument",
                                           "isolated", "pipeline"));

class Training : public ViewerTest {
protected:
    // Run 1's Log lines as shown, prefix "training run 1" included.
    QStringList run_lines(int run) const {
        return log_view().filter(QRegularExpression(QString("^training run %1[ :]").arg(run)));
    }
};

// Everything the worker printed, warned and failed to save appears in the
// Log dock, prefixed with the worker's name, in the order it happened.
TEST_F(Training, PrintedLinesAppearInTheLogInOrderWithTheWorkerName) {
    load("training");
    ASSERT_TRUE(wait_logged("training run 1: finished"));
    QStringList lines = run_lines(1);
    ASSERT_GE(lines.size(), 33) << qPrintable(lines.join("\n"));
    EXPECT_EQ(lines.first(), "training run 1: started");
    EXPECT_EQ(lines[1], "training run 1 > training for 30 epochs");
    EXPECT_EQ(lines[lines.size() - 2], "training run 1: returned");
    EXPECT_EQ(lines.last(), "training run 1: finished");

    // Walk the lines: epochs 1..30 in order; after epoch K, a warning iff its
    // printed loss is above the best so far, and a stderr line at K = 10, 20, 30.
    const QRegularExpression epoch_line("^training run 1 > epoch (\\d+) loss (\\d+\\.\\d{4})$");
    int i = 2, warnings = 0;
    double best = 2.5;
    for (int k = 1; k <= 30; k++) {
        QRegularExpressionMatch m = epoch_line.match(lines.value(i++));
        ASSERT_TRUE(m.hasMatch()) << "epoch " << k << ": " << qPrintable(lines.value(i - 1));
        ASSERT_EQ(m.captured(1).toInt(), k);
        double loss = m.captured(2).toDouble();
        if (loss > best) {
            EXPECT_TRUE(lines.value(i++).startsWith(
                QString("training run 1: warned: epoch %1: loss went up to %2").arg(k).arg(m.captured(2))))
                << qPrintable(lines.value(i - 1));
            warnings++;
        } else {
            best = loss;
        }
        if (k % 10 == 0) {
            EXPECT_EQ(lines.value(i++),
                      QString("training run 1 ! epoch %1: checkpoint not saved (no disk in this demo)").arg(k));
        }
    }
    EXPECT_EQ(i, lines.size() - 2) << "nothing else in between";
    EXPECT_GT(warnings, 0) << "the seeded run warns at least once";
    EXPECT_EQ(v->text_of("Training", "not started"), QString("done: best loss %1").arg(best, 0, 'f', 4));
    EXPECT_EQ(v->last_progress("training run 1"), std::make_pair(30LL, 30LL));
}

// "events" unchecked hides started/returned/finished, never what the worker
// printed or warned; checked again, everything is back in order.
TEST_F(Training, TheEventsCheckboxHidesOnlyLifecycleLines) {
    load("training");
    ASSERT_TRUE(wait_logged("training run 1: finished"));
    QStringList all = run_lines(1);
    v->log_dock()->set_show_events(false);
    QStringList quiet = run_lines(1);
    QStringList expected;
    for (const QString &l : all)
        if (!QRegularExpression("^training run 1: (started|returned|finished)$").match(l).hasMatch())
            expected << l;
    EXPECT_EQ(quiet, expected);
    EXPECT_EQ(quiet.size(), all.size() - 3);
    EXPECT_FALSE(log_view().contains("plugin training: loaded"));
    v->log_dock()->set_show_events(true);
    EXPECT_EQ(run_lines(1), all);
}

// "Train" is disabled while a run is going and starts a new, separately
// named run afterwards.
TEST_F(Training, TrainStartsAnotherRunOnceTheLastHasFinished) {
    load("training");
    EXPECT_FALSE(v->click("Training", "Train")) << "disabled while run 1 runs";
    ASSERT_TRUE(wait_logged("training run 1: finished"));
    ASSERT_TRUE(v->click("Training", "Train"));
    EXPECT_FALSE(v->find_widget("Training", "Train")->isEnabled());
    ASSERT_TRUE(wait_logged("training run 2: finished"));
    EXPECT_TRUE(v->find_widget("Training", "Train")->isEnabled());
    QStringList second = run_lines(2);
    EXPECT_EQ(second.replaceInStrings("training run 2", "training run 1"), run_lines(1))
        << "the same seeded run, under its own name";
}
