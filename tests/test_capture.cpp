// worker_capture_stdio: the process's stdout / stderr captured while every
// byte still reaches the original descriptor; lines attributed to the worker
// that printed them where that can be known.
#include "harness.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <thread>
#include <unistd.h>

using namespace th;

namespace {

// Points descriptor fd at a temporary file for the test (the "original"
// descriptor of the capture), and reads back what reached it.
class FileOnFd {
public:
    explicit FileOnFd(int fd) : fd_(fd) {
        std::fflush(nullptr);
        char tmpl[] = "/tmp/qtw-capture-XXXXXX";
        file_ = mkstemp(tmpl);
        path_ = tmpl;
        saved_ = dup(fd);
        dup2(file_, fd);
    }
    ~FileOnFd() {
        restore();
        ::close(file_);
        unlink(path_.c_str());
    }
    void restore() {
        if (saved_ < 0) return;
        std::fflush(nullptr);
        dup2(saved_, fd_);
        ::close(saved_);
        saved_ = -1;
    }
    std::string text() const {
        std::string s;
        char buf[4096];
        ssize_t n;
        for (off_t off = 0; (n = pread(file_, buf, sizeof buf, off)) > 0; off += n) s.append(buf, size_t(n));
        return s;
    }

private:
    int fd_, file_, saved_;
    std::string path_;
};

std::vector<std::string> outputs(const Recorder &r, const char *stream) {
    std::vector<std::string> out;
    for (auto &e : r.events())
        if (e.type == WORKER_EV_OUTPUT && e.name == stream) out.push_back(e.message);
    return out;
}

bool contains(const std::string &s, const char *part) { return s.find(part) != std::string::npos; }

// Spins (on a worker thread) until pred() or 10 s.
template <typename P>
bool spin_until(P pred) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

std::atomic<int> raw_seen{0};

}  // namespace

TEST(Capture, PrintfInsideAWorkerBecomesItsOutputAndStillReachesTheTerminal) {
    FileOnFd out(1);
    raw_seen = 0;
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
    worker *w = worker_create([](worker_ctx *, void *) {
        for (int i = 0; i < 3; i++) std::printf("epoch %d\n", i);
        // Past stdio: only the descriptor sees it. The only running worker
        // gets it; stay running until the GUI has had it.
        ASSERT_EQ(::write(1, "raw line\n", 9), 9);
        EXPECT_TRUE(spin_until([] { return raw_seen.load() > 0; }));
    }, nullptr, nullptr, nullptr);
    Recorder r(w);
    worker_connect(w, WORKER_EV_OUTPUT, [](worker_event *ev, void *) {
        if (std::string(ev->message) == "raw line") raw_seen++;
    }, nullptr, nullptr);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    out.restore();
    std::vector<std::string> lines = outputs(r, "stdout");
    std::vector<std::string> epochs(lines.begin(), lines.end());
    epochs.erase(std::remove(epochs.begin(), epochs.end(), "raw line"), epochs.end());
    EXPECT_EQ(epochs, (std::vector<std::string>{"epoch 0", "epoch 1", "epoch 2"}));
    EXPECT_EQ(raw_seen.load(), 1);
    for (auto &e : r.events())
        if (e.type == WORKER_EV_OUTPUT) {
            EXPECT_EQ(e.code, 1);
        }
    std::string passed = out.text();
    EXPECT_TRUE(contains(passed, "epoch 0\nepoch 1\nepoch 2\n")) << passed;
    EXPECT_TRUE(contains(passed, "raw line\n")) << passed;
    worker_unref(w);
}

// Long printf lines (a printf longer than stdio's buffer is written out in
// pieces, each a line of its own): pieces that add up to the line, none
// longer than WORKER_MAX_LINE, and no empty piece after a line of exactly
// that length or a multiple (an outside attack program saw one); every
// byte passed through.
TEST(Capture, LongPrintfLinesArriveInPiecesOfTheLongestLineWithoutAnEmptyOne) {
    FileOnFd out(1);
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
    static const size_t kLens[] = {WORKER_MAX_LINE - 1, WORKER_MAX_LINE, WORKER_MAX_LINE + 1,
                                   2 * WORKER_MAX_LINE};
    worker *w = worker_create([](worker_ctx *, void *) {
        for (size_t n : kLens) {
            std::printf("%s\n", std::string(n, 'x').c_str());
            std::printf("next\n");
        }
        std::fflush(stdout);
    }, nullptr, nullptr, nullptr);
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    out.restore();
    std::vector<std::string> got = outputs(r, "stdout");
    size_t k = 0;
    for (size_t n : kLens) {
        size_t sum = 0;
        while (k < got.size() && got[k] != "next") {
            EXPECT_FALSE(got[k].empty()) << "an empty piece after a line of " << n;
            EXPECT_LE(got[k].size(), size_t(WORKER_MAX_LINE));
            sum += got[k++].size();
        }
        EXPECT_EQ(sum, n);
        ASSERT_LT(k, got.size());
        k++;  // "next"
    }
    EXPECT_EQ(k, got.size());
    std::string passed = out.text();
    EXPECT_TRUE(contains(passed, (std::string(2 * WORKER_MAX_LINE, 'x') + "\nnext\n").c_str()));
    worker_unref(w);
}

