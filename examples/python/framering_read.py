#!/usr/bin/python3
"""Reference reader for framering rings (segment format v1), in Python.

Written from docs/PROTOCOL.md alone, with the standard library and numpy.
Run it with Debian's /usr/bin/python3 (which has numpy):

    /usr/bin/python3 framering_read.py [--dir /dev/shm] [--mode ordered|latest]
                                       [--count N] [--timeout S] [--hash] NAME

As a module:

    from framering_read import RingReader
    with RingReader("cam0") as r:
        f = r.read(timeout=5.0)      # Frame: number, image (H, W, C) numpy copy, meta, ...
        print(f.number, f.image.shape, r.stats)

Limits (see PROTOCOL.md section 14): the seqlock is exact on x86-64; on arm64
the read fences are a best-effort release/acquire of a private lock. A file
truncated under the mapping kills the process (SIGBUS).
"""

import argparse
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import platform
import re
import stat
import struct
import sys
import threading
import time

import numpy as np

# ---- format constants (PROTOCOL.md sections 3-5) ----------------------------

MAGIC = b"FRMRING\x00"
VERSION = 2
SUPER_SIZE = 4096
PAGE = 4096
SLOT_HEADER_SIZE = 128
MIN_SLOTS, MAX_SLOTS = 2, 1 << 16
MAX_PAYLOAD_CAP = 1 << 34
MAX_META_CAP = 1 << 20
MAX_FILE_SIZE = 1 << 40
MAX_DIM = 1 << 20
MAX_STRIDE = (1 << 31) - 1

# Superblock offsets.
OFF_HEARTBEAT = 128
OFF_HEAD = 192
OFF_NOTIFY = 200
OFF_FRAMES_TOTAL = 256
OFF_GENERATION = 80
OFF_WRITER_PID = 64

# name: (channels, bytes per sample, numpy dtype); index = format number.
FORMATS = {
    1: ("gray8", 1, 1, np.uint8),
    2: ("bgr8", 3, 1, np.uint8),
    3: ("rgb8", 3, 1, np.uint8),
    4: ("bgra8", 4, 1, np.uint8),
    5: ("rgba8", 4, 1, np.uint8),
    6: ("gray16", 1, 2, np.dtype("<u2")),
    7: ("yuyv", 2, 1, np.uint8),
    8: ("raw", 0, 1, np.uint8),
}
RAW = 8

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")

# struct flock on LP64 Linux: l_type@0 l_whence@2 l_start@8 l_len@16 l_pid@24, 32 bytes.
FLOCK = "=hh4xqqi4x"
F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)

SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine())
FUTEX_WAIT = 0  # shared: never FUTEX_PRIVATE_FLAG


# ---- errors -----------------------------------------------------------------

class RingError(Exception):
    """Base class of every error this reader raises."""


class NotFound(RingError):
    pass


class UnsafeFile(RingError):
    pass


class Incompatible(RingError):
    pass


class Corrupt(RingError):
    pass


class Truncated(RingError):
    pass


class WriterGone(RingError):
    """Raised once when the writer died, closed, or stopped its heartbeat.
    The next read waits for a writer to come back."""


# ---- CRC-32C (Castagnoli), reflected poly 0x82F63B78 -------------------------

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def align_up(x, a):
    return (x + a - 1) & ~(a - 1)


# ---- geometry ---------------------------------------------------------------

class Geometry:
    """Validated static fields of a superblock (PROTOCOL.md section 3, 4)."""

    def __init__(self, slots, meta_cap, payload_cap):
        self.slots = slots
        self.meta_cap = meta_cap
        self.payload_cap = payload_cap
        self.payload_offset = align_up(SLOT_HEADER_SIZE + meta_cap, PAGE)
        self.slot_stride = self.payload_offset + align_up(payload_cap, PAGE)
        self.file_size = SUPER_SIZE + slots * self.slot_stride

    def slot_offset(self, n):
        return SUPER_SIZE + (n & (self.slots - 1)) * self.slot_stride

    def __repr__(self):
        return "%d slots x %d bytes (+%d metadata)" % (self.slots, self.payload_cap, self.meta_cap)


