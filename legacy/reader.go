package legacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/framering/framering/seqlock"
)

// ReaderOptions configure a [Reader]. Every zero value is a sensible
// default.
type ReaderOptions struct {
	// Poll is the sleep between two looks at the slot when nothing new is
	// there. Zero means 1 ms, as the old receivers do; negative means spin
	// (lowest latency, one busy core).
	Poll time.Duration
	// NoCompare turns off the compare pass (see [Reader.Read]): reads get
	// cheaper by one pass over the frame and miss more tears.
	NoCompare bool
	// Chunk is how many bytes the copy moves between two checks of
	// frame_valid. Zero means 64 KiB.
	Chunk int
	// MaxFrameBytes caps the frame a header may name
	// (width*height*channels): a larger one fails the read with
	// [ErrTooLarge] instead of making Read allocate it (a header can name
	// up to 16 GiB), and no more than HeaderSize+MaxFrameBytes of the
	// object is mapped. Zero means [DefaultMaxFrameBytes].
	MaxFrameBytes int
	// AllowOtherOwner accepts an object owned by another user (an old
	// sender running as another user). Zero refuses it, as ring readers do.
	AllowOtherOwner bool
	// AllowGroupWritable accepts an object its group may write. Zero
	// refuses it.
	AllowGroupWritable bool
	// AllowWorldWritable accepts an object anyone may write, such as one
	// an old sender created 0666 under a umask of 0: any local user can
	// then put frames in it. Zero refuses it. Every header is validated
	// either way.
	AllowWorldWritable bool
}

// DefaultMaxFrameBytes is the default [ReaderOptions.MaxFrameBytes], 64
// MiB: twice a 4K BGRA frame (3840x2160x4, 33 MB) and 2.6 times a 4K BGR
// one, so every camera frame the old recipe carries fits, while a garbage
// or hostile header cannot make a reader allocate gigabytes. An 8K BGR
// frame (99.5 MB) needs a larger value.
const DefaultMaxFrameBytes = 64 << 20

// Frame is a frame read from a legacy slot.
type Frame struct {
	Width, Height, Channels int
	TimestampMs             int64  // the sender's wall clock, Unix ms
	Pixels                  []byte // the caller's buffer, or a new one
}

// ReaderStats counts what a [Reader] did.
type ReaderStats struct {
	Frames  uint64 // frames returned
	Torn    uint64 // copies thrown away because the sender wrote during them
	Reopens uint64 // times the object was replaced (new inode) or grew and was re-mapped
	Polls   uint64 // looks at the slot that found nothing new
}

// Reader is framering's safe reader of a legacy slot written by an old
// sender. It returns each distinct frame once, never a frame the sender was
// writing during the copy (within the limits stated at [Reader.Read]), and
// follows the sender through its unlink+recreate at start-up.
type Reader struct {
	name, path string
	opts       ReaderOptions

	mu       sync.Mutex
	closed   atomic.Bool
	file     *shm.File
	mapping  *shm.Mapping
	mem      []byte // the first min(size, HeaderSize+MaxFrameBytes) bytes of the object
	size     int64  // the object's size when it was mapped
	valid    *atomic.Int32
	inode    uint64
	fence    seqlock.Reader // the read fence's private word
	lastStat int64

	last    Header // header of the last frame returned
	haveAny bool   // last is set
	sawZero bool   // frame_valid was 0 since the last frame returned

	st struct{ frames, torn, reopens, polls atomic.Uint64 }

	afterCopy func() // test hook: runs between a copy and its re-check
}

// NewReader returns a reader of object name in dir ("" means /dev/shm,
// name "" means [DefaultName]). The object need not exist yet: Read waits
// for it.
func NewReader(dir, name string, opts ReaderOptions) (*Reader, error) {
	dir, name, err := objectName(dir, name)
	if err != nil {
		return nil, err
	}
	if opts.Poll == 0 {
		opts.Poll = time.Millisecond
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 64 << 10
	}
	if opts.MaxFrameBytes <= 0 {
		opts.MaxFrameBytes = DefaultMaxFrameBytes
	}
	return &Reader{name: name, path: filepath.Join(dir, name), opts: opts}, nil
}

// Path returns the object's file.
func (r *Reader) Path() string { return r.path }

// Stats returns the reader's counters. Safe from any goroutine.
func (r *Reader) Stats() ReaderStats {
	return ReaderStats{Frames: r.st.frames.Load(), Torn: r.st.torn.Load(), Reopens: r.st.reopens.Load(), Polls: r.st.polls.Load()}
}

