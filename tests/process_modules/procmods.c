/* Worker functions for tests/test_process.cpp and the process bench. Each is
   a worker_fn run in the helper process by worker_create_process(); its arg
   is a worker_bytes * and every value it yields, returns or emits is one. */
#define _POSIX_C_SOURCE 200809L
#include <qtworker.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(int ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static worker_bytes *int_bytes(int v) { return worker_bytes_copy(&v, sizeof v); }
static worker_bytes *text_bytes(const char *s) { return worker_bytes_copy(s, strlen(s)); }

/* The first n 64-bit numbers of the argument (0 where it is too short). */
static uint64_t arg_u64(void *arg, int i) {
    const worker_bytes *a = arg;
    uint64_t v = 0;
    if (a->size >= (size_t)(i + 1) * sizeof v) memcpy(&v, a->data + i * sizeof v, sizeof v);
    return v;
}

/* Returns "echo:" followed by its argument. */
void pm_return_arg(worker_ctx *ctx, void *arg) {
    const worker_bytes *a = arg;
    worker_bytes *r = worker_bytes_new(5 + a->size);
    memcpy(r->data, "echo:", 5);
    if (a->size) memcpy(r->data + 5, a->data, a->size);
    worker_return(ctx, r, worker_bytes_free);
}

/* Yields 0, 1, 2, ... (int), taking input at each yield; every value received
   goes back as the custom event "echo"; a NULL received ends it with "bye". */
void pm_echo(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0;; i++) {
        void *sent;
        worker_destroy_fn sent_destroy;
        int rc = worker_yield(ctx, int_bytes(i), worker_bytes_free, &sent, &sent_destroy);
        if (rc == WORKER_ABORTED) return;
        if (rc != WORKER_RECEIVED) {
            nap_ms(1);
            continue;
        }
        if (!sent) {
            if (sent_destroy) sent_destroy(sent);
            worker_return(ctx, text_bytes("bye"), worker_bytes_free);
            return;
        }
        worker_emit(ctx, "echo", sent, sent_destroy);
    }
}

/* One of each event, in this order. */
void pm_events(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_yield(ctx, int_bytes(1), worker_bytes_free, NULL, NULL);
    worker_warn(ctx, "careful %d", 7);
    worker_progress(ctx, 1, 3, "step");
    worker_progress(ctx, 2, 3, NULL);
    worker_emit(ctx, "custom", text_bytes("c"), worker_bytes_free);
    fprintf(worker_stdout(ctx), "hello\n");
    fprintf(worker_stderr(ctx), "oops\n");
    worker_yield(ctx, NULL, NULL, NULL, NULL);
    worker_yield(ctx, int_bytes(2), worker_bytes_free, NULL, NULL);
    worker_return(ctx, text_bytes("done"), worker_bytes_free);
}

void pm_fail(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_fail(ctx, 7, "bad %s", "input");
}

/* Yields 0..4, then leaves the process behind the library's back. */
void pm_exit(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) worker_yield(ctx, int_bytes(i), worker_bytes_free, NULL, NULL);
    fprintf(stderr, "pm_exit: leaving with status 3\n");
    exit(3);
}

/* Yields 0, 1, 2, ... every 2 ms until quit (a cooperative generator). */
void pm_ticker(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0;; i++) {
        if (worker_yield(ctx, int_bytes(i), worker_bytes_free, NULL, NULL) == WORKER_ABORTED)
            return;
        nap_ms(2);
    }
}

/* arg: u64 n. Yields n 8-byte values flat out (throughput). */
void pm_count(worker_ctx *ctx, void *arg) {
    uint64_t n = arg_u64(arg, 0);
    for (uint64_t i = 0; i < n; i++)
        if (worker_yield(ctx, worker_bytes_copy(&i, sizeof i), worker_bytes_free, NULL, NULL) ==
            WORKER_ABORTED)
            return;
}

/* Marks a frame: byte i of each 4 KiB page and the last byte hold the frame
   number, so a reader can check every page arrived. */
static void mark_frame(unsigned char *data, size_t size, unsigned char tag) {
    for (size_t off = 0; off < size; off += 4096) data[off] = tag;
    if (size) data[size - 1] = tag;
}

/* arg: u64 count, u64 size. Yields count frames made with worker_bytes_new
   (shared memory from WORKER_BYTES_SHARED_MIN on: no copy). */
void pm_frames(worker_ctx *ctx, void *arg) {
    uint64_t count = arg_u64(arg, 0), size = arg_u64(arg, 1);
    for (uint64_t i = 0; i < count; i++) {
        worker_bytes *f = worker_bytes_new(size);
        if (!f) {
            worker_fail(ctx, 1, "out of memory");
            return;
        }
        mark_frame(f->data, f->size, (unsigned char)i);
        if (worker_yield(ctx, f, worker_bytes_free, NULL, NULL) == WORKER_ABORTED) return;
    }
}

/* A worker_bytes the function made itself (not with worker_bytes_new): the
   library copies it once into shared memory. */
static void heap_bytes_free(void *p) {
    worker_bytes *b = p;
    free(b->data);
    free(b);
}

/* Like pm_frames, with frames allocated by the module (the copy path). */
void pm_frames_heap(worker_ctx *ctx, void *arg) {
    uint64_t count = arg_u64(arg, 0), size = arg_u64(arg, 1);
    for (uint64_t i = 0; i < count; i++) {
        worker_bytes *f = malloc(sizeof *f);
        f->size = size;
        f->data = malloc(size ? size : 1);
        memset(f->data, 0, size);
        mark_frame(f->data, f->size, (unsigned char)i);
        if (worker_yield(ctx, f, heap_bytes_free, NULL, NULL) == WORKER_ABORTED) return;
    }
}

