package producer

import (
	"fmt"
	"math"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/framering/framering/seqlock"
)

type seqlockWriter = seqlock.Writer

// Loan is a reserved slot: fill Pixels (and Meta) in place, then Commit or
// Abort. While a loan is out, readers skip its slot (its seqlock is odd).
type Loan struct {
	w      *Writer
	active bool
	number uint64
	odd    uint64
	slot   *ring.SlotHeader
	pixels []byte
	meta   []byte
	start  int64 // publish start: Publish's call, or Commit's
}

// Reserve lends the next slot. Only one loan may be out at a time.
func (w *Writer) Reserve() (*Loan, error) {
	if w.closed {
		return nil, fmt.Errorf("ring %q: reserve: %w", w.name, ring.ErrClosed)
	}
	if w.loan.active {
		return nil, fmt.Errorf("ring %q: reserve frame %d: %w; call Commit or Abort first", w.name, w.next, ring.ErrLoanOutstanding)
	}
	l := &w.loan
	l.start = 0 // Commit stamps it; Publish stamps its own start
	l.number = w.next
	err := shm.Guard(func() error {
		l.slot = w.seg.Slot(l.number)
		l.odd = w.seq.Begin(l.slot.SeqWord())
		return nil
	})
	if err != nil {
		return nil, w.truncated(err)
	}
	l.pixels = w.seg.Payload(l.number)
	l.meta = w.seg.Meta(l.number)
	l.active = true
	return l, nil
}

func (w *Writer) truncated(err error) error {
	return fmt.Errorf("ring %q: %w: %v; the segment was shrunk or removed under the writer, restart it", w.name, ring.ErrTruncated, err)
}

// Number is the frame number the loan will publish.
func (l *Loan) Number() uint64 { return l.number }

// Pixels is the slot's payload area, the ring's full slot capacity. It
// aliases shared memory and is valid until Commit or Abort.
func (l *Loan) Pixels() []byte { return l.pixels }

// Meta is the slot's metadata area. It aliases shared memory and is valid
// until Commit or Abort; say how much was written in FrameInfo.MetaLen.
func (l *Loan) Meta() []byte { return l.meta }

// Commit publishes the slot as frame Number with the given info. If info
// is invalid the loan stays out and the error says why: fix it and commit
// again, or Abort.
func (l *Loan) Commit(info ring.FrameInfo) error {
	if !l.active {
		return fmt.Errorf("ring %q: commit: no reservation is out; call Reserve first", l.w.name)
	}
	w := l.w
	if _, err := info.Normalize(w.geo.PayloadCap, w.geo.MetaCap); err != nil {
		return fmt.Errorf("ring %q: commit frame %d: %w", w.name, l.number, err)
	}
	return l.commit(&info)
}

// commit publishes the loan with info, already normalized.
func (l *Loan) commit(info *ring.FrameInfo) error {
	w := l.w
	if l.start == 0 {
		l.start = shm.Monotonic()
	}
	wall := time.Now().UnixNano()
	err := shm.Guard(func() error {
		if info.Meta != nil {
			copy(l.meta, info.Meta)
		}
		l.slot.Store(l.number, w.gen, info, l.start, wall)
		w.seq.End(l.slot.SeqWord(), l.odd)
		seg := w.seg
		seg.Head().Store(l.number)
		seg.FramesTotal().Add(1)
		seg.BytesTotal().Add(uint64(info.Len))
		seg.Notify().Add(1)
		shm.FutexWake(seg.Notify(), math.MaxInt32)
		return nil
	})
	l.active = false
	if err != nil {
		return w.truncated(err)
	}
	w.next = l.number + 1
	w.stats.frames.Add(1)
	w.stats.bytes.Add(uint64(info.Len))
	w.stats.publish.Record(shm.Monotonic() - l.start)
	if w.opts.Mirror != nil {
		w.mirror(l, info, wall)
	}
	return nil
}

func (w *Writer) mirror(l *Loan, info *ring.FrameInfo, wall int64) {
	f := ring.Frame{
		FrameInfo:  *info,
		Number:     l.number,
		Generation: w.gen,
		Published:  l.start,
		Wall:       time.Unix(0, wall),
		Pixels:     l.pixels[:info.Len],
	}
	f.Meta = l.meta[:info.MetaLen]
	if err := shm.Guard(func() error { return w.opts.Mirror.MirrorFrame(&f) }); err != nil {
		w.stats.mirrorErrors.Add(1)
		w.stats.lastMirrorErr.Store(&err)
	}
}

// Abort rolls the reservation back. The slot is marked empty: the frame it
// held before Reserve was already partly overwritten, so readers must not
// see it again. The frame number is reused by the next Reserve. Abort on a
// committed or aborted loan does nothing.
func (l *Loan) Abort() {
	if !l.active {
		return
	}
	w := l.w
	shm.Guard(func() error {
		l.slot.FrameNo = 0
		l.slot.PayloadLen = 0
		w.seq.End(l.slot.SeqWord(), l.odd)
		return nil
	})
	l.active = false
	w.stats.aborts.Add(1)
}

// Publish copies pixels into the next slot and commits it with info; it
// returns the frame number. For image formats pixels must hold
// Stride*Height bytes (Stride 0 means packed rows); for Raw, info.Len 0
// means len(pixels).
func (w *Writer) Publish(info ring.FrameInfo, pixels []byte) (uint64, error) {
	if info.Format == ring.Raw && info.Len == 0 {
		info.Len = len(pixels)
	}
	n, err := info.Normalize(w.geo.PayloadCap, w.geo.MetaCap)
	if err != nil {
		return 0, fmt.Errorf("ring %q: publish: %w", w.name, err)
	}
	if len(pixels) < n {
		return 0, fmt.Errorf("ring %q: publish: %w: buffer has %d bytes, %dx%d %v with stride %d needs %d",
			w.name, ring.ErrInvalidFrame, len(pixels), info.Width, info.Height, info.Format, info.Stride, n)
	}
	start := shm.Monotonic()
	l, err := w.Reserve()
	if err != nil {
		return 0, err
	}
	l.start = start
	if err := shm.Guard(func() error { copy(l.pixels, pixels[:n]); return nil }); err != nil {
		l.active = false
		return 0, w.truncated(err)
	}
	if err := l.commit(&info); err != nil {
		return 0, err
	}
	return l.number, nil
}
