// Process workers in a host that reaps every child itself (issue #14): a
// thread looping waitpid(-1, WNOHANG). Split from test_process.cpp.
#include "process_helpers.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

extern char **environ;

using namespace th;

// ---- a host application that reaps every child itself (issue #14): a
// thread looping waitpid(-1, WNOHANG), as a host handling SIGCHLD would. It
// would reap the other tests' children too, so these tests run in a process
// of their own (Process.AHostThatReapsEveryChildItself starts it), in its
// own pid namespace where allowed: there, pids are reused only by that
// process, so a test can give a pid the host reaped to another process.
namespace {

constexpr const char *kHostReapsEnv = "QTW_TEST_HOST_REAPS";

class HostReaper {
public:
    HostReaper() : thread_([this] { loop(); }) {}
    ~HostReaper() {
        stop_ = true;
        thread_.join();
    }
    // Where the record stands now (reaped_since looks after it).
    size_t mark() {
        std::lock_guard<std::mutex> lk(mu_);
        return got_.size();
    }
    // Whether the host reaped pid since mark (waiting up to ms, without
    // pumping); its wait status in *status.
    bool reaped_since(pid_t pid, size_t mark, int *status = nullptr, int ms = 0) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            {
                std::lock_guard<std::mutex> lk(mu_);
                for (size_t i = mark; i < got_.size(); i++)
                    if (got_[i].first == pid) {
                        if (status) *status = got_[i].second;
                        return true;
                    }
            }
            if (std::chrono::steady_clock::now() >= until) return false;
            nap(1);
        }
    }

private:
    void loop() {
        while (!stop_) {
            int st = 0;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p > 0) {
                std::lock_guard<std::mutex> lk(mu_);
                got_.emplace_back(p, st);
                continue;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::pair<pid_t, int>> got_;
    std::thread thread_;  // last: starts once the rest exists
};

class ProcessHostReaps : public ::testing::Test {
protected:
    static bool inside() { return std::getenv(kHostReapsEnv) != nullptr; }
    static void SetUpTestSuite() {
        if (inside()) reaper = new HostReaper;
    }
    static void TearDownTestSuite() {
        delete reaper;
        reaper = nullptr;
    }
    void SetUp() override {
        if (!inside()) GTEST_SKIP() << "runs in a process of its own: Process.AHostThatReapsEveryChildItself";
    }
    static HostReaper *reaper;

    // Starts p ("pm_ignores_quit": a process it starts holds the socket
    // open), parks it, kills the helper and waits until the host reaped it.
    // Returns the holder's pid (kill it at the end); *pid is the helper's.
    static pid_t kill_parked_helper(struct Proc &p, pid_t *pid, int *status);
};
HostReaper *ProcessHostReaps::reaper = nullptr;

// Without pidfds (Linux < 5.4) the library falls back to plain pids: it
// cannot tell a helper the host reaped from a recycled pid.
bool have_pidfds() {
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0u);
    if (fd < 0) return false;
    siginfo_t si{};
    bool waitable = waitid(static_cast<idtype_t>(3), (id_t)fd, &si, WEXITED | WNOHANG) == 0 ||
                    errno != EINVAL;  // P_PIDFD; ECHILD here: known, and we are no child
    close(fd);
    return waitable;
#else
    return false;
#endif
}

int outcomes(const Rec &r) {
    return r.count(WORKER_EV_RETURNED) + r.count(WORKER_EV_ERRORED) + r.count(WORKER_EV_ABORTED);
}

int kill_warnings(const Rec &r) {
    int n = 0;
    for (auto &e : r.ev) n += e.type == WORKER_EV_WARNED && e.message.find("killed") != std::string::npos;
    return n;
}

// Gives pid, which the host has reaped, to a new process (a child of this
// test that just waits): 0 if this is not our own pid namespace or the pid
// went elsewhere.
pid_t recycle(pid_t pid) {
    if (getpid() != 1) return 0;  // another program could take the pid
    for (int i = 0; i < 5; i++) {
        FILE *f = std::fopen("/proc/sys/kernel/ns_last_pid", "w");
        if (!f) return 0;
        std::fprintf(f, "%d", (int)pid - 1);
        if (std::fclose(f) != 0) return 0;
        pid_t d = fork();
        if (d == 0)
            for (;;) pause();  // until killed (this process has threads: nothing else)
        if (d == pid) return d;
        if (d > 0) kill(d, SIGKILL);
    }
    return 0;
}

}  // namespace

