// Process workers, helper side (worker_procd_main, run by qtworker-procd).
// The module's function runs as an ordinary local worker of this process, so
// worker_yield / worker_abort_requested / receiving / pausing behave exactly
// as in a thread worker. Its events, delivered on this process's main thread,
// become messages to the parent; the parent's sends, pause, resume and quit
// become the same owner-side calls here. The socket is fd 3.
#include "process_wire.h"
#include "worker_p.h"

#include <QCoreApplication>
#include <QSocketNotifier>

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qtw {
namespace {

constexpr int kSock = 3;
// The local stream is a small buffer in front of the socket (the parent's
// stream is the real one): min(the worker's capacity, this), from INIT.
constexpr int64_t kMaxChildCapacity = 64;
// Likewise in bytes, when the worker has a budget: min(capacity_bytes, this)
// (a larger frame still goes, alone), so the helper holds little beyond it.
constexpr size_t kMaxChildBytes = 4u << 20;

worker *g_worker = nullptr;
std::vector<char> g_buf;
int g_unacked = 0;  // values sent by descriptor the parent has not taken in yet

void read_parent();

[[noreturn]] void leave(int code) {
    std::fflush(nullptr);
    _exit(code);  // no atexit handlers or module destructors after the outcome
}

// Blocking: when the parent falls behind, the socket fills, this thread
// waits, the local stream fills, and the function waits at its next yield.
void send_message(wire::Type type, int64_t a, int64_t b, const char *text,
                  const worker_bytes *value, bool has_value) {
    bool large = has_value && wire::by_descriptor(value);
    while (large && g_unacked >= wire::kWindow) {  // the parent's stream is full
        pollfd p{kSock, POLLIN, 0};
        poll(&p, 1, -1);
        read_parent();
    }
    g_unacked += large;
    wire::Out o;
    if (!wire::encode(o, type, a, b, text, text ? std::strlen(text) : 0, value, has_value)) {
        static const char lost[] = "a value could not be passed to the parent "
                                   "(out of memory or descriptors)";
        if (!wire::encode(o, wire::kWarn, 0, 0, lost, sizeof lost - 1, nullptr, false)) leave(1);
    }
    if (!wire::send(kSock, o, true)) leave(1);  // the parent is gone
}

void send_value(wire::Type type, worker_event *ev, const char *text = nullptr) {
    send_message(type, 0, 0, text, static_cast<worker_bytes *>(ev->value), ev->value != nullptr);
}

void send_text(wire::Type type, int64_t a, const char *text) {
    send_message(type, a, 0, text ? text : "", nullptr, false);
}

void send_bare(wire::Type type) { send_message(type, 0, 0, nullptr, nullptr, false); }

// Values stay the library's: it destroys them after this callback, which
// for a shared buffer only drops this process's mapping (or lends it).
void on_event(worker_event *ev, void *) {
    switch (ev->type) {
    case WORKER_EV_YIELDED: send_value(wire::kYield, ev); break;
    case WORKER_EV_WARNED: send_text(wire::kWarn, 0, ev->message); break;
    case WORKER_EV_PROGRESS:  // text is optional here: NULL stays NULL
        send_message(wire::kProgress, ev->done, ev->total, ev->message, nullptr, false);
        break;
    case WORKER_EV_CUSTOM: send_value(wire::kCustom, ev, ev->name ? ev->name : ""); break;
    case WORKER_EV_OUTPUT: send_text(wire::kOutput, ev->code, ev->message); break;
    case WORKER_EV_PAUSED: send_bare(wire::kPaused); break;
    case WORKER_EV_RETURNED: send_value(wire::kReturn, ev); break;
    case WORKER_EV_ERRORED: send_text(wire::kFail, ev->code, ev->message); break;
    case WORKER_EV_ABORTED: send_bare(wire::kAborted); break;
    case WORKER_EV_FINISHED: leave(0);
    default: break;  // STARTED and RESUMED: the parent's proxy emits its own
    }
}

// The function took a sent value: the parent counts it received (a pipe
// into this process waits on that). Counted here, under the worker's mu on
// the function's thread; the main thread sends the count (taken_wake).
std::atomic<long long> g_taken{0};
int g_taken_pipe[2] = {-1, -1};

void note_taken(worker *) {
    g_taken.fetch_add(1);
    char c = 1;
    if (write(g_taken_pipe[1], &c, 1) < 0) {}  // full: a wake-up is pending anyway
}

void send_taken() {
    char drain[64];
    while (read(g_taken_pipe[0], drain, sizeof drain) > 0) {}
    long long n = g_taken.exchange(0);
    if (n > 0) send_message(wire::kTaken, n, 0, nullptr, nullptr, false);
}

void given_back(const worker_bytes *ids) {
    for (size_t i = 0; ids && i + sizeof(uint64_t) <= ids->size; i += sizeof(uint64_t)) {
        uint64_t id;
        std::memcpy(&id, ids->data + i, sizeof id);
        bytes::given_back(id);
    }
}

// Owner-side calls from the parent. A failed read means the parent is gone
// (or broke the protocol): nobody is left to report to.
void read_parent() {
    for (;;) {
        wire::In in;
        int rc = wire::receive(kSock, g_buf, in);
        if (rc == 0) return;
        if (rc < 0) leave(1);
        switch (in.h.type) {
        case wire::kSend: worker_send(g_worker, in.take(), worker_bytes_free); break;
        case wire::kPause: worker_pause(g_worker); break;
        case wire::kResume: worker_resume(g_worker); break;
        case wire::kQuit: worker_quit(g_worker); break;
        case wire::kClose: worker_close_input(g_worker); break;
        case wire::kGo: worker_start(g_worker); break;
        case wire::kAck: g_unacked = std::max<int64_t>(0, g_unacked - in.h.a); break;
        case wire::kRelease: given_back(in.value); break;
        default: leave(1);
        }
    }
}

// ---- a crash of the function's thread: first pass on what it had yielded
// (still queued here), then die of the same signal. The crashing thread asks
// the main thread to deliver everything queued and waits for it, bounded
// (the crash may have left a lock held); the previous handler (the default,
// or a sanitizer's) then takes over.
constexpr int kFatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
constexpr int kFlushWaitMs = 1000;
struct sigaction g_previous[NSIG];
int g_flush_ask[2] = {-1, -1}, g_flush_done[2] = {-1, -1};
std::atomic<int> g_crashing{0};

// On the function's thread (not the main one), once: the main thread
// delivers what is queued; async-signal-safe.
void ask_main_to_flush() {
    if (gettid() == getpid() || g_crashing.exchange(1) != 0) return;
    char c = 1;
    if (write(g_flush_ask[1], &c, 1) == 1) {
        pollfd p{g_flush_done[0], POLLIN, 0};
        poll(&p, 1, kFlushWaitMs);
    }
}

void on_fatal(int sig, siginfo_t *info, void *) {
    int saved = errno;
    ask_main_to_flush();
    sigaction(sig, &g_previous[sig], nullptr);
    // A fault recurs when the instruction runs again; a sent signal must be re-sent.
    if (info->si_code <= 0) raise(sig);
    errno = saved;
}

void flush_before_crash() {
    deliver_all_on_this_thread();
    char c = 1;
    if (write(g_flush_done[1], &c, 1) < 0) leave(1);
}

bool install_crash_flush() {
    if (pipe2(g_flush_ask, O_CLOEXEC) != 0 || pipe2(g_flush_done, O_CLOEXEC) != 0) return false;
    struct sigaction sa {};
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (int sig : kFatal) sigaction(sig, &sa, &g_previous[sig]);
    // The function calling exit() (the library itself leaves with _exit):
    // what it yielded before goes out first, as before a crash.
    std::atexit(ask_main_to_flush);
    return true;
}

// Before the local worker exists (bad module): the outcome, then leave.
[[noreturn]] void fail_early(const std::string &message) {
    send_message(wire::kFail, WORKER_EINVAL, 0, message.c_str(), nullptr, false);
    leave(0);
}

// The first message: INIT with the module, the symbol and the argument.
bool read_init(std::string &module, std::string &symbol, worker_bytes *&arg, size_t &capacity,
               size_t &capacity_bytes) {
    wire::In in;
    int rc;
    do {
        pollfd p{kSock, POLLIN, 0};
        poll(&p, 1, -1);
        rc = wire::receive(kSock, g_buf, in);
    } while (rc == 0);
    if (rc < 0 || in.h.type != wire::kInit) return false;
    if (in.h.a != (int64_t)wire::kProtocol)
        fail_early("qtworker-procd speaks another protocol version than the library");
    size_t nul = in.text.find('\0');
    size_t nul2 = nul == std::string::npos ? nul : in.text.find('\0', nul + 1);
    if (nul2 == std::string::npos) return false;
    capacity = (size_t)std::min(std::max<int64_t>(in.h.b, 1), kMaxChildCapacity);
    capacity_bytes = std::min<size_t>(std::strtoull(in.text.c_str() + nul2 + 1, nullptr, 10),
                                      kMaxChildBytes);
    module = in.text.substr(0, nul);
    symbol = in.text.substr(nul + 1, nul2 - nul - 1);
    arg = in.has_value ? in.take() : worker_bytes_new(0);
    return arg != nullptr;
}

}  // namespace
}  // namespace qtw

