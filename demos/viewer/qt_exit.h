// Leaving main() cleanly after Qt's own thread pools.
#pragma once

// Waits (at most timeout_ms) until none of Qt's pooled threads ("Thread
// (pooled)", the threads the GUI thread pool runs style and fill work on) is
// left. Call it after the QApplication is destroyed, right before main()
// returns. Why: QApplication's destructor joins those threads, but a joined
// QThread still runs its thread-local teardown; if exit() overtakes it, Qt's
// static destructor deletes its thread-data key first and that thread's
// QThreadData (152 bytes) is never freed, which LeakSanitizer reports.
void wait_for_qt_pool_threads(int timeout_ms = 2000);
