#!/usr/bin/env python3
"""superqt's thread_worker (what napari uses), measured like qtw_bench does.

    QT_API=pyqt6 QT_QPA_PLATFORM=offscreen python3 superqt_baseline.py MODE [key=value...]

MODE: throughput (workers=1 bytes=0), latency, start, many, control,
starvation; prints one JSON object per line with the same keys as qtw_bench.
Without MODE it runs them all (one line each, with a "mode" key).

Everything runs inside app.exec(), as in napari: superqt's start() only
defers to the next loop turn (QTimer.singleShot(1)) when an event loop runs.
"""
import json
import os
import sys
import threading
import time

os.environ.setdefault("QT_API", "pyqt6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy.QtCore import QCoreApplication, QEventLoop, QTimer  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402
from superqt.utils import thread_worker  # noqa: E402

now = time.perf_counter_ns  # CLOCK_MONOTONIC, like qtw_bench


def busy_wait_ns(ns):
    end = now() + ns
    while now() < end:
        pass


def stats(prefix, samples_ns):
    s = sorted(samples_ns)
    if not s:
        return {prefix + "_n": 0}

    def at(q):
        return s[int(q * (len(s) - 1) + 0.5)] / 1e3

    return {prefix + "_p50_us": at(0.5), prefix + "_p99_us": at(0.99),
            prefix + "_max_us": s[-1] / 1e3, prefix + "_n": len(s)}


def pump_until(pred, timeout_ms):
    """Process events until pred() (checked after each batch) or timeout."""
    expired = []
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: expired.append(True))
    guard.start(int(timeout_ms))
    while not pred() and not expired:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    guard.stop()
    return pred()


def pump_for(ms):
    pump_until(lambda: False, ms)


def emit(obj):
    print(json.dumps(obj), flush=True)


def watchdog(seconds, report):
    """Reports and exits if the GUI thread is still busy after `seconds`."""
    def fire():
        emit(report())
        os._exit(0)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


# ------------------------------------------------------------------ workers

@thread_worker
def produce(count, nbytes):
    if nbytes:
        marks = bytes(len(range(0, nbytes, 4096)))
        for _ in range(count):
            b = bytearray(nbytes)
            b[::4096] = marks  # commit every page, like the C frames
            yield b
    else:
        for i in range(count):
            yield i


@thread_worker
def noop():
    return None


@thread_worker
def ticker(count, period_ns, stamps=None):
    nxt = now()
    for i in range(count):
        nxt += period_ns
        d = nxt - now()
        if d > 0:
            time.sleep(d / 1e9)
        t = now()
        if stamps is not None:
            stamps.append(t)
        yield t


@thread_worker
def stepper(state):
    i = 0
    while True:
        busy_wait_ns(20000)
        yield i
        t = now()
        asked = state["pending"]
        if asked:
            state["pending"] = 0
            state["resumed"] = t - asked
        i += 1


@thread_worker
def flooder():
    while True:
        yield 0


# -------------------------------------------------------------------- modes

def throughput_once(workers, n, nbytes):
    st = {"got": 0, "fin": 0, "end": 0}

    def on_value(v):
        if nbytes:
            v[0]
        st["got"] += 1
        if st["got"] == n:
            st["end"] = now()

    def on_finished():
        st["fin"] += 1

    per = n // workers
    ws = []
    t0 = now()
    for _ in range(workers):
        w = produce(per, nbytes)
        w.yielded.connect(on_value)
        w.finished.connect(on_finished)
        w.start()
        ws.append(w)
    pump_until(lambda: st["fin"] == workers, 120000)
    return (st["end"] - t0) / 1e9 if st["end"] else 1e9


