"""Writer and reader in different processes: torn frames never accepted,
exact accounting, SIGKILL of the writer, takeover repair, a second writer."""

import os
import signal
import struct

import numpy as np
import pytest

import framering
from framering import _layout as L
from framering import pattern
from conftest import helper


def drain(r, checker, timeout=20):
    """Read until the writer is gone; returns (delivered numbers, mismatches)."""
    got, bad = [], 0
    while True:
        try:
            f = r.read(timeout=timeout)
        except framering.WriterGone:
            return got, bad
        got.append(f.number)
        if checker.check(f.data, f.number) is not None:
            bad += 1


@pytest.mark.parametrize("mode,h,w,count", [("ordered", 240, 320, 3000), ("latest", 240, 320, 3000),
                                            ("ordered", 1080, 1920, 400), ("latest", 1080, 1920, 400)])
def test_cross_process_no_torn_frame_and_exact_accounting(shm_dir, name, children, mode, h, w, count):
    # Two slots: the writer is always at most one frame away from the slot
    # being read, so copies overlap its writes (retries > 0) and a reader
    # without the seqlock's second check accepts torn frames.
    w = children(helper("writer", shm_dir, name, h, w, 3, 2), stdin=True)
    w.expect("ready gen=1 next=1")
    # Open before the first frame: the window starts at frame 1 whatever the start.
    r = framering.Reader(name, dir=shm_dir, mode=mode)
    try:
        w.send("go %d" % count)
        w.send("close")
        got, bad = drain(r, pattern.Checker())
        st = r.stats
        assert bad == 0, "accepted %d torn or wrong frames" % bad
        assert got == sorted(got) and len(set(got)) == len(got)
        assert st.delivered == len(got) and st.last == count and st.window_start == 1
        assert st.delivered + st.dropped == count == st.considered
        assert st.corrupt == 0 and st.overwritten == 0
        if mode == "latest":
            assert st.lapped + st.skipped == st.dropped
        print("mode %s: delivered %d, lapped %d, skipped %d, retries %d (torn reads thrown away)"
              % (mode, st.delivered, st.lapped, st.skipped, st.retries))
    finally:
        r.close()
    assert w.wait() == 0


def test_views_across_processes_never_validate_a_torn_frame(shm_dir, name, children):
    w = children(helper("writer", shm_dir, name, 120, 160, 3, 2), stdin=True)
    w.expect("ready")
    r = framering.Reader(name, dir=shm_dir)
    checker = pattern.Checker()
    valid = overwritten = 0
    try:
        w.send("go 4000")
        w.send("close")
        while True:
            try:
                v = r.view(timeout=20)
                with v as img:
                    ok = checker.check(np.ascontiguousarray(img).reshape(-1), v.number) is None
                valid += 1
                assert ok, "a view validated at exit held a torn frame %d" % v.number
            except framering.FrameOverwritten:
                overwritten += 1
            except framering.WriterGone:
                break
        st = r.stats
        assert st.delivered == valid and st.overwritten == overwritten
        assert st.delivered + st.dropped == st.considered == 4000
        print("views: valid %d, overwritten %d, lapped %d" % (valid, overwritten, st.lapped))
    finally:
        r.close()


def test_writer_sigkill_detected_and_resumed_on_takeover(shm_dir, name, children):
    w1 = children(helper("writer", shm_dir, name, 48, 64, 3, 8), stdin=True)
    w1.expect("ready gen=1")
    r = framering.Reader(name, dir=shm_dir)
    checker = pattern.Checker()
    try:
        w1.send("forever")
        w1.expect("publishing")
        for _ in range(20):
            f = r.read(timeout=10)
            assert checker.check(f.data, f.number) is None
        w1.kill(signal.SIGKILL)
        assert w1.wait() == -signal.SIGKILL
        got, bad = drain(r, checker)
        assert bad == 0
        st = r.stats
        assert st.writer_gone == 1 and not st.writer_up
        h1 = r.superblock()["head"]
        assert st.last == h1
        w2 = children(helper("writer", shm_dir, name, 48, 64, 3, 8), stdin=True)
        line = w2.expect("ready")
        assert "gen=2 next=%d" % (h1 + 1) in line
        w2.send("go 100")
        w2.send("close")
        got, bad = drain(r, checker)
        assert bad == 0 and got and got[0] > h1 and got[-1] == h1 + 100
        st = r.stats
        assert (st.writer_gone, st.resumes) == (2, 1)
        assert st.delivered + st.dropped == st.considered == h1 + 100 - st.window_start + 1
    finally:
        r.close()


