// Process-wide capture of stdout / stderr (worker_capture_stdio), two paths:
// 1. C stdio: the C library's `stdout` / `stderr` pointers are swapped for
//    fopencookie streams. Their write callback runs on the printing thread,
//    so a line printed inside a worker function is that worker's, exactly.
// 2. Descriptors 1 / 2: a pipe each, read by one thread. Bytes that bypass
//    stdio (write(2), std::cout, Fortran, child processes) arrive without a
//    thread: a line goes to a worker only when exactly one worker function
//    is running.
// Every byte also reaches the original descriptor. A captured line never
// waits: the printing thread may hold the stdio lock the GUI needs.
#include "worker_p.h"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace qtw {
namespace {

constexpr int kStreams = 2;  // 0: stdout / fd 1, 1: stderr / fd 2

// A stdio stream of path 1. Created once and kept: a thread may still hold
// the pointer after the capture ends, so it only ever changes its target.
struct CookieStream {
    int stream;
    std::atomic<int> fd;  // the original descriptor while capturing, else 1 / 2
    FILE *file = nullptr;
};

struct Capture {
    std::mutex mu;  // one start / stop at a time; guards the fields below
    unsigned flags = 0;
    int saved[kStreams] = {-1, -1};    // the original fd 1 / 2
    int pipe_rd[kStreams] = {-1, -1};  // path 2: what was written to fd 1 / 2
    int stop[2] = {-1, -1};            // tells the reader to finish
    FILE *old_file[kStreams] = {nullptr, nullptr};
    CookieStream *cookie[kStreams] = {nullptr, nullptr};
    std::thread reader;
    std::atomic<long long> unattributed{0};
};

// Leaked on purpose: a printing thread may use it during static destruction.
Capture &capture() {
    static Capture *c = new Capture;
    return *c;
}

void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = ::write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return;  // the original descriptor is gone: nothing to pass on to
        }
        p += k;
        n -= size_t(k);
    }
}

void give(worker *w, std::string &&line, int stream) {
    if (!w || !try_push_output(w, std::move(line), stream + 1)) capture().unattributed++;
}

// This thread's last write to a stream ended inside a line (a piece).
thread_local bool piece_open[kStreams] = {false, false};

// Path 1: the printing thread's worker, if it is inside a worker function.
ssize_t cookie_write(void *cookie, const char *buf, size_t n) {
    auto *s = static_cast<CookieStream *>(cookie);
    write_all(s->fd.load(), buf, n);
    worker_ctx *ctx = current_ctx();
    // The newline that ends a line this thread's stdio wrote out in pieces
    // (a printf longer than its buffer, an fflush) ends the last piece, not
    // an empty line of its own.
    size_t skip = piece_open[s->stream] && n > 0 && buf[0] == '\n' ? 1 : 0;
    worker *w = ctx ? ctx->w : nullptr;
    try {
        std::string partial;
        split_lines(partial, buf + skip, n - skip,
                    [&](const std::string &l) { give(w, std::string(l), s->stream); });
        // A piece without '\n' (an explicit fflush, a full buffer) is a line of
        // its own: the stream is shared by every thread, so it cannot be held.
        piece_open[s->stream] = !partial.empty();
        if (!partial.empty()) give(w, std::move(partial), s->stream);
    } catch (const std::bad_alloc &) {
        capture().unattributed++;  // passed through above; never thrown into printf's caller
    }
    return ssize_t(n);
}

CookieStream *cookie_for(int stream) {
    auto *s = new CookieStream{stream, {stream + 1}};
    cookie_io_functions_t io{};
    io.write = cookie_write;
    s->file = fopencookie(s, "w", io);
    if (!s->file) {
        delete s;
        return nullptr;
    }
    setvbuf(s->file, nullptr, _IOLBF, BUFSIZ);  // a line is one write
    return s;
}

// Path 2: the worker, if exactly one worker function is running right now.
worker *only_running_worker(std::vector<worker *> &refs) {
    worker *only = nullptr;
    int running = 0;
    for (worker *w : refs) {
        std::lock_guard<StreamMutex> lk(w->mu);
        if (w->phase == Phase::Running) {
            running++;
            only = w;
        }
    }
    return running == 1 ? only : nullptr;
}

void attribute(std::string &&line, int stream) {
    std::vector<worker *> refs = live_workers();
    give(only_running_worker(refs), std::move(line), stream);
    for (worker *w : refs) release(w);
}

