/**
 * @file qtworker.hpp
 * @brief C++ convenience layer over qtworker.h: an RAII handle and lambdas
 *        as worker functions and callbacks. Header-only, built purely on the
 *        C API (nothing here is exported from the library).
 *
 * @code
 * auto w = qtworker::Worker::create([](qtworker::Context ctx) {
 *     for (int i = 0; i < 10; i++)
 *         if (ctx.yield(new int(i)) == WORKER_ABORTED) return;
 * });
 * w.on(WORKER_EV_YIELDED, [](worker_event &ev) { use(*static_cast<int *>(ev.value)); });
 * w.start();
 * @endcode
 */
#ifndef QTWORKER_HPP
#define QTWORKER_HPP

#include "qtworker.h"

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#if __cplusplus >= 201703L
#include <optional>
#include <type_traits>
#endif

/** C++ conveniences over the qtworker C API. */
namespace qtworker {

/** Deletes a T handed over as a void*; the destroy function for `new T`.
    A destructor that throws is reported on stderr and the exception stops
    here: none may cross the C library (the memory is freed all the same). */
template <typename T>
void delete_as(void *p) noexcept {
    try {
        delete static_cast<T *>(p);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "qtworker: exception in a destructor: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "qtworker: exception in a destructor\n");
    }
}

#if __cplusplus >= 201703L
/** What Context::call_home() gives back (C++17). */
template <typename T>
struct HomeResult {
    /** WORKER_OK: fn ran and returned value; else why it did not run (see
        worker_call_home()), or WORKER_ESTATE when it threw (see error). */
    int status = WORKER_ESTATE;
    std::optional<T> value;      /**< fn's return value when status is WORKER_OK */
    std::exception_ptr error;    /**< what fn threw on the home thread, if it did */
    /** True when fn ran and returned. */
    explicit operator bool() const noexcept { return status == WORKER_OK; }
};
/** Context::call_home() of a function returning void. */
template <>
struct HomeResult<void> {
    int status = WORKER_ESTATE;  /**< as HomeResult<T>::status */
    std::exception_ptr error;    /**< what fn threw on the home thread, if it did */
    /** True when fn ran and returned. */
    explicit operator bool() const noexcept { return status == WORKER_OK; }
};

/** Internals of Context::call_home(). */
namespace detail {
template <typename F, typename R>
struct HomeCall {
    F *fn;
    HomeResult<R> out;
    // Runs on the home thread; nothing is thrown into the C library.
    static void *run(void *self) noexcept {
        auto *c = static_cast<HomeCall *>(self);
        try {
            if constexpr (std::is_void_v<R>)
                (*c->fn)();
            else
                c->out.value.emplace((*c->fn)());
        } catch (...) {
            c->out.error = std::current_exception();
        }
        return nullptr;
    }
};
}  // namespace detail
#endif

/** The worker side: wraps the worker_ctx handed to the function. */
class Context {
public:
    /** Wraps ctx (borrowed; valid only inside the worker's function). */
    explicit Context(worker_ctx *ctx) noexcept : ctx_(ctx) {}
    /** The C context, for the C worker-side calls. */
    worker_ctx *get() const noexcept { return ctx_; }

