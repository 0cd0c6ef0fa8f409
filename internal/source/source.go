package source

import (
	"errors"
	"fmt"

	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/ring"
)

// Errors of this package besides ring's sentinels.
var (
	// ErrPartialFrame is returned by a raw stream that ended in the middle
	// of a frame.
	ErrPartialFrame = errors.New("stream ended in the middle of a frame")
	// ErrNoOpenCV is returned for the video and camera sources by a build
	// without the gocv tag.
	ErrNoOpenCV = errors.New("built without OpenCV")
	// ErrUndecodable is returned for an image file that is neither PNG nor
	// JPEG, or is damaged.
	ErrUndecodable = errors.New("cannot decode the image")
)

// Source produces frames.
type Source interface {
	// Shape is the frames' shape, normalized (Len set), known before the
	// ring is opened: its payload length sizes the ring.
	Shape() ring.FrameInfo
	// Ready blocks until the next frame can be filled without waiting for
	// input, and returns io.EOF at a clean end of the stream, so that the
	// caller reserves a slot only for a frame that is there.
	Ready() error
	// Fill writes frame number n into buf (at least Shape().Len bytes)
	// and returns its capture time (CLOCK_MONOTONIC ns, see [ring.Now];
	// 0 means the publish time). io.EOF ends the stream; any other error
	// is final.
	Fill(buf []byte, n uint64) (capture int64, err error)
	// FPS is the source's own frame rate (a video file's), or 0.
	FPS() float64
	Close() error
}

// Shape parses a frame shape: size is WxHxC (or WxH, 3 channels) and
// format a pixel format name; "" picks the format by channels (1 gray8,
// 2 yuyv, 3 bgr8, 4 bgra8). A raw format makes frames of W*H*C bytes.
// Errors wrap [ring.ErrInvalidFrame].
func Shape(size, format string) (ring.FrameInfo, error) {
	w, h, c, err := ring.ParseSize(size)
	if err != nil {
		return ring.FrameInfo{}, err
	}
	f := ring.FormatForChannels(c)
	if format != "" {
		if f, err = ring.ParsePixelFormat(format); err != nil {
			return ring.FrameInfo{}, err
		}
		if f != ring.Raw && f.Channels() != c {
			return ring.FrameInfo{}, fmt.Errorf("%w: format %v has %d channels, the size %q says %d", ring.ErrInvalidFrame, f, f.Channels(), size, c)
		}
	}
	fi := ring.FrameInfo{Width: w, Height: h, Format: f}
	if f == ring.Raw {
		fi.Len = w * h * c
	}
	if err := fi.Normalize(); err != nil {
		return ring.FrameInfo{}, err
	}
	return fi, nil
}

// patternSource fills every frame with the test pattern for its number:
// the stripes, or the visual test card.
type patternSource struct {
	fi   ring.FrameInfo
	card *pattern.Card // nil: the stripes
}

// Pattern returns a source of the checkable test pattern
// (internal/pattern, `recv --verify`) in frames of the given size and
// format (see [Shape]). style is "stripes" (the default when empty; the C
// and Python peers check it byte for byte) or "visual" (colour bars, a
// moving box and the frame number, with the same checkable header).
func Pattern(size, format, style string) (Source, error) {
	if style == "" {
		style = "stripes"
	}
	st, err := pattern.ParseStyle(style)
	if err != nil {
		return nil, err
	}
	fi, err := Shape(size, format)
	if err != nil {
		return nil, err
	}
	if fi.Len < pattern.HeaderLen {
		return nil, fmt.Errorf("%w: %q is %d bytes; the test pattern needs at least %d", ring.ErrInvalidFrame, size, fi.Len, pattern.HeaderLen)
	}
	p := &patternSource{fi: fi}
	if st == pattern.Visual {
		if p.card, err = pattern.NewCard(fi); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *patternSource) Shape() ring.FrameInfo { return p.fi }
func (p *patternSource) Ready() error          { return nil }
func (p *patternSource) FPS() float64          { return 0 }
func (p *patternSource) Close() error          { return nil }

func (p *patternSource) Fill(buf []byte, n uint64) (int64, error) {
	if p.card != nil {
		p.card.Fill(buf[:p.fi.Len], n)
	} else {
		pattern.Fill(buf[:p.fi.Len], n)
	}
	return 0, nil
}
