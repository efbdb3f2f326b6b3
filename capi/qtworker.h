/**
 * @file qtworker.h
 * @brief qtworker — run C functions and generators off the Qt GUI thread.
 *
 * The C counterpart of napari's \@thread_worker: a worker runs your function on
 * a pooled thread; what it yields, returns, fails with, warns about, reports as
 * progress or emits as custom events reaches your callbacks on the thread of
 * the Qt event loop the worker was created on (normally the GUI thread), in the
 * order the worker produced them. No Qt type appears here; C99 and C++.
 *
 * Status codes: 0 = OK, negative = error, worker_strerror() gives the text.
 * A worker created on a QThread while it runs its own event loop (in a slot,
 * a timer, a queued call) delivers there; made on any other thread (one
 * whose run() never calls exec(), a pool task) it delivers on the GUI
 * thread. Once a home thread has ended, its events are destroyed undelivered (no
 * callback runs on a finished thread; payloads are still destroyed once).
 * No C++ exception ever leaves a call: out of memory is WORKER_ENOMEM (and
 * what the call was handed is destroyed), a thread the system refuses is
 * WORKER_EAGAIN. The events every started worker emits (STARTED, PAUSED,
 * RESUMED, the outcome, FINISHED) are never lost: without memory they wait
 * for some.
 *
 * Ownership in one rule: every value handed to the library together with a
 * destroy function (arg, yielded, returned, sent, custom, user_data) is
 * destroyed by the library exactly once — after delivery, when a policy drops
 * it, when the worker ends with it still queued, or at once when the call that
 * handed it over fails. A callback may keep a value with worker_event_take().
 * A NULL destroy means "nothing to free"; NULL values are values too.
 * Destroy functions may run on any thread. A delivered yield of a thread
 * worker without capacity_bytes is usually destroyed on the worker's thread,
 * at one of its next yields (so malloc reuses a frame's memory); if not, on
 * the home thread within about 10 ms, and always before FINISHED.
 *
 * Event order per worker (on the home thread): STARTED first; then any of
 * YIELDED, PROGRESS, WARNED, PAUSED, RESUMED, CUSTOM in production order; then
 * exactly one of RETURNED / ERRORED / ABORTED; then exactly one FINISHED.
 */
#ifndef QTWORKER_H
#define QTWORKER_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Major version of this header; worker_version() gives the library's. */
#define QTWORKER_VERSION_MAJOR 0
/** Minor version of this header. */
#define QTWORKER_VERSION_MINOR 1
/** Patch version of this header. */
#define QTWORKER_VERSION_PATCH 0
/** The version as 0xMMmmpp, comparable with worker_version(). */
#define QTWORKER_VERSION_HEX ((QTWORKER_VERSION_MAJOR << 16) | \
                              (QTWORKER_VERSION_MINOR << 8) | QTWORKER_VERSION_PATCH)
/** The version as text, comparable with worker_version_string(). */
#define QTWORKER_VERSION_STRING "0.1.0"

/** Marks the exported C API (only worker_* symbols leave the library). */
#if defined(QTWORKER_BUILDING) && defined(__GNUC__)
#  define QTWORKER_API __attribute__((visibility("default")))
#else
#  define QTWORKER_API
#endif

/** A worker handle: opaque, reference-counted, used on the owner side. */
typedef struct worker worker;          /* opaque, reference-counted, owner side */
/** The context handed to the worker's function, for worker-side calls. */
typedef struct worker_ctx worker_ctx;  /* handed to the worker's function       */
/** Frees a value handed to the library; called exactly once per value. */
typedef void (*worker_destroy_fn)(void *p);
/** The function a worker runs on its pooled thread. */
typedef void (*worker_fn)(worker_ctx *ctx, void *arg);

/** Status codes: 0 = OK, negative = error; worker_strerror() gives text.
    WORKER_RECEIVED (positive) = worker_yield handed back a sent value. */
enum { WORKER_OK = 0,        /**< success                                  */
       WORKER_RECEIVED = 1,  /**< worker_yield handed back a sent value    */
       WORKER_EINVAL = -1,   /**< NULL, bad argument, unknown/freed handle */
       WORKER_ESTATE = -2,   /**< not valid in the worker's state          */
       WORKER_ETHREAD = -3,  /**< worker-side call outside its function    */
       WORKER_ENOMEM = -4,   /**< out of memory (or file descriptors)      */
       WORKER_ETIMEDOUT = -5,/**< a wait ran out of time                   */
       WORKER_ABORTED = -6,  /**< quit requested: return from your fn      */
       WORKER_ENOAPP = -7,   /**< no QCoreApplication                      */
       WORKER_EBUSY = -8,    /**< serial group / home thread is busy       */
       WORKER_EAGAIN = -9 }; /**< no thread could be created: retry later  */
