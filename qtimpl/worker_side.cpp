// Worker side of the C API (calls made from inside the worker's function)
// and the body that runs on the pool thread.
#include "fault.h"
#include "worker_p.h"

#include <cxxabi.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>

using qtw::Entry;
using qtw::Phase;

namespace {

// initial-exec: a plain TLS load instead of a __tls_get_addr call per check.
thread_local worker_ctx *tls_ctx __attribute__((tls_model("initial-exec"))) = nullptr;

// Validates a worker-side call: only the thread running this worker's
// function may make it. Compares pointers only, so a stale ctx is safe.
int check_ctx(worker_ctx *ctx) {
    if (!ctx) return WORKER_EINVAL;
    return ctx == tls_ctx ? WORKER_OK : WORKER_ETHREAD;
}

std::string vformat(const char *fmt, va_list ap) {
    if (!fmt) return std::string();
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n <= 0) return std::string();
    std::string s((size_t)n, '\0');
    std::vsnprintf(&s[0], (size_t)n + 1, fmt, ap);
    return s;
}

Entry make_entry(worker_event_type type, void *value = nullptr,
                 worker_destroy_fn destroy = nullptr) {
    Entry e{type};
    e.value = value;
    e.destroy = destroy;
    return e;
}

// May throw bad_alloc.
Entry text_entry(worker_event_type type, std::string text) {
    Entry e{type};
    qtw::fault::check(qtw::fault::Text);
    e.text = std::make_unique<std::string>(std::move(text));
    return e;
}

// An entry the worker must emit (its outcome): waits for memory if need be.
template <typename F>
auto must_make(F &&make) -> decltype(make()) {
    for (;;) {
        try {
            return make();
        } catch (const std::bad_alloc &) {
            qtw::wait_for_memory();
        }
    }
}

// Parks while a pause is requested; PAUSED / RESUMED enter the stream in
// order with the worker's other events. Returns ABORTED once quit was asked.
// A resume always ends the park: a pause asked again before the worker woke
// (from the RESUMED callback, or resume + pause as one step) takes effect at
// its next yield, so every resume lets it run (else it re-parked in place).
int park_locked(worker *w, std::unique_lock<qtw::StreamMutex> &lk) {
    const unsigned resumes = w->resumes;
    while (w->pause_requested && !w->abort_requested && w->resumes == resumes) {
        if (!w->paused) {
            w->paused = true;
            qtw::push_control_locked(w, lk, make_entry(WORKER_EV_PAUSED));
        }
        qtw::run_deferred_schedule();  // PAUSED (and what came before) must reach the GUI
        qtw::pool_blocking_begin();
        w->pause_cv.wait(lk);
        qtw::pool_blocking_end();
    }
    if (w->paused) {
        w->paused = false;
        if (!w->abort_requested) qtw::push_control_locked(w, lk, make_entry(WORKER_EV_RESUMED));
    }
    return w->abort_requested ? WORKER_ABORTED : WORKER_OK;
}

// napari's progress={'total': N}: one step per yield, indeterminate past N.
Entry auto_progress_locked(worker *w) {
    Entry e(WORKER_EV_PROGRESS);
    e.done = ++w->yields;
    e.total = e.done > w->progress_total ? 0 : w->progress_total;
    if (w->has_progress_desc) {
        e.text = std::make_unique<std::string>(w->progress_desc);
    }
    return e;
}

}  // namespace

