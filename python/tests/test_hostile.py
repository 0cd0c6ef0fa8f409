"""Hostile or broken files under a ring's name: every one gives a clear
exception, promptly (each test runs under the hang guard), and a writer
never writes a file that failed its checks."""

import os
import stat
import struct
import time

import numpy as np
import pytest

import framering
from framering import _layout as L
from framering._crc import crc32c
from framering.writer import remove_stale_tmp
from framering._sys import ofd_lock_write

SHAPE = (16, 16, 3)


def make_ring(shm_dir, name, frames=4, slots=8):
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=slots) as w:
        for i in range(frames):
            w.publish(np.full(SHAPE, i, np.uint8))
    return L.ring_path(shm_dir, name)


def patch(path, off, fmt, value, fix_crc=False):
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, struct.pack(fmt, value), off)
        if fix_crc:
            os.pwrite(fd, struct.pack("<I", crc32c(os.pread(fd, 60, 0))), 60)
    finally:
        os.close(fd)


def slot_off(n, slots=8):
    return L.Geometry(slots, 16 * 16 * 3, 4096).slot_offset(n)


@pytest.mark.parametrize("off,fmt,value,fix,exc,text", [
    (0, "<Q", 0x4141414141414141, False, framering.Incompatible, "magic"),
    (8, "<I", 3, False, framering.Incompatible, "version is 3, want 2"),
    (20, "<I", 8192, False, framering.Corrupt, "checksum"),
    (56, "<I", 4, True, framering.Incompatible, "flags"),
    (16, "<I", 6, True, framering.Corrupt, "slot count 6"),
    (24, "<Q", 8192, True, framering.Corrupt, "slot stride"),
    (40, "<Q", 0, True, framering.Corrupt, "payload capacity 0"),
])
def test_bad_superblock_refused(shm_dir, name, off, fmt, value, fix, exc, text):
    path = make_ring(shm_dir, name)
    patch(path, off, fmt, value, fix)
    with pytest.raises(exc, match=text) as ei:
        framering.Reader(name, dir=shm_dir)
    assert "remove the ring and restart" in str(ei.value) or "remove it and restart" in str(ei.value)


@pytest.mark.parametrize("size", [0, 100, 4095, 4096, 20000])
def test_truncated_file_refused(shm_dir, name, size):
    path = make_ring(shm_dir, name)
    os.truncate(path, size)
    with pytest.raises(framering.Truncated):
        framering.Reader(name, dir=shm_dir)
    # The writer replaces it (superblock readable: numbering carried over).
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=8) as w:
        assert os.path.getsize(path) == w.geometry.file_size
        assert (w.generation, w.next_number) == ((2, 5) if size >= 4096 else (1, 1))


def test_fifo_refused_without_blocking(shm_dir, name):
    path = L.ring_path(shm_dir, name)
    os.mkfifo(path, 0o600)
    with pytest.raises(framering.UnsafeFile, match="not a regular file"):
        framering.Reader(name, dir=shm_dir)
    with pytest.raises(framering.UnsafeFile, match="not a regular file"):
        framering.Writer(name, shape=SHAPE, dir=shm_dir)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)  # left alone


def test_symlink_refused_and_left_alone(shm_dir, name):
    target = make_ring(shm_dir, "target-" + name[:20])
    path = L.ring_path(shm_dir, name)
    os.symlink(target, path)
    with pytest.raises(framering.UnsafeFile, match="symbolic link"):
        framering.Reader(name, dir=shm_dir)
    with pytest.raises(framering.UnsafeFile, match="symbolic link"):
        framering.Writer(name, shape=SHAPE, dir=shm_dir)
    assert os.path.islink(path)


