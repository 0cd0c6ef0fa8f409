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
read(out=buf). Every call is timed; the report gives the 10th percentile
(the cost without the machine's noise) and the median, and the ratios of
the baselines' to the reader's times (>= 1 means faster than the baseline).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import framering  # noqa: E402
from framering._sys import futex_wake  # noqa: E402

SHAPES = [(404, 640, 3), (1080, 1920, 3)]


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def bench_shape(shape, d, runs):
    h, w, c = shape
    nbytes = h * w * c
    iters = max(200, int(2e9 / nbytes) // 10) * runs
    name = "bench-%d-%d" % (os.getpid(), w)
    pc = time.perf_counter_ns
    wr = framering.Writer(name, shape=shape, dir=d, slots=8)
    try:
        for i in range(8):
            wr.publish(np.full(shape, i, np.uint8))
        rd = framering.Reader(name, dir=d, start="next")
        off = [o + rd.geometry.payload_offset for o in rd._slot_off]
        slots = [rd._u8[o:o + nbytes] for o in off]  # the slots' payloads, as read() sees them
        private = [np.full(nbytes, i, np.uint8) for i in range(8)]
        buf = np.empty(nbytes, np.uint8)
        addr = rd._notify_addr
        t = {k: [] for k in ("read", "private copy", "slot copy", "read(out)", "private copyto", "slot copyto",
                             "view")}
        for i in range(iters):
            # Each timed call follows the same kind of system call: the
            # commit's FUTEX_WAKE, or a bare FUTEX_WAKE for the baselines.
            wr.reserve()
            k = wr.commit() & 7
            t0 = pc()
            rd.read()
            t["read"].append(pc() - t0)
            futex_wake(addr)
            t0 = pc()
            private[i & 7].copy()
            t["private copy"].append(pc() - t0)
            futex_wake(addr)
            t0 = pc()
            slots[(k + 4) & 7].copy()
            t["slot copy"].append(pc() - t0)
            wr.reserve()
            k = wr.commit() & 7
            t0 = pc()
            rd.read(out=buf)
            t["read(out)"].append(pc() - t0)
            futex_wake(addr)
            t0 = pc()
            np.copyto(buf, private[i & 7])
            t["private copyto"].append(pc() - t0)
            futex_wake(addr)
            t0 = pc()
            np.copyto(buf, slots[(k + 4) & 7])
            t["slot copyto"].append(pc() - t0)
            wr.reserve()
            wr.commit()
            t0 = pc()
            with rd.view():
                pass
            t["view"].append(pc() - t0)
        # A view alone (commit, acquire, release), without copies in between
        # that evict the interpreter's own data from the caches.
        t["view alone"] = []
        for i in range(3000):
            wr.reserve()
            wr.commit()
            t0 = pc()
            with rd.view():
                pass
            t["view alone"].append(pc() - t0)
        st = rd.stats
        assert st.delivered == 3 * iters + 3000 and st.dropped == 0, st
        rd.close()
    finally:
        wr.remove()
    p10 = {k: pct(v, 0.1) for k, v in t.items()}
    p50 = {k: pct(v, 0.5) for k, v in t.items()}
    print("%dx%dx%d (%d bytes), %d interleaved iterations; ns per call (10th percentile / median):"
          % (w, h, c, nbytes, iters))
    for k in ("read", "private copy", "slot copy", "read(out)", "private copyto", "slot copyto"):
        print("  %-15s %9d / %9d ns   %6.2f / %6.2f GB/s" % (k, p10[k], p50[k], nbytes / p10[k], nbytes / p50[k]))
    for a, b, note in (("read", "private copy", "  (goal >= 0.8)"), ("read(out)", "private copyto", ""),
                       ("read", "slot copy", ""), ("read(out)", "slot copyto", "")):
        print("  %-9s / %-15s %.2fx / %.2fx%s" % (a, b, p10[b] / p10[a], p50[b] / p50[a], note))
    print("  view acquire + release %7d / %7d ns  (alone: %d / %d ns)"
          % (p10["view"], p50["view"], p10["view alone"], p50["view alone"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="iterations, in units of ~200 MB copied per case")
    ap.add_argument("--dir", default="/dev/shm")
    a = ap.parse_args()
    print("python %s, numpy %s, %s" % (sys.version.split()[0], np.__version__, os.uname().machine))
    for s in SHAPES:
        bench_shape(s, a.dir, a.runs)


if __name__ == "__main__":
    main()
