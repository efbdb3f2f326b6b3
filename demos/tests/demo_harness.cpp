#include "demo_harness.h"
#include "qt_exit.h"

#include <QApplication>
#include <QElapsedTimer>

#include <cstdlib>

namespace demo {

bool pump_until(const std::function<bool()> &pred, int timeout_ms) {
    QElapsedTimer t;
    t.start();
    while (!pred()) {
        if (t.elapsed() > timeout_ms) return pred();
        worker_app_process_events(10);  // waits for an event, no busy loop
    }
    return true;
}

void pump_for(int ms) {
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < ms) worker_app_process_events(10);
}

QString plugin_path(const char *name) {
    const char *dir = std::getenv("VIEWER_PLUGIN_DIR");
    return QString("%1/%2.so").arg(dir ? dir : ".", name);
}

worker *find_worker(const char *name) {
    worker *list[64];
    int n = worker_list(list, 64);
    worker *found = nullptr;
    for (int i = 0; i < n; i++) {
        if (!found && QString(worker_name(list[i])) == name)
            found = list[i];
        else
            worker_unref(list[i]);
    }
    return found;
}

void ViewerTest::SetUp() {
    v = std::make_unique<Viewer>(/*headless=*/true);
    v->show();
}

void ViewerTest::close_viewer() {
    if (!v || v->close_done()) return;
    v->close();
    EXPECT_TRUE(pump_until([&] { return v->close_done(); })) << "the viewer did not close";
}

void ViewerTest::TearDown() {
    close_viewer();
    EXPECT_EQ(worker_live_count(), 0) << "a worker outlived its viewer";
    EXPECT_EQ(v->watched_pending(), 0) << "a watched worker never delivered FINISHED";
    v.reset();  // plugins' dock user_data freed here
}

void ViewerTest::load(const char *plugin) {
    ASSERT_GE(v->load_plugin(plugin_path(plugin)), 0) << plugin;
}

int ViewerTest::logged(const QString &line) const { return v->activity().indexOf(line); }

bool ViewerTest::wait_logged(const QString &line, int timeout_ms) {
    return pump_until([&] { return logged(line) >= 0; }, timeout_ms);
}

QStringList ViewerTest::log_view() const {
    QStringList out;
    for (const QString &line : v->log_dock()->shown())
        out << line.mid(line.indexOf("  ") + 2);  // "HH:mm:ss.zzz  text"
    return out;
}

}  // namespace demo

int main(int argc, char **argv) {
    setenv("QT_QPA_PLATFORM", "offscreen", 0);
    int rc;
    {
        QApplication app(argc, argv);
        QApplication::setQuitOnLastWindowClosed(false);  // each test closes its viewer
        testing::InitGoogleTest(&argc, argv);
        rc = RUN_ALL_TESTS();
    }
    wait_for_qt_pool_threads();  // see qt_exit.h: else a rare leak report at exit
    return rc;
}
