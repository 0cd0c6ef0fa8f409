#!/usr/bin/python3
"""The Python reader of framering's benchmark suite (bench/, issue 11 item 7).

The Go coordinator (framering bench) starts it as a reader process of a case
whose writer is the Go producer, with

  --kind latency|throughput|copyout|idle --transport py-view|py-copy
  --wait futex|spin|poll --size WxHxC --index I --dir DIR --ring NAME
  --cpu N (-1: no pinning) --duration-ns NS

It prints "ready" once the ring is open, then one line "result {json}" when
the writer is gone or on SIGUSR2/SIGTERM: the Go workers' result, with every
frame's [seq, latency ns, scheduler delay ns] in "samples" and the copy-out
timings per method in "timings".

Frames (bench/frame.go): the send time at 0, the writer's sequence number at
8, then a test-pattern frame stamped with that number whose checksum covers a
mark (the number's low byte) at the start of every 4 KiB page. The marks, the
header and the checksum are the only bytes that differ between the
benchmark's frames, so this reader checks the header, the pattern's number
and length and every page's mark (numpy, strided), not the CRC-32C: the
package computes that in numpy at a few hundred MB/s, which would make the
check, not the reader, the figure.

copyout: each frame it finds (a timeout of 0 never waits) is timed,
alternately, as read(out=buf), or as numpy.copyto(buf, view) of the slot
through a view: the goal's baseline, a numpy copy of the same bytes (the
slot the writer just wrote on another CPU) in one process, without the
reader's checks.
"""

import argparse
import json
import mmap
import os
import resource
import signal
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import numpy as np  # noqa: E402

import framering  # noqa: E402
from framering import errors  # noqa: E402

BENCH_HDR = 16
FIRST_MARK = BENCH_HDR + 16
MARK_EVERY = 4096
ACK_LINE = 64
ACK_SIZE = ACK_LINE * 65
WAIT_SLICE = 0.02  # as the Go bench readers
SPIN = 0.05
COPY_POLL = 50e-6

now_ns = time.clock_gettime_ns
MONO = time.CLOCK_MONOTONIC


def verify(d, n):
    """d: the frame's bytes as a 1-D uint8 array of n bytes."""
    if n < FIRST_MARK + 16 or d.shape[0] != n:
        return False
    seq, = struct.unpack_from("<Q", d, 8)
    pn, = struct.unpack_from("<Q", d, BENCH_HDR)
    ln, = struct.unpack_from("<I", d, BENCH_HDR + 12)
    if pn != seq or ln != n - BENCH_HDR:
        return False
    return bool(np.all(d[FIRST_MARK::MARK_EVERY] == (seq & 0xFF)))


