/* probe: every payload (yielded plain or sized, emitted, sent, returned, arg, user_data) destroyed exactly once when a flood ends by quit (from another thread, random moments), by the last unref, by the end of the QThread loop the worker is homed on, and by the application's exit (exec returns while workers flood, BLOCK at capacity, LATEST; QUEUE is left out: unbounded by contract, a flood outgrows memory); run: ./build.sh probes/16_payloads_flood_ends.cpp && QT_QPA_PLATFORM=offscreen probes/16_payloads_flood_ends */
#include <qtworker.h>

#include <QCoreApplication>
#include <QThread>
#include <QTimer>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {
constexpr unsigned LIVE = 0xA11CEu, DEAD = 0xDEADu;
struct Val { std::atomic<unsigned> magic{LIVE}; };
std::atomic<long> made, destroyed, fails;
std::mutex gy_mu;
std::vector<Val *> graveyard;
void val_free(void *p) {
    auto *v = static_cast<Val *>(p);
    if (v->magic.exchange(DEAD) != LIVE && fails++ < 10) std::printf("FAIL: payload destroyed twice\n");
    destroyed++;
    std::lock_guard<std::mutex> g(gy_mu);
    graveyard.push_back(v);
}
Val *val() { made++; return new Val; }

void flood(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (long i = 0;; i++) {
        int rc;
        switch (i % 4) {
        case 0: rc = worker_yield(ctx, val(), val_free, nullptr, nullptr); break;
        case 1: rc = worker_yield_sized(ctx, val(), 8, val_free, nullptr, nullptr); break;
        case 2: rc = worker_emit(ctx, "e", val(), val_free); break;
        default: {
            void *sent; worker_destroy_fn sd;
            rc = worker_yield(ctx, val(), val_free, &sent, &sd);
            if (rc == WORKER_RECEIVED) { sd(sent); rc = 0; }
        }
        }
        if (rc == WORKER_ABORTED || rc < 0) { worker_return(ctx, val(), val_free); return; }
    }
}
void count_cb(worker_event *ev, void *) {
    if (ev->type == WORKER_EV_CUSTOM && (reinterpret_cast<long>(ev->value) & 1)) std::printf("odd\n");
}

worker *make(worker_policy pol, size_t cap, size_t bytes) {
    worker_options o;
    worker_options_init(&o);
    o.policy = pol; o.capacity = cap; o.capacity_bytes = bytes;
    worker *w = worker_create(flood, val(), val_free, &o);
    worker_connect(w, WORKER_EV_YIELDED, count_cb, val(), val_free);
    worker_connect(w, WORKER_EV_CUSTOM, count_cb, val(), val_free);
    for (int i = 0; i < 3; i++) worker_send(w, val(), val_free);
    return w;
}
struct Mode { worker_policy pol; size_t cap, bytes; };
const Mode modes[] = {{WORKER_BLOCK, 1, 0}, {WORKER_BLOCK, 3, 20}, {WORKER_BLOCK, 1000, 0},
                      {WORKER_BLOCK, 2, 0}, {WORKER_LATEST, 1, 0}, {WORKER_LATEST, 2, 20}};

void pump(int ms) {
    for (int i = 0; i < ms; i++) { QCoreApplication::processEvents(QEventLoop::AllEvents, 1); usleep(1000); }
}
bool settled(const char *what) {
    for (int t = 0; t < 3000 && made != destroyed; t++) pump(1);  /* 3 s at least */
    if (made != destroyed) {
        std::printf("FAIL: %s: %ld payloads made, %ld destroyed\n", what, (long)made, (long)destroyed);
        fails++;
        return false;
    }
    return true;
}
}  // namespace

