// An asymmetric barrier for two Dekker-style checks whose one side runs per
// value and the other rarely: a yield vs the home thread going idle (the
// fast lane's wake-up, stream.cpp), a callback call vs a disconnect from
// another thread (connection.cpp). With membarrier(2) the rare side pays
// for both (one system call: every running thread of the process passes a
// full barrier) and the frequent side's is a compiler barrier; without it
// (an old kernel, valgrind) both sides fence.
#pragma once

#include <atomic>

namespace qtw {

extern const bool asymmetric_barrier;  // membarrier(2) registered at load

inline void light_fence() {  // the frequent side
    if (asymmetric_barrier)
        std::atomic_signal_fence(std::memory_order_seq_cst);
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}

void heavy_fence();  // the rare side

}  // namespace qtw
