// The viewer itself: the C API's contract (handles, ownership, the GUI-thread
// rule), closing with workers running, and the headless executable.
#include "demo_harness.h"

#include <QDir>
#include <QAbstractButton>
#include <QApplication>
#include <QImage>
#include <QMessageBox>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTimer>

#include <atomic>
#include <cstdlib>
#include <set>

using demo::pump_until;
using demo::ViewerTest;

namespace {

std::atomic<int> destroyed{0};
void count_destroy(void *) { destroyed++; }
void never_called(viewer *, int, const char *, void *) { ADD_FAILURE() << "callback ran"; }

vimage *ramp(int w, int h) {
    vimage *img = vimage_new(w, h, VIEWER_F32);
    for (int i = 0; i < w * h; i++) vimage_f32(img)[i] = (float)i;
    return img;
}

}  // namespace

class Api : public ViewerTest {};

TEST_F(Api, LayersAreCopiedAddedThenUpdatedAndKeepTheirContrast) {
    viewer *h = v->handle();
    vimage *img = ramp(4, 3);
    EXPECT_EQ(viewer_set_layer(h, "ramp", img), VIEWER_ADDED);
    vimage_f32(img)[0] = 100;  // the viewer copied: its layer is unchanged
    EXPECT_EQ(v->layer("ramp")->value(0, 0), 0.0);
    EXPECT_EQ(v->layer("ramp")->lo, 0.0);   // new F32 layer: data min..max
    EXPECT_EQ(v->layer("ramp")->hi, 11.0);
    EXPECT_EQ(viewer_set_contrast(h, "ramp", -1, 1), VIEWER_OK);
    EXPECT_EQ(viewer_set_layer(h, "ramp", img), VIEWER_OK);
    EXPECT_EQ(v->layer("ramp")->value(0, 0), 100.0);
    EXPECT_EQ(v->layer("ramp")->hi, 1.0) << "an update keeps the user's limits";
    EXPECT_EQ(viewer_set_contrast(h, "ramp", 1, 1), VIEWER_EINVAL);
    EXPECT_EQ(viewer_set_contrast(h, "nope", 0, 1), VIEWER_EINVAL);
    img->width = 0;
    EXPECT_EQ(viewer_set_layer(h, "bad", img), VIEWER_EINVAL);
    EXPECT_EQ(viewer_set_layer(h, nullptr, img), VIEWER_EINVAL);
    EXPECT_EQ(v->layer("bad"), nullptr);
    vimage_free(img);
}

TEST_F(Api, HandlesAreCheckedAndUserDataIsDestroyedExactlyOnce) {
    viewer *h = v->handle();
    destroyed = 0;
    int dock = viewer_add_dock(h, "Dock", nullptr, count_destroy);
    ASSERT_GT(dock, 0);
    int label = viewer_add_label(h, dock, "label");
    int button = viewer_add_button(h, dock, "button");
    ASSERT_GT(label, 0);
    ASSERT_GT(button, 0);
    EXPECT_EQ(viewer_add_button(h, label, "x"), VIEWER_EINVAL) << "a label is no dock";
    EXPECT_EQ(viewer_add_button(h, 999, "x"), VIEWER_EINVAL);
    EXPECT_EQ(viewer_connect(h, label, never_called, nullptr, count_destroy), VIEWER_ESTATE);
    EXPECT_EQ(destroyed, 1) << "a failed connect destroys user_data at once";
    long id = viewer_connect(h, button, never_called, nullptr, count_destroy);
    ASSERT_GT(id, 0);
    EXPECT_EQ(viewer_disconnect(h, label, id), VIEWER_EINVAL) << "wrong widget";
    EXPECT_EQ(viewer_disconnect(h, button, id), VIEWER_OK);
    EXPECT_EQ(destroyed, 2);
    EXPECT_EQ(viewer_disconnect(h, button, id), VIEWER_EINVAL);
    EXPECT_TRUE(v->click("Dock", "button"));  // nothing connected any more
    EXPECT_EQ(viewer_set_text(h, button, "renamed"), VIEWER_OK);
    EXPECT_EQ(v->text_of("Dock", "button"), "renamed") << "found by its creation name";
    EXPECT_EQ(viewer_set_enabled(h, 12345, 0), VIEWER_EINVAL);
    EXPECT_EQ(viewer_set_layer(nullptr, "x", nullptr), VIEWER_EINVAL);
    EXPECT_EQ(viewer_add_dock(reinterpret_cast<viewer *>(&destroyed), "x", nullptr, count_destroy),
              VIEWER_EINVAL) << "unknown handle";
    EXPECT_EQ(destroyed, 3);
    ASSERT_GT(viewer_connect(h, button, never_called, nullptr, count_destroy), 0);
    close_viewer();
    v.reset();  // teardown: the connection's user_data, then the dock's
    EXPECT_EQ(destroyed, 5);
    v = std::make_unique<Viewer>(true);  // for TearDown
}

