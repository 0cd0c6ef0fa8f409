"""System calls framering needs beyond the os module: shared futexes through
libc's syscall(2) with ctypes, OFD locks through fcntl, and the read/write
fence. Nothing here is specific to the ring format.
"""

import ctypes
import errno
import fcntl
import os
import platform
import struct
import sys
import threading
import time

from . import errors

if sys.byteorder != "little" or struct.calcsize("P") != 8:
    raise ImportError("framering needs a little-endian 64-bit host (x86-64 or arm64)")

# ---- futex (PROTOCOL.md section 9, decision D7) ------------------------------

SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine().lower())
FUTEX_WAIT = 0  # shared futexes only: never FUTEX_PRIVATE_FLAG (128)
FUTEX_WAKE = 1
INT_MAX = 0x7FFFFFFF
# FUTEX_WAIT results that mean "look again", not failure.
_RECHECK = (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_syscall = None
if SYS_FUTEX is not None and sys.platform.startswith("linux"):
    try:
        _syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        _syscall = None
if _syscall is not None:
    # syscall(2) is variadic; every argument is passed as a full 64-bit
    # register value. The address in particular is a c_void_p: passing it as
    # a Python int would make ctypes truncate it to a 32-bit C int and the
    # kernel answer EFAULT on every call.
    _syscall.restype = ctypes.c_long
    _syscall.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_long, ctypes.c_long,
                         ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]


def futex_available():
    return _syscall is not None


def futex_wait(addr, val, timeout_s):
    """Sleep while the 32-bit word at addr holds val, for at most timeout_s
    seconds (> 0). Returns on a wake, a changed value, a signal or the
    timeout: the caller re-checks its condition in every case. Raises
    FutexError for any other result (EFAULT, EINVAL, ENOSYS, ...), which
    would otherwise turn every wait into a busy loop. ctypes releases the
    GIL for the call."""
    if _syscall is None:
        raise errors.FutexError("futex: no futex system call on this platform (%s %s); framering needs Linux on "
                                "x86-64 or arm64" % (sys.platform, platform.machine()))
    sec = int(timeout_s)
    ts = _Timespec(sec, max(0, min(999_999_999, int((timeout_s - sec) * 1e9))))
    r = _syscall(SYS_FUTEX, addr, FUTEX_WAIT, val & 0xFFFFFFFF, ctypes.addressof(ts), None, 0)
    if r == -1:
        e = ctypes.get_errno()
        if e not in _RECHECK:
            raise errors.FutexError("futex wait on %#x: %s (errno %d); waiting cannot work, this is a bug or an "
                                    "unsupported kernel" % (addr, os.strerror(e), e))


def futex_wake(addr, n=INT_MAX):
    """Wake up to n waiters on the shared futex at addr; returns how many."""
    if _syscall is None:
        return 0
    r = _syscall(SYS_FUTEX, addr, FUTEX_WAKE, n, None, None, 0)
    if r == -1:
        e = ctypes.get_errno()
        raise errors.FutexError("futex wake on %#x: %s (errno %d)" % (addr, os.strerror(e), e))
    return r


# ---- OFD locks (sections 7 and 10) ------------------------------------------

# struct flock on LP64 Linux: l_type@0 l_whence@2 l_start@8 l_len@16 l_pid@24, 32 bytes.
_FLOCK = "=hh4xqqi4x"
F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)


def ofd_lock_write(fd):
    """Take the OFD write lock on the whole file without waiting. Returns
    False if another open file description holds a conflicting lock."""
    fl = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    while True:
        try:
            fcntl.fcntl(fd, F_OFD_SETLK, fl)
            return True
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise


def ofd_write_locked(fd):
    """Whether some other open file description holds a write lock on the
    file (F_OFD_GETLK: takes no lock, works on a read-only descriptor)."""
    fl = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    res = fcntl.fcntl(fd, F_OFD_GETLK, fl)
    return struct.unpack(_FLOCK, res)[0] != fcntl.F_UNLCK


# ---- clocks -------------------------------------------------------------------

def monotonic_ns():
    """CLOCK_MONOTONIC in ns: the clock of Heartbeat, PublishNs, CaptureNs."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ---- fences -------------------------------------------------------------------

class Fence:
    """A full memory barrier for the seqlock, without a compiler.

    CPython has no fence. Releasing then re-acquiring a private
    threading.Lock runs, on Linux, glibc's sem_post (an atomic
    read-modify-write with release order) then sem_trywait (one with
    acquire order); POSIX lists both among the functions that "synchronize
    memory" (XBD 4.12). Loads and stores before the release cannot move
    after it, loads and stores after the acquire cannot move before it, and
    arm64 keeps a release followed by an acquire in order. On x86-64 (TSO)
    no fence is needed at all (loads are not reordered with loads, stores
    not with stores, and the C compiler cannot move accesses across the
    separate interpreter calls); the fence is used there too so that one
    code path is tested, at about 0.1 us.

    This relies on CPython's lock being built from atomic read-modify-write
    operations with release and acquire order (a glibc semaphore in CPython
    3.11 on Linux, the version tested), not on a documented Python
    guarantee, and it has only run on x86-64.
    """

    __slots__ = ("_lock",)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()

    def __call__(self):
        self._lock.release()
        self._lock.acquire()
