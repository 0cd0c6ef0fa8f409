"""The writer's open procedure (PROTOCOL-DECISIONS D1): the fallback
without O_TMPFILE, the re-check after locking, heartbeat and wake-ups."""

import errno
import os
import threading

import numpy as np
import pytest

import framering
from framering import _layout as L
from framering import writer as W
from framering._sys import futex_wait

SHAPE = (8, 8, 3)


def no_tmpfile(monkeypatch):
    real = os.open

    def fake(path, flags, mode=0o777, **kw):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "no O_TMPFILE here")
        return real(path, flags, mode, **kw)
    monkeypatch.setattr(W.os, "open", fake)


def test_fallback_without_o_tmpfile_creates_and_replaces(shm_dir, name, monkeypatch):
    no_tmpfile(monkeypatch)
    with framering.Writer(name, shape=SHAPE, dir=shm_dir) as w:
        w.publish(np.zeros(SHAPE, np.uint8))
        assert w.generation == 1
    with framering.Writer(name, shape=(16, 16, 1), dir=shm_dir) as w:  # another geometry: replaced
        assert (w.generation, w.next_number) == (2, 2)
    assert sorted(os.listdir(shm_dir)) == [L.FILE_PREFIX + name]  # no temporary file left
    with framering.Reader(name, dir=shm_dir) as r:
        assert r.geometry == framering.Geometry(8, 256, 4096)


def test_fresh_ring_is_locked_before_it_has_a_name(shm_dir, name, monkeypatch):
    """Between open(O_TMPFILE) and linkat the file has no name; by the time
    it has one it is formatted and locked: a reader never sees it half-made."""
    seen = []
    real_link = os.link

    def spy(src, dst, **kw):
        seen.append(sorted(os.listdir(shm_dir)))
        return real_link(src, dst, **kw)
    monkeypatch.setattr(W.os, "link", spy)
    with framering.Writer(name, shape=SHAPE, dir=shm_dir):
        with framering.Reader(name, dir=shm_dir) as r:
            assert r.writer_state()[0] == "alive"
    assert seen == [[]]  # one link, made while the directory was still empty


def test_file_replaced_between_open_and_lock_is_not_written(shm_dir, name, monkeypatch):
    """D1 step 2: after locking, the writer checks that its descriptor is
    still the file at the path; if another writer replaced it meanwhile it
    starts over (and meets that writer's file) instead of writing an
    unlinked file: no split brain."""
    path = L.ring_path(shm_dir, name)
    framering.Writer(name, shape=SHAPE, dir=shm_dir).close()
    old_ino = os.stat(path).st_ino
    real_lock = W.ofd_lock_write
    calls = []

    def lock(fd):
        if not calls:
            # Another writer replaces the ring right now.
            calls.append(1)
            other = framering.Writer("other-" + name[:30], shape=SHAPE, dir=shm_dir)
            other.close()
            os.rename(L.ring_path(shm_dir, "other-" + name[:30]), path)
        return real_lock(fd)
    monkeypatch.setattr(W, "ofd_lock_write", lock)
    with framering.Writer(name, shape=SHAPE, dir=shm_dir) as w:
        ino = os.stat(path).st_ino
        assert ino != old_ino and os.fstat(w._fd).st_ino == ino  # it holds the file at the path
        assert w.generation == 2  # the replacement's first writer was generation 1


def test_heartbeat_thread_stops_at_close(shm_dir, name):
    w = framering.Writer(name, shape=SHAPE, dir=shm_dir, heartbeat=0.01)
    t = w._hb
    assert t.is_alive() and t.daemon
    w.close()
    assert not t.is_alive()
    w.close()  # idempotent


def test_every_commit_bumps_notify_and_wakes_waiters(shm_dir, name):
    with framering.Writer(name, shape=SHAPE, dir=shm_dir) as w, framering.Reader(name, dir=shm_dir) as r:
        before = r.superblock()["notify"]
        for _ in range(5):
            w.publish(np.zeros(SHAPE, np.uint8))
        assert r.superblock()["notify"] == (before + 5) & 0xFFFFFFFF
        done = threading.Event()
        tid = []
        v = r.superblock()["notify"]

        def waiter():
            tid.append(threading.get_native_id())
            futex_wait(r._notify_addr, v, 20)  # only a FUTEX_WAKE ends this before 20 s
            done.set()
        t = threading.Thread(target=waiter)
        t.start()
        try:
            # Wait until the thread sleeps in futex(2) on the notify word
            # (x86-64: syscall 202; arm64: 98), then publish exactly once.
            want = "0x%x" % r._notify_addr
            for _ in range(4000):
                if tid:
                    try:
                        sc = open("/proc/self/task/%d/syscall" % tid[0]).read().split()
                    except OSError:
                        sc = []
                    if len(sc) > 1 and sc[0] in ("202", "98") and sc[1] == want:
                        break
                done.wait(0.005)
            else:
                pytest.skip("cannot see the waiter thread's system call in /proc")
            assert not done.is_set()
            w.publish(np.zeros(SHAPE, np.uint8))
            assert done.wait(10), "the commit did not wake the futex waiter"
        finally:
            t.join(30)


def test_no_space_leaves_nothing_behind(shm_dir, name, monkeypatch):
    def full(fd, off, n):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(W.os, "posix_fallocate", full)
    with pytest.raises(framering.NoSpace, match="needs %d bytes" % framering.Geometry(8, 192, 4096).file_size):
        framering.Writer(name, shape=SHAPE, dir=shm_dir)
    assert os.listdir(shm_dir) == []


def test_writer_dropped_without_close_releases_the_ring(shm_dir, name):
    import gc
    w = framering.Writer(name, shape=SHAPE, dir=shm_dir)
    hb = w._hb
    del w
    gc.collect()
    assert not hb.is_alive()
    with framering.Writer(name, shape=SHAPE, dir=shm_dir) as w2:  # not Busy: the lock went with it
        assert w2.generation == 2
