"""The reading side: open a ring read-only, follow it, copy or view frames.

See :class:`Reader`. A Reader is not safe for concurrent use by several
threads, except that :meth:`Reader.close` and :meth:`Reader.cancel` may be
called from any thread (or a signal handler) while another thread reads.
"""

import errno
import os
import stat
import threading
import time

import numpy as np

from . import _layout as L
from . import errors
from ._sys import Fence, futex_wait, futex_wake, monotonic_ns, ofd_write_locked

ORDERED, LATEST = "ordered", "latest"
_MODES = {"ordered": ORDERED, "all": ORDERED, "latest": LATEST}
_STARTS = ("newest", "next", "oldest")
# Consecutive torn results on one slot before the reader asks whether the
# writer is still alive (decision D5).
_TORN_PROBE = 1000

_unpack_slot = L.SLOT_FIELDS.unpack_from


class Frame:
    """A frame read out of a ring.

    ``image`` is the pixels as a numpy array: (H, W, C) with the format's
    dtype (uint8, or little-endian uint16 for gray16), rows ``stride``
    bytes apart; for ``raw`` a 1-D uint8 array of the payload. ``data`` is
    the whole payload (``stride * height`` bytes, row padding included) as
    a 1-D uint8 array. From :meth:`Reader.read` both are private copies;
    ``meta`` is the frame's metadata as bytes. ``number``, ``generation``,
    ``format`` (a number; ``format_name`` its name), ``width``, ``height``,
    ``channels``, ``stride``, ``capture_ns``, ``publish_ns`` (both
    CLOCK_MONOTONIC) and ``wall_ns`` (Unix) come from the slot header.
    """

    __slots__ = ("number", "image", "data", "meta", "_h")

    # _h: the header fields as unpacked: FrameNo, Generation, Width, Height,
    # Channels, Format, Stride, MetaLen, PayloadLen, PublishNs, CaptureNs, WallNs.
    generation = property(lambda self: self._h[1])
    width = property(lambda self: self._h[2])
    height = property(lambda self: self._h[3])
    channels = property(lambda self: self._h[4])
    format = property(lambda self: self._h[5])
    stride = property(lambda self: self._h[6])
    publish_ns = property(lambda self: self._h[9])
    capture_ns = property(lambda self: self._h[10])
    wall_ns = property(lambda self: self._h[11])

    @property
    def format_name(self):
        return L.format_name(self.format)

    @property
    def shape(self):
        return self.image.shape

    def __repr__(self):
        return "<Frame %d gen %d %s %s>" % (self.number, self.generation, self.format_name,
                                            "x".join(map(str, self.image.shape)))


class Stats:
    """A snapshot of a reader's counters (the same as Go's consumer.Stats).

    For every reader, ``delivered + dropped == considered``, the number of
    frames published in its windows: a window runs from ``window_start`` to
    ``last``, and a new one opens at every reset (numbering started again).
    """

    __slots__ = ("delivered", "lapped", "skipped", "overwritten", "corrupt", "retries", "writer_gone",
                 "resumes", "resets", "lag", "window_start", "last", "considered", "writer_up")

    @property
    def dropped(self):
        """Every frame of the windows that was not delivered."""
        return self.lapped + self.skipped + self.overwritten + self.corrupt

    def as_dict(self):
        d = {k: getattr(self, k) for k in self.__slots__}
        d["dropped"] = self.dropped
        return d

    def __repr__(self):
        return "Stats(%s)" % ", ".join("%s=%s" % kv for kv in self.as_dict().items())


