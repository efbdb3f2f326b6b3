// Stress: many workers (function and generator, all three policies, small
// capacities, serial groups, timeouts, printed output) driven at random from
// 4 std::threads and from callbacks on the GUI thread, re-entrant calls
// included. Checks per worker: a valid event order and an outcome that
// matches what its function did (stress_support.cpp); globally: every
// payload destroyed exactly once, nothing left live, no hang, members of a
// serial group never overlapping and running in start order.
//
//   QTW_STRESS_SEED=<n>     replay the random choices (printed first); the
//                           thread interleaving itself is not replayed
//   QTW_STRESS_WORKERS=<n>  how many workers (default: see meson.build)
//   QTW_STRESS_TIMEOUT=<s>  watchdog: print the state and abort (default 600)
//
// Ownership: a worker handle is only used while this code holds a reference
// (a slot's, a thread's hand, the GUI's, or the library's during a callback
// for ev->source); stale handles are the fuzzer's business, not this one's.
#include "harness.h"
#include "stress_support.h"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <thread>

#ifndef QTW_STRESS_DEFAULT_WORKERS
#define QTW_STRESS_DEFAULT_WORKERS 1000
#endif

using namespace stress;

namespace {

using Rng = std::mt19937_64;
using clk = std::chrono::steady_clock;

constexpr long kInFlight = 16;  // workers whose function has not returned yet

struct Stress {
    long n_workers = 0;
    uint64_t seed = 0;
    std::atomic<long> created_workers{0};
    std::mutex tracks_mu;
    std::vector<std::unique_ptr<Track>> tracks;
    // Slots own one reference each; a reference is borrowed under the lock.
    struct Slot {
        std::mutex mu;
        worker *w = nullptr;
        Track *t = nullptr;
        bool reserved = false;
    };
    Slot slots[24];
    // Plugin scopes: a closed one is replaced by a fresh one at once. A
    // worker joins under the slot's lock (create and its recorder), so the
    // closer knows every member's track.
    struct ScopeSlot {
        std::mutex mu;
        worker_scope *s = nullptr;
        std::vector<Track *> members;
    };
    ScopeSlot scopes[3];
    std::atomic<bool> stop{false};
    // GUI thread only:
    Rng gui_rng;
    std::map<Track *, worker *> gui_refs;
    int nesting = 0;
};
Stress *S = nullptr;

struct Ref {  // an owner reference this code holds
    worker *w = nullptr;
    Track *t = nullptr;
    explicit operator bool() const { return w != nullptr; }
};

// A new reference to a random slot's worker, taken under the slot's lock.
Ref borrow(Rng &rng) {
    auto &sl = S->slots[rng() % std::size(S->slots)];
    std::lock_guard<std::mutex> lk(sl.mu);
    if (!sl.w) return {};
    worker *w = worker_ref(sl.w);
    if (w != sl.w) fail("worker_ref of a held worker did not return it");
    return {w, sl.t};
}

// Drops a random slot's reference (possibly the last one: that quits it).
void unref_slot(Rng &rng) {
    auto &sl = S->slots[rng() % std::size(S->slots)];
    worker *w;
    {
        std::lock_guard<std::mutex> lk(sl.mu);
        w = sl.w;
        sl.w = nullptr;
        sl.t = nullptr;
    }
    if (w) worker_unref(w);
}

// worker_start; for serial-group members the start is numbered under the
// group's lock, so the body can check it runs in start order.
int start_worker(const Ref &r, const char *call) {
    std::unique_lock<std::mutex> lk;
    if (r.t->group >= 0) lk = std::unique_lock<std::mutex>(group(r.t->group).mu);
    int rc = worker_start(r.w);
    if (r.t->exclusive && r.t->group >= 0)  // without a group, exclusive means nothing
        expect_rc(call, rc, {WORKER_OK, WORKER_ESTATE, WORKER_EBUSY});
    else
        expect_rc(call, rc, {WORKER_OK, WORKER_ESTATE});
    if (rc == WORKER_EBUSY) count(ST_EBUSY);
    if (rc == WORKER_OK) {
        r.t->start_ok = true;
        if (r.t->group >= 0) r.t->start_seq = group(r.t->group).next_seq++;
    }
    return rc;
}

// ------------------------------------------------------------ callbacks

void record(worker_event *ev, void *ud) {
    Track *t = static_cast<Payload *>(ud)->track;
    if (ev->source != t->w) fail("ev->source is not the worker");
    if (t->scope_closed) fail("a callback began after worker_scope_close returned");
    t->events.push_back(ev->type);
    auto *p = static_cast<Payload *>(ev->value);
    switch (ev->type) {
    case WORKER_EV_YIELDED: {
        if (p) t->yield_seqs.push_back(p->seq);
        // The value being delivered still counts against the budget.
        size_t entries = 0, bytes = 0;
        if (worker_backlog(ev->source, &entries, &bytes) != WORKER_OK || entries == 0 ||
            (p && bytes < frame_size(t, p->seq)))
            fail("worker_backlog does not count the value being delivered");
        break;
    }
    case WORKER_EV_CUSTOM:
        if (p) t->custom_seqs.push_back(p->seq);
        break;
    case WORKER_EV_WARNED: t->warned++; break;
    case WORKER_EV_OUTPUT:
        t->outputs++;
        if (!ev->message || !ev->name ||
            std::string(ev->name) != (ev->code == 2 ? "stderr" : "stdout"))
            fail("OUTPUT event without its line, name or code");
        break;
    case WORKER_EV_RETURNED: t->returned_id = p ? p->id : 0; break;
    case WORKER_EV_ABORTED:
        t->aborted_code = ev->code;
        if (ev->code == WORKER_ETIMEDOUT) count(ST_TIMED_OUT);
        break;
    case WORKER_EV_FINISHED: t->dropped = worker_dropped(ev->source); break;
    default: break;
    }
}

long connect_chaos(worker *w, Track *t, Rng &rng);
bool create_worker(Rng &rng);

// Closes scope slot k (from any thread, callbacks included) and opens a
// fresh one in its place; then no callback of its members may begin.
void close_scope(int k, int timeout_ms) {
    auto &sl = S->scopes[k];
    worker_scope *s;
    std::vector<Track *> members;
    {
        std::lock_guard<std::mutex> lk(sl.mu);
        s = sl.s;
        members.swap(sl.members);
        sl.s = worker_scope_new("stress");
        if (!sl.s) fail("worker_scope_new failed");
    }
    int rc = worker_scope_close(s, timeout_ms);
    expect_rc("scope_close", rc, {WORKER_OK, WORKER_ETIMEDOUT});
    count(rc == WORKER_OK ? ST_SCOPE_CLOSE : ST_SCOPE_TIMEOUT);
    for (Track *t : members) t->scope_closed = true;
}
void owner_op(const Ref &r, Rng &rng);

// Re-entrant calls from the GUI thread: on its own worker (ev->source is
// valid during the callback), on other workers, and nested event loops.
void chaos(worker_event *ev, void *ud) {
    auto *me = static_cast<Payload *>(ud);
    Track *t = me->track;
    worker *w = ev->source;
    Rng &rng = S->gui_rng;
    count(ST_CHAOS);
    switch (rng() % 12) {
    case 0: case 1: owner_op({w, t}, rng); break;  // quit, pause, send, await... its own worker
    case 2: {
        long id = me->conn_id.load();
        if (id <= 0) break;
        int rc = worker_disconnect(w, id);  // itself
        expect_rc("disconnect(self)", rc, {WORKER_OK, WORKER_EINVAL});
        if (rc == WORKER_OK) count(ST_SELF_DISCONNECT);
        break;
    }
    case 3: {  // drop the GUI's reference (maybe the last one: quits it)
        auto it = S->gui_refs.find(t);
        if (it == S->gui_refs.end()) break;
        worker *mine = it->second;
        S->gui_refs.erase(it);
        worker_unref(mine);
        count(ST_GUI_UNREF);
        break;
    }
    case 4:  // adopt a reference (not once the end phase dropped them all)
        if (!S->stop && !S->gui_refs.count(t) && S->gui_refs.size() < 8) S->gui_refs[t] = worker_ref(w);
        break;
    case 5:
        if (ev->value && (ev->type == WORKER_EV_YIELDED || ev->type == WORKER_EV_RETURNED ||
                          ev->type == WORKER_EV_CUSTOM)) {
            pl_free(worker_event_take(ev));
            count(ST_TAKEN);
        }
        break;
    case 6: {  // another worker: start it, or anything else
        Ref r = borrow(rng);
        if (r && rng() % 2) start_worker(r, "start(other)");
        else if (r) owner_op(r, rng);
        if (r) worker_unref(r.w);
        break;
    }
    case 7: create_worker(rng); break;
    case 8:
        if (S->nesting < 2) {
            S->nesting++;
            count(ST_NESTED);
            worker_app_process_events(0);
            S->nesting--;
        }
        break;
    case 9: unref_slot(rng); break;
    case 10:  // close its own scope from inside its callback
        if (t->scope >= 0 && rng() % 4 == 0) close_scope(t->scope, (int)(rng() % 3) - 1);
        break;
    default: break;
    }
}

long connect_chaos(worker *w, Track *t, Rng &rng) {
    Payload *ud = make(K_USER, t);
    int type = (int)(rng() % (WORKER_EV_OUTPUT + 2));
    long id = type <= WORKER_EV_OUTPUT
                  ? worker_connect(w, (worker_event_type)type, chaos, ud, pl_free)
                  : worker_connect_custom(w, "a", chaos, ud, pl_free);
    if (id == WORKER_ESTATE) return id;  // finished already: ud destroyed at once
    if (id <= 0) {
        fail("worker_connect returned " + std::to_string(id));
        return id;
    }
    // Safe only outside a scope (we hold a reference, only we knew the id):
    // a close of its scope on another thread may destroy ud by now (ASan).
    if (t->scope < 0) ud->conn_id = id;
    std::lock_guard<std::mutex> lk(t->mu);
    t->chaos_conns.push_back(id);
    return id;
}

void disconnect_some(const Ref &r, Rng &rng) {
    long id = 0;
    {
        std::lock_guard<std::mutex> lk(r.t->mu);
        auto &v = r.t->chaos_conns;
        if (v.empty()) return;
        size_t i = rng() % v.size();
        id = v[i];
        v.erase(v.begin() + (long)i);
    }
    expect_rc("disconnect", worker_disconnect(r.w, id), {WORKER_OK, WORKER_EINVAL});
}

// One random owner-side call on a worker this code holds a reference to.
void owner_op(const Ref &r, Rng &rng) {
    worker *w = r.w;
    switch (rng() % 16) {
    case 0: start_worker(r, "start"); break;
    case 1: expect_rc("send", worker_send(w, make(K_SENT, r.t), pl_free), {WORKER_OK, WORKER_ESTATE}); break;
    case 2: expect_rc("send(NULL)", send_null(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 3: case 4: expect_rc("pause", worker_pause(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 5: case 6: expect_rc("resume", worker_resume(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 7: expect_rc("toggle", worker_toggle_pause(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 8: expect_rc("quit", worker_quit(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 9: connect_chaos(w, r.t, rng); break;
    case 10: disconnect_some(r, rng); break;
    case 11:
        expect_rc("is_running", worker_is_running(w), {0, 1});
        expect_rc("is_paused", worker_is_paused(w), {0, 1});
        if (!worker_name(w)) fail("worker_name of a held worker is NULL");
        if (worker_dropped(w) < 0) fail("worker_dropped < 0");
        break;
    case 12:
        expect_rc("await", worker_await(w, (int)(rng() % 3)), {WORKER_OK, WORKER_ETIMEDOUT, WORKER_ESTATE});
        break;
    case 13:
        if (rng() % 4) break;  // rarely: it ends a receiving worker's input
        r.t->input_may_close = true;
        expect_rc("close_input", worker_close_input(w), {WORKER_OK, WORKER_ESTATE});
        break;
    default: break;
    }
}

// ---------------------------------------------------------------- create

Track *new_track(Rng &rng) {
    auto t = std::make_unique<Track>();
    t->generator = rng() % 2;
    t->receives = rng() % 2;
    t->may_fail = rng() % 8 == 0;
    t->iters = (int)(rng() % 40);
    t->body_seed = rng();
    t->policy = (worker_policy)(rng() % 3);
    t->group = rng() % 4 == 0 ? (int)(rng() % kGroups) : -1;
    t->exclusive = rng() % 5 == 0;
    t->timeout_ms = rng() % 8 == 0 ? 1 + (long long)(rng() % 20) : 0;
    t->capacity_bytes = t->policy != WORKER_QUEUE && rng() % 3 == 0 ? 4000 : 0;
    t->scope = rng() % 3 == 0 ? (int)(rng() % std::size(S->scopes)) : -1;
    std::lock_guard<std::mutex> lk(S->tracks_mu);
    t->index = (int)S->tracks.size();
    S->tracks.push_back(std::move(t));
    return S->tracks.back().get();
}

// Pipes the new (unstarted) worker into a random slot's worker: refused
// when that one has ended, was quit or its input closed, or when the new
// worker's scope was closed; never a loop (the new worker has no sources
// yet); EINVAL only for a grouped worker (a path into its own group).
void pipe_into_a_slot(worker *w, Track *t, Rng &rng) {
    Ref sink = borrow(rng);
    if (!sink) return;
    sink.t->input_may_close = true;
    int rc = worker_pipe(w, sink.w);
    expect_rc("worker_pipe", rc, {WORKER_OK, WORKER_ESTATE, t->group >= 0 ? WORKER_EINVAL : WORKER_OK});
    if (rc == WORKER_OK) {
        t->piped = true;
        count(ST_PIPES);
    }
    worker_unref(sink.w);
}

worker *new_worker(Track *t, Rng &rng) {
    static const size_t caps[] = {0, 1, 1, 2, 3, 8};
    static const char *const group_names[kGroups] = {"g0", "g1", "g2"};
    worker_options o;
    worker_options_init(&o);
    std::string name = "stress-" + std::to_string(t->index);
    o.name = rng() % 2 ? name.c_str() : nullptr;
    o.policy = t->policy;
    o.capacity = caps[rng() % std::size(caps)];
    o.progress_total = rng() % 4 == 0 ? 5 : 0;
    o.progress_desc = rng() % 2 ? "desc" : nullptr;
    o.group = t->group >= 0 ? group_names[t->group] : nullptr;
    o.group_exclusive = t->exclusive;
    o.timeout_ms = t->timeout_ms;
    o.capacity_bytes = t->capacity_bytes;
    std::unique_lock<std::mutex> scope_lk;
    if (t->scope >= 0) {
        scope_lk = std::unique_lock<std::mutex>(S->scopes[t->scope].mu);
        o.scope = S->scopes[t->scope].s;
    }
    worker *w = worker_create(body, make(K_ARG, t), pl_free, &o);
    if (!w) {
        fail("worker_create failed: " + std::to_string(worker_last_error()));
        return nullptr;
    }
    t->w = w;
    for (int ty = WORKER_EV_STARTED; ty <= WORKER_EV_OUTPUT; ty++)
        if (worker_connect(w, (worker_event_type)ty, record, make(K_USER, t), pl_free) <= 0)
            fail("recorder connect failed");
    if (t->scope >= 0) {
        S->scopes[t->scope].members.push_back(t);
        scope_lk.unlock();
    }
    for (int k = (int)(rng() % 3); k > 0; k--) connect_chaos(w, t, rng);
    // Owner calls before start are allowed; a send is refused once its scope
    // closed (another thread may close it right now).
    int send_ok_or = t->scope >= 0 ? WORKER_ESTATE : WORKER_OK;
    switch (rng() % 8) {
    case 0: expect_rc("send(new)", worker_send(w, make(K_SENT, t), pl_free), {WORKER_OK, send_ok_or}); break;
    case 1: expect_rc("send(new, NULL)", send_null(w), {WORKER_OK, send_ok_or}); break;
    case 2: expect_rc("pause(new)", worker_pause(w), {WORKER_OK}); break;
    case 3: expect_rc("quit(new)", worker_quit(w), {WORKER_OK}); break;
    default: break;
    }
    if (rng() % 8 == 0) pipe_into_a_slot(w, t, rng);
    if (rng() % 4 != 0) start_worker({w, t}, "start(new)");
    return w;
}

// Creates a worker into an empty slot (from any thread) while the budget
// lasts, paced: at most kInFlight workers whose function has not returned
// (their arg is destroyed then, or when freed without having run).
bool create_worker(Rng &rng) {
    auto &sl = S->slots[rng() % std::size(S->slots)];
    {
        std::lock_guard<std::mutex> lk(sl.mu);
        if (sl.w || sl.reserved) return false;
        sl.reserved = true;
    }
    long n = S->created_workers.load();
    bool ok = false;
    while (n < S->n_workers && n - destroyed[K_ARG].load(relaxed) < kInFlight &&
           !(ok = S->created_workers.compare_exchange_weak(n, n + 1))) {}
    Track *t = ok ? new_track(rng) : nullptr;
    worker *w = ok ? new_worker(t, rng) : nullptr;
    std::lock_guard<std::mutex> lk(sl.mu);
    sl.reserved = false;
    sl.w = w;
    sl.t = w ? t : nullptr;
    return w != nullptr;
}

// ---------------------------------------------------------------- drivers

// A std::thread: random calls with references of its own (up to 4 in hand).
void thread_main(int index) {
    Rng rng(S->seed * 1000003u + (uint64_t)index);
    std::vector<Ref> hand;
    while (!S->stop.load()) {
        int r = (int)(rng() % 100);
        if (r < 8) {
            create_worker(rng);
        } else if (r < 12) {
            unref_slot(rng);
        } else if (r < 16 && hand.size() < 4) {
            if (Ref h = borrow(rng)) hand.push_back(h);
        } else if (r < 20 && !hand.empty()) {
            size_t i = rng() % hand.size();
            worker_unref(hand[i].w);  // maybe the last reference: quits it
            hand.erase(hand.begin() + (long)i);
            count(ST_THREAD_UNREF);
        } else if (r < 22) {
            worker *list[8];
            int n = worker_list(list, 8);
            if (n < 0 || n > 8) fail("worker_list returned " + std::to_string(n));
            for (int i = 0; i < n; i++) {
                if (rng() % 8 == 0) expect_rc("quit(listed)", worker_quit(list[i]), {WORKER_OK, WORKER_ESTATE});
                worker_unref(list[i]);
            }
            if (worker_live_count() < 0) fail("worker_live_count < 0");
            if (rng() % 64 == 0 && worker_quit_all() < 0) fail("worker_quit_all < 0");
        } else if (r < 23 && rng() % 4 == 0) {
            close_scope((int)(rng() % std::size(S->scopes)), (int)(rng() % 3) - 1);
        } else if (r < 60 && !hand.empty()) {
            owner_op(hand[rng() % hand.size()], rng);
        } else if (Ref b = borrow(rng)) {
            owner_op(b, rng);
            worker_unref(b.w);
        }
        if (rng() % 16 == 0) std::this_thread::yield();
    }
    for (Ref &h : hand) worker_unref(h.w);
}

// The GUI thread: pumps events and makes its own calls between turns.
void gui_turn() {
    Rng &rng = S->gui_rng;
    worker_app_process_events((int)(rng() % 2));
    int r = (int)(rng() % 100);
    if (r < 5) {
        create_worker(rng);
    } else if (r < 6) {
        close_scope((int)(rng() % std::size(S->scopes)), (int)(rng() % 3) - 1);
    } else if (r < 10 && !S->gui_refs.empty()) {
        auto it = S->gui_refs.begin();
        worker *w = it->second;
        S->gui_refs.erase(it);
        worker_unref(w);
    } else if (Ref b = borrow(rng)) {
        owner_op(b, rng);
        worker_unref(b.w);
    }
}

long env_long(const char *name, long fallback) {
    const char *v = std::getenv(name);
    return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

long ms_since(clk::time_point t) {
    return (long)std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t).count();
}

void print_summary(const Stress &s, long run_ms, long drain_ms) {
    int started = 0;
    long payloads = 0;
    std::map<std::string, long> seen;  // events and stats, for the log
    for (auto &t : s.tracks) {
        started += t->start_ok;
        for (auto e : t->events) seen[th::type_name(e)]++;
    }
    for (int k = 0; k < K_COUNT; k++) payloads += created[k].load();
    for (int k = 0; k < ST_COUNT; k++) seen[stat_names[k]] = stats[k].load();
    std::printf("stress: %zu workers (%d started), %ld payloads; run %ld ms, drain %ld ms\n",
                s.tracks.size(), started, payloads, run_ms, drain_ms);
    for (auto &kv : seen) std::printf("  %-20s %ld\n", kv.first.c_str(), kv.second);
}

}  // namespace

TEST(Stress, RandomCallsFromThreadsAndCallbacks) {
    Stress s;
    S = &s;
    s.seed = (uint64_t)env_long("QTW_STRESS_SEED",
                                (long)(clk::now().time_since_epoch().count() % 1000000007));
    s.n_workers = env_long("QTW_STRESS_WORKERS", QTW_STRESS_DEFAULT_WORKERS);
    std::printf("QTW_STRESS_SEED=%" PRIu64 " QTW_STRESS_WORKERS=%ld\n", s.seed, s.n_workers);
    std::fflush(stdout);
    SCOPED_TRACE("QTW_STRESS_SEED=" + std::to_string(s.seed));
    s.gui_rng.seed(s.seed);
    for (auto &sc : s.scopes) sc.s = worker_scope_new("stress");
    auto t0 = clk::now();
    Watchdog watchdog((int)env_long("QTW_STRESS_TIMEOUT", 600), [] {
        std::fprintf(stderr, "\nstress: HANG (QTW_STRESS_SEED=%" PRIu64 "): created %ld, live %d\n",
                     S->seed, S->created_workers.load(), worker_live_count());
    });

    std::vector<std::thread> threads;
    for (int i = 0; i < 4; i++) threads.emplace_back(thread_main, i);
    while (s.created_workers.load() < s.n_workers) gui_turn();
    s.stop = true;
    for (auto &t : threads) t.join();

    // Drop every reference: the last unref of a running worker quits it.
    for (auto &sl : s.slots) {
        std::lock_guard<std::mutex> lk(sl.mu);
        if (sl.w) worker_unref(sl.w);
        sl.w = nullptr;
    }
    for (auto &g : s.gui_refs) worker_unref(g.second);
    s.gui_refs.clear();
    for (int k = 0; k < (int)std::size(s.scopes); k++) {
        close_scope(k, -1);  // marks its members; then the fresh one goes too
        EXPECT_EQ(worker_scope_close(s.scopes[k].s, -1), WORKER_OK);
    }
    long run_ms = ms_since(t0);
    auto t1 = clk::now();

    EXPECT_EQ(worker_await_all(60000), WORKER_OK);
    auto all_finished = [&] {
        for (auto &t : s.tracks)
            if (t->start_ok && !t->scope_closed && (t->events.empty() || t->events.back() != WORKER_EV_FINISHED))
                return false;
        return true;
    };
    EXPECT_TRUE(th::pump_until(all_finished, 60000)) << "some started worker never got FINISHED";
    th::pump_until(payloads_balanced, 10000);
    EXPECT_EQ(worker_live_count(), 0);

    int bad = 0;
    for (auto &t : s.tracks) {
        std::string why = check_track(*t);
        if (!why.empty() && bad++ < 20) ADD_FAILURE() << why << " — " << describe(*t);
    }
    EXPECT_EQ(bad, 0) << "workers with a wrong event sequence";
    for (int k = 0; k < K_COUNT; k++)
        EXPECT_EQ(created[k].load(), destroyed[k].load()) << kind_names[k] << " payloads";
    EXPECT_EQ(double_destroys.load(), 0);
    EXPECT_EQ(failure_count(), 0);
    for (auto &f : failures()) ADD_FAILURE() << f;
    print_summary(s, run_ms, ms_since(t1));
    S = nullptr;
}
