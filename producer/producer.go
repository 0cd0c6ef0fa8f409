package producer

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/framering/framering/seqlock"
)

// Options configure a writer. The zero value of each field is a sensible
// default, except that the frame size must be given.
type Options struct {
	// Dir is the directory holding ring objects. Empty means /dev/shm.
	Dir string
	// Slots is the slot count, a power of two >= 2. Zero means 8.
	Slots int
	// MaxFrameBytes is the payload capacity of a slot in bytes. Zero means
	// MaxWidth*MaxHeight*MaxChannels.
	MaxFrameBytes int
	// MaxWidth, MaxHeight and MaxChannels give the capacity as a frame
	// shape when MaxFrameBytes is zero. MaxChannels zero means 3.
	MaxWidth, MaxHeight, MaxChannels int
	// MetaBytes is the metadata capacity of a slot in bytes (detections
	// that travel with their frame). Zero means none.
	MetaBytes int
	// Perm is the permission of a new segment. Zero means 0600. Group read
	// (0640) lets a group's processes read; group write (0660) is allowed
	// only when given here, and world write never.
	Perm fs.FileMode
	// Heartbeat is how often the writer stamps the superblock so readers
	// can tell a hung writer from an idle one. Zero means 100 ms.
	Heartbeat time.Duration
	// Mirror, if set, is handed every committed frame (the legacy slot of
	// package legacy implements it).
	Mirror Mirror
}

// Mirror receives every committed frame, after readers can see it. f's
// Data and Meta alias the slot and are valid only during the call.
type Mirror interface {
	MirrorFrame(f *ring.Frame) error
}

const (
	defaultSlots     = 8
	defaultHeartbeat = 100 * time.Millisecond
)

func (o Options) geometry() (ring.Geometry, error) {
	g := ring.Geometry{Slots: o.Slots, PayloadCap: o.MaxFrameBytes, MetaCap: o.MetaBytes}
	if g.Slots == 0 {
		g.Slots = defaultSlots
	}
	if g.PayloadCap == 0 {
		c := o.MaxChannels
		if c == 0 {
			c = 3
		}
		if o.MaxWidth <= 0 || o.MaxHeight <= 0 || c < 0 {
			return g, fmt.Errorf("%w: no frame size (Options.MaxFrameBytes, or MaxWidth and MaxHeight)", ring.ErrInvalidFrame)
		}
		n := int64(o.MaxWidth) * int64(o.MaxHeight) * int64(c)
		if n > layout.MaxPayloadCap {
			return g, fmt.Errorf("%w: %dx%dx%d is %d bytes, more than %d", ring.ErrInvalidFrame, o.MaxWidth, o.MaxHeight, c, n, int64(layout.MaxPayloadCap))
		}
		g.PayloadCap = int(n)
	}
	return g, g.Check()
}

// Writer publishes frames into one ring.
type Writer struct {
	name, path string
	opts       Options
	file       *shm.File
	mapping    *shm.Mapping
	seg        *layout.Segment
	geo        ring.Geometry
	gen        uint64
	seq        seqlock.Writer

	// mu guards the loan, the frame numbering and the closing state, and
	// keeps the mapping alive for Stats; cond (on mu) tells a waiting
	// Close that the loan ended.
	mu      sync.Mutex
	cond    sync.Cond
	next    uint64 // number of the next frame
	loan    loan   // the one loan; loan.ticket != 0 while it is out
	tickets uint64 // the last ticket handed out
	closing bool   // Close was called: no new loan
	closed  bool   // Close is past waiting: the mapping goes
	final   ring.Status
	done    chan struct{} // closed when Close has released everything

	stop     chan struct{}
	stopped  *sync.WaitGroup // its own allocation: the heartbeat and the cleanup must not point into w
	cleanup  runtime.Cleanup
	stats    counters
	restarts uint64 // writer opens of this ring before ours (generation-1)
}

