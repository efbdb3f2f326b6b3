// The shim's own synchronisation primitives on pthreads (so the sanitizers
// see every hand-over): the adaptive stream mutex, a condition variable on
// it, and one step of a busy-wait.
#pragma once

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace qtw {

// The lock of a worker's stream (and of a dispatcher's ready list): glibc's
// adaptive mutex spins briefly before it sleeps. Its critical sections last
// tens of nanoseconds, and a plain mutex sent producer and GUI into futex
// system calls whenever they met (a quarter of the time at 6 M values/s).
// A pthread mutex, so the sanitizers still see every hand-over.
class StreamMutex {
public:
    StreamMutex() {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
        pthread_mutex_init(&m_, &a);
        pthread_mutexattr_destroy(&a);
    }
    ~StreamMutex() { pthread_mutex_destroy(&m_); }
    StreamMutex(const StreamMutex &) = delete;
    StreamMutex &operator=(const StreamMutex &) = delete;
    void lock() { pthread_mutex_lock(&m_); }
    void unlock() { pthread_mutex_unlock(&m_); }
    bool try_lock() { return pthread_mutex_trylock(&m_) == 0; }
    pthread_mutex_t *native() { return &m_; }

private:
    pthread_mutex_t m_;
};

// A condition variable on a StreamMutex. Not std::condition_variable_any:
// its notify holds an internal mutex that the woken thread takes next, so
// every wake-up (resume, room at capacity, an await) cost a second futex
// round trip; a pthread condition waits on the StreamMutex itself. Still
// a pthread primitive, so the sanitizers see it.
class StreamCondVar {
public:
    using Lock = std::unique_lock<StreamMutex>;
    using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++
    StreamCondVar() {
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&c_, &a);
        pthread_condattr_destroy(&a);
    }
    ~StreamCondVar() { pthread_cond_destroy(&c_); }
    StreamCondVar(const StreamCondVar &) = delete;
    StreamCondVar &operator=(const StreamCondVar &) = delete;

    void notify_one() noexcept { pthread_cond_signal(&c_); }
    void notify_all() noexcept { pthread_cond_broadcast(&c_); }
    void wait(Lock &lk) { pthread_cond_wait(&c_, lk.mutex()->native()); }
    template <typename Pred>
    void wait(Lock &lk, Pred done) {
        while (!done()) wait(lk);
    }
    std::cv_status wait_until(Lock &lk, Clock::time_point t) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
        if (ns < 0) ns = 0;
        timespec ts{time_t(ns / 1000000000), long(ns % 1000000000)};
        return pthread_cond_timedwait(&c_, lk.mutex()->native(), &ts) == ETIMEDOUT
                   ? std::cv_status::timeout
                   : std::cv_status::no_timeout;
    }
    template <typename Rep, typename Period, typename Pred>
    bool wait_for(Lock &lk, std::chrono::duration<Rep, Period> d, Pred done) {
        auto t = Clock::now() + d;
        while (!done())
            if (wait_until(lk, t) == std::cv_status::timeout) return done();
        return true;
    }

private:
    pthread_cond_t c_;
};

// One step of a short busy-wait.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Polls done() for a moment before the caller sleeps (an answer expected
// within microseconds costs no futex or eventfd wake-up then): true once
// it holds, false at `until`. Yields the CPU every polls_per_yield tries:
// the thread that will make done() true is often the one that shares this
// CPU, and a pure spin held it off for the whole poll (the pool's spinner,
// call_home's waiter and the home thread's reply poll each measured it).
template <typename Pred>
bool poll_briefly(Pred done, std::chrono::steady_clock::time_point until, unsigned polls_per_yield) {
    for (;;) {
        for (unsigned i = 0; i < polls_per_yield; i++) {
            if (done()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() >= until) return done();
        std::this_thread::yield();  // whoever is runnable on this CPU goes first
    }
}

}  // namespace qtw
