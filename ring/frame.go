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
	return FormatInvalid, fmt.Errorf("%w: unknown pixel format %q (known: %s)", ErrInvalidFrame, s, strings.Join(formatNames[1:], ", "))
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
	bad := fmt.Errorf("%w: size %q is not WxHxC with positive numbers, such as 1920x1080x3", ErrInvalidFrame, s)
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
		return 0, 0, 0, fmt.Errorf("%w: size %q has %d channels, not 1 to 4", ErrInvalidFrame, s, v[2])
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
	// Meta is the frame's metadata (detections, say), copied into the
	// slot's metadata area with the frame. A frame as a reader receives it
	// carries its metadata here.
	Meta []byte
	// Len is the payload length in bytes: for Raw frames it must be given;
	// for images [FrameInfo.Normalize] derives it from Stride*Height.
	Len int
}

// Frame is a frame as a reader receives it.
type Frame struct {
	FrameInfo
	Number     uint64    // 1, 2, 3, ... never reused by a ring
	Generation uint64    // generation of the writer that published it
	Published  int64     // CLOCK_MONOTONIC ns when the writer started publishing
	Wall       time.Time // wall clock at publish
	// Data is the payload, Len bytes: pixels, or a Raw frame's bytes. From
	// a copy read it is the caller's buffer (or a new one, see
	// consumer.Reader.Read); from a view it aliases shared memory.
	Data []byte
}

// maxDim bounds Width and Height of image frames.
const maxDim = 1 << 20

// Normalize fills in the defaults of fi (Channels, Stride, and Len for
// images) and checks that it describes a frame. Errors wrap
// [ErrInvalidFrame]. Whether the frame fits a ring's slots is checked by
// the writer (against [Geometry]).
func (fi *FrameInfo) Normalize() error {
	if !fi.Format.Valid() {
		return fmt.Errorf("%w: unknown pixel format %d", ErrInvalidFrame, uint32(fi.Format))
	}
	if fi.Format == Raw {
		if fi.Len <= 0 {
			return fmt.Errorf("%w: raw frame of %d bytes", ErrInvalidFrame, fi.Len)
		}
		return nil
	}
	if fi.Width <= 0 || fi.Height <= 0 || fi.Width > maxDim || fi.Height > maxDim {
		return fmt.Errorf("%w: %dx%d is outside [1, %d] x [1, %d]", ErrInvalidFrame, fi.Width, fi.Height, maxDim, maxDim)
	}
	want := fi.Format.Channels()
	if fi.Channels == 0 {
		fi.Channels = want
	}
	if fi.Channels != want {
		return fmt.Errorf("%w: %v has %d channels, not %d", ErrInvalidFrame, fi.Format, want, fi.Channels)
	}
	row := fi.Width * fi.Channels * fi.Format.BytesPerSample()
	if fi.Stride == 0 {
		fi.Stride = row
	}
	if fi.Stride < row || fi.Stride > 1<<31-1 {
		return fmt.Errorf("%w: stride %d is smaller than a row of %d bytes (%d x %d channels)", ErrInvalidFrame, fi.Stride, row, fi.Width, fi.Channels)
	}
	fi.Len = fi.Stride * fi.Height
	return nil
}

// Fits reports whether fi, normalized, fits a slot of geometry g: Len
// bytes of payload and len(Meta) bytes of metadata. Errors wrap
// [ErrFrameTooLarge].
func (fi *FrameInfo) Fits(g Geometry) error {
	if fi.Len > g.PayloadCap {
		if fi.Format == Raw {
			return fmt.Errorf("%w: %d bytes, the slots hold %d", ErrFrameTooLarge, fi.Len, g.PayloadCap)
		}
		return fmt.Errorf("%w: %dx%dx%d frame is %d bytes, the slots hold %d", ErrFrameTooLarge, fi.Width, fi.Height, fi.Channels, fi.Len, g.PayloadCap)
	}
	if len(fi.Meta) > g.MetaCap {
		return fmt.Errorf("%w: %d bytes of metadata, the slots hold %d", ErrFrameTooLarge, len(fi.Meta), g.MetaCap)
	}
	return nil
}