    /** worker_yield() of a raw value with its destroy function. */
    int yield(void *value, worker_destroy_fn destroy) {
        return worker_yield(ctx_, value, destroy, nullptr, nullptr);
    }
    /** Yields a heap value created with `new T` (the library deletes it
        with `delete`: for `new T[]`, malloc'd or borrowed memory pass the
        destroy function yourself). */
    template <typename T>
    int yield(T *value) { return yield(value, &delete_as<T>); }
    /** worker_yield_sized(): a value of `size` bytes, counted against
        capacity_bytes (an image frame). */
    int yield_sized(void *value, size_t size, worker_destroy_fn destroy) {
        return worker_yield_sized(ctx_, value, size, destroy, nullptr, nullptr);
    }
    /** worker_yield() that also receives: a sent value lands in *sent and
        *sent_destroy (yours now) when it returns WORKER_RECEIVED. */
    int yield_receive(void *value, worker_destroy_fn destroy, void **sent,
                      worker_destroy_fn *sent_destroy) {
        return worker_yield(ctx_, value, destroy, sent, sent_destroy);
    }
    /** worker_receive(): the oldest value sent or piped in lands in *value
        and *destroy (yours now) when it returns WORKER_RECEIVED. */
    int receive(void **value, worker_destroy_fn *destroy, int timeout_ms = -1) {
        return worker_receive(ctx_, value, destroy, timeout_ms);
    }
    /** worker_abort_requested() as a bool (parks first if pause was asked). */
    bool abort_requested() { return worker_abort_requested(ctx_) == 1; }
    /** worker_return() of a `new T` value. */
    template <typename T>
    int set_result(T *value) { return worker_return(ctx_, value, &delete_as<T>); }
    /** worker_fail() with a plain message. */
    int fail(int code, const char *message) { return worker_fail(ctx_, code, "%s", message); }
    /** worker_warn() with a plain message. */
    int warn(const char *message) { return worker_warn(ctx_, "%s", message); }
    /** worker_progress(). */
    int progress(long long done, long long total, const char *text = nullptr) {
        return worker_progress(ctx_, done, total, text);
    }
    /** worker_emit() of a `new T` value. */
    template <typename T>
    int emit_custom(const char *name, T *value) {
        return worker_emit(ctx_, name, value, &delete_as<T>);
    }
    // Qt defines `emit` as an empty macro: the name is kept out of its way
    // here, and in files that include Qt, c.emit(...) cannot be called.
#pragma push_macro("emit")
#undef emit
    /** emit_custom(), for files without Qt's `emit` macro. */
    template <typename T>
    int emit(const char *name, T *value) { return emit_custom(name, value); }
#pragma pop_macro("emit")

#if __cplusplus >= 201703L
    /** worker_call_home() of a callable (C++17): runs fn() on the worker's
        home thread, in order with its events, and returns its value.
        @code
        auto limits = ctx.call_home([&] { return viewer.contrast_limits(); });
        if (limits) use(*limits.value);
        @endcode
        An exception fn throws is caught on the home thread and handed back
        in error (status WORKER_ESTATE): rethrow it here if you like. fn and
        what it captures may live on the worker's stack: worker_call_home()
        never returns while fn runs. */
    template <typename F>
    auto call_home(F &&fn, int timeout_ms = -1) -> HomeResult<std::invoke_result_t<F &>> {
        using R = std::invoke_result_t<F &>;
        using Call = detail::HomeCall<std::remove_reference_t<F>, R>;
        Call call{&fn, {}};
        int rc = worker_call_home(ctx_, &Call::run, &call, nullptr, timeout_ms);
        if (rc == WORKER_OK && call.out.error) rc = WORKER_ESTATE;
        if (rc != WORKER_OK) {
            if constexpr (!std::is_void_v<R>) call.out.value.reset();
        }
        call.out.status = rc;
        return std::move(call.out);
    }
#endif

private:
    worker_ctx *ctx_;
};

/** An owning reference to a worker: copy = worker_ref, destruction =
    worker_unref (which quits a running worker nobody else owns). */
class Worker {
public:
    /** A worker function's type when one is stored (any callable taking a
        Context will do, move-only ones included). */
    using Function = std::function<void(Context)>;
    /** A callback's type when one is stored (any callable taking a
        worker_event & will do, move-only ones included). */
    using Callback = std::function<void(worker_event &)>;

