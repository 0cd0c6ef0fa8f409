package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Segment is a validated view of a mapped ring. It does no I/O: producer
// and consumer map the file and hand the bytes in.
//
// The memory is shared with other processes. Geometry fields are copied
// out and validated once, in [Attach]; every other field is read with
// atomic loads or under a slot's seqlock and validated before use.
type Segment struct {
	mem  []byte
	geo  Geometry
	sb   *Superblock
	base unsafe.Pointer // &mem[0]
	// Copies of the validated static fields, so a corrupting writer cannot
	// change offsets under us.
	stride, payOff int64
	mask           uint64
}

// Format writes a fresh superblock for g into mem, which must be zeroed and
// exactly g.FileSize() bytes, and returns the segment. Generation starts at
// 0; the writer's Open bumps it.
func Format(mem []byte, g Geometry, createdNs int64) (*Segment, error) {
	sb, err := EncodeSuperblock(g, createdNs)
	if err != nil {
		return nil, err
	}
	if int64(len(mem)) != g.FileSize() {
		return nil, fmt.Errorf("format ring: mapping is %d bytes, geometry needs %d", len(mem), g.FileSize())
	}
	copy(mem, sb)
	return Attach(mem)
}

// EncodeSuperblock returns the superblock page of a fresh ring of geometry
// g: static fields and checksum set, live words zero.
func EncodeSuperblock(g Geometry, createdNs int64) ([]byte, error) {
	if err := g.Check(); err != nil {
		return nil, err
	}
	b := make([]byte, SuperblockSize)
	copy(b, Magic)
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], SuperblockSize)
	le.PutUint32(b[16:], uint32(g.Slots))
	le.PutUint32(b[20:], uint32(g.MetaCap))
	le.PutUint64(b[24:], uint64(g.SlotStride()))
	le.PutUint64(b[32:], uint64(g.PayloadOffset()))
	le.PutUint64(b[40:], uint64(g.PayloadCap))
	le.PutUint64(b[48:], uint64(g.FileSize()))
	le.PutUint64(b[88:], uint64(createdNs))
	le.PutUint32(b[60:], checksum(b))
	return b, nil
}

// Attach validates the superblock at the start of mem against len(mem) and
// returns the segment. mem must be 8-byte aligned (a mapping is
// page-aligned). Errors wrap [ErrIncompatible], [ErrCorrupt] or
// [ErrTruncated].
func Attach(mem []byte) (*Segment, error) {
	g, err := ParseSuperblock(mem, int64(len(mem)))
	if err != nil {
		return nil, err
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, fmt.Errorf("attach ring: mapping is not 8-byte aligned")
	}
	return &Segment{
		mem:    mem,
		geo:    g,
		sb:     (*Superblock)(unsafe.Pointer(&mem[0])),
		base:   unsafe.Pointer(&mem[0]),
		stride: g.SlotStride(),
		payOff: g.PayloadOffset(),
		mask:   uint64(g.Slots - 1),
	}, nil
}

// ParseSuperblock validates the static part of a superblock read from b, a
// copy or mapping of at least its first page, for an object of fileSize
// bytes, and returns the geometry. It never panics, whatever b holds.
func ParseSuperblock(b []byte, fileSize int64) (Geometry, error) {
	if len(b) < SuperblockSize || fileSize < SuperblockSize {
		n := min(int64(len(b)), fileSize)
		return Geometry{}, fmt.Errorf("%w: %d bytes, a superblock needs %d", ErrTruncated, n, SuperblockSize)
	}
	if string(b[:8]) != Magic {
		return Geometry{}, &LayoutError{Field: "magic", Got: fmt.Sprintf("%q", b[:8]), Want: fmt.Sprintf("%q", Magic)}
	}
	if v := le.Uint32(b[8:]); v != Version {
		return Geometry{}, &LayoutError{Field: "version", Got: fmt.Sprint(v), Want: fmt.Sprint(Version)}
	}
	if sum, want := le.Uint32(b[60:]), checksum(b); sum != want {
		return Geometry{}, fmt.Errorf("%w: superblock checksum %#08x, computed %#08x", ErrCorrupt, sum, want)
	}
	if fl := le.Uint32(b[56:]); fl != 0 {
		return Geometry{}, &LayoutError{Field: "flags", Got: fmt.Sprintf("%#x", fl), Want: "0 (no v1 flags are defined)"}
	}
	if s := le.Uint32(b[12:]); s != SuperblockSize {
		return Geometry{}, &LayoutError{Field: "superblock size", Got: fmt.Sprint(s), Want: fmt.Sprint(SuperblockSize)}
	}
	payCap := le.Uint64(b[40:])
	if payCap > MaxPayloadCap {
		return Geometry{}, fmt.Errorf("%w: payload capacity %d exceeds %d", ErrCorrupt, payCap, int64(MaxPayloadCap))
	}
	g := Geometry{
		Slots:      int(le.Uint32(b[16:])),
		MetaCap:    int(le.Uint32(b[20:])),
		PayloadCap: int(payCap),
	}
	if err := g.Check(); err != nil {
		return Geometry{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"slot stride", le.Uint64(b[24:]), uint64(g.SlotStride())},
		{"payload offset", le.Uint64(b[32:]), uint64(g.PayloadOffset())},
		{"file size", le.Uint64(b[48:]), uint64(g.FileSize())},
	} {
		if f.got != f.want {
			return Geometry{}, fmt.Errorf("%w: %s is %d, geometry %v gives %d", ErrCorrupt, f.name, f.got, g, f.want)
		}
	}
	if fileSize < g.FileSize() {
		return Geometry{}, fmt.Errorf("%w: object is %d bytes, superblock says %d", ErrTruncated, fileSize, g.FileSize())
	}
	return g, nil
}