TEST_F(Api, AMissingPluginIsReportedNotFatal) {
    EXPECT_LT(v->load_plugin("/nonexistent/plugin.so"), 0);
    EXPECT_EQ(v->load_plugin_dir("/nonexistent"), 0);
}

// ---------------------------------------------------------- GUI-thread rule

namespace {

struct FromWorker {
    viewer *v;
    std::vector<long> rc;
};

// Every viewer call, made where it must not be: on a worker thread.
void call_the_viewer(worker_ctx *, void *arg) {
    auto *f = static_cast<FromWorker *>(arg);
    vimage *img = ramp(8, 8);
    f->rc.push_back(viewer_set_layer(f->v, "from worker", img));
    f->rc.push_back(viewer_set_contrast(f->v, "from worker", 0, 1));
    f->rc.push_back(viewer_add_dock(f->v, "From worker", nullptr, count_destroy));
    f->rc.push_back(viewer_add_button(f->v, 1, "b"));
    f->rc.push_back(viewer_add_label(f->v, 1, "l"));
    f->rc.push_back(viewer_add_line_edit(f->v, 1, "e"));
    f->rc.push_back(viewer_connect(f->v, 1, never_called, nullptr, count_destroy));
    f->rc.push_back(viewer_disconnect(f->v, 1, 1));
    f->rc.push_back(viewer_set_enabled(f->v, 1, 0));
    f->rc.push_back(viewer_set_text(f->v, 1, "t"));
    f->rc.push_back(viewer_watch_worker(f->v, nullptr));
    vimage_free(img);
}

}  // namespace

TEST_F(Api, EveryViewerCallFromAWorkerThreadIsRefusedWithAWarning) {
    destroyed = 0;
    int dock = viewer_add_dock(v->handle(), "Dock", nullptr, nullptr);  // id 1 exists
    ASSERT_EQ(dock, 1);
    FromWorker f{v->handle(), {}};
    worker *w = worker_create(call_the_viewer, &f, nullptr, nullptr);
    testing::internal::CaptureStderr();
    ASSERT_EQ(worker_start(w), WORKER_OK);
    ASSERT_EQ(worker_await(w, 10000), WORKER_OK);
    std::string err = testing::internal::GetCapturedStderr();
    ASSERT_TRUE(pump_until([&] { return !worker_is_running(w); }));
    worker_unref(w);

    ASSERT_EQ(f.rc.size(), 11u);
    for (long rc : f.rc) EXPECT_EQ(rc, VIEWER_ETHREAD);
    EXPECT_EQ(destroyed, 2) << "refused calls still destroy what they were handed";
    EXPECT_EQ(v->layer("from worker"), nullptr) << "refused means not executed";
    EXPECT_EQ(v->find_widget("From worker", "b"), nullptr);
    for (const char *call : {"viewer_set_layer", "viewer_set_contrast", "viewer_add_dock",
                             "viewer_add_button", "viewer_add_label", "viewer_add_line_edit",
                             "viewer_connect", "viewer_disconnect", "viewer_set_enabled",
                             "viewer_set_text", "viewer_watch_worker"})
        EXPECT_NE(err.find(std::string("viewer: ") + call + "() called off the GUI thread"),
                  std::string::npos) << call << "\n" << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 11) << "one line per refused call";
}

// ------------------------------------------------------------------ closing

class Closing : public ViewerTest {};

