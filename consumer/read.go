package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// outcome of one attempt at frame n.
type outcome int

const (
	got  outcome = iota
	lost         // frame n is no longer in the ring
	torn         // the writer changed the slot during the read: try again
)

// attempt reads frame n's header under the seqlock. With dst it also
// copies the payload out and validates; without, it leaves the seqlock
// open (the view case) and returns the begin value.
func (r *Reader) attempt(n uint64, dst []byte, copyOut bool, f *ring.Frame) (outcome, uint64, error) {
	slot := r.seg.Slot(n)
	seq := slot.SeqWord()
	s1, even := r.seq.Begin(seq)
	if !even {
		// The writer is rewriting this slot. If it is writing frame n+N,
		// frame n is gone; otherwise wait for it to finish.
		if r.seg.Head().Load()+1 >= n+uint64(r.geo.Slots) {
			return lost, 0, nil
		}
		return torn, 0, nil
	}
	hdr := *slot // plain copy, validated below
	if hdr.FrameNo != n {
		if !r.seq.Validate(seq, s1) {
			return torn, 0, nil
		}
		return lost, 0, nil
	}
	fi, err := hdr.Info(r.geo)
	if err != nil {
		if !r.seq.Validate(seq, s1) {
			return torn, 0, nil
		}
		// Skip the frame, so an ordered reader does not trip on it forever.
		r.next = n + 1
		r.st.corrupt.Add(1)
		r.st.last.Store(n)
		return got, 0, fmt.Errorf("ring %q: %w; frame %d skipped; if this repeats the writer is broken, restart it", r.name, err, n)
	}
	*f = ring.Frame{
		FrameInfo:  fi,
		Number:     n,
		Generation: hdr.Generation,
		Published:  hdr.PublishNs,
		Wall:       time.Unix(0, hdr.WallNs),
	}
	payload := r.seg.Payload(n)[:fi.Len]
	meta := r.seg.Meta(n)[:fi.MetaLen]
	if !copyOut {
		// Hand out no header that is already known to be torn; Release
		// validates again, covering the caller's work on the payload.
		if !r.seq.Validate(seq, s1) {
			return torn, 0, nil
		}
		f.Pixels, f.Meta = payload, meta
		return got, s1, nil
	}
	if dst == nil {
		dst = make([]byte, fi.Len)
	}
	if len(dst) < fi.Len {
		return got, 0, fmt.Errorf("ring %q: read frame %d: %w: buffer of %d bytes, the frame has %d; size buffers by Geometry().PayloadCap",
			r.name, n, ring.ErrFrameTooLarge, len(dst), fi.Len)
	}
	copy(dst, payload)
	r.meta = append(r.meta[:0], meta...)
	if !r.seq.Validate(seq, s1) {
		return torn, 0, nil
	}
	f.Pixels, f.Meta = dst[:fi.Len], r.meta
	return got, s1, nil
}

// deliver counts frame n as delivered.
func (r *Reader) deliver(f *ring.Frame, at int64) {
	r.next = f.Number + 1
	r.st.delivered.Add(1)
	r.st.last.Store(f.Number)
	// Lag as of pick: no second load of the head's contended line.
	r.st.lag.Store(r.head - min(r.head, f.Number))
	r.st.latency.Record(at - f.Published)
}

// drop counts frame n as lapped and moves on.
func (r *Reader) drop(n uint64) {
	r.next = n + 1
	r.st.lapped.Add(1)
	r.st.last.Store(n)
}

func (r *Reader) faulted(err error) error {
	r.gone = true
	r.st.writerDown.Store(true)
	return fmt.Errorf("ring %q: %w: %v; the segment shrank under the reader (replaced or damaged); the next read re-opens it", r.name, ring.ErrTruncated, err)
}

// Read waits for the next frame (per the reader's mode), copies it into
// dst and returns it; the frame's Pixels is dst[:Len] and its Meta a buffer
// of the reader's, valid until the next read. dst nil means a new buffer
// of the frame's size. A frame the writer changed during the copy is never
// returned.
func (r *Reader) Read(ctx context.Context, dst []byte) (ring.Frame, error) {
	var f ring.Frame
	_, err := r.acquire(ctx, dst, true, &f)
	return f, err
}

