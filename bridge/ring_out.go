package bridge

import (
	"context"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/ring"
)

// This file and ring_in.go are the only ones that call packages consumer
// and producer: the ring API's next version changes only them.

// frame is a frame as the bridge handles it, independent of the ring API.
type frame struct {
	number, generation              uint64
	format                          ring.PixelFormat
	width, height, channels, stride int
	capture, published, wall        int64 // CLOCK_MONOTONIC ns (capture, published) and Unix ns (wall) of the host that published it
	data, meta                      []byte
	// wire, on the out side, is the reader's buffer from its start to the
	// end of meta: the room reserved before data, data, then meta.
	wire []byte
}

// source is the ring a bridge out reads, in latest mode.
type source struct {
	r *consumer.Reader
}

// openSource waits until ring name exists in dir, or ctx ends.
func openSource(ctx context.Context, dir, name string, hungAfter time.Duration) (*source, error) {
	r, err := consumer.OpenWait(ctx, name, consumer.Options{Dir: dir, Mode: consumer.Latest, HungAfter: hungAfter})
	if err != nil {
		return nil, err
	}
	return &source{r: r}, nil
}

// read waits for the newest frame and copies it into *buf (grown to fit
// the ring's slots), data at offset reserve and the metadata right after
// the data; reserve bytes before the data are the caller's. The frame is
// valid until *buf is used again. Errors wrap the ring's sentinels
// (ring.ErrWriterGone once per writer death, ring.ErrCorrupt for a
// skipped frame, ...).
func (s *source) read(ctx context.Context, buf *[]byte, reserve int) (frame, error) {
	g := s.r.Geometry()
	if need := reserve + g.PayloadCap + g.MetaCap; len(*buf) < need {
		*buf = make([]byte, need)
	}
	b := *buf
	f, err := s.r.Read(ctx, b[reserve:reserve+g.PayloadCap])
	if err != nil {
		return frame{}, err
	}
	n := len(f.Data)
	if need := reserve + n + len(f.Meta); &f.Data[0] != &b[reserve] || need > len(b) {
		// The ring was re-created with larger slots after Geometry: the
		// frame came in a buffer of its own. Rare: move it into ours.
		b = make([]byte, max(need, len(b)))
		copy(b[reserve:], f.Data)
		*buf = b
	}
	m := copy(b[reserve+n:], f.Meta)
	return frame{
		number:     f.Number,
		generation: f.Generation,
		format:     f.Format,
		width:      f.Width,
		height:     f.Height,
		channels:   f.Channels,
		stride:     f.Stride,
		capture:    f.Capture,
		published:  f.Published,
		wall:       f.Wall.UnixNano(),
		data:       b[reserve : reserve+n],
		meta:       b[reserve+n : reserve+n+m],
		wire:       b[:reserve+n+m],
	}, nil
}

// dropped is how many frames of the ring the reader passed over or lost
// (the bridge was busy sending): skipped, lapped, overwritten, corrupt.
func (s *source) dropped() uint64 { return s.r.Stats().Dropped() }

func (s *source) close() error { return s.r.Close() }
