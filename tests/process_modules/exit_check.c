/* The application exits while a process worker that never checks for quit
   still runs (its grace period outlasts the exit hook's bounded wait): the
   helper process must still be killed and reaped, not left behind.
   exit_check MODULE_DIR           runs the scenario in a child and checks
   exit_check MODULE_DIR --child   the scenario: prints the helper's pid */
#define _POSIX_C_SOURCE 200809L
#include <qtworker.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void set_flag(worker_event *ev, void *flag) {
    (void)ev;
    *(int *)flag = 1;
}

static int scenario(int argc, char **argv) {
    char path[4096];
    snprintf(path, sizeof path, "%s/stuck_plugin.so", argv[1]);
    worker_app_init(&argc, argv);
    worker *w = worker_create_process(path, "stubborn_plugin_run", NULL, 0, NULL, NULL);
    int running = 0;  /* its first yield: it is in its endless loop now */
    worker_connect(w, WORKER_EV_YIELDED, set_flag, &running, NULL);
    worker_start(w);
    for (int i = 0; i < 1000 && !running; i++) worker_app_process_events(10);
    printf("%ld\n", worker_process_id(w));
    fflush(stdout);
    worker_app_quit(0);
    return worker_app_exec();  /* aboutToQuit: quit, wait 1000 ms < the 2000 ms grace */
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (argc > 2 && strcmp(argv[2], "--child") == 0) return scenario(argc, argv);
    int out[2];
    if (pipe(out) != 0) return 2;
    pid_t child = fork();  /* single-threaded here: fork is fine */
    if (child == 0) {
        dup2(out[1], 1);
        execl("/proc/self/exe", argv[0], argv[1], "--child", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[64] = {0};
    ssize_t n = read(out[0], line, sizeof line - 1);
    int status;
    waitpid(child, &status, 0);
    long helper = n > 0 ? atol(line) : 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || helper <= 0) {
        fprintf(stderr, "FAIL: scenario status %d, helper pid %ld\n", status, helper);
        return 1;
    }
    /* Gone, not a zombie waiting for an adopter that may never reap it. */
    struct timespec t = {0, 100 * 1000000L};
    nanosleep(&t, NULL);
    if (kill((pid_t)helper, 0) == 0 || errno != ESRCH) {
        fprintf(stderr, "FAIL: helper %ld still exists after the application exited\n", helper);
        return 1;
    }
    printf("ok: helper %ld killed and reaped at exit\n", helper);
    return 0;
}
