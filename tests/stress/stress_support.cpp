#include "stress_support.h"

#include "../event_order.h"

#include <QCoreApplication>
#include <QThread>

#include <cstdio>
#include <cstdlib>

namespace stress {

namespace {
std::mutex fail_mu;
std::vector<std::string> failure_list;
std::atomic<long> failure_n{0};
std::atomic<long> next_payload_id{1};
constexpr uint32_t kAlive = 0x51a7e11e, kDead = 0xdeadbeef;
}  // namespace

void fail(const std::string &msg) {
    failure_n.fetch_add(1);
    std::lock_guard<std::mutex> lk(fail_mu);
    if (failure_list.size() < 40) failure_list.push_back(msg);
}

void expect_rc(const char *call, int rc, std::initializer_list<int> allowed) {
    for (int a : allowed)
        if (rc == a) return;
    fail(std::string(call) + " returned " + std::to_string(rc) + " (" + worker_strerror(rc) + ")");
}

long failure_count() { return failure_n.load(); }

std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lk(fail_mu);
    return failure_list;
}

const char *const kind_names[K_COUNT] = {"arg", "yielded", "returned", "sent",
                                         "custom", "user_data", "null-valued"};
std::atomic<long> created[K_COUNT], destroyed[K_COUNT], double_destroys{0};

const char *const stat_names[ST_COUNT] = {
    "chaos callbacks", "nested loops", "self-disconnects", "unrefs in callbacks",
    "values taken", "unrefs by threads", "EBUSY starts", "timed out", "scope closes",
    "scope close timeouts", "calls home", "calls home refused", "pipes", "received"
};
std::atomic<long> stats[ST_COUNT];

Payload *make(Kind k, Track *t, int seq) {
    created[k].fetch_add(1, relaxed);
    auto *p = new Payload;
    p->magic = kAlive;
    p->kind = k;
    p->id = next_payload_id.fetch_add(1, relaxed);
    p->seq = seq;
    p->track = t;
    return p;
}

// A second call for the same payload trips ASan (use after free) or, in a
// plain build, most likely the magic check.
void pl_free(void *v) {
    auto *p = static_cast<Payload *>(v);
    if (!p) return fail("pl_free(NULL): a NULL value handed over with pl_free?");
    if (p->magic != kAlive || (unsigned)p->kind >= K_COUNT) {
        double_destroys.fetch_add(1);
        return;
    }
    p->magic = kDead;
    destroyed[p->kind].fetch_add(1, relaxed);
    delete p;
}

void null_free(void *v) {
    if (v) fail("null_free got a non-NULL value");
    destroyed[K_NULL].fetch_add(1, relaxed);
}

int send_null(worker *w) {
    created[K_NULL].fetch_add(1, relaxed);
    return worker_send(w, nullptr, null_free);
}

bool payloads_balanced() {
    for (int k = 0; k < K_COUNT; k++)
        if (created[k].load() != destroyed[k].load()) return false;
    return true;
}

namespace {
struct HomeAsk {
    Track *t;
    int warns, emits;  // delivered by the time fn runs
};
void *home_check(void *arg) {
    auto *a = static_cast<HomeAsk *>(arg);
    if (QThread::currentThread() != QCoreApplication::instance()->thread())
        fail("a call_home function ran off the GUI thread");
    if (a->t->warned != a->warns || (int)a->t->custom_seqs.size() != a->emits)
        fail("a call_home function ran before the events emitted ahead of it were delivered");
    a->t->home_ran++;
    return a;
}
}  // namespace

void call_home_one(worker_ctx *ctx, Track *t, int i) {
    HomeAsk a{t, t->warns_ok.load(), t->emits_ok.load()};
    void *got = nullptr;
    int rc = worker_call_home(ctx, home_check, &a, &got, i % 3 == 0 ? 1 : i % 3 == 1 ? 20 : -1);
    expect_rc("worker_call_home", rc, {WORKER_OK, WORKER_ETIMEDOUT, WORKER_ABORTED, WORKER_EBUSY});
    if (rc == WORKER_OK) {
        t->home_ok++;
        count(ST_CALLED_HOME);
        if (got != &a) fail("worker_call_home returned another result than fn's");
    } else {
        count(ST_CALL_REFUSED);
        if (got) fail("worker_call_home left a result on failure");
    }
}