/** Command queues and pipelines: worker_receive() returns WORKER_EOF
    (positive: not an error) once its input is closed and drained. */
enum { WORKER_EOF = 2 };

/** The library's version as QTWORKER_VERSION_HEX / _STRING (compare with the
    header's macros to detect a mismatched shared library). */
QTWORKER_API unsigned    worker_version(void);
/** The library's version as text, e.g. "0.1.0". */
QTWORKER_API const char *worker_version_string(void);

/** Static English text for any status code (never NULL). */
QTWORKER_API const char *worker_strerror(int status);

/** A plugin's scope: the workers created into it (worker_options.scope) are
    stopped, and their callbacks disconnected, together by worker_scope_close(). */
typedef struct worker_scope worker_scope;

/** Status of the last failed worker_create() on the calling thread
    (WORKER_OK if the last call succeeded). */
QTWORKER_API int worker_last_error(void);

/* ------------------------------------------------------------------ options */

/** What a worker does when its GUI side falls behind:
    BLOCK  — at `capacity` undelivered entries the producer waits (default)
             until half of them are delivered (one wake-up per half, not per
             value), also while the GUI is still in a later callback;
    QUEUE  — lossless and unbounded (opt-in: memory grows with the backlog);
    LATEST — keep only the newest undelivered yield (and progress); older ones
             are destroyed and counted (worker_dropped). Warnings, errors and
             custom events are never dropped: at capacity they wait as BLOCK.
    BLOCK and LATEST hold O(capacity) memory however long the GUI thread
    stalls (tests/test_pressure.cpp measures it). */
typedef enum {
    WORKER_BLOCK,   /**< bounded: the producer waits at capacity (default) */
    WORKER_QUEUE,   /**< lossless and unbounded (opt-in)                    */
    WORKER_LATEST   /**< newest undelivered yield only; older ones dropped  */
} worker_policy;

/** Options for worker_create(); initialise with worker_options_init(). */
typedef struct worker_options {
    const char   *name;           /**< copied; shown in errors and the registry */
    worker_policy policy;         /**< default WORKER_BLOCK                     */
    size_t        capacity;       /**< undelivered values held; default > 0     */
    long long     progress_total; /**< napari progress={'total':N}; 0 = none    */
    const char   *progress_desc;  /**< napari progress={'desc':...}             */
    /** Serial group (copied; NULL = none): workers of one group run one at
        a time, in start order; other groups and ungrouped workers run in
        parallel. A queued member counts as started and live. */
    const char   *group;
    /** Nonzero: worker_start() of this worker returns WORKER_EBUSY instead of
        queueing when a member of its group is running or queued. */
    int           group_exclusive;
    /** > 0: once its function has run this long, the worker is quit; the
        outcome is ABORTED with code WORKER_ETIMEDOUT and the reason in
        message. Counted from when the function starts (not queue time). */
    long long     timeout_ms;
    /** The scope the worker belongs to for life (NULL = none); see
        worker_scope_new(). A scope that is closed, being closed or unknown
        makes worker_create return NULL with WORKER_ESTATE. */
    worker_scope *scope;     /* NULL = none */
    /** A memory budget for undelivered yields, in bytes (0 = no byte bound):
        the sizes given to worker_yield_sized() of values yielded and not yet
        delivered and destroyed. BLOCK waits, LATEST drops older yields; with
        QUEUE worker_create refuses it (EINVAL). See worker_yield_sized(). */
    size_t        capacity_bytes;  /* 0 = no byte bound */
    /* room to grow: fields are appended, never reordered */
} worker_options;

/** Capacity used when worker_options.capacity is 0. */
#define WORKER_DEFAULT_CAPACITY 1024u
/** The largest capacity accepted (larger: WORKER_EINVAL). */
#define WORKER_MAX_CAPACITY     (1u << 24)

/** Fill *opts with the defaults: no name, BLOCK, WORKER_DEFAULT_CAPACITY,
    no progress, no byte budget. Always call it before setting fields (future fields). */
QTWORKER_API void worker_options_init(worker_options *opts);

/* ---------------------------------------------------------------- lifecycle */

/** A new, not yet started worker that will run fn(ctx, arg); ref count 1.
    arg_destroy(arg) runs once the function has returned (or the worker is
    freed without having run). NULL opts = defaults. Returns NULL on bad input
    (fn NULL, bad policy, capacity > WORKER_MAX_CAPACITY, progress_total < 0,
    timeout_ms < 0, empty group name, capacity_bytes with WORKER_QUEUE;
    ESTATE: scope not open): see
    worker_last_error(); arg is destroyed then too. */
QTWORKER_API worker *worker_create(worker_fn fn, void *arg,
                                   worker_destroy_fn arg_destroy,
                                   const worker_options *opts);