def mode_throughput(workers=1, bytes=0):
    """Like qtw_bench: grow n to a 50 ms run, then the median of 3 runs of
    ~0.4 s; large payloads in rounds of at most 512 MiB."""
    workers, nbytes = int(workers), int(bytes)
    cap = (512 << 20) // nbytes if nbytes > 4096 else 50_000_000

    def rnd(n):
        return max(workers, n // workers * workers)

    def timed(n):
        rounds = -(-n // cap)
        per = rnd(n // rounds)
        return sum(throughput_once(workers, per, nbytes) for _ in range(rounds)), per * rounds

    n = rnd(2000)
    t, done = timed(n)
    while t < 0.05 and n < 100_000_000:
        n *= 8
        t, done = timed(n)
    rates = []
    for _ in range(3):
        t, done = timed(min(100_000_000, max(2000, int(done * 0.4 / t))))
        rates.append(done / t)
    return {"rate": sorted(rates)[1], "n": done}


def mode_latency(n=3000):
    n, skip = int(n), 20
    lat = []
    done = []
    w = ticker(n, 500_000)
    w.yielded.connect(lambda v: lat.append(now() - v))
    w.finished.connect(lambda: done.append(True))
    w.start()
    pump_until(lambda: done, 60000)
    return stats("lat", lat[skip:])


def mode_start(n=300):
    n, warm = int(n), 20
    lat = []
    for i in range(n + warm):
        st = {"started": 0, "fin": False}
        t0 = now()
        w = noop()
        w.started.connect(lambda: st.__setitem__("started", now()))
        w.finished.connect(lambda: st.__setitem__("fin", True))
        w.start()
        pump_until(lambda: st["fin"], 10000)
        if i >= warm:
            lat.append(st["started"] - t0)
    return stats("start", lat)


def mode_many(n=1000):
    n = int(n)
    times = []
    for _ in range(7):  # as bench_main.cpp's mode_many
        st = {"fin": 0}

        def on_finished():
            st["fin"] += 1

        t0 = now()
        ws = []
        for _ in range(n):
            w = noop()
            w.finished.connect(on_finished)
            w.start()
            ws.append(w)
        pump_until(lambda: st["fin"] == n, 60000)
        times.append((now() - t0) / 1e6 if st["fin"] == n else 1e9)
        pump_for(20)
    return {"total_ms": sorted(times)[len(times) // 2], "n": n}


def mode_control(workers=300, budget_s=60):
    """Like qtw_bench's control mode. superqt now and then misses a pause or a
    resume (seen once in a whole run): each wait is capped at 2 s and counted
    in "missed", and the run stops after budget_s with what it has."""
    pause_ns, resume_ns, quit_ns = [], [], []
    missed = 0
    deadline = now() + float(budget_s) * 1e9
    for _ in range(int(workers)):
        if now() > deadline:
            break
        state = {"pending": 0, "resumed": 0}
        ev = {"paused": 0, "fin": 0}
        w = stepper(state)
        w.yielded.connect(lambda v: None)  # the GUI consumes what it yields
        w.paused.connect(lambda: ev.__setitem__("paused", now()))
        w.finished.connect(lambda: ev.__setitem__("fin", now()))
        w.start()
        pump_for(2)
        for _ in range(3):
            ev["paused"] = 0
            t = now()
            w.pause()
            if pump_until(lambda: ev["paused"], 2000):
                pause_ns.append(ev["paused"] - t)
            else:
                missed += 1
            pump_for(1)
            state["pending"] = now()
            w.resume()
            if pump_until(lambda: state["resumed"], 2000):
                resume_ns.append(state["resumed"])
            else:
                missed += 1
            state["resumed"] = 0
            pump_for(2)
        t = now()
        w.quit()
        if pump_until(lambda: ev["fin"], 2000):
            quit_ns.append(ev["fin"] - t)
        else:
            missed += 1
    out = stats("pause", pause_ns)
    out.update(stats("resume", resume_ns))
    out.update(stats("quit", quit_ns))
    out["missed"] = missed
    return out


def mode_starvation(drain_cap_s=20):
    ticks = 200
    stamps, delays = [], []
    st = {"got": 0, "max": 0, "done": False}

    def summary(complete):
        worst = st["max"]
        g = st["got"]
        if g < len(stamps):
            worst = max(worst, now() - stamps[g])
        return {"max_delay_ms": worst / 1e6, "delivered": g, "complete": complete}

    def on_tick(v):
        d = now() - v
        delays.append(d)
        st["max"] = max(st["max"], d)
        st["got"] += 1

    a = flooder()
    a.yielded.connect(lambda v: busy_wait_ns(1000))
    a.start()
    b = ticker(ticks, 10_000_000, stamps)
    b.yielded.connect(on_tick)
    b.finished.connect(lambda: st.__setitem__("done", True))
    b.start()
    dog = watchdog(ticks * 0.01 + float(drain_cap_s), lambda: summary(False))
    pump_until(lambda: st["done"], (ticks * 0.01 + float(drain_cap_s)) * 1000 + 5000)
    dog.cancel()
    a.quit()
    out = summary(st["done"])
    out.update(stats("delay", delays))
    return out


MODES = {"throughput": mode_throughput, "latency": mode_latency, "start": mode_start,
         "many": mode_many, "control": mode_control, "starvation": mode_starvation}


def main():
    app = QApplication(sys.argv[:1])
    if len(sys.argv) > 1 and sys.argv[1] == "info":
        import superqt
        from qtpy import QT_VERSION
        emit({"superqt": superqt.__version__, "qt": QT_VERSION})
        return 0
    if len(sys.argv) > 1 and sys.argv[1] not in MODES:
        print(__doc__, file=sys.stderr)
        return 2
    kwargs = dict(a.split("=", 1) for a in sys.argv[2:])
    todo = [sys.argv[1]] if len(sys.argv) > 1 else list(MODES)

    def run():
        for m in todo:
            out = MODES[m](**kwargs)
            if len(todo) > 1:
                out = {"mode": m, **out}
            emit(out)
        app.quit()

    QTimer.singleShot(0, run)
    app.exec()
    sys.stdout.flush()
    os._exit(0)  # endless workers of the starvation mode may still be parked


if __name__ == "__main__":
    sys.exit(main())