def parse_superblock(b, file_size):
    """Validate a copy of the superblock page against the object's size
    (PROTOCOL.md section 11, checks 2-11) and return its Geometry."""
    if len(b) < SUPER_SIZE or file_size < SUPER_SIZE:
        raise Truncated("%d bytes, a superblock needs %d" % (min(len(b), file_size), SUPER_SIZE))
    if b[0:8] != MAGIC:
        raise Incompatible("magic is %r, want %r: not a framering ring" % (bytes(b[0:8]), MAGIC))
    (version,) = struct.unpack_from("<I", b, 8)
    if version != VERSION:
        raise Incompatible("version is %d, want %d" % (version, VERSION))
    (stored,) = struct.unpack_from("<I", b, 60)
    computed = crc32c(bytes(b[0:60]))
    if stored != computed:
        raise Corrupt("superblock checksum %#010x, computed %#010x" % (stored, computed))
    super_size, slots, meta_cap, stride, pay_off, pay_cap, fsize, flags = struct.unpack_from("<IIIQQQQI", b, 12)
    if super_size != SUPER_SIZE:
        raise Incompatible("superblock size is %d, want %d" % (super_size, SUPER_SIZE))
    if not 1 <= pay_cap <= MAX_PAYLOAD_CAP:
        raise Corrupt("payload capacity %d is outside [1, %d]" % (pay_cap, MAX_PAYLOAD_CAP))
    if not (MIN_SLOTS <= slots <= MAX_SLOTS and slots & (slots - 1) == 0):
        raise Corrupt("slot count %d is not a power of two in [%d, %d]" % (slots, MIN_SLOTS, MAX_SLOTS))
    if meta_cap > MAX_META_CAP:
        raise Corrupt("metadata capacity %d exceeds %d" % (meta_cap, MAX_META_CAP))
    g = Geometry(slots, meta_cap, pay_cap)
    if g.file_size > MAX_FILE_SIZE:
        raise Corrupt("ring of %d bytes exceeds %d" % (g.file_size, MAX_FILE_SIZE))
    for name, got, want in (("slot stride", stride, g.slot_stride),
                            ("payload offset", pay_off, g.payload_offset),
                            ("file size", fsize, g.file_size)):
        if got != want:
            raise Corrupt("%s is %d, geometry %r gives %d" % (name, got, g, want))
    if file_size < g.file_size:
        raise Truncated("object is %d bytes, superblock says %d" % (file_size, g.file_size))
    if flags != 0:
        raise Incompatible("flags are %#x, a v2 reader knows none" % flags)
    return g


class FrameHeader:
    """A slot header parsed from a private copy (PROTOCOL.md section 4)."""

    __slots__ = ("frame_no", "generation", "width", "height", "channels", "format",
                 "stride", "meta_len", "payload_len", "capture_ns", "publish_ns", "wall_ns")

    def __init__(self, b):
        (self.frame_no, self.generation, self.width, self.height, self.channels, self.format,
         self.stride, self.meta_len, self.payload_len, self.publish_ns, self.capture_ns,
         self.wall_ns) = struct.unpack_from("<QQIIIIIIQqqq", b, 8)

    def problem(self, g):
        """Return why this header cannot describe a frame of geometry g, or None
        (PROTOCOL.md sections 5 and 11)."""
        if self.payload_len > g.payload_cap:
            return "payload length %d exceeds slot capacity %d" % (self.payload_len, g.payload_cap)
        if self.format not in FORMATS:
            return "unknown pixel format %d" % self.format
        if self.meta_len > g.meta_cap:
            return "metadata length %d exceeds capacity %d" % (self.meta_len, g.meta_cap)
        if self.format == RAW:
            return None if self.payload_len >= 1 else "raw frame of 0 bytes"
        _, ch, bps, _ = FORMATS[self.format]
        if not (1 <= self.width <= MAX_DIM and 1 <= self.height <= MAX_DIM):
            return "size %dx%d outside [1, %d]" % (self.width, self.height, MAX_DIM)
        if self.channels != ch:
            return "%s has %d channels, header says %d" % (FORMATS[self.format][0], ch, self.channels)
        row = self.width * ch * bps
        if not row <= self.stride <= MAX_STRIDE:
            return "stride %d is smaller than a row of %d bytes" % (self.stride, row)
        if self.payload_len != self.stride * self.height:
            return "stride %d x height %d does not give payload length %d" % (self.stride, self.height, self.payload_len)
        return None


