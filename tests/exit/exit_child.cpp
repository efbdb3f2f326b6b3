// Child program for the bounded quit-and-join at application exit (napari
// #7446, #7633): a plain host (worker_app_init / worker_app_exec) leaves
// workers in every awkward state when the event loop ends. The exit hook
// must quit and join them within its bound and deliver their remaining
// events, so that after worker_app_exec() returns every started worker has had
// exactly one FINISHED, and every payload is destroyed exactly once.
//
//   exit_child               unref each worker from its own FINISHED callback
//                            (the last unref runs inside the exit hook)
//   exit_child --late-unref  hold every ref past exec(), destroy the
//                            QApplication, then unref
//
// Exit code 0 only if everything held; the reason is printed otherwise.
#include "qtworker.h"

#include <QCoreApplication>
#include <QTimer>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using clk = std::chrono::steady_clock;

namespace {

// ---- payloads tracked one by one: a double destroy is caught, not averaged
struct Payload {
    size_t id;
};
std::mutex payload_mu;
std::vector<unsigned char> payload_state;  // 1 alive, 2 destroyed
long double_destroys = 0;

void *payload() {
    std::lock_guard<std::mutex> lk(payload_mu);
    payload_state.push_back(1);
    return new Payload{payload_state.size() - 1};
}

void payload_free(void *p) {
    auto *pl = static_cast<Payload *>(p);
    {
        std::lock_guard<std::mutex> lk(payload_mu);
        if (payload_state.at(pl->id) != 1) {
            double_destroys++;
            return;  // never free twice
        }
        payload_state[pl->id] = 2;
    }
    delete pl;
}

// A destroy that takes a while (closing a file, freeing a big image): it
// must still have run before the worker is reported ended at exit.
void slow_payload_free(void *p) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    payload_free(p);
}

void payload_counts(size_t *made, size_t *destroyed) {
    std::lock_guard<std::mutex> lk(payload_mu);
    *made = payload_state.size();
    *destroyed = 0;
    for (unsigned char s : payload_state) *destroyed += s == 2;
}

// ---- per-worker record of delivered events (home thread only)
struct Track {
    const char *name;
    worker_event_type expect_outcome;
    worker *w = nullptr;
    std::vector<worker_event_type> types;
    const char *expect_last_output = nullptr;  // NULL: no check
    std::string last_output;
};

void record(worker_event *ev, void *ud) {
    auto *t = static_cast<Track *>(ud);
    t->types.push_back(ev->type);
    if (ev->type == WORKER_EV_OUTPUT) t->last_output = ev->message ? ev->message : "";
}
void unref_source(worker_event *ev, void *) { worker_unref(ev->source); }
void noop(worker_event *, void *) {}

bool is_outcome(worker_event_type t) {
    return t == WORKER_EV_RETURNED || t == WORKER_EV_ERRORED || t == WORKER_EV_ABORTED;
}

// Started first, exactly one outcome (the expected one) right before exactly
// one FINISHED, which is last.
bool check_track(const Track &t) {
    int started = 0, outcomes = 0, finished = 0;
    for (auto ty : t.types) {
        started += ty == WORKER_EV_STARTED;
        outcomes += is_outcome(ty);
        finished += ty == WORKER_EV_FINISHED;
    }
    size_t n = t.types.size();
    // Still waiting for a pool thread when the app quit (the pool runs one
    // task per CPU at a time, and adds a thread per ms for the rest): quit
    // before it ran, as the contract says.
    if (t.types == std::vector<worker_event_type>{WORKER_EV_STARTED, WORKER_EV_ABORTED,
                                                  WORKER_EV_FINISHED})
        return true;
    bool ok = started == 1 && outcomes == 1 && finished == 1 && n >= 3 &&
              t.types.front() == WORKER_EV_STARTED && t.types.back() == WORKER_EV_FINISHED &&
              t.types[n - 2] == t.expect_outcome;
    if (!ok)
        std::fprintf(stderr, "FAIL %s: %zu events, started %d, outcomes %d, finished %d\n",
                     t.name, n, started, outcomes, finished);
    if (t.expect_last_output && t.last_output != t.expect_last_output) {
        std::fprintf(stderr, "FAIL %s: last output '%s', expected '%s'\n", t.name,
                     t.last_output.c_str(), t.expect_last_output);
        ok = false;
    }
    return ok;
}

// ---- worker functions, each left in a different state at exit
void endless(worker_ctx *ctx, void *) {
    while (worker_yield(ctx, payload(), payload_free, nullptr, nullptr) == WORKER_OK) {
    }
}

void endless_emitting(worker_ctx *ctx, void *) {
    for (int i = 0;; i++) {
        if (i % 16 == 0) {
            worker_emit(ctx, "tick", payload(), payload_free);
            worker_warn(ctx, "tick %d", i);
            std::fprintf(worker_stdout(ctx), "tick %d\n", i);
        }
        if (worker_yield(ctx, payload(), payload_free, nullptr, nullptr) != WORKER_OK) break;
    }
    std::fputs("bye", worker_stdout(ctx));  // no newline: flushed as the function returns
}

void poll_abort(worker_ctx *ctx, void *) {
    worker_return(ctx, payload(), slow_payload_free);  // hidden by the abort: destroyed
    while (!worker_abort_requested(ctx)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// Ends before the app quits: its events were all delivered by the loop.
void short_lived(worker_ctx *ctx, void *) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    worker_return(ctx, payload(), payload_free);
}

}  // namespace

