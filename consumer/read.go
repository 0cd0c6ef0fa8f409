package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/memcopy"
	"github.com/framering/framering/internal/segfile"
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

// attempt reads frame n's header under the seqlock. With copyOut it also
// copies the payload into *dst (grown to the frame's size if it is too
// small) and validates; without, it leaves the seqlock open (the view case)
// and returns the begin value. Nothing derived from the header is reported
// before the seqlock says the header was stable.
func (r *Reader) attempt(n uint64, dst *[]byte, copyOut bool, f *ring.Frame) (outcome, uint64, error) {
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
		if hdr.FrameNo != 0 && hdr.FrameNo < n {
			// Frame n <= Head, yet its slot holds an older frame: the head
			// is ahead of the slots (§6). Not lost: corrupt.
			return got, 0, r.corruptFrame(n, fmt.Errorf("%w: frame %d: its slot holds frame %d, older (the head is ahead of the slots)",
				ring.ErrCorrupt, n, hdr.FrameNo))
		}
		return lost, 0, nil
	}
	fi, metaLen, err := hdr.Info(r.geo)
	if err != nil {
		if !r.seq.Validate(seq, s1) {
			return torn, 0, nil
		}
		return got, 0, r.corruptFrame(n, err)
	}
	*f = ring.Frame{
		FrameInfo:  fi,
		Number:     n,
		Generation: hdr.Generation,
		Published:  hdr.PublishNs,
		Wall:       time.Unix(0, hdr.WallNs),
	}
	payload := r.seg.Payload(n)[:fi.Len]
	meta := r.seg.Meta(n)[:metaLen]
	if !copyOut {
		// Hand out no header that is already known to be torn; Release
		// validates again, covering the caller's work on the payload.
		if !r.seq.Validate(seq, s1) {
			return torn, 0, nil
		}
		f.Data, f.Meta = payload, meta
		return got, s1, nil
	}
	if cap(*dst) < fi.Len {
		// fi.Len is at most the mapped geometry's PayloadCap (Info checked
		// it), whatever the header says.
		*dst = make([]byte, fi.Len)
	}
	out := (*dst)[:fi.Len]
	memcopy.Copy(out, payload)
	r.meta = append(r.meta[:0], meta...)
	if !r.seq.Validate(seq, s1) {
		return torn, 0, nil
	}
	f.Data, f.Meta = out, r.meta
	return got, s1, nil
}

// corruptFrame counts frame n as corrupt and skips it, so that an ordered
// reader does not trip on it forever, and returns the read's error.
func (r *Reader) corruptFrame(n uint64, err error) error {
	r.pass(n, &r.st.corrupt)
	return fmt.Errorf("read ring %q: %w (frame skipped)", r.name, err)
}

// deliver counts frame n as delivered.
func (r *Reader) deliver(number uint64, published, at int64) {
	r.next = number + 1
	r.st.delivered.Add(1)
	r.st.last.Store(number)
	// Lag as of pick: no second load of the head's contended line.
	r.st.lag.Store(r.head - min(r.head, number))
	r.st.latency.Record(at - published)
}

// drop counts frame n as lapped and moves on.
func (r *Reader) drop(n uint64) { r.pass(n, &r.st.lapped) }

// pass counts frame n as not delivered, in the counter of why (lapped,
// corrupt, overwritten, abandoned), and moves on to the next frame.
func (r *Reader) pass(n uint64, why *atomic.Uint64) {
	r.next = n + 1
	why.Add(1)
	r.st.last.Store(n)
}

func (r *Reader) faulted(err error) error {
	// Not hung: only a new file (or a takeover, which a file of the wrong
	// size never gets) brings a writer back.
	l := r.writerState()
	l.State = segfile.Gone
	r.markGone(l)
	return fmt.Errorf("read ring %q: %w (%v)", r.name, ring.ErrTruncated, err)
}

// Read waits for the next frame (per the reader's mode), copies it into
// dst and returns it; a frame the writer changed during the copy is never
// returned. The frame's Data is dst[:Len] when dst has the capacity for
// the frame; otherwise Read allocates a buffer of the frame's size and
// Data is that buffer (keep it for the next Read: a writer that restarts
// with a larger geometry sends larger frames). dst nil always allocates.
// The frame's Meta is a buffer of the reader's, valid until the next read.
func (r *Reader) Read(ctx context.Context, dst []byte) (ring.Frame, error) {
	var f ring.Frame
	_, err := r.acquire(ctx, &dst, true, &f)
	return f, err
}