class Frame:
    """A frame copied out of the ring. image is a private numpy array:
    (H, W, C) for image formats, (PayloadLen,) uint8 for raw."""

    __slots__ = ("number", "generation", "format", "width", "height", "channels",
                 "capture_ns", "publish_ns", "wall_ns", "image", "meta")

    @property
    def format_name(self):
        return FORMATS[self.format][0]


# ---- the reader ---------------------------------------------------------------

class RingReader:
    """Follows one ring, read-only. Not safe for concurrent use by several
    threads; use one RingReader per thread."""

    def __init__(self, name, dir="/dev/shm", mode="ordered", start="newest",
                 allow_group_writable=False, wait_slice=0.1, hung_after=1.0, use_futex=True):
        if not NAME_RE.match(name) or name in (".", ".."):
            raise RingError("invalid ring name %r; use 1 to 200 of A-Z a-z 0-9 . _ -" % name)
        if mode not in ("ordered", "latest"):
            raise ValueError("mode must be 'ordered' or 'latest'")
        if sys.byteorder != "little":
            raise RingError("framering rings are little-endian; this host is not")
        self.name = name
        self.path = os.path.join(dir, "framering." + name)
        self.mode = mode
        self.allow_group_writable = allow_group_writable
        self.wait_slice = wait_slice
        self.hung_after_ns = int(hung_after * 1e9)
        self._fd = None
        self._mm = None
        self._futex = _Futex() if use_futex else None
        # Fence: release then acquire of a private lock (PROTOCOL.md section 14).
        self._fence_lock = threading.Lock()
        self._fence_lock.acquire()
        self.stats = {"delivered": 0, "lapped": 0, "skipped": 0, "retries": 0,
                      "writer_gone": 0, "resumes": 0, "resets": 0, "window_start": 0, "last": 0}
        self._gone = False
        self._attach()
        self._start(self._head(), start)

    # -- open, validate, map (sections 2, 8, 11)

    def _attach(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound("ring %r does not exist (no %s); start its producer first, or wait for it"
                           % (self.name, self.path)) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafeFile("ring %r: %s is a symbolic link; remove it and restart the producer"
                                 % (self.name, self.path)) from None
            raise RingError("ring %r: open %s: %s" % (self.name, self.path, e)) from e
        try:
            st = os.fstat(fd)
            why = None
            if not stat.S_ISREG(st.st_mode):
                why = "is not a regular file"
            elif st.st_uid != os.geteuid():
                why = "belongs to uid %d, not to you (uid %d)" % (st.st_uid, os.geteuid())
            elif st.st_mode & 0o002:
                why = "is world-writable (mode %04o)" % (st.st_mode & 0o777)
            elif st.st_mode & 0o020 and not self.allow_group_writable:
                why = "is group-writable (mode %04o)" % (st.st_mode & 0o777)
            if why:
                raise UnsafeFile("ring %r: %s %s; refusing to read it, remove it and restart the producer"
                                 % (self.name, self.path, why))
            if not SUPER_SIZE <= st.st_size <= MAX_FILE_SIZE:
                raise Truncated("ring %r: %s is %d bytes; is a producer still creating it? otherwise remove it"
                                % (self.name, self.path, st.st_size))
            try:
                g = parse_superblock(os.pread(fd, SUPER_SIZE, 0), st.st_size)
            except RingError as e:
                raise type(e)("ring %r: %s; the segment is not a framering v%d ring, remove it and restart the producer"
                              % (self.name, e, VERSION)) from None
            mm = mmap.mmap(fd, g.file_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        except BaseException:
            os.close(fd)
            raise
        # The mapping is the truth from now on: re-validate the page we map,
        # in case the file was replaced between pread and mmap.
        try:
            g2 = parse_superblock(mm[:SUPER_SIZE], g.file_size)
            if vars(g2) != vars(g):
                raise Corrupt("geometry changed while opening")
        except BaseException:
            mm.close()
            os.close(fd)
            raise
        self._release_views()
        if self._mm is not None:
            self._mm.close()
            os.close(self._fd)
        self._fd, self._mm, self._ino, self.geometry = fd, mm, st.st_ino, g
        self._mv = memoryview(mm)
        self._u64 = self._mv.cast("Q")  # single aligned 8-byte loads (section 14)
        self._u32 = self._mv.cast("I")
        self._bytes = np.frombuffer(mm, dtype=np.uint8)
        self._notify_addr = self._bytes.ctypes.data + OFF_NOTIFY

    def _release_views(self):
        for attr in ("_u64", "_u32", "_mv"):
            v = getattr(self, attr, None)
            if v is not None:
                v.release()
                setattr(self, attr, None)
        self._bytes = None

    def close(self):
        """Unmap and close. Idempotent."""
        self._release_views()
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- live words: single aligned atomic loads

    def _head(self):
        return self._u64[OFF_HEAD // 8]

    def _notify(self):
        return self._u32[OFF_NOTIFY // 4]

    def _fence(self):
        self._fence_lock.release()
        self._fence_lock.acquire()

    def superblock(self):
        """Snapshot of the live superblock words."""
        q = self._u64
        return {"head": q[OFF_HEAD // 8], "generation": q[OFF_GENERATION // 8],
                "writer_pid": self._u32[OFF_WRITER_PID // 4], "heartbeat_ns": q[OFF_HEARTBEAT // 8],
                "frames_total": q[OFF_FRAMES_TOTAL // 8], "notify": self._notify()}

    # -- window (section 8)

    def _start(self, head, start):
        n = self.geometry.slots
        if start == "next":
            self.next = head + 1
        elif start == "oldest":
            self.next = max(head - n + 1, 1)
        else:
            self.next = max(head, 1)
        self.stats["window_start"] = self.next

    def _candidate(self, head):
        if head + 1 < self.next:  # numbering went back: ring re-created from scratch
            self.stats["resets"] += 1
            self._start(head, "oldest")
        if self.next > head:
            return None
        if self.mode == "latest":
            if head > self.next:
                self.stats["skipped"] += head - self.next
                self.next = head
        elif head - self.next >= self.geometry.slots:
            # lapped: resume half a ring behind the head (PROTOCOL.md section 8)
            resume = head - self.geometry.slots // 2 + 1
            self.stats["lapped"] += resume - self.next
            self.next = resume
        return self.next

    # -- the seqlock read (section 6)

    def _attempt(self, n):
        """Return ("got", Frame), ("lost", None) or ("torn", None)."""
        g = self.geometry
        base = g.slot_offset(n)
        seq_i = base // 8
        s1 = self._u64[seq_i]                                    # 1. load Seq
        self._fence()                                            #    acquire
        if s1 & 1:                                               # 2. odd: writer in the slot
            if self._head() + 1 >= n + g.slots:
                return "lost", None
            return "torn", None
        hdr = FrameHeader(bytes(self._mv[base:base + SLOT_HEADER_SIZE]))  # 3. copy header
        if hdr.frame_no != n:                                    # 4. another frame
            self._fence()
            return ("torn" if self._u64[seq_i] != s1 else "lost"), None
        why = hdr.problem(g)                                     # 5. validate the copy
        if why is not None:
            self._fence()
            if self._u64[seq_i] != s1:
                return "torn", None
            raise Corrupt("ring %r: frame %d header: %s; the segment is damaged, restart the producer"
                          % (self.name, n, why))
        poff = base + g.payload_offset                           # 6. copy payload and metadata
        payload = self._bytes[poff:poff + hdr.payload_len].copy()
        moff = base + SLOT_HEADER_SIZE
        meta = bytes(self._mv[moff:moff + hdr.meta_len])
        self._fence()                                            # 7. read fence
        if self._u64[seq_i] != s1:                               # 8, 9. Seq moved: torn
            return "torn", None
        f = Frame()                                              # 10. consistent
        f.number, f.generation, f.format = n, hdr.generation, hdr.format
        f.width, f.height, f.channels = hdr.width, hdr.height, hdr.channels
        f.capture_ns, f.publish_ns, f.wall_ns = hdr.capture_ns, hdr.publish_ns, hdr.wall_ns
        f.meta = meta
        if hdr.format == RAW:
            f.image = payload
        else:
            _, ch, bps, dtype = FORMATS[hdr.format]
            rows = payload.reshape(hdr.height, hdr.stride)[:, :hdr.width * ch * bps]
            f.image = np.ascontiguousarray(rows).view(dtype).reshape(hdr.height, hdr.width, ch)
        return "got", f

    # -- liveness (section 10)

    def _writer_state(self):
        """(alive, why)."""
        fl = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        try:
            res = fcntl.fcntl(self._fd, F_OFD_GETLK, fl)
        except OSError as e:
            return False, "cannot probe the writer lock: %s" % e
        l_type = struct.unpack(FLOCK, res)[0]
        pid = self._u32[OFF_WRITER_PID // 4]
        if l_type == fcntl.F_UNLCK:
            return False, "writer pid %d exited or closed the ring" % pid
        age = time.clock_gettime_ns(time.CLOCK_MONOTONIC) - self._u64[OFF_HEARTBEAT // 8]
        if self._u64[OFF_GENERATION // 8] != 0 and age > self.hung_after_ns:
            return False, "writer pid %d is alive but its heartbeat is %.3f s old (hung or stopped)" % (pid, age / 1e9)
        return True, ""

    def _replaced(self):
        try:
            return os.lstat(self.path).st_ino != self._ino
        except OSError:
            return False

    def _await_writer(self, deadline):
        while True:
            if self._replaced():
                try:
                    self._attach()
                    break
                except RingError:
                    pass
            elif self._writer_state()[0]:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("ring %r: no writer came back in time" % self.name)
            self._wait(self._notify(), 0.05, deadline)
        self._gone = False
        self.stats["resumes"] += 1

    # -- waiting (section 9)

    def _wait(self, v, slice_s, deadline):
        if deadline is not None:
            slice_s = max(min(slice_s, deadline - time.monotonic()), 0.0005)
        if self._futex is not None and self._futex.ok:
            self._futex.wait(self._notify_addr, v, slice_s)
        else:
            time.sleep(min(slice_s, 0.001))  # polling fallback: re-check every 1 ms

    def _pick(self, deadline):
        while True:
            if self._gone:
                self._await_writer(deadline)
            head = self._head()
            n = self._candidate(head)
            if n is not None:
                return n
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("ring %r: no frame in time" % self.name)
            v = self._notify()                 # 1. notify first
            if self._head() != head:           # 2. then re-check head
                continue
            self._wait(v, self.wait_slice, deadline)
            if self._head() != head:
                continue
            if self._futex is None or not self._futex.ok:
                # Polling: probe liveness about once per slice, not every ms.
                now = time.monotonic()
                if now - getattr(self, "_last_probe", 0) < self.wait_slice:
                    continue
                self._last_probe = now
            alive, why = self._writer_state()
            if not alive:
                self._gone = True
                self.stats["writer_gone"] += 1
                raise WriterGone("ring %r: %s; the next read waits for a writer to come back" % (self.name, why))

    def read(self, timeout=None):
        """Wait for the next frame (per mode) and return a Frame holding
        private copies. Raises TimeoutError, WriterGone (once per outage),
        Corrupt."""
        deadline = None if timeout is None else time.monotonic() + timeout
        spins = 0
        while True:
            n = self._pick(deadline)
            outcome, f = self._attempt(n)
            if outcome == "got":
                self.next = n + 1
                self.stats["delivered"] += 1
                self.stats["last"] = n
                return f
            if outcome == "lost":
                self.next = n + 1
                self.stats["lapped"] += 1
                self.stats["last"] = n
                continue
            self.stats["retries"] += 1
            spins += 1
            if spins & 15 == 0:
                time.sleep(0)  # yield
            if spins % 100000 == 0 and not self._writer_state()[0]:
                # A slot stuck odd with a dead writer: let _pick report it.
                self._gone = True
                self.stats["writer_gone"] += 1
                raise WriterGone("ring %r: slot of frame %d stays odd and the writer is gone" % (self.name, n))

    def __iter__(self):
        while True:
            yield self.read()


class _Futex:
    """FUTEX_WAIT through libc's syscall(2), shared (no FUTEX_PRIVATE_FLAG)."""

    class _Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    def __init__(self):
        self.ok = False
        if SYS_FUTEX is None or not sys.platform.startswith("linux"):
            return
        try:
            self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        except (OSError, AttributeError):
            return
        self._syscall.restype = ctypes.c_long
        self.ok = True

    def wait(self, addr, val, timeout_s):
        ts = self._Timespec(int(timeout_s), int((timeout_s % 1) * 1e9))
        # Returns 0 on a wake; -1 with EAGAIN, EINTR or ETIMEDOUT means "re-check".
        self._syscall(ctypes.c_long(SYS_FUTEX), ctypes.c_void_p(addr), ctypes.c_long(FUTEX_WAIT),
                      ctypes.c_long(val), ctypes.byref(ts), ctypes.c_void_p(None), ctypes.c_long(0))


# ---- command line -------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description="Read frames from a framering ring (format v1).")
    ap.add_argument("name", help="ring name (the file is DIR/framering.NAME)")
    ap.add_argument("--dir", default="/dev/shm", help="directory of ring objects (default /dev/shm)")
    ap.add_argument("--mode", choices=("ordered", "latest"), default="ordered")
    ap.add_argument("--start", choices=("newest", "next", "oldest"), default="newest")
    ap.add_argument("--count", type=int, default=0, help="exit after delivering this many frames (0: never)")
    ap.add_argument("--timeout", type=float, default=0, help="seconds to wait for one frame (0: forever)")
    ap.add_argument("--hash", action="store_true", help="print the SHA-256 of each image and its metadata in hex")
    ap.add_argument("--poll", action="store_true", help="poll every 1 ms instead of waiting on the futex")
    args = ap.parse_args(argv)
    try:
        r = RingReader(args.name, dir=args.dir, mode=args.mode, start=args.start, use_futex=not args.poll)
    except RingError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    with r:
        g = r.geometry
        print("ready slots=%d payload_cap=%d meta_cap=%d futex=%s" %
              (g.slots, g.payload_cap, g.meta_cap, bool(r._futex and r._futex.ok)), flush=True)
        delivered = 0
        code = 0
        while args.count <= 0 or delivered < args.count:
            try:
                f = r.read(timeout=args.timeout or None)
            except WriterGone as e:
                print("gone %s" % e, flush=True)
                continue
            except TimeoutError as e:
                print("error: %s" % e, file=sys.stderr)
                code = 1
                break
            except RingError as e:
                print("error: %s" % e, file=sys.stderr)
                code = 1
                break
            delivered += 1
            age_us = (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - f.publish_ns) / 1e3
            line = "frame %d gen=%d %s shape=%s age_us=%.0f" % (
                f.number, f.generation, f.format_name, "x".join(map(str, f.image.shape)), age_us)
            if args.hash:
                line += " sha256=%s meta=%s" % (hashlib.sha256(f.image.tobytes()).hexdigest(), f.meta.hex())
            print(line, flush=True)
        s = r.stats
        print("summary delivered=%d lapped=%d skipped=%d retries=%d window_start=%d last=%d writer_gone=%d resets=%d" % (
            s["delivered"], s["lapped"], s["skipped"], s["retries"], s["window_start"], s["last"],
            s["writer_gone"], s["resets"]), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
