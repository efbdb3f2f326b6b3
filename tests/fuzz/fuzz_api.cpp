// The interpreter's owner half: handles, owner-side calls, the program loop,
// the cleanup and the checks after it.
//
// Handles are called in one of three states, each with its own expected
// statuses (fuzz_internal.h):
//  - held: this program owns a reference — precise expectations;
//  - released: we dropped our last reference but the worker may still be
//    allocated (running until FINISHED): the valid codes or EINVAL;
//  - dead: NULL, a junk pointer, or a freed worker. A freed address can be
//    reused by a newer worker, and then the registry rightly accepts it. So a
//    freed handle is only called while NO worker was created since it was
//    freed (a sentinel user_data destroy tells when; workers are only created
//    on this thread), and then it must be rejected (EINVAL) — no crash, no
//    touch of freed memory (ASan watches).
#include "fuzz_internal.h"

#include "../event_order.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace fz {

namespace {
Reporter reporter = nullptr;
constexpr int kMaxWorkers = 12;
long n_workers = 0, n_process = 0, n_started = 0, n_outcome[3] = {0, 0, 0};  // for summary()
long n_pipes = 0;
}  // namespace

Prog *P = nullptr;

void report(const std::string &what) {
    if (reporter) return reporter(what);
    std::fprintf(stderr, "qtworker fuzz: %s\n", what.c_str());
    std::abort();
}

void expect(const char *call, long rc, std::initializer_list<long> allowed) {
    for (long a : allowed)
        if (rc == a) return;
    report(std::string(call) + " returned " + std::to_string(rc) + " (" +
           worker_strerror((int)rc) + ")");
}