def test_takeover_repairs_a_slot_left_odd_by_a_killed_writer(shm_dir, name, children):
    w1 = children(helper("writer", shm_dir, name, 16, 16, 3, 4), stdin=True)
    w1.expect("ready")
    w1.send("go 5")
    w1.expect("done head=5")
    w1.send("hold")
    w1.expect("held 6")
    path = L.ring_path(shm_dir, name)
    g = L.Geometry(4, 16 * 16 * 3, 4096)
    off = g.slot_offset(6)
    seq, frame_no = struct.unpack("<QQ", os.pread(os.open(path, os.O_RDONLY), 16, off))
    assert seq & 1 == 1 and frame_no == 2  # frame 6 is being written over frame 2
    r = framering.Reader(name, dir=shm_dir, start="oldest")
    try:
        w1.kill(signal.SIGKILL)
        w1.wait()
        # Frames 3..5 are intact; frame 2's slot is odd with no writer: lost.
        got, bad = drain(r, pattern.Checker())
        assert got == [3, 4, 5] and bad == 0
        st = r.stats
        assert st.lapped == 1 and st.window_start == 2 and st.corrupt == 0
        with framering.Writer(name, shape=(16, 16, 3), dir=shm_dir, slots=4) as w2:
            assert w2.generation == 2 and w2.next_number == 6  # frame 6 was never committed
            fd = os.open(path, os.O_RDONLY)
            try:
                seq2, frame_no2 = struct.unpack("<QQ", os.pread(fd, 16, off))
                (plen,) = struct.unpack("<Q", os.pread(fd, 8, off + 48))
            finally:
                os.close(fd)
            assert seq2 == seq + 1 and frame_no2 == 0 and plen == 0
            a = w2.reserve()
            pattern.fill(a.reshape(-1), 6)
            w2.commit()
            f = r.read(timeout=10)
            assert f.number == 6 and pattern.check(f.data, 6) is None and f.generation == 2
    finally:
        r.close()


def test_second_writer_in_another_process_is_refused(shm_dir, name, children):
    w1 = children(helper("writer", shm_dir, name, 8, 8, 1, 4), stdin=True)
    pid = int(w1.expect("ready").split("pid=")[1])
    with pytest.raises(framering.Busy, match="already written by pid %d" % pid):
        framering.Writer(name, shape=(8, 8, 1), dir=shm_dir, slots=4)
    w2 = children(helper("writer", shm_dir, name, 8, 8, 1, 4), stdin=True)
    assert w2.wait() == 1
    assert any("already written by pid %d" % pid in line for line in w2.err_lines)
    w1.send("close")
    w1.expect("closed")
    with framering.Writer(name, shape=(8, 8, 1), dir=shm_dir, slots=4) as w:
        assert w.generation == 2


def test_truncated_under_a_python_reader_kills_it_with_sigbus(shm_dir, name, children):
    """The documented limitation (PROTOCOL.md section 2): CPython cannot
    catch SIGBUS. A ring truncated under a reader's mapping kills the
    reader at its next access; it never hangs or returns garbage."""
    with framering.Writer(name, shape=(64, 64, 3), dir=shm_dir, slots=4) as w:
        for _ in range(3):
            w.publish(np.zeros((64, 64, 3), np.uint8))
    rd = children(helper("reader", shm_dir, name), stdin=True)
    rd.expect("ready")
    os.truncate(L.ring_path(shm_dir, name), 4096)
    rd.send("read")
    assert rd.wait() == -signal.SIGBUS
