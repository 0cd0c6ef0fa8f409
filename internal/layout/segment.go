package layout

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/framering/framering/ring"
)

// Segment is a validated view of a mapped ring. It does no I/O: producer
// and consumer map the file and hand the bytes in.
//
// The memory is shared with other processes. Geometry fields are copied
// out and validated once, in [Attach]; every other field is read with
// atomic loads or under a slot's seqlock and validated before use.
type Segment struct {
	mem  []byte
	geo  ring.Geometry
	sb   *Superblock
	base unsafe.Pointer // &mem[0]
	// Copies of the validated static fields, so a corrupting writer cannot
	// change offsets under us.
	stride, payOff int64
	mask           uint64
}

// Format writes a fresh superblock for g into mem, which must be zeroed and
// exactly g.Size() bytes, and returns the segment. Generation starts at
// 0; the writer's Open bumps it.
func Format(mem []byte, g ring.Geometry, createdNs int64) (*Segment, error) {
	sb, err := EncodeSuperblock(g, createdNs)
	if err != nil {
		return nil, err
	}
	if int64(len(mem)) != g.Size() {
		return nil, fmt.Errorf("format ring: mapping is %d bytes, geometry needs %d", len(mem), g.Size())
	}
	copy(mem, sb)
	return Attach(mem)
}

// EncodeSuperblock returns the superblock page of a fresh ring of geometry
// g: static fields and checksum set, live words zero.
func EncodeSuperblock(g ring.Geometry, createdNs int64) ([]byte, error) {
	if err := g.Check(); err != nil {
		return nil, err
	}
	b := make([]byte, SuperblockSize)
	copy(b, Magic)
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], SuperblockSize)
	le.PutUint32(b[16:], uint32(g.Slots))
	le.PutUint32(b[20:], uint32(g.MetaCap))
	le.PutUint64(b[24:], uint64(SlotStride(g)))
	le.PutUint64(b[32:], uint64(PayloadOffset(g)))
	le.PutUint64(b[40:], uint64(g.PayloadCap))
	le.PutUint64(b[48:], uint64(g.Size()))
	le.PutUint64(b[88:], uint64(createdNs))
	le.PutUint32(b[60:], checksum(b))
	return b, nil
}

// Attach validates the superblock at the start of mem against len(mem) and
// returns the segment. mem must be 8-byte aligned (a mapping is
// page-aligned). Errors wrap [ring.ErrIncompatible], [ring.ErrCorrupt] or
// [ring.ErrTruncated].
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
		stride: SlotStride(g),
		payOff: PayloadOffset(g),
		mask:   uint64(g.Slots - 1),
	}, nil
}

