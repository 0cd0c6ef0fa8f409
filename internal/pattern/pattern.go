// Package pattern fills frames with a checkable test pattern and verifies
// them word by word. framering's stress tests, demo, benchmarks and the
// CLI's send --pattern / recv --verify all use it, and the legacy peers in
// C and Python implement the same formula.
//
// # Layout
//
// A frame of n bytes for frame number f:
//
//	bytes 0..7   f, little-endian
//	bytes 8..11  CRC-32C (Castagnoli) of bytes 16..n-1
//	bytes 12..15 n, little-endian uint32
//	byte  i>=16  uint8(i>>4 + f)   (visible as diagonal stripes that move)
//
// Frames with numbers that differ mod 256 differ in every byte, and the
// checksum covers the rest, so a frame that mixes two frames fails Check.
package pattern

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// HeaderLen is the number of bytes before the stripes.
const HeaderLen = 16

var table = crc32.MakeTable(crc32.Castagnoli)

// Byte returns the pattern byte at offset i >= 16 of frame f.
func Byte(f uint64, i int) byte { return byte(uint64(i>>4) + f) }

// Fill writes frame f's pattern into b. b must be at least HeaderLen bytes.
func Fill(b []byte, f uint64) {
	fillStripes(b, f)
	Stamp(b, f)
}

func fillStripes(b []byte, f uint64) {
	// 16 equal bytes per step: write them as two words.
	i := HeaderLen
	for ; i+16 <= len(b); i += 16 {
		v := uint64(Byte(f, i)) * 0x0101010101010101
		binary.LittleEndian.PutUint64(b[i:], v)
		binary.LittleEndian.PutUint64(b[i+8:], v)
	}
	for ; i < len(b); i++ {
		b[i] = Byte(f, i)
	}
}

// Stamp writes only the header (number, checksum, length) over whatever b
// holds: the cheap form for benchmarks that reuse the payload.
func Stamp(b []byte, f uint64) {
	binary.LittleEndian.PutUint64(b[0:], f)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[HeaderLen:], table))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(b)))
}

// Verify checks a stamped frame's header and checksum and returns its
// number. It does not check the stripes: see Check.
func Verify(b []byte) (uint64, error) {
	if len(b) < HeaderLen {
		return 0, fmt.Errorf("pattern: frame of %d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	f := binary.LittleEndian.Uint64(b)
	if n := binary.LittleEndian.Uint32(b[12:]); n != uint32(len(b)) {
		return f, fmt.Errorf("pattern: frame %d says it has %d bytes, got %d", f, n, len(b))
	}
	if want, got := binary.LittleEndian.Uint32(b[8:]), crc32.Checksum(b[HeaderLen:], table); want != got {
		return f, fmt.Errorf("pattern: frame %d checksum %#08x, computed %#08x (torn or corrupt)", f, want, got)
	}
	return f, nil
}

// Check verifies that b is exactly frame f's pattern: header, checksum and
// every word of the stripes.
func Check(b []byte, f uint64) error {
	got, err := Verify(b)
	if err != nil {
		return err
	}
	if got != f {
		return fmt.Errorf("pattern: header says frame %d, want %d", got, f)
	}
	i := HeaderLen
	for ; i+16 <= len(b); i += 16 {
		v := uint64(Byte(f, i)) * 0x0101010101010101
		if binary.LittleEndian.Uint64(b[i:]) != v || binary.LittleEndian.Uint64(b[i+8:]) != v {
			return fmt.Errorf("pattern: frame %d differs at byte %d", f, i)
		}
	}
	for ; i < len(b); i++ {
		if b[i] != Byte(f, i) {
			return fmt.Errorf("pattern: frame %d differs at byte %d", f, i)
		}
	}
	return nil
}