// Open creates ring name, or reopens it for writing. See the package
// documentation for what happens to an existing segment.
func Open(name string, opts Options) (*Writer, error) {
	if err := ring.CheckName(name); err != nil {
		return nil, err
	}
	if opts.MetaBytes < 0 {
		return nil, fmt.Errorf("open ring %q: %w: metadata size %d is negative", name, ring.ErrInvalidFrame, opts.MetaBytes)
	}
	g, err := opts.geometry()
	if err != nil {
		return nil, fmt.Errorf("open ring %q: %w", name, err)
	}
	if opts.Perm == 0 {
		opts.Perm = 0o600
	}
	if opts.Perm.Perm()&0o002 != 0 {
		return nil, fmt.Errorf("open ring %q: %w: permission %04o is world-writable", name, ring.ErrUnsafeFile, uint32(opts.Perm.Perm()))
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = defaultHeartbeat
	}
	w := &Writer{name: name, path: ring.Path(opts.Dir, name), opts: opts, geo: g,
		done: make(chan struct{}), stop: make(chan struct{}), stopped: new(sync.WaitGroup)}
	w.cond.L = &w.mu
	if err := w.open(); err != nil {
		return nil, err
	}
	w.seg.Heartbeat().Store(ring.Now())
	w.stopped.Add(1)
	go heartbeat(w.seg, w.opts.Heartbeat, w.stop, w.stopped)
	// A Writer dropped without Close still gets its heartbeat stopped, its
	// lock released and its mapping unmapped when the GC finds it. The
	// cleanup holds only the resources, never w.
	w.cleanup = runtime.AddCleanup(w, func(r leaked) {
		close(r.stop)
		r.stopped.Wait()
		r.file.Close()
		r.mapping.Unmap()
	}, leaked{w.stop, w.stopped, w.file, w.mapping})
	return w, nil
}

// leaked is what the cleanup of a Writer that was never closed releases.
type leaked struct {
	stop    chan struct{}
	stopped *sync.WaitGroup
	file    *shm.File
	mapping *shm.Mapping
}

// open attaches to an existing segment or builds a new one, holding the
// write lock on the result.
func (w *Writer) open() error {
	for attempt := 0; ; attempt++ {
		f, err := shm.Open(w.path, true)
		if errors.Is(err, fs.ErrNotExist) {
			err = w.create(nil, false)
			if errors.Is(err, fs.ErrExist) && attempt < 3 {
				continue // another writer created it first: go and meet it
			}
			return err
		}
		if err != nil {
			return w.wrapOpen(err)
		}
		if err := w.reuse(f); err != nil {
			f.Close()
			return err
		}
		return nil
	}
}

func (w *Writer) wrapOpen(err error) error {
	return fmt.Errorf("open ring %q: %w", w.name, err)
}

// reuse takes over an existing segment f: same geometry in place,
// otherwise a replacement.
func (w *Writer) reuse(f *shm.File) error {
	if _, err := f.CheckSafe(shm.Trust{GroupWrite: w.opts.Perm&0o020 != 0}); err != nil {
		return w.wrapOpen(err)
	}
	if err := f.LockWrite(); err != nil {
		if errors.Is(err, shm.ErrLocked) {
			return &ring.BusyError{Ring: w.name, PID: peekPID(f)}
		}
		return w.wrapOpen(err)
	}
	info, err := f.Stat()
	if err != nil {
		return w.wrapOpen(err)
	}
	var old *layout.Segment
	var m *shm.Mapping
	if info.Size >= layout.SuperblockSize && info.Size <= layout.MaxFileSize {
		m, err = shm.Map(f, int(info.Size), true)
		if err != nil {
			return w.wrapOpen(err)
		}
		err = shm.Guard(func() error {
			var aerr error
			old, aerr = layout.Attach(m.Bytes())
			return aerr
		})
		if err != nil {
			old = nil
		}
	}
	var carry *ring.Status
	if old != nil {
		shm.Guard(func() error { st := old.Status(); carry = &st; return nil })
	}
	if carry != nil && old.Geometry() == w.geo && info.Size == w.geo.Size() && carry.Generation < absurd {
		w.file, w.mapping, w.seg = f, m, old
		return w.takeOver()
	}
	// Another geometry, or not a valid ring, or a generation that would
	// wrap: replace it, carrying the frame numbering over when the old
	// superblock could be read (values that would wrap are dropped).
	if carry != nil {
		if carry.Head >= absurd {
			carry.Head = 0
		}
		if carry.Generation >= absurd {
			carry.Generation = 0
		}
	}
	if err := w.create(carry, true); err != nil {
		m.Unmap()
		return err
	}
	// Drop the lock on the old, now unlinked, object, then wake its readers:
	// they find the writer gone and the name on a new inode, and re-map.
	f.Close()
	if old != nil {
		shm.Guard(func() error {
			old.Notify().Add(1)
			shm.FutexWake(old.Notify(), math.MaxInt32)
			return nil
		})
	}
	m.Unmap()
	return nil
}

