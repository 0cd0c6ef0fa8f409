"""Exceptions raised by framering.

Every exception is a :class:`RingError`. The message says what happened and,
where a person can do something about it, what to do. The classes mirror the
Go sentinels of package ring (``ring.ErrNotFound`` is :class:`NotFound`, and
so on), so the two languages report the same conditions.
"""


class RingError(Exception):
    """Base class of every error framering raises."""


class InvalidName(RingError, ValueError):
    """The ring name is not 1 to 200 of ``[A-Za-z0-9._-]``, or is ``.``/``..``."""


class NotFound(RingError):
    """No ring of that name exists (yet)."""


class UnsafeFile(RingError):
    """The object under the ring's name is a symbolic link, not a regular
    file, owned by another user, or writable by others."""


class Incompatible(RingError):
    """Not a framering ring of the layout version this package reads
    (magic, version, superblock size or flags differ)."""


class Corrupt(RingError):
    """A superblock or slot field is out of range, its checksum does not
    match, or the Head cannot be believed."""


class Truncated(RingError):
    """The object is smaller than its superblock says (or than a superblock)."""


class NoSpace(RingError):
    """The shared-memory file system cannot hold the ring."""


class Busy(RingError):
    """Another process writes the ring. ``pid`` is the writer's pid as its
    superblock says (0 if unreadable)."""

    def __init__(self, msg, pid=0):
        super().__init__(msg)
        self.pid = pid


class InvalidFrame(RingError, ValueError):
    """Frame info that cannot describe a frame (sizes, format, stride)."""


class FrameTooLarge(RingError, ValueError):
    """A frame or its metadata is larger than the slot (or the caller's
    buffer) holds."""


class LoanOutstanding(RingError):
    """``reserve()`` while an earlier reservation is neither committed nor
    aborted."""


class ViewOutstanding(RingError):
    """A read or view while an earlier view has not been released."""


class WriterGone(RingError):
    """Raised once when the ring's writer died, closed or stopped its
    heartbeat; the next read waits for a writer to come back."""


class FrameOverwritten(RingError):
    """A view's slot was overwritten while the caller worked on it: whatever
    was computed from the view is garbage."""


class Closed(RingError):
    """The reader or writer was closed."""


class Cancelled(RingError):
    """A blocking read was interrupted by :meth:`Reader.cancel`."""


class Timeout(RingError, TimeoutError):
    """Nothing came before the deadline. Also a builtin ``TimeoutError``."""


class FutexError(RingError):
    """FUTEX_WAIT or FUTEX_WAKE failed with an error that is not a
    re-check (EFAULT, EINVAL, ENOSYS, ...): waiting cannot work here."""