namespace {

WT *random_wt(In &in, bool held) {
    std::vector<WT *> c;
    for (auto &t : P->wts)  // a released worker of a closed scope is never called again
        if ((t->refs > 0) == held && (held || !t->closed)) c.push_back(t.get());
    return c.empty() ? nullptr : c[in.pick((unsigned)c.size())];
}

H pick_handle(In &in) {
    static const uintptr_t junk[] = {1, 0x10, (uintptr_t)&kStatic, UINTPTR_MAX & ~(uintptr_t)7,
                                     UINTPTR_MAX};
    unsigned r = in.pick(10);
    if (r == 0) return {nullptr, nullptr, H_DEAD};
    if (r == 1) return {reinterpret_cast<worker *>(junk[in.pick(5)]), nullptr, H_DEAD};
    if (r <= 3) {
        if (WT *t = random_wt(in, false)) {
            if (!t->freed) return {t->w, t, H_RELEASED};
            if (t->freed_epoch == P->creates) return {t->w, t, H_DEAD};
        }
    }
    WT *t = random_wt(in, true);
    return t ? H{t->w, t, H_HELD} : H{nullptr, nullptr, H_DEAD};
}

// pause / resume / toggle / quit / send: OK before start and while running,
// ESTATE once the function has ended.
std::initializer_list<long> control_codes(const H &h) {
    static const std::initializer_list<long> dead{WORKER_EINVAL},
        released{WORKER_OK, WORKER_ESTATE, WORKER_EINVAL}, ok{WORKER_OK}, state{WORKER_ESTATE},
        either{WORKER_OK, WORKER_ESTATE};
    if (h.k == H_DEAD) return dead;
    if (h.k == H_RELEASED) return released;
    if (!h.t->started) return ok;
    return h.t->ended ? state : either;
}

// send: as control_codes, and ESTATE once its input may have closed or its
// scope's close began.
std::initializer_list<long> send_codes(const H &h) {
    static const std::initializer_list<long> either{WORKER_OK, WORKER_ESTATE};
    if (h.k == H_HELD && !h.t->ended && (h.t->input_may_close || scope_closing(*h.t))) return either;
    return control_codes(h);
}

// ------------------------------------------------------------- owner side

// Fuzzed worker_options into *o (o->name points into t); false if
// worker_create must refuse them.
bool make_options(In &in, WT *t, worker_options *o) {
    static const long long totals[] = {0, 3, -1, LLONG_MAX, LLONG_MIN};
    static const long long timeouts[] = {0, 0, 1, 5, -1, LLONG_MAX, 1LL << 40};
    static const size_t caps[] = {0, 1, 2, 5, WORKER_MAX_CAPACITY, (size_t)WORKER_MAX_CAPACITY + 1,
                                  SIZE_MAX};
    static const int policies[] = {WORKER_BLOCK, WORKER_QUEUE, WORKER_LATEST, -1, 3, 77};
    static const char *const groups[] = {nullptr, nullptr, "ga", "gb", ""};
    int policy = policies[in.pick(6)];
    fz_set_policy(o, policy);
    o->capacity = caps[in.pick(7)];
    o->progress_total = totals[in.pick(5)];
    t->named = in.pick(2);
    t->name = in.pick(2) ? "fz" : "";
    o->name = t->named ? t->name.c_str() : nullptr;
    o->progress_desc = in.pick(2) ? "desc" : nullptr;
    o->group = groups[in.pick(5)];
    o->group_exclusive = (int)in.pick(3) - 1;  // any nonzero means yes
    o->timeout_ms = timeouts[in.pick(7)];
    static const size_t budgets[] = {0, 0, 1, 4096, SIZE_MAX};
    o->capacity_bytes = t->capacity_bytes = budgets[in.pick(5)];
    t->exclusive = o->group && o->group_exclusive;
    t->timeout_ms = o->timeout_ms;
    bool valid = policy >= WORKER_BLOCK && policy <= WORKER_LATEST &&
                 o->capacity <= WORKER_MAX_CAPACITY && o->progress_total >= 0 &&
                 o->timeout_ms >= 0 && (!o->group || *o->group) &&
                 !(policy == WORKER_QUEUE && o->capacity_bytes);
    if (valid) t->policy = o->policy;
    return valid;
}

// After a create: NULL and EINVAL exactly when the input was bad; else the
// program owns the worker, with a recorder whose user_data tells when it is freed.
void adopt(std::unique_ptr<WT> t, worker *w, bool valid, const char *call) {
    bool scope_ok = !t->scope || std::count(P->open_scopes.begin(), P->open_scopes.end(), t->scope);
    if (!valid || !scope_ok) {
        if (w) report(std::string(call) + " accepted bad input or a closed scope");
        expect("worker_last_error", worker_last_error(), {valid ? WORKER_ESTATE : WORKER_EINVAL});
        return;
    }
    if (!w) return report(std::string(call) + " failed on valid input: " + std::to_string(worker_last_error()));
    expect("worker_last_error", worker_last_error(), {WORKER_OK});
    P->creates++;
    t->w = w;
    t->refs = 1;
    for (int ty = WORKER_EV_STARTED; ty <= WORKER_EV_OUTPUT; ty++)
        if (worker_connect(w, (worker_event_type)ty, record, t.get(),
                           ty == WORKER_EV_STARTED ? sentinel : nullptr) <= 0)
            report("recorder connect failed");
    P->wts.push_back(std::move(t));
}

// A process worker whose module does not exist (no module to build, and
// its values would have to be worker_bytes): it must end ERRORED, cleanly.
void create_process(In &in, std::unique_ptr<WT> t, const worker_options *o, bool opts_ok) {
    static const char *const modules[] = {nullptr, "", "/nonexistent/qtw_fuzz.so", "nowhere.so"};
    static const char *const symbols[] = {nullptr, "", "f", "f"};
    const char *module = modules[in.pick(4)], *symbol = symbols[in.pick(4)];
    bool null_arg = in.pick(2), with_po = in.pick(2);
    size_t size = in.pick(3);
    worker_process_options po;
    worker_process_options_init(nullptr);  // must be safe
    worker_process_options_init(&po);
    if (po.kill_grace_ms != WORKER_DEFAULT_KILL_GRACE_MS || po.stderr_lines < 0)
        report("worker_process_options_init defaults");
    if (with_po) {
        po.kill_grace_ms = (int)in.pick(3) * 20 - 1;
        po.stderr_lines = (int)in.pick(3) - 1;
    }
    bool valid = opts_ok && module && *module && symbol && *symbol && !(null_arg && size) &&
                 po.kill_grace_ms >= 0 && po.stderr_lines >= 0;
    t->process = true;
    worker *w = worker_create_process(module, symbol, null_arg ? nullptr : "abc", size, o,
                                      with_po ? &po : nullptr);
    adopt(std::move(t), w, valid, "worker_create_process");
}

void op_create(In &in) {
    if ((int)P->wts.size() >= kMaxWorkers) return;
    auto t = std::make_unique<WT>();
    worker_options o;
    worker_options_init(&o);
    bool with_opts = in.pick(4) != 0;
    bool opts_ok = !with_opts || make_options(in, t.get(), &o);
    if (with_opts && in.pick(2) == 0) o.scope = t->scope = pick_scope(in);
    if (in.pick(16) == 0) return create_process(in, std::move(t), with_opts ? &o : nullptr, opts_ok);
    bool has_fn = in.pick(8) != 0;
    Obj *arg = obj(O_ARG, t.get());
    for (unsigned n = in.pick(48); n > 0 && !in.empty(); n--) arg->ops.push_back((uint8_t)in.u8());
    Value v = watch_obj(arg);
    worker *w = worker_create(has_fn ? body : nullptr, arg, obj_free, with_opts ? &o : nullptr);
    settle("worker_create", v, !w);
    adopt(std::move(t), w, has_fn && opts_ok, "worker_create");
}

void op_query(const H &h) {
    int running = worker_is_running(h.w), paused = worker_is_paused(h.w);
    const char *name = worker_name(h.w);
    long long dropped = worker_dropped(h.w);
    long pid = worker_process_id(h.w);
    size_t entries = 1, bytes = 1;
    int backlog = worker_backlog(h.w, &entries, &bytes);
    expect("worker_backlog", backlog, {h.k == H_DEAD ? WORKER_EINVAL : WORKER_OK});
    if (backlog != WORKER_OK && entries + bytes) report("worker_backlog: outputs not zeroed");
    if (h.k == H_HELD && !h.t->started && entries + bytes) report("backlog of an unstarted worker");
    if (h.k == H_DEAD || (h.k == H_HELD && !h.t->process)) expect("worker_process_id", pid, {WORKER_EINVAL});
    if (h.k == H_HELD && h.t->process && pid < 0) report("worker_process_id of a process worker < 0");
    if (h.k == H_DEAD) {
        expect("is_running(dead)", running, {0});
        expect("is_paused(dead)", paused, {0});
        if (name || dropped) report("name/dropped of a dead handle");
        return;
    }
    expect("is_running", running, {0, 1});
    expect("is_paused", paused, {0, 1});
    if (dropped < 0) report("worker_dropped < 0");
    if (h.k == H_RELEASED) return;
    if (!h.t->started || h.t->ended) {
        expect("is_running(idle)", running, {0});
        expect("is_paused(idle)", paused, {0});
    }
    if (h.t->policy != WORKER_LATEST && dropped) report("dropped yields without LATEST");
    if (!name) return report("worker_name NULL for a held worker");
    if (h.t->named ? h.t->name != name : std::strncmp(name, "worker-", 7) != 0)
        report(std::string("worker_name: ") + name);
}

void op_list(In &in) {
    static const int maxes[] = {-1, 0, 2, 50};
    worker *out[50];
    int max = maxes[in.pick(4)];
    bool null_out = in.pick(4) == 0;
    int n = worker_list(null_out ? nullptr : out, max);
    if (max < 0 || (max > 0 && null_out)) return expect("worker_list(bad)", n, {WORKER_EINVAL});
    if (n < 0 || n > (max ? max : kMaxWorkers)) return report("worker_list returned " + std::to_string(n));
    for (int i = 0; i < (max ? n : 0); i++) {
        WT *found = nullptr;
        for (auto &t : P->wts)
            if (t->w == out[i] && !t->freed) found = t.get();
        if (!found) {
            report("worker_list returned a worker this program does not know");
            continue;
        }
        found->refs++;  // a new reference: ours now
    }
}

void op_worker_side_thread(In &in) {
    uint8_t bytes[8];
    for (auto &b : bytes) b = (uint8_t)in.u8();
    std::thread([&bytes] {
        In tin{bytes + 1, sizeof bytes - 1};
        worker_side_misuse(tin, nullptr, bytes[0] & 1);
    }).join();
}

void op_exec(In &in) {
    if (in.pick(4)) return;  // rare: the exit hook quits every live worker
    worker_set_exit_timeout((int)in.pick(3) * 50);
    int code = (int)in.pick(3);
    worker_app_quit(code);
    expect("worker_app_exec", worker_app_exec(), {code});
}

// worker_bytes: zero-filled, data NULL exactly when empty, copies equal,
// shared-memory sizes included; free(NULL) ignored.
void op_bytes(In &in) {
    size_t size = in.pick(4) ? in.pick(100) : WORKER_BYTES_SHARED_MIN + in.pick(100);
    worker_bytes *b = worker_bytes_new(size);
    if (!b) return report("worker_bytes_new failed");
    if (b->size != size || (size == 0) != (b->data == nullptr)) report("worker_bytes_new: size/data");
    for (size_t i = 0; i < size; i++)
        if (b->data[i]) return report("worker_bytes_new: not zero-filled");
    if (size) std::memset(b->data, 0x5a, size);
    bool whole = in.pick(2);  // or an empty copy, from NULL or not
    worker_bytes *c = worker_bytes_copy(whole || in.pick(2) ? b->data : nullptr, whole ? size : 0);
    if (!c || (c->size && (c->size != size || std::memcmp(c->data, b->data, size) != 0)))
        report("worker_bytes_copy");
    worker_bytes_free(c);
    worker_bytes_free(b);
    worker_bytes_free(nullptr);
}

void op_misc(In &in) {
    switch (in.pick(7)) {
    case 6: op_bytes(in); break;
    case 0: {
        const char *s = worker_strerror((int)in.i64());
        if (!s || !*s) report("worker_strerror gave no text");
        break;
    }
    case 1:
        if (worker_version() != QTWORKER_VERSION_HEX ||
            std::strcmp(worker_version_string(), QTWORKER_VERSION_STRING) != 0)
            report("version mismatch");
        break;
    case 2: {
        worker_options_init(nullptr);
        worker_options o;
        std::memset(&o, 0xab, sizeof o);
        worker_options_init(&o);
        if (o.name || o.policy != WORKER_BLOCK || o.capacity == 0 || o.progress_total ||
            o.progress_desc || o.group || o.group_exclusive || o.timeout_ms)
            report("worker_options_init defaults");
        break;
    }
    case 3: if (worker_event_take(nullptr)) report("worker_event_take(NULL)"); break;
    case 4: worker_set_error_handler(in.pick(2) ? count_error : nullptr, nullptr); break;
    default: expect("worker_app_init(again)", worker_app_init(nullptr, nullptr), {WORKER_OK}); break;
    }
}

void op_start(const H &h) {
    int rc = worker_start(h.w);
    if (h.k == H_DEAD)
        expect("start(dead)", rc, {WORKER_EINVAL});
    else if (h.k == H_RELEASED && h.t->input_may_close)  // a pipe's link may keep it, unstarted
        expect("start(released sink)", rc, {WORKER_OK, WORKER_ESTATE, WORKER_EINVAL});
    else if (h.k == H_RELEASED)  // alive without owners: started (else it was freed)
        expect("start(released)", rc, {WORKER_ESTATE, WORKER_EINVAL});
    else if (h.t->started || h.t->closed)
        expect(h.t->started ? "start(again)" : "start(closed scope)", rc, {WORKER_ESTATE});
    else if (h.t->exclusive)
        expect("start(exclusive)", rc, {WORKER_OK, WORKER_EBUSY});
    else
        expect("start", rc, {WORKER_OK});
    if (rc == WORKER_OK && h.t) h.t->started = true;
}

void op_disconnect(In &in, const H &h) {
    static const long unknown[] = {0, -1, LONG_MIN, LONG_MAX, 1000000};  // never a real id
    bool known = h.k != H_DEAD && !h.t->conns.empty() && in.pick(2);
    long id = unknown[in.pick(5)];
    if (known) {
        size_t i = in.pick((unsigned)h.t->conns.size());
        id = h.t->conns[i];
        h.t->conns.erase(h.t->conns.begin() + (long)i);
    }
    int rc = worker_disconnect(h.w, id);
    if (known && h.k == H_HELD) expect("disconnect", rc, {h.t->closed ? WORKER_EINVAL : WORKER_OK});
    else expect("disconnect", rc, {known ? WORKER_OK : WORKER_EINVAL, WORKER_EINVAL});
}

// Bounded unless the function is known to have ended.
void op_await(In &in, const H &h) {
    bool ended = h.k == H_HELD && h.t->ended;
    int ms = ended && in.pick(2) ? -1 : (int)in.pick(4);
    int rc = worker_await(h.w, ms);
    if (h.k == H_DEAD) expect("await(dead)", rc, {WORKER_EINVAL});
    else if (h.k == H_RELEASED && h.t->input_may_close)  // unstarted, kept by a pipe's link
        expect("await(released sink)", rc, {WORKER_OK, WORKER_ETIMEDOUT, WORKER_EINVAL, WORKER_ESTATE});
    else if (h.k == H_RELEASED) expect("await", rc, {WORKER_OK, WORKER_ETIMEDOUT, WORKER_EINVAL});
    else if (!h.t->started) expect("await(unstarted)", rc, {WORKER_ESTATE});
    else if (ended) expect("await(ended)", rc, {WORKER_OK});
    else expect("await", rc, {WORKER_OK, WORKER_ETIMEDOUT});
    if (rc == WORKER_OK && h.k == H_HELD) h.t->ended = true;
}

// One owner-side call on a picked handle.
void op_handle(In &in, unsigned op) {
    H h = pick_handle(in);
    switch (op) {
    case 0: {
        worker *r = worker_ref(h.w);
        if (h.k == H_DEAD && r) report("worker_ref of a dead handle");
        if (h.k != H_DEAD && r && r != h.w) report("worker_ref returned another pointer");
        if (h.k == H_HELD && !r) report("worker_ref of a held worker failed");
        if (r && h.t) h.t->refs++;
        break;
    }
    case 1:  // what we hold; on released and dead handles it must be ignored
        if (h.k == H_HELD) h.t->refs--;
        worker_unref(h.w);
        break;
    case 2: op_start(h); break;
    case 3: {
        Value v = make_send_value(in, h.t);
        int rc = worker_send(h.w, v.v, v.d);
        expect("send", rc, send_codes(h));
        settle("send", v, rc != WORKER_OK);
        break;
    }
    case 4: expect("pause", worker_pause(h.w), control_codes(h)); break;
    case 5: expect("resume", worker_resume(h.w), control_codes(h)); break;
    case 6: expect("toggle", worker_toggle_pause(h.w), control_codes(h)); break;
    case 7: {
        int rc = worker_quit(h.w);
        expect("quit", rc, control_codes(h));
        if (rc == WORKER_OK && h.k == H_HELD && !h.t->started) h.t->quit_before_start = true;
        break;
    }
    case 8: connect_one(in, h, h.k == H_HELD); break;
    case 9: op_disconnect(in, h); break;
    case 10: op_query(h); break;
    default: op_await(in, h); break;
    }
}

void op_close_input(In &in) {
    H h = pick_handle(in);
    if (h.t && h.k != H_DEAD) h.t->input_may_close = true;
    int rc = worker_close_input(h.w);
    if (h.k == H_DEAD) expect("close_input(dead)", rc, {WORKER_EINVAL});
    else if (h.k == H_RELEASED) expect("close_input", rc, {WORKER_OK, WORKER_ESTATE, WORKER_EINVAL});
    else expect("close_input", rc, {WORKER_OK, WORKER_ESTATE});  // ESTATE: closed or ended
}

// worker_pipe between two picked handles. Loops and started sources are
// refused; a loop through a source that has ended is no loop any more.
void op_pipe(In &in) {
    H from = pick_handle(in), to = pick_handle(in);
    // A process sink takes worker_bytes only; thread bodies yield other values.
    if (to.t && to.t->process && !(from.t && from.t->process)) return;
    if (to.t && to.k != H_DEAD && from.k != H_DEAD) to.t->input_may_close = true;
    int rc = worker_pipe(from.w, to.w);
    if (from.k == H_DEAD || to.k == H_DEAD || from.w == to.w)
        expect("pipe(dead/self)", rc, {WORKER_EINVAL});
    else if (from.k == H_RELEASED || to.k == H_RELEASED)
        expect("pipe(released)", rc, {WORKER_OK, WORKER_ESTATE, WORKER_EINVAL});
    else if (from.t->started || from.t->piped)
        expect("pipe(started/piped)", rc, {WORKER_ESTATE, WORKER_EINVAL});
    else
        expect("pipe", rc, {WORKER_OK, WORKER_ESTATE, WORKER_EINVAL});
    if (rc == WORKER_OK && from.t) from.t->piped = true;
    n_pipes += rc == WORKER_OK;
}

void step(In &in) {
    unsigned op = in.pick(27);
    if (op < 12) return op_handle(in, op);
    switch (op) {
    case 12: case 13: op_create(in); break;
    case 14:
        expect("process_events", worker_app_process_events((int)in.pick(4) - 1),
               {WORKER_OK, WORKER_EINVAL});
        break;
    case 15: if (worker_quit_all() < 0) report("worker_quit_all < 0"); break;
    case 16: expect("await_all", worker_await_all((int)in.pick(4)), {WORKER_OK, WORKER_ETIMEDOUT}); break;
    case 17: if (worker_live_count() < 0) report("worker_live_count < 0"); break;
    case 18: op_list(in); break;
    case 19: worker_side_misuse(in, nullptr, in.pick(3) == 0); break;
    case 20: op_worker_side_thread(in); break;
    case 21: op_exec(in); break;
    case 22: op_misc(in); break;
    case 23: op_scope_close(in); break;
    case 25: op_close_input(in); break;
    case 26: op_pipe(in); break;
    default: worker_set_exit_timeout((int)(int8_t)in.u8()); break;
    }
}

// ----------------------------------------------------------------- checks

std::string check_order(const WT &t) {
    const auto &ev = t.events;
    if (t.closed && !t.started && (t.ran || !ev.empty())) return "an unstarted worker of a closed scope ran";
    if (t.closed && (ev.empty() || ev.back() != WORKER_EV_FINISHED)) {
        // Its callbacks stopped at the close: what came before is in order.
        if (!ev.empty() && ev.front() != WORKER_EV_STARTED) return "closed: not STARTED first";
        if (std::count_if(ev.begin(), ev.end(), event_order::is_outcome) > 1) return "closed: two outcomes";
        return "";
    }
    if (!t.started) return ev.empty() && !t.ran ? "" : "events or a run without a start";
    if (t.quit_before_start &&
        (t.ran || ev != std::vector<worker_event_type>{WORKER_EV_STARTED, WORKER_EV_ABORTED,
                                                       WORKER_EV_FINISHED}))
        return "quit before start: expected started, aborted, finished without running";
    std::string bad = event_order::problem(ev);
    if (!bad.empty()) return bad;
    // Every program ends within seconds: a timeout of hours never fires.
    if (t.aborted_code == WORKER_ETIMEDOUT && (t.timeout_ms <= 0 || t.timeout_ms >= 3600000))
        return "ABORTED by a timeout of " + std::to_string(t.timeout_ms) + " ms";
    return "";
}

// Workers of a closed scope do not tell (their sentinel went with the
// close): the registry does, and the leak checkers.
bool all_freed() {
    for (auto &t : P->wts)
        if (!t->freed && !t->closed) return false;
    return worker_live_count() == 0;
}

bool balanced() {
    for (int k = 0; k < O_KINDS; k++)
        if (created[k] != destroyed[k]) return false;
    return null_created == null_destroyed;
}

bool pump_until(bool (*pred)(), int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        worker_app_process_events(2);
    }
    return true;
}

