// The pipeline plugin (pipeline.c) through its dock: Start builds producer ->
// receiver, the plot shows refined curves of growing frequency with the
// receiver's information text, both stages print to the Log dock, and Stop
// (quitting the receiver) stops the producer piped into it. No timing
// assertions: everything is waited for by what it shows.
#include "demo_harness.h"
#include "plot_widget.h"

#include <QRegularExpression>

using demo::pump_until;
using demo::ViewerTest;

namespace {

const char *const kDock = "Pipeline";

// "frame K: F Hz, peak P, Z zero crossings" -> {K, F}
std::pair<long, double> frame_and_freq(const QString &info) {
    QRegularExpressionMatch m = QRegularExpression("^frame (\\d+): ([0-9.]+) Hz").match(info);
    if (!m.hasMatch()) return {-1, 0};
    return {m.captured(1).toLong(), m.captured(2).toDouble()};
}

}  // namespace

class Pipeline : public ViewerTest {
protected:
    void SetUp() override {
        ViewerTest::SetUp();
        load("pipeline");
    }
    PlotWidget *plot() const {
        return dynamic_cast<PlotWidget *>(v->find_widget(kDock, "refined signal"));
    }
    QString info() const { return v->text_of(kDock, "no curve yet"); }
    QString status() const { return v->text_of(kDock, "stopped"); }
    bool enabled(const char *button) const { return v->find_widget(kDock, button)->isEnabled(); }
};

TEST_F(Pipeline, StartPlotsRefinedCurvesAndStopStopsBothStages) {
    ASSERT_NE(plot(), nullptr);
    EXPECT_FALSE(enabled("Stop"));
    ASSERT_TRUE(v->click(kDock, "Start"));
    EXPECT_EQ(status(), "running");
    EXPECT_FALSE(enabled("Start"));
    EXPECT_TRUE(enabled("Stop"));
    EXPECT_FALSE(v->click(kDock, "Start")) << "a second pipeline cannot be started";

    // Curves arrive, each newer (higher frame, higher frequency) than the last.
    ASSERT_TRUE(pump_until([&] { return plot()->updates() >= 3; }));
    auto first = frame_and_freq(info());
    ASSERT_GE(first.first, 0) << qPrintable(info());
    ASSERT_TRUE(pump_until([&] { return frame_and_freq(info()).first >= first.first + 20; }));
    auto later = frame_and_freq(info());
    EXPECT_GT(later.second, first.second) << "the frequency grows";
    EXPECT_EQ(plot()->curve().size(), 240);
    float peak = 0;
    for (float y : plot()->curve()) peak = std::max(peak, std::abs(y));
    EXPECT_GT(peak, 0.5f);
    EXPECT_LE(peak, 1.0f) << "smoothed, never beyond the sine's amplitude";

    // Both stages' printed lines reach the Log dock, prefixed with their names.
    ASSERT_TRUE(wait_logged("producer > frame 0 at 1.00 Hz"));
    ASSERT_TRUE(pump_until([&] {
        return v->activity().filter(QRegularExpression("^receiver > frame 0: 1.00 Hz")).size() == 1;
    }));
    EXPECT_EQ(v->activity().filter(QRegularExpression("^producer: yielded")).size(), 0)
        << "the producer's values go into the receiver, not to the GUI";

    ASSERT_TRUE(v->click(kDock, "Stop"));
    ASSERT_TRUE(wait_logged("receiver: finished"));
    ASSERT_TRUE(wait_logged("producer: finished")) << "stopping the receiver stops the producer";
    EXPECT_GE(logged("producer: aborted"), 0);
    EXPECT_GE(logged("receiver: aborted"), 0);
    EXPECT_TRUE(v->activity().filter(QRegularExpression("^producer > stopped after \\d+ frames$")).size() == 1);
    ASSERT_TRUE(pump_until([&] { return enabled("Start"); }));
    EXPECT_FALSE(enabled("Stop"));
    EXPECT_TRUE(status().startsWith("stopped: ")) << qPrintable(status());
    EXPECT_EQ(worker_live_count(), 0);

    // And it starts again from frame 0.
    ASSERT_TRUE(v->click(kDock, "Start"));
    ASSERT_TRUE(pump_until([&] { return status() == "running" && frame_and_freq(info()).first < first.first + 5; }))
        << qPrintable(info());
}

// Closing the viewer while the pipeline runs joins both stages.
TEST_F(Pipeline, ClosingWhileRunningJoinsBothStages) {
    ASSERT_TRUE(v->click(kDock, "Start"));
    ASSERT_TRUE(pump_until([&] { return plot()->updates() >= 2; }));
    close_viewer();
    EXPECT_GE(logged("producer: finished"), 0);
    EXPECT_GE(logged("receiver: finished"), 0);
}