// peekPID reads the writer pid from a superblock without trusting it.
func peekPID(f *shm.File) int {
	var b [layout.SuperblockSize]byte
	n, _ := f.OSFile().ReadAt(b[:], 0)
	if n < 68 {
		return 0
	}
	return int(uint32(b[64]) | uint32(b[65])<<8 | uint32(b[66])<<16 | uint32(b[67])<<24)
}

// create builds a new segment under a temporary name and moves it into
// place: link (fails if the name exists) for a fresh ring, rename over the
// old object when replace is set. Readers never see a half-formatted
// superblock. carry, if set, continues the old ring's numbering.
func (w *Writer) create(carry *ring.Status, replace bool) error {
	tmp := fmt.Sprintf("%s/.framering-tmp.%d.%s", dirOf(w.opts.Dir), os.Getpid(), w.name)
	os.Remove(tmp) // left by a crash of a process that had our pid
	size := w.geo.Size()
	f, err := shm.Create(tmp, size, w.opts.Perm)
	if err != nil {
		if errors.Is(err, ring.ErrNoSpace) {
			return &NoSpaceError{Ring: w.name, Dir: dirOf(w.opts.Dir), Need: size}
		}
		return w.wrapOpen(err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.LockWrite(); err != nil {
		return fail(w.wrapOpen(err))
	}
	m, err := shm.Map(f, int(size), true)
	if err != nil {
		return fail(w.wrapOpen(err))
	}
	seg, err := layout.Format(m.Bytes(), w.geo, time.Now().UnixNano())
	if err != nil {
		m.Unmap()
		return fail(fmt.Errorf("create ring %q: %w", w.name, err))
	}
	if carry != nil {
		seg.Head().Store(carry.Head)
		seg.Generation().Store(carry.Generation)
		seg.FramesTotal().Store(carry.FramesTotal)
		seg.BytesTotal().Store(carry.BytesTotal)
	}
	// Readers may look before takeOver: show them a live writer already.
	seg.WriterPID().Store(uint32(os.Getpid()))
	seg.Heartbeat().Store(ring.Now())
	if !replace {
		err = shm.Link(tmp, w.path)
		os.Remove(tmp)
	} else {
		err = os.Rename(tmp, w.path)
	}
	if err != nil {
		m.Unmap()
		f.Close()
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("create ring %q: move the new segment into place: %w", w.name, err)
	}
	w.file, w.mapping, w.seg = f, m, seg
	return w.takeOver()
}

func dirOf(d string) string {
	if d == "" {
		return ring.DefaultDir
	}
	return d
}

// takeOver makes the segment ours (D3): repair what a crashed writer
// left, continue the numbering from a plausible head, announce a new
// generation.
func (w *Writer) takeOver() error {
	seg := w.seg
	slots := uint64(w.geo.Slots)
	err := shm.Guard(func() error {
		var frames []uint64
		for i := uint64(0); i < slots; i++ {
			h := seg.Slot(i)
			s := h.SeqWord().Load()
			if s&1 == 1 {
				// Half-written by a writer that died: mark empty, make even.
				h.FrameNo = 0
				h.PayloadLen = 0
				w.seq.End(h.SeqWord(), s)
				continue
			}
			if n := h.FrameNo; n != 0 && n < absurd && n&(slots-1) == i {
				frames = append(frames, n)
			}
		}
		head := seg.Head().Load()
		var inSlot uint64
		if head < absurd {
			inSlot = seg.Slot(head).FrameNo
		}
		head = plausibleHead(head, frames, slots, inSlot)
		seg.Head().Store(head)
		w.next = head + 1
		w.gen = seg.Generation().Add(1)
		w.restarts = w.gen - 1
		seg.WriterPID().Store(uint32(os.Getpid()))
		seg.WriterStart().Store(time.Now().UnixNano())
		seg.Heartbeat().Store(ring.Now())
		// Wake readers waiting for a writer to come back.
		seg.Notify().Add(1)
		shm.FutexWake(seg.Notify(), math.MaxInt32)
		return nil
	})
	if err != nil {
		return fmt.Errorf("open ring %q: %w (%v)", w.name, ring.ErrTruncated, err)
	}
	return nil
}

// absurd is the smallest Head, Generation or frame number a writer does
// not believe (D3, D4): counting frames never gets there, and head+1 or
// head+Slots could wrap.
const absurd = 1 << 63

// plausibleHead returns the head a writer taking over continues from
// (D3). frames are the non-zero frame numbers below 2^63 of the even
// slots, each in its own slot; inSlot is the frame number in the slot of
// head. A frame number more than a ring above every other one is a stray
// write; a head that is 2^63 or more, more than a ring above the newest
// plausible frame, or whose own slot holds an older frame, is not backed
// by the slots: the newest plausible frame replaces it. Otherwise the head
// rises to a frame committed within a ring above it (a writer can die
// between a slot's commit and the head store).
func plausibleHead(head uint64, frames []uint64, slots, inSlot uint64) uint64 {
	slices.Sort(frames)
	for len(frames) > 1 && frames[len(frames)-1] > frames[len(frames)-2]+slots {
		frames = frames[:len(frames)-1]
	}
	var best uint64
	if len(frames) > 0 {
		best = frames[len(frames)-1]
	}
	switch {
	case head >= absurd, best != 0 && head > best+slots, inSlot != 0 && inSlot < head:
		return best
	case best > head && best <= head+slots:
		return best
	}
	return head
}

// heartbeat stamps seg's heartbeat every period until stop closes. It
// holds no reference to the Writer, so a Writer dropped without Close can
// be collected (and cleaned up).
func heartbeat(seg *layout.Segment, period time.Duration, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			// Guarded: someone may truncate the object under us.
			shm.Guard(func() error {
				seg.Heartbeat().Store(ring.Now())
				return nil
			})
		}
	}
}

