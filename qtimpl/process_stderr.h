// A process worker's stderr, parent side: passed through to ours as it
// arrives, its last lines kept for the report of a crash or failure.
#pragma once

#include <cstddef>
#include <deque>
#include <string>

namespace qtw {

class StderrTail {
public:
    explicit StderrTail(int max_lines) : max_lines_(max_lines < 0 ? 0 : size_t(max_lines)) {}
    // Reads what fd (non-blocking) has now; false once it reached its end.
    bool pump(int fd);
    // "; last stderr lines:\n..." (the partial last line included), or "".
    std::string text() const;

private:
    static constexpr size_t kMaxLine = 1000;  // a quoted line is cut here
    size_t max_lines_;
    std::string partial_;
    std::deque<std::string> lines_;
};

}  // namespace qtw