TEST(Capture, StderrLinesGoToTheWorkerWithStreamNameStderr) {
    FileOnFd err(2);
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDERR), WORKER_OK);
    worker *w = worker_create([](worker_ctx *, void *) {
        std::fprintf(stderr, "warning: %s\n", "dark frame");
    }, nullptr, nullptr, nullptr);
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    err.restore();
    EXPECT_EQ(outputs(r, "stderr"), std::vector<std::string>{"warning: dark frame"});
    EXPECT_EQ(r.first(WORKER_EV_OUTPUT).code, 2);
    EXPECT_TRUE(contains(err.text(), "warning: dark frame\n"));
    worker_unref(w);
}

TEST(Capture, LinesWithoutAWorkerArePassedThroughAndCounted) {
    FileOnFd out(1);
    long long base = worker_capture_unattributed();
    // stdout only: Qt may warn on stderr meanwhile, which would count too.
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
    std::printf("from the GUI thread\n");  // stdio, no worker
    std::fflush(stdout);
    // Two workers running at once write to the descriptor: nobody can tell
    // whose line it is, so neither gets it.
    static std::atomic<int> ready;
    ready = 0;
    auto body = [](worker_ctx *, void *arg) {
        long long base = *static_cast<long long *>(arg);
        ready++;
        ASSERT_TRUE(spin_until([] { return ready.load() == 2; }));
        ASSERT_EQ(::write(1, "two at once\n", 12), 12);
        EXPECT_TRUE(spin_until([base] { return worker_capture_unattributed() >= base + 3; }));
    };
    worker *a = worker_create(body, &base, nullptr, nullptr), *b = worker_create(body, &base, nullptr, nullptr);
    Recorder ra(a), rb(b);
    worker_start(a);
    worker_start(b);
    ASSERT_TRUE(ra.wait_finished());
    ASSERT_TRUE(rb.wait_finished());
    ASSERT_EQ(::write(1, "no newline", 10), 10);  // passed on, and counted, at the end
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    out.restore();
    EXPECT_EQ(ra.count(WORKER_EV_OUTPUT) + rb.count(WORKER_EV_OUTPUT), 0);
    EXPECT_EQ(worker_capture_unattributed(), base + 4);
    std::string passed = out.text();
    EXPECT_TRUE(contains(passed, "from the GUI thread\n")) << passed;
    EXPECT_TRUE(contains(passed, "two at once\ntwo at once\n")) << passed;
    EXPECT_TRUE(contains(passed, "no newline")) << passed;
    worker_unref(a);
    worker_unref(b);
}

TEST(Capture, EndingRestoresStreamsAndDescriptors) {
    FileOnFd out(1);
    FILE *before = stdout;
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
    EXPECT_NE(stdout, before);
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    EXPECT_EQ(stdout, before);
    long long base = worker_capture_unattributed();
    ASSERT_EQ(::write(1, "direct\n", 7), 7);  // straight to the file again
    EXPECT_EQ(worker_capture_unattributed(), base);
    EXPECT_TRUE(contains(out.text(), "direct\n"));
    // Twice in a row works, and so does ending when nothing is captured.
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    EXPECT_EQ(worker_capture_stdio(0), WORKER_OK);
}

TEST(Capture, BadInput) {
    EXPECT_EQ(worker_capture_stdio(4), WORKER_EINVAL);
    EXPECT_EQ(worker_capture_stdio(~0u), WORKER_EINVAL);
    ASSERT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDERR), WORKER_OK);
    EXPECT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_ESTATE) << "already capturing";
    ASSERT_EQ(worker_capture_stdio(0), WORKER_OK);
    static std::atomic<int> inside{1};
    worker *w = worker_create([](worker_ctx *, void *) {
        inside = worker_capture_stdio(WORKER_CAPTURE_STDOUT);
    }, nullptr, nullptr, nullptr);
    Recorder r(w);
    worker_start(w);
    ASSERT_TRUE(r.wait_finished());
    EXPECT_EQ(inside.load(), WORKER_ETHREAD);
    worker_unref(w);
}

// Turning the capture on or off while a worker_stdout() writer waits at
// capacity (the GUI not draining yet) must not wait for that writer: it
// holds its FILE's lock, which fflush(NULL) would take (a deadlock).
TEST(Capture, StartAndEndWhileAWorkerStdoutWriterWaitsAtCapacity) {
    static std::atomic<int> written{0};
    written = 0;
    worker_options o;
    worker_options_init(&o);
    o.capacity = 1;
    Job j([](worker_ctx *ctx) {
        for (int i = 0; i < 3; i++) {
            std::fprintf(worker_stdout(ctx), "waiting line %d\n", i);
            written = i + 1;
        }
    }, &o);
    ASSERT_EQ(j.start(), WORKER_OK);
    // The first line fills the stream; the second one's writer now waits.
    ASSERT_TRUE(wait_no_pump([] { return written.load() >= 1; }));
    nap(50);
    EXPECT_EQ(written.load(), 1) << "the writer did not wait at capacity";
    {
        HangGuard guard("worker_capture_stdio while a writer waits at capacity");
        EXPECT_EQ(worker_capture_stdio(WORKER_CAPTURE_STDOUT), WORKER_OK);
        EXPECT_EQ(worker_capture_stdio(0), WORKER_OK);
    }
    ASSERT_TRUE(j.rec->wait_finished());
    EXPECT_EQ(outputs(*j.rec, "stdout"),
              (std::vector<std::string>{"waiting line 0", "waiting line 1", "waiting line 2"}));
}
