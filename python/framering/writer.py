"""The writing side: create or take over a ring and publish frames.

See :class:`Writer`. A Writer is not safe for concurrent use by several
threads; its heartbeat runs on a daemon thread of its own.
"""

import errno
import fcntl
import mmap
import os
import secrets
import stat
import struct
import threading
import time
import weakref

import numpy as np

from . import _layout as L
from . import errors
from ._sys import Fence, futex_wake, monotonic_ns, ofd_lock_write, ofd_write_locked

_ALLOWED_MODES = (0o600, 0o640, 0o660)
# A temporary file whose lock is free is removed once it is this old (D1.4).
STALE_TMP_AGE = 10.0
_OPEN_ATTEMPTS = 20

_pack_slot = L.SLOT_FIELDS.pack_into


def _frame_spec(shape, fmt, dtype=None):
    """(format, width, height, channels, stride, length, dtype) for a frame
    of numpy shape `shape` in format `fmt` (a name or number; None: by
    channels). Raw frames have shape (n,)."""
    shape = tuple(int(x) for x in shape)
    if fmt is not None:
        fmt = L.format_number(fmt)
    if fmt == L.RAW or (fmt is None and len(shape) == 1):
        n = 1
        for x in shape:
            n *= x
        if n < 1:
            raise errors.InvalidFrame("raw frame of %d bytes; give a positive length" % n)
        return L.RAW, n, 1, 0, 0, n, np.dtype(np.uint8)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3:
        raise errors.InvalidFrame("frame shape %r: give (height, width) or (height, width, channels)" % (shape,))
    h, w, c = shape
    if fmt is None:
        fmt = L.format_for_channels(c, dtype if dtype is not None else np.uint8)
        if not fmt:
            raise errors.InvalidFrame("no default pixel format for %d channels; pass format=" % c)
    name, ch, bps, dt = L.FORMATS[fmt]
    if c != ch:
        raise errors.InvalidFrame("%s has %d channels, the shape %r has %d" % (name, ch, shape, c))
    if not (1 <= w <= L.MAX_DIM and 1 <= h <= L.MAX_DIM):
        raise errors.InvalidFrame("%dx%d; width and height must be in [1, %d]" % (w, h, L.MAX_DIM))
    stride = w * ch * bps
    return fmt, w, h, ch, stride, stride * h, dt