namespace qtw {

worker_ctx *current_ctx() { return tls_ctx; }
int check_worker_ctx(worker_ctx *ctx) { return check_ctx(ctx); }
int park_worker_locked(worker *w, std::unique_lock<StreamMutex> &lk) { return park_locked(w, lk); }
void set_current_ctx(worker_ctx *ctx) { tls_ctx = ctx; }

// `text` was allocated beforehand (outside the lock): settling the outcome
// itself never allocates, so it cannot fail.
static Entry outcome_locked(worker *w, std::unique_ptr<std::string> &text) {
    if (w->failed) {
        Entry e(WORKER_EV_ERRORED);
        text->swap(w->fail_message);
        e.text = std::move(text);
        e.code = w->fail_code;
        return e;
    }
    if (w->timed_out) {
        Entry e(WORKER_EV_ABORTED);
        char buf[64];
        std::snprintf(buf, sizeof buf, "timed out after %lld ms", w->timeout_ms);
        text->assign(buf);  // fits the capacity reserved below: no allocation
        e.text = std::move(text);
        e.code = WORKER_ETIMEDOUT;
        return e;
    }
    if (w->abort_requested) return make_entry(WORKER_EV_ABORTED);
    Entry e = make_entry(WORKER_EV_RETURNED, w->result, w->result_destroy);
    w->result = nullptr;
    w->result_destroy = nullptr;
    return e;
}

// A C++ exception thrown through the worker's function (C++ code behind a
// C plugin) ends it as ERRORED instead of ending the process.
static void call_function(worker *w) {
    try {
        w->fn(&w->ctx, w->arg);
    } catch (const abi::__forced_unwind &) {
        throw;  // thread cancellation must unwind
    } catch (const std::exception &e) {
        worker_fail(&w->ctx, WORKER_ESTATE, "uncaught C++ exception: %s", e.what());
    } catch (...) {
        worker_fail(&w->ctx, WORKER_ESTATE, "uncaught C++ exception");
    }
}

void run_worker(worker *w) {
    bool skip;
    {
        ScheduleAfterUnlock wake;
        std::unique_lock<qtw::StreamMutex> lk(w->mu);
        w->phase = Phase::Running;
        push_control_locked(w, lk, make_entry(WORKER_EV_STARTED));
        skip = w->abort_requested;  // quit before it ran: never call fn
    }
    if (!skip) {
        tls_ctx = &w->ctx;
        if (!watch_timeout(w))
            worker_warn(&w->ctx, "timeout_ms not enforced: no watchdog thread could be created");
        call_function(w);
        tls_ctx = nullptr;
        recycle_close(w);  // delivered yields still held: destroyed before FINISHED
        close_outputs(w);  // a last partial line goes before the outcome
        unwatch_timeout(w);
    }
    // Only a failure or a timeout has text; both are settled by now (failed
    // is this thread's own write; the watchdog let go in unwatch_timeout).
    std::unique_ptr<std::string> outcome_text;
    if (w->failed || w->timeout_ms > 0) {
        outcome_text = must_make([] {
            auto t = std::make_unique<std::string>();
            t->reserve(64);
            return t;
        });
    }
    // The function has returned: settle the outcome and take every leftover
    // (arg, a result hidden by quit/fail, sends never received) out under the
    // lock, destroy them unlocked, and only then queue the outcome and
    // FINISHED — so a FINISHED callback sees every payload already destroyed.
    void *arg;
    Entry outcome, hidden_result;
    ChunkQueue<Sent> unreceived;
    {
        std::unique_lock<qtw::StreamMutex> lk(w->mu);
        w->phase = Phase::Ending;  // owner-side calls now get ESTATE
        w->paused = false;
        w->arg_consumed = true;
        arg = w->arg;
        outcome = outcome_locked(w, outcome_text);
        hidden_result = make_entry(WORKER_EV_RETURNED, w->result, w->result_destroy);
        w->result = nullptr;
        w->result_destroy = nullptr;
        unreceived.swap(w->inbox);
    }
    if (w->arg_destroy) w->arg_destroy(arg);
    hidden_result.release();
    unreceived.for_each([](Sent &s) {
        if (s.destroy) s.destroy(s.value);
    });
    pipe_worker_ended(w);  // its sink may close its input; its sources are quit
    group_release(w);  // the next member of its serial group may run now
    {
        std::unique_lock<qtw::StreamMutex> lk(w->mu);
        w->phase = Phase::Done;
        // Leave the live registry before FINISHED can be delivered and the
        // worker freed: after this block nothing here touches w.
        set_live(w, false);
        push_control_locked(w, lk, std::move(outcome));
        push_control_locked(w, lk, make_entry(WORKER_EV_FINISHED));
        // Scheduled before an awaiter wakes: a home thread that awaits and
        // then drains (the exit join) must find FINISHED in its ready list.
        run_deferred_schedule();
        w->done_cv.notify_all();
    }
}

}  // namespace qtw

