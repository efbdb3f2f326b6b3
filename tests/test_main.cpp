// One QApplication (offscreen) for every suite, created through the C API.
#include "harness.h"

#include <cstdlib>

int main(int argc, char **argv) {
    setenv("QT_QPA_PLATFORM", "offscreen", 0);
    testing::InitGoogleTest(&argc, argv);
    static int app_argc = 1;
    static char name[] = "qtworker-tests";
    static char *app_argv[] = {name, nullptr};
    if (worker_app_init(&app_argc, app_argv) != WORKER_OK) return 2;
    return RUN_ALL_TESTS();
}
