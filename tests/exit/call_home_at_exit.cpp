// A worker blocked in worker_call_home when the application quits: the exit
// join neither deadlocks nor times out (the call returns at once), fn never
// runs afterwards, every worker finishes, and the exit code is 0.
#include <qtworker.h>

#include <QCoreApplication>

#include <atomic>
#include <cstdio>
#include <unistd.h>

namespace {

std::atomic<bool> quitting{false}, calling{false};
std::atomic<int> runs{0}, rc{99}, again{99};
int finished = 0;

void *read_gui(void *) {
    runs++;
    return nullptr;
}

// Calls home only once the event loop has ended: nobody can run fn now.
void body(worker_ctx *ctx, void *) {
    while (!quitting) usleep(1000);
    calling = true;
    rc = worker_call_home(ctx, read_gui, nullptr, nullptr, -1);
    again = worker_call_home(ctx, read_gui, nullptr, nullptr, -1);  // refused at once
}

void on_started(worker_event *, void *) { worker_app_quit(0); }
void on_finished(worker_event *, void *) { finished++; }

}  // namespace

int main(int argc, char **argv) {
    if (worker_app_init(&argc, argv) != WORKER_OK) return 2;
    worker_set_exit_timeout(5000);  // a call that did not return would show as a slow exit
    // Connected before the library's exit hook (made by the first start), so
    // it runs first: the worker is then waiting in call_home, its entry
    // queued, when the hook quits and joins.
    QObject::connect(qApp, &QCoreApplication::aboutToQuit, [] {
        quitting = true;
        while (!calling) usleep(1000);
        usleep(50000);
    });
    worker *w = worker_create(body, nullptr, nullptr, nullptr);
    worker_connect(w, WORKER_EV_STARTED, on_started, nullptr, nullptr);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, nullptr, nullptr);
    worker_start(w);
    int exec_rc = worker_app_exec();
    for (int i = 0; i < 20; i++) worker_app_process_events(5);  // fn must not run late
    std::printf("exec rc=%d call_home=%d (%s) again=%d fn runs=%d finished=%d live=%d\n",
                exec_rc, rc.load(), worker_strerror(rc.load()), again.load(), runs.load(),
                finished, worker_live_count());
    // The exit hook quits before it joins: ABORTED (quit wins over EBUSY).
    bool ok = exec_rc == 0 && rc == WORKER_ABORTED && again == WORKER_ABORTED &&
              runs == 0 && finished == 1 && worker_live_count() == 0;
    worker_unref(w);
    return ok ? 0 : 1;
}
