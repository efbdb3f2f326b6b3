// The interpreter's worker half: counted objects, the worker body (itself a
// byte program), worker-side calls from where they are not allowed, and the
// callbacks (a recorder, a free sentinel, and fuzz callbacks that make
// re-entrant calls).
#include "fuzz_internal.h"

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace fz {

namespace {
constexpr uint32_t kAlive = 0xf022a11e, kDead = 0xdeadf022;
constexpr auto relaxed = std::memory_order_relaxed;  // counters must add no happens-before for TSan
std::atomic<long> next_id{1};
thread_local long watched = 0;
thread_local bool watch_hit = false;
thread_local long null_destroys_here = 0;

// Contexts seen by worker bodies, kept after they end: the library only
// compares ctx pointers, it never dereferences a stale one.
std::atomic<worker_ctx *> seen_ctx[8];
std::atomic<unsigned> seen_next{0};

void *home_fn(void *) { return nullptr; }  // a worker_call_home fn that does nothing

void null_free(void *v) {
    if (v) report("null_free got a non-NULL value");
    null_destroyed.fetch_add(1, relaxed);
    null_destroys_here++;
}
}  // namespace

std::atomic<long> created[O_KINDS], destroyed[O_KINDS], null_created{0}, null_destroyed{0};
int kStatic;

Obj *obj(Kind k, WT *t) {
    created[k].fetch_add(1, relaxed);
    Obj *o = new Obj;
    o->magic = kAlive;
    o->kind = k;
    o->id = next_id.fetch_add(1, relaxed);
    o->t = t;
    if (k == O_USER && t) t->live_ud.fetch_add(1);
    return o;
}

void obj_free(void *v) {
    auto *o = static_cast<Obj *>(v);
    if (!o) return report("a destroy got NULL for a non-NULL value");
    if (o->magic != kAlive) return report("a value was destroyed twice");
    if (o->id == watched) watch_hit = true;
    o->magic = kDead;
    if (o->kind == O_USER && o->t) o->t->live_ud.fetch_sub(1);
    destroyed[o->kind].fetch_add(1, relaxed);
    delete o;
}

bool is_obj(const void *v) { return v && v != &kStatic; }

Value make_value(In &in, WT *t) {
    Value v;
    switch (in.pick(4)) {
    case 0: case 1: {
        Obj *o = obj(O_VALUE, t);
        v.v = o;
        v.d = obj_free;
        v.id = o->id;
        break;
    }
    case 2: null_created.fetch_add(1, relaxed); v.d = null_free; break;
    default: v.v = in.pick(2) ? &kStatic : nullptr; break;
    }
    watched = v.id;
    watch_hit = false;
    v.nulls_before = null_destroys_here;
    return v;
}

Value make_send_value(In &in, WT *t) {
    if (!t || !t->process) return make_value(in, t);
    Value v;  // a process worker takes worker_bytes (or NULL) only
    if (in.pick(4)) {
        v.v = worker_bytes_new(in.pick(4) ? in.pick(64) : WORKER_BYTES_SHARED_MIN + in.pick(64));
        v.d = worker_bytes_free;
    } else if (in.pick(2)) {
        null_created.fetch_add(1, relaxed);
        v.d = null_free;
    }
    watched = 0;
    v.nulls_before = null_destroys_here;
    return v;
}

Value watch_obj(Obj *o) {
    Value v;
    v.v = o;
    v.d = obj_free;
    v.id = o->id;
    watched = v.id;
    watch_hit = false;
    return v;
}

void settle(const char *call, const Value &v, bool failed) {
    if (failed && v.id && !watch_hit) report(std::string(call) + " failed but kept the value");
    if (failed && !v.v && v.d && null_destroys_here != v.nulls_before + 1)
        report(std::string(call) + " failed but did not destroy the NULL value");
    watched = 0;
}

// ------------------------------------------------------------ worker side

// Worker-side calls where they are not allowed: NULL ctx gives EINVAL, any
// other ctx (stale, foreign, junk) ETHREAD; handed-over values destroyed.
void worker_side_misuse(In &in, worker_ctx *ctx, bool null_ctx) {
    if (null_ctx) {
        ctx = nullptr;
    } else if (!ctx) {
        ctx = seen_ctx[in.pick(8)].load();
        if (!ctx) ctx = reinterpret_cast<worker_ctx *>(&kStatic);
    }
    long want = ctx ? WORKER_ETHREAD : WORKER_EINVAL;
    unsigned call = in.pick(9);
    if (call >= 3) {  // the calls that take no value
        switch (call) {
        case 3: expect("fail(misuse)", worker_fail(ctx, 3, "%s", "x"), {want}); break;
        case 4: expect("warn(misuse)", worker_warn(ctx, "w"), {want}); break;
        case 5: expect("progress(misuse)", worker_progress(ctx, 1, 2, nullptr), {want}); break;
        case 6: expect("abort_requested(misuse)", worker_abort_requested(ctx), {want}); break;
        case 8: {
            void *got = &got;
            expect("call_home(misuse)", worker_call_home(ctx, home_fn, nullptr, &got, -1), {want});
            if (got) report("a refused call_home left *result set");
            void *v = nullptr;
            worker_destroy_fn d = nullptr;
            expect("receive(misuse)", worker_receive(ctx, &v, &d, -1), {want});
            if (v || d) report("a refused receive handed out a value");
            break;
        }
        default:
            if (worker_stdout(ctx) || worker_stderr(ctx)) report("worker_stdout/stderr outside the function");
            break;
        }
        return;
    }
    Value v = make_value(in);
    void *sent = nullptr;
    worker_destroy_fn sd = nullptr;
    int rc;
    if (call == 0) {  // with half a pair, EINVAL is as good an answer
        rc = worker_yield(ctx, v.v, v.d, in.pick(2) ? &sent : nullptr, in.pick(2) ? &sd : nullptr);
        expect("yield(misuse)", rc, {want, WORKER_EINVAL});
    } else if (call == 1) {
        rc = worker_return(ctx, v.v, v.d);
        expect("return(misuse)", rc, {want});
    } else {
        rc = worker_emit(ctx, in.pick(2) ? "a" : nullptr, v.v, v.d);
        expect("emit(misuse)", rc, {want, WORKER_EINVAL});
    }
    settle("worker-side misuse", v, true);
    if (sent || sd) report("a refused yield handed out a sent value");
}

namespace {

// worker_call_home from the body: fn (on the GUI thread) does one of a few
// things there, and a call returns OK exactly when fn ran.
struct HomeAsk {
    WT *t;
    worker_ctx *ctx;
    unsigned action;
    bool ran = false;
};

void *home_ask(void *arg) {
    auto *a = static_cast<HomeAsk *>(arg);
    a->ran = true;
    switch (a->action) {
    case 0: expect("await(self, from call_home)", worker_await(a->t->w, 0), {WORKER_ETHREAD}); break;
    case 1: expect("call_home(from fn)", worker_call_home(a->ctx, home_fn, nullptr, nullptr, 0),
                   {WORKER_ETHREAD}); break;
    case 2: expect("quit(self, from call_home)", worker_quit(a->t->w), {WORKER_OK}); break;
    case 3: expect("process_events(call_home)", worker_app_process_events(0), {WORKER_OK}); break;
    default: break;
    }
    return a;
}

void body_call_home(worker_ctx *ctx, In &in, WT *t) {
    HomeAsk a{t, ctx, in.pick(6)};
    bool null_fn = in.pick(8) == 0, want_result = in.pick(4);
    int timeout = in.pick(4) == 0 ? -1 : (int)in.pick(30);
    void *got = &got;
    int rc = worker_call_home(ctx, null_fn ? nullptr : home_ask, &a, want_result ? &got : nullptr, timeout);
    if (null_fn)
        expect("call_home(NULL fn)", rc, {WORKER_EINVAL});
    else
        expect("call_home", rc, {WORKER_OK, WORKER_ETIMEDOUT, WORKER_ABORTED, WORKER_EBUSY});
    if (a.ran != (rc == WORKER_OK)) report("call_home: fn ran <-> OK mismatch");
    if (want_result && got != (rc == WORKER_OK ? &a : nullptr)) report("call_home: wrong *result");
}

void body_yield(worker_ctx *ctx, In &in, WT *t, unsigned op) {
    Value v = make_value(in, t);
    void *sent = nullptr;
    worker_destroy_fn sd = nullptr;
    bool half = op == 2, both = op == 1, half_sent = half && in.pick(2);
    // A size: none (plain worker_yield), small, a frame, more than any object.
    static const size_t sizes[] = {0, 0, 1, 1 << 20, (size_t)PTRDIFF_MAX + 1};
    unsigned sized = in.pick(5);
    int rc = worker_yield_sized(ctx, v.v, sizes[sized], v.d, both || half_sent ? &sent : nullptr,
                                both || (half && !half_sent) ? &sd : nullptr);
    if (half || sized == 4) expect("yield(half pair, huge size)", rc, {WORKER_EINVAL});
    else if (both) expect("yield(receiving)", rc, {WORKER_OK, WORKER_RECEIVED, WORKER_ABORTED});
    else expect("yield", rc, {WORKER_OK, WORKER_ABORTED});
    // ABORTED: refused at once, or queued before it parked and was quit
    // there (then dropped at delivery): either way not delivered.
    if (rc != WORKER_ABORTED) settle("yield", v, rc == WORKER_EINVAL);
    settle("yield", Value{}, false);
    if (rc == WORKER_RECEIVED && in.pick(2))
        expect("return(sent)", worker_return(ctx, sent, sd), {WORKER_OK});
    else if (rc == WORKER_RECEIVED && sd)
        sd(sent);
}

// Printed output: lines, partial lines, a line longer than WORKER_MAX_LINE.
void body_print(worker_ctx *ctx, In &in) {
    FILE *f = in.pick(2) ? worker_stdout(ctx) : worker_stderr(ctx);
    if (!f) return report("worker_stdout/stderr NULL inside the function");
    if (f != worker_stdout(ctx) && f != worker_stderr(ctx)) report("a second call gave another FILE");
    switch (in.pick(4)) {
    case 0: std::fprintf(f, "line %u\n", in.u8()); break;
    case 1: std::fputs("partial ", f); break;
    case 2: std::fwrite("a\n\nb", 1, 4, f); break;
    default: {
        std::string big((size_t)WORKER_MAX_LINE + 1 + in.u8(), 'x');
        std::fputs(big.c_str(), f);
        break;
    }
    }
}

// worker_receive: mostly short waits; forever only rarely (quit ends it).
void body_receive(worker_ctx *ctx, In &in) {
    void *v = &v;
    worker_destroy_fn d = obj_free;
    unsigned how = in.pick(8);
    int rc = worker_receive(ctx, how == 0 ? nullptr : &v, how == 1 ? nullptr : &d,
                            how == 2 ? -1 : (int)in.pick(3));
    if (how <= 1) return expect("receive(NULL)", rc, {WORKER_EINVAL});
    expect("receive", rc, {WORKER_RECEIVED, WORKER_ETIMEDOUT, WORKER_ABORTED, WORKER_EOF});
    if (rc != WORKER_RECEIVED && (v || d)) report("receive without a value left it set");
    if (rc == WORKER_RECEIVED && in.pick(2))
        expect("return(received)", worker_return(ctx, v, d), {WORKER_OK});
    else if (rc == WORKER_RECEIVED && d)
        d(v);
}

void body_self(In &in, WT *t) {  // owner-side calls on itself: OK while its function runs
    switch (in.pick(6)) {
    case 0: expect("pause(self)", worker_pause(t->w), {WORKER_OK}); break;
    case 1: expect("toggle(self)", worker_toggle_pause(t->w), {WORKER_OK}); break;
    case 2: expect("quit(self)", worker_quit(t->w), {WORKER_OK}); break;
    case 3: expect("await(self)", worker_await(t->w, (int)in.pick(3)), {WORKER_ETHREAD}); break;
    case 4:
        expect("is_running(self)", worker_is_running(t->w), {1});
        expect("is_paused(self)", worker_is_paused(t->w), {0});
        break;
    default: {
        Value v = make_value(in, t);
        int rc = worker_send(t->w, v.v, v.d);
        if (t->input_may_close || scope_closing(*t))
            expect("send(self)", rc, {WORKER_OK, WORKER_ESTATE});
        else
            expect("send(self)", rc, {WORKER_OK});
        settle("send(self)", v, rc != WORKER_OK);
        break;
    }
    }
}

}  // namespace

// The worker's function: its own byte program (bounded). It does not stop
// on quit on purpose: the calls after quit must behave too.
void body(worker_ctx *ctx, void *arg) {
    Obj *a = static_cast<Obj *>(arg);
    WT *t = a->t;
    if (t->ran.exchange(true)) report("a worker's function ran twice");
    seen_ctx[seen_next++ % 8] = ctx;
    In in{a->ops.data(), a->ops.size()};
    while (!in.empty()) {
        unsigned op = in.pick(16);
        if (op <= 2) {
            body_yield(ctx, in, t, op);
        } else if (op == 3) {
            Value v = make_value(in, t);
            expect("return", worker_return(ctx, v.v, v.d), {WORKER_OK});
            settle("return", v, false);
        } else if (op == 4) {
            int code = (int)in.u8() - 128;
            expect("fail", in.pick(2) ? worker_fail(ctx, code, "failed %s %d", "at", 1)
                                      : worker_fail(ctx, code, nullptr),
                   {WORKER_OK, WORKER_EINVAL});
        } else if (op == 5) {
            expect("warn", worker_warn(ctx, "warn %u", in.u8()), {WORKER_OK});
        } else if (op == 6) {
            long long done = (int8_t)in.u8(), total = in.pick(4) ? in.pick(50) : in.i64();
            int rc = worker_progress(ctx, done, total, in.pick(2) ? "text" : nullptr);
            expect("progress", rc, {done < 0 || total < 0 ? WORKER_EINVAL : WORKER_OK});
        } else if (op == 7) {
            Value v = make_value(in, t);
            bool named = in.pick(4);
            int rc = worker_emit(ctx, named ? (in.pick(2) ? "a" : "b") : nullptr, v.v, v.d);
            expect("emit", rc, {named ? WORKER_OK : WORKER_EINVAL});
            settle("emit", v, rc != WORKER_OK);
        } else if (op == 8) {
            expect("abort_requested", worker_abort_requested(ctx), {0, 1});
        } else if (op == 9) {
            body_self(in, t);
        } else if (op == 10) {
            body_print(ctx, in);
        } else if (op == 11) {
            worker_ctx *other = seen_ctx[in.pick(8)].load();
            if (other && other != ctx) worker_side_misuse(in, other, false);
        } else if (op == 12) {  // a generator: until quit, bounded
            for (int i = 0, n = (int)in.u8(); i < n; i++)
                if (worker_yield(ctx, obj(O_VALUE, t), obj_free, nullptr, nullptr) == WORKER_ABORTED) break;
        } else if (op == 13) {
            std::this_thread::sleep_for(std::chrono::microseconds(100 * in.pick(4)));
        } else if (op == 14) {
            body_call_home(ctx, in, t);
        } else if (op == 15 && in.pick(2)) {
            body_receive(ctx, in);
        } else {
            worker_side_misuse(in, nullptr, true);
        }
    }
}

// ------------------------------------------------------------- callbacks

namespace {

// A callback of a worker whose scope another thread is closing: it tells
// the closer it is running and lingers until the close has begun, so the
// close finds it running; that close must not return before it does.
struct Linger {
    WT *t;
    bool on;
    explicit Linger(WT *w) : t(w), on(w->thread_closing && !w->close_returned) {
        if (!on) return;
        P->member_cb_entered = true;
        for (int i = 0; i < 400 && !P->closer_began; i++) std::this_thread::sleep_for(std::chrono::microseconds(50));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ~Linger() {
        if (on && t->close_returned) report("scope_close from another thread returned while a callback of its scope ran");
    }
    Linger(const Linger &) = delete;
    Linger &operator=(const Linger &) = delete;
};

}  // namespace

void record(worker_event *ev, void *ud) {
    WT *t = static_cast<WT *>(ud);
    if (t->close_returned) report("a recorder callback began after its scope's close returned");
    Linger linger(t);
    if (ev->source != t->w) report("ev->source is not the worker");
    t->events.push_back(ev->type);
    if (ev->type == WORKER_EV_FINISHED) t->finished = t->ended = true;
    if (ev->type == WORKER_EV_ABORTED) t->aborted_code = ev->code;
    if (ev->type == WORKER_EV_ABORTED && ev->code == WORKER_ETIMEDOUT && !ev->message)
        report("timed out without a message");
    if ((ev->type == WORKER_EV_WARNED || ev->type == WORKER_EV_ERRORED) && !ev->message)
        report("warned/errored without a message");
    if (ev->type == WORKER_EV_CUSTOM && !ev->name) report("custom event without a name");
    if (ev->type == WORKER_EV_OUTPUT &&
        (!ev->message || !ev->name || std::strlen(ev->message) > WORKER_MAX_LINE ||
         std::strcmp(ev->name, ev->code == 2 ? "stderr" : "stdout") != 0))
        report("OUTPUT event with a bad line, name or code");
}

void sentinel(void *ud) {
    WT *t = static_cast<WT *>(ud);
    if (t->closed) {  // destroyed by worker_scope_close, not freed
        if (t->recorder_gone.exchange(true)) report("recorder user_data destroyed twice");
        return;
    }
    t->freed_epoch = P->creates.load();
    t->freed = true;
}

// Never reached while the recorder's ERRORED connection exists, but setting
// and restoring the handler must be safe.
void count_error(worker_event *ev, void *) {
    if (!ev || ev->type != WORKER_EV_ERRORED) report("error handler got a non-error");
}

namespace {

// A fuzz-connected callback: its user_data says what it does, re-entrantly.
void fuzz_cb(worker_event *ev, void *ud) {
    auto *me = static_cast<Obj *>(ud);
    if (me->magic != kAlive) return report("callback ran with destroyed user_data");
    WT *t = me->t;
    if (t->close_returned) report("a callback began after its scope's close returned");
    worker *w = ev->source;
    if (w != t->w) report("ev->source is not the worker");
    P->depth++;
    P->cb_stack.push_back(t);
    Linger linger(t);
    uint8_t bytes[4] = {(uint8_t)(me->action >> 8), (uint8_t)(me->action >> 16), 7, 1};
    In in{bytes, sizeof bytes};
    switch (me->action % 12) {
    case 1:
        if (ev->value) {
            void *v = worker_event_take(ev);
            if (t->process) worker_bytes_free(v);
            else if (is_obj(v)) obj_free(v);
            if (worker_event_take(ev) || ev->value) report("a second take still saw the value");
        }
        break;
    case 2: expect("quit(source)", worker_quit(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 3: {
        long id = me->conn_id.load();
        if (id <= 0) break;
        expect("disconnect(self)", worker_disconnect(w, id), {WORKER_OK, WORKER_EINVAL});
        for (auto it = t->conns.begin(); it != t->conns.end(); ++it)
            if (*it == id) {
                t->conns.erase(it);
                break;
            }
        break;
    }
    case 4:
        if (P->depth < 3) expect("process_events(nested)", worker_app_process_events(0), {WORKER_OK});
        break;
    case 5: worker_side_misuse(in, nullptr, in.pick(2)); break;
    case 6: connect_one(in, {w, t, H_RELEASED}, true); break;  // its own worker, from inside
    case 7: expect("toggle(source)", worker_toggle_pause(w), {WORKER_OK, WORKER_ESTATE}); break;
    case 8: {
        Value v = make_send_value(in, t);
        int rc = worker_send(w, v.v, v.d);
        expect("send(source)", rc, {WORKER_OK, WORKER_ESTATE});
        settle("send(source)", v, rc != WORKER_OK);
        break;
    }
    case 9: expect("await(source)", worker_await(w, 0), {WORKER_OK, WORKER_ETIMEDOUT}); break;
    case 10: case 11: close_from_callback(in, t); break;  // its own scope, or another
    default: break;
    }
    P->cb_stack.pop_back();
    P->depth--;
}

}  // namespace

// worker_connect / worker_connect_custom with fuzzed type, callback, name.
long connect_one(In &in, const H &h, bool pinned) {
    static const int bad_types[] = {-1, WORKER_EV_OUTPUT + 1, 1000, INT_MIN};
    if (P->connects >= 64) return 0;
    P->connects++;
    Obj *ud = obj(O_USER, h.t);
    for (int i = 0; i < 3; i++) ud->action |= in.u8() << (8 * i);
    bool custom = in.pick(4) == 0, bad_type = in.pick(8) == 0;
    int type = bad_type ? bad_types[in.pick(4)] : (int)in.pick(WORKER_EV_OUTPUT + 1);
    worker_callback cb = in.pick(8) ? fuzz_cb : nullptr;
    const char *name = in.pick(4) ? (in.pick(2) ? "a" : "") : nullptr;
    Value v = watch_obj(ud);
    long id = custom ? worker_connect_custom(h.w, name, cb, ud, obj_free)
                     : fz_connect(h.w, type, cb, ud, obj_free);
    bool bad = !cb || (custom ? !name : bad_type);
    if (id > 0 && (bad || h.k == H_DEAD))
        report("connect accepted: type " + std::to_string(type) + (custom ? " custom" : "") +
               (cb ? "" : " NULL cb") + (name ? "" : " NULL name") + (h.k == H_DEAD ? " dead" : ""));
    else if (h.k == H_DEAD)
        expect("connect(dead)", id, {WORKER_EINVAL});
    else if (bad)
        expect("connect(bad)", id, {WORKER_EINVAL, WORKER_ESTATE});
    else if (h.t->close_returned)
        expect("connect(closed scope)", id, {WORKER_ESTATE});
    else if (h.t->closed && id <= 0)  // being closed from another thread
        expect("connect(closing scope)", id, {WORKER_ESTATE});
    else if (h.k == H_HELD && h.t->finished && P->depth == 0)
        expect("connect(finished)", id, {WORKER_ESTATE});
    else if (h.k == H_HELD && P->depth == 0 && id <= 0)
        expect("connect", id, {1});
    else if (id <= 0)
        expect("connect", id, {WORKER_ESTATE, WORKER_EINVAL});
    settle("connect", v, id <= 0);
    if (id > 0) {
        // A released worker may be freed (and ud destroyed) by now, e.g. by
        // the timeout thread: only touch ud while the worker is pinned.
        if (pinned) ud->conn_id = id;
        h.t->conns.push_back(id);
    }
    return id;
}

}  // namespace fz
