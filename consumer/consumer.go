package consumer

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	// Spin is how long a read busy-polls before it sleeps on the futex.
	// Zero means no spinning. Spinning cuts wake-up latency to about a
	// microsecond and burns a core while it lasts.
	Spin time.Duration
	// WaitSlice bounds one futex sleep; after each slice the reader checks
	// the writer's liveness. Zero means 100 ms.
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
	notify  atomic.Pointer[atomic.Uint32] // for Close's wake from another goroutine

	seq     seqlock.Reader
	started bool
	next    uint64 // the next frame number to consider
	head    uint64 // the head pick last saw
	gone    bool   // ErrWriterGone returned; waiting for a writer
	meta    []byte
	view    viewState

	closeWaits atomic.Int32 // Close calls that waited for a view (tests watch it)

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
	writerDown                              atomic.Bool
	latency                                 hist.Histogram
}

// Open opens ring name for reading. It fails with [ring.ErrNotFound] if
// the ring does not exist; [OpenWait] waits for it instead.
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
	shm.Guard(func() error { r.start(r.seg.Head().Load()); return nil })
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
	r.notify.Store(sf.Seg.Notify())
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
	if n := r.notify.Load(); n != nil {
		shm.Guard(func() error { shm.FutexWake(n, math.MaxInt32); return nil })
	}
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

// Stats is a snapshot of a reader's counters. For every reader, Delivered
// + Dropped() equals the frames published from WindowStart to Last.
type Stats struct {
	Delivered   uint64 // frames returned (copy) or released valid (view)
	Lapped      uint64 // Ordered: frames overwritten before the reader got to them
	Skipped     uint64 // Latest: frames passed over for a newer one
	Overwritten uint64 // views whose slot was overwritten before Release
	Corrupt     uint64 // frames whose slot header failed validation (each also returned an error)
	Abandoned   uint64 // views released by a panic in ReadInPlace's callback
	Retries     uint64 // reads thrown away because the writer changed the slot meanwhile
	WriterGone  uint64 // times ErrWriterGone was returned
	Resumes     uint64 // times a writer came back
	Resets      uint64 // times the frame numbering started again (ring recreated from scratch)
	Lag         uint64 // frames between the last delivered one and the newest, at that time
	WindowStart uint64 // first frame number of the window
	Last        uint64 // last frame number considered (delivered or dropped)
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
		WindowStart: r.st.windowStart.Load(),
		Last:        r.st.last.Load(),
		WriterUp:    !r.st.writerDown.Load(),
		Latency:     r.st.latency.Snapshot().Latency(),
	}
}

// start sets the window's first frame from the head at open.
func (r *Reader) start(head uint64) {
	n := uint64(r.geo.Slots)
	switch r.opts.StartAt {
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
}

// candidate picks the frame to read given the head, counting what it
// passes over. ok is false when there is nothing new.
func (r *Reader) candidate(head uint64) (uint64, bool) {
	if head+1 < r.next {
		// The numbering went back: the ring was recreated from scratch.
		r.st.resets.Add(1)
		r.started = false
		r.opts.StartAt = Oldest
		r.start(head)
	}
	if r.next > head {
		return 0, false
	}
	switch r.opts.Mode {
	case Latest:
		if head > r.next {
			r.st.skipped.Add(head - r.next)
			r.next = head
		}
	default:
		if n := uint64(r.geo.Slots); head-r.next >= n {
			// Lapped. Resume half a ring behind the head, not at the oldest
			// slot: the writer overwrites that one next, and a reader that
			// is slower than the writer would be lapped again at once.
			resume := head - n/2 + 1
			r.st.lapped.Add(resume - r.next)
			r.next = resume
		}
	}
	return r.next, true
}

// errGone builds the ErrWriterGone error for why.
func (r *Reader) errGone(why string) error {
	r.gone = true
	r.st.gone.Add(1)
	r.st.writerDown.Store(true)
	return fmt.Errorf("ring %q: %w: %s", r.name, ring.ErrWriterGone, why)
}

// writerState reports whether the writer is alive, and if not, why.
func (r *Reader) writerState() (bool, string) {
	l := r.sf.Writer(r.opts.HungAfter)
	return l.Alive, l.Why
}

// pick blocks until there is a frame to read and returns its number.
func (r *Reader) pick(ctx context.Context) (uint64, error) {
	var spinUntil int64
	for {
		if r.closed.Load() {
			return 0, fmt.Errorf("ring %q: %w", r.name, ring.ErrClosed)
		}
		if r.gone {
			if err := r.awaitWriter(ctx); err != nil {
				return 0, err
			}
		}
		head := r.seg.Head().Load()
		if !r.started {
			r.start(head)
		}
		if n, ok := r.candidate(head); ok {
			r.head = head
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if r.opts.Spin > 0 {
			now := ring.Now()
			if spinUntil == 0 {
				spinUntil = now + int64(r.opts.Spin)
			}
			if now < spinUntil {
				for i := 0; i < 128 && r.seg.Head().Load() == head; i++ {
				}
				continue
			}
		}
		if err := r.sleep(ctx, head); err != nil {
			return 0, err
		}
	}
}

// sleep waits on the futex for one slice, or until the deadline. If no
// frame came and the writer is gone, it returns ErrWriterGone.
func (r *Reader) sleep(ctx context.Context, head uint64) error {
	notify := r.seg.Notify()
	v := notify.Load()
	if r.seg.Head().Load() != head {
		return nil
	}
	slice := r.opts.WaitSlice
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return ctx.Err()
		}
		slice = min(slice, left)
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { shm.FutexWake(notify, math.MaxInt32) })
	}
	shm.FutexWait(notify, v, slice)
	if stop != nil {
		stop()
	}
	if r.seg.Head().Load() != head || r.closed.Load() || ctx.Err() != nil {
		return nil
	}
	if alive, why := r.writerState(); !alive {
		return r.errGone(why)
	}
	return nil
}

// awaitWriter waits until a writer is back, re-mapping if it replaced the
// segment.
func (r *Reader) awaitWriter(ctx context.Context) error {
	for {
		if r.closed.Load() {
			return fmt.Errorf("ring %q: %w", r.name, ring.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.sf.Replaced() {
			if err := r.attach(); err == nil {
				r.resume()
				return nil
			}
		} else if alive, _ := r.writerState(); alive {
			r.resume()
			return nil
		}
		notify := r.seg.Notify()
		v := notify.Load()
		slice := min(r.opts.WaitSlice, 50*time.Millisecond)
		if dl, ok := ctx.Deadline(); ok {
			slice = min(slice, max(time.Until(dl), time.Millisecond))
		}
		shm.FutexWait(notify, v, slice)
	}
}

func (r *Reader) resume() {
	r.gone = false
	r.st.resumes.Add(1)
	r.st.writerDown.Store(false)
}