/** Another reference (returns w, NULL for an unknown handle). */
QTWORKER_API worker *worker_ref(worker *w);
/** Drop a reference. The last owner unref of a running worker quits it; the
    library keeps it alive until FINISHED is delivered (no crash, napari #5471).
    Once freed, the handle is like a freed pointer: calls with it return
    EINVAL only until a new worker reuses its address — then they act on that
    worker. Do not use a handle after your last unref. */
QTWORKER_API void    worker_unref(worker *w);

/* ------------------------------------------------------------------- events */

/** Event types, in the order a worker can emit them. */
typedef enum {
    WORKER_EV_STARTED,   /**< first event of every started worker             */
    WORKER_EV_YIELDED,   /**< value from worker_yield()                        */
    WORKER_EV_RETURNED,  /**< outcome: the function returned (value = result)  */
    WORKER_EV_ERRORED,   /**< outcome: worker_fail() (code, message)           */
    WORKER_EV_WARNED,    /**< worker_warn() (message)                          */
    WORKER_EV_PROGRESS,  /**< worker_progress() or auto progress (done, total) */
    WORKER_EV_PAUSED,    /**< the worker has parked after worker_pause()       */
    WORKER_EV_RESUMED,   /**< the worker runs again after worker_resume()      */
    WORKER_EV_ABORTED,   /**< outcome: stopped by worker_quit()                */
    WORKER_EV_FINISHED,  /**< last event of every started worker              */
    WORKER_EV_CUSTOM,    /**< worker_emit() (name, value)                      */
    WORKER_EV_OUTPUT     /**< a line printed to worker_stdout()/worker_stderr():
                              message = the line without its newline,
                              name = "stdout" or "stderr", code = 1 or 2      */
} worker_event_type;

/** An event as a callback sees it. Valid only during the callback; strings
    and value are borrowed. */
typedef struct worker_event {
    worker_event_type type; /**< what happened                               */
    worker     *source;   /**< the worker that emitted it                      */
    void       *value;    /**< yielded / returned / custom payload (borrowed) */
    int         code;     /**< errored                                        */
    const char *message;  /**< errored, warned, progress text                 */
    const char *name;     /**< custom event name                              */
    long long   done;     /**< progress: steps done                           */
    long long   total;    /**< progress: of total; 0 = indeterminate          */
} worker_event;
/** A callback, run on the worker's home thread (normally the GUI thread). */
typedef void (*worker_callback)(worker_event *ev, void *user_data);

/** Take ownership of ev->value: the library will not destroy it; the caller
    must (with the destroy it was handed over with). Later callbacks for the
    same event then see value NULL. Only on an event passed to a callback. */
QTWORKER_API void *worker_event_take(worker_event *ev);

/** Call cb(ev, user_data) on the home thread for every event of `type`
    (WORKER_EV_CUSTOM: every custom event). Returns a connection id > 0 (unique
    in the process: no other connection has it), or a negative status (EINVAL: NULL/unknown worker, NULL cb, type out of range;
    ESTATE: FINISHED is being or has been delivered). user_data_destroy(user_data)
    runs once, after disconnect or when the worker is freed — or at once on
    failure. Connecting never starts the worker. Callable from any thread. */
QTWORKER_API long worker_connect(worker *w, worker_event_type type,
                                 worker_callback cb, void *user_data,
                                 worker_destroy_fn user_data_destroy);
/** Like worker_connect for the custom events emitted under `name` only. */
QTWORKER_API long worker_connect_custom(worker *w, const char *name,
                                        worker_callback cb, void *user_data,
                                        worker_destroy_fn user_data_destroy);
/** Remove a connection; it is not called again (also from inside a callback).
    Its user_data is destroyed before this returns — or, when its callback is
    running right then, as soon as that call returns. EINVAL for an unknown id. */
QTWORKER_API int  worker_disconnect(worker *w, long id);

/** The default handler for ERRORED events of workers with no ERRORED callback
    prints "qtworker: worker 'NAME' failed (CODE): MESSAGE" to stderr — errors
    are never silent. Replace it with cb (NULL restores the default). */
QTWORKER_API void worker_set_error_handler(worker_callback cb, void *user_data);

/* ------------------------------------------------------------- owner side */
/* Owner-side calls may come from any thread. After the function has ended
   they return WORKER_ESTATE (values handed over are destroyed). */

/** Run the worker on a pooled thread; STARTED is its first event (when its
    function begins). The pool runs as many workers at once as there are
    CPUs (at least 2), not counting those blocked in the library (paused,
    waiting at capacity); more wait their turn in start order, and one that
    has waited 1 ms gets a thread of its own, so a worker that computes
    forever without blocking delays others by at most that. On Linux pool
    threads run under SCHED_BATCH: a worker waking up never preempts the GUI
    thread (its share of CPU time is unchanged); a function that changes its
    thread's scheduling must restore it before returning. Once only
    (ESTATE after). ENOAPP without a QCoreApplication (it stays startable); EBUSY for a
    group_exclusive worker whose group is busy (it stays startable). In a
    serial group it may wait for its turn: STARTED comes when it runs.
    Works from any thread. EAGAIN when no thread can be created (the
    system's thread or memory-map limit): nothing happened, the worker stays
    startable; retry once other workers have ended. ENOMEM likewise. Started
    while the exit hook joins (from a callback then), it runs already quit:
    STARTED, ABORTED, FINISHED, and the join waits for it.
    Events are delivered by the home thread's event loop, so callbacks
    connected on that thread before it runs its loop again (e.g. right after
    worker_start) still see every event, STARTED included. */
