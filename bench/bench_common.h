// Helpers shared by the benchmark modes: clocks, percentiles, RSS, a tiny
// JSON line writer, event-loop pumping, a GUI timer gap meter and a watchdog
// that reports and exits when a baseline has frozen the GUI for too long.
#pragma once

#include <QCoreApplication>
#include <QEventLoop>
#include <QTimer>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <time.h>
#include <unistd.h>

namespace bench {

// CLOCK_MONOTONIC in ns: the same clock as Python's time.perf_counter_ns().
inline int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The callback "cost" of the flood rows: a busy wait, not a sleep.
inline void busy_wait_ns(int64_t ns) {
    if (ns <= 0) return;
    int64_t end = now_ns() + ns;
    while (now_ns() < end) {
    }
}

inline void sleep_until_ns(int64_t t) {
    timespec ts{time_t(t / 1000000000), long(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
    }
}

struct Stats {
    double p50_us = 0, p99_us = 0, max_us = 0;
    size_t n = 0;
};

inline Stats stats_us(std::vector<int64_t> ns) {
    Stats s;
    s.n = ns.size();
    if (ns.empty()) return s;
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) { return ns[size_t(q * double(ns.size() - 1) + 0.5)] / 1e3; };
    s.p50_us = at(0.50);
    s.p99_us = at(0.99);
    s.max_us = ns.back() / 1e3;
    return s;
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// A "VmHWM:" / "VmRSS:" line of /proc/self/status, in KiB.
inline long proc_status_kb(const char *key) {
    FILE *f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = std::strlen(key);
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, key, n) == 0) {
            kb = std::atol(line + n);
            break;
        }
    std::fclose(f);
    return kb;
}

// Resident set from /proc/self/statm: cheap enough to poll from a producer.
inline long rss_now_kb() {
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, resident = 0;
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    std::fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// One JSON object on one stdout line: what the driver parses.
class Json {
public:
    Json &num(const std::string &k, double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return raw(k, buf);
    }
    Json &num(const std::string &k, long long v) { return raw(k, std::to_string(v)); }
    Json &flag(const std::string &k, bool v) { return raw(k, v ? "true" : "false"); }
    Json &str(const std::string &k, const std::string &v) { return raw(k, "\"" + v + "\""); }
    Json &stats(const std::string &prefix, const Stats &s) {
        num(prefix + "_p50_us", s.p50_us);
        num(prefix + "_p99_us", s.p99_us);
        num(prefix + "_max_us", s.max_us);
        return num(prefix + "_n", (long long)s.n);
    }
    void print() const {
        std::printf("{%s}\n", body_.c_str());
        std::fflush(stdout);
    }

private:
    Json &raw(const std::string &k, const std::string &v) {
        if (!body_.empty()) body_ += ", ";
        body_ += "\"" + k + "\": " + v;
        return *this;
    }
    std::string body_;
};

// key=value command-line options.
class Args {
public:
    Args(int argc, char **argv) {
        for (int i = 0; i < argc; i++) {
            std::string a = argv[i];
            size_t eq = a.find('=');
            if (eq != std::string::npos) kv_[a.substr(0, eq)] = a.substr(eq + 1);
        }
    }
    double num(const std::string &k, double def) const {
        auto it = kv_.find(k);
        return it == kv_.end() ? def : std::atof(it->second.c_str());
    }

private:
    std::map<std::string, std::string> kv_;
};

// Runs the GUI event loop until done() (checked after every event batch) or
// the timeout; done() must become true from a GUI-thread callback.
inline bool pump_until(const std::function<bool()> &done, int timeout_ms) {
    if (done()) return true;
    QTimer guard;
    guard.setSingleShot(true);
    bool expired = false;
    QObject::connect(&guard, &QTimer::timeout, [&] { expired = true; });
    guard.start(timeout_ms);
    while (!done() && !expired) QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
    return done();
}

inline void pump_for(int ms) {
    pump_until([] { return false; }, ms);
}

// A 16 ms GUI timer (a repaint, an animation): the largest gap between its
// ticks is how long the GUI looked frozen. Atomics: the watchdog reads them.
class GapMeter {
public:
    GapMeter() {
        timer_.setTimerType(Qt::PreciseTimer);
        QObject::connect(&timer_, &QTimer::timeout, [this] {
            int64_t t = now_ns();
            int64_t gap = t - last_.exchange(t);
            if (gap > max_.load()) max_.store(gap);
            if (log_ns_ && gap > log_ns_)
                std::fprintf(stderr, "gap %.1f ms ending at %.3f s\n", gap / 1e6, (t - t0_) / 1e9);
        });
    }
    void start() {
        t0_ = now_ns();
        last_.store(now_ns());
        max_.store(0);
        timer_.start(16);
    }
    // Includes the gap still open now (a GUI that is frozen at this moment).
    int64_t max_gap_ns() const { return std::max(max_.load(), open_gap_ns()); }
    int64_t open_gap_ns() const { return now_ns() - last_.load(); }

private:
    QTimer timer_;
    // BENCH_GAPLOG=MS: print every gap over MS ms (when and how long the GUI froze).
    int64_t log_ns_ = std::getenv("BENCH_GAPLOG") ? std::atol(std::getenv("BENCH_GAPLOG")) * 1000000 : 0;
    int64_t t0_ = 0;
    std::atomic<int64_t> last_{0}, max_{0};
};

// Calls report() from its own thread and ends the process if not cancelled
// in time: a flooded baseline can keep the GUI thread busy for minutes.
class Watchdog {
public:
    Watchdog(double seconds, std::function<void()> report)
        : report_(std::move(report)), thread_([this, seconds] {
              std::unique_lock<std::mutex> lk(mu_);
              auto limit = std::chrono::duration<double>(seconds);
              if (cv_.wait_for(lk, limit, [this] { return cancelled_; })) return;
              report_();
              std::fflush(stdout);
              _exit(0);
          }) {}
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            cancelled_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool cancelled_ = false;
    std::function<void()> report_;
    std::thread thread_;
};

}  // namespace bench