// Every way a process worker ends, while the host reaps every child as soon
// as it exits (usually before the proxy does): FINISHED, exactly one
// outcome, and the one the function gave when it gave one.
TEST_F(ProcessHostReaps, EveryEndIsFinishedWithOneOutcome) {
    struct Case {
        std::string path;
        const char *symbol;
        bool quit;
        worker_event_type outcome;
    };
    const Case cases[] = {
        {kMods, "pm_return_arg", false, WORKER_EV_RETURNED},
        {kMods, "pm_fail", false, WORKER_EV_ERRORED},
        {process_module("crash_plugin.so"), "crashy_plugin_run", false, WORKER_EV_ERRORED},
        {kMods, "pm_exit", false, WORKER_EV_ERRORED},
        {kMods, "pm_ticker", true, WORKER_EV_ABORTED},
    };
    int host_first = 0;
    for (int round = 0; round < 3; round++)
        for (const Case &c : cases) {
            SCOPED_TRACE(std::string(c.symbol) + " round " + std::to_string(round));
            size_t mark = reaper->mark();
            Proc p(c.path, c.symbol, "x", 1);
            ASSERT_EQ(p.start(), WORKER_OK);
            if (c.quit) {
                ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED));
                ASSERT_EQ(worker_quit(p.w), WORKER_OK);
            }
            ASSERT_TRUE(p.rec->wait_finished(15000)) << "no hang";
            EXPECT_EQ(outcomes(*p.rec), 1);
            EXPECT_EQ(p.rec->outcome(), c.outcome);
            EXPECT_EQ(kill_warnings(*p.rec), 0);
            long pid = worker_process_id(p.w);
            bool by_host = reaper->reaped_since((pid_t)pid, mark);
            host_first += by_host;
            if (by_host && c.outcome == WORKER_EV_ERRORED && std::strcmp(c.symbol, "pm_fail") != 0) {
                // No outcome from the function, and its wait status is gone.
                const Ev &e = p.rec->first(WORKER_EV_ERRORED);
                EXPECT_EQ(e.code, WORKER_ESTATE);
                EXPECT_NE(e.message.find("exit status is unknown"), std::string::npos) << e.message;
            }
        }
    std::printf("the host reaped %d of %d processes first\n", host_first,
                3 * (int)(sizeof cases / sizeof cases[0]));
}

pid_t ProcessHostReaps::kill_parked_helper(Proc &p, pid_t *pid, int *status) {
    if (p.start() != WORKER_OK || !p.rec->wait_for(WORKER_EV_YIELDED)) return -1;
    pid_t holder = (pid_t)p.rec->ints(WORKER_EV_YIELDED).at(0);
    // Paused, the proxy waits for the resume: the host is the first to see
    // the death, for sure.
    if (worker_pause(p.w) != WORKER_OK || !p.rec->wait_for(WORKER_EV_PAUSED)) return -1;
    *pid = (pid_t)worker_process_id(p.w);
    size_t mark = reaper->mark();
    if (kill(*pid, SIGKILL) != 0 || !reaper->reaped_since(*pid, mark, status, 5000)) return -1;
    return holder;
}

// The helper dies (killed, as by the OOM killer) and the host reaps it while
// a process it started still holds its socket open: the worker ends anyway,
// ERRORED with an unknown exit status; it does not wait for the socket.
TEST_F(ProcessHostReaps, ADeathTheHostReapedIsErroredWithAnUnknownStatus) {
    if (!have_pidfds()) GTEST_SKIP() << "no pidfds: the end of the stream is what ends it";
    uint64_t hold_ms = 30000;
    worker_process_options po = grace(1000);
    Proc p(kMods, "pm_ignores_quit", &hold_ms, sizeof hold_ms, nullptr, &po);
    pid_t pid = 0;
    int st = 0;
    pid_t holder = kill_parked_helper(p, &pid, &st);
    ASSERT_GT(holder, 0);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ASSERT_EQ(worker_resume(p.w), WORKER_OK);
    EXPECT_TRUE(p.rec->wait_finished(10000)) << "hangs while the socket stays open";
    EXPECT_EQ(outcomes(*p.rec), 1);
    ASSERT_EQ(p.rec->outcome(), WORKER_EV_ERRORED);
    const Ev &e = p.rec->first(WORKER_EV_ERRORED);
    EXPECT_EQ(e.code, WORKER_ESTATE);
    EXPECT_NE(e.message.find("exit status is unknown"), std::string::npos) << e.message;
    kill(holder, SIGKILL);
}

