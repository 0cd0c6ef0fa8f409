package bench

import (
	"encoding/binary"

	"github.com/framering/framering/internal/pattern"
)

// Every benchmark frame is
//
//	off  size
//	  0     8  send time, CLOCK_MONOTONIC ns (the socket/pipe/legacy "frame header")
//	  8     8  sequence number 1, 2, 3, ... of the writer
//	 16     …  a pattern frame stamped with the same number (internal/pattern):
//	           number, CRC-32C of everything after its 16-byte header, length
//
// Before stamping, the writer puts the low byte of the number at the start
// of every 4 KiB page, so consecutive frames differ all over and a frame
// made of two frames fails the checksum. The reader verifies the checksum
// and that the pattern's number matches the header's: a frame that fails
// and was accepted anyway is a torn frame accepted.
const (
	offSend   = 0
	offSeq    = 8
	benchHdr  = 16
	markEvery = 4096
	firstMark = benchHdr + pattern.HeaderLen
	minFrame  = benchHdr + pattern.HeaderLen + 16
)

// newFrame returns a frame buffer of n bytes with the stripes filled in.
func newFrame(n int) []byte {
	b := make([]byte, n)
	pattern.Fill(b[benchHdr:], 0)
	return b
}

// prepare makes b frame seq: marks, header number, pattern stamp (the
// checksum over the payload). The send time is set separately, just
// before the frame goes out.
func prepare(b []byte, seq uint64) {
	m := byte(seq)
	for i := firstMark; i < len(b); i += markEvery {
		b[i] = m
	}
	binary.LittleEndian.PutUint64(b[offSeq:], seq)
	pattern.Stamp(b[benchHdr:], seq)
}

// setSend writes the send time.
func setSend(b []byte, ns int64) { binary.LittleEndian.PutUint64(b[offSend:], uint64(ns)) }

// setSeq writes the header's sequence number.
func setSeq(b []byte, seq uint64) { binary.LittleEndian.PutUint64(b[offSeq:], seq) }

// sendTime reads the send time.
func sendTime(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b[offSend:])) }

// frameSeq reads the header's sequence number (untrusted if torn).
func frameSeq(b []byte) uint64 { return binary.LittleEndian.Uint64(b[offSeq:]) }

// verify reports whether b is one whole frame: the checksum matches, the
// pattern's number is the header's, and the first mark (inside the
// checksummed part) is that number's, which catches the headers of one
// frame over the body of another.
func verify(b []byte) bool {
	if len(b) < minFrame {
		return false
	}
	n, err := pattern.Verify(b[benchHdr:])
	return err == nil && n == frameSeq(b) && b[firstMark] == byte(n)
}

// verifyHeader is the cheap check: the header's number is the pattern's,
// and every page's mark is that number's low byte. The marks, the header
// and the checksum are the only bytes that differ between frames (the
// stripes are frame 0's in every frame), so a frame stitched from two
// frames at a page or finer fails it unless the seam falls inside one
// page's identical stripes. The ping-pong echo uses it, so that a full
// checksum pass is not inside the round trip.
func verifyHeader(b []byte) bool {
	if len(b) < minFrame {
		return false
	}
	n := frameSeq(b)
	if binary.LittleEndian.Uint64(b[benchHdr:]) != n {
		return false
	}
	m := byte(n)
	for i := firstMark; i < len(b); i += markEvery {
		if b[i] != m {
			return false
		}
	}
	return true
}