def test_world_and_group_writable_refused(shm_dir, name):
    path = make_ring(shm_dir, name)
    os.chmod(path, 0o666)
    with pytest.raises(framering.UnsafeFile, match="world-writable"):
        framering.Reader(name, dir=shm_dir)
    with pytest.raises(framering.UnsafeFile, match="world-writable"):
        framering.Writer(name, shape=SHAPE, dir=shm_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666  # not touched
    os.chmod(path, 0o660)
    with pytest.raises(framering.UnsafeFile, match="group-writable"):
        framering.Reader(name, dir=shm_dir)
    framering.Reader(name, dir=shm_dir, allow_group_writable=True).close()
    with pytest.raises(framering.UnsafeFile, match="group-writable"):
        framering.Writer(name, shape=SHAPE, dir=shm_dir)
    framering.Writer(name, shape=SHAPE, dir=shm_dir, mode=0o660).close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_other_owner_refused(shm_dir, name):
    path = make_ring(shm_dir, name)
    os.chown(path, 65534, 65534)
    with pytest.raises(framering.UnsafeFile, match="belongs to uid 65534"):
        framering.Reader(name, dir=shm_dir)
    framering.Reader(name, dir=shm_dir, allow_other_owner=True).close()
    with pytest.raises(framering.UnsafeFile, match="belongs to uid 65534"):
        framering.Writer(name, shape=SHAPE, dir=shm_dir)


def test_garbage_file_is_replaced_by_the_writer(shm_dir, name):
    path = L.ring_path(shm_dir, name)
    with open(path, "wb") as f:
        f.write(os.urandom(50000))
    os.chmod(path, 0o600)
    ino = os.stat(path).st_ino
    with pytest.raises(framering.Incompatible):
        framering.Reader(name, dir=shm_dir)
    with framering.Writer(name, shape=SHAPE, dir=shm_dir) as w:
        assert os.stat(path).st_ino != ino and (w.generation, w.next_number) == (1, 1)
    framering.Reader(name, dir=shm_dir).close()
    assert not [e for e in os.listdir(shm_dir) if e.startswith(L.TMP_PREFIX)]


@pytest.mark.parametrize("head", [1 << 63, (1 << 64) - 1, 10 ** 12, 12, 13])
@pytest.mark.parametrize("mode", ["ordered", "latest"])
def test_absurd_head_is_corrupt_and_does_not_spin(shm_dir, name, head, mode):
    path = make_ring(shm_dir, name, frames=4)
    patch(path, L.OFF_HEAD, "<Q", head)
    r = framering.Reader(name, dir=shm_dir, mode=mode, start="oldest")
    try:
        for _ in range(3):  # every read says so, at once
            with pytest.raises(framering.Corrupt, match="Head"):
                r.read(timeout=30)
        st = r.stats
        assert st.delivered + st.dropped == 0 and st.retries == 0
    finally:
        r.close()
    # A new writer does not believe it either (D3): numbering continues at 5.
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=8) as w:
        assert w.next_number == 5 and w.generation == 2


def test_absurd_generation_makes_the_writer_replace_the_file(shm_dir, name):
    path = make_ring(shm_dir, name)
    patch(path, L.OFF_GENERATION, "<Q", 1 << 63)
    ino = os.stat(path).st_ino
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=8) as w:
        assert os.stat(path).st_ino != ino
        assert (w.generation, w.next_number) == (1, 5)  # Head carried, the generation not


def test_stuck_odd_seq_without_writer_counts_corrupt_and_moves_on(shm_dir, name):
    path = make_ring(shm_dir, name, frames=4)
    off = slot_off(2)
    (seq,) = struct.unpack("<Q", os.pread(os.open(path, os.O_RDONLY), 8, off))
    patch(path, off, "<Q", seq + 1)  # frame 2's slot left odd, nobody writing
    r = framering.Reader(name, dir=shm_dir, start="oldest")
    try:
        assert r.read(timeout=30).number == 1
        with pytest.raises(framering.Corrupt, match="stayed odd"):
            r.read(timeout=30)
        f = r.read(timeout=30)
        assert f.number == 3
        st = r.stats
        assert st.corrupt == 1 and st.retries == 1000 and st.delivered == 2
        assert st.delivered + st.dropped == st.considered == 3
    finally:
        r.close()


