#!/usr/bin/python3
"""Figures for the Python reader, in one process (issue 11 item 7):

  copy-out read throughput vs a numpy copy of the same bytes
  (goal: >= 0.8x), and the cost of a view's acquire + release.

    PYTHONPATH=python /usr/bin/python3 python/bench.py [--runs 5] [--dir /dev/shm]

A writer in the same process commits a frame before each read (untimed;
the payloads are written once, up front). Baselines, interleaved with the
reads in the same loop so that machine noise hits both alike, each after a
bare FUTEX_WAKE (the system call a commit makes, whose TLB refills the
next copy pays):
  private copy ndarray.copy() of one of 8 private arrays of the frame's
               size, cycled like the ring's 8 slots (the goal's baseline)
  slot copy    ndarray.copy() of a ring slot's payload (not the one just
               read), without the seqlock
and both with a preallocated destination (np.copyto), compared with
read(out=buf). Each figure is the median over --runs runs.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import framering  # noqa: E402
from framering._sys import futex_wake  # noqa: E402

SHAPES = [(404, 640, 3), (1080, 1920, 3)]


def bench_shape(shape, d, runs):
    h, w, c = shape
    nbytes = h * w * c
    iters = max(200, int(2e9 / nbytes) // 10)
    name = "bench-%d-%d" % (os.getpid(), w)
    pc = time.perf_counter_ns
    wr = framering.Writer(name, shape=shape, dir=d, slots=8)
    try:
        for i in range(8):
            wr.publish(np.full(shape, i, np.uint8))
        probe = framering.Reader(name, dir=d)
        off = [o + probe.geometry.payload_offset for o in probe._slot_off]
        slots = [probe._u8[o:o + nbytes] for o in off]  # the slots' payloads, as read() sees them
        private = [np.full(nbytes, i, np.uint8) for i in range(8)]
        buf = np.empty(nbytes, np.uint8)
        addr = probe._notify_addr
        ratios = {"copy": [], "copyto": [], "private": []}
        per_call = {}
        for run in range(runs):
            rd = framering.Reader(name, dir=d, start="next")
            t = {"read": 0, "read(out)": 0, "slot copy": 0, "slot copyto": 0, "private copy": 0,
                 "private copyto": 0, "view": 0}
            for i in range(iters):
                # Each timed call follows the same kind of system call: the
                # commit's FUTEX_WAKE, or a bare FUTEX_WAKE for the baselines.
                wr.reserve()
                k = wr.commit() & 7
                t0 = pc()
                rd.read()
                t["read"] += pc() - t0
                futex_wake(addr)
                t0 = pc()
                slots[(k + 4) & 7].copy()
                t["slot copy"] += pc() - t0
                futex_wake(addr)
                t0 = pc()
                private[i & 7].copy()
                t["private copy"] += pc() - t0
                wr.reserve()
                k = wr.commit() & 7
                t0 = pc()
                rd.read(out=buf)
                t["read(out)"] += pc() - t0
                futex_wake(addr)
                t0 = pc()
                np.copyto(buf, slots[(k + 4) & 7])
                t["slot copyto"] += pc() - t0
                futex_wake(addr)
                t0 = pc()
                np.copyto(buf, private[i & 7])
                t["private copyto"] += pc() - t0
                wr.reserve()
                wr.commit()
                t0 = pc()
                with rd.view():
                    pass
                t["view"] += pc() - t0
            st = rd.stats
            assert st.delivered == 3 * iters and st.dropped == 0, st
            rd.close()
            ratios["copy"].append(t["private copy"] / t["read"])
            ratios["copyto"].append(t["private copyto"] / t["read(out)"])
            ratios["private"].append(t["slot copy"] / t["read"])
            for key, v in t.items():
                per_call.setdefault(key, []).append(v / iters)
        probe.close()
    finally:
        wr.remove()
    med = {key: statistics.median(v) for key, v in per_call.items()}
    print("%dx%dx%d (%d bytes): %d runs of %d interleaved iterations; median of the runs:"
          % (w, h, c, nbytes, runs, iters))
    for key in ("read", "slot copy", "private copy", "read(out)", "slot copyto", "private copyto"):
        print("  %-15s %10.0f ns per call  %6.2f GB/s" % (key, med[key], nbytes / med[key]))
    print("  read / private copy           %.2fx  (runs: %s; goal >= 0.8)"
          % (statistics.median(ratios["copy"]), " ".join("%.2f" % r for r in ratios["copy"])))
    print("  read(out) / private copyto    %.2fx  (runs: %s)"
          % (statistics.median(ratios["copyto"]), " ".join("%.2f" % r for r in ratios["copyto"])))
    print("  read / slot copy              %.2fx  (runs: %s)"
          % (statistics.median(ratios["private"]), " ".join("%.2f" % r for r in ratios["private"])))
    print("  view acquire + release    %10.0f ns  (runs: %s)"
          % (med["view"], " ".join("%.0f" % v for v in per_call["view"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/dev/shm")
    a = ap.parse_args()
    print("python %s, numpy %s, %s" % (sys.version.split()[0], np.__version__, os.uname().machine))
    for s in SHAPES:
        bench_shape(s, a.dir, a.runs)


if __name__ == "__main__":
    main()