class Writer:
    """Publishes frames into ring ``name``, creating it or taking it over.

    The slot size comes from ``shape`` (and ``format``) or ``frame_bytes``:
    ``Writer("cam0", shape=(480, 640, 3))`` makes 8 slots of 921600 bytes
    for bgr8 frames (the format defaults by channel count: 1 gray8, or
    gray16 with ``dtype=np.uint16``, 2 yuyv, 3 bgr8, 4 bgra8). ``shape``
    and ``format`` are also the default frame of :meth:`reserve`.

    ``meta_bytes`` is the metadata capacity of a slot (0: none), ``mode``
    the permission of a new file (0o600, 0o640 or 0o660), ``heartbeat`` the
    stamping period in seconds. The geometry equals the Go producer's for
    the same slot count, frame size and metadata size.

    Opening follows PROTOCOL-DECISIONS D1/D3/D4: an existing ring of the
    same geometry is taken over in place (odd slots repaired, numbering
    continued, generation + 1); anything else under the name that is a
    regular file of ours is replaced by a complete new file, carrying the
    numbering over when the old superblock is readable. A symbolic link,
    FIFO, another user's or a world-writable file is refused and left
    alone. A ring with a live writer raises Busy.
    """

    def __init__(self, name, shape=None, format=None, *, dtype=None, frame_bytes=None, slots=8, meta_bytes=4096,
                 dir=L.DEFAULT_DIR, mode=0o600, heartbeat=0.1):
        L.check_name(name)
        if mode & 0o002:
            raise errors.UnsafeFile("ring \"%s\": mode %04o is world-writable; use 0600, 0640 or 0660" % (name, mode))
        if mode not in _ALLOWED_MODES:
            raise ValueError("mode %04o: use 0o600, 0o640 or 0o660" % mode)
        if heartbeat <= 0:
            raise ValueError("heartbeat must be positive")
        self.name = name
        self.dir = dir or L.DEFAULT_DIR
        self.path = L.ring_path(self.dir, name)
        self._mode = mode
        self._spec = None
        if shape is not None:
            self._spec = _frame_spec(shape, format, dtype)
        elif format is not None and L.format_number(format) != L.RAW:
            raise errors.InvalidFrame("format %r needs a shape" % (format,))
        if frame_bytes is None:
            if self._spec is None:
                raise errors.InvalidFrame("ring \"%s\": no frame size; give shape= or frame_bytes=" % name)
            frame_bytes = self._spec[5]
        g = L.Geometry(slots, int(frame_bytes), int(meta_bytes))
        try:
            g.check()
        except errors.InvalidFrame as e:
            raise errors.InvalidFrame("ring \"%s\": %s" % (name, e)) from None
        if self._spec is not None and self._spec[5] > g.payload_cap:
            raise errors.FrameTooLarge("ring \"%s\": a %r frame is %d bytes, the slots hold %d"
                                       % (name, shape, self._spec[5], g.payload_cap))
        self.geometry = g
        self._fence = Fence()
        self._fd = None
        self._mm = None
        self._closed = False
        self._loan = None  # (number, odd seq, slot offset, spec, array, meta array)
        self.frames = self.bytes = self.aborts = 0
        self._open()
        # Heartbeat: a thread that holds only the 8-byte view and an event,
        # never the Writer, so a Writer dropped without close is collected.
        self._stop = threading.Event()
        self._q[L.Q_HEARTBEAT] = monotonic_ns()
        self._hb = threading.Thread(target=_heartbeat, args=(self._q, float(heartbeat), self._stop),
                                    name="framering-heartbeat-%s" % name, daemon=True)
        self._hb.start()
        self._finalizer = weakref.finalize(self, _finalize, self._stop, self._hb, self._fd)

    # ---- open (D1) ---------------------------------------------------------------

    def _open(self):
        remove_stale_tmp(self.dir)
        for _ in range(_OPEN_ATTEMPTS):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                if self._create(None, replace=False):
                    return
                continue  # another writer created it first: go and meet it
            except OSError as e:
                raise self._open_error(e) from None
            if self._reuse(fd):  # owns fd
                return
        raise errors.RingError("ring \"%s\": the file under its name kept changing while opening %s; another program "
                               "is replacing it, stop it and try again" % (self.name, self.path))

    def _open_error(self, e):
        if e.errno == errno.ELOOP:
            return errors.UnsafeFile("ring \"%s\": unsafe shared-memory file: %s is a symbolic link; remove it and "
                                     "start again" % (self.name, self.path))
        if e.errno in (errno.ENXIO, errno.EISDIR):
            return errors.UnsafeFile("ring \"%s\": unsafe shared-memory file: %s is not a regular file; remove it "
                                     "and start again" % (self.name, self.path))
        if e.errno in (errno.EACCES, errno.EPERM):
            return errors.UnsafeFile("ring \"%s\": %s: permission denied; run as the ring's owner or remove it"
                                     % (self.name, self.path))
        return errors.RingError("ring \"%s\": open %s: %s" % (self.name, self.path, e))

    def _reuse(self, fd):
        """Take over or replace the existing file open at fd, which this
        call owns (adopts or closes). False: the name changed under us,
        start over."""
        adopted = replaced = was_ring = False
        try:
            st = os.fstat(fd)
            why = None
            if not stat.S_ISREG(st.st_mode):
                why = "is not a regular file"
            elif st.st_uid != os.geteuid():
                why = "belongs to uid %d, not to you (uid %d)" % (st.st_uid, os.geteuid())
            elif st.st_mode & 0o002:
                why = "is world-writable (mode %04o)" % (st.st_mode & 0o777)
            elif st.st_mode & 0o020 and not self._mode & 0o020:
                why = "is group-writable (mode %04o)" % (st.st_mode & 0o777)
            if why:
                raise errors.UnsafeFile("ring \"%s\": unsafe shared-memory file: %s %s; remove it and start again"
                                        % (self.name, self.path, why))
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
            if not ofd_lock_write(fd):
                pid = _peek_pid(fd)
                raise errors.Busy("ring \"%s\": already written by pid %d; stop that producer or pick another name"
                                  % (self.name, pid), pid)
            # Locked. Is fd still the file at the path? A writer that replaced
            # it between our open and our lock holds the new one.
            if not _names(self.path, fd):
                return False
            size = os.fstat(fd).st_size
            sb = os.pread(fd, L.SUPER_SIZE, 0) if size >= L.SUPER_SIZE else b""
            same = False
            carry = None
            if len(sb) == L.SUPER_SIZE and size <= L.MAX_FILE_SIZE:
                try:
                    g = L.parse_superblock(sb, size)
                    same = g == self.geometry and size == g.file_size
                except errors.RingError:
                    same = False
                if same and struct.unpack_from("<Q", sb, L.OFF_GENERATION)[0] >= L.ABSURD:
                    same = False  # a generation that would wrap: corrupt, replace it (D3)
                was_ring = L.superblock_readable(sb)
                if not same and was_ring:
                    carry = _carry(sb)
            if same:
                mm = _map(fd, size)
                self._adopt(fd, mm)
                adopted = True
                self._take_over()
                return True
            replaced = self._create(carry, replace=True)
            return replaced
        finally:
            if not adopted:
                old = None
                if replaced and was_ring:
                    try:
                        old = _map(fd, L.SUPER_SIZE)
                    except OSError:
                        old = None
                # Drop the lock on the old, now unlinked, file first, then wake
                # its readers: they find it gone and the name on a new file.
                os.close(fd)
                if old is not None:
                    i = memoryview(old).cast("I")
                    i[L.I_NOTIFY] = (i[L.I_NOTIFY] + 1) & 0xFFFFFFFF
                    u8 = np.frombuffer(old, dtype=np.uint8)
                    try:
                        futex_wake(u8.ctypes.data + L.OFF_NOTIFY)
                    finally:
                        del u8
                        i.release()
                        old.close()

    def _create(self, carry, replace):
        """Build a new file unnamed, then name it (D1.3). False: lost a race,
        start over."""
        g = self.geometry
        size = g.file_size
        tmp = None
        try:
            fd = os.open(self.dir, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, self._mode)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                # No O_TMPFILE here: a named temporary file, locked at once.
                tmp = self._tmp_name()
                try:
                    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, self._mode)
                except OSError as e2:
                    raise errors.RingError("ring \"%s\": create %s: %s" % (self.name, tmp, e2)) from None
            elif e.errno == errno.ENOENT:
                raise errors.RingError("ring \"%s\": directory %s does not exist; create it or give another dir"
                                       % (self.name, self.dir)) from None
            else:
                raise errors.RingError("ring \"%s\": create a file in %s: %s" % (self.name, self.dir, e)) from None
        mm = None
        try:
            if not ofd_lock_write(fd):
                raise errors.RingError("ring \"%s\": cannot lock the new file %s" % (self.name, tmp or "(unnamed)"))
            os.fchmod(fd, self._mode)  # the umask may have cleared group bits
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise errors.NoSpace("ring \"%s\": not enough space in the shared-memory file system: %s needs %d "
                                         "bytes; free space there, use fewer slots or a smaller frame size, or in a "
                                         "container start it with --shm-size=%dm or more"
                                         % (self.name, self.dir, size, (size + (64 << 20)) >> 20)) from None
                if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                    os.ftruncate(fd, size)
                else:
                    raise errors.RingError("ring \"%s\": fallocate %d bytes: %s" % (self.name, size, e)) from None
            mm = _map(fd, size)
            mm[0:L.SUPER_SIZE] = L.encode_superblock(g, time.time_ns())
            q = memoryview(mm).cast("Q")
            i = memoryview(mm).cast("I")
            if carry is not None:
                q[L.Q_HEAD], q[L.Q_GENERATION], q[L.Q_FRAMES_TOTAL], q[L.Q_BYTES_TOTAL] = carry
            # Readers that look before the takeover see a live writer.
            i[L.I_WRITER_PID] = os.getpid()
            q[L.Q_HEARTBEAT] = monotonic_ns()
            q.release()
            i.release()
            dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                proc = "/proc/self/fd/%d" % fd
                base = os.path.basename(self.path)
                if not replace:
                    try:
                        if tmp is None:
                            # linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW); plain
                            # os.link would call link(2), which does not follow.
                            os.link(proc, base, dst_dir_fd=dfd, follow_symlinks=True)
                        else:
                            os.link(os.path.basename(tmp), base, src_dir_fd=dfd, dst_dir_fd=dfd)
                    except FileExistsError:
                        mm.close()
                        mm = None
                        os.close(fd)
                        return False
                    finally:
                        if tmp is not None:
                            _unlink_quiet(tmp)
                            tmp = None
                else:
                    if tmp is None:
                        tmp = self._tmp_name()
                        os.link(proc, os.path.basename(tmp), dst_dir_fd=dfd, follow_symlinks=True)
                    os.rename(os.path.basename(tmp), base, src_dir_fd=dfd, dst_dir_fd=dfd)
                    tmp = None
                    if not _names(self.path, fd):
                        # Someone replaced it again meanwhile: start over.
                        mm.close()
                        mm = None
                        os.close(fd)
                        return False
            finally:
                os.close(dfd)
        except BaseException:
            if mm is not None:
                mm.close()
            os.close(fd)
            if tmp is not None:
                _unlink_quiet(tmp)
            raise
        self._adopt(fd, mm)
        self._take_over()
        return True

    def _tmp_name(self):
        return os.path.join(self.dir, "%s%s.%s" % (L.TMP_PREFIX, self.name, secrets.token_hex(8)))

    def _adopt(self, fd, mm):
        g = self.geometry
        self._fd, self._mm = fd, mm
        self._q = memoryview(mm).cast("Q")
        self._i = memoryview(mm).cast("I")
        self._u8 = np.frombuffer(mm, dtype=np.uint8)
        self._notify_addr = self._u8.ctypes.data + L.OFF_NOTIFY
        self._slot_off = [L.SUPER_SIZE + i * g.slot_stride for i in range(g.slots)]

    # ---- takeover (D3) -----------------------------------------------------------

    def _take_over(self):
        q, g, fence = self._q, self.geometry, self._fence
        n_slots = g.slots
        head = q[L.Q_HEAD]
        frames = []
        for off in self._slot_off:
            si = off // 8
            s = q[si]
            if s & 1:
                # Half-written by a writer that died: mark empty, make even.
                q[si + 1] = 0  # FrameNo
                q[(off + L.SLOT_OFF_PAYLOAD_LEN) // 8] = 0
                fence()
                q[si] = (s + 1) & 0xFFFFFFFFFFFFFFFF
                continue
            fn = q[si + 1]
            if 0 < fn < L.ABSURD:
                frames.append(fn)
        frames.sort()
        # A frame number more than a ring above every other one is not
        # believed (a stray write); neither is a Head that is, or whose slot
        # holds an older frame (D3, the reader's rule of D4).
        while len(frames) > 1 and frames[-1] > frames[-2] + n_slots:
            frames.pop()
        best = frames[-1] if frames else 0
        in_slot = q[self._slot_off[head & (n_slots - 1)] // 8 + 1] if head < L.ABSURD else 0
        if head >= L.ABSURD or (frames and head > best + n_slots) or 0 < in_slot < head:
            head = best
        else:
            # A writer can die between a slot's commit and the Head store.
            for fn in frames:
                if head < fn <= head + n_slots:
                    head = fn
        fence()
        q[L.Q_HEAD] = head
        self._next = head + 1
        gen = q[L.Q_GENERATION] + 1
        q[L.Q_GENERATION] = gen
        self.generation = gen
        self._i[L.I_WRITER_PID] = os.getpid()
        q[L.Q_WRITER_START] = time.time_ns()
        q[L.Q_HEARTBEAT] = monotonic_ns()
        self._bump_notify()

    def _bump_notify(self):
        i = self._i
        i[L.I_NOTIFY] = (i[L.I_NOTIFY] + 1) & 0xFFFFFFFF
        futex_wake(self._notify_addr)

    # ---- publishing (section 6) ---------------------------------------------------

    @property
    def next_number(self):
        """The number the next frame gets."""
        return self._next

    @property
    def closed(self):
        return self._closed

    def _check_open(self):
        if self._closed:
            raise errors.Closed("ring \"%s\": writer is closed" % self.name)

    def reserve(self, shape=None, format=None, dtype=None, dims=None):
        """Lend the next slot: returns a writable numpy array over the
        slot's payload, shaped like the frame (H, W, C; raw: 1-D uint8 of n
        bytes). ``shape``/``format`` default to the writer's. Fill it in
        place (``cv2.VideoCapture.read(img)``, ``np.copyto``, ...), write
        metadata into :attr:`loan_meta`, then :meth:`commit` or
        :meth:`abort`. While the loan is out readers skip the slot. After
        commit or abort the array is made read-only: do not keep writing
        through it (or through views of it). ``dims=(width, height)`` sets
        the Width and Height a raw frame's header carries (no layout
        meaning; default: the length and 1)."""
        self._check_open()
        if self._loan is not None:
            raise errors.LoanOutstanding("ring \"%s\": reserve frame %d: previous reservation not committed or "
                                         "aborted; call commit() or abort() first" % (self.name, self._loan[0]))
        if shape is None:
            if self._spec is None:
                raise errors.InvalidFrame("ring \"%s\": reserve: no frame shape; give shape= here or to Writer()"
                                          % self.name)
            spec = self._spec if format is None else _frame_spec(self._frame_shape(), format, dtype)
        else:
            spec = _frame_spec(shape, format, dtype)
        if dims is not None:
            if spec[0] != L.RAW:
                raise errors.InvalidFrame("ring \"%s\": reserve: dims= is for raw frames" % self.name)
            spec = (L.RAW, int(dims[0]), int(dims[1])) + spec[3:]
        fmt, w, h, c, stride, length, dt = spec
        if length > self.geometry.payload_cap:
            raise errors.FrameTooLarge("ring \"%s\": reserve: a %s frame of %d bytes, the slots hold %d"
                                       % (self.name, L.format_name(fmt), length, self.geometry.payload_cap))
        n = self._next
        off = self._slot_off[n & (self.geometry.slots - 1)]
        si = off // 8
        q = self._q
        s = q[si]
        odd = s + 1 if s & 1 == 0 else s + 2  # a slot left odd: stay odd, move on
        q[si] = odd & 0xFFFFFFFFFFFFFFFF
        self._fence()  # the odd Seq is visible before any payload store
        poff = off + self.geometry.payload_offset
        data = self._u8[poff:poff + length]
        if fmt == L.RAW:
            arr = data
        else:
            arr = data.view(dt).reshape(h, w, c)
        moff = off + L.SLOT_HEADER_SIZE
        meta = self._u8[moff:moff + self.geometry.meta_cap]
        self._loan = (n, odd, off, spec, arr, meta)
        return arr

    def _frame_shape(self):
        fmt, w, h, c = self._spec[:4]
        return (w,) if fmt == L.RAW else (h, w, c)

    @property
    def loan_meta(self):
        """The metadata area of the slot lent by reserve() (MetaCap bytes,
        writable); say how much you wrote with commit(meta_len=...)."""
        if self._loan is None:
            raise errors.RingError("ring \"%s\": no reservation is out; call reserve() first" % self.name)
        return self._loan[5]

    def commit(self, meta=None, meta_len=0, capture_ns=None, length=None):
        """Publish the reserved slot; returns its frame number. ``meta``
        (bytes) is copied into the metadata area; else ``meta_len`` says
        how many bytes of :attr:`loan_meta` were written in place.
        ``capture_ns`` is the CLOCK_MONOTONIC capture time (default: now).
        ``length`` shortens a raw frame. On invalid arguments the loan
        stays out: fix them and commit again, or abort()."""
        if self._loan is None:
            raise errors.RingError("ring \"%s\": commit: no reservation is out; call reserve() first" % self.name)
        n, odd, off, spec, arr, meta_arr = self._loan
        fmt, w, h, c, stride, plen, _ = spec
        if length is not None:
            if fmt != L.RAW or not 1 <= length <= plen:
                raise errors.InvalidFrame("ring \"%s\": commit frame %d: length %r is only for raw frames, 1 to %d"
                                          % (self.name, n, length, plen))
            plen = int(length)
        mlen = len(meta) if meta is not None else int(meta_len)
        if not 0 <= mlen <= self.geometry.meta_cap:
            raise errors.FrameTooLarge("ring \"%s\": commit frame %d: %d bytes of metadata, the slots hold %d"
                                       % (self.name, n, mlen, self.geometry.meta_cap))
        if meta is not None and mlen:
            meta_arr[:mlen] = np.frombuffer(meta, dtype=np.uint8)
        start = monotonic_ns()
        self._commit(n, odd, off, fmt, w, h, c, stride, plen, mlen, start,
                     capture_ns if capture_ns is not None else start)
        return n

    def _commit(self, n, odd, off, fmt, w, h, c, stride, plen, mlen, publish_ns, capture_ns):
        q = self._q
        _pack_slot(self._mm, off + L.SLOT_FIELDS_OFF, n, self.generation, w, h, c, fmt, stride, mlen, plen,
                   publish_ns, capture_ns, time.time_ns())
        self._fence()  # every store above is visible before the even Seq
        q[off // 8] = (odd + 1) & 0xFFFFFFFFFFFFFFFF
        self._fence()
        q[L.Q_HEAD] = n
        q[L.Q_FRAMES_TOTAL] = (q[L.Q_FRAMES_TOTAL] + 1) & 0xFFFFFFFFFFFFFFFF
        q[L.Q_BYTES_TOTAL] = (q[L.Q_BYTES_TOTAL] + plen) & 0xFFFFFFFFFFFFFFFF
        self._bump_notify()
        self._end_loan()
        self._next = n + 1
        self.frames += 1
        self.bytes += plen

    def _end_loan(self):
        arr, meta = self._loan[4], self._loan[5]
        self._loan = None
        arr.flags.writeable = False
        meta.flags.writeable = False

    def abort(self):
        """Roll the reservation back: the slot is marked empty (its old
        frame was already partly overwritten) and the number is reused by
        the next frame. Does nothing without a reservation."""
        if self._loan is None:
            return
        n, odd, off = self._loan[:3]
        q = self._q
        q[off // 8 + 1] = 0  # FrameNo
        q[(off + L.SLOT_OFF_PAYLOAD_LEN) // 8] = 0
        self._fence()
        q[off // 8] = (odd + 1) & 0xFFFFFFFFFFFFFFFF
        self._end_loan()
        self.aborts += 1

    def publish(self, image, format=None, meta=None, capture_ns=None):
        """Copy ``image`` into the next slot and commit it; returns the frame
        number. ``image``: a numpy array (H, W), (H, W, C) or, for raw, 1-D
        (or any bytes-like object); ROIs and other strided arrays are
        copied row by row. ``format`` defaults to the writer's format when
        the shape matches, else by channel count. The dtype must match the
        format (uint8; uint16 for gray16)."""
        self._check_open()
        start = monotonic_ns()
        a = image if isinstance(image, np.ndarray) else np.frombuffer(image, dtype=np.uint8)
        if format is None and self._spec is not None and a.shape == self._frame_shape() \
                and (self._spec[0] == L.RAW or a.dtype == self._spec[6]):
            format = self._spec[0]
        spec = _frame_spec(a.shape, format, a.dtype)
        fmt, w, h, c, stride, plen, dt = spec
        if a.dtype.kind != dt.kind or a.dtype.itemsize != dt.itemsize:
            if fmt != L.RAW:
                raise errors.InvalidFrame("ring \"%s\": publish: %s frames are %s, the array is %s"
                                          % (self.name, L.format_name(fmt), dt, a.dtype))
        if fmt == L.RAW and a.dtype != np.uint8:
            a = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
            spec = _frame_spec((a.size,), L.RAW)
            plen = spec[5]
        if plen > self.geometry.payload_cap:
            raise errors.FrameTooLarge("ring \"%s\": publish: %dx%dx%d %s frame is %d bytes, the slots hold %d; open "
                                       "the ring with a larger frame size" % (self.name, w, h, c, L.format_name(fmt),
                                                                              plen, self.geometry.payload_cap))
        mlen = len(meta) if meta is not None else 0
        if mlen > self.geometry.meta_cap:
            raise errors.FrameTooLarge("ring \"%s\": publish: %d bytes of metadata, the slots hold %d"
                                       % (self.name, mlen, self.geometry.meta_cap))
        dst = self.reserve(a.shape if fmt != L.RAW else (plen,), fmt)
        try:
            np.copyto(dst, a.reshape(dst.shape), casting="equiv" if fmt != L.RAW else "unsafe")
        except BaseException:
            self.abort()
            raise
        n, odd, off, spec, _, meta_arr = self._loan
        if mlen:
            meta_arr[:mlen] = np.frombuffer(meta, dtype=np.uint8)
        self._commit(n, odd, off, spec[0], spec[1], spec[2], spec[3], spec[4], spec[5], mlen, start,
                     capture_ns if capture_ns is not None else start)
        return n

    # ---- close -----------------------------------------------------------------------

    def close(self):
        """Stop the heartbeat, roll back an open reservation, drop the lock,
        wake readers (they find the writer gone), unmap. The file stays for
        readers. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        self._stop.set()
        self._hb.join()
        if self._loan is not None:
            self.abort()
        # Drop the lock first, then wake readers: they find it gone at once.
        os.close(self._fd)
        self._fd = None
        self._bump_notify()
        self._q.release()
        self._i.release()
        self._u8 = None
        try:
            self._mm.close()
        except BufferError:
            pass  # arrays still held by the caller keep the mapping until they go
        self._mm = None

    def remove(self):
        """Close, then unlink the ring if its name still names this file."""
        ident = None
        if self._fd is not None:
            st = os.fstat(self._fd)
            ident = (st.st_dev, st.st_ino)
        self.close()
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if ident is None or (st.st_dev, st.st_ino) == ident:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def superblock(self):
        """The live superblock words (as Reader.superblock)."""
        self._check_open()
        q, i = self._q, self._i
        return {"head": q[L.Q_HEAD], "generation": q[L.Q_GENERATION], "writer_pid": i[L.I_WRITER_PID],
                "heartbeat_ns": q[L.Q_HEARTBEAT], "notify": i[L.I_NOTIFY],
                "frames_total": q[L.Q_FRAMES_TOTAL], "bytes_total": q[L.Q_BYTES_TOTAL]}


def _heartbeat(q, period, stop):
    while not stop.wait(period):
        try:
            q[L.Q_HEARTBEAT] = monotonic_ns()
        except ValueError:
            return  # released: the writer closed


def _finalize(stop, thread, fd):
    """A Writer dropped without close: stop the heartbeat and drop the lock
    (the mapping goes with the last reference to it)."""
    stop.set()
    if thread is not threading.current_thread():
        thread.join(timeout=1.0)
    try:
        os.close(fd)
    except OSError:
        pass


def _map(fd, size):
    """mmap the file open at fd read-write through a second open file
    description. CPython's mmap keeps a dup of the descriptor it maps, and a
    dup shares the open file description, so mapping the locked fd itself
    would keep the OFD write lock alive as long as the mapping (which a
    caller's arrays can hold): close() could not release the lock. A
    re-open of /proc/self/fd/N is a new open file description of the same
    inode (unlinked files included) that holds no lock."""
    try:
        mfd = os.open("/proc/self/fd/%d" % fd, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        mfd = None  # no /proc: the lock then lives as long as the mapping
    try:
        return mmap.mmap(fd if mfd is None else mfd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
    finally:
        if mfd is not None:
            os.close(mfd)


def _names(path, fd):
    """Whether path names the file open at fd (and it is still linked)."""
    try:
        pst = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (pst.st_dev, pst.st_ino) == (fst.st_dev, fst.st_ino) and fst.st_nlink > 0


def _peek_pid(fd):
    try:
        b = os.pread(fd, 68, 0)
    except OSError:
        return 0
    return struct.unpack_from("<I", b, 64)[0] if len(b) >= 68 else 0


def _carry(sb):
    """Head, Generation, FramesTotal, BytesTotal of a readable superblock;
    values that would wrap are not carried (D3, D4)."""
    (head,) = struct.unpack_from("<Q", sb, L.OFF_HEAD)
    (gen,) = struct.unpack_from("<Q", sb, L.OFF_GENERATION)
    (frames, nbytes) = struct.unpack_from("<QQ", sb, L.OFF_FRAMES_TOTAL)
    return (head if head < L.ABSURD else 0, gen if gen < L.ABSURD else 0, frames, nbytes)


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_stale_tmp(dir, age=STALE_TMP_AGE):
    """Remove ``.framering-tmp.*`` files in dir whose OFD write lock is free
    and that are older than age seconds (D1.4). Returns the paths removed."""
    removed = []
    try:
        names = os.listdir(dir)
    except OSError:
        return removed
    now = time.time()
    for n in names:
        if not n.startswith(L.TMP_PREFIX):
            continue
        p = os.path.join(dir, n)
        try:
            st = os.stat(p, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or now - st.st_mtime <= age:
                continue
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                if ofd_write_locked(fd):
                    continue
                if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (st.st_ino, st.st_dev):
                    continue
                os.unlink(p)
                removed.append(p)
            finally:
                os.close(fd)
        except OSError:
            continue
    return removed
