package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/framering/framering/seqlock"
)

// Mode says which frames a reader delivers.
type Mode int

const (
	// Ordered delivers every frame in order and counts the ones it was
	// lapped on.
	Ordered Mode = iota
	// Latest delivers the newest frame and counts the ones it skipped.
	Latest
)

func (m Mode) String() string {
	if m == Latest {
		return "latest"
	}
	return "ordered"
}

// Position says where a reader's window begins.
type Position int

const (
	// Newest begins with the newest frame in the ring at Open, if there is
	// one, else with the first frame published after Open.
	Newest Position = iota
	// Next begins with the first frame published after Open.
	Next
	// Oldest begins with the oldest frame still in the ring.
	Oldest
)

func (p Position) String() string {
	switch p {
	case Next:
		return "next"
	case Oldest:
		return "oldest"
	}
	return "newest"
}

// Options configure a reader. Every zero value is a sensible default.
type Options struct {
	// Dir is the directory holding ring objects. Empty means /dev/shm.
	Dir string
	// Mode is Ordered (zero) or Latest.
	Mode Mode
	// StartAt is where the window begins; zero means Newest.
	StartAt Position
	// Spin is how long a read busy-polls the head before it sleeps on the
	// futex. Zero means no spinning. It is capped at WaitSlice: a read
	// never spins longer than that without probing the writer and
	// sleeping. Spinning cuts wake-up latency to about a microsecond and
	// burns a core while it lasts; see Waiting in the package
	// documentation for when it helps and when it hurts.
	Spin time.Duration
	// WaitSlice bounds one futex sleep; after each slice in which no frame
	// came the reader checks the writer's liveness. Zero means 100 ms.
	// Close and a cancelled context end a sleep at once whatever the
	// slice (see Waiting).
	WaitSlice time.Duration
	// HungAfter is how old the writer's heartbeat may get before the
	// writer counts as gone although its process lives. Zero means 1 s.
	HungAfter time.Duration
	// AllowGroupWritable accepts a segment that the owner's group may
	// write (mode 0660). Zero refuses it.
	AllowGroupWritable bool
	// AllowOtherOwner accepts a segment owned by another user, such as a
	// producer running as a service account that created it 0640 for your
	// group. Zero refuses it: by default a reader trusts only its own
	// user's segments. Every field is validated either way.
	AllowOtherOwner bool
	// NoPrefault leaves the reader's mapping to be faulted in by its
	// reads. By default Open (and the re-map after a writer replaced the
	// segment) reads one word of every page (shm.Mapping.PrefaultRead),
	// so that no slot's first read pays a fresh mapping's page faults: on
	// the VM of docs/PERFORMANCE.md that costs Open 30-38 ms for 8 slots
	// of 1920x1080x3 (1.3-1.9 ms where the segment has huge pages) and
	// spares the first read of each slot 3-4 ms, 10-15 times a
	// steady-state Read. A reader that must open fast, or reads few of
	// the frames or only part of each, may turn it off.
	NoPrefault bool
}

const (
	defaultSlice = 100 * time.Millisecond
	defaultHung  = time.Second
)

// Reader follows one ring.
type Reader struct {
	name string
	opts Options

	// mu is held by every read and by Release; Close takes it before
	// unmapping, and waits on cond (on mu) for an outstanding view.
	mu      sync.Mutex
	cond    sync.Cond
	closed  atomic.Bool   // Close was called
	done    chan struct{} // closed when Close has unmapped
	sf      *segfile.File
	seg     *layout.Segment // sf.Seg
	mapped  *mapped         // sf again, for the cleanup of a Reader never closed
	cleanup runtime.Cleanup
	geo     ring.Geometry
	geoPub  atomic.Pointer[ring.Geometry] // geo, for Geometry without mu

	// waker is the reader's private futex word, waited on together with
	// the ring's Notify: Close and a cancelled context poke it, and a
	// blocked read returns at once, even when the poke lands between its
	// last check and its sleep (see wait.go).
	waker      shm.Waker
	stopCancel func() bool // the context.AfterFunc of the read that is waiting, if armed
	beforeWait func()      // test hook: runs right before every futex wait

	seq     seqlock.Reader
	started bool
	next    uint64 // the next frame number to consider
	head    uint64 // the head pick last saw
	gone    bool   // ErrWriterGone returned; waiting for a writer
	meta    []byte
	view    viewState

	// How the writer went when the reader declared it gone: the rule of
	// PROTOCOL.md §10 on when the same file has a writer again.
	goneHung bool   // the lock was held with a stale heartbeat (hung)
	goneGen  uint64 // Generation then, loaded before the lock probe

	// Bounded retries and absurd heads (wait.go).
	tornFrame  uint64 // the frame the torn attempts were on
	tornCount  int    // consecutive torn attempts on tornFrame
	badHead    uint64 // the head the last read refused as corrupt
	badHeadSet bool

	closeWaits atomic.Int32 // Close calls that waited for a view (tests watch it)
	// What waiting reads did, for tests and benchmarks: loop turns of
	// pick, futex waits, writer probes.
	loops, waits, probes atomic.Uint64

	st counters
}

