package producer

import (
	"fmt"
	"math"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/memcopy"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// Loan is a reserved slot: fill [Loan.Data] (and write metadata through
// [Loan.Meta]) in place, then Commit or Abort. While a loan is out, readers
// skip its slot (its seqlock is odd).
//
// A Loan is a small value (a writer, a ticket, the frame number) and may
// be copied; all copies are the same loan. Once the loan is committed or
// aborted, every copy is stale: its methods return an error wrapping
// [ring.ErrLoanEnded] (or [ring.ErrClosed] after the writer was closed),
// Data returns nil, and none of them touches the ring again. Number stays
// valid.
type Loan struct {
	w      *Writer
	ticket uint64
	number uint64
}

// loan is the state of the writer's one loan, guarded by Writer.mu.
type loan struct {
	ticket  uint64 // of the Loan out; 0: none is out
	number  uint64
	odd     uint64 // the slot's seq while the writer holds it
	slot    *layout.SlotHeader
	info    ring.FrameInfo // normalized, fits the slots
	data    []byte         // info.Len bytes of the slot's payload area
	meta    []byte         // the slot's metadata area, MetaCap bytes
	metaLen int            // bytes of meta written
	start   int64          // publish start: Publish's call, or Commit's
	// PublishFrom's origin, stamped instead of start and the wall clock
	// at commit (0: those).
	published, wall int64
}

// Reserve lends the next slot for a frame described by info, which is
// normalized (see [ring.FrameInfo.Normalize]) and checked against the
// ring's slots before anything is written: [Loan.Data] is exactly
// info.Len bytes. info.Meta, if set, is copied into the slot's metadata
// area at once; [Loan.Meta] appends to it. Only one loan may be out at a
// time ([ring.ErrLoanOutstanding]).
func (w *Writer) Reserve(info ring.FrameInfo) (Loan, error) {
	return w.ReserveFrom(info, Origin{})
}

// check normalizes info and checks that it fits the slots.
func (w *Writer) check(info *ring.FrameInfo) error {
	if err := info.Normalize(); err != nil {
		return err
	}
	return info.Fits(w.geo)
}

// reserve takes the next slot for info, normalized and checked. The caller
// holds w.mu.
func (w *Writer) reserve(info *ring.FrameInfo) error {
	if w.closing {
		return fmt.Errorf("ring %q: reserve: %w", w.name, ring.ErrClosed)
	}
	if w.loan.ticket != 0 {
		return fmt.Errorf("ring %q: reserve frame %d: %w", w.name, w.next, ring.ErrLoanOutstanding)
	}
	l := &w.loan
	l.number = w.next
	l.start = 0 // Commit stamps it; Publish stamps its own start
	err := shm.Guard(func() error {
		l.slot = w.seg.Slot(l.number)
		l.odd = w.seq.Begin(l.slot.SeqWord())
		l.meta = w.seg.Meta(l.number)
		l.metaLen = copy(l.meta, info.Meta)
		return nil
	})
	if err != nil {
		return w.truncated(err)
	}
	l.info = *info
	l.info.Meta = nil
	l.data = w.seg.Payload(l.number)[:info.Len:info.Len]
	w.tickets++
	l.ticket = w.tickets
	return nil
}

func (w *Writer) truncated(err error) error {
	return fmt.Errorf("ring %q: %w under the writer (%v)", w.name, ring.ErrTruncated, err)
}

// state returns the writer's loan if l is it. The caller holds w.mu.
func (l Loan) state(op string) (*loan, error) {
	w := l.w
	switch {
	case w == nil:
		return nil, fmt.Errorf("%s: %w (zero Loan)", op, ring.ErrLoanEnded)
	case w.closed:
		return nil, fmt.Errorf("ring %q: %s: %w", w.name, op, ring.ErrClosed)
	case w.loan.ticket != l.ticket || l.ticket == 0:
		return nil, fmt.Errorf("ring %q: %s: %w", w.name, op, ring.ErrLoanEnded)
	}
	return &w.loan, nil
}

// Number is the frame number the loan publishes (or published, or would
// have published: an aborted loan's number is reused by the next one).
func (l Loan) Number() uint64 { return l.number }

// Data is the frame's payload in the slot: exactly the Len bytes of the
// info given to Reserve. It aliases shared memory and is valid until
// Commit or Abort; writing through it afterwards corrupts a published
// frame. Data is nil for a stale loan.
func (l Loan) Data() []byte {
	if l.w == nil {
		return nil
	}
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	s, err := l.state("data")
	if err != nil {
		return nil
	}
	return s.data
}

// SetCapture sets the frame's capture time (CLOCK_MONOTONIC ns, see
// [ring.Now]), for a source that knows it only after filling the slot
// (VideoCapture.Read). Zero means the publish time.
func (l Loan) SetCapture(ns int64) {
	if l.w == nil {
		return
	}
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	if s, err := l.state("set capture"); err == nil {
		s.info.Capture = ns
	}
}

// Meta returns a writer into the slot's metadata area: what is written
// through it (after the FrameInfo.Meta given to Reserve) is published with
// the frame, with its length. A write that does not fit the slot's
// metadata area writes nothing and fails with [ring.ErrFrameTooLarge].
func (l Loan) Meta() *MetaWriter { return &MetaWriter{l: l} }

// MetaWriter writes a loan's metadata into its slot. It implements
// io.Writer. It is valid as long as its loan.
type MetaWriter struct{ l Loan }

// Write appends p to the metadata.
func (m *MetaWriter) Write(p []byte) (int, error) {
	w := m.l.w
	if w == nil {
		return 0, fmt.Errorf("write metadata: %w (zero Loan)", ring.ErrLoanEnded)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s, err := m.l.state("write metadata")
	if err != nil {
		return 0, err
	}
	if len(p) > len(s.meta)-s.metaLen {
		return 0, fmt.Errorf("ring %q: write metadata: %w: %d bytes after %d, the slots hold %d", w.name, ring.ErrFrameTooLarge, len(p), s.metaLen, len(s.meta))
	}
	if err := shm.Guard(func() error { copy(s.meta[s.metaLen:], p); return nil }); err != nil {
		return 0, w.truncated(err)
	}
	s.metaLen += len(p)
	return len(p), nil
}

// Len is how many bytes of metadata the loan holds so far.
func (m *MetaWriter) Len() int {
	w := m.l.w
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s, err := m.l.state("metadata length")
	if err != nil {
		return 0
	}
	return s.metaLen
}

// Commit publishes the slot as frame Number. After Commit, successful or
// not, the loan is over and the writer can Reserve again; an error means
// the frame was not published (the segment was truncated under the
// writer, or the loan is stale).
func (l Loan) Commit() error {
	if l.w == nil {
		return fmt.Errorf("commit: %w (zero Loan)", ring.ErrLoanEnded)
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := l.state("commit"); err != nil {
		return err
	}
	return w.commit()
}

// commit publishes the writer's loan and ends it. The caller holds w.mu.
func (w *Writer) commit() error {
	l := &w.loan
	defer w.endLoan()
	if l.start == 0 {
		l.start = ring.Now()
	}
	if l.published == 0 {
		l.published = l.start
	}
	wall := l.wall
	if wall == 0 {
		wall = time.Now().UnixNano()
	}
	err := shm.Guard(func() error {
		l.slot.Store(l.number, w.gen, &l.info, l.metaLen, l.published, wall)
		w.seq.End(l.slot.SeqWord(), l.odd)
		seg := w.seg
		seg.Head().Store(l.number)
		seg.FramesTotal().Add(1)
		seg.BytesTotal().Add(uint64(l.info.Len))
		seg.Notify().Add(1)
		shm.FutexWake(seg.Notify(), math.MaxInt32)
		return nil
	})
	if err != nil {
		return w.truncated(err)
	}
	w.next = l.number + 1
	w.stats.frames.Add(1)
	w.stats.bytes.Add(uint64(l.info.Len))
	w.stats.publish.Record(ring.Now() - l.start)
	if w.opts.Mirror != nil {
		w.mirror(l, wall)
	}
	return nil
}

// endLoan makes the loan stale and lets a waiting Close go on. The caller
// holds w.mu.
func (w *Writer) endLoan() {
	w.loan = loan{}
	w.cond.Broadcast()
}

func (w *Writer) mirror(l *loan, wall int64) {
	f := ring.Frame{
		FrameInfo:  l.info,
		Number:     l.number,
		Generation: w.gen,
		Published:  l.published,
		Wall:       time.Unix(0, wall),
		Data:       l.data,
	}
	f.Meta = l.meta[:l.metaLen]
	if err := shm.Guard(func() error { return w.opts.Mirror.MirrorFrame(&f) }); err != nil {
		w.stats.mirrorErrors.Add(1)
		w.stats.lastMirrorErr.Store(&err)
	}
}

// Abort rolls the reservation back. The slot is marked empty: the frame it
// held before Reserve was already partly overwritten, so readers must not
// see it again. The frame number is reused by the next Reserve. Abort of a
// stale loan does nothing.
func (l Loan) Abort() {
	if l.w == nil {
		return
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := l.state("abort"); err == nil {
		w.abort()
	}
}

// abort rolls the writer's loan back. The caller holds w.mu.
func (w *Writer) abort() {
	l := &w.loan
	shm.Guard(func() error {
		l.slot.FrameNo = 0
		l.slot.PayloadLen = 0
		w.seq.End(l.slot.SeqWord(), l.odd)
		return nil
	})
	w.stats.aborts.Add(1)
	w.endLoan()
}

// Publish copies data into the next slot and commits it with info; it
// returns the frame number. For image formats data must hold
// Stride*Height bytes (Stride 0 means packed rows); for Raw, info.Len 0
// means len(data). info.Meta is published with the frame.
func (w *Writer) Publish(info ring.FrameInfo, data []byte) (uint64, error) {
	return w.publish(info, data, Origin{})
}

// Origin says where a republished frame came from (see [Writer.PublishFrom]).
type Origin struct {
	// Number is the frame number to publish under. Zero means the next
	// number; otherwise it must not be below the next number. The numbers
	// skipped are never published: readers count them as dropped (lost),
	// as they count any frame they could not get.
	Number uint64
	// Published is when the frame was first published, CLOCK_MONOTONIC ns
	// of this host (see [ring.Now]); readers measure latency from it. Zero
	// means now. It must not be in the future.
	Published int64
	// Wall is the wall clock of the first publish. Zero means now.
	Wall time.Time
}

// PublishFrom is Publish for a frame first published elsewhere, by a
// bridge that carries frames from another ring: the frame keeps its number
// (gaps in the numbering become frames the readers count as dropped) and
// its readers' latency counts from the original publish time. The
// writer's own publish-duration statistics still time this call.
//
// Skipping numbers empties the slots of the skipped numbers still within
// a ring of the new one (as an aborted loan does), so that every slot
// holds a frame of the last Slots numbers or none: readers in any
// language find the skipped numbers lost (docs/PROTOCOL.md §6), and a
// writer taking the ring over finds the head the slots back.
func (w *Writer) PublishFrom(info ring.FrameInfo, data []byte, o Origin) (uint64, error) {
	return w.publish(info, data, o)
}

func (w *Writer) publish(info ring.FrameInfo, data []byte, o Origin) (uint64, error) {
	start := ring.Now()
	if info.Format == ring.Raw && info.Len == 0 {
		info.Len = len(data)
	}
	if err := w.check(&info); err != nil {
		return 0, fmt.Errorf("ring %q: publish: %w", w.name, err)
	}
	if len(data) < info.Len {
		return 0, fmt.Errorf("ring %q: publish: %w: buffer has %d bytes, %dx%d %v with stride %d needs %d",
			w.name, ring.ErrInvalidFrame, len(data), info.Width, info.Height, info.Format, info.Stride, info.Len)
	}
	w.mu.Lock()
	err := w.reserveFrom(&info, o, start)
	l := w.loan // the loan is ours until commit: Close waits for it
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// The copy runs without the lock, so that Stats does not wait for it.
	cerr := shm.Guard(func() error { memcopy.Copy(l.data, data[:info.Len]); return nil })
	w.mu.Lock()
	defer w.mu.Unlock()
	if cerr != nil {
		w.endLoan()
		return 0, w.truncated(cerr)
	}
	w.loan.start = start
	if err := w.commit(); err != nil {
		return 0, err
	}
	return l.number, nil
}

// ReserveFrom is Reserve for a frame first published elsewhere, as
// [Writer.PublishFrom] publishes it: the loan's frame number is o.Number
// (zero: the next one; the numbers skipped are never published) and its
// publish time and wall clock are o's.
func (w *Writer) ReserveFrom(info ring.FrameInfo, o Origin) (Loan, error) {
	if err := w.check(&info); err != nil {
		return Loan{}, fmt.Errorf("ring %q: reserve: %w", w.name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.reserveFrom(&info, o, ring.Now()); err != nil {
		return Loan{}, err
	}
	return Loan{w: w, ticket: w.loan.ticket, number: w.loan.number}, nil
}

// reserveFrom reserves the slot of frame o.Number for info, normalized
// and checked, to be stamped with o's times at commit. now is
// CLOCK_MONOTONIC. The caller holds w.mu.
func (w *Writer) reserveFrom(info *ring.FrameInfo, o Origin, now int64) error {
	if o.Number >= 1<<63 || o.Published < 0 || o.Published > now {
		return fmt.Errorf("ring %q: publish: %w: frame number %d or publish time %d out of range", w.name, ring.ErrInvalidFrame, o.Number, o.Published)
	}
	if err := w.skipTo(o.Number); err != nil {
		return err
	}
	if err := w.reserve(info); err != nil {
		return err
	}
	w.loan.published = o.Published
	if !o.Wall.IsZero() {
		w.loan.wall = o.Wall.UnixNano()
	}
	return nil
}

// skipTo makes number (0: the next one) the next frame's number, emptying
// the slots of the numbers skipped that are within a ring of it. The
// caller holds w.mu.
func (w *Writer) skipTo(number uint64) error {
	switch {
	case number == 0 || number == w.next:
		return nil
	case number < w.next:
		return fmt.Errorf("ring %q: publish: %w: frame number %d, the ring is at %d already (numbers never go back)", w.name, ring.ErrInvalidFrame, number, w.next)
	case w.closing || w.loan.ticket != 0:
		return nil // reserve says why
	}
	first := w.next
	if n := uint64(w.geo.Slots); number-first >= n {
		first = number - n + 1
	}
	err := shm.Guard(func() error {
		for k := first; k < number; k++ {
			h := w.seg.Slot(k)
			odd := w.seq.Begin(h.SeqWord())
			h.FrameNo = 0
			h.PayloadLen = 0
			w.seq.End(h.SeqWord(), odd)
		}
		return nil
	})
	if err != nil {
		return w.truncated(err)
	}
	w.next = number
	return nil
}
