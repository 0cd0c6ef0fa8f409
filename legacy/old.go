package legacy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// OldWriter follows the old C++ sender exactly: at start-up it unlinks the
// object and creates a new one of exactly 24 + w*h*c bytes; each frame is
// frame_valid = 0, header, memcpy of the pixels, full barrier,
// frame_valid = 1, with nothing to stop a reader from copying meanwhile.
// It exists as a baseline for tests and benchmarks.
type OldWriter struct {
	path    string
	w, h, c int
	file    *shm.File
	mapping *shm.Mapping
	mem     []byte
	valid   *atomic.Int32
	fence   atomic.Int32
}

// NewOldWriter does the old sender's start-up: shm_unlink, then
// shm_open(O_CREAT|O_RDWR), ftruncate to 24 + w*h*c, mmap. The sender asks
// for mode 0666, which the usual umask 022 turns into 0644: that is the
// mode used here.
func NewOldWriter(dir, name string, w, h, c int) (*OldWriter, error) {
	if dir == "" {
		dir = ring.DefaultDir
	}
	if err := ring.CheckName(name); err != nil {
		return nil, fmt.Errorf("legacy slot: %w", err)
	}
	if w <= 0 || h <= 0 || c <= 0 || w > MaxDim || h > MaxDim || c > MaxChannels {
		return nil, fmt.Errorf("legacy slot %q: %w: %dx%dx%d", name, ring.ErrInvalidFrame, w, h, c)
	}
	o := &OldWriter{path: filepath.Join(dir, name), w: w, h: h, c: c}
	return o, o.Restart()
}

// Restart repeats the start-up: unlink the object and create a new one
// (a new inode; readers still mapping the old one see it frozen).
func (o *OldWriter) Restart() error {
	if o.mapping != nil {
		o.mapping.Unmap()
		o.file.Close()
		o.mapping, o.file, o.mem, o.valid = nil, nil, nil, nil
	}
	if err := os.Remove(o.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("old writer: unlink: %w", err)
	}
	size := int64(HeaderSize + o.w*o.h*o.c)
	f, err := shm.Create(o.path, size, 0o644) // fallocate: same size as ftruncate, fails cleanly on a full tmpfs
	if err != nil {
		return fmt.Errorf("old writer: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("old writer: %w", err)
	}
	m, err := shm.Map(f, int(size), true)
	if err != nil {
		f.Close()
		return fmt.Errorf("old writer: %w", err)
	}
	v, err := validWord(m.Bytes())
	if err != nil {
		m.Unmap()
		f.Close()
		return fmt.Errorf("old writer: %w", err)
	}
	o.file, o.mapping, o.mem, o.valid = f, m, m.Bytes(), v
	return nil
}

// Write writes one frame of w*h*c bytes in the old sequence, with the
// given timestamp (wall clock ms; 0 means now).
func (o *OldWriter) Write(pixels []byte, tsMs int64) {
	if tsMs == 0 {
		tsMs = time.Now().UnixMilli()
	}
	o.valid.Store(0)
	putGeometry(o.mem, int32(o.w), int32(o.h), int32(o.c), tsMs)
	copy(o.mem[HeaderSize:], pixels[:o.w*o.h*o.c])
	o.fence.Add(1) // __sync_synchronize
	o.valid.Store(1)
}

// Close unmaps the object and leaves it in place, as the old sender's exit
// does.
func (o *OldWriter) Close() error {
	if o.mapping == nil {
		return nil
	}
	err := errors.Join(o.mapping.Unmap(), o.file.Close())
	o.mapping, o.file, o.mem, o.valid = nil, nil, nil, nil
	return err
}

// Remove closes the writer and unlinks the object.
func (o *OldWriter) Remove() error {
	err := o.Close()
	if rerr := os.Remove(o.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// OldReader follows the old Python receiver exactly: it maps exactly
// 24 + w*h*c bytes read-only for a size it was told in advance, and each
// read checks the header and, if frame_valid == 1, copies the pixels and
// returns them, with no second look; otherwise it sleeps 1 ms and retries.
// It returns torn frames: it exists as a baseline.
type OldReader struct {
	w, h, c int
	file    *shm.File
	mapping *shm.Mapping
	mem     []byte
	valid   *atomic.Int32
}

// NewOldReader opens and maps the object as the old receiver does.
func NewOldReader(dir, name string, w, h, c int) (*OldReader, error) {
	if dir == "" {
		dir = ring.DefaultDir
	}
	if err := ring.CheckName(name); err != nil {
		return nil, fmt.Errorf("legacy slot: %w", err)
	}
	f, err := shm.Open(filepath.Join(dir, name), false)
	if err != nil {
		return nil, fmt.Errorf("old reader: %w", err)
	}
	in, err := f.Stat()
	size := int64(HeaderSize + w*h*c)
	if err == nil && in.Size < size {
		err = fmt.Errorf("%w: object has %d bytes, %dx%dx%d needs %d", ErrCorrupt, in.Size, w, h, c, size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("old reader: %w", err)
	}
	m, err := shm.Map(f, int(size), false)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("old reader: %w", err)
	}
	v, err := validWord(m.Bytes())
	if err != nil {
		m.Unmap()
		f.Close()
		return nil, fmt.Errorf("old reader: %w", err)
	}
	return &OldReader{w: w, h: h, c: c, file: f, mapping: m, mem: m.Bytes(), valid: v}, nil
}

// TryRead is one pass of the old read sequence: read the header; if the
// size differs from the expected one, fail with ErrMismatch; if
// frame_valid == 1, copy the pixels into dst (w*h*c bytes) and return the
// timestamp and true.
func (o *OldReader) TryRead(dst []byte) (tsMs int64, ok bool, err error) {
	err = shm.Guard(func() error {
		h := ParseHeader(o.mem)
		if int(h.Width) != o.w || int(h.Height) != o.h || int(h.Channels) != o.c {
			return fmt.Errorf("old reader: %w: header %dx%dx%d, expected %dx%dx%d", ErrMismatch, h.Width, h.Height, h.Channels, o.w, o.h, o.c)
		}
		if o.valid.Load() == 1 {
			copy(dst[:o.w*o.h*o.c], o.mem[HeaderSize:])
			tsMs, ok = h.TimestampMs, true
		}
		return nil
	})
	return tsMs, ok, err
}

// Read repeats TryRead with 1 ms sleeps until it returns a frame, or ctx
// ends.
func (o *OldReader) Read(ctx context.Context, dst []byte) (int64, error) {
	for {
		ts, ok, err := o.TryRead(dst)
		if err != nil || ok {
			return ts, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// Close unmaps the object.
func (o *OldReader) Close() error {
	if o.mapping == nil {
		return nil
	}
	err := errors.Join(o.mapping.Unmap(), o.file.Close())
	o.mapping, o.file, o.mem, o.valid = nil, nil, nil, nil
	return err
}
