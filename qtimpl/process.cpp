// Process workers, parent side. A process worker is an ordinary worker whose
// function is a proxy: it spawns the helper program (posix_spawn: no plain
// fork in a threaded Qt process), and relays over a socketpair — the child's
// yields into this worker's stream (so policies, backpressure and auto
// progress apply unchanged: a full stream stops the proxy reading, the
// socket fills, the child blocks), sends / pause / resume / quit to the
// child, its warnings, progress, output and outcome to the worker-side calls.
// Quit asks the child, then kills it after the grace period; the child is
// always reaped before the proxy returns (so before FINISHED), through a
// pidfd where the kernel has them (process_children.cpp).
#include "process_children.h"
#include "process_stderr.h"
#include "process_wire.h"
#include "worker_p.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char **environ;

namespace qtw {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kPollMs = 100;      // fallback wakeup (e.g. a timeout's quit, no poke)
constexpr int kBatch = 256;       // messages read before owner calls are looked at

struct ProcState {
    std::string module, symbol;
    worker_bytes *arg = nullptr;  // sent with INIT, then freed
    int grace_ms = WORKER_DEFAULT_KILL_GRACE_MS;
    int stderr_lines = 20;
    std::atomic<long> pid{0};
    std::mutex mu;  // guards efd against the proxy closing it, and released
    int efd = -1;   // the proxy's wakeup, written by poke(); -1 = no session
    std::vector<uint64_t> released;  // lent buffers freed here, to give back
    ~ProcState() { worker_bytes_free(arg); }
};

ProcState *state_of(const worker *w) { return static_cast<ProcState *>(w->ext.get()); }

// worker.cpp calls this (under w->mu) after a send, pause, resume or quit.
void poke(worker *w) {
    ProcState *st = state_of(w);
    std::lock_guard<std::mutex> lk(st->mu);
    if (st->efd >= 0) eventfd_write(st->efd, 1);
}

// A frame the child lent us was freed (any thread): tell the child, which
// reuses its pages — unless the session is over.
void give_back(const std::shared_ptr<void> &owner, uint64_t id) {
    auto *st = static_cast<ProcState *>(owner.get());
    std::lock_guard<std::mutex> lk(st->mu);
    if (st->efd < 0) return;
    st->released.push_back(id);
    if (st->released.size() == 1) eventfd_write(st->efd, 1);
}

// worker_yield without parking or receiving: a pause is forwarded to the
// child, and the proxy parks only once the child reports it has parked, so
// every value the child yielded before parking arrives before PAUSED.
// Returns false when the yield was refused (quit) and destroyed.
bool relay_yield(worker *w, worker_bytes *value) {
    Entry e(WORKER_EV_YIELDED);
    e.value = value;
    e.destroy = worker_bytes_free;
    e.size = value ? value->size : 0;  // frames count against capacity_bytes
    // Piped (worker_pipe): into the sink's input, under the link's policy.
    return (w->pipe_out ? pipe_push(w, std::move(e)) : push_data(w, std::move(e))) == WORKER_OK;
}

// ------------------------------------------------------------------ session

class Session {
public:
    Session(worker_ctx *ctx, ProcState *st)
        : w_(ctx->w), ctx_(ctx), st_(st), lender_{w_->ext, give_back}, err_tail_(st->stderr_lines) {}
    ~Session();
    void run();

private:
    bool spawn();
    void queue(wire::Type type, const char *text = nullptr, size_t len = 0,
               const worker_bytes *value = nullptr, bool has_value = false, int64_t a = 0);
    void sync_owner();
    void flush();
    bool read_messages();
    bool handle(wire::In &in);
    void park_if_paused();
    void read_stderr();
    void kill_child();
    void reap();
    void report();
    std::string who() const;

