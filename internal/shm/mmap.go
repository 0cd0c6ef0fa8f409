package shm

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
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

// QuarantineLen is how many retired mappings [Mapping.Unmap] keeps
// reserved, per process.
const QuarantineLen = 16

// quarantine holds the address ranges of the last QuarantineLen retired
// mappings, each replaced by an inaccessible (PROT_NONE) reservation.
var quarantine struct {
	sync.Mutex
	q []mmap.MMap
}

// Unmap releases the mapping. It is safe to call more than once.
//
// The address range is not given back at once: Unmap replaces the mapping
// by a reservation of the same range that cannot be read or written
// (PROT_NONE, no memory behind it), so a slice of the mapping that someone
// still holds faults on access (a fault [Guard] turns into [ErrFault])
// instead of reading memory that a later mapping reuses. The last
// [QuarantineLen] retired ranges of the process stay reserved; each Unmap
// beyond that unmaps the oldest, whose range the kernel may then reuse.
// A reservation costs a VMA and address space, no memory.
func (m *Mapping) Unmap() error {
	if m == nil || m.m == nil {
		return nil
	}
	b := m.m
	m.m = nil
	// MAP_FIXED replaces the shared mapping atomically: the range is never
	// unmapped in between, so no other mapping can land there.
	if _, err := unix.MmapPtr(-1, 0, unsafe.Pointer(&b[0]), uintptr(len(b)), unix.PROT_NONE,
		unix.MAP_FIXED|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE); err != nil {
		if uerr := b.Unmap(); uerr != nil {
			return fmt.Errorf("munmap: %w", uerr)
		}
		return nil
	}
	quarantine.Lock()
	quarantine.q = append(quarantine.q, b)
	var old mmap.MMap
	if len(quarantine.q) > QuarantineLen {
		old = quarantine.q[0]
		quarantine.q = append(quarantine.q[:0], quarantine.q[1:]...)
	}
	quarantine.Unlock()
	if old != nil {
		// munmap of the range mmap-go mapped: the reservation goes.
		if err := old.Unmap(); err != nil {
			return fmt.Errorf("munmap: %w", err)
		}
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

// Uint32At returns the 4 bytes of b at off as an atomic word (a futex word
// shared with another process). It fails unless the word lies inside b and
// is 4-byte aligned. Valid while the memory behind b lives.
func Uint32At(b []byte, off int) (*atomic.Uint32, error) {
	if off < 0 || off > len(b)-4 {
		return nil, fmt.Errorf("atomic word at %d: outside %d bytes", off, len(b))
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%4 != 0 {
		return nil, fmt.Errorf("atomic word at %#x: not 4-byte aligned", uintptr(p))
	}
	return (*atomic.Uint32)(p), nil
}

// Uint64At returns the 8 bytes of b at off as an atomic word. It fails
// unless the word lies inside b and is 8-byte aligned. Valid while the
// memory behind b lives.
func Uint64At(b []byte, off int) (*atomic.Uint64, error) {
	if off < 0 || off > len(b)-8 {
		return nil, fmt.Errorf("atomic word at %d: outside %d bytes", off, len(b))
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%8 != 0 {
		return nil, fmt.Errorf("atomic word at %#x: not 8-byte aligned", uintptr(p))
	}
	return (*atomic.Uint64)(p), nil
}