class Reader:
    """Follows ring ``name`` read-only.

    ``mode``: ``"ordered"`` (alias ``"all"``) delivers every frame in order
    and counts the frames it was lapped on; ``"latest"`` delivers the newest
    frame and counts the ones it skipped. ``start``: ``"newest"`` (the
    newest frame at open, else the first one after), ``"next"`` (only frames
    published after open) or ``"oldest"`` (the oldest frame still in the
    ring).

    ``wait``: wait for the ring to appear (and for a writer still creating
    it), up to ``timeout`` seconds (None: forever), instead of raising
    NotFound. ``wait_slice`` bounds one futex sleep, after which the reader
    checks the writer's liveness; ``hung_after`` is how old the writer's
    heartbeat may get before the writer counts as gone. ``spin`` seconds of
    busy polling before each sleep cut the wake-up latency and burn a core.

    Every file check of PROTOCOL.md sections 2 and 11 runs at open: a
    symbolic link, a FIFO or other non-regular file, another owner (unless
    ``allow_other_owner``), a world-writable or (unless
    ``allow_group_writable``) group-writable file, a bad magic, version,
    checksum or geometry, and a short file are refused with an exception.
    """

    def __init__(self, name, dir=L.DEFAULT_DIR, mode=ORDERED, start="newest", wait=False, timeout=None,
                 wait_slice=0.1, hung_after=1.0, spin=0.0, allow_group_writable=False, allow_other_owner=False):
        L.check_name(name)
        if mode not in _MODES:
            raise ValueError("mode %r: use 'ordered' (or 'all') or 'latest'" % (mode,))
        if start not in _STARTS:
            raise ValueError("start %r: use 'newest', 'next' or 'oldest'" % (start,))
        if wait_slice <= 0 or hung_after <= 0 or spin < 0:
            raise ValueError("wait_slice and hung_after must be positive, spin not negative")
        self.name = name
        self.dir = dir or L.DEFAULT_DIR
        self.path = L.ring_path(self.dir, name)
        self.mode = _MODES[mode]
        self._start_mode = start
        self._slice = float(wait_slice)
        self._hung_ns = int(hung_after * 1e9)
        self._spin = float(spin)
        self._allow_gw = allow_group_writable
        self._allow_other = allow_other_owner
        self._lock = threading.Lock()
        self._closed = False
        self._cancel = False
        self._fence = Fence()
        self._fd = None
        self._mm = None
        self._view_out = False
        self._gone = False
        # How the writer went when the reader declared it gone: Generation
        # then, and whether it was hung (section 10: when the same file has
        # a writer again).
        self._gone_gen = 0
        self._gone_hung = False
        # counters
        self.delivered = self.lapped = self.skipped = self.overwritten = self.corrupt = 0
        self.retries = self.writer_gone = self.resumes = self.resets = 0
        self._lag = 0
        self._window_start = 0
        self._last = 0
        self._closed_windows = 0  # frames in windows closed by a reset
        self._head_ok = 0  # the largest Head shown believable (D4)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._attach()
                break
            except (errors.NotFound, errors.Truncated) as e:
                if not wait:
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise errors.Timeout("ring \"%s\" did not appear within %gs in %s; start its producer or check the "
                                         "directory (last: %s)" % (name, timeout, self.dir, e)) from None
                time.sleep(0.02)
        self._start(self._q[L.Q_HEAD], start)

    # ---- open, check, map (sections 2, 8, 11) ----------------------------------

    def _attach(self):
        """Open, check and map the ring's file in place of the one mapped
        before (if any)."""
        path, name = self.path, self.name
        try:
            # O_NONBLOCK: a FIFO planted under the name cannot block the open.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise errors.NotFound("ring \"%s\" does not exist (no %s); start its producer first, or wait for it"
                                  % (name, path)) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise errors.UnsafeFile("ring \"%s\": %s is a symbolic link; refusing to read it: remove it and restart "
                                        "the producer" % (name, path)) from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise errors.UnsafeFile("ring \"%s\": %s: permission denied; ask the producer to open it with a "
                                        "group-readable mode (0640) and join its group" % (name, path)) from None
            raise errors.RingError("ring \"%s\": open %s: %s" % (name, path, e)) from e
        mm = None
        try:
            st = os.fstat(fd)
            why = None
            if not stat.S_ISREG(st.st_mode):
                why = "is not a regular file"
            elif st.st_uid != os.geteuid() and not self._allow_other:
                why = "belongs to uid %d, not to you (uid %d)" % (st.st_uid, os.geteuid())
            elif st.st_mode & 0o002:
                why = "is world-writable (mode %04o)" % (st.st_mode & 0o777)
            elif st.st_mode & 0o020 and not self._allow_gw:
                why = "is group-writable (mode %04o)" % (st.st_mode & 0o777)
            if why:
                raise errors.UnsafeFile("ring \"%s\": unsafe shared-memory file: %s %s; refusing to read it: remove it "
                                        "and restart the producer, or if you trust it pass allow_other_owner / "
                                        "allow_group_writable" % (name, path, why))
            if not L.SUPER_SIZE <= st.st_size <= L.MAX_FILE_SIZE:
                raise errors.Truncated("ring \"%s\": %s is %d bytes; is a producer still creating it? otherwise remove it"
                                       % (name, path, st.st_size))
            try:
                g = L.parse_superblock(os.pread(fd, L.SUPER_SIZE, 0), st.st_size)
            except errors.RingError as e:
                raise type(e)("ring \"%s\": %s; the segment is not a valid framering v%d ring, remove it and restart "
                              "the producer" % (name, e, L.VERSION)) from None
            import mmap
            mm = mmap.mmap(fd, g.file_size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                           prot=mmap.PROT_READ)
            # The mapping is what we read from now on: validate its page too
            # (the file cannot change geometry in place, but be sure).
            g2 = L.parse_superblock(mm[:L.SUPER_SIZE], os.fstat(fd).st_size)  # not shrunk meanwhile
            if g2 != g:
                raise errors.Corrupt("ring \"%s\": the superblock changed while opening it" % name)
        except BaseException:
            if mm is not None:
                mm.close()
            os.close(fd)
            raise
        self._release()
        self._fd, self._mm, self.geometry = fd, mm, g
        self._ident = (st.st_dev, st.st_ino)
        self._q = memoryview(mm).cast("Q")  # single aligned 8-byte loads (PROTOCOL.md section 14)
        self._i = memoryview(mm).cast("I")
        # Every array handed out derives from this one: np.frombuffer holds a
        # buffer export, so the mapping cannot be unmapped under them.
        self._u8 = np.frombuffer(mm, dtype=np.uint8)
        self._notify_addr = self._u8.ctypes.data + L.OFF_NOTIFY
        n = g.slots
        self._mask = n - 1
        self._slot_off = [L.SUPER_SIZE + i * g.slot_stride for i in range(n)]
        self._seq_idx = [o // 8 for o in self._slot_off]
        self._slots = n
        self._payload_offset = g.payload_offset
        self._head_ok = 0
        self._layout_key = None  # layout bytes (24..55) of the last validated header
        self._layout = None
        self._out_obj = self._out_flat = None  # the caller's last out= buffer, as flat bytes

    def _release(self):
        """Drop the current mapping and descriptor. Arrays a caller still
        holds keep the mapping alive (they are memory-safe, and stale)."""
        for attr in ("_q", "_i"):
            v = getattr(self, attr, None)
            if v is not None:
                v.release()
                setattr(self, attr, None)
        self._u8 = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a caller still holds an array over it: it is unmapped when that goes
            self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self):
        """Unmap the segment. A read blocked in another thread returns with
        Closed. Safe to call more than once, from any thread."""
        if self._closed:
            return
        self._closed = True
        addr = getattr(self, "_notify_addr", None)
        if addr is not None and self._mm is not None:
            try:
                futex_wake(addr)
            except errors.FutexError:
                pass
        with self._lock:
            self._release()

    def cancel(self):
        """Make the blocking read in progress (or the next one) raise
        Cancelled, without changing any counter. Safe from another thread or
        a signal handler."""
        self._cancel = True
        addr = getattr(self, "_notify_addr", None)
        if addr is not None and self._mm is not None and not self._closed:
            try:
                futex_wake(addr)
            except errors.FutexError:
                pass

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not self._closed:
                self._closed = True
                self._release()
        except Exception:
            pass

    # ---- superblock ------------------------------------------------------------

    def superblock(self):
        """The live superblock words as a dict (atomic loads)."""
        self._check_open()
        q, i = self._q, self._i
        return {"head": q[L.Q_HEAD], "generation": q[L.Q_GENERATION], "writer_pid": i[L.I_WRITER_PID],
                "writer_start_ns": q[L.Q_WRITER_START], "created_ns": q[L.Q_CREATED],
                "heartbeat_ns": q[L.Q_HEARTBEAT], "notify": i[L.I_NOTIFY],
                "frames_total": q[L.Q_FRAMES_TOTAL], "bytes_total": q[L.Q_BYTES_TOTAL]}

    def _check_open(self):
        if self._closed:
            raise errors.Closed("ring \"%s\": reader is closed" % self.name)

    # ---- liveness (section 10, decision D2) --------------------------------------

    def writer_state(self):
        """(state, why): state is "alive", "starting", "hung", "gone" or
        "unknown"; why is a sentence for the last three."""
        self._check_open()
        return writer_state(self._fd, self._q, self._i, self._hung_ns)

    def _writer_alive(self):
        state, why, _ = self._probe()
        return state in ("alive", "starting"), why

    def _probe(self):
        """(state, why, generation): the writer's liveness, and Generation
        loaded before the lock probe (if the lock is free, any writer that
        takes the file over later bumps Generation past it)."""
        gen = self._q[L.Q_GENERATION]
        state, why = writer_state(self._fd, self._q, self._i, self._hung_ns)
        return state, why, gen

    def _writer_back(self):
        """After writer-gone: has the mapped file had a writer again
        (section 10)? Generation moved (a writer completed its takeover,
        D3, and its frames are in the file, even if it has already gone
        again), or the writer was hung and is alive with a fresh heartbeat
        again. The lock held with the same Generation after a writer that
        was gone (the lock was free) is a new writer still preparing the
        file, or replacing it: not back yet."""
        state, _, gen = self._probe()
        if gen != 0 and gen != self._gone_gen:
            return True
        return self._gone_hung and state in ("alive", "starting")

    # ---- stats -------------------------------------------------------------------

    @property
    def stats(self):
        s = Stats()
        s.delivered, s.lapped, s.skipped = self.delivered, self.lapped, self.skipped
        s.overwritten, s.corrupt, s.retries = self.overwritten, self.corrupt, self.retries
        s.writer_gone, s.resumes, s.resets = self.writer_gone, self.resumes, self.resets
        s.lag, s.window_start, s.last = self._lag, self._window_start, self._last
        cur = self._last - self._window_start + 1 if self._last >= self._window_start > 0 else 0
        s.considered = self._closed_windows + cur
        s.writer_up = not self._gone
        return s

    # ---- the window (section 8) ---------------------------------------------------

    def _start(self, head, start):
        n = self.geometry.slots
        if start == "next":
            nxt = head + 1
        elif start == "oldest":
            nxt = head - n + 1 if head > n else 1
        else:
            nxt = max(head, 1)
        self.next = nxt
        self._window_start = nxt
        self._last = nxt - 1

    def _pick(self, deadline):
        """Wait until there is a frame to read. Returns (n, head, lapped,
        skipped): the frame to read and what choosing it passes over (not
        yet counted: the caller counts it once the attempt shows the head
        was believable)."""
        spin_until = None
        while True:
            if self._closed:
                raise errors.Closed("ring \"%s\": reader is closed" % self.name)
            if self._cancel:
                self._cancel = False
                raise errors.Cancelled("ring \"%s\": read cancelled" % self.name)
            if self._gone:
                self._await_writer(deadline)
            q = self._q
            head = q[L.Q_HEAD]
            if head >= L.ABSURD:
                raise errors.Corrupt("ring \"%s\": corrupt ring segment: Head is %d, which no writer can have "
                                     "published; remove the ring and restart the producer" % (self.name, head))
            if head > self._head_ok + 1 or head < self._head_ok:
                # A jump of more than one frame (or back): make sure the Head
                # can be believed before counting anything by it (D4).
                why = self._head_problem(head)
                if why:
                    raise errors.Corrupt("ring \"%s\": corrupt ring segment: %s; remove the ring and restart the "
                                         "producer" % (self.name, why))
                self._head_ok = head
            elif head == self._head_ok + 1:
                self._head_ok = head
            nxt = self.next
            if head + 1 < nxt:
                # The numbering went back: a ring re-created from scratch.
                # Close this window, open one at the oldest frame.
                self.resets += 1
                if self._last >= self._window_start:
                    self._closed_windows += self._last - self._window_start + 1
                self._start(head, "oldest")
                nxt = self.next
            if nxt <= head:
                if self.mode is LATEST:
                    if head > nxt:
                        return head, head, 0, head - nxt
                    return nxt, head, 0, 0
                slots = self.geometry.slots
                if head - nxt >= slots:
                    # Lapped: resume half a ring behind the head, not at the
                    # oldest slot, which the writer overwrites next.
                    resume = head - slots // 2 + 1
                    return resume, head, resume - nxt, 0
                return nxt, head, 0, 0
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.Timeout("ring \"%s\": no frame within the timeout; is the producer running?" % self.name)
            if self._spin > 0:
                now = time.monotonic()
                if spin_until is None:
                    spin_until = now + self._spin
                if now < spin_until:
                    continue
            self._sleep(head, deadline)

    def _head_problem(self, head):
        """Why Head cannot be believed, or None: the slot of frame Head
        holds an older frame, or Head is more than a ring ahead of every
        frame number in the slots (D4)."""
        if head == 0:
            return None
        q, fence = self._q, self._fence
        si = self._seq_idx[head & self._mask]
        for _ in range(100):
            s1 = q[si]
            fence()
            fn = q[si + 1]  # FrameNo, under the seqlock
            fence()
            if s1 & 1 or q[si] != s1:
                continue
            if fn >= head:
                return None
            if fn > 0:
                return "Head is %d but its slot holds frame %d" % (head, fn)
            best = plausible_frames(q, self._seq_idx, self.geometry.slots)
            if best and head > best + self.geometry.slots:
                return "Head is %d, more than a ring ahead of the newest frame in the slots (%d)" % (head, best)
            return None
        return None  # being written all along: the read itself will tell

    def _sleep(self, head, deadline):
        """One futex wait slice for a head other than head. If no frame came
        and the writer is not alive, raise WriterGone (once)."""
        q = self._q
        v = self._i[L.I_NOTIFY]  # 1. Notify first,
        if q[L.Q_HEAD] != head:  # 2. then Head: no lost wake-up
            return
        slice_s = self._slice
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            slice_s = min(slice_s, left)
        futex_wait(self._notify_addr, v, slice_s)
        if q[L.Q_HEAD] != head or self._closed or self._cancel:
            return
        state, why, gen = self._probe()
        if state not in ("alive", "starting"):
            self._gone = True
            self._gone_gen = gen
            self._gone_hung = state == "hung"
            self.writer_gone += 1
            raise errors.WriterGone("ring \"%s\": ring writer is gone: %s; the next read waits for a writer to come back"
                                    % (self.name, why))

    def _await_writer(self, deadline):
        """Wait until a writer is back (section 10): the path names another
        file (re-map it), or the mapped file has a writer again
        (_writer_back). Sleeps on the futex meanwhile: a takeover and a
        replacement both bump Notify."""
        last_err = None
        while True:
            if self._closed:
                raise errors.Closed("ring \"%s\": reader is closed" % self.name)
            if self._cancel:
                self._cancel = False
                raise errors.Cancelled("ring \"%s\": read cancelled" % self.name)
            v = self._i[L.I_NOTIFY]  # before the checks: a takeover after them wakes the wait
            if self._replaced():
                try:
                    self._attach()
                    break
                except errors.RingError as e:
                    last_err = e  # not (yet) a ring we can read: keep waiting
            elif self._writer_back():
                break
            if deadline is not None and time.monotonic() >= deadline:
                msg = "ring \"%s\": no writer came back within the timeout" % self.name
                if last_err is not None:
                    msg += " (the file under its name: %s)" % last_err
                raise errors.Timeout(msg)
            slice_s = min(self._slice, 0.05)
            if deadline is not None:
                slice_s = max(min(slice_s, deadline - time.monotonic()), 0.001)
            futex_wait(self._notify_addr, v, slice_s)
        self._gone = False
        self.resumes += 1

    def _replaced(self):
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != self._ident

    # ---- the seqlock read (section 6) --------------------------------------------

    def _acquire(self, timeout, out, copy):
        """The read loop shared by read() and views. Returns (Frame, s1).

        The common case (following the writer, Head one frame further at
        most, the same frame layout as the previous frame) takes a short
        path: no head check beyond the slot read itself, and the header's
        layout fields are compared with those last validated instead of
        validated again."""
        if self._closed:
            raise errors.Closed("ring \"%s\": reader is closed" % self.name)
        if self._view_out:
            raise errors.ViewOutstanding("ring \"%s\": previous view not released; leave its with-block first"
                                         % self.name)
        deadline = None if timeout is None else time.monotonic() + timeout
        fence = self._fence
        ordered = self.mode is ORDERED
        torn_n, torn_count = 0, 0
        while True:
            q = self._q
            head = q[L.Q_HEAD]
            nxt = self.next
            hok = self._head_ok
            if (hok <= head <= hok + 1 and nxt <= head and head - nxt < self._slots
                    and (ordered or head == nxt) and not (self._gone or self._cancel or self._closed)):
                n, lap, skip = nxt, 0, 0                               # fast pick
                self._head_ok = head
            else:
                n, head, lap, skip = self._pick(deadline)
                q = self._q
            mi = n & self._mask
            off = self._slot_off[mi]
            si = self._seq_idx[mi]
            s1 = q[si]                                                 # 1. load Seq
            fence()                                                    #    acquire
            if s1 & 1:                                                 # 2. odd: writer in the slot
                if q[L.Q_HEAD] + 1 >= n + self._slots:
                    self._count_pass(lap, skip)
                    self._drop(n)                                      # being overwritten: lost
                    continue
                pass  # odd: the writer is in the slot, read it again
            else:
                mm = self._mm
                hb = mm[off:off + L.SLOT_HEADER_SIZE]                  # 3. copy the header
                h = _unpack_slot(hb, L.SLOT_FIELDS_OFF)
                (frame_no, gen, width, height, channels, fmt, stride, meta_len, plen) = h[:9]
                if frame_no != n:                                      # 4. another frame
                    fence()
                    if q[si] != s1:
                        pass  # torn header: read it again
                    elif 0 < frame_no < n <= head:
                        # The head says frame n was committed, the slot holds an
                        # older frame: the Head cannot be believed (D4).
                        raise errors.Corrupt("ring \"%s\": Head is %d but the slot of frame %d holds frame %d: the "
                                             "superblock is corrupt; remove the ring and restart the producer"
                                             % (self.name, head, n, frame_no))
                    else:
                        self._count_pass(lap, skip)
                        self._drop(n)                                  # lapped, aborted or repaired
                        continue
                else:
                    key = hb[24:56]                                    # 5. validate the copy
                    why = None
                    if key != self._layout_key:
                        why = L.header_problem(self.geometry, n, width, height, channels, fmt, stride, meta_len,
                                               plen)
                        if why is None:
                            self._layout_key = key
                            self._layout = _layout_of(fmt, width, height, channels, stride)
                    if why is not None:
                        fence()
                        if q[si] == s1:
                            self._count_pass(lap, skip)
                            self._corrupt(n)
                            raise errors.Corrupt("ring \"%s\": corrupt ring segment: %s; frame %d skipped; if this "
                                                 "repeats the writer is broken, restart it" % (self.name, why, n))
                    else:
                        poff = off + self._payload_offset
                        src = self._u8[poff:poff + plen]
                        moff = off + L.SLOT_HEADER_SIZE
                        if copy:
                            if out is None:
                                data = src.copy()                      # 6. copy payload and metadata
                            else:
                                if out is self._out_obj:
                                    data = self._out_flat              # validated on first use
                                else:
                                    data = _out_bytes(out)
                                    self._out_obj, self._out_flat = out, data
                                if len(data) < plen:
                                    fence()
                                    if q[si] != s1:
                                        data = None
                                    else:
                                        raise errors.FrameTooLarge(
                                            "ring \"%s\": read frame %d: buffer of %d bytes, the frame has %d; "
                                            "size buffers by geometry.payload_cap" % (self.name, n, len(data), plen))
                                else:
                                    data = data[:plen]
                                    np.copyto(data, src)
                            meta = mm[moff:moff + meta_len] if meta_len else b""
                        else:
                            data = src
                            meta = self._u8[moff:moff + meta_len]
                        fence()                                        # 7. read fence
                        # 8, 9. For a view this early check hands out no header
                        # already known to be torn; the check at the end of the
                        # view is the one that counts.
                        if data is not None and q[si] == s1:
                            if lap or skip:
                                self._count_pass(lap, skip)
                            f = Frame()
                            f.number, f._h, f.data, f.meta = n, h, data, meta
                            f.image = self._layout(data)
                            self.next = n + 1
                            self._lag = head - n if head > n else 0
                            return f, s1
            # torn or odd: read the same frame again
            self._count_pass(lap, skip)
            self.retries += 1
            if n == torn_n:
                torn_count += 1
            else:
                torn_n, torn_count = n, 1
            if torn_count % _TORN_PROBE == 0:
                # A slot that stays odd (or keeps changing) for this long: is
                # anyone writing it? (decision D5)
                alive, why = self._writer_alive()
                if not alive:
                    self._corrupt(n)
                    raise errors.Corrupt("ring \"%s\": the slot of frame %d stayed odd (half-written) with no live "
                                         "writer (%s); frame %d skipped" % (self.name, n, why, n))
                if deadline is not None and time.monotonic() >= deadline:
                    raise errors.Timeout("ring \"%s\": frame %d stayed locked by the writer past the timeout"
                                         % (self.name, n))
                # A live writer holds it: sleep on the futex, do not spin.
                v = self._i[L.I_NOTIFY]
                futex_wait(self._notify_addr, v, self._slice)
            elif torn_count & 15 == 0:
                time.sleep(0)

    def _count_pass(self, lap, skip):
        if lap:
            self.lapped += lap
            self.next += lap
            self._last = self.next - 1
        if skip:
            self.skipped += skip
            self.next += skip
            self._last = self.next - 1

    def _drop(self, n):
        self.next = n + 1
        self.lapped += 1
        self._last = n

    def _corrupt(self, n):
        self.next = n + 1
        self.corrupt += 1
        self._last = n

    # ---- public reads ----------------------------------------------------------------

    def read(self, timeout=None, out=None):
        """Wait for the next frame (per the mode) and return it as a Frame
        holding private copies. ``out``: a writable C-contiguous numpy
        array (or bytearray) of at least the frame's payload bytes to copy
        into; the Frame's ``data`` and ``image`` then view it.

        Raises Timeout (after ``timeout`` seconds; None waits forever),
        WriterGone (once per outage; the next read waits for a writer),
        Corrupt (a frame header or the Head failed validation; the frame
        is skipped), FrameTooLarge (``out`` too small; nothing is
        consumed), Cancelled, Closed. A frame the writer changed during the
        copy is never returned.
        """
        with self._lock:
            f, _ = self._acquire(timeout, out, True)
            self.delivered += 1
            self._last = f.number
            return f

    def view(self, timeout=None):
        """A context manager over the next frame, in place (no copy)::

            with reader.view() as img:     # read-only ndarray aliasing the slot
                result = process(img)
            # here the frame was valid for the whole block

        Leaving the block checks the slot's seqlock: if the writer reused
        the slot meanwhile, the frame counts as overwritten and the exit
        raises FrameOverwritten (also when the block raised: the original
        exception is its ``__context__``), so a result computed from a
        stale view cannot pass silently. The View object itself carries the
        frame's fields (``v.frame``), ``v.meta`` and ``v.valid``.

        While a view is out, read() and view() raise ViewOutstanding.
        The array stays memory-safe after the block, but its contents are
        then meaningless: copy what you need inside the block.
        """
        return View(self, timeout)

    def __iter__(self):
        """Yield frames (copies) in the reader's mode until the writer goes
        away (like an end of file: iterating again waits for a writer to
        come back) or the reader is closed or cancelled. Corrupt propagates;
        so does Timeout, which a bare iteration never raises."""
        while True:
            try:
                yield self.read()
            except (errors.WriterGone, errors.Closed, errors.Cancelled):
                return


