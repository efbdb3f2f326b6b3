/* probe: worker_disconnect "it is not called again": while connection X's callback runs on the GUI for an event, another thread disconnects Y (connected after X, to the same event type; not running) and the disconnect returns; when X returns, is Y still called for that event? Tried for a plain worker_yield (fast path), worker_yield_sized, worker_warn, worker_emit; run: ./build.sh probes/14_disconnect_from_thread_mid_event.c && QT_QPA_PLATFORM=offscreen probes/14_disconnect_from_thread_mid_event */
#include <qtworker.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int x_calls;
static atomic_int please, disconnected, y_after, y_destroyed, y_calls;
static atomic_long alive;
static worker *w;
static long id_y;
static int kind;
static void val_free(void *p) { alive--; free(p); }

static void x_cb(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    if (++x_calls != 3) return;
    please = 1;
    for (int t = 0; !disconnected && t < 3000; t++) usleep(1000);
    if (!disconnected) printf("note: worker_disconnect from the other thread did not return within 3 s\n");
}
static void y_cb(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    y_calls++;
    if (disconnected) y_after++;
}
static void y_free(void *p) { (void)p; y_destroyed++; }

static void *disconnector(void *a) {
    (void)a;
    while (!please) usleep(100);
    int rc = worker_disconnect(w, id_y);
    if (rc != WORKER_OK) printf("disconnect: %s\n", worker_strerror(rc));
    disconnected = 1;
    return NULL;
}

static void producer(worker_ctx *ctx, void *arg) {
    (void)arg;
    for (int i = 0; i < 6; i++) {
        long *v = malloc(sizeof *v); *v = i; alive++;
        switch (kind) {
        case 0: worker_yield(ctx, v, val_free, NULL, NULL); break;
        case 1: worker_yield_sized(ctx, v, 8, val_free, NULL, NULL); break;
        case 2: val_free(v); worker_warn(ctx, "%d", i); break;
        case 3: worker_emit(ctx, "e", v, val_free); break;
        }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alarm(60);
    worker_app_init(&argc, argv);
    static const char *names[] = {"worker_yield", "worker_yield_sized", "worker_warn", "worker_emit"};
    static const worker_event_type types[] = {WORKER_EV_YIELDED, WORKER_EV_YIELDED, WORKER_EV_WARNED, WORKER_EV_CUSTOM};
    int broken = 0;
    for (kind = 0; kind < 4; kind++) {
        x_calls = 0;
        please = disconnected = y_after = y_destroyed = y_calls = 0;
        worker_options o;
        worker_options_init(&o);
        o.capacity_bytes = kind == 1 ? 1000 : 0;
        w = worker_create(producer, NULL, NULL, &o);
        worker_connect(w, types[kind], x_cb, NULL, NULL);
        id_y = worker_connect(w, types[kind], y_cb, NULL, y_free);
        pthread_t t;
        pthread_create(&t, NULL, disconnector, NULL);
        worker_start(w);
        worker_await(w, -1);  /* everything queued (QUEUE-like not needed: 6 < capacity) */
        while (!disconnected || worker_is_running(w)) worker_app_process_events(5);
        for (int i = 0; i < 20; i++) worker_app_process_events(1);
        pthread_join(t, NULL);
        int bad = y_after != 0 || y_destroyed != 1;
        broken += bad;
        printf("%s %s: Y called %d times after its disconnect returned (%d calls in all, want 2), user_data destroyed %d times\n",
               bad ? "FAIL" : "held", names[kind], (int)y_after, (int)y_calls, (int)y_destroyed);
        worker_unref(w);
    }
    for (int i = 0; i < 10; i++) worker_app_process_events(1);
    printf("%s\n", broken ? "FAIL" : "PASS");
    return broken != 0;
}