QTWORKER_API int  worker_start(worker *w);
/** Queue a value for the worker's next worker_receive or receiving
    worker_yield (FIFO, NULL is a value, nothing lost). Allowed before start.
    ESTATE (value destroyed) once its input is closed or its scope closed. */
QTWORKER_API int  worker_send(worker *w, void *value, worker_destroy_fn destroy);
/** End w's input (any thread, also before start): later sends give ESTATE;
    worker_receive gives WORKER_EOF once all sent before was received. Workers
    still piped into w are quit. ESTATE if already closed or w has ended. */
QTWORKER_API int  worker_close_input(worker *w);
/** Before `from` starts: its yields go, in order, into to's input instead of
    its YIELDED callbacks (its other events still reach the GUI). from's policy
    and capacity govern the link: BLOCK waits while `capacity` of its values
    are unreceived in `to`; LATEST replaces its newest unreceived one (counted
    by worker_dropped); QUEUE never waits. to's capacity_bytes bounds each
    link's unreceived bytes (worker_yield_sized) alike: BLOCK waits while the
    next value would pass it (one value alone always goes). Many may pipe into one: when all
    have ended, to's input closes. When `to` ends or is quit, or its input is
    closed, the workers still piped into it are quit (a yield into it gives
    ABORTED); values it never received are destroyed when it ends. ESTATE:
    from started, piped already or in a closed scope, `to` ended, quit or
    closed. EINVAL: NULL, from == to, a loop of pipes, a path of pipes between
    two members of one serial group (the first to run would wait for the other). A process worker may be either end (what is
    piped into one must be worker_bytes *; its helper's receive counts). */
QTWORKER_API int  worker_pipe(worker *from, worker *to);
/** Ask the worker to park at its next worker_yield / worker_abort_requested;
    PAUSED is emitted when it has. Allowed before start (it then parks at its
    first worker_yield / worker_abort_requested). Called on a running worker,
    the home thread polls up to 200 us for PAUSED before its loop sleeps. */
QTWORKER_API int  worker_pause(worker *w);
/** Wake a paused worker at once (RESUMED); cancels a pending pause request.
    A resumed worker returns from the call it parked in: a pause asked before
    it woke (resume then pause at once, a "step", or from the RESUMED
    callback) parks it at its next worker_yield, one value later. */
QTWORKER_API int  worker_resume(worker *w);
/** Pause if running, resume if paused or pause-requested. */
QTWORKER_API int  worker_toggle_pause(worker *w);
/** Ask the worker to stop: worker_yield and worker_abort_requested report it,
    a parked or BLOCK-waiting worker wakes at once. The outcome is ABORTED
    (never RETURNED); a worker_fail still gives ERRORED. Yields (and progress)
    not yet delivered are destroyed instead of delivered; warnings and custom
    events still arrive. Before start: OK, and
    a later start gives STARTED, ABORTED, FINISHED without running fn. Called
    on a running worker, the home thread polls up to 200 us for FINISHED. */
QTWORKER_API int  worker_quit(worker *w);
/** 1 from worker_start until the worker has ended (its function returned and
    its leftover arg, result and unreceived sends were destroyed); 0
    otherwise. Events a quit left undelivered are destroyed by the home
    thread as its loop runs, before FINISHED: a GUI stalled then frees them
    only when it runs again. */
QTWORKER_API int  worker_is_running(const worker *w);
/** 1 while the worker is parked in a pause; 0 otherwise. */
QTWORKER_API int  worker_is_paused(const worker *w);
/** Wait up to timeout_ms (-1 = forever) for the function to return (not for
    FINISHED to be delivered). OK, ETIMEDOUT, ESTATE if never started, ETHREAD
    from inside the worker's own function or from a worker_call_home() fn of
    it or of the member its serial group waits for (it would never end). From any
    thread. On the worker's home thread it does not deadlock: while it waits,
    every worker homed on that thread that would wait for room (BLOCK at
    capacity, output at capacity) keeps queueing (as QUEUE) instead — the
    awaited one and whatever it waits for, such as the earlier members of
    its serial group — and their events are delivered when the event loop
    runs again. Likewise every worker_call_home() of a worker homed there
    returns WORKER_EBUSY at once while it waits (fn never runs). That holds
    for every worker homed there, related or not, so BLOCK's and LATEST's
    memory bound does not hold during such a wait (a flooding neighbour
    grows by its rate for as long as it lasts): on the GUI thread, give it
    a timeout. worker_await_all and worker_scope_close there do the same. */
