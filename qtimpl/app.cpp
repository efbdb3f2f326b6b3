// Plain-C host helpers and status texts.
#include "worker_p.h"

#include <QApplication>
#include <QEventLoop>
#include <QThread>
#include <QTimer>

#include <chrono>
#include <cstdlib>
#include <system_error>
#include <thread>

namespace qtw {

int status_of_current_exception() noexcept {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return WORKER_ENOMEM;
    } catch (const std::system_error &e) {
        return e.code() == std::errc::resource_unavailable_try_again ? WORKER_EAGAIN : WORKER_ENOMEM;
    } catch (...) {
        return WORKER_ENOMEM;
    }
}

void wait_for_memory() { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }

}  // namespace qtw

extern "C" {

unsigned worker_version(void) { return QTWORKER_VERSION_HEX; }
const char *worker_version_string(void) { return QTWORKER_VERSION_STRING; }

const char *worker_strerror(int status) {
    switch (status) {
    case WORKER_OK: return "ok";
    case WORKER_RECEIVED: return "a sent value was received";
    case WORKER_EOF: return "end of input: it was closed and everything sent before was received";
    case WORKER_EINVAL: return "invalid argument (NULL, out of range, or unknown worker handle)";
    case WORKER_ESTATE: return "not valid in the worker's current state";
    case WORKER_ETHREAD: return "worker-side call made outside the worker's function";
    case WORKER_ENOMEM: return "out of memory";
    case WORKER_ETIMEDOUT: return "timed out";
    case WORKER_ABORTED: return "quit was requested: return from the worker function";
    case WORKER_ENOAPP: return "no QCoreApplication exists (call worker_app_init first)";
    case WORKER_EBUSY: return "busy: the worker's exclusive serial group, or its home thread (waiting for workers)";
    case WORKER_EAGAIN: return "a system limit was reached (no thread could be created): try again later";
    default: return "unknown status code";
    }
}

int worker_app_init(int *argc, char **argv) {
    if (QCoreApplication::instance()) return WORKER_OK;
    static int fallback_argc = 1;
    static char fallback_name[] = "qtworker";
    static char *fallback_argv[] = {fallback_name, nullptr};
    if (!argc || !argv || *argc < 1) {
        argc = &fallback_argc;
        argv = fallback_argv;
    }
    // With no display, a GUI app would abort: fall back to offscreen.
    if (!std::getenv("QT_QPA_PLATFORM") && !std::getenv("DISPLAY") &&
        !std::getenv("WAYLAND_DISPLAY"))
        setenv("QT_QPA_PLATFORM", "offscreen", 0);
    try {
        new QApplication(*argc, argv);  // lives until the process ends
    } catch (...) {
        return qtw::status_of_current_exception();
    }
    return WORKER_OK;
}

int worker_app_exec(void) {
    if (!QCoreApplication::instance()) return WORKER_ENOAPP;
    return QCoreApplication::exec();
}

void worker_app_quit(int code) {
    QCoreApplication *app = QCoreApplication::instance();
    if (!app) return;
    // Queued on the app thread through the dispatcher, whose hand-over
    // ThreadSanitizer can see (a queued lambda's would be inside Qt).
    try {
        qtw::post_app_quit(code);
    } catch (...) {
        // no memory for the dispatcher: nothing to report through a void call
    }
}

int worker_app_process_events(int max_ms) {
    QCoreApplication *app = QCoreApplication::instance();
    if (!app) return WORKER_ENOAPP;
    if (max_ms < 0) return WORKER_EINVAL;
    QCoreApplication::processEvents(QEventLoop::AllEvents);
    if (max_ms > 0) {
        // Wait for at least one event, bounded by a timer of our own.
        QTimer bound;
        bound.setSingleShot(true);
        bound.start(max_ms);
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
    }
    return WORKER_OK;
}

}  // extern "C"
