// qtworker through its public C API only.
#include "impls.h"

#include <qtworker.h>

#include <cstdio>
#include <cstdlib>

namespace bench {
namespace {

class QtwProducer final : public Producer {
public:
    explicit QtwProducer(worker_ctx *ctx) : ctx_(ctx) {}
    bool put(void *v, destroy_fn d) override {
        return worker_yield(ctx_, v, d, nullptr, nullptr) != WORKER_ABORTED;
    }
    bool put_sized(void *v, size_t size, destroy_fn d) override {
        return worker_yield_sized(ctx_, v, size, d, nullptr, nullptr) != WORKER_ABORTED;
    }
    bool ask(const std::function<void()> &fn) override {
        auto run = [](void *f) -> void * {
            (*static_cast<const std::function<void()> *>(f))();
            return nullptr;
        };
        return worker_call_home(ctx_, run, const_cast<std::function<void()> *>(&fn), nullptr, -1) ==
               WORKER_OK;
    }

private:
    worker_ctx *ctx_;
};

void run_body(worker_ctx *ctx, void *arg) {
    QtwProducer p(ctx);
    (*static_cast<Body *>(arg))(p);
}

void delete_body(void *arg) { delete static_cast<Body *>(arg); }

Hooks &hooks(void *ud) { return *static_cast<Hooks *>(ud); }
void on_yielded(worker_event *ev, void *ud) { hooks(ud).value(ev->value); }
void on_started(worker_event *, void *ud) { hooks(ud).started(); }
void on_paused(worker_event *, void *ud) { hooks(ud).paused(); }
void on_finished(worker_event *, void *ud) { hooks(ud).finished(); }

class QtwJob final : public Job {
public:
    explicit QtwJob(worker *w) : w_(w) {}
    ~QtwJob() override { worker_unref(w_); }
    void pause() override { worker_pause(w_); }
    void resume() override { worker_resume(w_); }
    void quit() override { worker_quit(w_); }

private:
    worker *w_;
};

class QtwImpl final : public Impl {
public:
    explicit QtwImpl(worker_policy policy, size_t capacity_bytes = 0)
        : policy_(policy), capacity_bytes_(capacity_bytes) {}
    std::unique_ptr<Job> start(Body body, Hooks *h) override {
        worker_options o;
        worker_options_init(&o);
        o.policy = policy_;
        o.capacity_bytes = capacity_bytes_;
        worker *w = worker_create(run_body, new Body(std::move(body)), delete_body, &o);
        if (!w) {
            std::fprintf(stderr, "worker_create: %s\n", worker_strerror(worker_last_error()));
            std::exit(2);
        }
        worker_connect(w, WORKER_EV_YIELDED, on_yielded, h, nullptr);
        worker_connect(w, WORKER_EV_STARTED, on_started, h, nullptr);
        worker_connect(w, WORKER_EV_PAUSED, on_paused, h, nullptr);
        worker_connect(w, WORKER_EV_FINISHED, on_finished, h, nullptr);
        int rc = worker_start(w);
        if (rc != WORKER_OK) {
            std::fprintf(stderr, "worker_start: %s\n", worker_strerror(rc));
            std::exit(2);
        }
        return std::make_unique<QtwJob>(w);
    }

private:
    worker_policy policy_;
    size_t capacity_bytes_;
};

}  // namespace

std::unique_ptr<Impl> make_qtworker_impl(const std::string &name) {
    if (name == "qtworker-block") return std::make_unique<QtwImpl>(WORKER_BLOCK);
    if (name == "qtworker-queue") return std::make_unique<QtwImpl>(WORKER_QUEUE);
    if (name == "qtworker-latest") return std::make_unique<QtwImpl>(WORKER_LATEST);
    if (name == "qtworker-budget64") return std::make_unique<QtwImpl>(WORKER_BLOCK, size_t(64) << 20);
    return nullptr;
}

}  // namespace bench
