/* probe: bad input everywhere */
#include <qtworker.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int freed;
static void cnt(void *p) { (void)p; freed++; }
static void fn(worker_ctx *ctx, void *arg) { (void)arg;
  printf("emit NULL name %d\n", worker_emit(ctx, NULL, (void*)1, cnt));
  printf("yield sent only %d\n", worker_yield(ctx, (void*)1, cnt, (void**)&arg, NULL));
  printf("progress neg %d\n", worker_progress(ctx, -5, -3, NULL));
  printf("fail NULL fmt %d\n", worker_fail(ctx, 3, NULL));
  printf("warn %%n? %d\n", worker_warn(ctx, NULL));
  printf("call_home NULL fn %d\n", worker_call_home(ctx, NULL, NULL, NULL, -1));
  printf("await self %d\n", worker_await(NULL, 0));
  printf("capture in fn %d\n", worker_capture_stdio(1));
}
static void cb(worker_event *ev, void *ud) { (void)ud;
  if (ev->type == WORKER_EV_STARTED) {
    printf("cb: yield from callback %d\n", worker_yield((worker_ctx*)ev->source, (void*)1, cnt, NULL, NULL));
    printf("cb: connect in callback %ld\n", worker_connect(ev->source, WORKER_EV_FINISHED, cb, NULL, NULL));
  }
}
int main(int argc, char **argv) {
  alarm(30);
  printf("start NULL %d, quit NULL %d, unref NULL ok\n", worker_start(NULL), worker_quit(NULL)); worker_unref(NULL);
  printf("scope_close NULL %d\n", worker_scope_close(NULL, 0));
  printf("send NULL %d freed %d\n", worker_send(NULL, (void*)1, cnt), freed);
  printf("process_events noapp %d\n", worker_app_process_events(0));
  worker_app_init(&argc, argv);
  worker_options o; worker_options_init(&o);
  o.capacity = WORKER_MAX_CAPACITY + 1;
  worker *w = worker_create(fn, (void*)1, cnt, &o);
  printf("cap too big: %p err %d freed %d\n", (void*)w, worker_last_error(), freed);
  o.capacity = WORKER_MAX_CAPACITY; o.policy = (worker_policy)77;
  w = worker_create(fn, (void*)1, cnt, &o); printf("bad policy %p %d freed %d\n", (void*)w, worker_last_error(), freed);
  o.policy = WORKER_LATEST; o.progress_total = LLONG_MAX; o.timeout_ms = LLONG_MAX; o.group = "";
  w = worker_create(fn, (void*)1, cnt, &o); printf("empty group %p %d freed %d\n", (void*)w, worker_last_error(), freed);
  o.group = NULL;
  w = worker_create(fn, (void*)1, cnt, &o); printf("huge timeout ok %p %d\n", (void*)w, worker_last_error());
  printf("connect bad type %ld\n", worker_connect(w, (worker_event_type)99, cb, (void*)1, cnt));
  printf("connect neg type %ld freed %d\n", worker_connect(w, (worker_event_type)-1, cb, (void*)1, cnt), freed);
  printf("connect_custom NULL name %ld\n", worker_connect_custom(w, NULL, cb, (void*)1, cnt));
  printf("disconnect 0 %d -1 %d LONG_MAX %d\n", worker_disconnect(w, 0), worker_disconnect(w, -1), worker_disconnect(w, LONG_MAX));
  worker_connect(w, WORKER_EV_STARTED, cb, NULL, NULL);
  printf("list -1 %d list NULL 5 %d list NULL 0 %d\n", worker_list(NULL, -1), worker_list(NULL, 5), worker_list(NULL, 0));
  printf("process_events -1 %d\n", worker_app_process_events(-1));
  printf("process_events INT_MAX... skipped\n");
  printf("start %d again %d\n", worker_start(w), worker_start(w));
  printf("await INT_MAX %d\n", worker_await(w, INT_MAX));
  for (int i = 0; i < 20; i++) worker_app_process_events(2);
  printf("await after %d\n", worker_await(w, 0));
  worker_set_exit_timeout(INT_MAX);
  worker_unref(w);
  printf("unref twice (stale handle): quit %d\n", worker_quit(w));
  for (int i = 0; i < 20; i++) worker_app_process_events(2);
  printf("freed total %d\n", freed);
  worker_event fake = {0};
  (void)fake;
  return 0;
}