// Name returns the ring name.
func (w *Writer) Name() string { return w.name }

// Path returns the segment's file.
func (w *Writer) Path() string { return w.path }

// Geometry returns the ring's geometry.
func (w *Writer) Geometry() ring.Geometry { return w.geo }

// Generation returns this writer's generation: 1 for the ring's first
// writer, +1 for each writer open after it.
func (w *Writer) Generation() uint64 { return w.gen }

// Close stops the writer and releases the segment; readers keep it and
// see the writer gone. It is safe to call more than once and from any
// goroutine.
//
// A loan that is out when Close is called is waited for: Close returns
// after another goroutine commits or aborts it (bbolt's rule for open
// transactions). Calling Close from the goroutine that holds the loan
// therefore never returns: end the loan first. Reserve and Publish fail
// with [ring.ErrClosed] from the moment Close is called.
//
// After Close, slices of the mapping ([Loan.Data]) no longer point to the
// ring: the range stays reserved and inaccessible for a while (see the
// package documentation, Caveats), so a stale access faults.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closing = true
	for w.loan.ticket != 0 {
		w.cond.Wait()
	}
	shm.Guard(func() error { w.final = w.seg.Status(); return nil })
	w.closed = true
	w.mu.Unlock()
	defer close(w.done)

	w.cleanup.Stop()
	close(w.stop)
	w.stopped.Wait()
	// Drop the lock first, then wake readers: they find it gone at once.
	// The mapping outlives the descriptor.
	ferr := w.file.Close()
	shm.Guard(func() error {
		w.seg.Notify().Add(1)
		shm.FutexWake(w.seg.Notify(), math.MaxInt32)
		return nil
	})
	return errors.Join(ferr, w.mapping.Unmap())
}

