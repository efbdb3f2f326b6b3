/* A program outside the source tree, built against an installed qtworker:
   runs a generator worker and checks what reaches the GUI thread. */
#include <qtworker.h>
#include <stdio.h>

static int sum, finished;

static void gen(worker_ctx *ctx, void *arg) {
    (void)arg;
    static int values[] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        if (worker_yield(ctx, &values[i], NULL, NULL, NULL) != WORKER_OK) return;
}
static void on_yielded(worker_event *ev, void *ud) { (void)ud; sum += *(int *)ev->value; }
static void on_finished(worker_event *ev, void *ud) { (void)ev; (void)ud; finished = 1; }

int main(int argc, char **argv) {
    if (worker_version() != QTWORKER_VERSION_HEX) {
        fprintf(stderr, "header %s, library %s\n", QTWORKER_VERSION_STRING, worker_version_string());
        return 1;
    }
    worker_app_init(&argc, argv);
    worker *w = worker_create(gen, NULL, NULL, NULL);
    worker_connect(w, WORKER_EV_YIELDED, on_yielded, NULL, NULL);
    worker_connect(w, WORKER_EV_FINISHED, on_finished, NULL, NULL);
    worker_start(w);
    for (int i = 0; i < 1000 && !finished; i++) worker_app_process_events(10);
    worker_unref(w);
    printf("consumer: sum %d, finished %d\n", sum, finished);
    return sum == 10 && finished ? 0 : 1;
}