// acquire reads the next frame into f: a copy into *dst, or a view. It
// returns the view's ticket.
func (r *Reader) acquire(ctx context.Context, dst *[]byte, copyOut bool, f *ring.Frame) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.view.out {
		return 0, fmt.Errorf("ring %q: %w", r.name, ring.ErrViewOutstanding)
	}
	defer r.disarm()
	for {
		var n, s1 uint64
		var oc outcome
		// Guard the whole step: the superblock page can vanish too.
		gerr := shm.Guard(func() error {
			var err error
			if n, err = r.pick(ctx); err != nil {
				return err
			}
			oc, s1, err = r.attempt(n, dst, copyOut, f)
			if err == nil && oc == torn {
				err = r.retry(ctx, n)
			}
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
				r.deliver(f.Number, f.Published, ring.Now())
				return 0, nil
			}
			r.view = viewState{out: true, ticket: r.view.ticket + 1, number: f.Number,
				begin: s1, at: ring.Now(), publish: f.Published}
			return r.view.ticket, nil
		case lost:
			r.drop(n)
		}
	}
}

// View is a frame read in place, from [Reader.Acquire]. Its Frame's Data
// and Meta alias shared memory: valid only until Release, and trustworthy
// only if Release returns nil.
//
// A View is a value (a reader, a ticket and the frame's description) and
// may be copied; all copies are the same view. Once it is released, every
// copy is stale: Release returns an error wrapping [ring.ErrViewReleased]
// (or [ring.ErrClosed] after the reader was closed) and releases nothing
// else.
type View struct {
	r      *Reader
	ticket uint64
	f      ring.Frame
}

// Acquire waits for the next frame and returns a view of its slot, with no
// copy. Work on View.Frame().Data, then call Release, which says whether
// the slot stayed valid. While the view is out, Read and Acquire fail with
// [ring.ErrViewOutstanding].
func (r *Reader) Acquire(ctx context.Context) (View, error) {
	v := View{r: r}
	t, err := r.acquire(ctx, nil, false, &v.f)
	if err != nil {
		return View{}, err
	}
	v.ticket = t
	return v, nil
}

// Frame returns the viewed frame. Data and Meta alias the slot.
func (v *View) Frame() *ring.Frame { return &v.f }

// Release ends the view. It returns nil if the slot held this frame
// unchanged for the whole time since Acquire, and an error wrapping
// [ring.ErrOverwritten] otherwise: then everything derived from the view
// is garbage and must be thrown away. The frame counts as delivered or as
// dropped (Overwritten) accordingly. Release may be called from another
// goroutine than the reader's, for instance by a worker that finished
// with the frame while the reader waits in Close.
func (v *View) Release() error {
	r := v.r
	if r == nil {
		return fmt.Errorf("release: %w (zero View)", ring.ErrViewReleased)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.view.out || r.view.ticket != v.ticket {
		if r.closed.Load() {
			return fmt.Errorf("ring %q: release: %w", r.name, ring.ErrClosed)
		}
		return fmt.Errorf("ring %q: release frame %d: %w", r.name, v.f.Number, ring.ErrViewReleased)
	}
	vs := r.view
	r.endView()
	var ok bool
	err := shm.Guard(func() error {
		ok = r.seq.Validate(r.seg.Slot(vs.number).SeqWord(), vs.begin)
		return nil
	})
	if err != nil {
		r.pass(vs.number, &r.st.overwritten)
		return r.faulted(err)
	}
	if !ok {
		r.pass(vs.number, &r.st.overwritten)
		return fmt.Errorf("ring %q: frame %d: %w (the writer got more than %d frames ahead)",
			r.name, vs.number, ring.ErrOverwritten, r.geo.Slots)
	}
	r.deliver(vs.number, vs.publish, vs.at)
	return nil
}

// endView marks the view released and lets a waiting Close go on. The
// caller holds mu.
func (r *Reader) endView() {
	r.view.out = false
	r.cond.Broadcast()
}

// abandon releases the view with ticket t without delivering its frame
// (ReadInPlace's callback panicked).
func (r *Reader) abandon(t uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.view.out || r.view.ticket != t {
		return
	}
	n := r.view.number
	r.endView()
	r.pass(n, &r.st.abandoned)
}

// ReadInPlace acquires the next frame, runs fn on it in place, and releases
// it. It returns fn's error, or an error wrapping [ring.ErrOverwritten] if
// the slot changed while fn ran (then fn's results are garbage). A segment
// truncated while fn runs gives [ring.ErrTruncated] instead of a crash (in
// Go code: see Caveats in the package documentation).
//
// If fn panics, or faults on a truncated segment, the view is released and
// the frame counts as not delivered (Stats.Abandoned); the reader stays
// usable, and a panic goes on.
func (r *Reader) ReadInPlace(ctx context.Context, fn func(f *ring.Frame) error) error {
	v, err := r.Acquire(ctx)
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			r.abandon(v.ticket)
		}
	}()
	ferr := shm.Guard(func() error { return fn(v.Frame()) })
	finished = true
	if errors.Is(ferr, shm.ErrFault) {
		// fn touched a page the segment no longer has: whatever it computed
		// is garbage even if the slot's header page survived and the seq
		// still matches. The frame is given up, not delivered.
		r.abandon(v.ticket)
		return r.faulted(ferr)
	}
	if rerr := v.Release(); rerr != nil {
		return rerr
	}
	return ferr
}