extern "C" {

static int yield_value(worker_ctx *ctx, void *value, size_t size, worker_destroy_fn destroy,
                       void **sent, worker_destroy_fn *sent_destroy) {
    Entry e = make_entry(WORKER_EV_YIELDED, value, destroy);
    int rc = check_ctx(ctx);
    if (rc == WORKER_OK && (sent == nullptr) != (sent_destroy == nullptr)) rc = WORKER_EINVAL;
    if (rc == WORKER_OK && size > (size_t)PTRDIFF_MAX) rc = WORKER_EINVAL;  // no such object
    if (rc != WORKER_OK) {
        e.release();
        return rc;
    }
    worker *w = ctx->w;
    if (destroy && !w->recycler.load(std::memory_order_relaxed)) qtw::make_recycler(w);
    e.size = qtw::yield_size(w, value, size);
    // The fast lane: no lock, when nothing below applies (see ring_yield).
    if (!sent && qtw::ring_yield(w, e)) {
        qtw::recycle_one(w);  // a delivered frame, just before the next malloc
        return WORKER_OK;
    }
    bool alone = qtw::oversized(w, e.size);  // e.size moves with e
    Entry stale, stale_progress, progress;
    worker *source_to_wake = nullptr;
    {
        // One critical section per yield: push, progress, pause, receive.
        qtw::ScheduleAfterUnlock wake(qtw::ScheduleAfterUnlock::kHandOff);
        std::unique_lock<qtw::StreamMutex> lk(w->mu);
        try {
            rc = w->pipe_out ? qtw::pipe_push_locked(w, lk, e, &stale)
                             : qtw::push_data_locked(w, lk, e, &stale);
        } catch (const std::bad_alloc &) {
            rc = WORKER_ENOMEM;  // e still holds the value: destroyed below
        }
        if (rc == WORKER_OK && w->progress_total > 0) {
            try {
                progress = auto_progress_locked(w);
                rc = qtw::push_data_locked(w, lk, progress, &stale_progress);
            } catch (const std::bad_alloc &) {
                // The value was queued: only this progress step is lost.
            }
        }
        if (rc == WORKER_OK) {
            // A frame LATEST dropped is destroyed before parking, not after.
            if (w->pause_requested) qtw::release_unlocked(lk, &stale);
            bool shown = alone && w->oversized_shown;
            rc = park_locked(w, lk);
            // Shown before the quit: ABORTED would say "not delivered".
            if (shown && rc == WORKER_ABORTED) rc = WORKER_OK;
        }
        if (rc == WORKER_OK && sent && qtw::take_input_locked(w, sent, sent_destroy, &source_to_wake))
            rc = WORKER_RECEIVED;
    }
    qtw::wake_producer(source_to_wake);
    // Whatever was not handed to the stream is destroyed here, unlocked.
    e.release();
    stale.release();
    stale_progress.release();
    qtw::recycle_one(w);  // a delivered frame, just before the next malloc
    return rc;
}

int worker_yield(worker_ctx *ctx, void *value, worker_destroy_fn destroy,
                 void **sent, worker_destroy_fn *sent_destroy) {
    return yield_value(ctx, value, 0, destroy, sent, sent_destroy);
}

int worker_yield_sized(worker_ctx *ctx, void *value, size_t size, worker_destroy_fn destroy,
                       void **sent, worker_destroy_fn *sent_destroy) {
    return yield_value(ctx, value, size, destroy, sent, sent_destroy);
}

int worker_abort_requested(worker_ctx *ctx) {
    int rc = check_ctx(ctx);
    if (rc != WORKER_OK) return rc;
    qtw::ScheduleAfterUnlock wake;
    // Nothing asked (the common case of a polling loop): no lock. A loop
    // polling flat out otherwise met the GUI on w->mu, whose delivery of
    // this worker's events then waited (call_home(0) loops: timers 80 ms
    // late). Outside park_locked the worker is never `paused`.
    worker *w = ctx->w;
    if (!w->pause_requested.load(std::memory_order_acquire) && !w->abort_requested.load())
        return 0;
    std::unique_lock<qtw::StreamMutex> lk(w->mu);
    return park_locked(w, lk) == WORKER_ABORTED ? 1 : 0;
}

int worker_return(worker_ctx *ctx, void *value, worker_destroy_fn destroy) {
    int rc = check_ctx(ctx);
    if (rc != WORKER_OK) {
        if (destroy) destroy(value);
        return rc;
    }
    worker *w = ctx->w;
    void *old;
    worker_destroy_fn old_destroy;
    {
        std::lock_guard<qtw::StreamMutex> lk(w->mu);
        old = w->result;
        old_destroy = w->result_destroy;
        w->result = value;
        w->result_destroy = destroy;
    }
    if (old_destroy) old_destroy(old);  // last call wins
    return WORKER_OK;
}

int worker_fail(worker_ctx *ctx, int code, const char *fmt, ...) {
    int rc = check_ctx(ctx);
    if (rc != WORKER_OK) return rc;
    va_list ap;
    va_start(ap, fmt);
    std::string msg;
    try {
        msg = vformat(fmt, ap);
        rc = WORKER_OK;
    } catch (const std::bad_alloc &) {
        rc = WORKER_ENOMEM;  // still failed, without its message
    }
    va_end(ap);
    worker *w = ctx->w;
    std::lock_guard<qtw::StreamMutex> lk(w->mu);
    if (!w->failed) {  // the first failure is the cause; later ones follow from it
        w->failed = true;
        w->fail_code = code;
        w->fail_message = std::move(msg);
    }
    return rc;
}

int worker_warn(worker_ctx *ctx, const char *fmt, ...) {
    int rc = check_ctx(ctx);
    if (rc != WORKER_OK) return rc;
    va_list ap;
    va_start(ap, fmt);
    rc = qtw::guarded([&]() -> int {
        return qtw::push_data(ctx->w, text_entry(WORKER_EV_WARNED, vformat(fmt, ap)));
    });
    va_end(ap);
    return rc;
}

int worker_progress(worker_ctx *ctx, long long done, long long total, const char *text) {
    int rc = check_ctx(ctx);
    if (rc != WORKER_OK) return rc;
    if (done < 0 || total < 0) return WORKER_EINVAL;
    return qtw::guarded([&]() -> int {
        Entry e = text ? text_entry(WORKER_EV_PROGRESS, text) : make_entry(WORKER_EV_PROGRESS);
        e.done = done;
        e.total = total;
        return qtw::push_data(ctx->w, std::move(e));
    });
}

int worker_emit(worker_ctx *ctx, const char *name, void *value, worker_destroy_fn destroy) {
    int rc = check_ctx(ctx);
    if (rc == WORKER_OK && !name) rc = WORKER_EINVAL;
    if (rc != WORKER_OK) {
        if (destroy) destroy(value);
        return rc;
    }
    Entry e = make_entry(WORKER_EV_CUSTOM, value, destroy);
    try {
        qtw::fault::check(qtw::fault::Text);
        e.text = std::make_unique<std::string>(name);
    } catch (...) {
        e.release();
        return qtw::status_of_current_exception();
    }
    return qtw::push_data(ctx->w, std::move(e));
}

static FILE *output_of(worker_ctx *ctx, int stream_no) {
    if (check_ctx(ctx) != WORKER_OK) return nullptr;
    try {
        return qtw::open_output(ctx->w, stream_no);
    } catch (...) {
        return nullptr;  // out of memory: as if fopencookie had failed
    }
}

FILE *worker_stdout(worker_ctx *ctx) { return output_of(ctx, 1); }
FILE *worker_stderr(worker_ctx *ctx) { return output_of(ctx, 2); }

}  // extern "C"
