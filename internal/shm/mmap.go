package shm

import (
	"fmt"

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
