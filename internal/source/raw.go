package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/framering/framering/ring"
)

// rawSource reads frames of a fixed shape from a byte stream, each exactly
// fi.Len bytes with nothing in between: the form of `ffmpeg -f rawvideo`
// and of GStreamer's fdsink.
type rawSource struct {
	r       *bufio.Reader
	what    string
	fi      ring.FrameInfo
	frames  uint64 // complete frames read
	capture int64  // when the current frame's first bytes were there
}

// Raw returns a source that reads frames of shape fi (normalized, Len
// set; see [Shape]) from r, named what in errors ("standard input"). Each
// frame is read straight into the buffer Fill gets. The end of r between
// frames is the clean end of the stream (io.EOF); an end inside a frame is
// an error wrapping [ErrPartialFrame] that says how many bytes came.
func Raw(r io.Reader, what string, fi ring.FrameInfo) (Source, error) {
	if err := fi.Normalize(); err != nil {
		return nil, err
	}
	return &rawSource{r: bufio.NewReader(r), what: what, fi: fi}, nil
}

func (s *rawSource) Shape() ring.FrameInfo { return s.fi }
func (s *rawSource) FPS() float64          { return 0 }
func (s *rawSource) Close() error          { return nil }

// Ready waits for the first byte of the next frame.
func (s *rawSource) Ready() error {
	if _, err := s.r.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("read %s: %w", s.what, err)
	}
	s.capture = ring.Now()
	return nil
}

func (s *rawSource) Fill(buf []byte, n uint64) (int64, error) {
	got, err := io.ReadFull(s.r, buf[:s.fi.Len])
	switch {
	case err == nil:
		s.frames++
		capture := s.capture
		s.capture = 0
		return capture, nil
	case errors.Is(err, io.EOF): // nothing at all: the stream ended between frames
		return 0, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return 0, fmt.Errorf("read %s: %w: frame %d has %d of %d bytes (%d complete frames before it)",
			s.what, ErrPartialFrame, s.frames+1, got, s.fi.Len, s.frames)
	}
	return 0, fmt.Errorf("read %s: %w", s.what, err)
}
