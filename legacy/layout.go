package legacy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/framering/framering/internal/shm"
	"sync/atomic"

	"github.com/framering/framering/ring"
)

// Layout constants of the legacy object.
const (
	// DefaultName is the object the old programs use: /dev/shm/mmaptest_shm.
	DefaultName = "mmaptest_shm"
	// HeaderSize is the size of the packed header; pixels start here.
	HeaderSize = 24

	offWidth     = 0
	offHeight    = 4
	offChannels  = 8
	offTimestamp = 12 // unaligned int64
	offValid     = 20

	// MaxDim bounds width and height; a header beyond it is corrupt.
	MaxDim = 1 << 20
	// MaxChannels bounds the channel count (1 gray, 3 BGR, 4 BGRA).
	MaxChannels = 4
	// maxObjectSize bounds the object a reader maps.
	maxObjectSize = 1 << 34
)

// Errors, grouped by operation. Match them with errors.Is.
var (
	// ErrCorrupt is returned when a legacy header holds impossible values
	// (negative or huge width, height or channels) or claims more pixels
	// than the object holds.
	ErrCorrupt = errors.New("corrupt legacy slot")
	// ErrTooLarge is returned by [Reader.Read] for a header that names a
	// frame larger than [ReaderOptions.MaxFrameBytes].
	ErrTooLarge = errors.New("legacy frame larger than the reader accepts")
	// ErrUnsupportedFormat is returned by the mirror writer for a frame
	// format it cannot express in the legacy layout (gray16, yuyv, raw).
	ErrUnsupportedFormat = errors.New("pixel format not supported by the legacy slot")
	// ErrTruncated is returned when the object shrank under a mapping.
	ErrTruncated = ring.ErrTruncated
	// ErrMismatch is returned by [OldReader] when the header does not carry
	// the size it was told in advance (the old receiver's "warn, give up").
	ErrMismatch = errors.New("legacy slot has another frame size than expected")
	// ErrClosed is returned by calls on a closed Writer or Reader.
	ErrClosed = ring.ErrClosed
)

// Header is the legacy header as Go values.
type Header struct {
	Width, Height, Channels int32
	TimestampMs             int64
	Valid                   int32
}

// FrameBytes is width*height*channels, computed without overflow. It is
// meaningful only for a header that passed [Header.Check].
func (h Header) FrameBytes() int64 {
	return int64(h.Width) * int64(h.Height) * int64(h.Channels)
}

// Check validates h against an object of size bytes: every field in range
// and the pixels inside the object. Errors wrap [ErrCorrupt].
func (h Header) Check(size int64) error {
	switch {
	case h.Width <= 0 || h.Width > MaxDim || h.Height <= 0 || h.Height > MaxDim:
		return fmt.Errorf("%w: header says %dx%d pixels; width and height are 1 to %d", ErrCorrupt, h.Width, h.Height, MaxDim)
	case h.Channels <= 0 || h.Channels > MaxChannels:
		return fmt.Errorf("%w: header says %d channels, not 1 to %d", ErrCorrupt, h.Channels, MaxChannels)
	}
	if need := HeaderSize + h.FrameBytes(); need > size {
		return fmt.Errorf("%w: header says %dx%dx%d (%d bytes with the header), the object has only %d bytes", ErrCorrupt, h.Width, h.Height, h.Channels, need, size)
	}
	return nil
}

// Empty reports whether no frame was ever written (an all-zero header, as
// ftruncate leaves it).
func (h Header) Empty() bool { return h.Width == 0 && h.Height == 0 && h.Channels == 0 }

// same reports whether two headers describe the same frame.
func (h Header) same(o Header) bool {
	return h.Width == o.Width && h.Height == o.Height && h.Channels == o.Channels && h.TimestampMs == o.TimestampMs
}

// ParseHeader decodes the first 24 bytes of b (which must hold them).
func ParseHeader(b []byte) Header {
	return Header{
		Width:       int32(binary.LittleEndian.Uint32(b[offWidth:])),
		Height:      int32(binary.LittleEndian.Uint32(b[offHeight:])),
		Channels:    int32(binary.LittleEndian.Uint32(b[offChannels:])),
		TimestampMs: int64(binary.LittleEndian.Uint64(b[offTimestamp:])),
		Valid:       int32(binary.LittleEndian.Uint32(b[offValid:])),
	}
}

// putGeometry writes width, height, channels and timestamp (not the valid
// flag) into b, byte-wise: safe for the unaligned timestamp.
func putGeometry(b []byte, w, h, c int32, ts int64) {
	binary.LittleEndian.PutUint32(b[offWidth:], uint32(w))
	binary.LittleEndian.PutUint32(b[offHeight:], uint32(h))
	binary.LittleEndian.PutUint32(b[offChannels:], uint32(c))
	binary.LittleEndian.PutUint64(b[offTimestamp:], uint64(ts))
}

// validWord returns frame_valid of a mapping as an atomic word. The
// mapping is page-aligned, so offset 20 is 4-byte aligned; shm.Int32At
// checks it anyway.
func validWord(mem []byte) (*atomic.Int32, error) {
	if len(mem) < HeaderSize {
		return nil, fmt.Errorf("%w: mapping of %d bytes is smaller than the %d-byte header", ErrCorrupt, len(mem), HeaderSize)
	}
	v, err := shm.Int32At(mem, offValid)
	if err != nil {
		return nil, fmt.Errorf("legacy slot: frame_valid: %w", err)
	}
	return v, nil
}

// objectName applies the defaults to a legacy object's directory ("" means
// /dev/shm) and name ("" means [DefaultName]) and checks the name.
func objectName(dir, name string) (string, string, error) {
	if dir == "" {
		dir = ring.DefaultDir
	}
	if name == "" {
		name = DefaultName
	}
	if err := ring.CheckName(name); err != nil {
		return "", "", fmt.Errorf("legacy slot: %w", err)
	}
	return dir, name, nil
}
