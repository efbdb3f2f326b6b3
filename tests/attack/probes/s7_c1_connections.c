/* promise 1 (connections): connect/disconnect inside a callback of the same worker, of another worker, from the worker's own thread and from a foreign pthread while values flood (BLOCK cap 4); 0/1/8/40 steady callbacks each see every value once in order; a disconnected callback is never called afterwards, user_data destroyed exactly once (running one: when it returns); disconnect twice = EINVAL; disconnect of another worker's id = EINVAL and removes nothing; ids unique per worker and never reused; connect in/after FINISHED = ESTATE with user_data destroyed at once; bad args destroy at once. run: ./build.sh probes/s7_c1_connections.c && QT_QPA_PLATFORM=offscreen probes/s7_c1_connections */
#include <qtworker.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC 0xC0FFEEu
#define N 3000
static const char *current = "start";
static void on_alarm(int s) {
    (void)s;
    char m[256];
    int n = snprintf(m, sizeof m, "FAIL: hang in '%s'\n", current);
    write(1, m, n);
    _exit(1);
}
static atomic_long fails, made, freed;
#define FAIL(...) do { printf("FAIL: [%s] ", current); printf(__VA_ARGS__); printf("\n"); fails++; } while (0)

typedef struct ud {
    atomic_uint magic;
    atomic_int destroyed, running;
    long calls, first, last, gaps, step;
    int gone;          /* disconnected: any later call is a failure */
    long after_gone;
    worker *src;
    const char *tag;
    atomic_long entered, snap;
} ud;
static ud *pool[4096];
static int npool;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static ud *ud_new(const char *tag, worker *src, long step) {
    ud *u = calloc(1, sizeof *u);
    u->magic = MAGIC; u->first = -1; u->last = -1; u->step = step; u->src = src; u->tag = tag;
    pthread_mutex_lock(&pool_mu);
    pool[npool++] = u;
    pthread_mutex_unlock(&pool_mu);
    made++;
    return u;
}
static void ud_destroy(void *p) {
    ud *u = p;
    if (atomic_fetch_add(&u->destroyed, 1)) printf("FAIL: [%s] user_data '%s' destroyed twice\n", current, u->tag), fails++;
    if (u->running) printf("FAIL: [%s] user_data '%s' destroyed while its callback runs\n", current, u->tag), fails++;
    u->magic = 0;
    freed++;
}
static void seen(ud *u, worker_event *ev, long v) {
    if (u->magic != MAGIC) FAIL("callback '%s' called with destroyed user_data (v=%ld)", u->tag, v);
    if (u->gone) { u->after_gone++; if (u->after_gone == 1) FAIL("'%s' called after its disconnect (v=%ld)", u->tag, v); }
    if (u->src && ev->source != u->src) FAIL("'%s': ev->source %p, want %p", u->tag, (void *)ev->source, (void *)u->src);
    if (u->last >= 0 && v != u->last + u->step) {
        if (!u->gaps) FAIL("'%s': got %ld after %ld (step %ld)", u->tag, v, u->last, u->step);
        u->gaps++;
    }
    if (u->first < 0) u->first = v;
    u->last = v;
    u->calls++;
}
static void seq_cb(worker_event *ev, void *p) {
    ud *u = p;
    u->entered++;
    u->running = 1;
    seen(u, ev, ev->value ? *(long *)ev->value : -1);
    u->running = 0;
}
static void text_cb(worker_event *ev, void *p) {
    ud *u = p;
    u->running = 1;
    seen(u, ev, atol(ev->message));
    u->running = 0;
}

static atomic_long alive;
static void val_free(void *p) { alive--; free(p); }
static long *val(long i) { long *p = malloc(sizeof *p); *p = i; alive++; return p; }

