#include "harness.h"

#include <climits>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace th {

static std::atomic<long> created{0}, destroyed{0};

int *payload(int v) {
    int *p = static_cast<int *>(std::malloc(sizeof(int)));
    *p = v;
    created.fetch_add(1);
    return p;
}

void payload_free(void *p) {
    destroyed.fetch_add(1);
    std::free(p);
}

long payloads_alive() { return created.load() - destroyed.load(); }
long payloads_destroyed() { return destroyed.load(); }
void reset_payloads() { created = 0; destroyed = 0; }

void expect_payloads_freed() {
    EXPECT_EQ(payloads_alive(), 0);
    pump_until([] { return payloads_alive() <= 0; }, 2000);
}

void slow_payload_free(void *p) {
    nap(100);
    payload_free(p);
}

Recorder::Recorder(worker *w, bool values_are_ints) : ints_(values_are_ints) {
    for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
        EXPECT_GT(worker_connect(w, (worker_event_type)t, &Recorder::cb, this, nullptr), 0);
}

void Recorder::cb(worker_event *ev, void *self) {
    auto *r = static_cast<Recorder *>(self);
    Rec rec;
    rec.type = ev->type;
    rec.raw = ev->value;
    if (ev->value && r->ints_ &&
        (ev->type == WORKER_EV_YIELDED || ev->type == WORKER_EV_RETURNED ||
         ev->type == WORKER_EV_CUSTOM)) {
        rec.has_value = true;
        rec.value = *static_cast<int *>(ev->value);
    }
    rec.code = ev->code;
    if (ev->message) rec.message = ev->message;
    if (ev->name) rec.name = ev->name;
    rec.done = ev->done;
    rec.total = ev->total;
    r->events_.push_back(rec);
    for (auto &h : r->hooks_)
        if (h.first == ev->type) h.second(ev);
}

void Recorder::on(worker_event_type t, std::function<void(worker_event *)> f) {
    hooks_.emplace_back(t, std::move(f));
}

std::vector<worker_event_type> Recorder::types() const {
    std::vector<worker_event_type> out;
    for (auto &e : events_) out.push_back(e.type);
    return out;
}

std::vector<int> Recorder::values(worker_event_type t) const {
    std::vector<int> out;
    for (auto &e : events_)
        if (e.type == t && e.has_value) out.push_back(e.value);
    return out;
}

int Recorder::count(worker_event_type t) const {
    int n = 0;
    for (auto &e : events_) n += e.type == t;
    return n;
}

const Rec &Recorder::first(worker_event_type t) const {
    for (auto &e : events_)
        if (e.type == t) return e;
    static const Rec none{};
    ADD_FAILURE() << "no " << type_name(t) << " event";
    return none;
}

worker_event_type Recorder::outcome() const {
    return events_.size() >= 2 ? events_[events_.size() - 2].type : WORKER_EV_STARTED;
}

bool Recorder::wait_finished(int timeout_ms) {
    bool ok = pump_until([this] { return finished(); }, timeout_ms);
    if (ok) expect_valid_order(types());
    return ok;
}

bool Recorder::wait_for(worker_event_type t, int n, int timeout_ms) {
    return pump_until([this, t, n] { return count(t) >= n; }, timeout_ms);
}

// ---- Job

static void run_body(worker_ctx *ctx, void *body) { (*static_cast<Body *>(body))(ctx); }
static void free_body(void *body) { delete static_cast<Body *>(body); }
static void set_flag(worker_event *, void *flag) { *static_cast<bool *>(flag) = true; }

Job::Job(Body body, const worker_options *o, bool record) {
    init(run_body, new Body(std::move(body)), free_body, o, record);
}

Job::Job(worker_fn fn, void *arg, const worker_options *o, bool record) {
    init(fn, arg, nullptr, o, record);
}

