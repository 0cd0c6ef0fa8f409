package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/framering/framering/internal/shm"
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
	last             uint64 // the newest frame number in the ring (0: none)
	out              *loan  // the loan out, if any
}

// open opens the ring for frames of dataLen and metaLen bytes, re-opening
// it if its slots are too small. It reports whether it (re)opened.
func (s *sink) open(dataLen, metaLen int) (bool, error) {
	if s.w != nil && dataLen <= s.payload && metaLen <= s.metaCap {
		return false, nil
	}
	s.abortLoan()
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
	s.last = w.Stats().Ring.Head
	return true, nil
}

// head is the number of the newest frame in the ring (0: none), the
// number the next frame must exceed.
func (s *sink) head() uint64 { return s.last }

// info is f's description for the ring, with dataLen bytes of data (f.data
// need not be there yet).
func (f *frame) info(dataLen int) ring.FrameInfo {
	return ring.FrameInfo{
		Width: f.width, Height: f.height, Channels: f.channels, Format: f.format, Stride: f.stride,
		Capture: f.capture, Len: dataLen,
	}
}

// publish copies f into the ring as frame number, published at published
// (CLOCK_MONOTONIC ns of this host) and wall; f.capture is already in this
// host's clock.
func (s *sink) publish(f *frame, number uint64, published int64, wall time.Time) error {
	info := f.info(len(f.data))
	info.Meta = f.meta
	_, err := s.w.PublishFrom(info, f.data, producer.Origin{Number: number, Published: published, Wall: wall})
	if err == nil {
		s.last = number
	}
	return err
}

// loan is a frame written straight into the ring's slot: its data arrive
// (chunks, a JPEG decoder) after the slot was reserved, and it is
// committed or aborted when they are complete, checked, or given up.
// Readers never see it before commit.
type loan struct {
	s    *sink
	l    producer.Loan
	data []byte // the slot's payload: shared memory
}

// reserve reserves the slot of frame number for f's shape and capture
// time with dataLen bytes of data; the data are filled in and the metadata
// given at commit.
func (s *sink) reserve(f *frame, dataLen int, number uint64, published int64, wall time.Time) (*loan, error) {
	l, err := s.w.ReserveFrom(f.info(dataLen), producer.Origin{Number: number, Published: published, Wall: wall})
	if err != nil {
		return nil, err
	}
	s.out = &loan{s: s, l: l, data: l.Data()}
	return s.out, nil
}

// abortLoan aborts the loan still out, if any: Close waits for it, and
// the bridge in, which holds it, is the one that would wait.
func (s *sink) abortLoan() {
	if s.out != nil {
		s.out.abort()
	}
}

// fill runs fn on the slot's payload, guarded: a ring truncated under the
// writer makes it fail instead of crashing the process.
func (l *loan) fill(fn func(data []byte) error) error {
	if l.data == nil {
		return fmt.Errorf("ring %q: fill frame %d: %w", l.s.name, l.l.Number(), ring.ErrLoanEnded)
	}
	err := shm.Guard(func() error { return fn(l.data) })
	if errors.Is(err, shm.ErrFault) {
		return fmt.Errorf("ring %q: %w under the writer (%v)", l.s.name, ring.ErrTruncated, err)
	}
	return err
}

// commit publishes the frame with its metadata.
func (l *loan) commit(meta []byte) error {
	if len(meta) > 0 {
		if _, err := l.l.Meta().Write(meta); err != nil {
			l.abort()
			return err
		}
	}
	l.s.out, l.data = nil, nil
	if err := l.l.Commit(); err != nil {
		return err
	}
	l.s.last = l.l.Number()
	return nil
}

// abort gives the slot back: the frame number is free again. Aborting a
// loan already ended does nothing.
func (l *loan) abort() {
	if l.s.out == l {
		l.s.out = nil
	}
	l.data = nil // the slot is no longer ours: never write it again
	l.l.Abort()
}

// close closes the writer (its readers see the writer gone); the ring
// stays. The next open continues the numbering. No loan may be out.
func (s *sink) close() error {
	if s.w == nil {
		return nil
	}
	s.abortLoan()
	err := s.w.Close()
	s.w = nil
	return err
}

// now returns this host's CLOCK_MONOTONIC in ns.
func now() int64 { return ring.Now() }