def _out_bytes(out):
    a = out if isinstance(out, np.ndarray) else np.frombuffer(out, dtype=np.uint8)
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError("out must be a writable C-contiguous array")
    return a.reshape(-1).view(np.uint8)


def _layout_of(fmt, width, height, channels, stride):
    """A function that turns a payload array into the frame's image."""
    if fmt == L.RAW:
        return _identity
    _, ch, bps, dtype = L.FORMATS[fmt]
    if bps == 1 and stride == width * ch:
        shape = (height, width, ch)
        return lambda data: data.reshape(shape)
    return lambda data: _image(data, fmt, width, height, channels, stride)


def _identity(data):
    return data


def _image(data, fmt, width, height, channels, stride):
    """The pixels of a payload as an (H, W, C) array over data (raw: data)."""
    if fmt == L.RAW:
        return data
    _, ch, bps, dtype = L.FORMATS[fmt]
    if stride == width * ch * bps:
        return data.view(dtype).reshape(height, width, ch)
    return np.ndarray((height, width, ch), dtype=dtype, buffer=data, strides=(stride, ch * bps, bps))


def plausible_frames(q, seq_idx, slots):
    """The largest frame number in the slots that is not a stray value (not
    more than a ring above every other one), or 0. A racy scan of the
    FrameNo words: good enough to judge a Head (D3, D4)."""
    frames = sorted(fn for fn in (q[i + 1] for i in seq_idx) if 0 < fn < L.ABSURD)
    while len(frames) > 1 and frames[-1] > frames[-2] + slots:
        frames.pop()
    return frames[-1] if frames else 0


