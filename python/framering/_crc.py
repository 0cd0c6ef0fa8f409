"""CRC-32C (Castagnoli) in pure Python and numpy.

Reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF, final XOR
0xFFFFFFFF: ``crc32c(b"123456789") == 0xE3069283``. The superblock checksum
(60 bytes) uses the byte loop; the test pattern's checksum covers whole
frames, so long inputs take a vectorised path:

The input is cut into K lanes of M bytes and numpy runs the table-driven
byte step on all K lane registers at once (M steps of K-wide array
operations). A CRC register started at 0 is linear over GF(2) and unchanged
by leading zero bytes, so the input is left-padded with zeros to K*M bytes
and the lane registers are folded pairwise, ``Z(left) ^ right``, where Z
feeds the left lane's register through as many zero bytes as the right part
is long. Z is a linear map of 32-bit words, applied through four 256-entry
tables built from its images of the 32 unit vectors.
"""

import numpy as np

POLY = 0x82F63B78


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        t.append(c)
    return t


_TABLE = _table()
_NP_TABLE = np.array(_TABLE, dtype=np.uint32)


def _raw_bytes(reg, data):
    """Feed data through the raw register reg (no pre/post conditioning)."""
    t = _TABLE
    for b in data:
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


# A linear map on 32-bit registers is kept as its 32 images of the unit
# vectors (bit i set).


def _apply(images, x):
    r = 0
    i = 0
    while x:
        if x & 1:
            r ^= images[i]
        x >>= 1
        i += 1
    return r


def _compose(a, b):
    """The map x -> a(b(x))."""
    return [_apply(a, v) for v in b]


_ZERO1 = [_raw_bytes(1 << i, b"\x00") for i in range(32)]  # one zero byte
_pow_cache = {0: _ZERO1}  # k -> map for 2**k zero bytes


def _zeros_map(n):
    """The map that feeds a register through n zero bytes."""
    result = None
    k = 0
    while n:
        if k not in _pow_cache:
            p = _pow_cache[k - 1]
            _pow_cache[k] = _compose(p, p)
        if n & 1:
            m = _pow_cache[k]
            result = m if result is None else _compose(m, result)
        n >>= 1
        k += 1
    return result if result is not None else [1 << i for i in range(32)]


_tables_cache = {}


def _zeros_tables(n):
    """Four 256-entry uint32 tables applying the n-zero-byte map to a vector
    of registers: Z(x) = T0[x&255] ^ T1[x>>8&255] ^ T2[x>>16&255] ^ T3[x>>24]."""
    t = _tables_cache.get(n)
    if t is None:
        images = _zeros_map(n)
        v = np.arange(256, dtype=np.uint32)
        t = []
        for byte in range(4):
            tab = np.zeros(256, dtype=np.uint32)
            for bit in range(8):
                mask = ((v >> bit) & 1).astype(bool)
                tab[mask] ^= np.uint32(images[8 * byte + bit])
            t.append(tab)
        _tables_cache[n] = t
    return t


def _apply_tables(t, x):
    b = x.view(np.uint8).reshape(-1, 4)  # little-endian: byte 0 is bits 0..7
    return t[0][b[:, 0]] ^ t[1][b[:, 1]] ^ t[2][b[:, 2]] ^ t[3][b[:, 3]]


_LANE = 128  # bytes per lane
_VECTOR_MIN = 1 << 14  # shorter inputs: the byte loop is as fast


def _raw_lanes(buf):
    """Raw CRC (register 0 in, no final XOR) of a 1-D uint8 array."""
    n = len(buf)
    lanes = 1
    while lanes * _LANE < n:
        lanes <<= 1
    pad = lanes * _LANE - n
    if pad:
        data = np.zeros(lanes * _LANE, dtype=np.uint8)
        data[pad:] = buf
    else:
        data = buf
    # Column t of cols holds byte t of every lane, contiguous.
    cols = np.ascontiguousarray(data.reshape(lanes, _LANE).T)
    reg = np.zeros(lanes, dtype=np.uint32)
    low = reg.view(np.uint8)[::4]  # low byte of every register (little-endian)
    idx = np.empty(lanes, dtype=np.uint8)
    tab = _NP_TABLE
    for t in range(_LANE):
        np.bitwise_xor(low, cols[t], out=idx)
        g = tab[idx]
        reg >>= 8
        reg ^= g
    size = _LANE
    while len(reg) > 1:
        pair = reg.reshape(-1, 2)
        reg = _apply_tables(_zeros_tables(size), np.ascontiguousarray(pair[:, 0])) ^ pair[:, 1]
        size *= 2
    return int(reg[0])


_init_cache = {}


def crc32c(data):
    """CRC-32C of a bytes-like object or a numpy array (its raw bytes)."""
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = len(buf)
    if n < _VECTOR_MIN:
        return _raw_bytes(0xFFFFFFFF, buf.tobytes()) ^ 0xFFFFFFFF
    # CRC with initial register I over n bytes = Z_n(I) ^ raw CRC from 0.
    init = _init_cache.get(n)
    if init is None:
        init = _apply(_zeros_map(n), 0xFFFFFFFF)
        if len(_init_cache) < 64:
            _init_cache[n] = init
    return init ^ _raw_lanes(buf) ^ 0xFFFFFFFF


def crc32c_slow(data):
    """The byte loop, for tests."""
    return _raw_bytes(0xFFFFFFFF, bytes(data)) ^ 0xFFFFFFFF