// ParseSuperblock validates the static part of a superblock read from b, a
// copy or mapping of at least its first page, for an object of fileSize
// bytes, and returns the geometry. It never panics, whatever b holds.
func ParseSuperblock(b []byte, fileSize int64) (ring.Geometry, error) {
	if len(b) < SuperblockSize || fileSize < SuperblockSize {
		n := min(int64(len(b)), fileSize)
		return ring.Geometry{}, fmt.Errorf("%w: %d bytes, a superblock needs %d", ring.ErrTruncated, n, SuperblockSize)
	}
	if string(b[:8]) != Magic {
		return ring.Geometry{}, &ring.LayoutError{Field: "magic", Got: fmt.Sprintf("%q", b[:8]), Want: fmt.Sprintf("%q", Magic)}
	}
	if v := le.Uint32(b[8:]); v != Version {
		return ring.Geometry{}, &ring.LayoutError{Field: "version", Got: fmt.Sprint(v), Want: fmt.Sprint(Version)}
	}
	if sum, want := le.Uint32(b[60:]), checksum(b); sum != want {
		return ring.Geometry{}, fmt.Errorf("%w: superblock checksum %#08x, computed %#08x", ring.ErrCorrupt, sum, want)
	}
	if fl := le.Uint32(b[56:]); fl != 0 {
		return ring.Geometry{}, &ring.LayoutError{Field: "flags", Got: fmt.Sprintf("%#x", fl), Want: "0 (no v1 flags are defined)"}
	}
	if s := le.Uint32(b[12:]); s != SuperblockSize {
		return ring.Geometry{}, &ring.LayoutError{Field: "superblock size", Got: fmt.Sprint(s), Want: fmt.Sprint(SuperblockSize)}
	}
	payCap := le.Uint64(b[40:])
	if payCap > MaxPayloadCap {
		return ring.Geometry{}, fmt.Errorf("%w: payload capacity %d exceeds %d", ring.ErrCorrupt, payCap, int64(MaxPayloadCap))
	}
	g := ring.Geometry{
		Slots:      int(le.Uint32(b[16:])),
		MetaCap:    int(le.Uint32(b[20:])),
		PayloadCap: int(payCap),
	}
	if err := g.Check(); err != nil {
		return ring.Geometry{}, fmt.Errorf("%w: %v", ring.ErrCorrupt, err)
	}
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"slot stride", le.Uint64(b[24:]), uint64(SlotStride(g))},
		{"payload offset", le.Uint64(b[32:]), uint64(PayloadOffset(g))},
		{"file size", le.Uint64(b[48:]), uint64(g.Size())},
	} {
		if f.got != f.want {
			return ring.Geometry{}, fmt.Errorf("%w: %s is %d, geometry %v gives %d", ring.ErrCorrupt, f.name, f.got, g, f.want)
		}
	}
	if fileSize < g.Size() {
		return ring.Geometry{}, fmt.Errorf("%w: object is %d bytes, superblock says %d", ring.ErrTruncated, fileSize, g.Size())
	}
	return g, nil
}

// Geometry returns the validated geometry.
func (s *Segment) Geometry() ring.Geometry { return s.geo }

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

// Status reads the live words with atomic loads.
func (s *Segment) Status() ring.Status {
	return ring.Status{
		Geometry:    s.geo,
		Head:        s.Head().Load(),
		Generation:  s.Generation().Load(),
		WriterPID:   int(s.WriterPID().Load()),
		WriterStart: wallTime(s.WriterStart().Load()),
		Created:     wallTime(i64(&s.sb.Created).Load()),
		Heartbeat:   s.Heartbeat().Load(),
		FramesTotal: s.FramesTotal().Load(),
		BytesTotal:  s.BytesTotal().Load(),
	}
}

// wallTime is Unix ns as a time, the zero time for 0.
func wallTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Info converts a slot header already copied out of shared memory into
// frame info, validating every field against the geometry. It never
// panics; errors wrap [ring.ErrCorrupt]. The returned info has no Meta: its
// length is the header's MetaLen, returned separately.
func (h *SlotHeader) Info(g ring.Geometry) (fi ring.FrameInfo, metaLen int, err error) {
	fi = ring.FrameInfo{
		Width:    int(h.Width),
		Height:   int(h.Height),
		Channels: int(h.Channels),
		Format:   ring.PixelFormat(h.Format),
		Stride:   int(h.Stride),
		Capture:  h.CaptureNs,
		Len:      int(min(h.PayloadLen, uint64(MaxPayloadCap)+1)),
	}
	metaLen = int(h.MetaLen)
	if h.PayloadLen > uint64(g.PayloadCap) {
		return fi, 0, fmt.Errorf("%w: frame %d payload length %d exceeds slot capacity %d", ring.ErrCorrupt, h.FrameNo, h.PayloadLen, g.PayloadCap)
	}
	if h.MetaLen > uint32(g.MetaCap) {
		return fi, 0, fmt.Errorf("%w: frame %d metadata length %d exceeds slot capacity %d", ring.ErrCorrupt, h.FrameNo, h.MetaLen, g.MetaCap)
	}
	check := fi
	if err := check.Normalize(); err != nil {
		return fi, 0, fmt.Errorf("%w: frame %d header: %v", ring.ErrCorrupt, h.FrameNo, err)
	}
	if check.Channels != fi.Channels || check.Stride != fi.Stride || uint64(check.Len) != h.PayloadLen {
		return fi, 0, fmt.Errorf("%w: frame %d header: %dx%dx%d %v stride %d does not give payload length %d", ring.ErrCorrupt, h.FrameNo, fi.Width, fi.Height, fi.Channels, fi.Format, fi.Stride, h.PayloadLen)
	}
	return fi, metaLen, nil
}

