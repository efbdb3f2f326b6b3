// A worker's input: worker_receive (worker side) waits for the oldest value
// sent or piped in; worker_close_input (owner side) ends the input, so that
// receive reports WORKER_EOF once everything before has been received.
// worker_yield's receiving form takes from the same ordered inbox.
#include "worker_p.h"

#include <chrono>

namespace qtw {

bool take_input_locked(worker *w, void **value, worker_destroy_fn *destroy, worker **wake) {
    if (w->inbox.empty()) return false;
    Sent &s = w->inbox.front();
    *value = s.value;
    *destroy = s.destroy;
    if (s.link) link_taken_locked(s.link, s.size, wake);
    w->inbox.pop_front();
    // A burst of input drained: chunks beyond the spares go now, not when
    // the worker is freed (the stream's are freed off the GUI thread; this
    // is the worker's own thread).
    if (w->inbox.garbage_size()) ChunkQueue<Sent>::free_garbage(w->inbox.take_garbage());
    if (w->on_input_taken) w->on_input_taken(w);  // a process's helper tells its parent
    return true;
}

}  // namespace qtw

namespace {

// Waits on pause_cv, which send, pipe, close, pause, resume, quit and a
// timeout all notify: one wake-up for whatever the receiver must look at.
// False once the deadline has passed.
bool wait_for_input(worker *w, std::unique_lock<qtw::StreamMutex> &lk, int timeout_ms,
                    std::chrono::steady_clock::time_point deadline) {
    if (timeout_ms == 0) return false;
    if (timeout_ms > 0 && std::chrono::steady_clock::now() >= deadline) return false;
    w->receive_waiting = true;
    qtw::run_deferred_schedule();  // a RESUMED queued under this lock must reach the GUI
    qtw::pool_blocking_begin();    // a waiting stage must not hold a pool slot its source needs
    if (timeout_ms < 0)
        w->pause_cv.wait(lk);
    else
        w->pause_cv.wait_until(lk, deadline);
    qtw::pool_blocking_end();
    w->receive_waiting = false;
    return true;
}

}  // namespace

extern "C" {

int worker_receive(worker_ctx *ctx, void **value, worker_destroy_fn *destroy, int timeout_ms) {
    int rc = qtw::check_worker_ctx(ctx);
    if (rc != WORKER_OK) return rc;
    if (!value || !destroy) return WORKER_EINVAL;
    *value = nullptr;
    *destroy = nullptr;
    worker *w = ctx->w;
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
    worker *source_to_wake = nullptr;
    {
        qtw::ScheduleAfterUnlock wake;
        std::unique_lock<qtw::StreamMutex> lk(w->mu);
        for (;;) {
            // Quit first, then a pause (parks here, receiving nothing), then input.
            rc = qtw::park_worker_locked(w, lk);
            if (rc != WORKER_OK) break;
            if (qtw::take_input_locked(w, value, destroy, &source_to_wake)) {
                rc = WORKER_RECEIVED;
                break;
            }
            if (w->input_closed) {
                rc = WORKER_EOF;
                break;
            }
            if (!wait_for_input(w, lk, timeout_ms, deadline)) {
                rc = WORKER_ETIMEDOUT;
                break;
            }
        }
    }
    qtw::wake_producer(source_to_wake);
    return rc;
}

int worker_close_input(worker *w) {
    if (!qtw::acquire(w)) return WORKER_EINVAL;
    int rc = WORKER_OK;
    {
        std::lock_guard<qtw::StreamMutex> lk(w->mu);
        if (w->phase == qtw::Phase::Ending || w->phase == qtw::Phase::Done || w->input_closed) {
            rc = WORKER_ESTATE;
        } else {
            w->input_closed = true;
            qtw::wake_receiver_locked(w);
            if (w->poke) w->poke(w);  // a process worker passes it on
        }
    }
    // Nothing its sources yield could be received any more: they stop.
    if (rc == WORKER_OK) qtw::pipe_stop_sources(w);
    qtw::release(w);
    return rc;
}

}  // extern "C"
