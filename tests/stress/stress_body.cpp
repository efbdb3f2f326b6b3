// Stress: the workers' functions (test_stress.cpp drives them). A body is
// a generator or a function making random worker-side calls, bounded, that
// stops on quit and records what it did in its Track for check_track.
#include "harness.h"
#include "stress_support.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

namespace stress {
namespace {

Group groups[kGroups];

void set_return(worker_ctx *ctx, void *v, worker_destroy_fn d, long id, long *last_ret) {
    expect_rc("worker_return", worker_return(ctx, v, d), {WORKER_OK});
    *last_ret = id;
}

int yield_one(worker_ctx *ctx, Track *t, int i, long *last_ret) {
    void *sent = nullptr;
    worker_destroy_fn sd = nullptr;
    size_t size = frame_size(t, i);
    int rc = t->receives
                 ? worker_yield_sized(ctx, make(K_YIELD, t, i), size, pl_free, &sent, &sd)
                 : worker_yield_sized(ctx, make(K_YIELD, t, i), size, pl_free, nullptr, nullptr);
    if (t->receives)
        expect_rc("worker_yield", rc, {WORKER_OK, WORKER_RECEIVED, WORKER_ABORTED});
    else
        expect_rc("worker_yield", rc, {WORKER_OK, WORKER_ABORTED});
    if (rc == WORKER_OK || rc == WORKER_RECEIVED) t->yields_ok++;
    if (rc == WORKER_RECEIVED) {
        if (sent && i % 2)
            set_return(ctx, sent, sd, static_cast<Payload *>(sent)->id, last_ret);  // hand it on
        else if (!sent && i % 3 == 0)
            set_return(ctx, sent, sd, 0, last_ret);  // a NULL result with a destroy
        else if (sd)
            sd(sent);
    }
    return rc;
}

// worker_receive with a short wait: a sent value, or one piped in.
void receive_one(worker_ctx *ctx, Track *t, int i, long *last_ret) {
    void *v = nullptr;
    worker_destroy_fn d = nullptr;
    int rc = worker_receive(ctx, &v, &d, i % 3 ? 0 : 1);
    expect_rc("worker_receive", rc, {WORKER_RECEIVED, WORKER_ETIMEDOUT, WORKER_ABORTED, WORKER_EOF});
    if (rc == WORKER_ABORTED) t->saw_abort = true;
    if (rc == WORKER_RECEIVED) count(ST_RECEIVED);
    if (rc == WORKER_RECEIVED && v && i % 4 == 1)
        set_return(ctx, v, d, static_cast<Payload *>(v)->id, last_ret);
    else if (d)
        d(v);
}

void emit_one(worker_ctx *ctx, Track *t, int i) {
    int rc = worker_emit(ctx, i % 2 ? "a" : "b", make(K_CUSTOM, t, i), pl_free);
    expect_rc("worker_emit", rc, {WORKER_OK});
    if (rc == WORKER_OK) t->emits_ok++;
}

void warn_one(worker_ctx *ctx, Track *t, int i) {
    int rc = worker_warn(ctx, "warn %d of %s", i, "w");
    expect_rc("worker_warn", rc, {WORKER_OK});
    if (rc == WORKER_OK) t->warns_ok++;
}

void print_one(worker_ctx *ctx, Track *t, int i, bool newline) {
    FILE *f = i % 2 ? worker_stdout(ctx) : worker_stderr(ctx);
    if (!f) return fail("worker_stdout/worker_stderr gave NULL inside the function");
    if (std::fprintf(f, newline ? "line %d\n" : "tail %d", i) > 0) t->lines++;
}

// Serial groups: members never overlap and run in the order they were started.
void enter_group(Track *t, int delta) {
    if (t->group < 0) return;
    auto &g = group(t->group);
    if (delta > 0) {
        std::lock_guard<std::mutex> lk(g.mu);
        if (t->start_seq <= g.last_run) fail("a serial group ran a member out of start order");
        g.last_run = t->start_seq;
    }
    int before = g.running.fetch_add(delta);
    if (delta > 0 && before != 0) fail("two members of a serial group ran at once");
}

}  // namespace

Group &group(int k) { return groups[k]; }

size_t frame_size(const Track *t, int i) { return t->capacity_bytes ? (size_t)(i % 4) * 1500 : 0; }

// A generator or a function with random side calls; bounded, stops on quit.
void body(worker_ctx *ctx, void *arg) {
    Track *t = static_cast<Payload *>(arg)->track;
    if (t->runs.fetch_add(1) != 0) fail("a worker's function ran twice");
    enter_group(t, +1);
    std::mt19937_64 rng(t->body_seed);
    long last_ret = 0;
    for (int i = 0; i < t->iters && !t->saw_abort; i++) {
        int r = (int)(rng() % 100);
        if (t->generator ? r < 55 : r < 20) {
            if (yield_one(ctx, t, i, &last_ret) == WORKER_ABORTED) t->saw_abort = true;
        } else if (r < 63) {
            warn_one(ctx, t, i);
        } else if (r < 68) {
            expect_rc("worker_progress", worker_progress(ctx, i, t->iters, i % 2 ? "p" : nullptr),
                      {WORKER_OK});
        } else if (r < 75) {
            emit_one(ctx, t, i);
        } else if (r < 80) {
            print_one(ctx, t, i, true);
        } else if (r < 86) {
            int rc = worker_abort_requested(ctx);
            expect_rc("worker_abort_requested", rc, {0, 1});
            if (rc == 1) t->saw_abort = true;
        } else if (r < 91) {
            Payload *p = make(K_RETURN, t);
            set_return(ctx, p, pl_free, p->id, &last_ret);
        } else if (r < 93) {
            // Owner-side calls from the worker's own thread are allowed; the
            // library's reference keeps t->w valid while the function runs.
            expect_rc("worker_pause(self)", worker_pause(t->w), {WORKER_OK});
        } else if (r < 95) {
            int rc = worker_send(t->w, make(K_SENT, t), pl_free);  // before reading the flag
            // ESTATE once its input may have closed, or its scope (closing any time).
            bool may_refuse = t->input_may_close || t->scope >= 0;
            expect_rc("worker_send(self)", rc, {WORKER_OK, may_refuse ? WORKER_ESTATE : WORKER_OK});
        } else if (r < 96 && i % 2) {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        } else if (r < 96) {
            receive_one(ctx, t, i, &last_ret);
        } else if (r < 98) {
            call_home_one(ctx, t, i);
        } else if (t->may_fail) {
            expect_rc("worker_fail", worker_fail(ctx, 7, "failed at %d", i), {WORKER_OK});
            t->failed = true;
            break;
        }
    }
    if (t->saw_abort && rng() % 2) {  // after quit, warnings, custom events and output still arrive
        warn_one(ctx, t, t->iters);
        emit_one(ctx, t, t->iters);
        print_one(ctx, t, t->iters, true);
    }
    if (rng() % 8 == 0) print_one(ctx, t, t->iters + 1, false);  // arrives when the function returns
    if (rng() % 4 == 0) {  // a result set last, possibly after quit (then hidden)
        Payload *p = make(K_RETURN, t);
        set_return(ctx, p, pl_free, p->id, &last_ret);
    }
    t->last_return_id = last_ret;
    enter_group(t, -1);
}

}  // namespace stress