class Sched:
    """The thread's run-queue wait (ns) from /proc/thread-self/schedstat."""

    def __init__(self):
        try:
            self.fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self.fd = None

    def now(self):
        if self.fd is None:
            return -1
        try:
            return int(os.pread(self.fd, 128, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return -1


def usage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_nvcsw + ru.ru_nivcsw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="latency", choices=["latency", "throughput", "copyout", "idle"])
    ap.add_argument("--transport", default="py-view", choices=["py-view", "py-copy"])
    ap.add_argument("--wait", default="futex", choices=["futex", "spin", "poll"])
    ap.add_argument("--size", required=True)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--dir", default="/dev/shm")
    ap.add_argument("--ring", default="data")
    ap.add_argument("--cpu", type=int, default=-1)
    ap.add_argument("--duration-ns", type=int, default=0)
    a = ap.parse_args()
    w, h, c = (int(x) for x in a.size.split("x"))
    n = w * h * c
    if a.cpu >= 0:
        os.sched_setaffinity(0, {a.cpu})

    stop = [False]
    rd = [None]

    def on_stop(sig, frame):
        stop[0] = True
        if rd[0] is not None:
            rd[0].cancel()

    signal.signal(signal.SIGUSR2, on_stop)
    signal.signal(signal.SIGTERM, on_stop)

    acks = None
    if a.kind in ("latency", "copyout"):
        fd = os.open(os.path.join(a.dir, "acks"), os.O_RDWR)
        acks = mmap.mmap(fd, ACK_SIZE)
        os.close(fd)
    # [0]: the last frame finished with; [1]: the last frame received (the
    # writer prepares its next frame from then on).
    ack_word = np.frombuffer(acks, dtype=np.uint64, count=2, offset=ACK_LINE * (a.index + 1)) if acks else None

    kw = dict(dir=a.dir, start="next", wait=True, timeout=30)
    if a.kind != "idle":
        kw["wait_slice"] = WAIT_SLICE  # idle: the package's defaults, what users get
    if a.kind == "throughput":
        kw["mode"] = "latest"
    if a.wait == "spin":
        kw["spin"] = SPIN
    r = framering.Reader(a.ring, **kw)
    rd[0] = r
    sched = Sched()
    buf = np.empty(n, np.uint8)
    view = a.transport == "py-view"
    samples, t_read, t_numpy = [], [], []
    frames = torn = rejected = 0
    first = last = 0
    print("ready", flush=True)

    start = now_ns(MONO)
    cpu0, sw0 = usage()
    try:
        if a.kind == "idle":
            try:
                with r.view(timeout=a.duration_ns / 1e9):
                    pass
                print("python bench worker: idle: a frame arrived on a ring nobody publishes to", file=sys.stderr)
                return 1
            except errors.Timeout:
                pass
        else:
            k = 0
            while not stop[0]:
                if a.kind != "copyout":
                    os.sched_yield()  # a preemption owed after the last frame's check lands here, not below
                s0 = sched.now()
                try:
                    if a.kind == "copyout":
                        if k % 2 == 0:
                            method = t_read
                            t0 = time.perf_counter_ns()
                            r.read(timeout=0, out=buf)
                            d = time.perf_counter_ns() - t0
                        else:
                            method = t_numpy
                            v = r.view(timeout=0)
                            with v:
                                t0 = time.perf_counter_ns()
                                np.copyto(buf, v.frame.data)
                                d = time.perf_counter_ns() - t0
                        at = now_ns(MONO)
                        seq = int(struct.unpack_from("<Q", buf, 8)[0])
                        if ack_word is not None:
                            ack_word[1] = seq
                        ok = verify(buf, n)
                        method.append(d)
                    elif view:
                        v = r.view()
                        with v:
                            at = now_ns(MONO)
                            d = v.frame.data
                            seq = int(struct.unpack_from("<Q", d, 8)[0])
                            if ack_word is not None:
                                ack_word[1] = seq
                            ok = verify(d, n)
                            pub = v.frame.publish_ns
                    else:
                        f = r.read(out=buf)
                        at = now_ns(MONO)
                        seq = int(struct.unpack_from("<Q", buf, 8)[0])
                        if ack_word is not None:
                            ack_word[1] = seq
                        ok = verify(buf, n)
                        pub = f.publish_ns
                except errors.Timeout:
                    if a.kind == "copyout":
                        time.sleep(COPY_POLL)
                    continue
                except errors.FrameOverwritten:
                    rejected += 1
                    continue
                except (errors.WriterGone, errors.Cancelled, errors.Closed):
                    break
                sd = -1 if s0 < 0 else sched.now() - s0
                k += 1
                frames += 1
                if not ok:
                    torn += 1
                if not first:
                    first = at
                last = at
                if a.kind != "copyout":
                    samples.append((seq, at - pub, sd))
                if ack_word is not None:
                    ack_word[0] = seq
    finally:
        end = now_ns(MONO)
        cpu1, sw1 = usage()
    res = {"role": "reader", "index": a.index, "frames": frames, "torn": torn, "rejected": rejected,
           "first": first, "last": last, "start": start, "end": end, "cpu_s": cpu1 - cpu0, "switches": sw1 - sw0,
           "samples": samples, "timings": {}}
    if a.kind == "copyout":
        res["timings"] = {"read": t_read, "numpy-copy": t_numpy}
    print("result " + json.dumps(res, separators=(",", ":")), flush=True)
    r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