typedef struct job {
    worker *self;
    int connect_at;   /* from the worker thread: connect wt after this yield */
    ud *wt;
    long wt_id;
    long wt_next;     /* first value yielded after the connect returned */
    int custom_at;
    ud *wtc;
} job;
static void prod(worker_ctx *ctx, void *arg) {
    job *j = arg;
    for (long i = 0; i < N; i++) {
        if (worker_yield(ctx, val(i), val_free, NULL, NULL) == WORKER_ABORTED) return;
        if (i % 10 == 0) worker_emit(ctx, "a", val(i), val_free);
        if (i % 10 == 5) worker_emit(ctx, "b", val(i), val_free);
        if (i % 100 == 0) worker_warn(ctx, "%ld", i);
        if (j && i == j->connect_at && j->wt) {
            j->wt_id = worker_connect(j->self, WORKER_EV_YIELDED, seq_cb, j->wt, ud_destroy);
            j->wt_next = i + 1;
        }
        if (j && i == j->custom_at && j->wtc) {
            long id = worker_connect_custom(j->self, "a", seq_cb, j->wtc, ud_destroy);
            if (id <= 0) printf("FAIL: connect_custom from the worker thread: %ld\n", id), fails++;
        }
    }
}

/* ---- per-round state */
static worker *A, *B;
static ud *base[40];
static long base_id[40];
static int K;
static ud *S, *T, *Z, *D1, *E, *X, *F2, *bb, *many[40];
static long idS, idT, idZ, idX, idF2, idbb, many_id[40];
static long ids_a[1024]; static int nids_a;
static long ids_b[1024]; static int nids_b;
static int fin_a, fin_b, started_a, returned_a;
static int d1_conn_v = -1;

static void note_id(long *arr, int *n, long id) {
    if (id <= 0) { FAIL("connect returned %ld", id); return; }
    for (int i = 0; i < *n; i++) if (arr[i] == id) FAIL("connection id %ld handed out twice on one worker", id);
    arr[(*n)++] = id;
}
static long conn(worker *w, worker_event_type t, worker_callback cb, void *u) {
    long id = worker_connect(w, t, cb, u, (u && ((ud *)u)->magic == MAGIC) ? ud_destroy : NULL);
    note_id(w == A ? ids_a : ids_b, w == A ? &nids_a : &nids_b, id);
    return id;
}

static void self_cb(worker_event *ev, void *p) {
    ud *u = p;
    u->running = 1;
    long v = *(long *)ev->value;
    seen(u, ev, v);
    if (v == 300) {
        int rc = worker_disconnect(ev->source, idS);
        if (rc != WORKER_OK) FAIL("self disconnect: %s", worker_strerror(rc));
        if (u->destroyed) FAIL("running callback's user_data destroyed before it returned");
        u->gone = 1;
        rc = worker_disconnect(ev->source, idS);
        if (rc != WORKER_EINVAL) FAIL("second self disconnect: %d, want EINVAL", rc);
    }
    u->running = 0;
}