func (r *Reader) acquire(ctx context.Context, dst []byte, copyOut bool, f *ring.Frame) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.viewOut {
		return 0, fmt.Errorf("ring %q: %w; call View.Release first", r.name, ring.ErrViewOutstanding)
	}
	for spins := 0; ; spins++ {
		var n, s1 uint64
		var oc outcome
		// Guard the whole step: the superblock page can vanish too.
		gerr := shm.Guard(func() error {
			var err error
			if n, err = r.pick(ctx); err != nil {
				return err
			}
			oc, s1, err = r.attempt(n, dst, copyOut, f)
			return err
		})
		if gerr != nil {
			if errors.Is(gerr, shm.ErrFault) {
				return 0, r.faulted(gerr)
			}
			return 0, gerr
		}
		switch oc {
		case got:
			if copyOut {
				r.deliver(f, shm.Monotonic())
			} else {
				r.viewOut = true
				r.view.begin, r.view.at = s1, shm.Monotonic()
			}
			return s1, nil
		case lost:
			r.drop(n)
		case torn:
			r.st.retries.Add(1)
			if spins&15 == 15 {
				runtime.Gosched()
			}
		}
	}
}

// View is a frame read in place. Its Frame's Pixels and Meta alias shared
// memory: valid only until Release, and trustworthy only if Release returns
// nil.
type View struct {
	r     *Reader
	f     ring.Frame
	begin uint64
	at    int64 // when Acquire got it: the frame was usable from then
}

// Acquire waits for the next frame and returns a view of its slot, with no
// copy. Work on View.Frame().Pixels, then call Release, which says whether
// the slot stayed valid. While the view is out, Read and Acquire fail with
// ring.ErrViewOutstanding.
func (r *Reader) Acquire(ctx context.Context) (*View, error) {
	if _, err := r.acquire(ctx, nil, false, &r.view.f); err != nil {
		return nil, err
	}
	return &r.view, nil
}

// Frame returns the viewed frame. Pixels and Meta alias the slot.
func (v *View) Frame() *ring.Frame { return &v.f }

// Release ends the view. It returns nil if the slot held this frame
// unchanged for the whole time since Acquire, and an error wrapping
// ring.ErrOverwritten otherwise: then everything derived from the view is
// garbage and must be thrown away. The frame counts as delivered or as
// dropped (Overwritten) accordingly.
func (v *View) Release() error {
	r := v.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.viewOut {
		return fmt.Errorf("ring %q: release: no view is out", r.name)
	}
	r.viewOut = false
	var ok bool
	err := shm.Guard(func() error {
		ok = r.seq.Validate(r.seg.Slot(v.f.Number).SeqWord(), v.begin)
		return nil
	})
	if err != nil {
		r.next = v.f.Number + 1
		r.st.overwritten.Add(1)
		return r.faulted(err)
	}
	if !ok {
		r.next = v.f.Number + 1
		r.st.overwritten.Add(1)
		r.st.last.Store(v.f.Number)
		return fmt.Errorf("ring %q: frame %d: %w; the reader was more than %d frames behind, discard what was computed from it",
			r.name, v.f.Number, ring.ErrOverwritten, r.geo.Slots)
	}
	r.deliver(&v.f, v.at)
	return nil
}

// View acquires the next frame, runs fn on it in place, and releases it. It
// returns fn's error, or an error wrapping ring.ErrOverwritten if the slot
// changed while fn ran (then fn's results are garbage). A segment
// truncated while fn runs gives ring.ErrTruncated instead of a crash.
func (r *Reader) View(ctx context.Context, fn func(f *ring.Frame) error) error {
	v, err := r.Acquire(ctx)
	if err != nil {
		return err
	}
	ferr := shm.Guard(func() error { return fn(v.Frame()) })
	rerr := v.Release()
	if rerr != nil {
		return rerr
	}
	if errors.Is(ferr, shm.ErrFault) {
		return r.faulted(ferr)
	}
	return ferr
}
