// Deterministic API fuzzing: seeded random byte programs run through the
// interpreter in fuzz_api.cpp (random call sequences over the whole header:
// NULL, junk and stale handles, wrong-thread worker-side calls, out-of-range
// enums, huge capacities, calls after the end), each checked against the
// statuses the header documents, then cleaned up and checked for leaks.
//
//   QTW_FUZZ_SEED=<n>      the generator's seed (printed; default fixed)
//   QTW_FUZZ_PROGRAMS=<n>  how many programs (default: see meson.build)
//   QTW_FUZZ_INPUT=<file>  run one program from a file instead (e.g. a
//                          crash input saved by the libFuzzer target)
//   QTW_FUZZ_SAVE=<file>   each program is written there before it runs
//                          (default api_fuzz_last.bin): after a crash or a
//                          sanitizer abort, replay it with QTW_FUZZ_INPUT
#include "fuzz_api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <vector>

#ifndef QTW_FUZZ_DEFAULT_PROGRAMS
#define QTW_FUZZ_DEFAULT_PROGRAMS 2000
#endif

namespace {

std::mutex mu;
std::vector<std::string> problems;

void collect(const std::string &what) {  // from any thread
    std::lock_guard<std::mutex> lk(mu);
    problems.push_back(what);
}

long env_long(const char *name, long fallback) {
    const char *v = std::getenv(name);
    return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

// Runs one program; on a problem, reports it with the bytes to replay it.
bool run_checked(const std::vector<uint8_t> &prog, const std::string &label) {
    {
        std::lock_guard<std::mutex> lk(mu);
        problems.clear();
    }
    bool finished = fz::run_program(prog.data(), prog.size());
    std::lock_guard<std::mutex> lk(mu);
    if (problems.empty()) return finished;
    std::string all;
    for (size_t i = 0; i < problems.size() && i < 10; i++) all += "\n  " + problems[i];
    ADD_FAILURE() << label << ": " << problems.size() << " problem(s):" << all
                  << "\n  program (" << prog.size() << " bytes, hex): " << fz::hex(prog.data(), prog.size());
    return false;
}

}  // namespace

TEST(ApiFuzz, RandomCallSequences) {
    fz::set_reporter(collect);
    if (const char *file = std::getenv("QTW_FUZZ_INPUT")) {
        std::ifstream f(file, std::ios::binary);
        ASSERT_TRUE(f) << "cannot read " << file;
        std::vector<uint8_t> prog((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        run_checked(prog, file);
        return;
    }
    const unsigned long seed = (unsigned long)env_long("QTW_FUZZ_SEED", 20261125);
    const long programs = env_long("QTW_FUZZ_PROGRAMS", QTW_FUZZ_DEFAULT_PROGRAMS);
    const char *save = std::getenv("QTW_FUZZ_SAVE") ? std::getenv("QTW_FUZZ_SAVE") : "api_fuzz_last.bin";
    std::printf("QTW_FUZZ_SEED=%lu QTW_FUZZ_PROGRAMS=%ld (each program saved to %s first)\n", seed,
                programs, save);
    std::fflush(stdout);
    std::mt19937_64 rng(seed);
    auto t0 = std::chrono::steady_clock::now();
    int failed = 0;
    size_t bytes = 0;
    long i = 0;
    for (; i < programs && failed < 5; i++) {
        std::vector<uint8_t> prog(16 + rng() % 1024);
        for (auto &b : prog) b = (uint8_t)rng();
        bytes += prog.size();
        if (FILE *f = std::fopen(save, "wb")) {
            std::fwrite(prog.data(), 1, prog.size(), f);
            std::fclose(f);
        }
        if (!run_checked(prog, "QTW_FUZZ_SEED=" + std::to_string(seed) + " program " + std::to_string(i)))
            failed++;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    std::printf("api_fuzz: %ld programs, %zu bytes, %ld ms; %s\n", i, bytes, (long)ms.count(),
                fz::summary().c_str());
}
