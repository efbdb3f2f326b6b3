// Worker output: worker_stdout()/worker_stderr() hand the worker a FILE *
// (glibc fopencookie) whose complete lines become OUTPUT events, in order with
// the worker's other events. Lines longer than WORKER_MAX_LINE are split.
#include "fault.h"
#include "worker_p.h"

#include <cstdio>

namespace qtw {

struct OutputStream {
    worker *w;
    int stream_no;  // 1 = stdout-like, 2 = stderr-like
    std::string partial;
    FILE *file = nullptr;
    // w again, published once the stream is made: exit()'s flush reaches
    // the stream with no lock between it and its maker.
    std::atomic<worker *> published{nullptr};
};

namespace {

// Output is never dropped: this waits at capacity (push_data) and for
// memory. Nothing is thrown either: the caller is the C library's stdio,
// called from the worker's C code (a bad_alloc escaped through fprintf).
void emit_line(OutputStream *o, const std::string &line) {
    for (;;) {
        try {
            Entry e(WORKER_EV_OUTPUT);
            fault::check(fault::Text);
            e.text = std::make_unique<std::string>(line);
            e.code = o->stream_no;
            if (push_data(o->w, std::move(e)) != WORKER_ENOMEM) return;  // ENOMEM destroyed e
        } catch (const std::bad_alloc &) {
        }
        wait_for_memory();
    }
}

// The home thread only writes a worker's FILE through exit()'s unlocked
// flush of every stream, while the worker is still writing the same bytes:
// a second copy, raced on `partial`, that waits at capacity for room only
// this very thread could make. Those bytes are the worker's to emit.
// The worker's own thread is known without asking Qt: QThread::currentThread
// allocates on a thread Qt has not seen yet, and threw bad_alloc into
// fprintf when memory was short.
bool written_by_home_thread(const OutputStream *o) {
    worker *w = o->published.load(std::memory_order_acquire);
    worker_ctx *ctx = current_ctx();
    if (ctx && ctx->w == w) return false;
    try {
        std::lock_guard<StreamMutex> lk(w->mu);
        return dispatcher_is_current_thread(w->dispatcher);
    } catch (const std::bad_alloc &) {
        return false;  // not a thread with an event loop, so not the home thread
    }
}

ssize_t write_lines(void *cookie, const char *buf, size_t size) {
    auto *o = static_cast<OutputStream *>(cookie);
    if (written_by_home_thread(o)) return (ssize_t)size;
    size_t done = 0;
    while (done < size) {
        try {
            split_lines(o->partial, buf, size, [o](const std::string &line) { emit_line(o, line); }, done);
        } catch (const std::bad_alloc &) {
            wait_for_memory();  // the line being made: then on from the byte it stopped at
        }
    }
    return (ssize_t)size;
}

int close_lines(void *cookie) {
    auto *o = static_cast<OutputStream *>(cookie);
    if (!o->partial.empty()) emit_line(o, o->partial);  // a last line without '\n'
    delete o;
    return 0;
}

}  // namespace

FILE *open_output(worker *w, int stream_no) {
    OutputStream *&slot = w->output[stream_no - 1];
    if (slot) return slot->file;
    auto *o = new OutputStream{w, stream_no, {}, nullptr};
    cookie_io_functions_t io{};
    io.write = write_lines;
    io.close = close_lines;
    o->file = fopencookie(o, "w", io);
    if (!o->file) {
        delete o;
        return nullptr;
    }
    // Line buffered: a complete line reaches the stream at its '\n', so it
    // stays in order with a worker_yield() that follows it.
    setvbuf(o->file, nullptr, _IOLBF, BUFSIZ);
    o->published.store(w, std::memory_order_release);
    slot = o;
    return o->file;
}

void close_outputs(worker *w) {
    for (OutputStream *&o : w->output) {
        if (!o) continue;
        FILE *f = o->file;
        o = nullptr;
        fclose(f);  // flushes, emits the partial line, frees the stream
    }
}

}  // namespace qtw