extern "C" int worker_procd_main(int argc, char **argv) {
    using namespace qtw;
    if (argc < 5 || std::strcmp(argv[1], "--qtworker-procd") != 0 || fcntl(kSock, F_GETFD) < 0) {
        std::fprintf(stderr, "qtworker-procd: runs process workers for the qtworker "
                             "library, which starts it; not for direct use\n");
        return 2;
    }
    // Die with the thread that spawned us (the viewer crashed or was killed):
    // no orphan keeps computing. Check the parent did not go first.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((long)getppid() != std::atol(argv[3])) leave(1);
    setvbuf(stdout, nullptr, _IOLBF, 0);  // printed lines reach the terminal before a crash

    bytes::enable_lending();  // frames go to the parent and come back for reuse
    std::string module, symbol;
    worker_bytes *arg = nullptr;
    size_t capacity = 1, capacity_bytes = 0;
    if (!read_init(module, symbol, arg, capacity, capacity_bytes)) leave(1);
    void *handle = dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) fail_early("cannot load module '" + module + "': " + dlerror());
    dlerror();
    void *sym = dlsym(handle, symbol.c_str());
    if (!sym) {
        const char *why = dlerror();
        fail_early("module '" + module + "' has no function '" + symbol + "'" +
                   (why ? std::string(": ") + why : std::string()));
    }
    worker_fn fn;
    std::memcpy(&fn, &sym, sizeof fn);

    static int qt_argc = 1;
    QCoreApplication app(qt_argc, argv);
    worker_options o;
    worker_options_init(&o);
    o.name = argv[4];
    o.capacity = capacity;
    o.capacity_bytes = capacity_bytes;
    g_worker = worker_create(fn, arg, worker_bytes_free, &o);
    if (!g_worker) fail_early("cannot create the worker");
    g_worker->helper_process = true;  // no worker_call_home: see qtworker.h
    if (pipe2(g_taken_pipe, O_CLOEXEC | O_NONBLOCK) != 0) fail_early("cannot create a pipe");
    g_worker->on_input_taken = note_taken;
    for (int t = WORKER_EV_STARTED; t <= WORKER_EV_OUTPUT; t++)
        worker_connect(g_worker, (worker_event_type)t, on_event, nullptr, nullptr);
    QSocketNotifier notifier(kSock, QSocketNotifier::Read);
    QObject::connect(&notifier, &QSocketNotifier::activated, [] { read_parent(); });
    QSocketNotifier taken(g_taken_pipe[0], QSocketNotifier::Read);
    QObject::connect(&taken, &QSocketNotifier::activated, [] { send_taken(); });
    std::unique_ptr<QSocketNotifier> crash;
    if (install_crash_flush()) {
        crash = std::make_unique<QSocketNotifier>(g_flush_ask[0], QSocketNotifier::Read);
        QObject::connect(crash.get(), &QSocketNotifier::activated, [] { flush_before_crash(); });
    }
    read_parent();  // what came with INIT: sends, a pause, GO
    return app.exec();
}
