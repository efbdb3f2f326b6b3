/* A plain-C host: a generator worker yields squares, the GUI thread prints
   them, the app quits when the worker has finished. No Qt code here. */
#include <qtworker.h>
#include <stdio.h>
#include <stdlib.h>

static void squares(worker_ctx *ctx, void *arg) {
    int n = *(int *)arg;
    for (int i = 1; i <= n; i++) {
        int *v = malloc(sizeof *v);
        *v = i * i;
        if (worker_yield(ctx, v, free, NULL, NULL) == WORKER_ABORTED) return;
    }
    worker_return(ctx, "done", NULL);
}

static void on_yielded(worker_event *ev, void *ud) {
    (void)ud;
    printf("yielded %d\n", *(int *)ev->value);
}

static void on_returned(worker_event *ev, void *ud) {
    (void)ud;
    printf("returned %s\n", (const char *)ev->value);
}

static void on_finished(worker_event *ev, void *ud) {
    (void)ev; (void)ud;
    worker_app_quit(0);
}

int main(int argc, char **argv) {
    static int n = 10;
    worker_app_init(&argc, argv);
    worker *w = worker_create(squares, &n, NULL, NULL);
    worker_connect(w, WORKER_EV_YIELDED, on_yielded, NULL, NULL);
    worker_connect(w, WORKER_EV_RETURNED, on_returned, NULL, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, NULL, NULL);
    worker_start(w);
    int rc = worker_app_exec();
    worker_unref(w);
    return rc;
}
