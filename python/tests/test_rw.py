"""Reader and writer in one process: copies, views, counters, modes,
windows, metadata, formats, loans, remaps, close and cancel."""

import os
import threading
import time

import numpy as np
import pytest

import framering
from framering import pattern


def pub(w, n=1):
    """Publish n pattern frames; returns the last number."""
    last = 0
    for _ in range(n):
        a = w.reserve()
        pattern.fill(a.reshape(-1), w.next_number)
        last = w.commit()
    return last


def test_copy_read_image_metadata_and_fields(shm_dir, name):
    with framering.Writer(name, shape=(4, 6, 3), dir=shm_dir, slots=4) as w, \
            framering.Reader(name, dir=shm_dir) as r:
        img = np.arange(72, dtype=np.uint8).reshape(4, 6, 3)
        n = w.publish(img, meta=b"detections", capture_ns=12345)
        f = r.read(timeout=5)
        assert (f.number, f.generation, f.format_name, f.shape) == (n, 1, "bgr8", (4, 6, 3))
        assert (f.image == img).all() and f.image.flags.writeable and f.image.dtype == np.uint8
        assert f.meta == b"detections" and f.capture_ns == 12345 and f.publish_ns > 0 and f.wall_ns > 0
        img[:] = 0  # the frame is a private copy
        assert f.image.sum() != 0
        assert r.stats.delivered == 1 and r.stats.dropped == 0


def test_read_into_callers_buffer(shm_dir, name):
    with framering.Writer(name, shape=(8, 8, 1), dir=shm_dir, slots=4) as w, \
            framering.Reader(name, dir=shm_dir, start="oldest") as r:
        w.publish(np.full((8, 8), 3, np.uint8))
        w.publish(np.full((8, 8), 4, np.uint8))
        buf = np.zeros(64, np.uint8)
        f = r.read(timeout=5, out=buf)
        assert np.shares_memory(f.image, buf) and (buf == 3).all() and f.image.shape == (8, 8, 1)
        small = np.zeros(63, np.uint8)
        with pytest.raises(framering.FrameTooLarge):
            r.read(timeout=5, out=small)
        assert r.stats.delivered == 1 and r.stats.dropped == 0  # nothing consumed
        f = r.read(timeout=5, out=bytearray(100))
        assert f.number == 2 and (f.image == 4).all()


def test_view_aliases_slot_read_only_and_counts(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 3), dir=shm_dir, slots=4) as w, \
            framering.Reader(name, dir=shm_dir) as r:
        w.publish(np.full((4, 4, 3), 9, np.uint8), meta=b"m")
        v = r.view(timeout=5)
        with v as img:
            assert img.shape == (4, 4, 3) and not img.flags.writeable and (img == 9).all()
            with pytest.raises(ValueError):
                img[0, 0, 0] = 1
            assert v.valid and v.number == 1 and bytes(v.meta) == b"m"
            with pytest.raises(framering.ViewOutstanding):
                r.read(timeout=0.1)
        assert v.valid
        assert r.stats.delivered == 1


def test_view_overwritten_is_raised_and_counted(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 3), dir=shm_dir, slots=4) as w, \
            framering.Reader(name, dir=shm_dir) as r:
        pub(w)
        v = r.view(timeout=5)
        with pytest.raises(framering.FrameOverwritten, match="frame 1"):
            with v:
                pub(w, 4)  # the writer goes round and reuses frame 1's slot
                assert not v.valid
                with pytest.raises(framering.FrameOverwritten):
                    v.check()
        assert not v.valid
        st = r.stats
        assert (st.overwritten, st.delivered, st.last) == (1, 0, 1)
        # An exception from the block is kept as the context.
        v = r.view(timeout=5)
        with pytest.raises(framering.FrameOverwritten) as ei:
            with v:
                pub(w, 4)
                raise KeyError("from the block")
        assert isinstance(ei.value.__context__, KeyError)
        # A valid view lets the block's exception through unchanged.
        with pytest.raises(KeyError):
            with r.view(timeout=5):
                raise KeyError("x")
        st = r.stats
        assert st.delivered + st.dropped == st.considered


def test_ordered_lapping_counts_exact(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8) as w, \
            framering.Reader(name, dir=shm_dir) as r:
        pub(w, 20)
        got = [r.read(timeout=5).number for _ in range(4)]
        # Lapped: resume half a ring behind the head (20 - 8/2 + 1 = 17).
        assert got == [17, 18, 19, 20]
        st = r.stats
        assert (st.lapped, st.delivered, st.window_start, st.last, st.considered) == (16, 4, 1, 20, 20)


def test_latest_skips_counts_exact(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8) as w, \
            framering.Reader(name, dir=shm_dir, mode="latest") as r:
        pub(w, 20)
        assert r.read(timeout=5).number == 20
        pub(w, 3)
        assert r.read(timeout=5).number == 23
        st = r.stats
        assert (st.skipped, st.delivered, st.lapped, st.considered) == (21, 2, 0, 23)


