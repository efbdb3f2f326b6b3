// Internals shared by the interpreter's two halves: fuzz_worker.cpp (counted
// objects, worker bodies, worker-side misuse, callbacks) and fuzz_api.cpp
// (owner-side calls, the program loop, cleanup and checks).
#pragma once

#include "fuzz_api.h"
#include "qtworker.h"

#include <atomic>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

// raw_enums.c: out-of-range enums from C, where they are well-defined.
extern "C" void fz_set_policy(worker_options *o, int policy);
extern "C" long fz_connect(worker *w, int type, worker_callback cb, void *user_data,
                           worker_destroy_fn user_data_destroy);

namespace fz {

void report(const std::string &what);  // to the reporter, from any thread
void expect(const char *call, long rc, std::initializer_list<long> allowed);

// ---- the bytes being interpreted (0 once exhausted)
struct In {
    const uint8_t *p;
    size_t n;
    bool empty() const { return n == 0; }
    unsigned u8() {
        if (!n) return 0;
        n--;
        return *p++;
    }
    unsigned pick(unsigned k) { return u8() % k; }
    long long i64() {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = v << 8 | u8();
        return (long long)v;
    }
};

// ---- counted objects: payloads, worker args, callback user_data
enum Kind { O_VALUE, O_ARG, O_USER, O_KINDS };
struct WT;
struct Obj {
    uint32_t magic;
    Kind kind;
    long id;
    WT *t = nullptr;
    unsigned action = 0;           // user_data: what the callback does
    std::atomic<long> conn_id{0};  // user_data: its own connection id
    std::vector<uint8_t> ops;      // arg: the worker body's program
};
extern std::atomic<long> created[O_KINDS], destroyed[O_KINDS], null_created, null_destroyed;
extern int kStatic;  // a non-NULL value with no destroy: nothing to free
Obj *obj(Kind k, WT *t = nullptr);
void obj_free(void *v);
bool is_obj(const void *v);  // one of ours (not kStatic)

// "Destroyed at once when the call that handed it over fails": failing calls
// destroy on the calling thread, so thread-local watches see it.
struct Value {
    void *v = nullptr;
    worker_destroy_fn d = nullptr;
    long id = 0;            // the payload's id, 0 if not a payload
    long nulls_before = 0;  // NULL values destroyed on this thread before
};
Value make_value(In &in, WT *t = nullptr);  // payload, NULL with destroy, NULL, static
Value make_send_value(In &in, WT *t);       // the same, or worker_bytes for a process worker
Value watch_obj(Obj *o);                    // watch a user_data or arg
void settle(const char *call, const Value &v, bool failed);

// ---- the program's workers
struct WT {
    worker *w = nullptr;
    std::string name;
    bool named = false, exclusive = false;
    bool process = false;  // worker_create_process: its values are worker_bytes
    worker_policy policy = WORKER_BLOCK;
    long long timeout_ms = 0;
    size_t capacity_bytes = 0;
    // GUI thread only:
    int refs = 0;  // owner references this program holds
    bool started = false, quit_before_start = false, ended = false, finished = false;
    std::vector<long> conns;  // fuzz connections believed connected
    std::vector<worker_event_type> events;
    int aborted_code = 0;
    // any thread:
    std::atomic<bool> ran{false}, freed{false};
    std::atomic<long> freed_epoch{-1};
    // Its scope (NULL = none). closed: that scope's close began — its
    // user_data goes with it, so the sentinel no longer tells when it is
    // freed: once the program drops its last reference it never calls the
    // handle again. close_returned: from then on no callback may begin.
    worker_scope *scope = nullptr;
    std::atomic<bool> closed{false}, close_returned{false}, recorder_gone{false};
    std::atomic<bool> thread_closing{false};  // its scope is being closed from another thread
    std::atomic<int> live_ud{0};  // its fuzz user_data not yet destroyed
    // Pipes: its input may be closed (worker_close_input, or a pipe into it
    // whose sources all ended): sends may then give ESTATE. piped: its
    // yields go into another worker (GUI thread only).
    std::atomic<bool> input_may_close{false};
    bool piped = false;
};

struct Prog {
    std::vector<std::unique_ptr<WT>> wts;
    std::atomic<long> creates{0};  // successful creates so far: the reuse epoch
    int connects = 0, depth = 0;
    std::vector<worker_scope *> open_scopes, closed_scopes;  // closed: freed
    std::vector<WT *> cb_stack;  // whose fuzz callbacks are running (GUI thread)
    // a close from another thread: a member's callback runs / the close began
    std::atomic<bool> member_cb_entered{false}, closer_began{false};
};
extern Prog *P;

// held: we own a reference; released: we dropped ours, it may still run;
// dead: NULL, junk, or freed with no worker created since.
enum HK { H_HELD, H_RELEASED, H_DEAD };
struct H {
    worker *w;
    WT *t;
    HK k;
};

// ---- fuzz_worker.cpp
void body(worker_ctx *ctx, void *arg);
void worker_side_misuse(In &in, worker_ctx *ctx, bool null_ctx);
void record(worker_event *ev, void *wt);
void sentinel(void *wt);  // the recorder's user_data destroy: the worker was freed
void count_error(worker_event *ev, void *);

// Its scope's close began (here or on another thread): sends are refused.
inline bool scope_closing(const WT &t) { return t.closed.load() || t.thread_closing.load(); }

// ---- fuzz_scopes.cpp
worker_scope *pick_scope(In &in);  // open (maybe new), closed, or NULL
void close_scope(worker_scope *s, int timeout_ms);  // an open one, from this thread
void op_scope_close(In &in);
// one open scope (its own, if open) from inside a callback of `from`'s worker
void close_from_callback(In &in, WT *from);
std::string scope_summary();
// pinned: the worker cannot be freed during the call (held, or its callback runs)
long connect_one(In &in, const H &h, bool pinned);

}  // namespace fz