Watchdog::Watchdog(int seconds, std::function<void()> say)
    : thread_([this, seconds, say] {
          std::unique_lock<std::mutex> lk(mu_);
          if (cv_.wait_for(lk, std::chrono::seconds(seconds), [this] { return done_; })) return;
          say();
          std::fprintf(stderr, "stress: no end after %d s: aborting\n", seconds);
          std::abort();
      }) {}

Watchdog::~Watchdog() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        done_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

// ------------------------------------------------------------------ checks

namespace {

const char *type_name(worker_event_type t) {
    static const char *names[] = {"started", "yielded", "returned", "errored", "warned", "progress",
                                  "paused", "resumed", "aborted", "finished", "custom", "output"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

bool increasing(const std::vector<int> &v) {
    for (size_t i = 1; i < v.size(); i++)
        if (v[i] <= v[i - 1]) return false;
    return true;
}

std::string check_order(const std::vector<worker_event_type> &ev) { return event_order::problem(ev); }

}  // namespace

std::string check_track(const Track &t) {
    const auto &ev = t.events;
    if (!t.start_ok) return ev.empty() && t.runs == 0 ? "" : "events or a run without a start";
    // Its scope was closed before FINISHED: the callbacks stopped there.
    if (t.scope_closed && (ev.empty() || ev.back() != WORKER_EV_FINISHED)) return "";
    std::string bad = check_order(ev);
    if (!bad.empty()) return bad;
    auto outcome = ev[ev.size() - 2];
    if (t.runs == 0 && ev != std::vector<worker_event_type>{WORKER_EV_STARTED, WORKER_EV_ABORTED,
                                                           WORKER_EV_FINISHED})
        return "never ran: expected started, aborted, finished";
    if (t.failed != (outcome == WORKER_EV_ERRORED)) return "worker_fail <-> ERRORED mismatch";
    if (t.saw_abort && !t.failed && outcome != WORKER_EV_ABORTED) return "saw abort but not ABORTED";
    if (t.aborted_code == WORKER_ETIMEDOUT && t.timeout_ms <= 0) return "timed out without a timeout";
    if (!increasing(t.yield_seqs) || !increasing(t.custom_seqs)) return "values out of order";
    // Never dropped, not even after quit: custom events, warnings, output.
    if ((int)t.custom_seqs.size() != t.emits_ok) return "custom events lost";
    if (t.warned != t.warns_ok) return "warnings lost";
    if (t.outputs != t.lines) return "output lines lost";
    if (t.home_ran != t.home_ok) return "call_home: fn ran " + std::to_string(t.home_ran) +
                                       " times, OK returned " + std::to_string(t.home_ok.load());
    if (outcome == WORKER_EV_RETURNED) {  // never quit: nothing but LATEST drops
        if (t.returned_id != t.last_return_id) return "RETURNED carries the wrong value";
        long long lost = t.yields_ok - (long long)t.yield_seqs.size();
        if (t.piped ? !t.yield_seqs.empty() : lost != (t.policy == WORKER_LATEST ? t.dropped : 0))
            return "yields lost: " + std::to_string(lost) + ", dropped " + std::to_string(t.dropped);
    }
    return "";
}

std::string describe(const Track &t) {
    static const char *pol[] = {"BLOCK", "QUEUE", "LATEST"};
    std::string s = "worker #" + std::to_string(t.index) + " (" +
                    (t.generator ? "generator" : "function") + ", " + pol[t.policy] +
                    (t.group >= 0 ? ", group " + std::to_string(t.group) : "") +
                    (t.timeout_ms ? ", timeout " + std::to_string(t.timeout_ms) : "") +
                    ", runs " + std::to_string(t.runs.load()) + (t.failed ? ", failed" : "") +
                    (t.saw_abort ? ", saw abort" : "") + "): ";
    for (auto e : t.events) s += std::string(type_name(e)) + " ";
    return s;
}

}  // namespace stress