QTWORKER_API int  worker_await(worker *w, int timeout_ms);
/** worker_quit on every live worker; returns how many were asked. */
QTWORKER_API int  worker_quit_all(void);
/** worker_await on every live worker within one overall timeout; one it may
    not wait for (ETHREAD: the caller itself, from its function or its
    worker_call_home() fn) is skipped. OK or ETIMEDOUT. */
QTWORKER_API int  worker_await_all(int timeout_ms);

/* registry of live workers (started, not yet finished), e.g. for a
   "2 tasks still running - quit anyway?" dialog */

/** How many workers are live: started and not yet ended (see worker_is_running). */
QTWORKER_API int         worker_live_count(void);
/** Up to max live workers into out, each a new reference (worker_unref each);
    returns how many were written. With max 0 (out may be NULL) writes
    nothing and returns the live count. EINVAL for max < 0, or out NULL. */
QTWORKER_API int         worker_list(worker **out, int max);
/** The name given in the options, or "worker-N"; NULL for NULL. */
QTWORKER_API const char *worker_name(const worker *w);
/** Yields destroyed by LATEST coalescing so far (e.g. dropped frames). */
QTWORKER_API long long   worker_dropped(const worker *w);
/** What the worker's stream holds right now, from any thread: undelivered
    entries counted against `capacity` (*entries) and the bytes counted
    against `capacity_bytes` (*bytes) — entries taken for delivery count until
    their callbacks have run and they are destroyed. For a "buffer 63 % full"
    indicator. Either output may be NULL; EINVAL (outputs set to 0) for an
    unknown worker. Never waits for the worker's lock: each count is what it
    was at one moment of the call. */
QTWORKER_API int         worker_backlog(const worker *w, size_t *entries, size_t *bytes);

/** When the application's event loop ends (QCoreApplication::aboutToQuit),
    qtworker quits every live worker, waits for them up to this bound
    (default 1000 ms), and delivers their remaining events. */
QTWORKER_API void        worker_set_exit_timeout(int timeout_ms);

/* ------------------------------------------------------------ scopes */
/* A scope is a plugin's (or a widget's) lifetime: create its workers into it
   (worker_options.scope), close it when its dock closes, then free the state
   their callbacks use at once. See doc/guide.md, "Plugin lifetimes". */

/** A new open scope; name (copied, may be NULL) is for debugging only.
    NULL when out of memory. Any thread; no QCoreApplication needed. */
QTWORKER_API worker_scope *worker_scope_new(const char *name);
/** Close and free s, from any thread: quit its workers (unstarted ones never
    run), disconnect their callbacks and destroy their user_data. No callback
    of theirs begins after this returns; one running on another thread right
    then is waited for first. Then waits up to timeout_ms (-1 = forever) for
    their functions to return: OK, or WORKER_ETIMEDOUT (the rest are
    abandoned). EINVAL for NULL; ENOMEM: nothing was done.
    Where issue 18 is silent:
    - Inside one of their callbacks (home thread) that call is not waited
      for: its user_data goes when it returns. From one of their functions,
      that worker is not awaited. User_data is destroyed on this thread,
      except that of a callback running right then: on the thread that ran
      it, as that call returns (before this returns, when waited for).
    - Abandoned workers: their later events and values are destroyed
      undelivered, but an ERRORED still reaches the error handler
      (worker_set_error_handler), never silent; worker_list lists them until
      they end.
    - Afterwards worker_start, worker_connect, worker_send and worker_pipe
      (from them) on its workers give ESTATE;
      creating into a closed scope gives NULL with ESTATE; a create racing
      the close is either closed with it or refused, never outside it.
    - Handles stay valid until unref'd; FINISHED is not delivered to them
      any more, so unref elsewhere (e.g. where the plugin state is freed).
    - A second close is like a second free: EINVAL only until a new scope
      reuses the address. Do not hold a lock a running callback needs. */
QTWORKER_API int worker_scope_close(worker_scope *s, int timeout_ms);

/* ------------------------------------------------------------ worker side */
/* worker side: only from inside the worker's function */
/* Anywhere else: WORKER_ETHREAD (and values handed over are destroyed). */

/** Deliver value as YIELDED. May wait (BLOCK at capacity, paused). Returns
    OK; WORKER_RECEIVED with the oldest sent value in *sent / *sent_destroy
    (yours now); WORKER_ABORTED once quit was asked: return from your
    function (the value was not delivered — unless it was queued before the
    quit, e.g. just before this call parked for a pause: undelivered values are
    destroyed, not shown, once quit is asked); WORKER_ENOMEM when the stream could not grow
    (the value was destroyed, not delivered). Pass sent and sent_destroy both or neither
    (EINVAL); with neither, sent values stay queued. */
