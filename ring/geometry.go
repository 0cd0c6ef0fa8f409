package ring

import "fmt"

// The format's limits and alignments. internal/layout exports the same
// values (TestLimitsAgree checks them); they live here too, unexported,
// because Geometry.Check and Geometry.Size need them and ring imports
// nothing of the module.
const (
	pageSize       = 4096
	superblockSize = pageSize
	slotHeaderSize = 128
	minSlots       = 2
	maxSlots       = 1 << 16
	maxPayloadCap  = 1 << 34 // 16 GiB per slot
	maxMetaCap     = 1 << 20
	maxFileSize    = 1 << 40
)

// Geometry is the shape of a ring: what a writer asks for and what a
// superblock records.
type Geometry struct {
	Slots      int // slot count, a power of two in [2, 65536]
	PayloadCap int // payload bytes per slot, in [1, 16 GiB]
	MetaCap    int // metadata bytes per slot, in [0, 1 MiB]
}

// Check reports whether g is within the format's limits. Errors wrap
// [ErrInvalidFrame].
func (g Geometry) Check() error {
	switch {
	case g.Slots < minSlots || g.Slots > maxSlots || g.Slots&(g.Slots-1) != 0:
		return fmt.Errorf("%w: slot count %d is not a power of two in [%d, %d]", ErrInvalidFrame, g.Slots, minSlots, maxSlots)
	case g.PayloadCap < 1 || g.PayloadCap > maxPayloadCap:
		return fmt.Errorf("%w: slot payload size %d is outside [1, %d]", ErrInvalidFrame, g.PayloadCap, int64(maxPayloadCap))
	case g.MetaCap < 0 || g.MetaCap > maxMetaCap:
		return fmt.Errorf("%w: metadata size %d is outside [0, %d]", ErrInvalidFrame, g.MetaCap, maxMetaCap)
	case g.Size() > maxFileSize:
		return fmt.Errorf("%w: ring of %d bytes exceeds %d", ErrInvalidFrame, g.Size(), int64(maxFileSize))
	}
	return nil
}

// Size is how many bytes of shared memory a ring of geometry g takes: a
// page of superblock, then per slot a 128-byte header and the metadata
// area rounded up to a page, and the payload rounded up to a page.
// Meaningful only for a geometry that passes [Geometry.Check].
func (g Geometry) Size() int64 {
	slot := alignUp(slotHeaderSize+int64(g.MetaCap), pageSize) + alignUp(int64(g.PayloadCap), pageSize)
	return superblockSize + int64(g.Slots)*slot
}

func (g Geometry) String() string {
	return fmt.Sprintf("%d slots x %d bytes (+%d metadata)", g.Slots, g.PayloadCap, g.MetaCap)
}

func alignUp(n, a int64) int64 { return (n + a - 1) &^ (a - 1) }
