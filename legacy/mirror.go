package legacy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/memcopy"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/framering/framering/seqlock"
)

// MirrorOptions configure a mirror [Writer]. Every zero value is a sensible
// default.
type MirrorOptions struct {
	// Perm is the permission of a new object. Zero means 0644: old readers
	// open the object O_RDONLY, so read access for everyone is enough. The
	// old sender asked for 0666 (subject to the umask), which lets any
	// local user overwrite frames; give 0666 here only if some old reader
	// really opens it read-write.
	Perm fs.FileMode
	// MaxRate caps how many frames per second are mirrored; frames that come
	// sooner than 1/MaxRate after the last mirrored one are skipped (and
	// counted). Zero means no cap. Old readers poll every 1 ms, so rates
	// above 1000 Hz only make them miss frames and tear more.
	MaxRate float64
	// Width, Height and Channels, when all set, size the object at
	// NewMirror and prefill its header with frame_valid = 0, so an old
	// reader that starts before the first frame finds the size it expects
	// instead of giving up. Channels is the legacy channel count (1 or 3).
	Width, Height, Channels int
	// MaxFrameBytes sizes the object for frames of up to this many pixel
	// bytes (after conversion to BGR8) when Width/Height/Channels are not
	// set: use the ring's MaxFrameBytes. Zero (and no Width...) means the
	// object is created at the first frame, sized for it. A later frame
	// that does not fit grows the object in place (same inode).
	MaxFrameBytes int
	// Recreate unlinks an existing object and creates a new one, as the old
	// sender does. The default reuses it (same inode), so old readers that
	// still have it mapped keep working across a restart of the mirror.
	Recreate bool
}

// MirrorStats counts what a mirror writer did.
type MirrorStats struct {
	Mirrored    uint64 // frames written into the legacy object
	RateSkipped uint64 // frames skipped by MaxRate
	Refused     uint64 // frames refused (unsupported format, bad frame)
	Grown       uint64 // times the object grew in place for a larger frame
}

// Writer mirrors ring frames into a legacy object: the mirror writer. It
// implements [producer.Mirror]; hand it to producer.Options.Mirror, or call
// MirrorFrame yourself.
//
// The object is created once and keeps its inode while the Writer lives:
// old readers open it once and keep their mapping. Close leaves it in
// place with frame_valid = 0; Remove unlinks it.
type Writer struct {
	dir, name, path string
	opts            MirrorOptions
	interval        int64 // ns between mirrored frames; 0: no cap

	mu      sync.Mutex // guards everything below against Close
	file    *shm.File
	mapping *shm.Mapping
	mem     []byte
	valid   *atomic.Int32
	fence   atomic.Int32
	last    int64 // monotonic ns of the last mirrored frame
	closed  bool

	st struct {
		mirrored, skipped, refused, grown atomic.Uint64
	}
}

var _ producer.Mirror = (*Writer)(nil)

// NewMirror returns a mirror writer for object name in dir ("" means
// /dev/shm; name "" means [DefaultName]). With a known size (see
// [MirrorOptions]) the object is created or taken over now; otherwise at
// the first frame.
func NewMirror(dir, name string, opts MirrorOptions) (*Writer, error) {
	dir, name, err := objectName(dir, name)
	if err != nil {
		return nil, err
	}
	if opts.Perm == 0 {
		opts.Perm = 0o644
	}
	if opts.MaxRate < 0 {
		return nil, fmt.Errorf("legacy slot %q: %w: max rate %g Hz is negative", name, ring.ErrInvalidFrame, opts.MaxRate)
	}
	m := &Writer{dir: dir, name: name, path: filepath.Join(dir, name), opts: opts}
	if opts.MaxRate > 0 {
		m.interval = int64(float64(time.Second) / opts.MaxRate)
	}
	size := int64(0)
	switch {
	case opts.Width > 0 || opts.Height > 0 || opts.Channels > 0:
		h := Header{Width: int32(opts.Width), Height: int32(opts.Height), Channels: int32(opts.Channels)}
		if opts.Width > MaxDim || opts.Height > MaxDim || (opts.Channels != 1 && opts.Channels != 3) || opts.Width <= 0 || opts.Height <= 0 {
			return nil, fmt.Errorf("legacy slot %q: %w: size %dx%dx%d is not in [1, %d] x [1, %d] x 1 or 3 channels", name, ring.ErrInvalidFrame, opts.Width, opts.Height, opts.Channels, MaxDim, MaxDim)
		}
		size = HeaderSize + h.FrameBytes()
	case opts.MaxFrameBytes > 0:
		size = HeaderSize + int64(opts.MaxFrameBytes)
	case opts.MaxFrameBytes < 0:
		return nil, fmt.Errorf("legacy slot %q: max frame bytes %d is negative", name, opts.MaxFrameBytes)
	}
	if size > maxObjectSize {
		return nil, fmt.Errorf("legacy slot %q: %w: %d bytes is more than %d", name, ring.ErrFrameTooLarge, size, int64(maxObjectSize))
	}
	if size > 0 {
		if err := m.attach(size); err != nil {
			return nil, err
		}
		if opts.Width > 0 {
			err := shm.Guard(func() error {
				if ParseHeader(m.mem).Valid == 1 {
					return nil // a live frame from before: leave it
				}
				m.valid.Store(0)
				putGeometry(m.mem, int32(opts.Width), int32(opts.Height), int32(opts.Channels), 0)
				return nil
			})
			if err != nil {
				m.Close()
				return nil, m.faulted(err)
			}
		}
	}
	return m, nil
}