QTWORKER_API int  worker_yield(worker_ctx *ctx, void *value, worker_destroy_fn destroy,
                               void **sent, worker_destroy_fn *sent_destroy);
/** worker_yield() of a value that takes `size` bytes (an image frame): counted
    against capacity_bytes until it is delivered and destroyed (plain
    worker_yield counts 0). BLOCK waits while it would exceed the budget;
    LATEST first drops the older undelivered yield (worker_dropped). A value
    larger than the budget is accepted when no bytes are pending, and the call
    then waits until it has been delivered (no deadlock). In a process
    worker's function the size of each `worker_bytes *` is used, whatever
    `size` says (and plain worker_yield counts it too). EINVAL (value
    destroyed) for size > PTRDIFF_MAX. As worker_await says, a wait on the
    home thread lets the stream run past the budget. Sends (worker_send) are
    not counted: an owner-side call never waits for a worker. */
QTWORKER_API int  worker_yield_sized(worker_ctx *ctx, void *value, size_t size,
                                     worker_destroy_fn destroy,
                                     void **sent, worker_destroy_fn *sent_destroy);
/** Wait up to timeout_ms (-1 = forever, 0 = poll) for the oldest value sent
    or piped in: RECEIVED (*value and *destroy are yours now), ETIMEDOUT,
    ABORTED once quit was asked (at once, also while waiting), WORKER_EOF once
    the input is closed and drained. Parks while paused (PAUSED), receiving
    nothing until resumed. EINVAL for NULL value or destroy. */
QTWORKER_API int  worker_receive(worker_ctx *ctx, void **value, worker_destroy_fn *destroy,
                                 int timeout_ms);
/** 1 once quit was asked, else 0 (ETHREAD, negative, outside the function:
    test == 1); parks here first if a pause was asked. */
QTWORKER_API int  worker_abort_requested(worker_ctx *ctx);
/** Set the function's result (last call wins); delivered as RETURNED. */
QTWORKER_API int  worker_return(worker_ctx *ctx, void *value, worker_destroy_fn destroy);
/** Make the outcome ERRORED with code and printf-style message (first call
    wins). Return from your function afterwards. */
QTWORKER_API int  worker_fail(worker_ctx *ctx, int code, const char *fmt, ...);
/** Emit WARNED with a printf-style message; never dropped. */
QTWORKER_API int  worker_warn(worker_ctx *ctx, const char *fmt, ...);
/** Emit PROGRESS (done of total; total 0 = indeterminate; text may be NULL). */
QTWORKER_API int  worker_progress(worker_ctx *ctx, long long done, long long total,
                                  const char *text);
/** Emit a custom event `name` (copied) carrying value; never dropped. */
QTWORKER_API int  worker_emit(worker_ctx *ctx, const char *name, void *value,
                              worker_destroy_fn destroy);

/** A function worker_call_home() runs on the worker's home thread. */
typedef void *(*worker_home_fn)(void *arg);
/** Ask the GUI: run fn(arg) on the worker's home thread (where its callbacks
    run, normally the GUI thread) and wait for it, so fn may read state only
    that thread may touch (a slider, the selected layer, contrast limits).
    fn runs in the worker's event stream: after every event the worker
    emitted before this call has been delivered (its callbacks have run), and
    before any later one. timeout_ms -1 waits forever; 0 returns
    WORKER_ETIMEDOUT unless fn has begun at once (in a loop, each call wakes
    the home thread for nothing: wait instead). Returns:
    - WORKER_OK: fn ran; *result = what it returned (result may be NULL).
    - WORKER_ETIMEDOUT after timeout_ms, WORKER_ABORTED at once when quit is
      asked while waiting (or was asked before): fn has not begun and never
      will. Once fn has begun, the call waits for it to finish and returns
      WORKER_OK, past a timeout or a quit: fn's result is never dropped, and
      fn never outlives the call (arg may point into the worker's stack).
      A call that timed out stays queued (never run) until the home thread
      reaches it; a new call meanwhile waits for that, within its own
      timeout, so retrying during a GUI stall holds no memory.
    - WORKER_EBUSY at once while the home thread is waiting for workers homed
      on it (worker_await there, the exit join when the application quits),
      also for a call already waiting then: that thread cannot run fn, and
      waiting could deadlock (the awaited worker may be this one, or wait for
      it in a serial group). fn never runs; carry on without the answer.
      Once quit was asked it is WORKER_ABORTED instead (as at the exit join).
    - WORKER_ESTATE: the home thread's event loop has ended (fn never runs),
      or fn threw a C++ exception (caught and reported on stderr).
    - WORKER_ETHREAD outside the worker's function (in a callback, in fn);
      WORKER_EINVAL for a NULL ctx or fn, and always in a process worker
      (worker_create_process): its function lives in another address space
      than the home thread, which could not run it.
    - WORKER_ENOMEM when the call could not be queued.
    *result is NULL whenever the status is not WORKER_OK. fn should be short
    (the GUI runs it like a callback) and must not wait for its own worker:
    worker_await from fn of the calling worker, or of a member queued behind
    it in its serial group, returns WORKER_ETHREAD. A
    pause request does not park the worker here. */
