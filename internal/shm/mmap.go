package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/edsrzf/mmap-go"
)

// Mapping is a MAP_SHARED view of the first n bytes of a [File].
type Mapping struct {
	m mmap.MMap
}

// Map maps the first size bytes of f, read-write or read-only. The file
// must be at least size bytes long; a file that shrinks later raises
// SIGBUS on access, which [Guard] turns into [ErrFault].
func Map(f *File, size int, writable bool) (*Mapping, error) {
	prot := mmap.RDONLY
	if writable {
		prot = mmap.RDWR
	}
	m, err := mmap.MapRegion(f.OSFile(), size, prot, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("mmap %s (%d bytes): %w", f.Name(), size, err)
	}
	return &Mapping{m: m}, nil
}

// Bytes returns the mapped memory. It aliases shared memory and is valid
// until [Mapping.Unmap]; other processes may change it at any time.
func (m *Mapping) Bytes() []byte { return m.m }

// Unmap releases the mapping. It is safe to call more than once.
func (m *Mapping) Unmap() error {
	if m == nil || m.m == nil {
		return nil
	}
	err := m.m.Unmap()
	m.m = nil
	if err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return nil
}

// Int32At returns the 4 bytes of b at off as an atomic word, for flags
// shared with programs in other languages (the legacy slot's frame_valid).
// It fails unless the word lies inside b and is 4-byte aligned.
//
// Valid while the memory behind b lives: the caller keeps the mapping until
// it stops using the pointer.
func Int32At(b []byte, off int) (*atomic.Int32, error) {
	if off < 0 || off > len(b)-4 {
		return nil, fmt.Errorf("atomic word at %d: outside %d bytes", off, len(b))
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%4 != 0 {
		return nil, fmt.Errorf("atomic word at %#x: not 4-byte aligned", uintptr(p))
	}
	return (*atomic.Int32)(p), nil
}
