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
	"github.com/framering/framering/internal/segfile"
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
	restarts uint64   // writer opens of this ring before ours (generation-1)
	id       shm.Info // fstat of the segment's file at open: which file Remove may unlink
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
	w.id, _ = w.file.Stat()
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

// openAttempts bounds how often open starts over because the file under
// the ring's name changed under it (another writer replaced it, or won the
// race to create it).
const openAttempts = 8

// errRace says that the file under the ring's name changed during open:
// start over (D1).
var errRace = errors.New("the ring's file changed during open")

// testHooks let tests stage the races of D1 (nil outside tests).
var testHooks struct {
	beforeLock  func() // between opening the existing file and locking it
	beforeName  func() // before a new file gets the ring's name (fresh ring)
	afterRename func() // between renaming a replacement into place and re-checking
	noTmpfile   bool   // use the named fallback instead of O_TMPFILE
}

// open attaches to an existing segment or builds a new one, holding the
// write lock on the result (D1).
func (w *Writer) open() error {
	// Temporary files of writers that died while creating a ring (D1.4).
	segfile.RemoveStaleTemps(w.opts.Dir)
	for attempt := 0; attempt < openAttempts; attempt++ {
		f, err := shm.Open(w.path, true)
		if errors.Is(err, fs.ErrNotExist) {
			err = w.create(nil, false)
		} else if err == nil {
			err = w.reuse(f)
		} else {
			err = w.wrapOpen(err)
		}
		if !errors.Is(err, errRace) {
			return err
		}
	}
	return fmt.Errorf("open ring %q: %w: another program keeps replacing %s", w.name, ring.ErrBusy, w.path)
}

func (w *Writer) wrapOpen(err error) error {
	return fmt.Errorf("open ring %q: %w", w.name, err)
}

