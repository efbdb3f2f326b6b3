// Process workers in a process that runs out of file descriptors: what the
// library cannot receive is reported as that (ENOMEM), never blamed on the
// helper as a protocol break.
#include "process_helpers.h"

#include <sys/resource.h>

#include <chrono>
#include <vector>

namespace {

// Takes every free descriptor (under a soft limit lowered to what is open
// now plus a few), and gives them back.
class DescriptorDrought {
public:
    void begin() {
        getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit low = saved_;
        low.rlim_cur = (rlim_t)open_fds() + 16;
        if (low.rlim_cur < saved_.rlim_cur) setrlimit(RLIMIT_NOFILE, &low);
        for (int fd; (fd = dup(0)) >= 0;) taken_.push_back(fd);
    }
    void end() {
        for (int fd : taken_) ::close(fd);
        taken_.clear();
        setrlimit(RLIMIT_NOFILE, &saved_);
    }
    bool active() const { return !taken_.empty(); }

private:
    rlimit saved_{};
    std::vector<int> taken_;
};

}  // namespace

// A healthy helper streaming shared-memory frames (a descriptor each) while
// the host has none free for 300 ms: the frame the kernel could not hand
// over is lost, so the worker stops with ERRORED WORKER_ENOMEM naming the
// cause (it was WORKER_ESTATE "broke the protocol": an outside read, s9c).
TEST(ProcessLimits, AFrameThisProcessHasNoDescriptorForEndsTheWorkerWithENOMEM) {
    auto arg = frames_arg(1000000, WORKER_BYTES_SHARED_MIN * 2);
    {
        Proc first(kMods, "pm_count");  // what the first process worker sets up once
        ASSERT_EQ(first.start(), WORKER_OK);
        ASSERT_TRUE(first.rec->wait_finished());
    }
    int fds_before = open_fds();
    {
        Proc p(kMods, "pm_frames", arg.data(), arg.size() * sizeof(uint64_t));
        DescriptorDrought drought;
        int yielded = 0;
        p.rec->hook = [&](worker_event *ev) {
            if (ev->type == WORKER_EV_YIELDED && ++yielded == 2) drought.begin();
        };
        ASSERT_EQ(p.start(), WORKER_OK);
        ASSERT_TRUE(p.rec->wait_for(WORKER_EV_YIELDED, 2));
        ASSERT_TRUE(drought.active());
        pump_for(300);
        drought.end();
        ASSERT_TRUE(p.rec->wait_finished(15000));
        ASSERT_EQ(p.rec->outcome(), WORKER_EV_ERRORED);
        const Ev &e = p.rec->first(WORKER_EV_ERRORED);
        EXPECT_EQ(e.code, WORKER_ENOMEM) << e.message;
        EXPECT_NE(e.message.find("file descriptors"), std::string::npos) << e.message;
        p.close();
    }
    EXPECT_TRUE(pump_until([&] { return open_fds() <= fds_before; })) << "descriptors left open";
}