int main(int argc, char **argv) {
    bool late_unref = argc > 1 && std::strcmp(argv[1], "--late-unref") == 0;
    static int app_argc = 1;
    static char app_name[] = "exit_child";
    static char *app_argv[] = {app_name, nullptr};
    if (worker_app_init(&app_argc, app_argv) != WORKER_OK) return 2;

    // A hang in the exit path must fail with a message, not a meson timeout.
    static std::atomic<bool> done{false};  // static: read by the detached thread
    std::thread([] {
        auto deadline = clk::now() + std::chrono::seconds(30);
        while (!done.load()) {
            if (clk::now() > deadline) {
                std::fprintf(stderr, "FAIL: still not done after 30 s (exit hang)\n");
                std::fflush(stderr);
                std::_Exit(3);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }).detach();

    struct Spec {
        const char *name;
        worker_fn fn;
        worker_policy policy;
        size_t capacity;
        bool paused;
        worker_event_type outcome;
    };
    const Spec specs[] = {
        {"endless", endless, WORKER_BLOCK, 0, false, WORKER_EV_ABORTED},
        {"paused", endless, WORKER_BLOCK, 0, true, WORKER_EV_ABORTED},
        // at exit it waits for room the GUI (busy in the hook) no longer makes
        {"block-full", endless, WORKER_BLOCK, 1, false, WORKER_EV_ABORTED},
        {"latest-emitting", endless_emitting, WORKER_LATEST, 4, false, WORKER_EV_ABORTED},
        {"poll-abort", poll_abort, WORKER_BLOCK, 0, false, WORKER_EV_ABORTED},
        {"short-lived", short_lived, WORKER_BLOCK, 0, false, WORKER_EV_RETURNED},
    };
    // 100 workers in all: 16 of each state, and 4 never started.
    constexpr int kCopies = 16, kNeverStarted = 4;
    std::vector<std::unique_ptr<Track>> tracks;
    for (int copy = 0; copy < kCopies; copy++)
    for (const Spec &s : specs) {
        worker_options o;
        worker_options_init(&o);
        o.name = s.name;
        o.policy = s.policy;
        if (s.capacity) o.capacity = s.capacity;
        auto t = std::make_unique<Track>();
        t->name = s.name;
        t->expect_outcome = s.outcome;
        if (s.fn == endless_emitting) t->expect_last_output = "bye";
        t->w = worker_create(s.fn, payload(), payload_free, &o);
        if (!t->w) return 2;
        for (int ty = WORKER_EV_STARTED; ty <= WORKER_EV_OUTPUT; ty++)
            worker_connect(t->w, (worker_event_type)ty, record, t.get(), nullptr);
        // user_data handed over with a destroy: freed when the worker is
        worker_connect(t->w, WORKER_EV_FINISHED, noop, payload(), payload_free);
        if (!late_unref) worker_connect(t->w, WORKER_EV_FINISHED, unref_source, nullptr, nullptr);
        worker_send(t->w, payload(), payload_free);  // never received
        if (s.paused) worker_pause(t->w);
        if (worker_start(t->w) != WORKER_OK) return 2;
        tracks.push_back(std::move(t));
    }
    std::vector<worker *> never_started;
    for (int i = 0; i < kNeverStarted; i++) {
        never_started.push_back(worker_create(endless, payload(), payload_free, nullptr));
        worker_send(never_started.back(), payload(), payload_free);
    }
    std::printf("%zu workers started, %zu never started\n", tracks.size(), never_started.size());

    // Quit ~200 ms in, as a plain-C host would.
    clk::time_point quit_at;
    QTimer::singleShot(200, [&quit_at] {
        quit_at = clk::now();
        worker_app_quit(0);
    });
    int rc = worker_app_exec();
    auto exited = clk::now();
    double shutdown_ms = std::chrono::duration<double, std::milli>(exited - quit_at).count();
    std::printf("shutdown took %.1f ms (exec returned %d)\n", shutdown_ms, rc);

    bool ok = rc == 0;
    if (rc != 0) std::fprintf(stderr, "FAIL: worker_app_exec returned %d\n", rc);
    // Generous bound: the hook waits at most its exit timeout (1 s default).
    if (shutdown_ms > 10000) {
        std::fprintf(stderr, "FAIL: shutdown took %.0f ms\n", shutdown_ms);
        ok = false;
    }
    // No pumping here: the exit hook itself must have delivered FINISHED.
    for (auto &t : tracks) ok = check_track(*t) && ok;
    if (worker_live_count() != 0) {
        std::fprintf(stderr, "FAIL: %d workers still live after exec()\n", worker_live_count());
        ok = false;
    }

    if (late_unref) {
        delete QCoreApplication::instance();  // the app is gone before the last unref
        for (auto &t : tracks) worker_unref(t->w);
    }
    for (worker *w : never_started) worker_unref(w);

    size_t made, destroyed;
    payload_counts(&made, &destroyed);
    std::printf("destroyed %zu of %zu payloads, %ld destroyed twice\n", destroyed, made,
                double_destroys);
    if (destroyed != made || double_destroys) {
        std::fprintf(stderr, "FAIL: payloads not destroyed exactly once\n");
        ok = false;
    }
    done = true;
    std::printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
