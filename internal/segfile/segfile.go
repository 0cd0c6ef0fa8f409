// Package segfile opens ring segments read-only: the one place that turns a
// ring name into a checked, validated mapping, for readers (package
// consumer), inspection (framering ls, stat) and the metrics exporter, and
// that tells whether the ring's writer is alive.
//
// A File is not safe for concurrent use; Close it when done.
package segfile

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/framering/framering/seqlock"
)

// File is a ring object mapped read-only.
type File struct {
	Name, Path string
	Info       shm.Info // fstat at open
	File       *shm.File
	Mapping    *shm.Mapping
	Seg        *layout.Segment
	seq        seqlock.Reader
}

// Open opens ring name in dir ("" means /dev/shm) read-only, checks the
// object (regular file, not a symlink, owner and mode as trust allows, size
// in range), maps it and validates the superblock. Errors wrap
// ring.ErrNotFound, ring.ErrUnsafeFile, ring.ErrTruncated,
// ring.ErrIncompatible or ring.ErrCorrupt (or fs.ErrPermission).
func Open(dir, name string, trust shm.Trust) (*File, error) {
	if err := ring.CheckName(name); err != nil {
		return nil, err
	}
	path := ring.Path(dir, name)
	f, err := shm.Open(path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open ring %q: %w", name, ring.ErrNotFound)
		}
		return nil, fmt.Errorf("open ring %q: %w", name, err)
	}
	info, err := f.CheckSafe(trust)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open ring %q: %w", name, err)
	}
	if info.Size < layout.SuperblockSize || info.Size > layout.MaxFileSize {
		f.Close()
		return nil, fmt.Errorf("open ring %q: %w: %s is %d bytes", name, ring.ErrTruncated, path, info.Size)
	}
	m, err := shm.Map(f, int(info.Size), false)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open ring %q: %w", name, err)
	}
	var seg *layout.Segment
	err = shm.Guard(func() error {
		var aerr error
		seg, aerr = layout.Attach(m.Bytes())
		return aerr
	})
	if err != nil {
		m.Unmap()
		f.Close()
		if errors.Is(err, shm.ErrFault) {
			err = fmt.Errorf("%w (%v)", ring.ErrTruncated, err)
		}
		return nil, fmt.Errorf("open ring %q: %w", name, err)
	}
	return &File{Name: name, Path: path, Info: info, File: f, Mapping: m, Seg: seg}, nil
}

// Close unmaps the segment and closes the file. Safe to call more than once.
func (f *File) Close() error {
	if f == nil {
		return nil
	}
	return errors.Join(f.Mapping.Unmap(), f.File.Close())
}

// Replaced reports whether the ring's name now points at another object
// than the one mapped (a writer replaced it with another geometry).
func (f *File) Replaced() bool {
	in, err := shm.StatPath(f.Path)
	return err == nil && in.Inode != f.Info.Inode
}

// Writer states.
const (
	Alive    = "alive"
	Starting = "starting" // holds the lock, has not taken the ring over yet
	Hung     = "hung"     // holds the lock, heartbeat too old
	Gone     = "gone"     // nobody holds the lock
	Unknown  = "unknown"  // the probe failed
)

// Liveness is what [File.Writer] found.
type Liveness struct {
	State        string        // Alive, Starting, Hung, Gone or Unknown
	Alive        bool          // Alive or Starting
	PID          int           // from the superblock
	Generation   uint64        // from the superblock, loaded before the lock probe
	HeartbeatAge time.Duration // 0 when there is no heartbeat yet
	Why          string        // for Hung, Gone and Unknown: a sentence for an error message
}

// Writer probes the writer: the OFD lock (F_OFD_GETLK, takes no lock) and
// the heartbeat, which may be at most hungAfter old.
//
// Generation is loaded before the lock is probed: if the probe finds the
// lock free, any writer that takes the file over later bumps Generation
// past the value reported (a reader that waits for a writer compares it,
// PROTOCOL.md §10).
func (f *File) Writer(hungAfter time.Duration) Liveness {
	var l Liveness
	var hb int64
	if err := shm.Guard(func() error {
		l.PID = int(f.Seg.WriterPID().Load())
		l.Generation = f.Seg.Generation().Load()
		hb = f.Seg.Heartbeat().Load()
		return nil
	}); err != nil {
		return Liveness{State: Unknown, Why: fmt.Sprintf("the superblock cannot be read: %v", err)}
	}
	if hb > 0 {
		l.HeartbeatAge = time.Duration(max(ring.Now()-hb, 0))
	}
	locked, err := f.File.WriteLocked()
	switch {
	case err != nil:
		l.State, l.Why = Unknown, fmt.Sprintf("cannot probe the writer lock: %v", err)
	case !locked:
		l.State, l.Why = Gone, fmt.Sprintf("writer pid %d exited or closed the ring", l.PID)
	case l.Generation == 0:
		l.State, l.Alive = Starting, true
	case l.HeartbeatAge > hungAfter:
		l.State = Hung
		l.Why = fmt.Sprintf("writer pid %d is alive but its heartbeat is %v old (hung or stopped)", l.PID, l.HeartbeatAge.Round(time.Millisecond))
	default:
		l.State, l.Alive = Alive, true
	}
	return l
}

// ReadSlot copies the header of the slot holding frame n under its
// seqlock. stable is false if every attempt overlapped a write (then hdr is
// the last, possibly torn, copy) or the segment faulted. hdr.Seq holds the
// sequence value the copy was taken under.
func (f *File) ReadSlot(n uint64) (hdr layout.SlotHeader, stable bool) {
	shm.Guard(func() error {
		h := f.Seg.Slot(n)
		seq := h.SeqWord()
		for try := 0; try < 100; try++ {
			s1, even := f.seq.Begin(seq)
			hdr = *h // racy copy of shared memory, validated below
			hdr.Seq = s1
			if even && f.seq.Validate(seq, s1) {
				stable = true
				return nil
			}
		}
		return nil
	})
	return hdr, stable
}
