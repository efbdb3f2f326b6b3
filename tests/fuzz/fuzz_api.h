// An interpreter that reads bytes as a sequence of qtworker API calls and
// checks every status against the set capi/qtworker.h documents for it.
// Shared by the deterministic gtest (test_api_fuzz.cpp: bytes from a seeded
// generator) and the libFuzzer target (fuzz_target.cpp: bytes from libFuzzer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fz {

// Called (from any thread) for every broken promise: an undocumented status,
// a value not destroyed at once by a failing call, a double destroy, a bad
// event order, a leak, a worker never freed.
using Reporter = void (*)(const std::string &what);
void set_reporter(Reporter r);

// Runs the calls data encodes on the calling thread (the GUI thread, with a
// QApplication), then quits and frees every worker the program made and
// checks event orders, payload counts and the registry. Returns false if the
// cleanup hung (the workers are then leaked on purpose: callbacks may still
// reference the program's state).
bool run_program(const uint8_t *data, size_t size);

std::string hex(const uint8_t *data, size_t size);

// What the programs so far did (workers made, started, outcomes), for the log.
std::string summary();

}  // namespace fz
