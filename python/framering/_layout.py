"""The segment format, version 2 (docs/PROTOCOL.md sections 3 to 5, 11).

Offsets, limits, pixel formats, the geometry, and the parsers of the
superblock and of a slot header. The parsers work on private copies
(``bytes``), never on the live mapping, and never raise anything but
framering errors, whatever the bytes hold.
"""

import re
import struct

import numpy as np

from . import errors
from ._crc import crc32c

MAGIC = b"FRMRING\x00"
VERSION = 2
PAGE = 4096
SUPER_SIZE = 4096
SLOT_HEADER_SIZE = 128
MIN_SLOTS, MAX_SLOTS = 2, 1 << 16
MAX_PAYLOAD_CAP = 1 << 34
MAX_META_CAP = 1 << 20
MAX_FILE_SIZE = 1 << 40
MAX_DIM = 1 << 20
MAX_STRIDE = (1 << 31) - 1
CHECKSUM_LEN = 60
DEFAULT_DIR = "/dev/shm"
FILE_PREFIX = "framering."
TMP_PREFIX = ".framering-tmp."
MAX_NAME_LEN = 200
# Frame numbers, heads and generations at or above this cannot be believed:
# head + 1 or head + N would wrap (PROTOCOL-DECISIONS D3, D4).
ABSURD = 1 << 63

# Superblock offsets (section 3).
OFF_VERSION = 8
OFF_SLOT_COUNT = 16
OFF_CHECKSUM = 60
OFF_WRITER_PID = 64
OFF_WRITER_START = 72
OFF_GENERATION = 80
OFF_CREATED = 88
OFF_HEARTBEAT = 128
OFF_HEAD = 192
OFF_NOTIFY = 200
OFF_FRAMES_TOTAL = 256
OFF_BYTES_TOTAL = 264

# The same as indexes into 8-byte (Q) and 4-byte (I) views of the mapping.
Q_WRITER_START = OFF_WRITER_START // 8
Q_GENERATION = OFF_GENERATION // 8
Q_CREATED = OFF_CREATED // 8
Q_HEARTBEAT = OFF_HEARTBEAT // 8
Q_HEAD = OFF_HEAD // 8
Q_FRAMES_TOTAL = OFF_FRAMES_TOTAL // 8
Q_BYTES_TOTAL = OFF_BYTES_TOTAL // 8
I_WRITER_PID = OFF_WRITER_PID // 4
I_NOTIFY = OFF_NOTIFY // 4

# Slot header (section 4), after Seq: FrameNo, Generation, Width, Height,
# Channels, Format, Stride, MetaLen, PayloadLen, PublishNs, CaptureNs, WallNs.
SLOT_FIELDS = struct.Struct("<QQIIIIIIQqqq")
SLOT_FIELDS_OFF = 8
# Offsets a writer stores into.
SLOT_OFF_FRAME_NO = 8
SLOT_OFF_PAYLOAD_LEN = 48

# Pixel formats (section 5): number -> (name, channels, bytes per sample, dtype).
GRAY8, BGR8, RGB8, BGRA8, RGBA8, GRAY16, YUYV, RAW = range(1, 9)
FORMATS = {
    GRAY8: ("gray8", 1, 1, np.dtype(np.uint8)),
    BGR8: ("bgr8", 3, 1, np.dtype(np.uint8)),
    RGB8: ("rgb8", 3, 1, np.dtype(np.uint8)),
    BGRA8: ("bgra8", 4, 1, np.dtype(np.uint8)),
    RGBA8: ("rgba8", 4, 1, np.dtype(np.uint8)),
    GRAY16: ("gray16", 1, 2, np.dtype("<u2")),
    YUYV: ("yuyv", 2, 1, np.dtype(np.uint8)),
    RAW: ("raw", 0, 1, np.dtype(np.uint8)),
}
FORMAT_NUMBERS = {v[0]: k for k, v in FORMATS.items()}

_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,200}\Z")