static void ctl(worker_event *ev, void *p) {
    (void)p;
    long v = *(long *)ev->value;
    if (v == 100) {
        D1 = ud_new("D1 connected inside a callback", A, 1);
        conn(A, WORKER_EV_YIELDED, seq_cb, D1);
        d1_conn_v = 100;
    }
    if (v == 200 && K > 0) {
        int rc = worker_disconnect(A, base_id[K - 1]);
        if (rc != WORKER_OK) FAIL("disconnect base[K-1]: %d", rc);
        base[K - 1]->gone = 1;
        if (base[K - 1]->destroyed != 1) FAIL("base[K-1] (not running) not destroyed when disconnect returned: %d", (int)base[K - 1]->destroyed);
    }
    if (v == 301 && S->destroyed != 1) FAIL("self-disconnected S not destroyed after its call returned: %d", (int)S->destroyed);
    if (v == 400) {
        int rc = worker_disconnect(A, idT);
        T->gone = 1;
        if (rc != WORKER_OK) FAIL("disconnect T: %d", rc);
        rc = worker_disconnect(A, idT);
        if (rc != WORKER_EINVAL) FAIL("second disconnect of T: %d, want EINVAL", rc);
        if (T->destroyed != 1) FAIL("T destroyed %d times", (int)T->destroyed);
    }
    if (v == 500) {
        int overlap = 0;
        for (int i = 0; i < nids_b; i++) overlap |= ids_b[i] == idZ;
        int rc = overlap ? WORKER_EINVAL : worker_disconnect(B, idZ);
        if (rc != WORKER_EINVAL) {
            if (overlap) printf("note: [%s] disconnect(B, id %ld of A) = %d: B has its own id %ld too (ids are per worker)\n", current, idZ, rc, idZ);
            else FAIL("disconnect(B, id of A's connection) = %d, want EINVAL", rc);
        }
        overlap = 0;
        for (int i = 0; i < nids_a; i++) overlap |= ids_a[i] == idbb;
        rc = overlap ? WORKER_EINVAL : worker_disconnect(A, idbb);
        if (rc != WORKER_EINVAL) {
            if (overlap) printf("note: [%s] disconnect(A, id %ld of B) = %d: A has its own id %ld too\n", current, idbb, rc, idbb);
            else FAIL("disconnect(A, id of B's connection) = %d, want EINVAL", rc);
        }
        rc = worker_disconnect(A, 0);
        if (rc != WORKER_EINVAL) FAIL("disconnect(A, 0) = %d", rc);
        rc = worker_disconnect(A, -5);
        if (rc != WORKER_EINVAL) FAIL("disconnect(A, -5) = %d", rc);
        rc = worker_disconnect(A, 1L << 40);
        if (rc != WORKER_EINVAL) FAIL("disconnect(A, 2^40) = %d", rc);
    }
    if (v == 600) {
        E = ud_new("E connected and disconnected in one callback", A, 1);
        long id = conn(A, WORKER_EV_YIELDED, seq_cb, E);
        int rc = worker_disconnect(A, id);
        E->gone = 1;
        if (rc != WORKER_OK) FAIL("disconnect E: %d", rc);
        if (E->destroyed != 1) FAIL("E not destroyed at disconnect");
    }
    if (v == 700)
        for (int i = 0; i < 40; i++) {
            many[i] = ud_new("many[i] connected at 700", A, 1);
            many_id[i] = conn(A, WORKER_EV_YIELDED, seq_cb, many[i]);
        }
    if (v == 800)
        for (int i = 39; i >= 20; i--) {
            int rc = worker_disconnect(A, many_id[i]);
            many[i]->gone = 1;
            if (rc != WORKER_OK) FAIL("disconnect many[%d]: %d", i, rc);
        }
    if (v == 900) {
        /* id reuse: connect/disconnect 100 times; every id must be new */
        for (int i = 0; i < 100; i++) {
            ud *u = ud_new("churn", A, 1);
            long id = conn(A, WORKER_EV_YIELDED, seq_cb, u);
            u->gone = 1;
            if (worker_disconnect(A, id) != WORKER_OK) FAIL("churn disconnect");
        }
        /* old ids stay dead */
        if (worker_disconnect(A, idT) != WORKER_EINVAL) FAIL("old id of T accepted after churn");
    }
}

/* on B: connect to A at B's 150, disconnect it at B's 250 */
static void xctl(worker_event *ev, void *p) {
    (void)p;
    long v = *(long *)ev->value;
    if (v == 150) {
        X = ud_new("X connected on A from B's callback", A, 1);
        idX = conn(A, WORKER_EV_YIELDED, seq_cb, X);
    }
    if (v == 250 && X) {
        int rc = worker_disconnect(A, idX);
        X->gone = 1;
        if (rc == WORKER_ESTATE) { printf("note: A finished before B's 250\n"); X->gone = 0; }
        else if (rc != WORKER_OK) FAIL("disconnect X from B's callback: %d", rc);
        else if (X->destroyed != 1) FAIL("X not destroyed at disconnect");
    }
}

static void fin_cb(worker_event *ev, void *p) {
    (void)p;
    if (ev->source == A) {
        fin_a++;
        /* connect inside FINISHED: ESTATE, destroyed at once */
        ud *u = ud_new("connected inside FINISHED", A, 1);
        long id = worker_connect(A, WORKER_EV_YIELDED, seq_cb, u, ud_destroy);
        if (id != WORKER_ESTATE) FAIL("connect inside FINISHED = %ld, want ESTATE", id);
        if (u->destroyed != 1) FAIL("user_data of a refused connect (in FINISHED) destroyed %d times at return", (int)u->destroyed);
        /* disconnect F2, connected after this one on FINISHED */
        int rc = worker_disconnect(A, idF2);
        if (rc != WORKER_OK) FAIL("disconnect F2 inside FINISHED: %d", rc);
        F2->gone = 1;
    } else fin_b++;
}
static void fin2_cb(worker_event *ev, void *p) { seen(p, ev, 0); }
static void cnt_cb(worker_event *ev, void *p) { (*(int *)p)++; (void)ev; }