// Path returns the object's file.
func (m *Writer) Path() string { return m.path }

// attach creates or takes over the object with at least size bytes and
// maps it. Called with size > 0 and m.mu held (or before m is shared).
func (m *Writer) attach(size int64) error {
	if m.opts.Recreate {
		if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("legacy slot %q: remove old object: %w", m.name, err)
		}
	}
	f, err := shm.Create(m.path, size, m.opts.Perm)
	if errors.Is(err, fs.ErrExist) {
		f, err = m.takeOver(size)
	}
	if err != nil {
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	if err := f.LockWrite(); err != nil {
		f.Close()
		if errors.Is(err, shm.ErrLocked) {
			return fmt.Errorf("legacy slot %q: %w: another framering mirror writes %s", m.name, ring.ErrBusy, m.path)
		}
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	in, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	mp, err := shm.Map(f, int(in.Size), true)
	if err != nil {
		f.Close()
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	v, err := validWord(mp.Bytes())
	if err != nil {
		mp.Unmap()
		f.Close()
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	m.file, m.mapping, m.mem, m.valid = f, mp, mp.Bytes(), v
	return nil
}

// takeOver opens an existing object for writing: a regular file of ours,
// grown to size if smaller, with our mode.
func (m *Writer) takeOver(size int64) (*shm.File, error) {
	f, err := shm.Open(m.path, true)
	if err != nil {
		return nil, err
	}
	in, err := f.Stat()
	if err == nil {
		switch {
		case in.Mode&fs.ModeIrregular != 0:
			err = fmt.Errorf("%w: %s is not a regular file", ring.ErrUnsafeFile, m.path)
		case in.UID != uint32(os.Geteuid()):
			err = fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d)", ring.ErrUnsafeFile, m.path, in.UID, os.Geteuid())
		case in.Mode.Perm() != m.opts.Perm.Perm():
			// An old sender's 0666 object: tighten it to ours.
			err = f.OSFile().Chmod(m.opts.Perm.Perm())
		}
	}
	if err == nil && in.Size < size {
		err = f.Truncate(size) // grow in place: same inode, old mappings stay valid
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// grow makes the object at least size bytes, in place.
func (m *Writer) grow(size int64) error {
	if size > maxObjectSize {
		return fmt.Errorf("legacy slot %q: %w: %d bytes is more than %d", m.name, ring.ErrFrameTooLarge, size, int64(maxObjectSize))
	}
	if m.file == nil {
		return m.attach(size)
	}
	if err := m.file.Truncate(size); err != nil {
		return fmt.Errorf("legacy slot %q: grow to %d bytes: %w", m.name, size, err)
	}
	mp, err := shm.Map(m.file, int(size), true)
	if err != nil {
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	v, err := validWord(mp.Bytes())
	if err != nil {
		mp.Unmap()
		return fmt.Errorf("legacy slot %q: %w", m.name, err)
	}
	m.mapping.Unmap()
	m.mapping, m.mem, m.valid = mp, mp.Bytes(), v
	m.st.grown.Add(1)
	return nil
}

func (m *Writer) faulted(err error) error {
	return fmt.Errorf("legacy slot %q: %w: %s shrank under the mirror (%v)", m.name, ErrTruncated, m.path, err)
}

// legacyShape returns the legacy channel count for a frame format: 1 for
// Gray8, 3 for the BGR/RGB family, or an error for the rest.
func legacyShape(f ring.PixelFormat) (int, error) {
	switch f {
	case ring.Gray8:
		return 1, nil
	case ring.BGR8, ring.RGB8, ring.BGRA8, ring.RGBA8:
		return 3, nil
	}
	return 0, fmt.Errorf("%w: %v", ErrUnsupportedFormat, f)
}

// MirrorFrame writes f into the legacy object in the documented sequence:
// frame_valid = 0, header, pixels, full barrier, frame_valid = 1. BGR8 and
// Gray8 frames are copied as they are (row by row when the stride has
// padding); RGB8, BGRA8 and RGBA8 are converted to BGR8; other formats are
// refused with [ErrUnsupportedFormat]. A frame within 1/MaxRate of the
// last mirrored one is skipped and returns nil.
func (m *Writer) MirrorFrame(f *ring.Frame) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("legacy slot %q: mirror: %w", m.name, ErrClosed)
	}
	now := ring.Now()
	if m.interval > 0 && m.last != 0 && now-m.last < m.interval {
		m.st.skipped.Add(1)
		return nil
	}
	outC, err := legacyShape(f.Format)
	if err != nil {
		m.st.refused.Add(1)
		return fmt.Errorf("legacy slot %q: frame %d: %w", m.name, f.Number, err)
	}
	inC := f.Format.Channels()
	w, h := f.Width, f.Height
	stride := f.Stride
	if stride == 0 {
		stride = w * inC
	}
	if w <= 0 || h <= 0 || w > MaxDim || h > MaxDim || stride < w*inC || int64(len(f.Data)) < int64(stride)*int64(h-1)+int64(w*inC) {
		m.st.refused.Add(1)
		return fmt.Errorf("legacy slot %q: frame %d: %w: %dx%d %v stride %d with %d bytes of pixels", m.name, f.Number, ring.ErrInvalidFrame, w, h, f.Format, stride, len(f.Data))
	}
	need := HeaderSize + int64(w)*int64(h)*int64(outC)
	if int64(len(m.mem)) < need {
		if err := m.grow(need); err != nil {
			m.st.refused.Add(1)
			return err
		}
	}
	capture := f.Capture
	if capture == 0 {
		capture = f.Published
	}
	ts := time.Now().UnixMilli()
	if capture > 0 && capture <= now {
		ts -= (now - capture) / int64(time.Millisecond)
	}
	err = shm.Guard(func() error {
		m.write(f, w, h, inC, outC, stride, ts)
		return nil
	})
	if err != nil {
		return m.faulted(err)
	}
	m.last = now
	m.st.mirrored.Add(1)
	return nil
}

// write runs the legacy write sequence. The pixels are plain stores; the
// valid flag is atomic.
func (m *Writer) write(f *ring.Frame, w, h, inC, outC, stride int, ts int64) {
	// valid = 0, then the header and pixel stores below, which cannot
	// become visible before it (seqlock.Writer.Clear).
	seqlock.Writer{}.Clear(m.valid)
	putGeometry(m.mem, int32(w), int32(h), int32(outC), ts)
	dst := m.mem[HeaderSize:]
	src := f.Data
	row := w * outC
	same := f.Format == ring.BGR8 || f.Format == ring.Gray8
	switch {
	case same && stride == row:
		memcopy.Copy(dst[:row*h], src[:row*h]) // BGR8 or Gray8, packed
	case same:
		for y := 0; y < h; y++ { // padded rows: pack them
			copy(dst[y*row:(y+1)*row], src[y*stride:y*stride+row])
		}
	default:
		swap := f.Format == ring.RGB8 || f.Format == ring.RGBA8
		for y := 0; y < h; y++ {
			convertRow(dst[y*row:(y+1)*row], src[y*stride:y*stride+w*inC], inC, swap)
		}
	}
	m.fence.Add(1) // full barrier: a locked RMW (amd64), LDADDAL/DMB (arm64)
	m.valid.Store(1)
}

// convertRow writes one row of BGR8 from 3- or 4-channel pixels, swapping
// R and B when swap is set and dropping alpha.
func convertRow(dst, src []byte, inC int, swap bool) {
	n := len(dst) / 3
	for i := 0; i < n; i++ {
		s := src[i*inC : i*inC+3]
		d := dst[i*3 : i*3+3]
		if swap {
			d[0], d[1], d[2] = s[2], s[1], s[0]
		} else {
			d[0], d[1], d[2] = s[0], s[1], s[2]
		}
	}
}

// Stats returns the mirror's counters. Safe from any goroutine.
func (m *Writer) Stats() MirrorStats {
	return MirrorStats{
		Mirrored:    m.st.mirrored.Load(),
		RateSkipped: m.st.skipped.Load(),
		Refused:     m.st.refused.Load(),
		Grown:       m.st.grown.Load(),
	}
}

// Close sets frame_valid to 0 (old readers then wait instead of showing the
// last frame forever), unmaps the object and leaves it in place. It is safe
// to call more than once and from any goroutine.
func (m *Writer) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.valid != nil {
		shm.Guard(func() error { m.valid.Store(0); return nil })
	}
	m.valid, m.mem = nil, nil
	return errors.Join(m.mapping.Unmap(), m.file.Close())
}

// Remove closes the writer and unlinks the object. Old readers that have
// it mapped keep their (now frozen) mapping.
func (m *Writer) Remove() error {
	err := m.Close()
	if rerr := os.Remove(m.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("legacy slot %q: remove: %w", m.name, rerr))
	}
	return err
}