// Quit everything, drop every reference, wait until every worker is freed.
bool cleanup() {
    while (!P->open_scopes.empty()) close_scope(P->open_scopes.back(), 0);
    worker_quit_all();
    for (auto &t : P->wts)
        for (; t->refs > 0; t->refs--) worker_unref(t->w);
    if (!pump_until(all_freed, 20000)) {
        std::string which;
        for (auto &t : P->wts)
            if (!t->freed)
                which += " [" + std::to_string(t->events.size()) + " events" +
                         (t->started ? "" : ", never started") + (t->ran ? ", ran" : "") + "]";
        report("cleanup hung: workers never freed:" + which);
        return false;
    }
    pump_until(balanced, 5000);  // a destroy may still be under way on another thread
    for (auto &t : P->wts) {
        std::string why = check_order(*t);
        if (!why.empty()) report(why);
        n_workers++;
        n_process += t->process;
        n_started += t->started;
        if (t->events.size() >= 2) {
            auto o = t->events[t->events.size() - 2];
            n_outcome[o == WORKER_EV_RETURNED ? 0 : o == WORKER_EV_ERRORED ? 1 : 2]++;
        }
    }
    static const char *names[O_KINDS] = {"values", "args", "user_data"};
    for (int k = 0; k < O_KINDS; k++)
        if (created[k] != destroyed[k])
            report(std::string(names[k]) + ": " + std::to_string(created[k] - destroyed[k]) +
                   " not destroyed");
    if (null_created != null_destroyed) report("NULL values with a destroy not destroyed");
    if (worker_live_count() != 0) report("workers still live after cleanup");
    worker_set_error_handler(nullptr, nullptr);
    worker_set_exit_timeout(1000);
    return true;
}

}  // namespace

void set_reporter(Reporter r) { reporter = r; }

bool run_program(const uint8_t *data, size_t size) {
    auto *prog = new Prog;
    P = prog;
    In in{data, size};
    while (!in.empty()) step(in);
    bool ok = cleanup();
    P = nullptr;
    if (ok) delete prog;  // else leaked: callbacks may still reference it
    return ok;
}

std::string summary() {
    return std::to_string(n_workers) + " workers (" + std::to_string(n_process) + " process), " +
           std::to_string(n_started) + " started: " + std::to_string(n_outcome[0]) + " returned, " +
           std::to_string(n_outcome[1]) + " errored, " + std::to_string(n_outcome[2]) + " aborted; " +
           std::to_string(n_pipes) + " pipes; " + scope_summary();
}

std::string hex(const uint8_t *data, size_t size) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < size; i++) {
        s += digits[data[i] >> 4];
        s += digits[data[i] & 15];
    }
    return s;
}

}  // namespace fz
