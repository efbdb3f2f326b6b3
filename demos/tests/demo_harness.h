// Helpers shared by the demo tests: event pumping, a Viewer per test that is
// closed through the normal close path, and access to plugin workers.
#pragma once

#include "viewer_window.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <vector>

namespace demo {

// Pumps the event loop until pred() or timeout; returns pred().
bool pump_until(const std::function<bool()> &pred, int timeout_ms = 10000);
// Pumps the event loop for ms (only to show that nothing happens meanwhile).
void pump_for(int ms);
// Full path of a built plugin module, e.g. plugin_path("camera").
QString plugin_path(const char *name);
// The live worker named `name` (a new reference: worker_unref it), or NULL.
worker *find_worker(const char *name);

// Records the values a worker yields, converted by `read` on the GUI thread.
template <typename T>
struct Yields {
    std::vector<T> values;
    T (*read)(const void *value);
    static void cb(worker_event *ev, void *self) {
        auto *y = static_cast<Yields *>(self);
        y->values.push_back(y->read(ev->value));
    }
    // Connected after the plugin's own callbacks, so it sees their effects.
    void connect(worker *w) { ASSERT_GT(worker_connect(w, WORKER_EV_YIELDED, cb, this, nullptr), 0); }
};

class ViewerTest : public ::testing::Test {
protected:
    void SetUp() override;
    // Closes the viewer as a user would and checks every worker was joined.
    void TearDown() override;
    void load(const char *plugin);
    // Index of the first Log line equal to `line`, or -1.
    int logged(const QString &line) const;
    bool wait_logged(const QString &line, int timeout_ms = 10000);
    // The Log dock's lines as shown on screen, without their time stamps.
    QStringList log_view() const;
    // Closes through closeEvent and waits until the viewer accepted.
    void close_viewer();

    std::unique_ptr<Viewer> v;
};

}  // namespace demo
