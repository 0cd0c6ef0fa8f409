"""The byte-level pieces: CRC-32C, the test pattern, the superblock and slot
header codecs, names and sizes."""

import os
import re
import struct

import numpy as np
import pytest

import framering
from framering import _layout as L
from framering import pattern
from framering._crc import crc32c, crc32c_slow
from conftest import REPO


def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


@pytest.mark.parametrize("n", [1, 15, 4095, 16383, 16384, 16385, 65537, 300001])
def test_crc32c_vector_path_matches_byte_loop(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    assert crc32c(data) == crc32c_slow(data.tobytes())


@pytest.mark.parametrize("n", [16, 17, 100, 4111, 4112, 4113, 100000, 921600])
@pytest.mark.parametrize("f", [0, 1, 255, 256, 2 ** 40 + 7])
def test_pattern_crc_matches_generic_crc(n, f):
    a = pattern.pattern_bytes(n, f)
    assert pattern.stripes_crc(n, f) == crc32c(a[16:].tobytes())
    assert struct.unpack_from("<QII", a.tobytes()) == (f, crc32c(a[16:].tobytes()), n)
    for i in range(16, n, 997):
        assert a[i] == ((i >> 4) + f) & 0xFF


def test_pattern_worked_example():
    # Frame 1 of a 64-byte frame, first 32 bytes (PROTOCOL-DECISIONS D6).
    assert pattern.pattern_bytes(64, 1)[:32].tobytes().hex() == (
        "0100000000000000" "e1d7367e" "40000000" "02020202020202020202020202020202")


def test_pattern_check_catches_every_kind_of_damage():
    c = pattern.Checker()
    good = pattern.pattern_bytes(5000, 77)
    assert c.check(good, 77) is None
    assert "header says frame 77, want 78" in c.check(good, 78)
    mixed = good.copy()
    mixed[2000:] = pattern.pattern_bytes(5000, 78)[2000:]  # half of the next frame: torn
    assert "differs at byte 2000" in c.check(mixed, 77)
    bad_sum = good.copy()
    bad_sum[8] ^= 1
    assert "checksum" in c.check(bad_sum, 77)
    stripe = good.copy()
    stripe[4321] ^= 0x40
    assert "differs at byte 4321" in c.check(stripe, 77)
    # A consistent checksum over wrong stripes is still caught.
    fake = pattern.pattern_bytes(5000, 77 + 256)
    fake[:8] = np.frombuffer(struct.pack("<Q", 77), np.uint8)
    assert c.check(fake, 77) is None  # same stripes mod 256 and same checksum: indistinguishable, as in Go
    assert "says it has" in c.check(good[:4000], 77)


def _golden_fresh_superblock():
    """Section 1 of internal/layout/testdata/superblock.golden: the fresh superblock of
    4 slots x 1000 bytes (+256 metadata), created 1700000000123456789."""
    text = open(os.path.join(REPO, "internal", "layout", "testdata", "superblock.golden")).read()
    section = text.split("## 1.")[1].split("\n## ")[0]
    mem = bytearray(8192)
    last, off = None, 0
    repeat = False
    for line in section.splitlines()[1:]:
        if line.strip() == "*":
            repeat = True
            continue
        m = re.match(r"^([0-9a-f]{8})((?:\s+[0-9a-f]{2}){1,16})", line)
        if not m:
            continue
        off = int(m.group(1), 16)
        row = bytes(int(x, 16) for x in m.group(2).split())
        if repeat and last is not None:
            for o in range(last[0] + 16, off, 16):
                mem[o:o + 16] = last[1]
            repeat = False
        mem[off:off + len(row)] = row
        last = (off, row)
    return bytes(mem[:4096])


def test_encode_superblock_matches_go_golden_file():
    g = L.Geometry(4, 1000, 256)
    assert (g.payload_offset, g.slot_stride, g.file_size) == (4096, 8192, 36864)
    assert L.encode_superblock(g, 1700000000123456789) == _golden_fresh_superblock()


@pytest.mark.parametrize("slots,cap,meta,off,stride,size", [
    (8, 6220800, 4096, 8192, 6230016, 49844224),
    (4, 1000, 256, 4096, 8192, 36864),
    (8, 921600, 0, 4096, 925696, 7409664),
])
def test_geometry_table_of_protocol_section_4(slots, cap, meta, off, stride, size):
    g = L.Geometry(slots, cap, meta)
    assert (g.payload_offset, g.slot_stride, g.file_size) == (off, stride, size)


def test_parse_superblock_checks_in_order():
    g = L.Geometry(4, 1000, 256)
    sb = bytearray(L.encode_superblock(g, 1))
    assert L.parse_superblock(bytes(sb), g.file_size) == g

    def patched(off, fmt, v, fix_crc=True):
        b = bytearray(sb)
        struct.pack_into(fmt, b, off, v)
        if fix_crc:
            struct.pack_into("<I", b, 60, crc32c(bytes(b[:60])))
        return bytes(b)

    cases = [
        (b"NOTARING" + bytes(sb[8:]), framering.Incompatible, "magic"),
        (patched(8, "<I", 3, fix_crc=False), framering.Incompatible, "version is 3, want 2"),
        (patched(16, "<I", 8, fix_crc=False), framering.Corrupt, "checksum"),
        (patched(56, "<I", 1), framering.Incompatible, "flags"),
        (patched(12, "<I", 8192), framering.Incompatible, "superblock size"),
        (patched(40, "<Q", 0), framering.Corrupt, "payload capacity"),
        (patched(40, "<Q", (1 << 34) + 1), framering.Corrupt, "payload capacity"),
        (patched(16, "<I", 3), framering.Corrupt, "slot count"),
        (patched(16, "<I", 1 << 17), framering.Corrupt, "slot count"),
        (patched(20, "<I", (1 << 20) + 1), framering.Corrupt, "metadata capacity"),
        (patched(24, "<Q", 4096), framering.Corrupt, "slot stride"),
        (patched(32, "<Q", 0), framering.Corrupt, "payload offset"),
        (patched(48, "<Q", 1), framering.Corrupt, "file size"),
    ]
    for b, exc, text in cases:
        with pytest.raises(exc, match=text):
            L.parse_superblock(b, g.file_size)
    with pytest.raises(framering.Truncated):
        L.parse_superblock(bytes(sb), g.file_size - 1)
    with pytest.raises(framering.Truncated):
        L.parse_superblock(bytes(sb[:100]), 100)


def test_header_problem_matches_section_5():
    g = L.Geometry(4, 1000, 16)
    ok = dict(frame_no=1, width=10, height=20, channels=3, fmt=L.BGR8, stride=30, meta_len=0, payload_len=600)
    assert L.header_problem(g, **ok) is None
    for change, text in [
        (dict(payload_len=1001), "exceeds slot capacity"),
        (dict(fmt=0), "unknown pixel format"),
        (dict(fmt=9), "unknown pixel format"),
        (dict(meta_len=17), "metadata"),
        (dict(width=0), "width and height"),
        (dict(height=(1 << 20) + 1, payload_len=30 * ((1 << 20) + 1)), "exceeds"),
        (dict(channels=4), "channels"),
        (dict(stride=29, payload_len=580), "stride 29"),
        (dict(payload_len=630), "does not give payload length"),
        (dict(fmt=L.RAW, payload_len=0), "raw frame of 0 bytes"),
    ]:
        h = dict(ok, **change)
        assert text in L.header_problem(g, **h), change
    assert L.header_problem(g, **dict(ok, fmt=L.RAW, width=0, height=0, channels=0, stride=0, payload_len=5)) is None
    assert L.header_problem(g, **dict(ok, fmt=L.GRAY16, channels=1, stride=20, payload_len=400)) is None
    assert "stride" in L.header_problem(g, **dict(ok, fmt=L.GRAY16, channels=1, stride=19, payload_len=380))


def test_names_and_sizes():
    for good in ["cam0", "a", "x" * 200, "a.b_c-d"]:
        L.check_name(good)
    for bad in ["", ".", "..", "a/b", "x" * 201, "ä", "a b", None]:
        with pytest.raises(framering.InvalidName):
            L.check_name(bad)
    assert L.parse_size("640x480x3") == (640, 480, 3)
    assert L.parse_size("640x480") == (640, 480, 3)
    for bad in ["640", "0x480x3", "640x480x5", "axbxc", "640x480x3x1"]:
        with pytest.raises(framering.InvalidFrame):
            L.parse_size(bad)