    /** An empty handle. */
    Worker() noexcept = default;
    /** Adopts an owner reference from the C API (e.g. from worker_create). */
    explicit Worker(worker *adopted) noexcept : w_(adopted) {}
    /** Another reference to the same worker. */
    Worker(const Worker &o) noexcept : w_(o.w_ ? worker_ref(o.w_) : nullptr) {}
    /** Takes o's reference. */
    Worker(Worker &&o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    /** Replaces this reference with another one. */
    Worker &operator=(Worker o) noexcept {
        std::swap(w_, o.w_);
        return *this;
    }
    /** Drops the reference. */
    ~Worker() { if (w_) worker_unref(w_); }

    /** Creates a worker running fn (moved or copied in; it and what it
        captures are destroyed once, on the thread that ends the worker: the
        pool thread, usually). An exception escaping fn becomes an ERRORED
        outcome: code -1 and its what(), or "unknown C++ exception" for a
        throw of any other type (after a fail(), the first failure
        stays the outcome, as in C). Empty on bad options (see
        worker_last_error()). */
    template <typename F>
    static Worker create(F &&fn, const worker_options *opts = nullptr) {
        using Fn = typename std::decay<F>::type;
        auto *heap = new Fn(std::forward<F>(fn));
        return Worker(worker_create(&run<Fn>, heap, &delete_as<Fn>, opts));
    }

    /** The C handle (still owned by this object). */
    worker *get() const noexcept { return w_; }
    /** True if this handle holds a worker. */
    explicit operator bool() const noexcept { return w_ != nullptr; }

    /** worker_connect() with a callable; returns the id or a negative status.
        A callback that captures this worker's own Worker keeps it alive until
        it is disconnected (a reference cycle): capture ev.source instead. */
    template <typename F>
    long on(worker_event_type type, F &&cb) {
        using Cb = typename std::decay<F>::type;
        return worker_connect(w_, type, &call<Cb>, new Cb(std::forward<F>(cb)), &delete_as<Cb>);
    }
    /** worker_connect_custom() with a callable. */
    template <typename F>
    long on_custom(const char *name, F &&cb) {
        using Cb = typename std::decay<F>::type;
        return worker_connect_custom(w_, name, &call<Cb>, new Cb(std::forward<F>(cb)),
                                     &delete_as<Cb>);
    }
    /** worker_disconnect(). */
    int disconnect(long id) { return worker_disconnect(w_, id); }

    /** worker_start(). */
    int start() { return worker_start(w_); }
    /** worker_send() of a `new T` value (the receiver owns it then). */
    template <typename T>
    int send(T *value) { return worker_send(w_, value, &delete_as<T>); }
    /** worker_close_input(): no more sends; receive gives WORKER_EOF once drained. */
    int close_input() { return worker_close_input(w_); }
    /** worker_pipe(this, to): this worker's yields go into to's input. */
    int pipe_into(const Worker &to) { return worker_pipe(w_, to.w_); }
    /** worker_pause(). */
    int pause() { return worker_pause(w_); }
    /** worker_resume(). */
    int resume() { return worker_resume(w_); }
    /** worker_toggle_pause(). */
    int toggle_pause() { return worker_toggle_pause(w_); }
    /** worker_quit(). */
    int quit() { return worker_quit(w_); }
    /** worker_await() (-1 = forever). */
    int await(int timeout_ms = -1) { return worker_await(w_, timeout_ms); }
    /** worker_is_running(). */
    bool running() const { return worker_is_running(w_) == 1; }
    /** worker_is_paused(). */
    bool paused() const { return worker_is_paused(w_) == 1; }
    /** worker_name(). */
    const char *name() const { return worker_name(w_); }
    /** worker_backlog(): entries and bytes pending right now. */
    int backlog(size_t *entries, size_t *bytes) const { return worker_backlog(w_, entries, bytes); }

private:
    template <typename Fn>
    static void run(worker_ctx *ctx, void *fn) {
        try {
            (*static_cast<Fn *>(fn))(Context(ctx));
        } catch (const std::exception &e) {
            worker_fail(ctx, -1, "%s", e.what());
        } catch (...) {
            worker_fail(ctx, -1, "unknown C++ exception");
        }
    }

    // Exceptions cannot cross the C library: report and go on.
    template <typename Cb>
    static void call(worker_event *ev, void *cb) {
        try {
            (*static_cast<Cb *>(cb))(*ev);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "qtworker: exception in callback of '%s': %s\n",
                         worker_name(ev->source), e.what());
        } catch (...) {
            std::fprintf(stderr, "qtworker: exception in callback of '%s'\n",
                         worker_name(ev->source));
        }
    }