    worker *w_;
    worker_ctx *ctx_;
    ProcState *st_;
    int sock_ = -1, err_ = -1, efd_ = -1;
    int pidfd_ = -1;  // -1: the pid path (no pidfds), or not started
    pid_t pid_ = 0;
    std::deque<wire::Out> out_;
    std::vector<char> buf_;
    wire::Lender lender_;
    bool child_paused_ = false, quit_sent_ = false, outcome_ = false, eof_ = false;
    unsigned resumes_seen_ = 0;  // w_->resumes when the child was last told
    bool kill_sent_ = false, killed_ = false, broken_ = false, reaped_ = false;
    bool starved_ = false;  // a value could not be received here (see read_messages)
    bool close_sent_ = false;    // worker_close_input passed on
    std::deque<Sent> in_helper_;  // forwarded sends (no link) and piped values, not yet taken
    bool status_known_ = false;  // we reaped it: status_ is its wait status
    int status_ = 0;
    long long yields_ = 0;
    int64_t acks_ = 0;  // descriptor-passed values taken in, not yet acknowledged
    Clock::time_point deadline_;
    StderrTail err_tail_;
};

Session::~Session() {
    kill_child();  // only if still running (an early return)
    reap();
    {
        std::lock_guard<std::mutex> lk(st_->mu);
        st_->efd = -1;
        st_->released.clear();
    }
    if (pid_ > 0) remove_child(pid_);  // (reaped: already out) before its pidfd closes
    for (int fd : {sock_, err_, efd_, pidfd_})
        if (fd >= 0) close(fd);
}

std::string Session::who() const {
    return "process '" + w_->name + "' (pid " + std::to_string(pid_) + ")";
}

bool Session::spawn() {
    efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int sv[2] = {-1, -1}, ep[2] = {-1, -1};
    if (efd_ < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(ep, O_CLOEXEC) != 0) {
        int e = errno;
        for (int fd : {sv[0], sv[1], ep[0]})
            if (fd >= 0) close(fd);
        worker_fail(ctx_, WORKER_ENOMEM, "cannot create the process plumbing: %s", strerror(e));
        return false;
    }
    {
        std::lock_guard<std::mutex> lk(st_->mu);
        st_->efd = efd_;
    }
    sock_ = sv[0];
    err_ = ep[0];
    fcntl(err_, F_SETFL, O_NONBLOCK);
    // The child's ends become its fds 2 and 3: keep them off those numbers
    // so each dup2 in the child really copies (and clears close-on-exec).
    int child_sock = wire::dup_above(sv[1], 4), child_err = wire::dup_above(ep[1], 4);

    std::string path = helper_path();
    std::string proto = std::to_string(wire::kProtocol), ppid = std::to_string(getpid());
    char *argv[] = {const_cast<char *>(path.c_str()), const_cast<char *>("--qtworker-procd"),
                    const_cast<char *>(proto.c_str()), const_cast<char *>(ppid.c_str()),
                    const_cast<char *>(w_->name.c_str()), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, child_err, 2);
    posix_spawn_file_actions_adddup2(&fa, child_sock, 3);
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);  // whatever else leaked in
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);  // terminal signals are the viewer's business
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    int rc = (child_sock < 0 || child_err < 0)
                 ? EMFILE
                 : posix_spawn(&pid_, path.c_str(), &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (int fd : {child_sock, child_err})
        if (fd >= 0) close(fd);
    if (rc != 0) {
        pid_ = 0;
        worker_fail(ctx_, WORKER_EINVAL, "cannot start the helper program %s: %s", path.c_str(),
                    strerror(rc));
        return false;
    }
    st_->pid = pid_;
    bool gone;
    pidfd_ = watch_child(pid_, &gone);
    if (gone) {
        reaped_ = true;  // by the host already: never signalled or waited for by us
    } else if (!add_child(pid_, pidfd_)) {
        // Untracked, it could not be reaped at exit: end it now.
        if (pidfd_ >= 0) {
            if (pidfd_kill(pidfd_, SIGKILL) == 0) pidfd_wait(pidfd_, nullptr, 0);
        } else if (kill(pid_, SIGKILL) == 0) {
            waitpid(pid_, nullptr, 0);
        }
        reaped_ = true;
        worker_fail(ctx_, WORKER_ENOMEM, "cannot watch %s: out of memory", who().c_str());
        return false;
    }
    return true;
}