// viewState is the reader's one view, guarded by mu.
type viewState struct {
	out     bool
	ticket  uint64 // of the View out; incremented at every Acquire
	number  uint64
	begin   uint64 // the seq value the view was taken under
	at      int64  // when Acquire got it: the frame was usable from then
	publish int64  // the frame's publish time, for the latency
}

type counters struct {
	delivered, lapped, skipped, overwritten atomic.Uint64
	corrupt                                 atomic.Uint64
	abandoned                               atomic.Uint64
	retries, gone, resumes, resets          atomic.Uint64
	lag                                     atomic.Uint64
	windowStart, last                       atomic.Uint64
	closedWindows                           atomic.Uint64 // frames of the windows closed by resets
	writerDown                              atomic.Bool
	latency                                 hist.Histogram
}

// absurdHead is the smallest Head a reader refuses (D4): head+1 or
// head+Slots could wrap, and no writer gets there by counting frames.
const absurdHead = layout.AbsurdNumber

// Open opens ring name for reading. It fails with [ring.ErrNotFound] if
// the ring does not exist; [OpenWait] waits for it instead. A ring whose
// Head is 2^63 or more is refused as corrupt ([ring.ErrCorrupt]).
func Open(name string, opts Options) (*Reader, error) {
	if err := ring.CheckName(name); err != nil {
		return nil, err
	}
	if opts.WaitSlice <= 0 {
		opts.WaitSlice = defaultSlice
	}
	if opts.HungAfter <= 0 {
		opts.HungAfter = defaultHung
	}
	r := &Reader{name: name, opts: opts, done: make(chan struct{})}
	r.cond.L = &r.mu
	if err := r.attach(); err != nil {
		return nil, err
	}
	var head uint64
	shm.Guard(func() error { head = r.seg.Head().Load(); return nil })
	if head >= absurdHead {
		r.sf.Close()
		return nil, fmt.Errorf("open ring %q: %w: head %d is 2^63 or more", name, ring.ErrCorrupt, head)
	}
	r.start(head, opts.StartAt)
	r.prefault()
	// A Reader dropped without Close is unmapped when the GC finds it.
	r.cleanup = runtime.AddCleanup(r, func(m *mapped) { m.sf.Close() }, r.mapped)
	return r, nil
}

// mapped holds the current mapping for a Reader's cleanup, which must not
// reference the Reader itself.
type mapped struct {
	sf *segfile.File
}

