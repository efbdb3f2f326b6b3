// Process workers' children (process_children.cpp): pidfd calls, the set of
// helpers still running (killed and reaped at exit), and where the helper
// program is. Used by the parent-side session (process.cpp).
#pragma once

#include <sys/types.h>

#include <string>

namespace qtw {

int pidfd_kill(int pidfd, int sig);
// waitid(P_PIDFD) with a waitpid-style status: the pid, 0 while it runs,
// -1 with errno (ECHILD: reaped by someone else).
pid_t pidfd_wait(int pidfd, int *status, int flags);
// Watches the child just spawned through a pidfd: the pidfd; -1 for the pid
// path; -1 with *gone when the child is no longer ours (reaped by the host).
int watch_child(pid_t pid, bool *gone);
// The set of live helpers. add_child: false when out of memory (not added).
bool add_child(pid_t pid, int pidfd);
void remove_child(pid_t pid);
bool kill_if_live(pid_t pid);           // SIGKILL to a child still in the set
pid_t try_reap(pid_t pid, int *status); // pid, 0 while it runs, -1 when gone
std::string helper_path();              // the qtworker-procd program
std::string signal_text(int sig);       // "SIGKILL (Killed)"

}  // namespace qtw
