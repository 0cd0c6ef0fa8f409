package ring

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PixelFormat says how a frame's payload is laid out.
type PixelFormat uint32

// Pixel formats. Every format but Raw is rows of Width pixels, Stride bytes
// apart, each pixel Channels samples of BytesPerSample bytes.
const (
	FormatInvalid PixelFormat = iota // never valid; the zero value catches a forgotten field
	Gray8                            // 1 channel, 8 bits
	BGR8                             // 3 channels, OpenCV's default order
	RGB8                             // 3 channels
	BGRA8                            // 4 channels
	RGBA8                            // 4 channels
	Gray16                           // 1 channel, 16 bits little-endian
	YUYV                             // 2 channels (Y and alternating U/V), 8 bits, as V4L2 cameras deliver
	Raw                              // opaque bytes: only PayloadLen counts
	numFormats
)

var formatNames = [...]string{"invalid", "gray8", "bgr8", "rgb8", "bgra8", "rgba8", "gray16", "yuyv", "raw"}
var formatChannels = [...]int{0, 1, 3, 3, 4, 4, 1, 2, 0}

func (f PixelFormat) String() string {
	if f < numFormats {
		return formatNames[f]
	}
	return "PixelFormat(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// Valid reports whether f is a known format other than FormatInvalid.
func (f PixelFormat) Valid() bool { return f > FormatInvalid && f < numFormats }

// Channels returns the channel count the format implies (0 for Raw and
// unknown formats).
func (f PixelFormat) Channels() int {
	if f < numFormats {
		return formatChannels[f]
	}
	return 0
}

// BytesPerSample is 2 for Gray16 and 1 otherwise.
func (f PixelFormat) BytesPerSample() int {
	if f == Gray16 {
		return 2
	}
	return 1
}

// ParsePixelFormat parses a format name as String prints it.
func ParsePixelFormat(s string) (PixelFormat, error) {
	for i, n := range formatNames[1:] {
		if strings.EqualFold(s, n) {
			return PixelFormat(i + 1), nil
		}
	}
	return FormatInvalid, fmt.Errorf("%w: unknown pixel format %q; use one of %s", ErrInvalidFrame, s, strings.Join(formatNames[1:], ", "))
}

// FormatForChannels is the default format for an 8-bit image with c
// channels: gray8, (yuyv for 2), bgr8, bgra8, as OpenCV would assume.
func FormatForChannels(c int) PixelFormat {
	switch c {
	case 1:
		return Gray8
	case 2:
		return YUYV
	case 3:
		return BGR8
	case 4:
		return BGRA8
	}
	return FormatInvalid
}

// ParseSize parses "WxHxC" (or "WxH", meaning 3 channels) into its parts.
func ParseSize(s string) (w, h, c int, err error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) == 2 {
		parts = append(parts, "3")
	}
	bad := fmt.Errorf("%w: size %q is not WxHxC with positive numbers (example: 1920x1080x3)", ErrInvalidFrame, s)
	if len(parts) != 3 {
		return 0, 0, 0, bad
	}
	var v [3]int
	for i, p := range parts {
		n, perr := strconv.Atoi(p)
		if perr != nil || n <= 0 || n > 1<<20 {
			return 0, 0, 0, bad
		}
		v[i] = n
	}
	if v[2] > 4 {
		return 0, 0, 0, fmt.Errorf("%w: size %q has %d channels; framering knows 1 to 4", ErrInvalidFrame, s, v[2])
	}
	return v[0], v[1], v[2], nil
}

// FrameInfo describes a frame a writer publishes.
type FrameInfo struct {
	Width    int         // pixels; for Raw, any value the application likes
	Height   int         // pixels; for Raw, any value the application likes
	Channels int         // samples per pixel; 0 means the format's own count
	Format   PixelFormat // required
	// Stride is the distance between rows in bytes. Zero means packed rows,
	// Width*Channels*BytesPerSample.
	Stride int
	// Capture is the CLOCK_MONOTONIC time the frame was captured, in ns
	// (see [Now]). Zero means the publish time.
	Capture int64
	// Meta is copied into the slot's metadata area with the frame. Nil
	// keeps whatever a loan wrote there with MetaLen bytes.
	Meta []byte
	// MetaLen is the metadata length written in place through a loan; it
	// is ignored when Meta is set.
	MetaLen int
	// Len is the payload length for Raw frames; for images it is derived
	// from Stride*Height.
	Len int
}

// Frame is a frame as a reader receives it.
type Frame struct {
	FrameInfo
	Number     uint64    // 1, 2, 3, ... never reused by a ring
	Generation uint64    // generation of the writer that published it
	Published  int64     // CLOCK_MONOTONIC ns when the writer started publishing
	Wall       time.Time // wall clock at publish
	// Pixels is the payload. From a copy read it is the caller's buffer;
	// from a view it aliases shared memory (see consumer.View).
	Pixels []byte
}