QTWORKER_API int worker_call_home(worker_ctx *ctx, worker_home_fn fn, void *arg,
                                  void **result, int timeout_ms);

/** Longest OUTPUT line; a longer one arrives split into pieces this long. */
#define WORKER_MAX_LINE 16384

/** A stdio stream for the worker's printed output: each complete line
    becomes an OUTPUT event (name "stdout"), in order with the worker's other
    events; a last line without a newline arrives when the function returns.
    Use fprintf/fputs/fwrite as usual, and hand it to library code that takes
    a FILE *. Output is never dropped: a writer waits while the stream holds
    `capacity` undelivered entries, whatever the policy. Valid only until the
    function returns (the library closes it; do not fclose it). NULL outside
    the worker's function. */
QTWORKER_API FILE *worker_stdout(worker_ctx *ctx);
/** Like worker_stdout(), for error output (name "stderr", code 2). */
QTWORKER_API FILE *worker_stderr(worker_ctx *ctx);

/** worker_capture_stdio() flag: the C `stdout` stream and descriptor 1. */
#define WORKER_CAPTURE_STDOUT 1u
/** worker_capture_stdio() flag: the C `stderr` stream and descriptor 2. */
#define WORKER_CAPTURE_STDERR 2u

/** Capture what the process prints to its real stdout / stderr (flags), or
    end the capture (0). Every byte still reaches the original descriptor.
    A line printed with C stdio (printf, puts, fprintf(stderr, ...)) inside a
    worker's function becomes an OUTPUT event of that worker, as with
    worker_stdout(). Bytes written to descriptor 1 / 2 otherwise (write(),
    std::cout, Fortran, child processes) carry no thread: such a line goes to
    a worker only if exactly one worker function is running when it is read.
    A captured line never waits: if it has no worker, or the worker's stream
    holds `capacity` entries, it is only passed through, and counted
    (worker_capture_unattributed()). A stdio piece flushed without a newline
    (fflush, a printf longer than stdio's 8 KiB buffer) arrives as a line of
    its own. Replaces the C library's `stdout`/`stderr`
    pointers: call it while no worker is printing, not from a worker's
    function. Returns WORKER_EINVAL for unknown flags, WORKER_ESTATE if a
    capture is already on, WORKER_ETHREAD inside a worker function,
    WORKER_ENOMEM if a pipe or stream cannot be made. See doc/guide.md. */
QTWORKER_API int worker_capture_stdio(unsigned flags);
/** Captured lines that reached no worker's events, since the process began. */
QTWORKER_API long long worker_capture_unattributed(void);

/* ------------------------------------------------------ plain-C hosts */
/* plain-C hosts (no Qt code of their own) */
/** Make a QApplication if none exists (offscreen when there is no display).
    argc/argv must outlive the application. */
QTWORKER_API int  worker_app_init(int *argc, char **argv);
/** Run the event loop; returns its exit code (ENOAPP without an app). */
QTWORKER_API int  worker_app_exec(void);
/** End worker_app_exec with code; from any thread. */
QTWORKER_API void worker_app_quit(int code);
/** Process pending events, waiting up to max_ms for one to arrive. OK;
    EINVAL for a negative max_ms, ENOAPP without an app. */
QTWORKER_API int  worker_app_process_events(int max_ms);

/* ================================================== process workers */
/* A process worker runs a function from a shared module in a helper process
   the library starts: a crash or a function that never checks for quit
   cannot take the application down. Same events and owner-side API as a
   thread worker; the function uses the same worker-side calls. */

/** A byte buffer: the only kind of value that crosses the process boundary.
    A process worker's function yields, returns, emits and receives
    `worker_bytes *` values (or NULL); its owner sends them and receives them
    in events (value = `worker_bytes *`, destroyed with worker_bytes_free()).
    Buffers of at least WORKER_BYTES_SHARED_MIN bytes made by
    worker_bytes_new() live in shared memory (a sealed memfd) and cross the
    boundary without a copy: only a descriptor travels, the receiver maps the
    same pages. Smaller ones, and large ones made any other way, are copied
    once. */
typedef struct worker_bytes {
    size_t         size;  /**< number of bytes at data                       */
    unsigned char *data;  /**< size writable bytes; NULL when size is 0      */
} worker_bytes;

/** Buffers this large or larger are allocated in shared memory (each holds a
    file descriptor until freed); received ones are mapped (no descriptor). */
