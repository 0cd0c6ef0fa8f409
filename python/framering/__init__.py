"""framering for Python: read and write framering rings (segment format v2)
in pure Python with numpy and ctypes.

    import framering

    with framering.Writer("cam0", shape=(480, 640, 3)) as w:     # bgr8
        w.publish(image)                                          # copy in
        img = w.reserve(); fill(img); w.commit()                  # in place

    with framering.Reader("cam0", wait=True) as r:
        f = r.read(timeout=5)            # f.image: private (H, W, C) copy
        with r.view() as img:            # read-only, aliases the slot
            result = process(img)        # exit raises FrameOverwritten if stale
        print(r.stats)

See python/README.md and docs/PROTOCOL.md.
"""

from ._layout import (BGR8, BGRA8, DEFAULT_DIR, FORMATS, GRAY8, GRAY16, RAW, RGB8, RGBA8, VERSION, YUYV, Geometry,
                      check_name, format_name, format_number, parse_size, ring_path)
from .errors import (Busy, Cancelled, Closed, Corrupt, FrameOverwritten, FrameTooLarge, FutexError, Incompatible,
                     InvalidFrame, InvalidName, LoanOutstanding, NoSpace, NotFound, RingError, Timeout, Truncated,
                     UnsafeFile, ViewOutstanding, WriterGone)
from .reader import Frame, Reader, Stats, View
from .writer import Writer, remove_stale_tmp

__version__ = "0.2.0"

__all__ = [
    "Reader", "Writer", "Frame", "View", "Stats", "Geometry",
    "RingError", "InvalidName", "NotFound", "UnsafeFile", "Incompatible", "Corrupt", "Truncated", "NoSpace",
    "Busy", "InvalidFrame", "FrameTooLarge", "LoanOutstanding", "ViewOutstanding", "WriterGone",
    "FrameOverwritten", "Closed", "Cancelled", "Timeout", "FutexError",
    "GRAY8", "BGR8", "RGB8", "BGRA8", "RGBA8", "GRAY16", "YUYV", "RAW", "FORMATS", "VERSION", "DEFAULT_DIR",
    "check_name", "format_name", "format_number", "parse_size", "ring_path", "remove_stale_tmp",
]
