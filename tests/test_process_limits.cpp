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
        on_ = true;
        top_up();
    }
    // Takes what was freed since: a descriptor the library closes (a frame's,
    // once mapped) would otherwise let the stream go on through that hole.
    void top_up() {
        if (!on_) return;
        for (int fd; (fd = dup(0)) >= 0;) taken_.push_back(fd);
    }
    void end() {
        if (!on_) return;  // never begun, or ended already
        on_ = false;
        for (int fd : taken_) ::close(fd);
        taken_.clear();
        setrlimit(RLIMIT_NOFILE, &saved_);
    }
    bool active() const { return !taken_.empty(); }
    ~DescriptorDrought() { end(); }

private:
    bool on_ = false;
    rlimit saved_{};
    std::vector<int> taken_;
};

}  // namespace

// A healthy helper streaming shared-memory frames (a descriptor each) while
// the host has none free: the frame the kernel could not hand over is lost,
// so the worker stops with ERRORED WORKER_ENOMEM naming the cause (it was
// WORKER_ESTATE "broke the protocol": an outside read, s9c). The drought
// lasts until FINISHED: a loaded machine may not read a frame within a
// fixed time (after it, the stream of a million frames would just go on).
namespace {
// What the test needs of the events, without keeping the frames (a recorder
// that copies each one grew by 128 KiB a frame while the stream ran).
struct Seen {
    int yielded = 0, errored_code = 0, outcomes = 0;
    bool finished = false;
    std::string message;
    DescriptorDrought *drought = nullptr;
};
void on_event(worker_event *ev, void *ud) {
    auto *s = static_cast<Seen *>(ud);
    switch (ev->type) {
    case WORKER_EV_YIELDED:
        if (++s->yielded == 2) s->drought->begin();
        break;
    case WORKER_EV_ERRORED:
        s->errored_code = ev->code;
        s->message = ev->message ? ev->message : "";
        s->outcomes++;
        break;
    case WORKER_EV_RETURNED:
    case WORKER_EV_ABORTED: s->outcomes++; break;
    case WORKER_EV_FINISHED: s->finished = true; break;
    default: break;
    }
}
}  // namespace

TEST(ProcessLimits, AFrameThisProcessHasNoDescriptorForEndsTheWorkerWithENOMEM) {
    auto arg = frames_arg(1000000, WORKER_BYTES_SHARED_MIN * 2);
    {
        Proc first(kMods, "pm_count");  // what the first process worker sets up once
        ASSERT_EQ(first.start(), WORKER_OK);
        ASSERT_TRUE(first.rec->wait_finished());
    }
    int fds_before = open_fds();
    {
        DescriptorDrought drought;
        Seen seen;
        seen.drought = &drought;
        worker *w = worker_create_process(kMods.c_str(), "pm_frames", arg.data(),
                                          arg.size() * sizeof(uint64_t), nullptr, nullptr);
        ASSERT_NE(w, nullptr);
        for (auto t : {WORKER_EV_YIELDED, WORKER_EV_ERRORED, WORKER_EV_RETURNED, WORKER_EV_ABORTED,
                       WORKER_EV_FINISHED})
            ASSERT_GT(worker_connect(w, t, on_event, &seen, nullptr), 0);
        ASSERT_EQ(worker_start(w), WORKER_OK);
        bool finished = pump_until([&] {
            drought.top_up();
            return seen.finished;
        }, 20000);
        bool in_drought = drought.active();
        drought.end();
        if (!finished) {
            worker_quit(w);
            pump_until([&] { return seen.finished; }, 20000);
        }
        worker_unref(w);
        ASSERT_TRUE(finished) << seen.yielded << " frames; drought " << in_drought;
        EXPECT_EQ(seen.outcomes, 1);
        EXPECT_EQ(seen.errored_code, WORKER_ENOMEM) << seen.message;
        EXPECT_NE(seen.message.find("file descriptors"), std::string::npos) << seen.message;
    }
    EXPECT_TRUE(pump_until([&] { return open_fds() <= fds_before; })) << "descriptors left open";
}