#define WORKER_BYTES_SHARED_MIN (64u * 1024u)

/** A new zero-filled buffer of size bytes (any process); NULL when out of
    memory. Free it with worker_bytes_free(), or hand it to the library
    together with worker_bytes_free as its destroy function. */
QTWORKER_API worker_bytes *worker_bytes_new(size_t size);
/** worker_bytes_new(size) holding a copy of data (data may be NULL if size is
    0). */
QTWORKER_API worker_bytes *worker_bytes_copy(const void *data, size_t size);
/** Free a buffer from worker_bytes_new() / worker_bytes_copy() or one the
    library delivered; a worker_destroy_fn. NULL is ignored. */
QTWORKER_API void worker_bytes_free(void *bytes);

/** Options for worker_create_process(); initialise with
    worker_process_options_init(). */
typedef struct worker_process_options {
    /** After worker_quit(): how long the process may take to end on its own
        before it is killed (SIGKILL). Default WORKER_DEFAULT_KILL_GRACE_MS;
        0 = kill at once. */
    int kill_grace_ms;
    /** How many of the process's last stderr lines an ERRORED message for a
        crash quotes. Default 20; 0 = none. */
    int stderr_lines;
    /* room to grow: fields are appended, never reordered */
} worker_process_options;

/** Default worker_process_options.kill_grace_ms. */
#define WORKER_DEFAULT_KILL_GRACE_MS 2000

/** Fill *popts with the defaults. Always call it before setting fields. */
QTWORKER_API void worker_process_options_init(worker_process_options *popts);

/** A new, not yet started worker that runs `symbol` (a worker_fn) from the
    shared module at module_path in a helper process; ref count 1. Everything
    else is a thread worker's: events, options (policy, capacity, progress,
    group, timeout), send, pause, resume, quit, await, registry.

    The function receives as arg a `worker_bytes *` (never NULL, owned by the
    library) holding a copy of arg_size bytes at arg. Every value it yields,
    returns or emits must be a `worker_bytes *` (or NULL) — the library reads
    it, then destroys it with the destroy it was handed with — and values it
    receives are `worker_bytes *` to free with the destroy handed over.
    Values sent to it with worker_send() (or piped into it, worker_pipe) must
    be `worker_bytes *` (or NULL); they are destroyed with their destroy once
    forwarded, and the function takes them with worker_receive() or a
    receiving worker_yield(); worker_close_input() is passed on. Raw writes to the
    process's stderr (fprintf(stderr, ...), a crash report) go to this
    process's stderr; worker_stdout()/worker_stderr() give OUTPUT events.

    The process is started when the worker runs and always reaped before
    FINISHED (no zombie, no descriptor left open). worker_quit() asks the
    function to stop (worker_yield returns WORKER_ABORTED) and kills the
    process after popts->kill_grace_ms if it has not ended (a WARNED event
    says so); the outcome is ABORTED. A process that dies without an outcome
    gives ERRORED: code = the signal number and message "process 'NAME'
    (pid N) killed by SIGSEGV (Segmentation fault)" followed by its last
    stderr lines; or code = the exit status ("exited with status N"); a
    process that exits with status 0 without an outcome (exit(0) inside the
    function) gives code WORKER_ESTATE, "ended without an outcome". If the
    application reaps the helper itself (waitpid(-1, ...)), the library
    never signals another process: the outcome says "its exit status is
    unknown" (code WORKER_ESTATE) unless the function had sent one. A
    module that cannot be loaded, a missing symbol or a helper program that
    cannot be started give ERRORED with code WORKER_EINVAL and the reason;
    a process that breaks the protocol gives code WORKER_ESTATE; a value
    this process could not take (no memory or file descriptor free to
    receive it) ends the worker with code WORKER_ENOMEM, as a start without
    them does, rather than go on without it.

    The helper program is found through the environment variable
    QTWORKER_PROCD, else next to an uninstalled build of the library, else
    in the installed libexec directory.

    Returns NULL (see worker_last_error()) with WORKER_EINVAL for a NULL or
    empty module_path or symbol, arg NULL with arg_size > 0, a negative
    kill_grace_ms or stderr_lines, or the options worker_create() refuses. */
QTWORKER_API worker *worker_create_process(const char *module_path, const char *symbol,
                                           const void *arg, size_t arg_size,
                                           const worker_options *opts,
                                           const worker_process_options *popts);

/** The helper process's id: while it runs, and after it ended (then already
    reaped). 0 until the helper is spawned, which may be after STARTED was
    delivered; WORKER_EINVAL for NULL or a thread worker. */
QTWORKER_API long worker_process_id(const worker *w);

/** Entry point of the helper program (qtworker-procd) that runs a process
    worker's function; applications do not call it. */
QTWORKER_API int worker_procd_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* QTWORKER_H */
