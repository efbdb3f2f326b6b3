#include "qt_exit.h"

#include <dirent.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

// Counts this process's threads by name: a thread is listed in /proc until it
// has fully exited, its thread-local teardown included.
static int qt_pool_threads_left() {
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) return 0;  // no /proc: nothing to wait for that we could see
    int n = 0;
    while (dirent *e = readdir(tasks)) {
        if (e->d_name[0] == '.') continue;
        std::string path = std::string("/proc/self/task/") + e->d_name + "/comm";
        if (FILE *f = std::fopen(path.c_str(), "r")) {
            char name[32] = {0};
            if (std::fgets(name, sizeof name, f) && !std::strncmp(name, "Thread (pooled)", 15)) n++;
            std::fclose(f);
        }
    }
    closedir(tasks);
    return n;
}

void wait_for_qt_pool_threads(int timeout_ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (qt_pool_threads_left() > 0 && std::chrono::steady_clock::now() < until) {
        timespec ms = {0, 1000000};
        nanosleep(&ms, nullptr);
    }
}
