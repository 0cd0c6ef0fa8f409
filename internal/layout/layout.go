package layout

import (
	"encoding/binary"
	"hash/crc32"
	"structs"
	"sync/atomic"
	"unsafe"

	"github.com/framering/framering/ring"
)

// Format constants.
const (
	// Magic is the first 8 bytes of every ring segment.
	Magic = "FRMRING\x00"
	// Version is the layout version this package reads and writes. Version 2
	// put Head and Notify on one cache line, the two totals on another, and
	// the hot slot-header fields on the seq word's line.
	Version = 2
	// PageSize is the alignment of the superblock, every slot and every
	// payload. 4096 on every Linux host framering supports; a host with
	// larger pages still works, payloads are then merely not page-aligned.
	PageSize = 4096
	// SuperblockSize is the size of the superblock at offset 0.
	SuperblockSize = PageSize
	// SlotHeaderSize is the size of the fixed slot header; the metadata area
	// follows it.
	SlotHeaderSize = 128

	// Limits a segment must respect; a header outside them is corrupt.
	MinSlots      = 2
	MaxSlots      = 1 << 16
	MaxPayloadCap = 1 << 34 // 16 GiB per slot
	MaxMetaCap    = 1 << 20
	MaxFileSize   = 1 << 40
)

// Superblock is page 0 of a ring segment. All fields are little-endian
// (framering runs on little-endian hosts only: amd64, arm64). The words a
// commit writes share as few 64-byte lines as possible: Head and Notify
// (which waiting readers load) one line, the totals another; Heartbeat has
// its own.
//
//	off size field          written
//	  0    8 Magic          at create   "FRMRING\0"
//	  8    4 Version        at create   2
//	 12    4 SuperSize      at create   4096
//	 16    4 SlotCount      at create   power of two, 2..65536
//	 20    4 MetaCap        at create   metadata bytes per slot, 0..1 MiB
//	 24    8 SlotStride     at create   bytes from one slot to the next
//	 32    8 PayloadOffset  at create   payload offset inside a slot
//	 40    8 PayloadCap     at create   payload bytes per slot
//	 48    8 FileSize       at create   4096 + SlotCount*SlotStride
//	 56    4 Flags          at create   0
//	 60    4 Checksum       at create   CRC-32C (Castagnoli) of bytes 0..59
//	 64    4 WriterPID      writer open pid of the newest writer
//	 68    4 _
//	 72    8 WriterStart    writer open wall clock, Unix ns
//	 80    8 Generation     writer open 1 at create, +1 at each writer open
//	 88    8 Created        at create   wall clock, Unix ns
//	 96   32 _
//	128    8 Heartbeat      writer      CLOCK_MONOTONIC ns, at least every 100 ms
//	192    8 Head           writer      number of the newest committed frame (0: none)
//	200    4 Notify         writer      futex word, +1 after every commit
//	256    8 FramesTotal    writer      frames committed since create
//	264    8 BytesTotal     writer      payload bytes committed since create
//	272 3824 _              reserved, zero
type Superblock struct {
	_             structs.HostLayout
	Magic         [8]byte
	Version       uint32
	SuperSize     uint32
	SlotCount     uint32
	MetaCap       uint32
	SlotStride    uint64
	PayloadOffset uint64
	PayloadCap    uint64
	FileSize      uint64
	Flags         uint32
	Checksum      uint32
	WriterPID     uint32
	_             uint32
	WriterStart   int64
	Generation    uint64
	Created       int64
	_             [32]byte
	Heartbeat     int64
	_             [56]byte
	Head          uint64
	Notify        uint32
	_             [52]byte
	FramesTotal   uint64
	BytesTotal    uint64
	_             [3824]byte
}

var _ [SuperblockSize - unsafe.Sizeof(Superblock{})]byte
var _ [unsafe.Sizeof(Superblock{}) - SuperblockSize]byte

// checksumLen is how many leading bytes Checksum covers: the static
// geometry.
const checksumLen = 60

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SlotHeader is the fixed start of every slot. The metadata area
// (MetaCap bytes) follows at offset 128; the payload starts at
// PayloadOffset, page-aligned. The seq word and every field a reader needs
// to pick up a frame share the first 64-byte line.
//
//	off size field
//	  0    8 Seq         seqlock word: odd while the writer changes the slot
//	  8    8 FrameNo     frame number, 1, 2, 3, ...; 0: empty
//	 16    8 Generation  writer generation that wrote it
//	 24    4 Width       pixels
//	 28    4 Height      pixels
//	 32    4 Channels    samples per pixel
//	 36    4 Format      PixelFormat
//	 40    4 Stride      bytes per row
//	 44    4 MetaLen     bytes of metadata used, <= MetaCap
//	 48    8 PayloadLen  bytes of payload used, <= PayloadCap
//	 56    8 PublishNs   CLOCK_MONOTONIC ns when publishing started: the start of
//	                     a copy publish, or of Commit for a frame filled in place
//	 64    8 CaptureNs   CLOCK_MONOTONIC ns when the frame was captured
//	 72    8 WallNs      wall clock, Unix ns, at publish
//	 80   48 _           reserved, zero
type SlotHeader struct {
	_          structs.HostLayout
	Seq        uint64
	FrameNo    uint64
	Generation uint64
	Width      uint32
	Height     uint32
	Channels   uint32
	Format     uint32
	Stride     uint32
	MetaLen    uint32
	PayloadLen uint64
	PublishNs  int64
	CaptureNs  int64
	WallNs     int64
	_          [48]byte
}

var _ [SlotHeaderSize - unsafe.Sizeof(SlotHeader{})]byte
var _ [unsafe.Sizeof(SlotHeader{}) - SlotHeaderSize]byte

// PayloadOffset is the payload's offset inside a slot of geometry g: the
// slot header and metadata area rounded up to a page.
func PayloadOffset(g ring.Geometry) int64 {
	return alignUp(SlotHeaderSize+int64(g.MetaCap), PageSize)
}

// SlotStride is the distance between the slots of geometry g.
func SlotStride(g ring.Geometry) int64 {
	return PayloadOffset(g) + alignUp(int64(g.PayloadCap), PageSize)
}

func alignUp(n, a int64) int64 { return (n + a - 1) &^ (a - 1) }

// checksum computes the Checksum field over a superblock's first 60 bytes.
func checksum(b []byte) uint32 { return crc32.Checksum(b[:checksumLen], castagnoli) }

// u64 views a shared 8-byte-aligned word as an atomic. Valid because the
// word lies inside a live mapping that outlives the pointer's use and every
// such field's offset is a multiple of 8 (TestLayout checks the offsets).
func u64(p *uint64) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(p)) }
func i64(p *int64) *atomic.Int64   { return (*atomic.Int64)(unsafe.Pointer(p)) }
func u32(p *uint32) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Pointer(p)) }

// le is the byte order of every field.
var le = binary.LittleEndian