    worker *w_ = nullptr;
};

/** An owning handle to a worker_scope (move-only): destroying it, or
    close(), runs worker_scope_close(). As a member of a widget, declared
    after everything its callbacks and functions use (members die in reverse
    order), it stops the widget's workers and their callbacks before those
    members go: by default its destructor waits, as std::jthread joins, until
    every function has returned. With a finite close timeout a function still
    running then is abandoned (no callback of it runs again, but it goes on):
    it must not touch the widget. */
class Scope {
public:
    /** A new scope (name copied, may be NULL); empty when out of memory.
        The destructor waits up to close_timeout_ms (-1 = until every
        function has returned). */
    explicit Scope(const char *name = nullptr, int close_timeout_ms = -1) noexcept
        : s_(worker_scope_new(name)), timeout_(close_timeout_ms) {}
    /** Takes o's scope. */
    Scope(Scope &&o) noexcept : s_(std::exchange(o.s_, nullptr)), timeout_(o.timeout_) {}
    /** Closes this scope, then takes o's. */
    Scope &operator=(Scope &&o) noexcept {
        if (this != &o) {
            close();
            s_ = std::exchange(o.s_, nullptr);
            timeout_ = o.timeout_;
        }
        return *this;
    }
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;
    /** Closes the scope (worker_scope_close with the constructor's timeout). */
    ~Scope() { close(); }

    /** worker_scope_close(); the handle is empty afterwards. ESTATE if it
        was already closed (nothing done). */
    int close(int timeout_ms) noexcept {
        worker_scope *s = std::exchange(s_, nullptr);
        return s ? worker_scope_close(s, timeout_ms) : WORKER_ESTATE;
    }
    /** close() with the constructor's timeout. */
    int close() noexcept { return close(timeout_); }

    /** The C scope (still owned by this object; NULL once closed). */
    worker_scope *get() const noexcept { return s_; }
    /** True while the scope is open. */
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /** Worker::create() of a worker belonging to this scope (opts copied,
        its scope field replaced). Empty once closed (WORKER_ESTATE). */
    template <typename F>
    Worker create(F &&fn, const worker_options *opts = nullptr) const {
        worker_options o;
        if (opts) o = *opts; else worker_options_init(&o);
        o.scope = s_ ? s_ : closed_marker();
        return Worker::create(std::forward<F>(fn), &o);
    }

    /** A scope owned by a QObject (any QObject subclass; a template, so
        this header needs no Qt header): closed, up to close_timeout_ms, when
        owner emits destroyed() — at the start of ~QObject, after the owner's
        own destructor body — so no callback of its workers runs once the
        object is gone. The members of owner's own class are destroyed before
        that: if their destructors run the event loop, callbacks using them
        can still run; then prefer a Scope member declared last. Returns the
        owner's scope (not yours to delete); NULL for a NULL owner or when
        out of memory. (Disconnecting all of owner's destroyed() connections
        would drop this one too.) */
    template <typename QObjectT>
    static Scope *bind(QObjectT *owner, const char *name = nullptr, int close_timeout_ms = -1) {
        if (!owner) return nullptr;
        auto *scope = new Scope(name, close_timeout_ms);
        if (!*scope) {
            delete scope;
            return nullptr;
        }
        QObjectT::connect(owner, &QObjectT::destroyed, [scope] { delete scope; });
        return scope;
    }

private:
    // A pointer that is never an open scope: create() after close() is
    // refused like a C worker_create into a closed scope.
    static worker_scope *closed_marker() noexcept {
        static char marker;
        return reinterpret_cast<worker_scope *>(&marker);
    }
    worker_scope *s_;
    int timeout_;
};

}  // namespace qtworker

#endif  // QTWORKER_HPP