static atomic_int stop_foreign;
static ud *fu[200];
static int nfu;
static void *foreign(void *a) {
    (void)a;
    unsigned seed = 7;
    while (!stop_foreign && nfu < 200) {
        ud *u = ud_new("foreign thread connection", A, 1);
        fu[nfu++] = u;
        long id = worker_connect(A, WORKER_EV_YIELDED, seq_cb, u, ud_destroy);
        if (id == WORKER_ESTATE) { u->gone = 1; break; }
        if (id <= 0) { FAIL("foreign connect %ld", id); break; }
        usleep(rand_r(&seed) % 2000);
        int rc = worker_disconnect(A, id);
        if (rc == WORKER_EINVAL) { /* worker freed? not yet: it is referenced */ FAIL("foreign disconnect EINVAL"); }
        if (rc == WORKER_OK) u->snap = u->entered;
        else if (rc == WORKER_ESTATE) { printf("note: foreign disconnect after FINISHED: ESTATE\n"); }
        for (int t = 0; rc == WORKER_OK && !u->destroyed; t++) {
            if (t == 2000) { FAIL("foreign: user_data not destroyed 2 s after disconnect"); break; }
            usleep(1000);
        }
    }
    return NULL;
}

static void bad_args(worker *w) {
    ud *u;
    long id;
    struct { const char *what; worker *w; int type; worker_callback cb; } cs[] = {
        {"type 99", w, 99, seq_cb}, {"type -1", w, -1, seq_cb}, {"NULL cb", w, WORKER_EV_YIELDED, NULL},
        {"NULL worker", NULL, WORKER_EV_YIELDED, seq_cb}, {"type OUTPUT+1", w, WORKER_EV_OUTPUT + 1, seq_cb},
    };
    for (unsigned i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        u = ud_new("bad connect", NULL, 1);
        id = worker_connect(cs[i].w, (worker_event_type)cs[i].type, cs[i].cb, u, ud_destroy);
        if (id != WORKER_EINVAL) FAIL("connect(%s) = %ld, want EINVAL", cs[i].what, id);
        if (u->destroyed != 1) FAIL("connect(%s): user_data destroyed %d times at return, want 1", cs[i].what, (int)u->destroyed);
        if (id > 0) worker_disconnect(cs[i].w, id);
    }
    u = ud_new("bad connect_custom", NULL, 1);
    id = worker_connect_custom(w, NULL, seq_cb, u, ud_destroy);
    if (id > 0) { printf("note: connect_custom(NULL name) accepted (%ld)\n", id); worker_disconnect(w, id); }
    else if (u->destroyed != 1) FAIL("connect_custom(NULL name) = %ld: user_data destroyed %d times", id, (int)u->destroyed);
    u = ud_new("bad connect_custom", NULL, 1);
    id = worker_connect_custom(NULL, "a", seq_cb, u, ud_destroy);
    if (id != WORKER_EINVAL || u->destroyed != 1) FAIL("connect_custom(NULL worker) = %ld, destroyed %d", id, (int)u->destroyed);
    u = ud_new("bad connect_custom", NULL, 1);
    id = worker_connect_custom(w, "a", NULL, u, ud_destroy);
    if (id != WORKER_EINVAL || u->destroyed != 1) FAIL("connect_custom(NULL cb) = %ld, destroyed %d", id, (int)u->destroyed);
}

