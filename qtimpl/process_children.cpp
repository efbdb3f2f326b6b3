// Process workers' children: pidfds where the kernel has them (Linux >=
// 5.4), so a host that reaps children itself (waitpid(-1)) cannot make us
// signal a recycled pid; the set of helpers still running; the helper
// program's path.
#include "process_children.h"
#include "worker_p.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace qtw {
namespace {
// ---------------------------------------------------------- pidfds

// A descriptor for the process pid (close-on-exec), -1 with errno: ENOSYS
// before Linux 5.3, ESRCH when no such process.
int pidfd_open_(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0u);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

}  // namespace

int pidfd_kill(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u);
#else
    (void)pidfd;
    (void)sig;
    errno = ENOSYS;
    return -1;
#endif
}

constexpr idtype_t kPidfdId = static_cast<idtype_t>(3);  // P_PIDFD (Linux 5.4)

// waitid(P_PIDFD) with a waitpid-style status: the pid, 0 while it runs,
// -1 with errno (ECHILD: reaped by someone else).
pid_t pidfd_wait(int pidfd, int *status, int flags) {
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    int r;
    do {
        r = waitid(kPidfdId, (id_t)pidfd, &si, WEXITED | flags);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (si.si_pid == 0) return 0;
    int st = 0;
    if (si.si_code == CLD_EXITED)
        st = (si.si_status & 0xff) << 8;
    else if (si.si_code == CLD_KILLED)
        st = si.si_status & 0x7f;
    else if (si.si_code == CLD_DUMPED)
        st = (si.si_status & 0x7f) | 0x80;
    if (status) *status = st;
    return si.si_pid;
}

// Watches the child just spawned through a pidfd. Returns the pidfd; -1 for
// the pid path (no pidfds here: errno ENOSYS, EINVAL...), and -1 with *gone
// when the child is no longer ours to signal or wait for (reaped by the host
// already: its pid may belong to anyone now).
int watch_child(pid_t pid, bool *gone) {
    *gone = false;
    int fd = pidfd_open_(pid);
    if (fd < 0) {
        *gone = errno == ESRCH;
        return -1;
    }
    // The pid could have been reaped and reused between the spawn and the
    // open: the pidfd must be for a child of ours (a look, not a reap).
    if (pidfd_wait(fd, nullptr, WNOHANG | WNOWAIT) < 0) {
        *gone = errno == ECHILD;
        close(fd);  // EINVAL: no P_PIDFD (Linux 5.3): the pid path
        return -1;
    }
    return fd;
}

namespace {

// Helpers still running, so that exit() kills and reaps them rather than
// leaving orphans to the death signal and to whoever adopts them. A child
// leaves the set under the same lock as it is reaped: never signalled after.
// Each is signalled and reaped through its pidfd when it has one (owned by
// its session, which takes it out of the set before closing it).
struct Child {
    pid_t pid;
    int pidfd;
};

struct Children {
    std::mutex mu;
    std::vector<Child> live;
    pid_t parent = 0;  // whose children: a fork of the host that exits is not us
    std::vector<Child>::iterator find(pid_t pid) {
        return std::find_if(live.begin(), live.end(), [pid](const Child &c) { return c.pid == pid; });
    }
};

Children &children() {
    static Children *c = new Children;  // leaked on purpose: used at exit
    return *c;
}

void reap_children_at_exit() {
    Children &c = children();
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.parent != getpid()) return;
    for (const Child &k : c.live) {
        if (k.pidfd >= 0) {
            if (pidfd_kill(k.pidfd, SIGKILL) == 0) pidfd_wait(k.pidfd, nullptr, 0);
        } else {
            kill(k.pid, SIGKILL);
            waitpid(k.pid, nullptr, 0);
        }
    }
    c.live.clear();
}

}  // namespace

// False when out of memory (the child is not in the set then).
bool add_child(pid_t pid, int pidfd) {
    static std::once_flag hooked;
    std::call_once(hooked, [] { std::atexit(reap_children_at_exit); });
    Children &c = children();
    std::lock_guard<std::mutex> lk(c.mu);
    c.parent = getpid();
    try {
        c.live.push_back({pid, pidfd});
    } catch (...) {
        return false;
    }
    return true;
}

void remove_child(pid_t pid) {
    Children &c = children();
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.find(pid);
    if (it != c.live.end()) c.live.erase(it);
}

// SIGKILL to a child still in the set. Whether the signal was sent: with a
// pidfd, not when the process is already gone (reaped by the host), so a
// recycled pid never gets it.
bool kill_if_live(pid_t pid) {
    Children &c = children();
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.find(pid);
    if (it == c.live.end()) return false;
    return (it->pidfd >= 0 ? pidfd_kill(it->pidfd, SIGKILL) : kill(pid, SIGKILL)) == 0;
}

// A reap without waiting that drops the child from the set when it is
// reaped, or gone (reaped at exit, by the host, or by the kernel when the
// host ignores SIGCHLD): the pid, 0 while it runs, -1 when gone.
pid_t try_reap(pid_t pid, int *status) {
    Children &c = children();
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.find(pid);
    if (it == c.live.end()) return -1;  // reaped at exit
    pid_t r;
    if (it->pidfd >= 0) {
        r = pidfd_wait(it->pidfd, status, WNOHANG);
    } else {
        do {
            r = waitpid(pid, status, WNOHANG);
        } while (r < 0 && errno == EINTR);
    }
    if (r != 0) c.live.erase(it);
    return r < 0 ? -1 : r;
}

// ---------------------------------------------------------- helper program

namespace {

std::string dir_of(const std::string &path) {
    size_t i = path.rfind('/');
    return i == std::string::npos ? std::string(".") : path.substr(0, i);
}

std::string real(const char *path) {
    char *r = realpath(path, nullptr);
    std::string s = r ? r : "";
    std::free(r);
    return s;
}

}  // namespace

// $QTWORKER_PROCD; next to an uninstalled build of this library; the same
// layout relative to wherever the library was installed; the configured
// libexec path.
std::string helper_path() {
    if (const char *env = std::getenv("QTWORKER_PROCD"))
        if (*env) return env;
    static const std::string found = [] {
        Dl_info info{};
        std::string libdir;
        if (dladdr(reinterpret_cast<void *>(&worker_procd_main), &info) && info.dli_fname)
            libdir = dir_of(real(info.dli_fname));
        std::string build = QTW_PROCD_BUILD_DIR "/" QTW_PROCD_NAME;
        bool uninstalled = !libdir.empty() && libdir == real(QTW_PROCD_BUILD_DIR);
        if (uninstalled && access(build.c_str(), X_OK) == 0) return build;
        std::string relative = libdir + "/" QTW_PROCD_FROM_LIBDIR;
        if (!libdir.empty() && access(relative.c_str(), X_OK) == 0) return relative;
        return std::string(QTW_PROCD_INSTALLED);
    }();
    return found;
}

std::string signal_text(int sig) {
    const char *abbrev = sigabbrev_np(sig);
    const char *descr = sigdescr_np(sig);
    std::string s = abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
    if (descr) s += std::string(" (") + descr + ")";
    return s;
}

}  // namespace qtw