int main(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IONBF, 0);
    alarm(200);
    int exit_round = argc > 1 ? atoi(argv[1]) : -1;
    if (exit_round < 0) {
        /* the app-exit case runs in child processes: one QCoreApplication each */
        int bad = 0;
        for (int r = 0; r < 6; r++) {
            char cmd[4096];
            std::snprintf(cmd, sizeof cmd, "%s %d", argv[0], r);
            int rc = std::system(cmd);
            if (rc != 0) { std::printf("FAIL: app exit round %d (status %d)\n", r, rc); bad = 1; }
        }
        if (bad) fails++;
    }
    QCoreApplication app(argc, argv);
    if (exit_round >= 0) {
        /* exec returns while 6 workers flood (two already unref'd) */
        std::vector<worker *> ws;
        for (const Mode &m : modes) ws.push_back(make(m.pol, m.cap, m.bytes));
        for (worker *w : ws) worker_start(w);
        QTimer::singleShot(20 + exit_round * 15, [&] {
            worker_unref(ws[0]); ws[0] = nullptr;
            worker_unref(ws[3]); ws[3] = nullptr;
        });
        QTimer::singleShot(40 + exit_round * 20, [] { QCoreApplication::quit(); });
        app.exec();
        for (worker *w : ws) if (w) worker_unref(w);
        pump(20);
        for (Val *v : graveyard) delete v;
        if (made != destroyed) {
            std::printf("FAIL: app exit: %ld payloads made, %ld destroyed\n", (long)made, (long)destroyed);
            return 1;
        }
        return 0;
    }

    std::mt19937 rng(5);
    for (int round = 0; round < 4; round++) {
        /* quit from another thread at random moments */
        std::vector<worker *> ws;
        for (const Mode &m : modes) ws.push_back(make(m.pol, m.cap, m.bytes));
        for (worker *w : ws) worker_start(w);
        std::atomic<bool> done{false};
        std::thread q([&] {
            std::mt19937 r2(round);
            for (worker *w : ws) { usleep(r2() % 5000); worker_quit(w); worker_send(w, val(), val_free); }
            done = true;
        });
        while (!done) pump(1);
        q.join();
        for (worker *w : ws) { while (worker_is_running(w)) pump(1); }
        pump(10);
        for (worker *w : ws) worker_unref(w);
        settled("quit while flooding");

        /* the last unref while flooding, from the GUI and from a thread */
        ws.clear();
        for (const Mode &m : modes) ws.push_back(make(m.pol, m.cap, m.bytes));
        for (worker *w : ws) worker_start(w);
        pump(int(rng() % 20));
        std::thread u([&] { for (size_t i = 0; i < ws.size(); i += 2) worker_unref(ws[i]); });
        for (size_t i = 1; i < ws.size(); i += 2) worker_unref(ws[i]);
        u.join();
        while (worker_live_count()) pump(1);
        settled("last unref while flooding");

        /* homed on a QThread whose loop ends while they flood */
        QThread th;
        std::vector<worker *> hs(sizeof modes / sizeof *modes, nullptr);
        std::atomic<int> ready{0};
        /* created from a timer inside th's own event loop (no moveToThread: Qt's is not TSan-clean) */
        QObject::connect(&th, &QThread::started, [&] {
            QTimer::singleShot(0, [&] {
                for (size_t i = 0; i < hs.size(); i++) {
                    hs[i] = make(modes[i].pol, modes[i].cap, modes[i].bytes);
                    worker_start(hs[i]);
                }
                ready = 1;
                /* the loop ends itself: a quit() from main is a Qt-internal TSan report */
                QTimer::singleShot(20 + int(rng() % 20), [] { QThread::currentThread()->quit(); });
            });
        });
        th.start();
        while (!ready) usleep(1000);
        th.wait();
        pump(5);
        for (worker *w : hs) worker_quit(w);
        for (worker *w : hs) worker_await(w, -1);
        pump(5);
        for (worker *w : hs) worker_unref(w);
        settled("home QThread loop ended while flooding");
        std::printf("round %d: %ld payloads, all destroyed once\n", round, (long)made);
    }
    for (Val *v : graveyard) delete v;
    std::printf("%s\n", fails ? "FAIL" : "PASS");
    return fails != 0;
}
