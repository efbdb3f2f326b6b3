// The isolated plugin (isolated.c): process workers driven from its dock. A
// module that segfaults ends ERRORED naming SIGSEGV, then FINISHED, and the
// viewer (this test process) keeps running; a module that never checks for
// quit is stopped from the dock: killed after the grace period, ABORTED, then
// FINISHED, its helper process reaped. No timing assertions.
#include "demo_harness.h"

#include <QRegularExpression>

#include <cerrno>
#include <csignal>
#include <sys/types.h>
#include <sys/wait.h>

using demo::pump_until;
using demo::ViewerTest;

namespace {

const char *const kDock = "Isolated plugins";

// The helper of the live worker `name`, read while it runs (0 if none).
long helper_pid(const char *name) {
    worker *w = demo::find_worker(name);
    if (!w) return 0;
    long pid = worker_process_id(w);
    worker_unref(w);
    return pid;
}

// True once pid no longer exists and was reaped: kill(pid, 0) finds no
// process (a zombie would still answer), and waitpid has no child to reap.
bool gone_and_reaped(long pid) {
    errno = 0;
    bool no_process = kill((pid_t)pid, 0) == -1 && errno == ESRCH;
    errno = 0;
    bool no_child = waitpid((pid_t)pid, nullptr, WNOHANG) == -1 && errno == ECHILD;
    return no_process && no_child;
}

}  // namespace

class Isolated : public ViewerTest {
protected:
    void SetUp() override {
        ViewerTest::SetUp();
        load("isolated");
    }
    QString label(const char *name) const { return v->text_of(kDock, name); }
    // Log index of the first line starting with `prefix` from `from` on, or -1.
    int line_from(const QString &prefix, int from = 0) const {
        const QStringList &log = v->activity();
        for (int i = from; i < log.size(); i++)
            if (log[i].startsWith(prefix)) return i;
        return -1;
    }
    bool wait_line(const QString &prefix, int from = 0) {
        return pump_until([&] { return line_from(prefix, from) >= 0; });
    }
    // Runs the crashing module once, from `from` in the Log; checks its
    // previews, the ERRORED naming SIGSEGV and the FINISHED after it.
    // Under a sanitizer the module's crash ends in the sanitizer's own report
    // and exit status (UBSan halts on the null store first; TSan aborts), not
    // in SIGSEGV: then any ERRORED code is accepted.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    static constexpr bool kSanitized = true;
#else
    static constexpr bool kSanitized = false;
#endif
    static QString errored_prefix(const char *what) {
        return kSanitized ? QString("crashing plugin: %1 (").arg(what)
                          : QString("crashing plugin: %1 (%2)").arg(what).arg(SIGSEGV);
    }
    void crash_once(int from) {
        ASSERT_TRUE(v->click(kDock, "run crashing"));
        EXPECT_EQ(v->find_widget(kDock, "run crashing")->isEnabled(), false) << "one run at a time";
        ASSERT_TRUE(wait_line("crashing plugin: finished", from)) << qPrintable(v->activity().join("\n"));
        int errored = line_from(errored_prefix("errored"), from);
        ASSERT_GE(errored, 0) << qPrintable(v->activity().join("\n"));
        const QString &line = v->activity()[errored];
        EXPECT_TRUE(kSanitized || line.contains("killed by SIGSEGV")) << qPrintable(line);
        EXPECT_TRUE(line.contains("crashy: about to dereference NULL")) << "stderr quoted: " << qPrintable(line);
        EXPECT_GT(line_from("crashing plugin: finished", from), errored);
        EXPECT_EQ(line_from("crashing plugin: returned", from), -1);

        QString shown = label("crashing plugin: not run");
        EXPECT_TRUE(shown.startsWith(errored_prefix("ERRORED"))) << qPrintable(shown);
        EXPECT_TRUE(kSanitized || shown.contains("SIGSEGV")) << qPrintable(shown);
        EXPECT_TRUE(v->find_widget(kDock, "run crashing")->isEnabled());
        Layer *preview = v->layer("isolated preview");
        ASSERT_NE(preview, nullptr) << "the previews yielded before the crash were shown";
    }
};

// The module segfaults: ERRORED with the signal, FINISHED, and the viewer
// (this very process) survives and can run it again.
TEST_F(Isolated, CrashIsReportedAsErroredAndTheViewerKeepsRunning) {
    crash_once(0);
    EXPECT_EQ(v->watched_pending(), 0);
    int second = v->activity().size();
    crash_once(second);  // the plugin and viewer still work after a crash
    EXPECT_EQ(worker_live_count(), 0);
}

// The module never checks for quit: "stop stuck" asks, the library kills the
// helper after the 500 ms grace period (WARNED), then ABORTED and FINISHED;
// the helper process is gone and reaped.
TEST_F(Isolated, StuckModuleIsKilledAfterStopAndItsProcessIsReaped) {
    EXPECT_FALSE(v->click(kDock, "stop stuck")) << "disabled while nothing runs";
    ASSERT_TRUE(v->click(kDock, "run stuck"));
    ASSERT_TRUE(pump_until([&] { return label("stuck plugin: not run") == "stuck plugin: running"; }))
        << qPrintable(label("stuck plugin: not run"));
    long pid = helper_pid("stuck plugin");
    ASSERT_GT(pid, 0);
    EXPECT_EQ(kill((pid_t)pid, 0), 0) << "the helper runs while the module loops";

    ASSERT_TRUE(v->click(kDock, "stop stuck"));
    ASSERT_TRUE(wait_line("stuck plugin: finished")) << qPrintable(v->activity().join("\n"));
    int warned = line_from("stuck plugin: warned: ");
    int aborted = line_from("stuck plugin: aborted");
    ASSERT_GE(warned, 0) << qPrintable(v->activity().join("\n"));
    EXPECT_TRUE(v->activity()[warned].contains("500 ms")) << qPrintable(v->activity()[warned]);
    EXPECT_TRUE(v->activity()[warned].contains("killed")) << qPrintable(v->activity()[warned]);
    EXPECT_GT(aborted, warned);
    EXPECT_GT(line_from("stuck plugin: finished"), aborted);
    EXPECT_EQ(line_from("stuck plugin: errored"), -1) << "a stop is not an error";
    EXPECT_EQ(label("stuck plugin: not run"), "stuck plugin: ABORTED");
    EXPECT_TRUE(gone_and_reaped(pid)) << "pid " << pid;
    EXPECT_FALSE(v->click(kDock, "stop stuck")) << "disabled again after FINISHED";
    EXPECT_TRUE(v->find_widget(kDock, "run stuck")->isEnabled());
    EXPECT_EQ(worker_live_count(), 0);
}

// Closing the viewer with the stuck module running: the close quits it, the
// helper is killed after the grace period, and the window closes.
TEST_F(Isolated, ClosingWithTheStuckModuleRunningKillsItsProcess) {
    ASSERT_TRUE(v->click(kDock, "run stuck"));
    ASSERT_TRUE(pump_until([&] { return label("stuck plugin: not run") == "stuck plugin: running"; }));
    long pid = helper_pid("stuck plugin");
    ASSERT_GT(pid, 0);
    close_viewer();
    EXPECT_GE(line_from("stuck plugin: aborted"), 0);
    EXPECT_GE(line_from("stuck plugin: finished"), 0);
    EXPECT_TRUE(gone_and_reaped(pid)) << "pid " << pid;
}