void reader_main(int rd0, int rd1, int out0, int out1, int stop_fd) {
    int rd[kStreams] = {rd0, rd1};
    const int out[kStreams] = {out0, out1};
    std::string partial[kStreams];
    char buf[4096];
    bool stopping = false;
    for (;;) {
        pollfd fds[kStreams + 1];
        int n = 0;
        for (int i = 0; i < kStreams; i++) fds[n++] = {rd[i], POLLIN, 0};
        fds[n++] = {stop_fd, POLLIN, 0};
        // Once told to stop, only what is already in the pipes is read.
        if (poll(fds, nfds_t(n), stopping ? 0 : -1) < 0 && errno != EINTR) break;
        bool got = false;
        for (int i = 0; i < kStreams; i++) {
            if (rd[i] < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t k = ::read(rd[i], buf, sizeof buf);
            if (k == 0) rd[i] = -1;  // every writer closed it (stop closes the fd)
            if (k <= 0) continue;
            got = true;
            write_all(out[i], buf, size_t(k));
            try {
                split_lines(partial[i], buf, size_t(k), [&](const std::string &l) { attribute(std::string(l), i); });
            } catch (const std::bad_alloc &) {
                capture().unattributed++;  // passed through; the thread goes on
                partial[i].clear();
            }
        }
        if (fds[kStreams].revents & POLLIN) stopping = true;
        if (stopping && !got) break;
    }
    for (int i = 0; i < kStreams; i++) {
        try {
            if (!partial[i].empty()) attribute(std::move(partial[i]), i);
        } catch (const std::bad_alloc &) {
            capture().unattributed++;
        }
    }
}

CookieStream *guarded_cookie_for(int i) {
    try {
        return cookie_for(i);
    } catch (...) {
        return nullptr;
    }
}

void close_fd(int &fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Redirects fd (1 or 2) into a new pipe; the original stays at c.saved[i].
bool redirect(Capture &c, int i) {
    int p[2];
    c.saved[i] = fcntl(i + 1, F_DUPFD_CLOEXEC, 3);
    if (c.saved[i] < 0 || pipe2(p, O_CLOEXEC) != 0) return false;
    dup2(p[1], i + 1);  // fd 1 / 2 stay inheritable, as they were
    ::close(p[1]);
    c.pipe_rd[i] = p[0];
    fcntl(p[0], F_SETFL, O_NONBLOCK);  // the final drain must not block
    return true;
}

// Only the two streams being swapped: fflush(NULL) would take every FILE's
// lock, and a worker_stdout() writer waiting at capacity holds its own (a
// deadlock whenever the GUI thread calls this while one waits).
void flush_std_streams() {
    fflush(stdout);
    fflush(stderr);
}

void stop_locked(Capture &c) {
    flush_std_streams();  // what stdio still holds goes out through the cookies
    for (int i = 0; i < kStreams; i++) {
        if (c.old_file[i]) (i == 0 ? stdout : stderr) = c.old_file[i];
        c.old_file[i] = nullptr;
        if (c.cookie[i]) c.cookie[i]->fd.store(i + 1);
        if (c.saved[i] >= 0) dup2(c.saved[i], i + 1);
    }
    if (c.reader.joinable()) {
        char b = 1;
        write_all(c.stop[1], &b, 1);
        c.reader.join();
    }
    for (int i = 0; i < kStreams; i++) {
        close_fd(c.saved[i]);
        close_fd(c.pipe_rd[i]);
    }
    close_fd(c.stop[0]);
    close_fd(c.stop[1]);
    c.flags = 0;
}

}  // namespace
}  // namespace qtw

extern "C" {

int worker_capture_stdio(unsigned flags) {
    using namespace qtw;
    if (flags & ~unsigned(WORKER_CAPTURE_STDOUT | WORKER_CAPTURE_STDERR)) return WORKER_EINVAL;
    if (current_ctx()) return WORKER_ETHREAD;
    Capture &c = capture();
    std::lock_guard<std::mutex> lk(c.mu);
    if (flags == 0) {
        if (c.flags) stop_locked(c);
        return WORKER_OK;
    }
    if (c.flags) return WORKER_ESTATE;
    for (int i = 0; i < kStreams; i++)
        if ((flags & (1u << i)) && !c.cookie[i] && !(c.cookie[i] = guarded_cookie_for(i))) return WORKER_ENOMEM;
    flush_std_streams();
    c.flags = flags;
    bool ok = pipe2(c.stop, O_CLOEXEC) == 0;
    for (int i = 0; ok && i < kStreams; i++) {
        if (!(flags & (1u << i))) continue;
        ok = redirect(c, i);
        if (!ok) break;
        c.cookie[i]->fd.store(c.saved[i]);
        c.old_file[i] = i == 0 ? stdout : stderr;
        (i == 0 ? stdout : stderr) = c.cookie[i]->file;
    }
    if (!ok) {
        stop_locked(c);  // undoes what was done
        return WORKER_ENOMEM;
    }
    int out[kStreams];
    for (int i = 0; i < kStreams; i++) out[i] = c.saved[i] >= 0 ? c.saved[i] : i + 1;
    try {
        c.reader = std::thread(reader_main, c.pipe_rd[0], c.pipe_rd[1], out[0], out[1], c.stop[0]);
    } catch (...) {
        stop_locked(c);  // no reader: undo the redirection
        return status_of_current_exception();
    }
    return WORKER_OK;
}

long long worker_capture_unattributed(void) { return qtw::capture().unattributed.load(); }

}  // extern "C"
