// libFuzzer entry point: the interpreter of test_api_fuzz (fuzz_api.cpp) fed
// with libFuzzer's bytes. A broken promise prints what and aborts, so
// libFuzzer saves the input; replay it with
//   ./fuzz_api <crash-file>           (this target), or
//   QTW_FUZZ_INPUT=<crash-file> ./test_api_fuzz   (any compiler).
#include "fuzz_api.h"
#include "qtworker.h"

#include <cstdlib>

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    setenv("QT_QPA_PLATFORM", "offscreen", 0);
    static int argc = 1;
    static char name[] = "fuzz_api";
    static char *argv[] = {name, nullptr};
    return worker_app_init(&argc, argv) == WORKER_OK ? 0 : 1;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz::run_program(data, size);
    return 0;
}