// Geometry returns the validated geometry.
func (s *Segment) Geometry() Geometry { return s.geo }

// Size returns the segment's size in bytes.
func (s *Segment) Size() int64 { return s.geo.FileSize() }

// Super returns the superblock. Its live words must be accessed through the
// Segment's methods (atomics); static fields were validated by Attach.
func (s *Segment) Super() *Superblock { return s.sb }

// Slot returns the header of the slot that holds frame n (n mod Slots).
func (s *Segment) Slot(n uint64) *SlotHeader {
	off := SuperblockSize + int64(n&s.mask)*s.stride
	// In bounds: off + stride <= FileSize <= len(mem), checked by Attach.
	return (*SlotHeader)(unsafe.Add(s.base, off))
}

// Meta returns the metadata area of frame n's slot, MetaCap bytes. It
// aliases shared memory and is valid while the mapping lives.
func (s *Segment) Meta(n uint64) []byte {
	off := SuperblockSize + int64(n&s.mask)*s.stride + SlotHeaderSize
	return s.mem[off : off+int64(s.geo.MetaCap) : off+int64(s.geo.MetaCap)]
}

// Payload returns the payload area of frame n's slot, PayloadCap bytes,
// page-aligned. It aliases shared memory and is valid while the mapping
// lives.
func (s *Segment) Payload(n uint64) []byte {
	off := SuperblockSize + int64(n&s.mask)*s.stride + s.payOff
	return s.mem[off : off+int64(s.geo.PayloadCap) : off+int64(s.geo.PayloadCap)]
}

// Live words of the superblock.

func (s *Segment) Head() *atomic.Uint64        { return u64(&s.sb.Head) }
func (s *Segment) Notify() *atomic.Uint32      { return u32(&s.sb.Notify) }
func (s *Segment) Heartbeat() *atomic.Int64    { return i64(&s.sb.Heartbeat) }
func (s *Segment) Generation() *atomic.Uint64  { return u64(&s.sb.Generation) }
func (s *Segment) FramesTotal() *atomic.Uint64 { return u64(&s.sb.FramesTotal) }
func (s *Segment) BytesTotal() *atomic.Uint64  { return u64(&s.sb.BytesTotal) }
func (s *Segment) WriterPID() *atomic.Uint32   { return u32(&s.sb.WriterPID) }
func (s *Segment) WriterStart() *atomic.Int64  { return i64(&s.sb.WriterStart) }

// Seq returns the seqlock word of a slot.
func (h *SlotHeader) SeqWord() *atomic.Uint64 { return u64(&h.Seq) }

// Stats is a snapshot of a superblock's live words.
type Stats struct {
	Geometry    Geometry
	Head        uint64
	Generation  uint64
	WriterPID   int
	WriterStart int64 // Unix ns
	Created     int64 // Unix ns
	Heartbeat   int64 // CLOCK_MONOTONIC ns
	FramesTotal uint64
	BytesTotal  uint64
}

// Stats reads the live words with atomic loads.
func (s *Segment) Stats() Stats {
	return Stats{
		Geometry:    s.geo,
		Head:        s.Head().Load(),
		Generation:  s.Generation().Load(),
		WriterPID:   int(s.WriterPID().Load()),
		WriterStart: s.WriterStart().Load(),
		Created:     i64(&s.sb.Created).Load(),
		Heartbeat:   s.Heartbeat().Load(),
		FramesTotal: s.FramesTotal().Load(),
		BytesTotal:  s.BytesTotal().Load(),
	}
}
