// Support for the stress test: failure collection, counted payloads, the
// per-worker track (what its function did, what its callbacks saw) and the
// checks run on it at the end.
#pragma once

#include "qtworker.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace stress {

constexpr auto relaxed = std::memory_order_relaxed;  // counters add no happens-before

// ---- failures: collected from any thread, reported by the test body
void fail(const std::string &msg);
// Status codes each call may return per the header; anything else fails.
void expect_rc(const char *call, int rc, std::initializer_list<int> allowed);
long failure_count();
std::vector<std::string> failures();

// ---- counted payloads: every one destroyed exactly once
enum Kind { K_ARG, K_YIELD, K_RETURN, K_SENT, K_CUSTOM, K_USER, K_NULL, K_COUNT };
extern const char *const kind_names[K_COUNT];
extern std::atomic<long> created[K_COUNT], destroyed[K_COUNT], double_destroys;

struct Track;
struct Payload {
    uint32_t magic;
    Kind kind;
    long id;
    int seq;                       // order within its worker (yields, customs)
    Track *track;
    std::atomic<long> conn_id{0};  // user_data of a chaos connection: its id
};
Payload *make(Kind k, Track *t, int seq = 0);
void pl_free(void *v);             // the destroy for every non-NULL value
void null_free(void *v);           // the destroy for NULL values (counted as K_NULL)
int send_null(worker *w);          // worker_send of a counted NULL value
bool payloads_balanced();

// ---- what happened, to show that a run covered the interesting paths
enum Stat { ST_CHAOS, ST_NESTED, ST_SELF_DISCONNECT, ST_GUI_UNREF, ST_TAKEN, ST_THREAD_UNREF,
            ST_EBUSY, ST_TIMED_OUT, ST_SCOPE_CLOSE, ST_SCOPE_TIMEOUT, ST_CALLED_HOME,
            ST_CALL_REFUSED, ST_PIPES, ST_RECEIVED, ST_COUNT };
extern const char *const stat_names[ST_COUNT];
extern std::atomic<long> stats[ST_COUNT];
inline void count(Stat s) { stats[s].fetch_add(1, relaxed); }

// ---- one worker of the run
constexpr int kGroups = 3;

struct Track {
    int index = 0;
    worker *w = nullptr;  // identity; used only while a reference is held
    // what its function does (set before start)
    bool generator = false, receives = false, may_fail = false;
    int iters = 0;
    uint64_t body_seed = 0;
    worker_policy policy = WORKER_BLOCK;
    int group = -1;       // serial group index, -1 = none
    bool exclusive = false;
    long long timeout_ms = 0;
    size_t capacity_bytes = 0;  // a byte budget: its yields are sized (frame_size)
    int scope = -1;       // scope slot index, -1 = none
    // set once worker_scope_close of its scope returned: no callback may begin
    std::atomic<bool> scope_closed{false};
    // what happened (any thread)
    std::atomic<bool> start_ok{false}, failed{false}, saw_abort{false};
    std::atomic<int> runs{0};
    std::atomic<long> last_return_id{0};                       // 0: NULL or none
    std::atomic<int> yields_ok{0}, warns_ok{0}, emits_ok{0}, lines{0};
    std::atomic<int> home_ok{0};  // worker_call_home calls that returned OK
    // Pipes: its yields go into another worker (set before start); its
    // input may be closed (close_input, or a pipe into it): sends may give ESTATE.
    bool piped = false;
    std::atomic<bool> input_may_close{false};
    long start_seq = -1;  // guarded by its group's mutex
    std::mutex mu;
    std::vector<long> chaos_conns;  // guarded by mu
    // what its callbacks saw (GUI thread only)
    std::vector<worker_event_type> events;
    std::vector<int> yield_seqs, custom_seqs;
    int warned = 0, outputs = 0, aborted_code = 0;
    int home_ran = 0;  // worker_call_home functions that ran
    long returned_id = -1;
    long long dropped = 0;  // worker_dropped() at FINISHED
};

// One worker_call_home from t's function, checked: fn runs on the GUI thread
// after every warning and custom event emitted before the call was delivered
// (those are never dropped), and a call returns OK exactly when fn ran.
void call_home_one(worker_ctx *ctx, Track *t, int i);

// Serial groups: starts are numbered under mu, bodies check the order.
struct Group {
    std::mutex mu;
    long next_seq = 0, last_run = -1;
    std::atomic<int> running{0};
};
Group &group(int k);  // 0 <= k < kGroups
// The bytes yield i of a worker with a budget claims (some larger than it).
size_t frame_size(const Track *t, int i);

// The worker function of every stress worker (stress_body.cpp); arg is
// the Payload of its Track.
void body(worker_ctx *ctx, void *arg);

// Aborts the process after `seconds` (a hang), printing what say() prints.
class Watchdog {
public:
    Watchdog(int seconds, std::function<void()> say);
    ~Watchdog();

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

// The contract's order plus what follows from what the function did; "" if fine.
std::string check_track(const Track &t);
std::string describe(const Track &t);

}  // namespace stress
