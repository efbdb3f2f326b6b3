#include "process_stderr.h"

#include <unistd.h>

#include <cerrno>

namespace qtw {

bool StderrTail::pump(int fd) {
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return true;  // EAGAIN: later
        if (n == 0) return false;
        for (ssize_t done = 0; done < n;) {
            ssize_t m = write(2, chunk + done, (size_t)(n - done));
            if (m <= 0 && errno != EINTR) break;
            if (m > 0) done += m;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (partial_.size() < kMaxLine) partial_.push_back(chunk[i]);
                continue;
            }
            lines_.push_back(std::move(partial_));
            partial_.clear();
            while (lines_.size() > max_lines_) lines_.pop_front();
        }
    }
}

std::string StderrTail::text() const {
    std::deque<std::string> lines = lines_;
    if (!partial_.empty()) lines.push_back(partial_);
    while (lines.size() > max_lines_) lines.pop_front();
    std::string s;
    for (const std::string &l : lines) s += "\n" + l;
    return s.empty() ? s : "; last stderr lines:" + s;
}

}  // namespace qtw