/* arg: u64 count, u64 size, then a file path. Like pm_frames, and after each
   yield returns it writes how many frames it has made to the file, so a test
   can see how far ahead of the GUI the process ran. */
void pm_frames_counted(worker_ctx *ctx, void *arg) {
    const worker_bytes *a = arg;
    uint64_t count = arg_u64(arg, 0), size = arg_u64(arg, 1);
    char path[512] = {0};
    if (a->size > 16) memcpy(path, a->data + 16, a->size - 16 < 511 ? a->size - 16 : 511);
    FILE *f = fopen(path, "w");
    for (uint64_t i = 0; f && i < count; i++) {
        worker_bytes *frame = worker_bytes_new(size);
        mark_frame(frame->data, frame->size, (unsigned char)i);
        rewind(f);
        fprintf(f, "%llu\n", (unsigned long long)(i + 1));
        fflush(f);
        if (worker_yield(ctx, frame, worker_bytes_free, NULL, NULL) == WORKER_ABORTED) break;
    }
    if (f) fclose(f);
}

/* A tally of frames made and destroyed, kept in a file (the process ends
   with _exit: nothing runs at exit), rewritten after every change as
   "made destroyed returned". */
static pthread_mutex_t tally_mu = PTHREAD_MUTEX_INITIALIZER;
static int tally_fd = -1;
static long tally_made, tally_destroyed, tally_returned;

static void tally_write_locked(void) {
    char line[64];
    int n = snprintf(line, sizeof line, "%ld %ld %ld\n", tally_made, tally_destroyed,
                     tally_returned);
    if (tally_fd >= 0 && n > 0 && pwrite(tally_fd, line, (size_t)n, 0) < 0) return;
}

static void tally_add(long *counter) {
    pthread_mutex_lock(&tally_mu);
    ++*counter;
    tally_write_locked();
    pthread_mutex_unlock(&tally_mu);
}

static void tally_free(void *p) {
    worker_bytes_free(p);
    tally_add(&tally_destroyed);
}

/* arg: u64 count, u64 size, then a file path. Yields count frames made with
   worker_bytes_new (shared memory), each destroyed through a counting
   destroy function; returns at once on WORKER_ABORTED. The file says how
   many frames were made and destroyed, and whether the function returned. */
void pm_frames_tallied(worker_ctx *ctx, void *arg) {
    const worker_bytes *a = arg;
    uint64_t count = arg_u64(arg, 0), size = arg_u64(arg, 1);
    char path[512] = {0};
    if (a->size > 16) memcpy(path, a->data + 16, a->size - 16 < 511 ? a->size - 16 : 511);
    tally_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    for (uint64_t i = 0; tally_fd >= 0 && i < count; i++) {
        worker_bytes *frame = worker_bytes_new(size);
        if (!frame) break;
        mark_frame(frame->data, frame->size, (unsigned char)i);
        tally_add(&tally_made);
        if (worker_yield(ctx, frame, tally_free, NULL, NULL) == WORKER_ABORTED) break;
    }
    tally_add(&tally_returned);
}

/* arg: u64 hold_ms. Forks a process that keeps this helper's descriptors
   (its socket to the parent, its stderr) open for hold_ms (0: no such
   process), yields that process's pid (int, 0 for none), then yields a tick
   every 10 ms forever: it parks on pause but ignores quit. */
void pm_ignores_quit(worker_ctx *ctx, void *arg) {
    uint64_t hold_ms = arg_u64(arg, 0);
    int holder = 0;
    if (hold_ms) {
        pid_t p = fork();
        if (p == 0) {  /* only async-signal-safe calls: this process has threads */
            /* Out of the helper's process group, which would keep the
               helper's pid in use (as the group's id) after it is reaped. */
            setpgid(0, 0);
            struct timespec t = {(time_t)(hold_ms / 1000), (long)(hold_ms % 1000) * 1000000L};
            nanosleep(&t, NULL);
            _exit(0);
        }
        holder = p > 0 ? (int)p : 0;
    }
    worker_yield(ctx, int_bytes(holder), worker_bytes_free, NULL, NULL);
    for (int i = 0;; i++) {
        worker_yield(ctx, int_bytes(i), worker_bytes_free, NULL, NULL);  /* ABORTED: ignored */
        nap_ms(10);
    }
}

static void *pm_home_fn(void *arg) { return arg; }

/* worker_call_home is refused in a process worker: fails with its status. */
void pm_call_home(worker_ctx *ctx, void *arg) {
    (void)arg;
    void *got = &got;
    int rc = worker_call_home(ctx, pm_home_fn, NULL, &got, -1);
    worker_fail(ctx, rc, "call_home %s", got ? "left result set" : "cleared result");
}

/* A command-queue / pipeline stage: yields every value it receives back, in
   order, until its input ends; returns "eof" (input closed and drained) or
   "aborted" (quit). */
void pm_receive_echo(worker_ctx *ctx, void *arg) {
    void *v;
    worker_destroy_fn d;
    int rc;
    (void)arg;
    while ((rc = worker_receive(ctx, &v, &d, -1)) == WORKER_RECEIVED)
        if (worker_yield(ctx, v, d, NULL, NULL) != WORKER_OK) break;
    worker_return(ctx, text_bytes(rc == WORKER_EOF ? "eof" : "aborted"), worker_bytes_free);
}
