package bridge

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// sink is the ring a bridge in writes. It is opened when the first frame
// arrives (or at start, with a fixed capacity) and re-opened with a larger
// geometry when a frame does not fit; frame numbers continue across both.
type sink struct {
	dir, name string
	slots     int
	fixed     int // fixed payload capacity, 0: grow with the frames
	metaBytes int
	perm      fs.FileMode

	w                *producer.Writer
	payload, metaCap int
}

// open opens the ring for frames of dataLen and metaLen bytes, re-opening
// it if its slots are too small. It reports whether it (re)opened.
func (s *sink) open(dataLen, metaLen int) (bool, error) {
	if s.w != nil && dataLen <= s.payload && metaLen <= s.metaCap {
		return false, nil
	}
	payload, meta := max(dataLen, s.payload, s.fixed), max(metaLen, s.metaCap, s.metaBytes, 4096)
	if s.fixed > 0 && dataLen > s.fixed {
		return false, fmt.Errorf("ring %q: %w: frame of %d bytes, the ring's slots hold %d", s.name, ring.ErrFrameTooLarge, dataLen, s.fixed)
	}
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			return false, err
		}
		s.w = nil
	}
	w, err := producer.Open(s.name, producer.Options{Dir: s.dir, Slots: s.slots, MaxFrameBytes: payload, MetaBytes: meta, Perm: s.perm})
	if err != nil {
		return false, err
	}
	s.w, s.payload, s.metaCap = w, payload, meta
	return true, nil
}

// head is the number of the newest frame in the ring (0: none), the
// number the next frame must exceed.
func (s *sink) head() uint64 { return s.w.Stats().Ring.Head }

// publish copies f into the ring as frame number, published at published
// (CLOCK_MONOTONIC ns of this host) and wall; f.capture is already in this
// host's clock.
func (s *sink) publish(f *frame, number uint64, published int64, wall time.Time) error {
	info := ring.FrameInfo{
		Width: f.width, Height: f.height, Channels: f.channels, Format: f.format, Stride: f.stride,
		Capture: f.capture, Meta: f.meta, Len: len(f.data),
	}
	if f.meta == nil {
		info.Meta = []byte{}
	}
	_, err := s.w.PublishFrom(info, f.data, producer.Origin{Number: number, Published: published, Wall: wall})
	return err
}

// close closes the writer (its readers see the writer gone); the ring
// stays. The next open continues the numbering.
func (s *sink) close() error {
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	s.w = nil
	return err
}

// now returns this host's CLOCK_MONOTONIC in ns.
func now() int64 { return ring.Now() }