// OpenWait is Open, but waits until the ring exists and has a valid
// superblock, or ctx ends.
func OpenWait(ctx context.Context, name string, opts Options) (*Reader, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		r, err := Open(name, opts)
		if err == nil || !(errors.Is(err, ring.ErrNotFound) || errors.Is(err, ring.ErrTruncated)) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open ring %q: waiting for it: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// attach opens, checks and maps the ring's object, in place of the
// one mapped before (if any).
func (r *Reader) attach() error {
	sf, err := segfile.Open(r.opts.Dir, r.name, shm.Trust{GroupWrite: r.opts.AllowGroupWritable, OtherOwner: r.opts.AllowOtherOwner})
	if err != nil {
		return err
	}
	old := r.sf
	r.sf, r.seg, r.geo = sf, sf.Seg, sf.Seg.Geometry()
	if old != nil {
		r.prefault() // a re-map; Open prefaults once it has placed the window
	}
	g := r.geo
	r.geoPub.Store(&g)
	if r.mapped == nil {
		r.mapped = &mapped{}
	}
	r.mapped.sf = sf
	return old.Close()
}

// Name returns the ring name.
func (r *Reader) Name() string { return r.name }

// Geometry returns the geometry of the segment the reader has mapped. It
// changes when a writer replaces the segment with another geometry. It
// takes no lock: it never waits for a blocked read, and may be called from
// any goroutine.
func (r *Reader) Geometry() ring.Geometry { return *r.geoPub.Load() }

// Close wakes a blocked read, which returns [ring.ErrClosed], and releases
// the segment. It may be called from any goroutine, more than once.
//
// A view that is out when Close is called is waited for: Close returns
// after the goroutine working on it calls [View.Release] (bbolt's rule for
// open transactions). Calling Close from that goroutine before Release
// therefore never returns. Release after Close returns [ring.ErrClosed].
//
// After Close, the view's slices no longer point to the ring: the range
// stays reserved and inaccessible for a while (see the package
// documentation, Caveats), so a stale access faults instead of reading
// memory that something else reuses.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		<-r.done
		return nil
	}
	defer close(r.done)
	r.waker.Poke()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.view.out {
		r.closeWaits.Add(1)
		for r.view.out {
			r.cond.Wait()
		}
	}
	r.cleanup.Stop()
	return r.sf.Close()
}

// Stats is a snapshot of a reader's counters. For every reader, at every
// moment, Delivered + Dropped() == Considered: every frame published in
// the reader's windows was delivered or counted as dropped exactly once.
//
// A window runs from the frame [Options.StartAt] picks at Open
// (WindowStart) to the last frame considered (Last). A writer restart, or a
// replacement that carries the numbering over, continues the window. A
// reset (the ring was created again from scratch under the same name, its
// numbering went back) closes the window and opens a new one at the
// oldest frame of the new numbering: Resets counts them, WindowStart and
// Last then describe the new window, and Considered sums all of them.
type Stats struct {
	Delivered   uint64 // frames returned (copy) or released valid (view)
	Lapped      uint64 // Ordered: frames overwritten before the reader got to them
	Skipped     uint64 // Latest: frames passed over for a newer one
	Overwritten uint64 // views whose slot was overwritten before Release
	Corrupt     uint64 // frames whose slot header failed validation (each also returned an error)
	Abandoned   uint64 // views given up: ReadInPlace's callback panicked, or faulted on a truncated segment
	Retries     uint64 // reads thrown away because the writer changed the slot meanwhile
	WriterGone  uint64 // times ErrWriterGone was returned
	Resumes     uint64 // times a writer came back
	Resets      uint64 // times the frame numbering started again (ring recreated from scratch)
	Lag         uint64 // frames between the last delivered one and the newest, at that time
	WindowStart uint64 // first frame number of the current window
	Last        uint64 // last frame number considered (delivered or dropped); WindowStart-1 before the first
	Considered  uint64 // frames in all windows so far: Delivered + Dropped()
	WriterUp    bool   // false between writer-gone and resume
	// Latency is publish start -> delivery (CLOCK_MONOTONIC).
	Latency ring.Latency
}

// Dropped is every frame of the window that was not delivered.
func (s Stats) Dropped() uint64 {
	return s.Lapped + s.Skipped + s.Overwritten + s.Corrupt + s.Abandoned
}

// Stats returns the reader's counters. Safe from any goroutine.
func (r *Reader) Stats() Stats {
	ws, last := r.st.windowStart.Load(), r.st.last.Load()
	if last+1 < ws {
		last = ws - 1 // a read stored them in between
	}
	return Stats{
		Delivered:   r.st.delivered.Load(),
		Lapped:      r.st.lapped.Load(),
		Skipped:     r.st.skipped.Load(),
		Overwritten: r.st.overwritten.Load(),
		Corrupt:     r.st.corrupt.Load(),
		Abandoned:   r.st.abandoned.Load(),
		Retries:     r.st.retries.Load(),
		WriterGone:  r.st.gone.Load(),
		Resumes:     r.st.resumes.Load(),
		Resets:      r.st.resets.Load(),
		Lag:         r.st.lag.Load(),
		WindowStart: ws,
		Last:        last,
		Considered:  r.st.closedWindows.Load() + (last + 1 - ws),
		WriterUp:    !r.st.writerDown.Load(),
		Latency:     r.st.latency.Snapshot().Latency(),
	}
}

