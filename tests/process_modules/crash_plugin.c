/* Demo plugin that crashes on purpose: a "mean projection" that reports a few
   steps (progress, a 256x256 8-bit preview frame, a line on stderr each) and
   then dereferences NULL. Run as a process worker, the viewer gets the
   previews, then ERRORED ("killed by SIGSEGV ..." with these stderr lines)
   and FINISHED — and keeps running.

   symbol: crashy_plugin_run; arg: optional int32 number of steps (default 3). */
#include <qtworker.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void crashy_plugin_run(worker_ctx *ctx, void *arg) {
    const worker_bytes *a = arg;
    int32_t steps = 3;
    if (a->size >= sizeof steps) memcpy(&steps, a->data, sizeof steps);
    for (int32_t i = 0; i < steps; i++) {
        worker_bytes *preview = worker_bytes_new(256 * 256);
        if (preview) memset(preview->data, (int)(i * 40), preview->size);
        fprintf(stderr, "crashy: step %d of %d\n", (int)i + 1, (int)steps);
        worker_progress(ctx, i + 1, steps + 1, "projecting");
        if (worker_yield(ctx, preview, worker_bytes_free, NULL, NULL) == WORKER_ABORTED) return;
    }
    fprintf(stderr, "crashy: about to dereference NULL\n");
    *(volatile int *)(uintptr_t)0 = 42;
}