// Close unmaps the object. Safe to call more than once, from any
// goroutine; a blocked Read returns ErrClosed within one poll.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.detach()
}

func (r *Reader) detach() error {
	err := errors.Join(r.mapping.Unmap(), r.file.Close())
	r.file, r.mapping, r.mem, r.valid = nil, nil, nil, nil
	return err
}

// attach (re)opens the object at the path and maps all of it read-only.
// ok is false when there is nothing to map yet (no object, or one that the
// sender has created but not yet sized).
func (r *Reader) attach() (ok bool, err error) {
	f, err := shm.Open(r.path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("legacy slot %q: %w", r.name, err)
	}
	// Refused as ring readers refuse segments (a symbolic link or a
	// non-regular file already by shm.Open, without blocking), unless the
	// caller accepts more. Every header is validated before use anyway.
	in, err := f.CheckSafe(shm.Trust{GroupWrite: r.opts.AllowGroupWritable, OtherOwner: r.opts.AllowOtherOwner,
		WorldWrite: r.opts.AllowWorldWritable})
	if err != nil {
		f.Close()
		return false, fmt.Errorf("legacy slot %q: %w", r.name, err)
	}
	if in.Size > maxObjectSize {
		f.Close()
		return false, fmt.Errorf("legacy slot %q: %w: %s is %d bytes, more than %d", r.name, ErrCorrupt, r.path, in.Size, int64(maxObjectSize))
	}
	if in.Size < HeaderSize {
		f.Close() // the sender is between open and ftruncate: wait
		r.detach()
		r.inode = in.Inode
		return false, nil
	}
	mp, err := shm.Map(f, int(min(in.Size, HeaderSize+int64(r.opts.MaxFrameBytes))), false)
	if err != nil {
		f.Close()
		return false, fmt.Errorf("legacy slot %q: %w", r.name, err)
	}
	v, err := validWord(mp.Bytes())
	if err != nil {
		mp.Unmap()
		f.Close()
		return false, fmt.Errorf("legacy slot %q: %w", r.name, err)
	}
	if r.inode != in.Inode {
		r.haveAny, r.sawZero = false, false // a new object: its first frame is new
	}
	r.detach()
	if r.inode != 0 {
		r.st.reopens.Add(1)
	}
	r.file, r.mapping, r.mem, r.valid, r.inode, r.size = f, mp, mp.Bytes(), v, in.Inode, in.Size
	return true, nil
}

// check looks at the path: a new inode (the sender's unlink+recreate) or
// a size other than the mapped one means re-open. Called when idle, at
// most once per millisecond.
func (r *Reader) check() error {
	now := ring.Now()
	if r.file != nil && now-r.lastStat < int64(time.Millisecond) {
		return nil
	}
	r.lastStat = now
	in, err := shm.StatPath(r.path)
	switch {
	case err != nil && r.file == nil:
		return nil // nothing there yet
	case err != nil:
		return nil // unlinked: keep the old mapping until a new object appears
	case r.file == nil || in.Inode != r.inode || in.Size != r.size:
		_, err := r.attach()
		return err
	}
	return nil
}