// A process that ignores quit is quit; it dies before the grace period is
// over, the host reaps it, and its pid goes to another process: that one
// must not get the SIGKILL meant for the helper.
TEST_F(ProcessHostReaps, AfterTheHostReapedAStuckOneNoOtherProcessIsSignalled) {
    if (!have_pidfds()) GTEST_SKIP() << "no pidfds: a plain pid cannot tell";
    uint64_t hold_ms = 30000;  // keeps the socket open: no end of stream to see
    worker_process_options po = grace(1000);
    Proc p(kMods, "pm_ignores_quit", &hold_ms, sizeof hold_ms, nullptr, &po);
    pid_t pid = 0;
    pid_t holder = kill_parked_helper(p, &pid, nullptr);
    ASSERT_GT(holder, 0);
    pid_t decoy = recycle(pid);
    size_t decoy_mark = reaper->mark();
    ASSERT_EQ(worker_quit(p.w), WORKER_OK);
    ASSERT_TRUE(p.rec->wait_finished(10000));
    EXPECT_EQ(outcomes(*p.rec), 1);
    EXPECT_EQ(p.rec->outcome(), WORKER_EV_ABORTED);
    EXPECT_EQ(kill_warnings(*p.rec), 0) << "nothing of ours was left to kill";
    if (decoy) {
        pump_for(200);  // a late kill would land now
        EXPECT_EQ(kill(decoy, 0), 0) << "the process that got the pid is alive";
        EXPECT_FALSE(reaper->reaped_since(decoy, decoy_mark)) << "the process that got the pid died";
        kill(decoy, SIGKILL);
    }
    kill(holder, SIGKILL);
    if (!decoy) GTEST_SKIP() << "no pid namespace of our own: the pid could not be reused on purpose";
}

// Runs the ProcessHostReaps tests in a process of their own (see above).
// With isolate, in new pid and mount namespaces with their own /proc (the
// sanitizers and /proc/self must see the namespace's pids); exit status
// 125 when that could not be set up after all.
int run_host_reaps_process(bool isolate) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    std::vector<std::string> strings = {exe, "--gtest_filter=ProcessHostReaps.*"};
    size_t nargs = strings.size();
    for (char **e = environ; *e; e++) strings.push_back(*e);
    strings.push_back(std::string(kHostReapsEnv) + "=1");
    std::vector<char *> argv, envp;
    for (size_t i = 0; i < strings.size(); i++)
        (i < nargs ? argv : envp).push_back(const_cast<char *>(strings[i].c_str()));
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    std::fflush(nullptr);
    pid_t mid = fork();
    if (mid == 0) {  // this process has threads: only system calls until exec
        if (isolate && unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) _exit(125);
        pid_t inner = fork();  // pid 1 of the new namespace
        if (inner == 0) {
            // Private mounts first: the new /proc must not reach the host's.
            if (isolate && (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                  nullptr) != 0))
                _exit(125);
            execve(argv[0], argv.data(), envp.data());
            _exit(127);
        }
        int st = 0;
        while (inner > 0 && waitpid(inner, &st, 0) < 0 && errno == EINTR) {
        }
        _exit(inner < 0 ? 126 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    if (mid < 0) return -1;
    int st = 0;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(Process, AHostThatReapsEveryChildItself) {
    if (std::getenv(kHostReapsEnv)) GTEST_SKIP() << "this is that process";
    int rc = run_host_reaps_process(true);
    if (rc == 125) {
        std::printf("no namespaces here (not privileged): the host-reaps tests run unisolated\n");
        rc = run_host_reaps_process(false);
    }
    EXPECT_EQ(rc, 0) << "the ProcessHostReaps tests failed: their output is above";
}

