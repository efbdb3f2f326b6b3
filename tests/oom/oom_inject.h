// Allocation-failure injection for the OOM tests (from an outside attack, session 8): malloc/calloc/realloc/operator new replaced, forwarding to ASan's allocator (ASan builds only).
#pragma once
#include <atomic>
#include <new>
#include <cstddef>
extern "C" void *__interceptor_malloc(size_t);
extern "C" void *__interceptor_calloc(size_t, size_t);
extern "C" void *__interceptor_realloc(void *, size_t);
extern "C" void __interceptor_free(void *);
extern "C" int __interceptor_posix_memalign(void **, size_t, size_t);

// ---- injection state ------------------------------------------------------
static __thread long t_budget = -1;       // -1 = not armed; else allocations left
static __thread long t_failed = 0;        // allocations refused on this thread
static __thread int t_is_worker = 0;      // this thread ran one of our worker fns
static std::atomic<int> g_fail_workers{0}; // refuse every allocation on worker threads
static std::atomic<long> g_worker_refused{0};
static inline bool refuse() {
    if (t_is_worker && g_fail_workers.load(std::memory_order_relaxed)) { g_worker_refused++; return true; }
    if (t_budget < 0) return false;
    if (t_budget == 0) { t_failed++; return true; }
    t_budget--; return false;
}
static void arm(long n) { t_failed = 0; t_budget = n; }
static long disarm() { t_budget = -1; return t_failed; }

extern "C" void *malloc(size_t n) { if (refuse()) return nullptr; return __interceptor_malloc(n); }
extern "C" void *calloc(size_t a, size_t b) { if (refuse()) return nullptr; return __interceptor_calloc(a, b); }
extern "C" void *realloc(void *p, size_t n) { if (n && refuse()) return nullptr; return __interceptor_realloc(p, n); }
extern "C" void free(void *p) { __interceptor_free(p); }
static void *al(size_t n, size_t a) { void *p = nullptr; if (a < sizeof(void *)) a = sizeof(void *); if (__interceptor_posix_memalign(&p, a, n ? n : 1)) return nullptr; return p; }
void *operator new(size_t n) { if (refuse()) throw std::bad_alloc(); void *p = __interceptor_malloc(n ? n : 1); if (!p) throw std::bad_alloc(); return p; }
void *operator new[](size_t n) { return operator new(n); }
void *operator new(size_t n, const std::nothrow_t &) noexcept { if (refuse()) return nullptr; return __interceptor_malloc(n ? n : 1); }
void *operator new[](size_t n, const std::nothrow_t &) noexcept { if (refuse()) return nullptr; return __interceptor_malloc(n ? n : 1); }
void *operator new(size_t n, std::align_val_t a) { if (refuse()) throw std::bad_alloc(); void *p = al(n, (size_t)a); if (!p) throw std::bad_alloc(); return p; }
void *operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { if (refuse()) return nullptr; return al(n, (size_t)a); }
void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { if (refuse()) return nullptr; return al(n, (size_t)a); }
void operator delete(void *p) noexcept { __interceptor_free(p); }
void operator delete[](void *p) noexcept { __interceptor_free(p); }
void operator delete(void *p, size_t) noexcept { __interceptor_free(p); }
void operator delete[](void *p, size_t) noexcept { __interceptor_free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { __interceptor_free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { __interceptor_free(p); }
void operator delete(void *p, std::align_val_t) noexcept { __interceptor_free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { __interceptor_free(p); }
void operator delete(void *p, size_t, std::align_val_t) noexcept { __interceptor_free(p); }
void operator delete[](void *p, size_t, std::align_val_t) noexcept { __interceptor_free(p); }
void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { __interceptor_free(p); }
void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { __interceptor_free(p); }