TEST_F(Closing, WithWorkersRunningQuitsAndJoinsEveryOne) {
    ASSERT_EQ(v->load_plugin_dir(std::getenv("VIEWER_PLUGIN_DIR")), 9);
    const char *endless[] = {"random images forever", "multiplier", "camera 1 kHz"};
    ASSERT_TRUE(pump_until([&] {
        for (const char *n : endless)
            if (logged(QString(n) + ": started") < 0) return false;
        return true;
    }));
    EXPECT_GE(worker_live_count(), 3);
    close_viewer();
    EXPECT_FALSE(v->isVisible());
    EXPECT_EQ(worker_live_count(), 0);
    EXPECT_EQ(v->watched_pending(), 0);
    int asked = v->activity().indexOf(QRegularExpression("closing: asked [3-6] worker.*"));
    ASSERT_GE(asked, 0) << qPrintable(v->activity().join("\n"));
    for (const char *n : endless) {
        EXPECT_GT(logged(QString(n) + ": aborted"), asked) << n;
        EXPECT_GT(logged(QString(n) + ": finished"), logged(QString(n) + ": aborted")) << n;
    }
}

// Not headless: the close asks first, naming the running workers from the
// registry; "No" keeps everything running, "Yes" quits and closes.
TEST_F(Closing, AsksFirstNamingTheRunningWorkers) {
    v = std::make_unique<Viewer>(/*headless=*/false);
    v->show();
    load("random_images");
    ASSERT_TRUE(wait_logged("random images forever: started"));
    QString asked;
    auto answer = [&](QMessageBox::StandardButton b) {
        QTimer::singleShot(0, [&asked, b] {
            auto *box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget());
            if (!box) return;
            asked = box->text();
            box->button(b)->click();
        });
    };
    answer(QMessageBox::No);
    EXPECT_FALSE(v->close());
    EXPECT_TRUE(asked.contains("1 task is still running")) << qPrintable(asked);
    EXPECT_TRUE(asked.contains("random images forever")) << qPrintable(asked);
    EXPECT_TRUE(v->isVisible());
    EXPECT_FALSE(v->closing());
    EXPECT_EQ(worker_live_count(), 1);

    asked.clear();
    answer(QMessageBox::Yes);
    v->close();
    EXPECT_FALSE(asked.isEmpty());
    ASSERT_TRUE(pump_until([&] { return v->close_done(); }));
    EXPECT_FALSE(v->isVisible());
    EXPECT_EQ(worker_live_count(), 0);
    EXPECT_GE(logged("random images forever: aborted"), 0);
}

// The real executable, headless: clicks by script, screenshot, then a close
// with workers still running that must quit them all and exit 0.
TEST(Headless, ExecutableScreenshotsClicksAndExitsZeroWithWorkersRunning) {
    QTemporaryDir tmp;
    QString shot = tmp.filePath("shot.png");
    QProcess p;
    p.start(std::getenv("VIEWER_EXE"),
            {"--plugin-dir", std::getenv("VIEWER_PLUGIN_DIR"), "--screenshot", shot,
             "--quit-after-ms", "2000", "--click", "Random images/STOP!@800",
             "--click", "Multiplier/multiply by=3@300", "--size", "1000x700"});
    ASSERT_TRUE(p.waitForFinished(60000));
    QString out = p.readAllStandardOutput(), err = p.readAllStandardError();
    EXPECT_EQ(p.exitStatus(), QProcess::NormalExit) << qPrintable(err);
    EXPECT_EQ(p.exitCode(), 0) << qPrintable(err);
    EXPECT_TRUE(out.contains("screenshot written to")) << qPrintable(out);
    EXPECT_TRUE(out.contains("exit code 0, 0 worker(s) still live")) << qPrintable(out);
    EXPECT_TRUE(err.contains("--click Random images/STOP!@800: done")) << qPrintable(err);
    EXPECT_TRUE(err.contains("--click Multiplier/multiply by=3@300: done")) << qPrintable(err);
    EXPECT_FALSE(err.contains("did not finish")) << qPrintable(err);

    QImage img(shot);
    ASSERT_FALSE(img.isNull());
    EXPECT_EQ(img.size(), QSize(1000, 700));
    std::set<QRgb> colors;  // a real image has many gray levels, not a blank canvas
    for (int y = 0; y < img.height(); y += 3)
        for (int x = 0; x < img.width(); x += 3) colors.insert(img.pixel(x, y));
    EXPECT_GT(colors.size(), 100u);
}
