/* attack (minimal, from e5_output): "Longest OUTPUT line; a longer one arrives split into pieces this long" + worker_stdout "each complete line becomes an OUTPUT event": a line of exactly WORKER_MAX_LINE (16384) chars (not longer than the longest) should arrive as ONE event of 16384 chars; also 2*WORKER_MAX_LINE (two pieces expected) and 16383/16385 for contrast; via worker_stdout, worker_stderr, and captured printf. Prints the OUTPUT events seen per case. Run: tests/attack/build.sh 24_output_line_of_exactly_max_length.c build-asan && QT_QPA_PLATFORM=offscreen tests/attack/24_output_line_of_exactly_max_length-build-asan */
#include <qtworker.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int len, mode; /* mode 0 worker_stdout, 1 worker_stderr, 2 captured printf */
static void fn(worker_ctx *ctx, void *arg) {
    (void)arg;
    char *s = malloc(len + 2); memset(s, 'x', len); s[len] = '\n'; s[len + 1] = 0;
    if (mode == 2) { fputs(s, stdout); fflush(stdout); }
    else fputs(s, mode ? worker_stderr(ctx) : worker_stdout(ctx));
    free(s);
    fputs("next\n", mode == 1 ? worker_stderr(ctx) : worker_stdout(ctx));
}
static int n_ev, done; static size_t lens[16];
static void on_out(worker_event *ev, void *ud) { (void)ud; if (n_ev < 16) lens[n_ev] = strlen(ev->message); n_ev++; }
static void on_fin(worker_event *ev, void *ud) { (void)ev; (void)ud; done = 1; }
int main(int argc, char **argv) {
    worker_app_init(&argc, argv);
    int fails = 0;
    int lens_try[] = {WORKER_MAX_LINE - 1, WORKER_MAX_LINE, WORKER_MAX_LINE + 1, 2 * WORKER_MAX_LINE};
    for (mode = 0; mode < 3; mode++) {
        if (mode == 2 && worker_capture_stdio(WORKER_CAPTURE_STDOUT) != 0) { printf("capture failed\n"); break; }
        for (int k = 0; k < 4; k++) {
            len = lens_try[k]; n_ev = 0; done = 0;
            worker *w = worker_create(fn, NULL, NULL, NULL);
            worker_connect(w, WORKER_EV_OUTPUT, on_out, NULL, NULL);
            worker_connect(w, WORKER_EV_FINISHED, on_fin, NULL, NULL);
            worker_start(w);
            for (int i = 0; i < 2000 && !done; i++) worker_app_process_events(5);
            worker_unref(w);
            int expect = (len + WORKER_MAX_LINE - 1) / WORKER_MAX_LINE + 1; /* pieces + "next" */
            char line[300]; int o = snprintf(line, sizeof line, "%s line of %d chars: %d OUTPUT events (expected %d):", mode == 0 ? "worker_stdout" : mode == 1 ? "worker_stderr" : "captured printf", len, n_ev, expect);
            for (int i = 0; i < n_ev && i < 16; i++) o += snprintf(line + o, sizeof line - o, " %zu", lens[i]);
            if (n_ev != expect) { fails++; o += snprintf(line + o, sizeof line - o, "   <-- BROKEN"); }
            if (mode == 2) fprintf(stderr, "%s\n", line); else printf("%s\n", line);
        }
    }
    worker_capture_stdio(0);
    printf("RESULT: %s\n", fails ? "BROKEN" : "held");
    return fails != 0;
}