// Normalize fills in the defaults of fi (Channels, Stride) and checks it
// against a slot of payloadCap and metaCap bytes. It returns the payload
// length in bytes. Errors wrap [ErrInvalidFrame] or [ErrFrameTooLarge].
func (fi *FrameInfo) Normalize(payloadCap, metaCap int) (int, error) {
	if !fi.Format.Valid() {
		return 0, fmt.Errorf("%w: unknown pixel format %d; use one of the ring.PixelFormat constants", ErrInvalidFrame, uint32(fi.Format))
	}
	metaLen := fi.MetaLen
	if fi.Meta != nil {
		metaLen = len(fi.Meta)
	}
	if metaLen < 0 || metaLen > metaCap {
		return 0, fmt.Errorf("%w: %d bytes of metadata, the slots hold %d", ErrFrameTooLarge, metaLen, metaCap)
	}
	fi.MetaLen = metaLen
	if fi.Format == Raw {
		if fi.Len <= 0 {
			return 0, fmt.Errorf("%w: raw frame of %d bytes; give a positive length", ErrInvalidFrame, fi.Len)
		}
		if fi.Len > payloadCap {
			return 0, fmt.Errorf("%w: %d bytes, the slots hold %d", ErrFrameTooLarge, fi.Len, payloadCap)
		}
		return fi.Len, nil
	}
	if fi.Width <= 0 || fi.Height <= 0 || fi.Width > 1<<20 || fi.Height > 1<<20 {
		return 0, fmt.Errorf("%w: %dx%d; width and height must be in [1, 1048576]", ErrInvalidFrame, fi.Width, fi.Height)
	}
	want := fi.Format.Channels()
	if fi.Channels == 0 {
		fi.Channels = want
	}
	if fi.Channels != want {
		return 0, fmt.Errorf("%w: %v has %d channels, not %d", ErrInvalidFrame, fi.Format, want, fi.Channels)
	}
	row := fi.Width * fi.Channels * fi.Format.BytesPerSample()
	if fi.Stride == 0 {
		fi.Stride = row
	}
	if fi.Stride < row || fi.Stride > 1<<31-1 {
		return 0, fmt.Errorf("%w: stride %d is smaller than a row of %d bytes (%d x %d channels)", ErrInvalidFrame, fi.Stride, row, fi.Width, fi.Channels)
	}
	n := int64(fi.Stride) * int64(fi.Height)
	if n > int64(payloadCap) {
		return 0, fmt.Errorf("%w: %dx%dx%d frame is %d bytes, the slots hold %d; open the ring with a larger frame size", ErrFrameTooLarge, fi.Width, fi.Height, fi.Channels, n, payloadCap)
	}
	fi.Len = int(n)
	return int(n), nil
}

// Now returns CLOCK_MONOTONIC in ns, the clock of Capture and Published.
func Now() int64 { return monotonic() }

// Info converts a slot header already copied out of shared memory into
// frame info, validating every field against the geometry. It never
// panics; errors wrap [ErrCorrupt].
func (h *SlotHeader) Info(g Geometry) (FrameInfo, error) {
	fi := FrameInfo{
		Width:    int(h.Width),
		Height:   int(h.Height),
		Channels: int(h.Channels),
		Format:   PixelFormat(h.Format),
		Stride:   int(h.Stride),
		Capture:  h.CaptureNs,
		MetaLen:  int(h.MetaLen),
		Len:      int(min(h.PayloadLen, uint64(MaxPayloadCap)+1)),
	}
	if h.PayloadLen > uint64(g.PayloadCap) {
		return fi, fmt.Errorf("%w: frame %d payload length %d exceeds slot capacity %d", ErrCorrupt, h.FrameNo, h.PayloadLen, g.PayloadCap)
	}
	check := fi
	check.Meta = nil
	n, err := check.Normalize(g.PayloadCap, g.MetaCap)
	if err != nil {
		return fi, fmt.Errorf("%w: frame %d header: %v", ErrCorrupt, h.FrameNo, err)
	}
	if check.Channels != fi.Channels || check.Stride != fi.Stride || uint64(n) != h.PayloadLen {
		return fi, fmt.Errorf("%w: frame %d header: %dx%dx%d %v stride %d does not give payload length %d", ErrCorrupt, h.FrameNo, fi.Width, fi.Height, fi.Channels, fi.Format, fi.Stride, h.PayloadLen)
	}
	return fi, nil
}

// Store writes fi (already normalized) into the header of a slot the
// caller holds odd.
func (h *SlotHeader) Store(number, generation uint64, fi *FrameInfo, publishNs int64, wall int64) {
	h.FrameNo = number
	h.Generation = generation
	h.Width = uint32(fi.Width)
	h.Height = uint32(fi.Height)
	h.Channels = uint32(fi.Channels)
	h.Format = uint32(fi.Format)
	h.Stride = uint32(fi.Stride)
	h.MetaLen = uint32(fi.MetaLen)
	h.PayloadLen = uint64(fi.Len)
	capture := fi.Capture
	if capture == 0 {
		capture = publishNs
	}
	h.CaptureNs = capture
	h.PublishNs = publishNs
	h.WallNs = wall
}