// reuse takes over an existing segment f, which it owns: same geometry in
// place, otherwise a replacement. errRace means: start over.
func (w *Writer) reuse(f *shm.File) (err error) {
	adopted := false
	defer func() {
		if !adopted {
			f.Close()
		}
	}()
	if _, err := f.CheckSafe(shm.Trust{GroupWrite: w.opts.Perm&0o020 != 0}); err != nil {
		return w.wrapOpen(err)
	}
	if h := testHooks.beforeLock; h != nil {
		h()
	}
	if err := f.LockWrite(); err != nil {
		if errors.Is(err, shm.ErrLocked) {
			return &ring.BusyError{Ring: w.name, PID: peekPID(f)}
		}
		return w.wrapOpen(err)
	}
	// Locked. Is f still the file at the path? A writer that replaced it
	// between our open and our lock holds the new one: without this check
	// both would run, on two files (split brain).
	if same, err := f.Names(w.path); err != nil {
		return w.wrapOpen(err)
	} else if !same {
		return errRace
	}
	info, err := f.Stat()
	if err != nil {
		return w.wrapOpen(err)
	}
	sb := make([]byte, layout.SuperblockSize)
	if n, _ := f.OSFile().ReadAt(sb, 0); n < len(sb) {
		sb = nil // shorter than a superblock
	}
	carry, readable := layout.ReadNumbering(sb)
	g, perr := layout.ParseSuperblock(sb, info.Size)
	if perr == nil && g == w.geo && info.Size == g.Size() && carry.Generation < absurd {
		m, err := shm.Map(f, int(info.Size), true)
		if err != nil {
			return w.wrapOpen(err)
		}
		var seg *layout.Segment
		if err := shm.Guard(func() error {
			var aerr error
			seg, aerr = layout.Attach(m.Bytes())
			return aerr
		}); err != nil {
			m.Unmap()
			return w.wrapOpen(err)
		}
		adopted = true
		w.file, w.mapping, w.seg = f, m, seg
		return w.takeOver()
	}
	// Another geometry, not a valid ring, or a generation that would wrap:
	// replace it, carrying the numbering over if the old superblock is
	// readable (D4: even if its file is truncated or its slots damaged).
	var numbering *layout.Numbering
	var oldSuper *shm.Mapping
	if readable {
		numbering = &carry
		// Keep the old superblock mapped, to wake the old file's readers
		// once it is replaced.
		oldSuper, _ = shm.Map(f, layout.SuperblockSize, true)
	}
	if err := w.create(numbering, true); err != nil {
		oldSuper.Unmap()
		return err
	}
	// Drop the lock on the old, now unlinked, file, then wake its readers:
	// they find the writer gone and the name on a new file, and re-map.
	f.Close()
	if oldSuper != nil {
		shm.Guard(func() error {
			n := layout.NotifyWord(oldSuper.Bytes())
			n.Add(1)
			shm.FutexWake(n, math.MaxInt32)
			return nil
		})
		oldSuper.Unmap()
	}
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

// create builds a new segment with no name, locked before it has one, and
// names it (D1 step 3): linkat to the ring's path for a fresh ring (fails
// if the name exists: errRace), linkat to a temporary name and rename over
// the old file when replace is set, then re-check that the path names it.
// Readers never see a half-formatted superblock, and a named file is
// always locked by its creator until it is complete. carry, if set,
// continues the old ring's numbering (D4). errRace means: start over.
func (w *Writer) create(carry *layout.Numbering, replace bool) error {
	dir := dirOf(w.opts.Dir)
	size := w.geo.Size()
	f, tmp, err := w.newFile(dir)
	if err != nil {
		return w.wrapOpen(err)
	}
	var m *shm.Mapping
	fail := func(err error) error {
		m.Unmap()
		f.Close()
		if tmp != "" {
			os.Remove(tmp)
		}
		return err
	}
	if err := f.LockWrite(); err != nil {
		return fail(w.wrapOpen(err))
	}
	if err := f.Allocate(size); err != nil {
		if errors.Is(err, ring.ErrNoSpace) {
			return fail(&NoSpaceError{Ring: w.name, Dir: dir, Need: size})
		}
		return fail(w.wrapOpen(err))
	}
	if m, err = shm.Map(f, int(size), true); err != nil {
		return fail(w.wrapOpen(err))
	}
	seg, err := layout.Format(m.Bytes(), w.geo, time.Now().UnixNano())
	if err != nil {
		return fail(fmt.Errorf("create ring %q: %w", w.name, err))
	}
	if carry != nil {
		// A Head or Generation that would wrap is not carried (D3, D4).
		if carry.Head < absurd {
			seg.Head().Store(carry.Head)
		}
		if carry.Generation < absurd {
			seg.Generation().Store(carry.Generation)
		}
		seg.FramesTotal().Store(carry.FramesTotal)
		seg.BytesTotal().Store(carry.BytesTotal)
	}
	// Readers may look before takeOver: show them a live writer already.
	seg.WriterPID().Store(uint32(os.Getpid()))
	seg.Heartbeat().Store(ring.Now())
	if !replace {
		if h := testHooks.beforeName; h != nil {
			h()
		}
		if tmp == "" {
			err = f.LinkTo(w.path)
		} else {
			err = os.Link(tmp, w.path)
			os.Remove(tmp)
			tmp = ""
		}
		if errors.Is(err, fs.ErrExist) {
			return fail(errRace) // another writer created it first: go and meet it
		}
	} else {
		if tmp == "" {
			tmp = segfile.TempName(dir, w.name)
			err = f.LinkTo(tmp)
		}
		if err == nil {
			err = os.Rename(tmp, w.path)
		}
		if err == nil {
			tmp = ""
			if h := testHooks.afterRename; h != nil {
				h()
			}
			var same bool
			if same, err = f.Names(w.path); err == nil && !same {
				// Another writer replaced it again meanwhile: ours has no
				// name any more.
				return fail(errRace)
			}
		}
	}
	if err != nil {
		return fail(fmt.Errorf("create ring %q: move the new segment into place: %w", w.name, err))
	}
	w.file, w.mapping, w.seg = f, m, seg
	return w.takeOver()
}

// newFile makes the new segment's file: unnamed (O_TMPFILE), or where
// that is not supported a temporary name (returned as tmp), created
// exclusively; the caller locks it at once.
func (w *Writer) newFile(dir string) (f *shm.File, tmp string, err error) {
	if !testHooks.noTmpfile {
		f, err := shm.CreateUnnamed(dir, w.opts.Perm)
		if !errors.Is(err, shm.ErrNoTmpfile) {
			return f, "", err
		}
	}
	tmp = segfile.TempName(dir, w.name)
	f, err = shm.CreateExcl(tmp, w.opts.Perm)
	return f, tmp, err
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
// not believe (D3, D4).
const absurd = layout.AbsurdNumber

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
//
// It unlinks the path only while it still names this writer's file
// (checked under the writer's lock, before Close releases it): a ring
// that another writer has replaced since is left alone.
func (w *Writer) Remove() error {
	var rerr error
	w.mu.Lock()
	if !w.closed {
		var same bool
		if same, rerr = w.file.Names(w.path); same {
			rerr = os.Remove(w.path)
		}
	} else if at, err := shm.StatPath(w.path); err == nil && at.Dev == w.id.Dev && at.Inode == w.id.Inode {
		rerr = os.Remove(w.path) // closed before: the path still names our file
	}
	w.mu.Unlock()
	err := w.Close()
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
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