void Session::queue(wire::Type type, const char *text, size_t len, const worker_bytes *value,
                    bool has_value, int64_t a) {
    wire::Out o;
    if (wire::encode(o, type, a, 0, text, len, value, has_value))
        out_.push_back(std::move(o));
    else
        worker_warn(ctx_, "a value could not be passed to %s (out of memory or descriptors)",
                    who().c_str());
}

// Forwards what the owner asked since the last look: quit (dropping sends
// not yet passed on), pause / resume, sent values; and, quit or not, the
// flow control: acknowledgements and the lent buffers freed here.
void Session::sync_owner() {
    bool abort, pause, close;
    unsigned resumes;
    std::deque<Sent> sends;
    {
        std::lock_guard<qtw::StreamMutex> lk(w_->mu);
        abort = w_->abort_requested;
        pause = w_->pause_requested;
        resumes = w_->resumes;
        if (!abort) take_forwardable_locked(w_, sends);
        close = w_->input_closed && w_->inbox.empty() && !close_sent_;
    }
    if (abort && !quit_sent_) {
        // Sends, pauses and resumes not yet passed on are pointless now. INIT
        // and GO still go, so the child starts, sees the quit and ends as a
        // thread worker would; so do acknowledgements and releases.
        out_.erase(std::remove_if(out_.begin(), out_.end(),
                                  [](const wire::Out &o) {
                                      wire::Type t = wire::type_of(o);
                                      return t == wire::kSend || t == wire::kPause ||
                                             t == wire::kResume;
                                  }),
                   out_.end());
        queue(wire::kQuit);
        quit_sent_ = true;
        deadline_ = Clock::now() + std::chrono::milliseconds(st_->grace_ms);
    }
    // A resume since the last look reaches the child even when a pause was
    // asked again since: it steps to its next yield, as a thread worker does.
    if (!abort && child_paused_ && resumes != resumes_seen_) {
        queue(wire::kResume);
        child_paused_ = false;
    }
    resumes_seen_ = resumes;
    if (!abort && pause != child_paused_) {
        queue(pause ? wire::kPause : wire::kResume);
        child_paused_ = pause;
    }
    // After a quit too: the child's main thread may be waiting for window
    // credit to send a value it was delivering when the quit came, and only
    // once that is sent (and refused here) can it send its outcome and exit.
    if (acks_) {
        queue(wire::kAck, nullptr, 0, nullptr, false, acks_);
        acks_ = 0;
    }
    for (Sent &s : sends) {
        queue(wire::kSend, nullptr, 0, static_cast<worker_bytes *>(s.value), s.value != nullptr);
        if (s.destroy) s.destroy(s.value);  // forwarded: the child has its own copy
        in_helper_.push_back({nullptr, nullptr, s.link, s.size});  // received once the child took it
    }
    if (close && !abort) {
        queue(wire::kClose);
        close_sent_ = true;
    }
    std::vector<uint64_t> ids;
    {
        std::lock_guard<std::mutex> lk(st_->mu);
        ids.swap(st_->released);
    }
    const size_t per_message = wire::kInlineMax / sizeof(uint64_t) - 1;
    for (size_t i = 0; i < ids.size(); i += per_message) {
        worker_bytes chunk{std::min(per_message, ids.size() - i) * sizeof(uint64_t),
                           reinterpret_cast<unsigned char *>(ids.data() + i)};
        queue(wire::kRelease, nullptr, 0, &chunk, true);
    }
}

// Never blocks: a child writing to a full socket must still be read, or both
// sides would wait for each other.
void Session::flush() {
    while (!out_.empty()) {
        if (!wire::send(sock_, out_.front(), false)) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) out_.clear();  // the child is gone
            return;
        }
        out_.pop_front();
    }
}