// Remove closes the writer and unlinks the segment. Readers that have it
// mapped keep their mapping and see the writer gone.
func (w *Writer) Remove() error {
	err := w.Close()
	if rerr := os.Remove(w.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("remove ring %q: %w", w.name, rerr))
	}
	return err
}

// Remove unlinks ring name in dir ("" means /dev/shm) whether or not a
// writer is running; a running writer keeps its now nameless segment.
func Remove(dir, name string) error {
	if err := ring.CheckName(name); err != nil {
		return err
	}
	if err := os.Remove(ring.Path(dir, name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove ring %q: %w", name, ring.ErrNotFound)
		}
		return fmt.Errorf("remove ring %q: %w", name, err)
	}
	return nil
}

// counters are the writer's in-process statistics, read by metrics.
type counters struct {
	frames, bytes atomic.Uint64
	mirrorErrors  atomic.Uint64
	aborts        atomic.Uint64
	publish       hist.Histogram // ns
	lastMirrorErr atomic.Pointer[error]
}

// Stats is a snapshot of a writer's counters.
type Stats struct {
	Frames       uint64 // frames this writer committed
	Bytes        uint64 // payload bytes this writer committed
	Aborts       uint64 // loans rolled back
	MirrorErrors uint64 // frames the Mirror refused
	Restarts     uint64 // writer opens of this ring before this one
	// Publish is the distribution of publish durations: the whole Publish
	// call (copy included), or the Commit call for a loan.
	Publish ring.Latency
	// Ring is the ring's superblock; after Close, as it was at Close.
	Ring ring.Status
}

// Stats returns the writer's counters. Safe from any goroutine, also after
// Close, when Ring holds the superblock as it was at Close.
func (w *Writer) Stats() Stats {
	st := Stats{
		Frames:       w.stats.frames.Load(),
		Bytes:        w.stats.bytes.Load(),
		Aborts:       w.stats.aborts.Load(),
		MirrorErrors: w.stats.mirrorErrors.Load(),
		Restarts:     w.restarts,
		Publish:      w.stats.publish.Snapshot().Latency(),
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		st.Ring = w.final
		return st
	}
	shm.Guard(func() error { st.Ring = w.seg.Status(); return nil })
	return st
}

// MirrorErr returns the last error the Mirror returned, or nil.
func (w *Writer) MirrorErr() error {
	if p := w.stats.lastMirrorErr.Load(); p != nil {
		return *p
	}
	return nil
}

// NoSpaceError says the shared-memory file system could not hold a new
// ring. It matches [ring.ErrNoSpace].
type NoSpaceError struct {
	Ring string
	Dir  string // the shared-memory directory
	Need int64  // bytes the ring needs
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("create ring %q: %v: it needs %d bytes in %s", e.Ring, ring.ErrNoSpace, e.Need, e.Dir)
}

// Is reports whether target is [ring.ErrNoSpace].
func (e *NoSpaceError) Is(target error) bool { return target == ring.ErrNoSpace }