static void round_k(int k) {
    static char name[64];
    snprintf(name, sizeof name, "K=%d", k);
    current = name;
    K = k;
    nids_a = nids_b = 0;
    fin_a = fin_b = started_a = returned_a = 0;
    X = NULL;
    nfu = 0; stop_foreign = 0;
    worker_options o;
    worker_options_init(&o);
    o.capacity = 4;
    o.name = "A";
    job ja = {0}, jb = {0};
    A = worker_create(prod, &ja, NULL, &o);
    o.name = "B";
    B = worker_create(prod, &jb, NULL, &o);
    ja.self = A; jb.self = B;
    ja.connect_at = 1234; ja.wt = ud_new("connected from A's own thread", A, 1);
    jb.connect_at = -1;   jb.custom_at = 1500; jb.wtc = ud_new("custom 'a' connected from B's thread", B, 10);
    ja.custom_at = -1;
    bad_args(A);
    conn(A, WORKER_EV_YIELDED, ctl, NULL);
    for (int i = 0; i < k; i++) { base[i] = ud_new("base", A, 1); base_id[i] = conn(A, WORKER_EV_YIELDED, seq_cb, base[i]); }
    S = ud_new("S self-disconnect at 300", A, 1); idS = conn(A, WORKER_EV_YIELDED, self_cb, S);
    T = ud_new("T disconnected twice at 400", A, 1); idT = conn(A, WORKER_EV_YIELDED, seq_cb, T);
    Z = ud_new("Z target of cross-worker disconnect", A, 1); idZ = conn(A, WORKER_EV_YIELDED, seq_cb, Z);
    ud *ca = ud_new("custom a", A, 10), *cbb = ud_new("custom b", A, 10), *call = ud_new("all custom", A, 5), *wa = ud_new("warned", A, 100);
    ca->first = -1;
    conn(A, WORKER_EV_CUSTOM, seq_cb, call);
    note_id(ids_a, &nids_a, worker_connect_custom(A, "a", seq_cb, ca, ud_destroy));
    note_id(ids_a, &nids_a, worker_connect_custom(A, "b", seq_cb, cbb, ud_destroy));
    conn(A, WORKER_EV_WARNED, text_cb, wa);
    conn(A, WORKER_EV_FINISHED, fin_cb, NULL);
    F2 = ud_new("F2 disconnected inside FINISHED", A, 1); idF2 = conn(A, WORKER_EV_FINISHED, fin2_cb, F2);
    conn(A, WORKER_EV_STARTED, cnt_cb, &started_a);
    conn(A, WORKER_EV_RETURNED, cnt_cb, &returned_a);
    for (int i = 0; i < 300; i++) { /* push B's ids past A's */
        long id = worker_connect(B, WORKER_EV_YIELDED, seq_cb, NULL, NULL);
        note_id(ids_b, &nids_b, id);
        if (worker_disconnect(B, id) != WORKER_OK) FAIL("B pre-churn disconnect");
    }
    bb = ud_new("B base", B, 1); idbb = conn(B, WORKER_EV_YIELDED, seq_cb, bb);
    conn(B, WORKER_EV_YIELDED, xctl, NULL);
    conn(B, WORKER_EV_FINISHED, fin_cb, NULL);
    worker_start(A);
    worker_start(B);
    pthread_t ft;
    pthread_create(&ft, NULL, foreign, NULL);
    alarm(20);
    while (fin_a < 1 || fin_b < 1) worker_app_process_events(5);
    stop_foreign = 1;
    while (pthread_tryjoin_np(ft, NULL) != 0) worker_app_process_events(1);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    alarm(0);
    if (fin_a != 1 || fin_b != 1 || started_a != 1 || returned_a != 1) FAIL("FINISHED A %d B %d, STARTED %d RETURNED %d", fin_a, fin_b, started_a, returned_a);
    for (int i = 0; i < k; i++) {
        long want_last = (i == k - 1) ? 199 : N - 1;
        if (base[i]->first != 0 || base[i]->last != want_last || base[i]->calls != want_last + 1)
            FAIL("base[%d]: first %ld last %ld calls %ld, want 0..%ld", i, base[i]->first, base[i]->last, base[i]->calls, want_last);
    }
    if (S->last != 300 || S->calls != 301) FAIL("S: last %ld calls %ld", S->last, S->calls);
    if (T->last != 399 || T->calls != 400) FAIL("T: last %ld calls %ld", T->last, T->calls);
    if (Z->first != 0 || Z->last != N - 1 || Z->calls != N) FAIL("Z (cross-worker disconnect target): first %ld last %ld calls %ld", Z->first, Z->last, Z->calls);
    if (bb->first != 0 || bb->last != N - 1 || bb->calls != N) FAIL("B base: first %ld last %ld calls %ld", bb->first, bb->last, bb->calls);
    if (!D1 || D1->last != N - 1 || (D1->first != 100 && D1->first != 101)) FAIL("D1: first %ld last %ld", D1 ? D1->first : -9, D1 ? D1->last : -9);
    else printf("info: [%s] connection made inside the callback of value 100 first saw %ld\n", current, D1->first);
    if (E->calls) FAIL("E called %ld times", E->calls);
    for (int i = 0; i < 40; i++) {
        long wl = i < 20 ? N - 1 : 799;
        if (many[i]->first < 700 || many[i]->first > 701 || many[i]->last != wl) FAIL("many[%d]: %ld..%ld, want 700/701..%ld", i, many[i]->first, many[i]->last, wl);
    }
    if (X && (X->first < 0 || X->calls == 0)) printf("note: X never called\n");
    if (ja.wt->first < 0 || ja.wt->first > ja.wt_next) FAIL("connection made on A's thread after yield %d: first %ld (want %ld)", ja.connect_at, ja.wt->first, ja.wt_next);
    if (ja.wt->first < ja.wt_next - 1) printf("info: [%s] connection made on A's thread after yield %d first saw %ld (queued, undelivered values reach it)\n", current, ja.connect_at, ja.wt->first);
    if (ja.wt->last != N - 1) FAIL("connection made on A's thread: last %ld", ja.wt->last);
    if (jb.wtc->first < 0 || jb.wtc->first > 1500 + 10) FAIL("custom connect on B's thread: first %ld", jb.wtc->first);
    if (ca->first != 0 || ca->last != N - 10 || ca->calls != N / 10) FAIL("custom a: %ld..%ld (%ld)", ca->first, ca->last, ca->calls);
    if (cbb->first != 5 || cbb->last != N - 5 || cbb->calls != N / 10) FAIL("custom b: %ld..%ld (%ld)", cbb->first, cbb->last, cbb->calls);
    if (call->first != 0 || call->last != N - 5 || call->calls != N / 5) FAIL("all custom: %ld..%ld (%ld)", call->first, call->last, call->calls);
    if (wa->first != 0 || wa->calls != N / 100) FAIL("warned: %ld..%ld (%ld)", wa->first, wa->last, wa->calls);
    if (F2->calls) FAIL("F2 called after being disconnected inside FINISHED");
    for (int i = 0; i < nfu; i++) {
        if (fu[i]->gaps) FAIL("foreign connection %d gaps", i);
        if (fu[i]->snap && fu[i]->entered > fu[i]->snap) FAIL("foreign connection %d: %ld calls began after its disconnect returned", i, (long)(fu[i]->entered - fu[i]->snap));
    }
    /* after FINISHED */
    ud *u = ud_new("connect after FINISHED", A, 1);
    long id = worker_connect(A, WORKER_EV_YIELDED, seq_cb, u, ud_destroy);
    if (id != WORKER_ESTATE || u->destroyed != 1) FAIL("connect after FINISHED = %ld, destroyed %d", id, (int)u->destroyed);
    u = ud_new("connect_custom after FINISHED", A, 1);
    id = worker_connect_custom(A, "a", seq_cb, u, ud_destroy);
    if (id != WORKER_ESTATE || u->destroyed != 1) FAIL("connect_custom after FINISHED = %ld, destroyed %d", id, (int)u->destroyed);
    /* disconnect after FINISHED of a live connection: allowed? (header: EINVAL unknown id only) */
    int rc = worker_disconnect(A, idZ);
    if (rc != WORKER_OK) printf("note: disconnect of a live connection after FINISHED = %s\n", worker_strerror(rc));
    else if (Z->destroyed != 1) FAIL("Z disconnected after FINISHED: destroyed %d", (int)Z->destroyed);
    long before = freed;
    worker_unref(A);
    worker_unref(B);
    for (int i = 0; i < 20; i++) worker_app_process_events(1);
    printf("[%s] unref freed %ld user_data; ids A %d (max %ld) B %d\n", current, freed - before, nids_a, ids_a[nids_a - 1], nids_b);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    worker_app_init(&argc, argv);
    int ks[] = {0, 1, 8, 40};
    for (int i = 0; i < 4; i++) round_k(ks[i]);
    for (int i = 0; i < 30; i++) worker_app_process_events(1);
    for (int i = 0; i < npool; i++) if (pool[i]->destroyed != 1) { FAIL("user_data '%s' destroyed %d times", pool[i]->tag, (int)pool[i]->destroyed); }
    if (made != freed) FAIL("%ld user_data made, %ld destroyed", (long)made, (long)freed);
    if (alive) FAIL("%ld payloads alive", (long)alive);
    for (int i = 0; i < npool; i++) free(pool[i]);
    printf("%s c1_connections: %ld failures, %ld user_data\n", fails ? "FAIL" : "PASS", (long)fails, (long)made);
    return fails != 0;
}