void Job::init(worker_fn fn, void *arg, worker_destroy_fn arg_destroy,
               const worker_options *o, bool record) {
    w = worker_create(fn, arg, arg_destroy, o);
    if (!w) return;
    EXPECT_GT(worker_connect(w, WORKER_EV_FINISHED, set_flag, &done_, nullptr), 0);
    if (record) rec = std::make_unique<Recorder>(w);
}

int Job::start() {
    int rc = worker_start(w);
    if (rc == WORKER_OK) started_ = true;  // a refused start emits nothing to wait for
    return rc;
}

bool Job::wait_done(int timeout_ms) {
    return pump_until([this] { return done_; }, timeout_ms);
}

void Job::close() {
    if (!w) return;
    worker_quit(w);
    if (started_) {
        EXPECT_TRUE(rec ? rec->wait_finished() : wait_done()) << "worker never finished";
    }
    worker_unref(w);
    w = nullptr;
}

bool pump_until(const std::function<bool()> &pred, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        worker_app_process_events(5);
    }
    return true;
}

void pump_for(int ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) worker_app_process_events(5);
}

bool wait_no_pump(const std::function<bool()> &pred, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        nap();
    }
    return true;
}

bool wait_no_pump(const std::atomic<bool> &flag, int timeout_ms) {
    return wait_no_pump([&flag] { return flag.load(); }, timeout_ms);
}

void nap(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

struct HangGuard::State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread t;
};

HangGuard::HangGuard(const char *what, int timeout_ms) : s_(new State) {
    State *s = s_.get();
    s->t = std::thread([s, what, timeout_ms] {
        std::unique_lock<std::mutex> lk(s->mu);
        if (s->cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [s] { return s->done; }))
            return;
        std::fprintf(stderr, "HANG: %s (still blocked after %d ms)\n", what, timeout_ms);
        std::fflush(stderr);
        std::_Exit(3);
    });
}

HangGuard::~HangGuard() {
    {
        std::lock_guard<std::mutex> lk(s_->mu);
        s_->done = true;
    }
    s_->cv.notify_all();
    s_->t.join();
}

long resident_bytes() {
    long pages = 0, resident = 0;
    if (FILE *f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

static bool is_outcome(worker_event_type t) {
    return t == WORKER_EV_RETURNED || t == WORKER_EV_ERRORED || t == WORKER_EV_ABORTED;
}

void expect_valid_order(const std::vector<worker_event_type> &types) {
    ASSERT_GE(types.size(), 3u) << "at least started, an outcome, finished";
    EXPECT_EQ(types.front(), WORKER_EV_STARTED);
    EXPECT_EQ(types.back(), WORKER_EV_FINISHED);
    EXPECT_TRUE(is_outcome(types[types.size() - 2]))
        << "outcome right before finished, got " << type_name(types[types.size() - 2]);
    int started = 0, outcomes = 0, finished = 0;
    for (auto t : types) {
        started += t == WORKER_EV_STARTED;
        outcomes += is_outcome(t);
        finished += t == WORKER_EV_FINISHED;
    }
    EXPECT_EQ(started, 1);
    EXPECT_EQ(outcomes, 1);
    EXPECT_EQ(finished, 1);
}

const char *type_name(worker_event_type t) {
    static const char *names[] = {"started", "yielded", "returned", "errored",
                                  "warned", "progress", "paused", "resumed",
                                  "aborted", "finished", "custom", "output"};
    return (int)t >= 0 && (int)t <= WORKER_EV_OUTPUT ? names[t] : "?";
}

worker_options policy_options(worker_policy p, size_t capacity, const char *name) {
    worker_options o;
    worker_options_init(&o);
    o.policy = p;
    o.capacity = capacity;
    o.name = name;
    return o;
}

std::string process_module(const char *name) {
    if (const char *dir = std::getenv("QTW_PROCESS_MODULES")) return std::string(dir) + "/" + name;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string self = n > 0 ? std::string(exe, (size_t)n) : std::string("./x");
    return self.substr(0, self.rfind('/')) + "/process_modules/" + name;
}

}  // namespace th