// Store writes fi (already normalized) into the header of a slot the
// caller holds odd, with metaLen bytes of metadata.
func (h *SlotHeader) Store(number, generation uint64, fi *ring.FrameInfo, metaLen int, publishNs int64, wall int64) {
	h.FrameNo = number
	h.Generation = generation
	h.Width = uint32(fi.Width)
	h.Height = uint32(fi.Height)
	h.Channels = uint32(fi.Channels)
	h.Format = uint32(fi.Format)
	h.Stride = uint32(fi.Stride)
	h.MetaLen = uint32(metaLen)
	h.PayloadLen = uint64(fi.Len)
	capture := fi.Capture
	if capture == 0 {
		capture = publishNs
	}
	h.CaptureNs = capture
	h.PublishNs = publishNs
	h.WallNs = wall
}

// Numbering is what a writer carries over from an old superblock into
// the file that replaces it, so that frame numbers never go back while a
// ring's superblock survives (D4).
type Numbering struct {
	Head, Generation, FramesTotal, BytesTotal uint64
}

// File offsets of the superblock's live words and of a slot header's
// first words, for code that reads or patches a segment file without
// mapping it (tests, tools).
const (
	OffsetGeneration = int64(unsafe.Offsetof(Superblock{}.Generation))
	OffsetHeartbeat  = int64(unsafe.Offsetof(Superblock{}.Heartbeat))
	OffsetHead       = int64(unsafe.Offsetof(Superblock{}.Head))
	OffsetNotify     = int64(unsafe.Offsetof(Superblock{}.Notify))
	OffsetSlotSeq    = int64(unsafe.Offsetof(SlotHeader{}.Seq))
	OffsetSlotFrame  = int64(unsafe.Offsetof(SlotHeader{}.FrameNo))
)

// SlotFileOffset is the file offset of the slot holding frame n in a
// segment of geometry g.
func SlotFileOffset(g ring.Geometry, n uint64) int64 {
	return SuperblockSize + int64(n&uint64(g.Slots-1))*SlotStride(g)
}

// AbsurdNumber is the smallest Head, Generation or frame number that no
// writer reaches by counting and that readers and writers refuse to
// believe (D3, D4): adding a ring's worth of frames to it could wrap.
const AbsurdNumber = 1 << 63

// ReadNumbering returns the numbering of b, a copy of a superblock page,
// if its magic, version and checksum are right: whatever its geometry,
// the size of its file or the state of its slots. The values are as
// found: a writer does not carry a Head or Generation of [AbsurdNumber] or
// more. It never panics.
func ReadNumbering(b []byte) (Numbering, bool) {
	if len(b) < SuperblockSize || string(b[:8]) != Magic || le.Uint32(b[8:]) != Version || le.Uint32(b[60:]) != checksum(b) {
		return Numbering{}, false
	}
	n := Numbering{
		Head:        le.Uint64(b[OffsetHead:]),
		Generation:  le.Uint64(b[OffsetGeneration:]),
		FramesTotal: le.Uint64(b[unsafe.Offsetof(Superblock{}.FramesTotal):]),
		BytesTotal:  le.Uint64(b[unsafe.Offsetof(Superblock{}.BytesTotal):]),
	}
	return n, true
}

// NotifyWord returns the Notify word of a mapped superblock page (at least
// its first SuperblockSize bytes, page-aligned), for a writer that wakes
// the readers of a file it replaced without attaching all of it. Valid
// while the mapping lives.
func NotifyWord(super []byte) *atomic.Uint32 {
	_ = super[SuperblockSize-1] // bounds: the page is there
	return u32(&(*Superblock)(unsafe.Pointer(unsafe.SliceData(super))).Notify)
}
