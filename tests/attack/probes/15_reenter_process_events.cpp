/* probe: a C callback that re-enters the event loop (QCoreApplication::processEvents) while the same worker floods, under BLOCK 1/3/1000, QUEUE, LATEST 1/3, plain worker_yield and worker_yield_sized (budget): the outer event (type, value, payload) stays intact across the nested loop, no payload is destroyed while a callback still holds it or twice, every value reaches each connection once (LATEST: at most once), a second connection of the same event sees values in order; run: ./build.sh probes/15_reenter_process_events.cpp && QT_QPA_PLATFORM=offscreen probes/15_reenter_process_events */
#include <qtworker.h>

#include <QCoreApplication>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unistd.h>
#include <vector>

namespace {
constexpr unsigned LIVE = 0xA11CEu, DEAD = 0xDEADu;
struct Val { std::atomic<unsigned> magic; long seq; std::atomic<int> held; };
std::atomic<long> alive, fails;
std::mutex graveyard_mu;
std::vector<Val *> graveyard;  // destroyed values, freed at the end so a late use stays visible

void fail(const char *what, long a, long b) {
    if (fails++ < 12) std::printf("FAIL: %s (%ld, %ld)\n", what, a, b);
}
void val_free(void *p) {
    auto *v = static_cast<Val *>(p);
    if (v->magic.exchange(DEAD) != LIVE) fail("payload destroyed twice", v->seq, 0);
    if (v->held) fail("payload destroyed while a callback holds it", v->seq, v->held);
    alive--;
    std::lock_guard<std::mutex> g(graveyard_mu);
    graveyard.push_back(v);
}

constexpr long N = 4000;
struct Cfg { bool sized; };
void flood(worker_ctx *ctx, void *arg) {
    auto *c = static_cast<Cfg *>(arg);
    for (long i = 0; i < N; i++) {
        auto *v = new Val;
        v->magic = LIVE; v->seq = i; v->held = 0;
        alive++;
        int rc = c->sized ? worker_yield_sized(ctx, v, 10, val_free, nullptr, nullptr)
                          : worker_yield(ctx, v, val_free, nullptr, nullptr);
        if (rc == WORKER_ABORTED) return;
    }
}

struct Conn { long last = -1, calls = 0, nested_calls = 0, depth = 0, max_depth = 0; bool nests; bool latest; };
void on_yield(worker_event *ev, void *ud) {
    auto *c = static_cast<Conn *>(ud);
    auto *v = static_cast<Val *>(ev->value);
    if (!v || v->magic != LIVE) { fail("callback got a destroyed payload", v ? v->seq : -1, 0); return; }
    long s = v->seq;
    if (s <= c->last) fail("value out of order / twice on one connection", s, c->last);
    if (!c->latest && s != c->last + 1) fail("value skipped (lossless policy)", s, c->last);
    c->last = s;
    c->calls++;
    if (c->depth) c->nested_calls++;
    v->held++;
    if (c->nests && c->depth < 3 && s % 7 == 0) {
        c->depth++;
        if (c->depth > c->max_depth) c->max_depth = c->depth;
        QCoreApplication::processEvents(QEventLoop::AllEvents, 2);
        usleep(50);
        QCoreApplication::processEvents();
        c->depth--;
        if (ev->type != WORKER_EV_YIELDED || ev->value != v) fail("outer event changed by the nested loop", s, ev->type);
        if (v->magic != LIVE) fail("outer payload destroyed during the nested loop", s, 0);
        if (v->seq != s) fail("outer payload overwritten during the nested loop", s, v->seq);
    }
    v->held--;
}
std::atomic<int> finished;
void on_finished(worker_event *, void *) { finished = 1; }
}  // namespace

int main(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IONBF, 0);
    alarm(120);
    QCoreApplication app(argc, argv);
    struct Case { worker_policy pol; size_t cap; bool sized; bool second; };
    std::vector<Case> cases;
    for (bool second : {false, true})
        for (bool sized : {false, true}) {
            cases.push_back({WORKER_BLOCK, 1, sized, second});
            cases.push_back({WORKER_BLOCK, 3, sized, second});
            cases.push_back({WORKER_BLOCK, 1000, sized, second});
            if (!sized) cases.push_back({WORKER_QUEUE, 0, sized, second});
            cases.push_back({WORKER_LATEST, 1, sized, second});
            cases.push_back({WORKER_LATEST, 3, sized, second});
        }
    for (const Case &k : cases) {
        long before = fails;
        Cfg cfg{k.sized};
        worker_options o;
        worker_options_init(&o);
        o.policy = k.pol; o.capacity = k.cap; o.capacity_bytes = k.sized ? 35 : 0;
        worker *w = worker_create(flood, &cfg, nullptr, &o);
        Conn a, b;
        a.nests = true; a.latest = b.latest = k.pol == WORKER_LATEST;
        b.nests = false;
        finished = 0;
        worker_connect(w, WORKER_EV_YIELDED, on_yield, &a, nullptr);
        if (k.second) worker_connect(w, WORKER_EV_YIELDED, on_yield, &b, nullptr);
        worker_connect(w, WORKER_EV_FINISHED, on_finished, nullptr, nullptr);
        worker_start(w);
        while (!finished) QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 5);
        if (a.last != N - 1) fail("last value not delivered", a.last, N - 1);
        if (k.second && b.last != N - 1) fail("second connection: last value not delivered", b.last, N - 1);
        std::printf("%s policy %d cap %zu sized %d second %d: %ld calls (%ld inside its own nested loop), second %ld calls\n",
                    fails > before ? "FAIL" : "held", k.pol, k.cap, k.sized, k.second, a.calls, a.nested_calls, b.calls);
        worker_unref(w);
    }
    for (int i = 0; i < 10; i++) QCoreApplication::processEvents();
    if (alive) fail("payloads alive at the end", alive, 0);
    for (Val *v : graveyard) delete v;
    std::printf("%s\n", fails ? "FAIL" : "PASS");
    return fails != 0;
}