// Read waits for a frame other than the last one returned, copies it into
// dst (grown if too small) and returns it. It returns each distinct frame
// once: a frame is new when its header or timestamp differs from the last
// one, or when frame_valid went to 0 since (the sender rewrote the slot
// within the same millisecond).
//
// # Tear detection
//
// A copy is accepted only if all of these hold: frame_valid was 1 before
// the copy and at every chunk boundary during it (ReaderOptions.Chunk);
// after the copy and a read fence, frame_valid is 1 and the header
// (width, height, channels, timestamp) is the one read before; and, unless
// NoCompare is set, a second pass finds the object still byte-equal to the
// copy, after which frame_valid and the header are checked once more.
//
// What it cannot catch: a sender that sets frame_valid to 0, rewrites the
// whole frame with the same width, height, channels and timestamp (the
// same millisecond) and sets it back to 1, all between two of the reader's
// checks (for example while the reader is descheduled in the middle of a
// chunk), with content that differs in the part already copied but is
// back to the copied bytes when the compare pass looks. With a sender that
// writes front to back, as memcpy does, the compare pass sees the changed
// earlier part, so the frame is only accepted if the mixed copy equals what
// the object holds; without the compare pass such a tear is accepted.
// Nothing in the old layout identifies a frame beyond its millisecond
// timestamp, so no reader can do better without help from the sender.
func (r *Reader) Read(ctx context.Context, dst []byte) (Frame, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	torns := 0 // consecutive torn attempts
	for {
		if r.closed.Load() {
			return Frame{}, fmt.Errorf("legacy slot %q: %w", r.name, ErrClosed)
		}
		if err := r.check(); err != nil {
			return Frame{}, err
		}
		if r.file != nil {
			var f Frame
			var st outcome
			err := shm.Guard(func() error {
				var aerr error
				f, st, aerr = r.attempt(dst)
				return aerr
			})
			if errors.Is(err, shm.ErrFault) {
				r.detach()
				r.inode = 0
				err = fmt.Errorf("legacy slot %q: %w: %s shrank under the reader (%v)", r.name, ErrTruncated, r.path, err)
			}
			if err != nil {
				return Frame{}, err
			}
			switch st {
			case got:
				r.st.frames.Add(1)
				return f, nil
			case torn:
				r.st.torn.Add(1)
				if err := ctx.Err(); err != nil {
					return Frame{}, err
				}
				if torns++; torns < tornBound {
					continue // the sender is writing: look again at once
				}
				// A sender that rewrites the slot during every copy (or a
				// hostile one): wait a poll, as when nothing is new, rather
				// than spin.
				torns = 0
			}
		}
		r.st.polls.Add(1)
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		if r.opts.Poll > 0 {
			t := time.NewTimer(r.opts.Poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return Frame{}, ctx.Err()
			case <-t.C:
			}
		}
	}
}

// tornBound is how many torn copies in a row Read makes before it waits
// one poll.
const tornBound = 64

type outcome int

const (
	none outcome = iota // nothing new
	got
	torn
)

// attempt is one look at the slot, inside a fault guard.
func (r *Reader) attempt(dst []byte) (Frame, outcome, error) {
	mem := r.mem
	if r.valid.Load() != 1 {
		r.sawZero = true
		return Frame{}, none, nil
	}
	var hb [HeaderSize]byte
	copy(hb[:], mem)
	h := ParseHeader(hb[:])
	err := h.Check(r.size)
	if n := h.FrameBytes(); err == nil && n > int64(r.opts.MaxFrameBytes) {
		err = fmt.Errorf("%w: header says %dx%dx%d, %d bytes, more than ReaderOptions.MaxFrameBytes (%d)",
			ErrTooLarge, h.Width, h.Height, h.Channels, n, r.opts.MaxFrameBytes)
	}
	if err != nil {
		// The header may have been read while the sender rewrote it.
		if !r.stable(h) {
			return Frame{}, torn, nil
		}
		if in, serr := shm.StatPath(r.path); serr == nil && (in.Inode != r.inode || in.Size != r.size) {
			return Frame{}, torn, nil // replaced meanwhile: the caller re-opens
		}
		return Frame{}, none, fmt.Errorf("legacy slot %q: %s: %w", r.name, r.path, err)
	}
	if r.haveAny && !r.sawZero && h.same(r.last) {
		return Frame{}, none, nil // validated above: an object that shrank is still caught
	}
	n := int(h.FrameBytes())
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	src := mem[HeaderSize : HeaderSize+n]
	for off := 0; off < n; off += r.opts.Chunk {
		end := min(off+r.opts.Chunk, n)
		copy(dst[off:end], src[off:end])
		if r.valid.Load() != 1 {
			r.sawZero = true
			return Frame{}, torn, nil
		}
	}
	if r.afterCopy != nil {
		r.afterCopy()
	}
	if !r.stable(h) {
		return Frame{}, torn, nil
	}
	if !r.opts.NoCompare {
		if !bytes.Equal(dst, src) || !r.stable(h) {
			r.sawZero = true
			return Frame{}, torn, nil
		}
	}
	r.last, r.haveAny, r.sawZero = h, true, false
	return Frame{Width: int(h.Width), Height: int(h.Height), Channels: int(h.Channels), TimestampMs: h.TimestampMs, Pixels: dst}, got, nil
}

// stable reports whether, after everything read so far, frame_valid is 1
// and the header still is h.
func (r *Reader) stable(h Header) bool {
	// Every load so far completes before frame_valid is loaded again.
	if r.fence.Recheck(r.valid) != 1 {
		r.sawZero = true
		return false
	}
	var hb [HeaderSize]byte
	copy(hb[:], r.mem)
	return ParseHeader(hb[:]).same(h)
}
