// A growable FIFO ring: no allocation in steady state (std::deque allocates
// and frees a chunk every few entries, which the yield hot path cannot afford).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace qtw {

template <typename T>
class Ring {
public:
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    T &front() { return buf_[head_]; }
    T &at(size_t i) { return buf_[(head_ + i) & (buf_.size() - 1)]; }

    void push_back(T &&v) {
        if (size_ == buf_.size()) grow();
        at(size_) = std::move(v);
        size_++;
    }

    T pop_front() {
        T v = std::move(buf_[head_]);
        head_ = (head_ + 1) & (buf_.size() - 1);
        size_--;
        return v;
    }

    // Removes entry i (0 = front), keeping the order of the others.
    T take(size_t i) {
        T v = std::move(at(i));
        for (size_t k = i; k + 1 < size_; k++) at(k) = std::move(at(k + 1));
        size_--;
        return v;
    }

    void swap(Ring &o) noexcept {
        buf_.swap(o.buf_);
        std::swap(head_, o.head_);
        std::swap(size_, o.size_);
    }

    template <typename F>
    void for_each(F &&f) {
        for (size_t i = 0; i < size_; i++) f(at(i));
    }

private:
    void grow() {
        std::vector<T> bigger(buf_.empty() ? 16 : buf_.size() * 2);
        for (size_t i = 0; i < size_; i++) bigger[i] = std::move(at(i));
        buf_.swap(bigger);
        head_ = 0;
    }

    std::vector<T> buf_;
    size_t head_ = 0, size_ = 0;
};

}  // namespace qtw
