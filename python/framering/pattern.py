"""The checkable test pattern of ``send --pattern`` / ``recv --verify``
(PROTOCOL-DECISIONS D6; Go: internal/pattern).

A frame of n >= 16 payload bytes with frame number f::

    bytes 0..7    f, little-endian u64
    bytes 8..11   CRC-32C (Castagnoli) of bytes 16..n-1, little-endian
    bytes 12..15  n, little-endian u32
    byte  i >= 16 (i >> 4) + f, mod 256

Frames whose numbers differ mod 256 differ in every stripe byte and the
checksum covers the stripes, so a frame that mixes two frames fails
:func:`check`.

The stripes repeat every 4096 bytes (256 blocks of 16 equal bytes), so their
CRC is computed from one period and an affine-map power (O(log n)), not by
running over n bytes; :func:`check` compares the stripes exactly with numpy
and the stored CRC with that value, which is what Go's Check establishes.
"""

import struct

import numpy as np

from ._crc import _apply, _compose, _raw_bytes, _zeros_map

HEADER_LEN = 16
_PERIOD = 4096

_base_cache = {}


def _base(n):
    """uint8 array b with b[i] = (i >> 4) mod 256, read-only, cached."""
    b = _base_cache.get(n)
    if b is None:
        b = (np.arange(n, dtype=np.int64) >> 4).astype(np.uint8)
        b.flags.writeable = False
        if len(_base_cache) > 8:
            _base_cache.clear()
        _base_cache[n] = b
    return b


_crc_cache = {}
_period_map = None


def stripes_crc(n, f):
    """CRC-32C of bytes 16..n-1 of frame f's pattern (n bytes)."""
    key = (n, f & 0xFF)
    c = _crc_cache.get(key)
    if c is not None:
        return c
    global _period_map
    if _period_map is None:
        _period_map = _zeros_map(_PERIOD)
    f8 = f & 0xFF
    # One period: the bytes at offsets 16 .. 16+4095.
    period = bytes(((i >> 4) + f8) & 0xFF for i in range(HEADER_LEN, HEADER_LEN + _PERIOD))
    length = n - HEADER_LEN
    k, tail = divmod(length, _PERIOD)
    # Feeding one period maps the register x to A(x) = Z(x) ^ p, p the raw CRC
    # of the period from 0. Raise A to the k-th power by squaring, as
    # (linear map, constant) pairs: (M1, c1) o (M2, c2) = (M1 M2, M1 c2 ^ c1).
    p = _raw_bytes(0, period)
    acc_m, acc_c = None, 0  # identity
    sq_m, sq_c = _period_map, p
    while k:
        if k & 1:
            if acc_m is None:
                acc_m, acc_c = sq_m, sq_c
            else:
                acc_m, acc_c = _compose(sq_m, acc_m), _apply(sq_m, acc_c) ^ sq_c
        k >>= 1
        if k:
            sq_m, sq_c = _compose(sq_m, sq_m), _apply(sq_m, sq_c) ^ sq_c
    reg = 0xFFFFFFFF
    if acc_m is not None:
        reg = _apply(acc_m, reg) ^ acc_c
    reg = _raw_bytes(reg, period[:tail])
    c = reg ^ 0xFFFFFFFF
    if len(_crc_cache) > 4096:
        _crc_cache.clear()
    _crc_cache[key] = c
    return c


def _flat(buf):
    a = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, dtype=np.uint8)
    if a.dtype != np.uint8 or a.ndim != 1:
        if not a.flags.c_contiguous:
            raise ValueError("pattern: buffer must be contiguous")
        a = a.reshape(-1).view(np.uint8)
    return a


def fill(buf, f):
    """Write frame f's pattern into buf (a writable uint8 array or buffer of
    at least 16 bytes; all of it is the frame)."""
    a = _flat(buf)
    n = len(a)
    if n < HEADER_LEN:
        raise ValueError("pattern: frame of %d bytes is shorter than the %d-byte header" % (n, HEADER_LEN))
    np.add(_base(n)[HEADER_LEN:], np.uint8(f & 0xFF), out=a[HEADER_LEN:])
    stamp(a, f)


def stamp(buf, f):
    """Write only the header (number, checksum, length) of frame f's
    pattern, assuming the stripes are already f's."""
    a = _flat(buf)
    n = len(a)
    a[:HEADER_LEN] = np.frombuffer(struct.pack("<QII", f & 0xFFFFFFFFFFFFFFFF, stripes_crc(n, f), n & 0xFFFFFFFF),
                                   dtype=np.uint8)


class Checker:
    """Checks frames against the pattern; reuses a scratch buffer, so one
    Checker per thread."""

    def __init__(self):
        self._scratch = None

    def check(self, buf, f):
        """None if buf is exactly frame f's pattern, else a message saying
        where it differs."""
        a = _flat(buf)
        n = len(a)
        if n < HEADER_LEN:
            return "pattern: frame of %d bytes is shorter than the %d-byte header" % (n, HEADER_LEN)
        got, crc, nn = struct.unpack("<QII", a[:HEADER_LEN].tobytes())
        if nn != n & 0xFFFFFFFF:
            return "pattern: frame %d says it has %d bytes, got %d" % (got, nn, n)
        if got != f:
            return "pattern: header says frame %d, want %d" % (got, f)
        want = stripes_crc(n, f)
        if crc != want:
            return "pattern: frame %d checksum %#010x, want %#010x (torn or corrupt)" % (f, crc, want)
        if self._scratch is None or len(self._scratch) < n:
            self._scratch = np.empty(n, dtype=np.uint8)
        d = self._scratch[:n - HEADER_LEN]
        np.subtract(a[HEADER_LEN:], _base(n)[HEADER_LEN:], out=d)  # (i>>4)+f - (i>>4) = f (mod 256)
        f8 = f & 0xFF
        if len(d) and (d.min() != f8 or d.max() != f8):
            i = int(np.flatnonzero(d != f8)[0]) + HEADER_LEN
            return "pattern: frame %d differs at byte %d" % (f, i)
        return None


def check(buf, f):
    """None if buf is exactly frame f's pattern, else a message."""
    return Checker().check(buf, f)


def pattern_bytes(n, f):
    """Frame f's pattern of n bytes, as a new array."""
    a = np.empty(n, dtype=np.uint8)
    fill(a, f)
    return a