void Session::run() {
    if (!spawn()) return;
    // The helper's own stream is bounded in bytes too (process_child.cpp).
    std::string init = st_->module + '\0' + st_->symbol + '\0' + std::to_string(w_->capacity_bytes);
    wire::Out o;
    if (!wire::encode(o, wire::kInit, wire::kProtocol, (int64_t)w_->capacity, init.data(),
                      init.size(), st_->arg, true)) {
        worker_fail(ctx_, WORKER_ENOMEM, "cannot pass the argument to %s", who().c_str());
        return;
    }
    out_.push_back(std::move(o));
    worker_bytes_free(st_->arg);
    st_->arg = nullptr;
    sync_owner();  // sends and a pause from before the start come first
    queue(wire::kGo);

    while (!eof_) {
        sync_owner();
        flush();
        int timeout = kPollMs;
        if (quit_sent_) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
            if (left.count() <= 0) {
                kill_child();
                break;
            }
            timeout = (int)std::min<long long>(left.count() + 1, kPollMs);
        }
        pollfd fds[4] = {{sock_, (short)(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0},
                         {err_, POLLIN, 0},
                         {efd_, POLLIN, 0},
                         {pidfd_, POLLIN, 0}};  // (-1: not polled)
        if (poll(fds, 4, timeout) < 0 && errno != EINTR) break;
        if (fds[2].revents) {
            eventfd_t v;
            eventfd_read(efd_, &v);
        }
        if (fds[1].revents) read_stderr();
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) read_messages();
        if (fds[3].revents && !eof_) {
            // The process has ended, so everything it sent is in the socket
            // now. Read it, and stop there: the end of the stream may never
            // come (a process it started can hold the socket open).
            while (read_messages()) {
            }
            eof_ = true;
        }
    }
    reap();
    report();
}

// Reads up to a batch of messages: true when it stopped at the batch's end
// (more may be waiting), false when there is nothing more now or ever.
bool Session::read_messages() {
    for (int i = 0; i < kBatch; i++) {
        if (eof_) return false;
        wire::In in;
        int rc = wire::receive(sock_, buf_, in, &lender_);
        if (rc == 0) return false;
        if (rc == 1 && handle(in)) continue;
        eof_ = true;
        if (rc == -1) return false;  // the child closed its end: it is ending
        // A value this process could not take (no descriptor, no memory) is
        // lost: the stream stops there rather than go on with a gap.
        if (rc == wire::kOutOfResources)
            starved_ = true;
        else
            broken_ = true;  // a malformed packet or an unknown message
        kill_child();
        return false;
    }
    return !eof_;
}

bool Session::handle(wire::In &in) {
    const char *text = in.text.c_str();
    // Handled below (in the stream, or refused): the child may send another.
    if (in.h.flags & wire::kValueFd) acks_++;
    switch (in.h.type) {
    case wire::kYield:
        // napari's progress={'total': N}: one step per yield, as worker_yield does
        if (relay_yield(w_, in.take()) && w_->progress_total > 0) {
            long long n = ++yields_, total = w_->progress_total;
            worker_progress(ctx_, n, n > total ? 0 : total,
                            w_->has_progress_desc ? w_->progress_desc.c_str() : nullptr);
        }
        break;
    case wire::kWarn: worker_warn(ctx_, "%s", text); break;
    case wire::kProgress:
        worker_progress(ctx_, in.h.a, in.h.b, (in.h.flags & wire::kHasText) ? text : nullptr);
        break;
    case wire::kCustom: worker_emit(ctx_, text, in.take(), worker_bytes_free); break;
    case wire::kOutput: {
        FILE *f = in.h.a == 2 ? worker_stderr(ctx_) : worker_stdout(ctx_);
        if (f) {
            fwrite(in.text.data(), 1, in.text.size(), f);
            fputc('\n', f);
        }
        break;
    }
    case wire::kPaused: park_if_paused(); break;
    case wire::kReturn: worker_return(ctx_, in.take(), worker_bytes_free); outcome_ = true; break;
    case wire::kFail: worker_fail(ctx_, (int)in.h.a, "%s", text); outcome_ = true; break;
    case wire::kAborted: outcome_ = true; break;
    case wire::kTaken: helper_took(w_, in_helper_, in.h.a); break;
    default: return false;
    }
    return true;
}