@pytest.mark.parametrize("start,first", [("newest", 20), ("oldest", 13), ("next", 21)])
def test_start_positions(shm_dir, name, start, first):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8) as w:
        pub(w, 20)
        with framering.Reader(name, dir=shm_dir, start=start) as r:
            if start == "next":
                with pytest.raises(framering.Timeout):
                    r.read(timeout=0.2)
                pub(w)
            assert r.read(timeout=5).number == first
            assert r.stats.window_start == first


def test_every_format_round_trips(shm_dir, name):
    cases = [("gray8", np.uint8, 1), ("bgr8", np.uint8, 3), ("rgb8", np.uint8, 3), ("bgra8", np.uint8, 4),
             ("rgba8", np.uint8, 4), ("gray16", np.uint16, 1), ("yuyv", np.uint8, 2)]
    with framering.Writer(name, frame_bytes=5 * 7 * 4 * 2, dir=shm_dir, slots=8) as w, \
            framering.Reader(name, dir=shm_dir) as r:
        for fmt, dt, c in cases:
            img = (np.arange(5 * 7 * c, dtype=np.int64).reshape(5, 7, c) * 331).astype(dt)
            w.publish(img, format=fmt)
            f = r.read(timeout=5)
            assert f.format_name == fmt and f.image.dtype == np.dtype(dt) and (f.image == img).all(), fmt
        raw = np.frombuffer(b"raw bytes!", np.uint8)
        w.publish(raw)
        f = r.read(timeout=5)
        assert f.format_name == "raw" and f.image.tobytes() == b"raw bytes!"
        # An ROI (strided source) is copied row by row.
        big = np.arange(20 * 20 * 3, dtype=np.uint8).reshape(20, 20, 3)
        w.publish(big[3:8, 2:9])
        assert (r.read(timeout=5).image == big[3:8, 2:9]).all()
        with pytest.raises(framering.InvalidFrame):
            w.publish(np.zeros((5, 7, 1), np.uint8), format="gray16")  # dtype does not match
        with pytest.raises(framering.FrameTooLarge):
            w.publish(np.zeros((50, 50, 3), np.uint8))


def test_reserve_commit_abort_and_in_place_metadata(shm_dir, name):
    with framering.Writer(name, shape=(3, 5, 3), dir=shm_dir, slots=4, meta_bytes=64) as w, \
            framering.Reader(name, dir=shm_dir, start="oldest") as r:
        a = w.reserve()
        assert a.shape == (3, 5, 3) and a.flags.writeable
        with pytest.raises(framering.LoanOutstanding):
            w.reserve()
        a[:] = 5
        w.loan_meta[:4] = np.frombuffer(b"meta", np.uint8)
        with pytest.raises(framering.FrameTooLarge):
            w.commit(meta_len=65)  # the loan stays out
        assert w.commit(meta_len=4) == 1
        assert not a.flags.writeable  # the loan's array is retired
        a2 = w.reserve()
        a2[:] = 6
        w.abort()  # frame 2 is rolled back: its number is reused
        assert w.next_number == 2 and w.aborts == 1
        assert w.publish(np.full((3, 5, 3), 7, np.uint8)) == 2
        f1, f2 = r.read(timeout=5), r.read(timeout=5)
        assert (f1.number, f1.meta, int(f1.image[0, 0, 0])) == (1, b"meta", 5)
        assert (f2.number, int(f2.image[0, 0, 0])) == (2, 7)
        raw = w.reserve((40,), "raw")
        raw[:10] = 1
        w.commit(length=10)
        f = r.read(timeout=5)
        assert f.format_name == "raw" and f.image.tobytes() == b"\x01" * 10


def test_aborted_slot_counts_as_lost_not_torn(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=4) as w, \
            framering.Reader(name, dir=shm_dir, start="oldest") as r:
        pub(w, 4)  # slots hold frames 1..4
        w.reserve()
        w.abort()  # frame 5's slot (frame 1's) is now empty
        f = r.read(timeout=5)
        assert f.number == 2
        st = r.stats
        assert (st.lapped, st.delivered, st.retries) == (1, 1, 0)


def test_writer_gone_resume_and_geometry_change_remap(shm_dir, name):
    r = framering.Reader.__new__(framering.Reader)  # placeholder so the finally can close
    w = framering.Writer(name, shape=(4, 4, 3), dir=shm_dir, slots=4)
    try:
        r = framering.Reader(name, dir=shm_dir)
        pub(w, 3)
        assert [r.read(timeout=5).number for _ in range(3)] == [1, 2, 3]
        ino = os.stat(w.path).st_ino
        w.close()
        with pytest.raises(framering.WriterGone, match="exited or closed"):
            r.read(timeout=5)
        assert not r.stats.writer_up
        # Another geometry: a new file replaces the old, numbering carried over.
        w = framering.Writer(name, shape=(6, 10, 1), dir=shm_dir, slots=8)
        assert os.stat(w.path).st_ino != ino and w.generation == 2 and w.next_number == 4
        pub(w, 2)
        f = r.read(timeout=5)
        assert (f.number, f.shape, f.generation) == (4, (6, 10, 1), 2)
        assert r.geometry == framering.Geometry(8, 60, 4096)
        st = r.stats
        assert (st.writer_gone, st.resumes, st.resets, st.writer_up) == (1, 1, 0, True)
        assert r.read(timeout=5).number == 5
        ino = os.stat(w.path).st_ino
        w.close()
        with pytest.raises(framering.WriterGone):
            r.read(timeout=5)
        # Same geometry: taken over in place, same file.
        w = framering.Writer(name, shape=(6, 10, 1), dir=shm_dir, slots=8)
        assert w.generation == 3 and w.next_number == 6 and os.stat(w.path).st_ino == ino
        pub(w)
        assert r.read(timeout=5).number == 6
        assert r.stats.resumes == 2
    finally:
        w.close()
        if hasattr(r, "_lock"):
            r.close()