// start opens a window at the frame pos picks given the head.
func (r *Reader) start(head uint64, pos Position) {
	n := uint64(r.geo.Slots)
	switch pos {
	case Next:
		r.next = head + 1
	case Oldest:
		r.next = 1
		if head > n {
			r.next = head - n + 1
		}
	default:
		r.next = max(head, 1)
	}
	r.started = true
	r.st.windowStart.Store(r.next)
	r.st.last.Store(r.next - 1)
}

// candidate picks the frame to read given the head, counting what it
// passes over. ok is false when there is nothing new. why is set, and
// nothing counted, when the head is not backed by the slots (D4).
func (r *Reader) candidate(head uint64) (n uint64, ok bool, why string) {
	if head+1 < r.next {
		// The numbering went back: the ring was recreated from scratch.
		// Close this window and open one at the oldest frame.
		r.st.resets.Add(1)
		ws, last := r.st.windowStart.Load(), r.st.last.Load()
		r.st.closedWindows.Add(last + 1 - ws)
		r.start(head, Oldest)
	}
	if r.next > head {
		return 0, false, ""
	}
	slots := uint64(r.geo.Slots)
	switch r.opts.Mode {
	case Latest:
		if head > r.next {
			if head-r.next >= slots {
				if why := r.unbacked(head); why != "" {
					return 0, false, why
				}
			}
			r.st.skipped.Add(head - r.next)
			r.next = head
		}
	default:
		if head-r.next >= slots {
			if why := r.unbacked(head); why != "" {
				return 0, false, why
			}
			// Lapped. Resume half a ring behind the head, not at the oldest
			// slot: the writer overwrites that one next, and a reader that
			// is slower than the writer would be lapped again at once.
			resume := head - slots/2 + 1
			r.st.lapped.Add(resume - r.next)
			r.next = resume
		}
	}
	return r.next, true, ""
}

// unbacked checks, before a jump of a whole ring or more is counted, that
// the slot of frame head does not hold an older frame: the writer stores
// Head only after committing the frame's slot, and a slot only ever gets a
// newer frame or none (0), so an older one means a head that the slots do
// not back (a broken writer, an altered file). It returns why, or "".
func (r *Reader) unbacked(head uint64) string {
	slot := r.seg.Slot(head)
	seq := slot.SeqWord()
	for try := 0; try < 4; try++ {
		s1, even := r.seq.Begin(seq)
		if !even {
			return "" // being written: the writer is there, believe it
		}
		fn := slot.FrameNo // racy copy, validated below
		if r.seq.Validate(seq, s1) {
			if fn != 0 && fn < head {
				return fmt.Sprintf("head %d is not backed by the slots (the slot of frame %d holds frame %d)", head, head, fn)
			}
			return ""
		}
	}
	return ""
}

// errGone records what the probe l found (the writer not alive) and
// builds the ErrWriterGone error.
func (r *Reader) errGone(l segfile.Liveness) error {
	r.markGone(l)
	r.st.gone.Add(1)
	return fmt.Errorf("ring %q: %w: %s", r.name, ring.ErrWriterGone, l.Why)
}

// markGone makes the next read wait for a writer (awaitWriter), and
// remembers how the writer went.
func (r *Reader) markGone(l segfile.Liveness) {
	r.gone = true
	r.goneHung = l.State == segfile.Hung
	r.goneGen = l.Generation
	r.st.writerDown.Store(true)
}

// writerState probes the writer.
func (r *Reader) writerState() segfile.Liveness {
	r.probes.Add(1)
	return r.sf.Writer(r.opts.HungAfter)
}

// writerBack reports whether the mapped file has had a writer again since
// the reader declared it gone (PROTOCOL.md §10): Generation moved (a
// writer completed a takeover, D3, and its frames are in the file, even
// if that writer has already gone again), or the writer was hung and is
// alive with a fresh heartbeat again. The lock held with the same
// Generation after a writer that was gone (the lock was free) is a new
// writer that is still preparing the file, or replacing it: not back yet.
func (r *Reader) writerBack() bool {
	l := r.writerState()
	if l.Generation != 0 && l.Generation != r.goneGen {
		return true
	}
	return r.goneHung && l.Alive
}

func (r *Reader) errClosed() error {
	return fmt.Errorf("ring %q: %w", r.name, ring.ErrClosed)
}

func (r *Reader) resume() {
	r.gone = false
	r.st.resumes.Add(1)
	r.st.writerDown.Store(false)
}