// The child has parked: park the proxy too (PAUSED, then RESUMED or quit,
// enter the stream in order). Skipped if the pause was cancelled meanwhile.
void Session::park_if_paused() {
    bool park;
    {
        std::lock_guard<qtw::StreamMutex> lk(w_->mu);
        park = w_->pause_requested && !w_->abort_requested;
    }
    if (park) worker_abort_requested(ctx_);
}

void Session::read_stderr() {
    if (err_tail_.pump(err_)) return;
    close(err_);
    err_ = -1;
}

// SIGKILL, once; killed_ says whether it was sent (not when the process was
// gone already: reaped by the host, which a pidfd tells).
void Session::kill_child() {
    if (pid_ > 0 && !reaped_ && !kill_sent_) {
        kill_sent_ = true;
        killed_ = kill_if_live(pid_);
    }
}

// Waits for the process (it has closed its socket or ended, or was killed):
// within the grace period (at least a second when nobody asked it to quit),
// then SIGKILL. Only our own child is waited for, never another child of the
// host; with a pidfd, its exit wakes us.
void Session::reap() {
    if (pid_ <= 0 || reaped_) return;
    auto patience = std::chrono::milliseconds(std::max(st_->grace_ms, 1000));
    auto limit = quit_sent_ ? deadline_ : Clock::now() + patience;
    auto nap = 100us;
    for (;;) {
        pid_t r = try_reap(pid_, &status_);
        if (r == pid_) {
            status_known_ = true;
            break;
        }
        // Gone: the host reaped it (its own waitpid, or SIGCHLD ignored), or
        // we are exiting. Its exit status is unknown.
        if (r < 0) break;
        auto now = Clock::now();
        if (now >= limit) kill_child();
        if (pidfd_ >= 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - now).count();
            int ms = kill_sent_ ? kPollMs : (int)std::clamp<long long>(left + 1, 1, kPollMs);
            pollfd p{pidfd_, POLLIN, 0};
            poll(&p, 1, ms);
        } else {
            std::this_thread::sleep_for(nap);
            nap = std::min<std::chrono::microseconds>(nap * 2, kill_sent_ ? 1ms : 10ms);
        }
    }
    reaped_ = true;
    if (err_ >= 0) read_stderr();  // the rest of what it wrote before it died
}