def test_reset_when_ring_recreated_from_scratch(shm_dir, name):
    w = framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8)
    r = framering.Reader(name, dir=shm_dir)
    try:
        pub(w, 10)
        while r.read(timeout=5).number != 10:
            pass
        w.remove()
        with pytest.raises(framering.WriterGone):
            r.read(timeout=5)
        w = framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8)  # fresh: numbering from 1
        assert w.next_number == 1
        pub(w, 3)
        got = [r.read(timeout=5).number for _ in range(3)]
        assert got == [1, 2, 3]
        st = r.stats
        assert st.resets == 1 and st.window_start == 1 and st.considered == 10 + 3
        assert st.delivered + st.dropped == st.considered
    finally:
        w.close()
        r.close()


def test_close_and_cancel_from_another_thread(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir):
        r = framering.Reader(name, dir=shm_dir, start="next")
        threading.Timer(0.2, r.cancel).start()
        with pytest.raises(framering.Cancelled):
            r.read()
        threading.Timer(0.2, r.close).start()
        with pytest.raises(framering.Closed):
            r.read()
        with pytest.raises(framering.Closed):
            r.read()
        r.close()
        assert r.stats.delivered == 0


def test_iteration_yields_frames_until_closed_or_writer_gone(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8) as w:
        r = framering.Reader(name, dir=shm_dir, start="oldest")
        pub(w, 5)
        got = []
        for f in r:
            got.append(f.number)
            if f.number == 5:
                r.close()
        assert got == [1, 2, 3, 4, 5]
        r = framering.Reader(name, dir=shm_dir, start="oldest")
        pub(w, 2)
    assert [f.number for f in r] == [1, 2, 3, 4, 5, 6, 7]  # ends when the writer closed
    assert r.stats.writer_gone == 1
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, slots=8) as w:
        pub(w, 1)
    assert [f.number for f in r] == [8]  # again: waited for the writer, read, ended at gone
    r.close()


def test_view_array_outlives_close_safely(shm_dir, name):
    with framering.Writer(name, shape=(64, 64, 3), dir=shm_dir) as w:
        w.publish(np.full((64, 64, 3), 5, np.uint8))
        r = framering.Reader(name, dir=shm_dir)
        with r.view(timeout=5) as img:
            kept = img
        r.close()
        assert int(kept.sum()) == 5 * 64 * 64 * 3  # still mapped: memory-safe
    held = None
    w = framering.Writer(name, shape=(64, 64, 3), dir=shm_dir)
    held = w.reserve()
    w.close()  # the reservation is rolled back and the lock dropped at once
    with framering.Writer(name, shape=(64, 64, 3), dir=shm_dir) as w2:
        assert w2.generation == 3
    assert not held.flags.writeable


def test_second_writer_is_refused_in_process(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 1), dir=shm_dir) as w:
        with pytest.raises(framering.Busy, match="already written by pid %d" % os.getpid()) as ei:
            framering.Writer(name, shape=(4, 4, 1), dir=shm_dir)
        assert ei.value.pid == os.getpid()
        with pytest.raises(framering.Busy):
            framering.Writer(name, shape=(8, 8, 1), dir=shm_dir)  # nor a replacement
        assert w.publish(np.zeros((4, 4), np.uint8)) == 1


def test_writer_heartbeat_and_liveness(shm_dir, name):
    w = framering.Writer(name, shape=(4, 4, 1), dir=shm_dir, heartbeat=0.02)
    r = framering.Reader(name, dir=shm_dir, hung_after=5.0)
    try:
        hb = r.superblock()["heartbeat_ns"]
        deadline = time.monotonic() + 10
        while r.superblock()["heartbeat_ns"] == hb and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.superblock()["heartbeat_ns"] > hb  # the thread stamps it
        assert r.writer_state()[0] == "alive"
        w.close()
        state, why = r.writer_state()
        assert state == "gone" and "exited or closed" in why
    finally:
        w.close()
        r.close()


def test_superblock_totals(shm_dir, name):
    with framering.Writer(name, shape=(4, 4, 3), dir=shm_dir) as w:
        pub(w, 5)
        sb = w.superblock()
        assert (sb["head"], sb["frames_total"], sb["bytes_total"], sb["generation"]) == (5, 5, 5 * 48, 1)
        assert sb["writer_pid"] == os.getpid()