def test_stuck_odd_seq_with_a_live_writer_waits_without_spinning(shm_dir, name):
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=8) as w:
        for i in range(4):
            w.publish(np.full(SHAPE, i, np.uint8))
        off = slot_off(2)
        w._q[off // 8] += 1  # a broken writer left frame 2's slot odd
        r = framering.Reader(name, dir=shm_dir, start="oldest")
        try:
            assert r.read(timeout=30).number == 1
            with pytest.raises(framering.Timeout):
                r.read(timeout=0.5)
            # Bursts of 1000 tries, each followed by a futex sleep of up to
            # 100 ms: a few thousand tries in 0.5 s, not millions.
            assert 1000 <= r.stats.retries <= 20000
        finally:
            r.close()


@pytest.mark.parametrize("off,fmt,value,text", [
    (36, "<I", 99, "unknown pixel format 99"),
    (48, "<Q", 1 << 40, "exceeds slot capacity"),
    (24, "<I", 0, "width and height"),
    (40, "<I", 3, "stride 3"),
    (44, "<I", 5000, "metadata"),
    (32, "<I", 4, "channels"),
])
def test_corrupt_slot_header_is_counted_and_skipped(shm_dir, name, off, fmt, value, text):
    path = make_ring(shm_dir, name, frames=4)
    patch(path, slot_off(2) + off, fmt, value)
    r = framering.Reader(name, dir=shm_dir, start="oldest")
    try:
        assert r.read(timeout=30).number == 1
        with pytest.raises(framering.Corrupt, match=text):
            r.read(timeout=30)
        assert r.read(timeout=30).number == 3
        st = r.stats
        assert (st.corrupt, st.delivered, st.considered) == (1, 2, 3)
    finally:
        r.close()
    with framering.Reader(name, dir=shm_dir, start="oldest") as r:
        with r.view(timeout=30):
            pass
        with pytest.raises(framering.Corrupt, match=text):  # a view of frame 2
            with r.view(timeout=30):
                pass
        v = r.view(timeout=30)
        with v:
            assert v.number == 3
        assert r.stats.corrupt == 1 and r.stats.delivered == 2


def test_takeover_does_not_believe_a_stray_frame_number(shm_dir, name):
    path = make_ring(shm_dir, name, frames=4)
    patch(path, slot_off(3) + 8, "<Q", 3 + 8 * 1000)  # a stray write into frame 3's FrameNo
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=8) as w:
        assert w.next_number == 5


def test_takeover_raises_head_to_a_frame_committed_after_the_head_store(shm_dir, name):
    path = make_ring(shm_dir, name, frames=4)
    patch(path, L.OFF_HEAD, "<Q", 3)  # the writer died between slot commit and Head store
    with framering.Writer(name, shape=SHAPE, dir=shm_dir, slots=8) as w:
        assert w.next_number == 5


def test_geometry_change_carries_numbering(shm_dir, name):
    make_ring(shm_dir, name, frames=6)
    with framering.Writer(name, shape=(32, 32, 1), dir=shm_dir, slots=4) as w:
        assert (w.generation, w.next_number) == (2, 7)
        sb = w.superblock()
        assert sb["frames_total"] == 6 and sb["bytes_total"] == 6 * 16 * 16 * 3


def test_stale_temporary_files(shm_dir, name):
    old = os.path.join(shm_dir, L.TMP_PREFIX + name + ".0123456789abcdef")
    fresh = os.path.join(shm_dir, L.TMP_PREFIX + name + ".fedcba9876543210")
    locked = os.path.join(shm_dir, L.TMP_PREFIX + name + ".00000000000000aa")
    for p in (old, fresh, locked):
        with open(p, "wb") as f:
            f.write(b"x" * 100)
    past = time.time() - 60
    os.utime(old, (past, past))
    os.utime(locked, (past, past))
    fd = os.open(locked, os.O_RDWR)
    try:
        assert ofd_lock_write(fd)  # a creator still building it
        framering.Writer(name, shape=SHAPE, dir=shm_dir).close()
        assert not os.path.exists(old)
        assert os.path.exists(fresh) and os.path.exists(locked)
    finally:
        os.close(fd)
    assert remove_stale_tmp(shm_dir) == [locked]
    assert os.path.exists(fresh)


def test_missing_ring_and_bad_name(shm_dir, name):
    with pytest.raises(framering.NotFound, match="does not exist"):
        framering.Reader(name, dir=shm_dir)
    with pytest.raises(framering.Timeout, match="did not appear"):
        framering.Reader(name, dir=shm_dir, wait=True, timeout=0.3)
    with pytest.raises(framering.InvalidName):
        framering.Reader("../etc/passwd", dir=shm_dir)
    with pytest.raises(framering.InvalidName):
        framering.Writer("a/b", shape=SHAPE, dir=shm_dir)
    with pytest.raises(framering.UnsafeFile):
        framering.Writer(name, shape=SHAPE, dir=shm_dir, mode=0o666)


def test_futex_fatal_errors_are_raised_not_retried():
    from framering._sys import futex_wait
    with pytest.raises(framering.FutexError, match="Bad address"):
        futex_wait(8, 0, 0.01)


def test_futex_uses_the_full_64_bit_address(shm_dir, name):
    from framering._sys import futex_wait
    with framering.Writer(name, shape=SHAPE, dir=shm_dir):
        with framering.Reader(name, dir=shm_dir) as r:
            addr = r._notify_addr
            assert addr > 1 << 32  # a mapping on x86-64/arm64 Linux: truncating it would fault
            v = r._i[L.I_NOTIFY]
            futex_wait(addr, v + 1, 5)  # value differs: EAGAIN at once, no error
            futex_wait(addr, v, 0.01)  # ETIMEDOUT: no error