// Turns how the process ended into the outcome (ERRORED) or a warning.
void Session::report() {
    if (pid_ <= 0) return;
    std::string tail = err_tail_.text();
    if (broken_) {
        worker_fail(ctx_, WORKER_ESTATE, "%s broke the protocol and was killed%s", who().c_str(),
                    tail.c_str());
        return;
    }
    if (starved_) {
        worker_fail(ctx_, WORKER_ENOMEM,
                    "a value of %s could not be received (out of memory or file descriptors in "
                    "this process): it was stopped%s",
                    who().c_str(), tail.c_str());
        return;
    }
    if (killed_) {
        if (quit_sent_)
            worker_warn(ctx_, "%s did not end within %d ms after quit: killed", who().c_str(),
                        st_->grace_ms);
        else if (!outcome_)
            worker_fail(ctx_, WORKER_ESTATE, "%s closed its connection but did not exit: killed%s",
                        who().c_str(), tail.c_str());
        return;
    }
    if (!status_known_) {
        // Reaped by the host (a waitpid(-1) of its own, or SIGCHLD ignored):
        // how it ended is lost. An outcome the function sent stands.
        static const char unknown[] =
            "its exit status is unknown (the application reaped it, not the library)";
        if (outcome_) return;
        if (quit_sent_)  // the outcome is ABORTED
            worker_warn(ctx_, "%s ended after quit without an outcome; %s%s", who().c_str(),
                        unknown, tail.c_str());
        else
            worker_fail(ctx_, WORKER_ESTATE, "%s ended without an outcome; %s%s", who().c_str(),
                        unknown, tail.c_str());
        return;
    }
    std::string how;
    int code = 0;
    if (WIFSIGNALED(status_)) {
        code = WTERMSIG(status_);
        how = "killed by " + signal_text(code) + (WCOREDUMP(status_) ? ", core dumped" : "");
    } else if (WIFEXITED(status_) && WEXITSTATUS(status_) != 0) {
        code = WEXITSTATUS(status_);
        how = "exited with status " + std::to_string(code);
    } else if (!outcome_ && !quit_sent_) {
        code = WORKER_ESTATE;
        how = "ended without an outcome";
    } else {
        return;  // a clean end
    }
    if (outcome_)  // the result stands; the late death is still worth a word
        worker_warn(ctx_, "%s %s after its function ended%s", who().c_str(), how.c_str(),
                    tail.c_str());
    else
        worker_fail(ctx_, code, "%s %s%s", who().c_str(), how.c_str(), tail.c_str());
}

void proxy_main(worker_ctx *ctx, void *arg) {
    // The proxy mostly waits for its child: it does not count against the
    // pool's limit of running tasks (the child does the work). Out of memory
    // somewhere in the session: the Session's destructor has killed and
    // reaped the helper by the catch; nothing is thrown through the C
    // function type.
    pool_blocking_begin();
    try {
        Session s(ctx, static_cast<ProcState *>(arg));
        s.run();
    } catch (...) {
        worker_fail(ctx, WORKER_ENOMEM, "process worker: out of memory");
    }
    pool_blocking_end();
}

}  // namespace
}  // namespace qtw

extern "C" {

void worker_process_options_init(worker_process_options *popts) {
    if (!popts) return;
    popts->kill_grace_ms = WORKER_DEFAULT_KILL_GRACE_MS;
    popts->stderr_lines = 20;
}

worker *worker_create_process(const char *module_path, const char *symbol, const void *arg,
                              size_t arg_size, const worker_options *opts,
                              const worker_process_options *popts) {
    worker_process_options defaults;
    worker_process_options_init(&defaults);
    if (!popts) popts = &defaults;
    bool bad = !module_path || !*module_path || !symbol || !*symbol || (!arg && arg_size) ||
               popts->kill_grace_ms < 0 || popts->stderr_lines < 0;
    std::shared_ptr<qtw::ProcState> st;
    if (!bad) {
        st = std::make_shared<qtw::ProcState>();
        st->module = module_path;
        st->symbol = symbol;
        st->grace_ms = popts->kill_grace_ms;
        st->stderr_lines = popts->stderr_lines;
        st->arg = worker_bytes_copy(arg, arg_size);
        if (!st->arg) return worker_create(nullptr, nullptr, nullptr, nullptr);
    }
    // worker_create validates the options and records worker_last_error();
    // with a NULL function it records WORKER_EINVAL for our own bad input.
    worker *w = worker_create(bad ? nullptr : qtw::proxy_main, st.get(), nullptr, opts);
    if (!w) return nullptr;
    std::lock_guard<qtw::StreamMutex> lk(w->mu);  // a scope close may quit it already
    w->ext = st;
    w->poke = qtw::poke;
    return w;
}

long worker_process_id(const worker *w) {
    if (!w || !qtw::acquire(w)) return WORKER_EINVAL;
    long pid = w->poke == qtw::poke ? qtw::state_of(w)->pid.load() : (long)WORKER_EINVAL;
    qtw::release(const_cast<worker *>(w));
    return pid;
}

}  // extern "C"
