// The interpreter's scopes (issue 18): workers created into open, new and
// closed scopes; closes from the GUI thread, from inside fuzz callbacks and
// from another thread while the GUI thread delivers. After each close: the
// documented status, no user_data of a pinned member left, every started
// member's function returned when it says OK; from then on no callback of a
// member may begin (fuzz_worker.cpp checks in each callback).
#include "fuzz_internal.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace fz {

namespace {

long n_scoped = 0, n_closes = 0, n_thread_closes = 0, n_cb_closes = 0, n_timed_out = 0;

// Moves s from the open scopes to the closed ones and marks the workers its
// close takes (ours, not known to be freed) before it begins.
std::vector<WT *> begin_close(worker_scope *s) {
    auto &open = P->open_scopes;
    open.erase(std::find(open.begin(), open.end(), s));
    P->closed_scopes.push_back(s);
    std::vector<WT *> ms;
    for (auto &t : P->wts)
        if (t->scope == s && !t->freed && !t->closed) {
            t->closed = true;
            ms.push_back(t.get());
        }
    return ms;
}

// After the close returned rc: the statuses documented, no user_data of a
// member left but those of the callbacks running below us on this stack
// (a released member may be being freed elsewhere: only pinned ones are
// counted), and with OK every started member's function has returned.
void end_close(const std::vector<WT *> &ms, int rc) {
    expect("scope_close", rc, {WORKER_OK, WORKER_ETIMEDOUT});
    n_closes++;
    n_timed_out += rc == WORKER_ETIMEDOUT;
    for (WT *t : ms) {
        t->close_returned = true;
        long running = std::count(P->cb_stack.begin(), P->cb_stack.end(), t);
        if (t->refs == 0 && !running) continue;
        if (t->live_ud.load() > running) report("scope_close returned with user_data left");
        if (!t->recorder_gone) report("scope_close returned with the recorder connected");
        if (rc != WORKER_OK || !t->started) continue;
        expect("await(after scope_close OK)", worker_await(t->w, 0), {WORKER_OK});
        t->ended = true;
    }
}

}  // namespace

void close_scope(worker_scope *s, int timeout_ms) {
    auto ms = begin_close(s);
    end_close(ms, worker_scope_close(s, timeout_ms));
}

namespace {

// From another thread while this one (the home thread) delivers: a
// callback running then has returned when the close returns (end_close).
void close_from_thread(worker_scope *s, int timeout_ms) {
    auto ms = begin_close(s);
    n_thread_closes++;
    for (WT *t : ms) t->thread_closing = true;
    P->member_cb_entered = P->closer_began = false;
    std::atomic<int> rc{1};
    std::thread closer([&] {
        // Preferably while one of their callbacks runs (fuzz_worker.cpp: Linger).
        for (int i = 0; i < 100 && !P->member_cb_entered; i++)
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        P->closer_began = true;
        int r = worker_scope_close(s, timeout_ms);
        for (WT *t : ms) t->close_returned = true;  // from here no callback may begin
        rc = r;
    });
    while (rc.load() == 1) worker_app_process_events(1);
    closer.join();
    end_close(ms, rc.load());
}

}  // namespace

// An open scope (a new one sometimes), or a closed (freed) one.
worker_scope *pick_scope(In &in) {
    auto &open = P->open_scopes, &closed = P->closed_scopes;
    n_scoped++;
    if ((open.empty() || in.pick(4) == 0) && open.size() < 4) {
        worker_scope *s = worker_scope_new(in.pick(2) ? "fz" : nullptr);
        if (!s) return report("worker_scope_new failed"), nullptr;
        open.push_back(s);
        auto reused = std::find(closed.begin(), closed.end(), s);  // a freed address, reused
        if (reused != closed.end()) closed.erase(reused);
        return s;
    }
    if (!closed.empty() && in.pick(4) == 0) return closed[in.pick((unsigned)closed.size())];
    return open.empty() ? nullptr : open[in.pick((unsigned)open.size())];
}

// NULL, a closed scope again, an open one from here (bounded wait) or from
// another thread.
void op_scope_close(In &in) {
    unsigned r = in.pick(6);
    if (r == 0) return expect("scope_close(NULL)", worker_scope_close(nullptr, 0), {WORKER_EINVAL});
    auto &open = P->open_scopes, &closed = P->closed_scopes;
    if (r == 1 && !closed.empty())
        return expect("scope_close(again)", worker_scope_close(closed[in.pick((unsigned)closed.size())], 0),
                      {WORKER_EINVAL});
    if (open.empty()) return;
    worker_scope *s = open[in.pick((unsigned)open.size())];
    static const int waits[] = {0, 1, 5, 20};
    if (r == 2) return close_from_thread(s, waits[in.pick(4)]);
    close_scope(s, (int)in.pick(4));
}

// Its own scope if open, else another open one, from inside its callback.
void close_from_callback(In &in, WT *from) {
    auto &open = P->open_scopes;
    if (open.empty()) return;
    auto own = std::find(open.begin(), open.end(), from->scope);
    n_cb_closes++;
    close_scope(own != open.end() ? *own : open[in.pick((unsigned)open.size())], (int)in.pick(2));
}

std::string scope_summary() {
    return std::to_string(n_scoped) + " creates into scopes, " + std::to_string(n_closes) +
           " scope closes (" + std::to_string(n_thread_closes) + " from another thread, " +
           std::to_string(n_cb_closes) + " from callbacks, " + std::to_string(n_timed_out) + " ETIMEDOUT)";
}

}  // namespace fz