def writer_state(fd, q, i, hung_ns):
    """The writer's liveness as the superblock and the lock show it
    (decision D2): (state, why)."""
    pid = i[L.I_WRITER_PID]
    try:
        locked = ofd_write_locked(fd)
    except OSError as e:
        return "unknown", "cannot probe the writer lock: %s" % e
    if not locked:
        return "gone", "writer pid %d exited or closed the ring" % pid
    if q[L.Q_GENERATION] == 0:
        return "starting", ""
    hb = q[L.Q_HEARTBEAT]
    if hb == 0:
        return "alive", ""  # not stamped yet: judge by the lock alone
    age = monotonic_ns() - hb
    if hb >= L.ABSURD or age > hung_ns:
        return "hung", ("writer pid %d is alive but its heartbeat is %.3fs old (hung or stopped)"
                        % (pid, age / 1e9))
    return "alive", ""


class View:
    """A frame read in place; see :meth:`Reader.view`."""

    __slots__ = ("_r", "_timeout", "frame", "_s1", "_seq_idx", "_state", "_at")

    def __init__(self, reader, timeout):
        self._r = reader
        self._timeout = timeout
        self.frame = None
        self._state = "new"

    def __enter__(self):
        r = self._r
        if self._state != "new":
            raise errors.RingError("ring \"%s\": a View is entered once; call reader.view() again" % r.name)
        with r._lock:
            f, s1 = r._acquire(self._timeout, None, False)
            r._view_out = True
        self.frame, self._s1 = f, s1
        self._seq_idx = r._seq_idx[f.number & r._mask]
        self._state = "out"
        return f.image

    @property
    def meta(self):
        """The frame's metadata, a read-only array aliasing the slot."""
        return self.frame.meta if self.frame is not None else None

    @property
    def number(self):
        return self.frame.number if self.frame is not None else 0

    @property
    def valid(self):
        """While the view is out: whether the slot still holds the frame
        unchanged. After the block: whether it did for the whole block."""
        if self._state == "out":
            r = self._r
            if r._q is None:
                return False
            r._fence()
            return r._q[self._seq_idx] == self._s1
        return self._state == "valid"

    def check(self):
        """Raise FrameOverwritten now if the slot was already overwritten
        (for long computations that want to stop early)."""
        if self._state == "out" and not self.valid:
            raise errors.FrameOverwritten("ring \"%s\": frame %d: frame overwritten while in use; discard what was "
                                          "computed from it" % (self._r.name, self.frame.number))

    def __exit__(self, exc_type, exc, tb):
        r = self._r
        if self._state != "out":
            return False
        with r._lock:
            r._view_out = False
            ok = False
            if r._q is not None:
                r._fence()
                ok = r._q[self._seq_idx] == self._s1
            n = self.frame.number
            r.next = n + 1
            r._last = n
            if ok:
                self._state = "valid"
                r.delivered += 1
                return False
            self._state = "overwritten"
            r.overwritten += 1
        raise errors.FrameOverwritten("ring \"%s\": frame %d: frame overwritten while in use; the reader was more than "
                                      "%d frames behind, discard what was computed from it"
                                      % (r.name, n, r.geometry.slots))
