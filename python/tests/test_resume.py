"""When a reader resumes on the same file after the writer was gone
(PROTOCOL.md section 10). The tests hold the OFD write lock themselves, as
a new writer does while it prefaults the file before its takeover or
builds a replacement, and count the reader's futex wait slices by wrapping
the reader module's futex_wait. Nothing here depends on how long anything
takes."""

import os
import struct

import pytest

import framering
import framering.reader as reader_mod
from framering import _layout as L
from framering import pattern
from framering._sys import monotonic_ns, ofd_lock_write

IDLE_SLICES = 5  # wait slices the reader must sit through without resuming


def pub(w, n=1):
    for _ in range(n):
        a = w.reserve()
        pattern.fill(a.reshape(-1), w.next_number)
        w.commit()


def poke64(path, off, v):
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.pwrite(fd, struct.pack("<Q", v), off)
    finally:
        os.close(fd)


def peek64(path, off):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return struct.unpack("<Q", os.pread(fd, 8, off))[0]
    finally:
        os.close(fd)


def lock_ring(path):
    """Take the OFD write lock on the ring's file and stamp nothing; close
    the descriptor to drop it."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    assert ofd_lock_write(fd)
    return fd


class Slices:
    """Wraps the reader's futex_wait: counts the wait slices of r, notes
    the first one that ran after a resume, calls back() at slice
    IDLE_SLICES and after() at every slice from then on."""

    def __init__(self, monkeypatch, r, back, after=None):
        self.n, self.resumed_before, self.backed = 0, 0, False
        real = reader_mod.futex_wait

        def wait(addr, val, timeout_s):
            self.n += 1
            if not self.backed and r.resumes and not self.resumed_before:
                self.resumed_before = self.n
            if self.n == IDLE_SLICES and not self.backed:
                self.backed = True
                back()
            elif self.backed and after is not None:
                after()
            return real(addr, val, timeout_s)

        monkeypatch.setattr(reader_mod, "futex_wait", wait)

    def check(self, r):
        assert self.resumed_before == 0, \
            "the reader resumed before any writer completed a takeover (wait slice %d)" % self.resumed_before
        assert self.n >= IDLE_SLICES
        st = r.stats
        assert (st.writer_gone, st.resumes, st.writer_up) == (1, 1, True)


def cancel_once_resumed(r):
    def after():
        if r.resumes:
            r.cancel()
    return after


@pytest.mark.parametrize("how", ["generation", "takeover"])
def test_no_resume_on_lock_without_takeover(shm_dir, name, monkeypatch, how):
    """A writer closed; something holds the lock again but Generation did
    not move (a writer preparing or replacing the file): no resume, however
    fresh the old heartbeat, until Generation moves."""
    w = framering.Writer(name, shape=(4, 4, 3), dir=shm_dir, slots=4)
    path, gen = w.path, w.generation
    w2 = None
    lk = None
    pub(w, 2)
    # hung_after of an hour: the closed writer's heartbeat stays fresh, so
    # D2 alone would call the locker a live writer.
    r = framering.Reader(name, dir=shm_dir, wait_slice=0.005, hung_after=3600)
    try:
        assert r.read(timeout=5).number == 2
        w.close()
        with pytest.raises(framering.WriterGone, match="exited or closed"):
            r.read(timeout=5)
        lk = lock_ring(path)

        if how == "generation":
            s = Slices(monkeypatch, r, lambda: poke64(path, L.OFF_GENERATION, gen + 1), cancel_once_resumed(r))
            with pytest.raises(framering.Cancelled):
                r.read(timeout=30)
        else:
            def takeover():
                nonlocal lk, w2
                os.close(lk)
                lk = None
                w2 = framering.Writer(name, shape=(4, 4, 3), dir=shm_dir, slots=4)  # in place
                pub(w2, 1)
            s = Slices(monkeypatch, r, takeover)
            f = r.read(timeout=30)
            assert (f.number, f.generation, w2.generation) == (3, gen + 1, gen + 1)
        s.check(r)
    finally:
        if lk is not None:
            os.close(lk)
        if w2 is not None:
            w2.close()
        r.close()


def test_hung_writer_resumes_with_same_generation(shm_dir, name, monkeypatch):
    """A hung writer (the lock held, its heartbeat stale) that stamps its
    heartbeat again is back with the same Generation; while the heartbeat
    stays stale the reader waits."""
    w = framering.Writer(name, shape=(4, 4, 3), dir=shm_dir, slots=4)
    path, gen = w.path, w.generation
    pub(w, 2)
    w.close()
    # The "writer": the lock held, a heartbeat from 1 ns after boot.
    lk = lock_ring(path)
    poke64(path, L.OFF_HEARTBEAT, 1)
    r = framering.Reader(name, dir=shm_dir, wait_slice=0.005, hung_after=10)
    try:
        assert r.read(timeout=5).number == 2
        with pytest.raises(framering.WriterGone, match="hung or stopped"):
            r.read(timeout=5)
        s = Slices(monkeypatch, r, lambda: poke64(path, L.OFF_HEARTBEAT, monotonic_ns()), cancel_once_resumed(r))
        with pytest.raises(framering.Cancelled):
            r.read(timeout=30)
        s.check(r)
        assert peek64(path, L.OFF_GENERATION) == gen
    finally:
        os.close(lk)
        r.close()