def check_name(name):
    """Raise InvalidName unless name is a valid ring name."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        shown = name if isinstance(name, str) and len(name) <= 40 else repr(name)[:40] + "..."
        raise errors.InvalidName("invalid ring name %r: use 1 to %d of A-Z a-z 0-9 . _ -, not . or .."
                                 % (shown, MAX_NAME_LEN))


def ring_path(dir, name):
    import os
    return os.path.join(dir or DEFAULT_DIR, FILE_PREFIX + name)


def format_number(fmt):
    """A pixel format given as a number or a name -> its number."""
    if isinstance(fmt, str):
        n = FORMAT_NUMBERS.get(fmt.lower())
        if n is None:
            raise errors.InvalidFrame("unknown pixel format %r; use one of %s"
                                      % (fmt, ", ".join(v[0] for v in FORMATS.values())))
        return n
    if isinstance(fmt, (int, np.integer)) and int(fmt) in FORMATS:
        return int(fmt)
    raise errors.InvalidFrame("unknown pixel format %r; use one of %s"
                              % (fmt, ", ".join(v[0] for v in FORMATS.values())))


def format_name(fmt):
    f = FORMATS.get(fmt)
    return f[0] if f else "PixelFormat(%d)" % fmt


def format_for_channels(c, dtype=np.uint8):
    """The default format of an image with c channels (OpenCV's view):
    1 gray8 (gray16 for uint16), 2 yuyv, 3 bgr8, 4 bgra8."""
    if c == 1:
        return GRAY16 if np.dtype(dtype).itemsize == 2 else GRAY8
    return {2: YUYV, 3: BGR8, 4: BGRA8}.get(c, 0)


def parse_size(s):
    """Parse "WxHxC" (or "WxH": 3 channels) like the Go CLI."""
    parts = s.strip().lower().split("x")
    if len(parts) == 2:
        parts.append("3")
    bad = errors.InvalidFrame("size %r is not WxHxC with positive numbers (example: 1920x1080x3)" % s)
    if len(parts) != 3:
        raise bad
    v = []
    for p in parts:
        if not p.isdigit():
            raise bad
        n = int(p)
        if n <= 0 or n > MAX_DIM:
            raise bad
        v.append(n)
    if v[2] > 4:
        raise errors.InvalidFrame("size %r has %d channels; framering knows 1 to 4" % (s, v[2]))
    return v[0], v[1], v[2]


def align_up(x, a):
    return (x + a - 1) & ~(a - 1)


class Geometry:
    """A ring's shape: slot count, payload and metadata capacity per slot,
    and the sizes derived from them (section 4)."""

    __slots__ = ("slots", "payload_cap", "meta_cap", "payload_offset", "slot_stride", "file_size")

    def __init__(self, slots, payload_cap, meta_cap):
        self.slots = slots
        self.payload_cap = payload_cap
        self.meta_cap = meta_cap
        self.payload_offset = align_up(SLOT_HEADER_SIZE + meta_cap, PAGE)
        self.slot_stride = self.payload_offset + align_up(payload_cap, PAGE)
        self.file_size = SUPER_SIZE + slots * self.slot_stride

    def check(self):
        """Raise InvalidFrame unless the geometry is within the format's limits."""
        s = self.slots
        if not (isinstance(s, int) and MIN_SLOTS <= s <= MAX_SLOTS and s & (s - 1) == 0):
            raise errors.InvalidFrame("slot count %r is not a power of two in [%d, %d]" % (s, MIN_SLOTS, MAX_SLOTS))
        if not 1 <= self.payload_cap <= MAX_PAYLOAD_CAP:
            raise errors.InvalidFrame("slot payload size %d is outside [1, %d]" % (self.payload_cap, MAX_PAYLOAD_CAP))
        if not 0 <= self.meta_cap <= MAX_META_CAP:
            raise errors.InvalidFrame("metadata size %d is outside [0, %d]" % (self.meta_cap, MAX_META_CAP))
        if self.file_size > MAX_FILE_SIZE:
            raise errors.InvalidFrame("ring of %d bytes exceeds %d" % (self.file_size, MAX_FILE_SIZE))
        return self

    def slot_offset(self, n):
        return SUPER_SIZE + (n & (self.slots - 1)) * self.slot_stride

    def __eq__(self, other):
        return (isinstance(other, Geometry) and self.slots == other.slots
                and self.payload_cap == other.payload_cap and self.meta_cap == other.meta_cap)

    def __hash__(self):
        return hash((self.slots, self.payload_cap, self.meta_cap))

    def __repr__(self):
        return "Geometry(slots=%d, payload_cap=%d, meta_cap=%d)" % (self.slots, self.payload_cap, self.meta_cap)

    def __str__(self):
        return "%d slots x %d bytes (+%d metadata)" % (self.slots, self.payload_cap, self.meta_cap)


def encode_superblock(g, created_ns):
    """The superblock page of a fresh ring of geometry g: static fields,
    Created and the checksum; every live word zero (Go's EncodeSuperblock)."""
    g.check()
    b = bytearray(SUPER_SIZE)
    b[0:8] = MAGIC
    struct.pack_into("<IIIIQQQQI", b, 8, VERSION, SUPER_SIZE, g.slots, g.meta_cap,
                     g.slot_stride, g.payload_offset, g.payload_cap, g.file_size, 0)
    struct.pack_into("<q", b, OFF_CREATED, created_ns)
    struct.pack_into("<I", b, OFF_CHECKSUM, crc32c(bytes(b[:CHECKSUM_LEN])))
    return bytes(b)


def superblock_readable(b):
    """Whether a superblock copy has the right magic, version and checksum:
    its live words may be carried over into a replacement (D4)."""
    if len(b) < SUPER_SIZE or bytes(b[0:8]) != MAGIC:
        return False
    (version,) = struct.unpack_from("<I", b, OFF_VERSION)
    (stored,) = struct.unpack_from("<I", b, OFF_CHECKSUM)
    return version == VERSION and stored == crc32c(bytes(b[:CHECKSUM_LEN]))


def parse_superblock(b, file_size):
    """Validate a copy of the superblock page against the object's size, in
    the order of section 11 (checks 2 to 11), and return its Geometry."""
    if len(b) < SUPER_SIZE or file_size < SUPER_SIZE:
        raise errors.Truncated("%d bytes, a superblock needs %d" % (min(len(b), file_size), SUPER_SIZE))
    if bytes(b[0:8]) != MAGIC:
        raise errors.Incompatible("magic is %r, want %r: not a framering ring" % (bytes(b[0:8]), MAGIC))
    (version,) = struct.unpack_from("<I", b, OFF_VERSION)
    if version != VERSION:
        raise errors.Incompatible("version is %d, want %d" % (version, VERSION))
    (stored,) = struct.unpack_from("<I", b, OFF_CHECKSUM)
    computed = crc32c(bytes(b[:CHECKSUM_LEN]))
    if stored != computed:
        raise errors.Corrupt("superblock checksum %#010x, computed %#010x" % (stored, computed))
    (super_size, slots, meta_cap, stride, pay_off, pay_cap, fsize, flags) = struct.unpack_from("<IIIQQQQI", b, 12)
    if flags != 0:
        raise errors.Incompatible("flags are %#x, want 0 (a v%d reader knows none)" % (flags, VERSION))
    if super_size != SUPER_SIZE:
        raise errors.Incompatible("superblock size is %d, want %d" % (super_size, SUPER_SIZE))
    if not 1 <= pay_cap <= MAX_PAYLOAD_CAP:
        raise errors.Corrupt("payload capacity %d is outside [1, %d]" % (pay_cap, MAX_PAYLOAD_CAP))
    if not (MIN_SLOTS <= slots <= MAX_SLOTS and slots & (slots - 1) == 0):
        raise errors.Corrupt("slot count %d is not a power of two in [%d, %d]" % (slots, MIN_SLOTS, MAX_SLOTS))
    if meta_cap > MAX_META_CAP:
        raise errors.Corrupt("metadata capacity %d exceeds %d" % (meta_cap, MAX_META_CAP))
    g = Geometry(slots, pay_cap, meta_cap)
    if g.file_size > MAX_FILE_SIZE:
        raise errors.Corrupt("ring of %d bytes exceeds %d" % (g.file_size, MAX_FILE_SIZE))
    for what, got, want in (("slot stride", stride, g.slot_stride),
                            ("payload offset", pay_off, g.payload_offset),
                            ("file size", fsize, g.file_size)):
        if got != want:
            raise errors.Corrupt("%s is %d, geometry %s gives %d" % (what, got, g, want))
    if file_size < g.file_size:
        raise errors.Truncated("object is %d bytes, superblock says %d" % (file_size, g.file_size))
    return g


def header_problem(g, frame_no, width, height, channels, fmt, stride, meta_len, payload_len):
    """Why a slot header copy cannot describe a frame of geometry g, or None
    (sections 5 and 11; the same order as Go's SlotHeader.Info)."""
    if payload_len > g.payload_cap:
        return "frame %d payload length %d exceeds slot capacity %d" % (frame_no, payload_len, g.payload_cap)
    f = FORMATS.get(fmt)
    if f is None:
        return "frame %d header: unknown pixel format %d" % (frame_no, fmt)
    if meta_len > g.meta_cap:
        return "frame %d header: %d bytes of metadata, the slots hold %d" % (frame_no, meta_len, g.meta_cap)
    if fmt == RAW:
        return None if payload_len >= 1 else "frame %d header: raw frame of 0 bytes" % frame_no
    if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM):
        return "frame %d header: %dx%d; width and height must be in [1, %d]" % (frame_no, width, height, MAX_DIM)
    if channels != f[1]:
        return "frame %d header: %s has %d channels, not %d" % (frame_no, f[0], f[1], channels)
    row = width * f[1] * f[2]
    if not row <= stride <= MAX_STRIDE:
        return "frame %d header: stride %d is smaller than a row of %d bytes" % (frame_no, stride, row)
    if payload_len != stride * height:
        return ("frame %d header: %dx%dx%d %s stride %d does not give payload length %d"
                % (frame_no, width, height, channels, f[0], stride, payload_len))
    return None
