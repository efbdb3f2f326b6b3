/* promise 2 (handles): every public function taking a worker / worker_ctx / worker_scope handle, given garbage (NULL, 1..4096, stack pointers, freed handles, a worker_ctx as a worker, a scope as a worker, a worker as a ctx/scope, misaligned pointers into a live worker, a forged byte copy of a live worker, heap garbage) returns an error (EINVAL/ETHREAD/NULL/0) and never crashes; values handed over with a bad handle are destroyed exactly once; a live worker is untouched afterwards. run: ./build.sh probes/s7_c2_garbage_handles.c && QT_QPA_PLATFORM=offscreen probes/s7_c2_garbage_handles [first-case] */
#include <qtworker.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char current[200] = "start";
static void on_alarm(int s) {
    (void)s;
    char m[300];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static long fails;
#define FAIL(...) do { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); fails++; } while (0)
static atomic_long destroyed_vals, handed;
static void vfree(void *p) { destroyed_vals++; free(p); }
static void *v(void) { handed++; return malloc(8); }
static atomic_long ud_made, ud_freed;
static void udfree(void *p) { ud_freed++; (void)p; }
static void cb(worker_event *ev, void *p) { (void)ev; (void)p; }

static int bad_status(long rc) { return rc < 0; }

/* every owner-side function with a garbage worker */
static void try_worker(worker *g, const char *what) {
    snprintf(current, sizeof current, "%s", what);
    long before = destroyed_vals, h = handed;
    long rc;
    if (worker_ref(g) != NULL) FAIL("worker_ref returned non-NULL");
    rc = worker_connect(g, WORKER_EV_YIELDED, cb, (ud_made++, (void *)1), udfree); if (!bad_status(rc)) FAIL("worker_connect = %ld", rc);
    rc = worker_connect_custom(g, "x", cb, (ud_made++, (void *)1), udfree); if (!bad_status(rc)) FAIL("worker_connect_custom = %ld", rc);
    rc = worker_disconnect(g, 1); if (!bad_status(rc)) FAIL("worker_disconnect = %ld", rc);
    rc = worker_start(g); if (!bad_status(rc)) FAIL("worker_start = %ld", rc);
    rc = worker_send(g, v(), vfree); if (!bad_status(rc)) FAIL("worker_send = %ld", rc);
    rc = worker_close_input(g); if (!bad_status(rc)) FAIL("worker_close_input = %ld", rc);
    rc = worker_pause(g); if (!bad_status(rc)) FAIL("worker_pause = %ld", rc);
    rc = worker_resume(g); if (!bad_status(rc)) FAIL("worker_resume = %ld", rc);
    rc = worker_toggle_pause(g); if (!bad_status(rc)) FAIL("worker_toggle_pause = %ld", rc);
    rc = worker_quit(g); if (!bad_status(rc)) FAIL("worker_quit = %ld", rc);
    rc = worker_is_running(g); if (rc != 0) FAIL("worker_is_running = %ld", rc);
    rc = worker_is_paused(g); if (rc != 0) FAIL("worker_is_paused = %ld", rc);
    rc = worker_await(g, 10); if (!bad_status(rc)) FAIL("worker_await = %ld", rc);
    const char *nm = worker_name(g); if (nm) FAIL("worker_name = '%.40s'", nm);
    long long d = worker_dropped(g); if (d > 0) FAIL("worker_dropped = %lld", d);
    size_t e = 77, b = 77;
    rc = worker_backlog(g, &e, &b); if (!bad_status(rc) || e || b) FAIL("worker_backlog = %ld, %zu %zu", rc, e, b);
    rc = worker_process_id(g); if (!bad_status(rc)) FAIL("worker_process_id = %ld", rc);
    worker_unref(g);
    worker_unref(g);
    if (destroyed_vals - before != handed - h) FAIL("%ld values handed over, %ld destroyed", handed - h, destroyed_vals - before);
}
static worker *live, *live2;
static void try_pipe(worker *g, const char *what) {
    snprintf(current, sizeof current, "pipe %s", what);
    long rc = worker_pipe(g, live); if (!bad_status(rc)) FAIL("worker_pipe(garbage, live) = %ld", rc);
    rc = worker_pipe(live, g); if (!bad_status(rc)) FAIL("worker_pipe(live, garbage) = %ld", rc);
}
static void try_scope(worker_scope *g, const char *what) {
    snprintf(current, sizeof current, "scope %s", what);
    int rc = worker_scope_close(g, 10); if (rc != WORKER_EINVAL) FAIL("worker_scope_close = %d", rc);
    worker_options o;
    worker_options_init(&o);
    o.scope = g;
    long before = destroyed_vals;
    handed++;
    worker *w = worker_create((worker_fn)cb, malloc(8), vfree, &o);
    if (w) { FAIL("worker_create into a garbage scope succeeded"); worker_unref(w); }
    else if (worker_last_error() != WORKER_ESTATE) FAIL("create into garbage scope: last_error %d, want ESTATE", worker_last_error());
    if (destroyed_vals - before != 1) FAIL("create into garbage scope: arg destroyed %ld times", destroyed_vals - before);
}
/* worker-side calls with a garbage ctx, on the calling thread */
static void try_ctx(worker_ctx *g, const char *what) {
    snprintf(current, sizeof current, "ctx %s", what);
    long before = destroyed_vals, h = handed;
    long rc;
    void *sent = (void *)1; worker_destroy_fn sd = (worker_destroy_fn)1;
    rc = worker_yield(g, v(), vfree, NULL, NULL); if (!bad_status(rc)) FAIL("worker_yield = %ld", rc);
    rc = worker_yield(g, v(), vfree, &sent, &sd); if (!bad_status(rc)) FAIL("worker_yield(sent) = %ld", rc);
    rc = worker_yield_sized(g, v(), 10, vfree, NULL, NULL); if (!bad_status(rc)) FAIL("worker_yield_sized = %ld", rc);
    void *rv = NULL; worker_destroy_fn rd = NULL;
    rc = worker_receive(g, &rv, &rd, 0); if (!bad_status(rc)) FAIL("worker_receive = %ld", rc);
    rc = worker_abort_requested(g); if (rc != 0 && !bad_status(rc)) FAIL("worker_abort_requested = %ld", rc);
    rc = worker_return(g, v(), vfree); if (!bad_status(rc)) FAIL("worker_return = %ld", rc);
    rc = worker_fail(g, 3, "x %d", 1); if (!bad_status(rc)) FAIL("worker_fail = %ld", rc);
    rc = worker_warn(g, "x %d", 1); if (!bad_status(rc)) FAIL("worker_warn = %ld", rc);
    rc = worker_progress(g, 1, 2, "t"); if (!bad_status(rc)) FAIL("worker_progress = %ld", rc);
    rc = worker_emit(g, "n", v(), vfree); if (!bad_status(rc)) FAIL("worker_emit = %ld", rc);
    void *res = (void *)1;
    rc = worker_call_home(g, (worker_home_fn)malloc, NULL, &res, 10); if (!bad_status(rc)) FAIL("worker_call_home = %ld", rc);
    if (rc != WORKER_OK && res != NULL) FAIL("worker_call_home failed but *result = %p", res);
    if (worker_stdout(g)) FAIL("worker_stdout non-NULL");
    if (worker_stderr(g)) FAIL("worker_stderr non-NULL");
    if (destroyed_vals - before != handed - h) FAIL("%ld values handed over, %ld destroyed", handed - h, destroyed_vals - before);
}

/* captured from a running worker */
static worker_ctx *captured_ctx;
static atomic_int go_on, in_fn;
static void holder(worker_ctx *ctx, void *arg) {
    (void)arg;
    captured_ctx = ctx;
    in_fn = 1;
    while (!go_on && !worker_abort_requested(ctx)) usleep(1000);
}
/* worker side with garbage ctx from INSIDE a worker function */
static char inside_report[4096];
static void inside(worker_ctx *ctx, void *arg) {
    (void)arg;
    worker_ctx *gs[] = {NULL, (worker_ctx *)1, (worker_ctx *)4096, (worker_ctx *)((char *)ctx + 1), (worker_ctx *)((char *)ctx + 8),
                        captured_ctx, (worker_ctx *)live};
    const char *names[] = {"NULL", "1", "4096", "ctx+1", "ctx+8", "other worker's live ctx", "a worker as ctx"};
    for (unsigned i = 0; i < sizeof gs / sizeof gs[0]; i++) {
        snprintf(current, sizeof current, "inside fn: ctx %s", names[i]);
        long before = destroyed_vals;
        int rc = worker_yield(gs[i], v(), vfree, NULL, NULL);
        int rc2 = worker_emit(gs[i], "n", v(), vfree);
        int rc3 = worker_warn(gs[i], "w");
        if (rc >= 0 || rc2 >= 0 || rc3 >= 0)
            snprintf(inside_report + strlen(inside_report), sizeof inside_report - strlen(inside_report),
                     "FAIL: [%s] yield %d emit %d warn %d\n", current, rc, rc2, rc3);
        if (destroyed_vals - before != 2)
            snprintf(inside_report + strlen(inside_report), sizeof inside_report - strlen(inside_report),
                     "FAIL: [%s] 2 values handed, %ld destroyed\n", current, destroyed_vals - before);
    }
}

static atomic_long live_events;
static void count_cb(worker_event *ev, void *p) { (void)ev; (void)p; live_events++; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(25);
    worker_app_init(&argc, argv);
    int from = argc > 1 ? atoi(argv[1]) : 0;
    /* a live, running worker with its ctx captured */
    worker_options o;
    worker_options_init(&o);
    o.name = "live";
    live = worker_create(holder, NULL, NULL, &o);
    worker_connect(live, WORKER_EV_FINISHED, count_cb, NULL, NULL);
    worker_start(live);
    while (!in_fn) usleep(1000);
    live2 = worker_create(holder, NULL, NULL, NULL);  /* never started */
    worker_scope *sc = worker_scope_new("s");

    /* freed handles */
    worker *freed_unstarted = worker_create(holder, NULL, NULL, NULL);
    worker_unref(freed_unstarted);
    static int fin_done;
    worker *freed_finished = worker_create((worker_fn)cb, NULL, NULL, NULL);
    worker_connect(freed_finished, WORKER_EV_FINISHED, (worker_callback)(void (*)(worker_event *, void *))cb, NULL, NULL);
    worker_start(freed_finished);
    worker_await(freed_finished, -1);
    for (int i = 0; i < 50; i++) worker_app_process_events(1);
    worker_unref(freed_finished);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    (void)fin_done;
    worker_scope *freed_scope = worker_scope_new("gone");
    worker_scope_close(freed_scope, -1);

    char stackbuf[512];
    memset(stackbuf, 0, sizeof stackbuf);
    char stackff[512];
    memset(stackff, 0xff, sizeof stackff);
    unsigned char *heapff = malloc(4096); memset(heapff, 0xff, 4096);
    unsigned char *heap0 = calloc(1, 4096);
    size_t wsz = malloc_usable_size(live);
    unsigned char *forged = malloc(wsz ? wsz : 1); if (wsz) memcpy(forged, live, wsz);
    printf("info: live worker handle %p, usable size %zu\n", (void *)live, wsz);

    struct { const char *name; void *p; } cases[] = {
        {"NULL", NULL},
        {"stack zeros", stackbuf}, {"stack 0xff", stackff}, {"stack +3", stackbuf + 3},
        {"heap 0xff", heapff}, {"heap zeros", heap0},
        {"freed unstarted worker", freed_unstarted}, {"freed finished worker", freed_finished},
        {"worker_ctx of a live worker as a worker", captured_ctx},
        {"scope as a worker", sc}, {"closed scope as a worker", freed_scope},
        {"live worker +1", (char *)live + 1}, {"live worker +4", (char *)live + 4}, {"live worker +8", (char *)live + 8},
        {"live worker -8", (char *)live - 8}, {"live worker +16", (char *)live + 16},
        {"forged byte copy of a live worker", wsz ? forged : NULL},
        {"function pointer", (void *)&main}, {"string literal", (void *)"hello worker"},
        {"(void*)-1", (void *)(intptr_t)-1}, {"0xdeadbeef", (void *)(uintptr_t)0xdeadbeefu},
        {"high canonical", (void *)(uintptr_t)0x00007ffffffff000ull}, {"non-canonical", (void *)(uintptr_t)0x8000000000000000ull},
    };
    int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = from; i < nc; i++) {
        printf("case %d: %s\n", i, cases[i].name);
        try_worker(cases[i].p, cases[i].name);
        try_pipe(cases[i].p, cases[i].name);
        if (cases[i].p != sc && cases[i].p) try_scope(cases[i].p, cases[i].name);
        if (cases[i].p != captured_ctx) try_ctx(cases[i].p, cases[i].name);
    }
    printf("small integers 1..4096\n");
    for (uintptr_t i = 1; i <= 4096; i++) {
        char nm[40]; snprintf(nm, sizeof nm, "(void*)%lu", (unsigned long)i);
        try_worker((worker *)i, nm);
        try_pipe((worker *)i, nm);
        try_scope((worker_scope *)i, nm);
        try_ctx((worker_ctx *)i, nm);
        if (fails > 50) break;
    }
    printf("a real worker passed as scope and as ctx (outside its function); a live ctx outside its function\n");
    try_scope((worker_scope *)live, "live worker as scope");
    try_ctx((worker_ctx *)live, "live worker as ctx");
    try_ctx(captured_ctx, "live worker's own ctx, from the GUI thread");
    /* worker side, garbage ctx inside another worker's function */
    printf("garbage ctx from inside a worker function\n");
    worker *in = worker_create(inside, NULL, NULL, NULL);
    worker_start(in);
    worker_await(in, -1);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    printf("%s", inside_report);
    if (inside_report[0]) fails++;
    worker_unref(in);

    /* the live worker must be intact */
    snprintf(current, sizeof current, "live worker afterwards");
    if (!worker_is_running(live)) FAIL("live worker not running any more");
    go_on = 1;
    if (worker_await(live, 5000) != WORKER_OK) FAIL("await live");
    for (int i = 0; i < 50 && !live_events; i++) worker_app_process_events(2);
    if (live_events != 1) FAIL("live worker's FINISHED delivered %ld times", (long)live_events);
    /* stale ctx after its function returned */
    try_ctx(captured_ctx, "ctx of a finished worker");
    worker_unref(live);
    worker_unref(live2);
    worker_scope_close(sc, -1);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    snprintf(current, sizeof current, "end");
    if (ud_freed != ud_made) FAIL("%ld user_data handed over with bad handles, %ld destroyed", (long)ud_made, (long)ud_freed);
    if (destroyed_vals != handed) FAIL("%ld values handed over, %ld destroyed", (long)handed, (long)destroyed_vals);
    if (worker_live_count() != 0) FAIL("live count %d", worker_live_count());
    free(heapff); free(heap0); free(forged);
    printf("%s c2_garbage_handles: %ld failures\n", fails ? "FAIL" : "PASS", fails);
    return fails != 0;
}
