package layout_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/ring"
)

var update = flag.Bool("update", false, "rewrite testdata/superblock.golden")

// TestLayoutOffsets checks every named field of the superblock and the slot
// header against the offsets docs/PROTOCOL.md documents.
func TestLayoutOffsets(t *testing.T) {
	var sb layout.Superblock
	var sh layout.SlotHeader
	for _, c := range []struct {
		name       string
		got        uintptr
		off, size  uintptr
		gotSize    uintptr
		mustAlign8 bool
	}{
		{"Superblock.Magic", unsafe.Offsetof(sb.Magic), 0, 8, unsafe.Sizeof(sb.Magic), false},
		{"Superblock.Version", unsafe.Offsetof(sb.Version), 8, 4, unsafe.Sizeof(sb.Version), false},
		{"Superblock.SuperSize", unsafe.Offsetof(sb.SuperSize), 12, 4, unsafe.Sizeof(sb.SuperSize), false},
		{"Superblock.SlotCount", unsafe.Offsetof(sb.SlotCount), 16, 4, unsafe.Sizeof(sb.SlotCount), false},
		{"Superblock.MetaCap", unsafe.Offsetof(sb.MetaCap), 20, 4, unsafe.Sizeof(sb.MetaCap), false},
		{"Superblock.SlotStride", unsafe.Offsetof(sb.SlotStride), 24, 8, unsafe.Sizeof(sb.SlotStride), false},
		{"Superblock.PayloadOffset", unsafe.Offsetof(sb.PayloadOffset), 32, 8, unsafe.Sizeof(sb.PayloadOffset), false},
		{"Superblock.PayloadCap", unsafe.Offsetof(sb.PayloadCap), 40, 8, unsafe.Sizeof(sb.PayloadCap), false},
		{"Superblock.FileSize", unsafe.Offsetof(sb.FileSize), 48, 8, unsafe.Sizeof(sb.FileSize), false},
		{"Superblock.Flags", unsafe.Offsetof(sb.Flags), 56, 4, unsafe.Sizeof(sb.Flags), false},
		{"Superblock.Checksum", unsafe.Offsetof(sb.Checksum), 60, 4, unsafe.Sizeof(sb.Checksum), false},
		{"Superblock.WriterPID", unsafe.Offsetof(sb.WriterPID), 64, 4, unsafe.Sizeof(sb.WriterPID), false},
		{"Superblock.WriterStart", unsafe.Offsetof(sb.WriterStart), 72, 8, unsafe.Sizeof(sb.WriterStart), true},
		{"Superblock.Generation", unsafe.Offsetof(sb.Generation), 80, 8, unsafe.Sizeof(sb.Generation), true},
		{"Superblock.Created", unsafe.Offsetof(sb.Created), 88, 8, unsafe.Sizeof(sb.Created), true},
		{"Superblock.Heartbeat", unsafe.Offsetof(sb.Heartbeat), 128, 8, unsafe.Sizeof(sb.Heartbeat), true},
		{"Superblock.Head", unsafe.Offsetof(sb.Head), 192, 8, unsafe.Sizeof(sb.Head), true},
		{"Superblock.Notify", unsafe.Offsetof(sb.Notify), 200, 4, unsafe.Sizeof(sb.Notify), false},
		{"Superblock.FramesTotal", unsafe.Offsetof(sb.FramesTotal), 256, 8, unsafe.Sizeof(sb.FramesTotal), true},
		{"Superblock.BytesTotal", unsafe.Offsetof(sb.BytesTotal), 264, 8, unsafe.Sizeof(sb.BytesTotal), true},
		{"SlotHeader.Seq", unsafe.Offsetof(sh.Seq), 0, 8, unsafe.Sizeof(sh.Seq), true},
		{"SlotHeader.FrameNo", unsafe.Offsetof(sh.FrameNo), 8, 8, unsafe.Sizeof(sh.FrameNo), true},
		{"SlotHeader.Generation", unsafe.Offsetof(sh.Generation), 16, 8, unsafe.Sizeof(sh.Generation), false},
		{"SlotHeader.Width", unsafe.Offsetof(sh.Width), 24, 4, unsafe.Sizeof(sh.Width), false},
		{"SlotHeader.Height", unsafe.Offsetof(sh.Height), 28, 4, unsafe.Sizeof(sh.Height), false},
		{"SlotHeader.Channels", unsafe.Offsetof(sh.Channels), 32, 4, unsafe.Sizeof(sh.Channels), false},
		{"SlotHeader.Format", unsafe.Offsetof(sh.Format), 36, 4, unsafe.Sizeof(sh.Format), false},
		{"SlotHeader.Stride", unsafe.Offsetof(sh.Stride), 40, 4, unsafe.Sizeof(sh.Stride), false},
		{"SlotHeader.MetaLen", unsafe.Offsetof(sh.MetaLen), 44, 4, unsafe.Sizeof(sh.MetaLen), false},
		{"SlotHeader.PayloadLen", unsafe.Offsetof(sh.PayloadLen), 48, 8, unsafe.Sizeof(sh.PayloadLen), false},
		{"SlotHeader.CaptureNs", unsafe.Offsetof(sh.CaptureNs), 64, 8, unsafe.Sizeof(sh.CaptureNs), false},
		{"SlotHeader.PublishNs", unsafe.Offsetof(sh.PublishNs), 56, 8, unsafe.Sizeof(sh.PublishNs), false},
		{"SlotHeader.WallNs", unsafe.Offsetof(sh.WallNs), 72, 8, unsafe.Sizeof(sh.WallNs), false},
	} {
		if c.got != c.off || c.gotSize != c.size {
			t.Errorf("%s at offset %d size %d; PROTOCOL.md says offset %d size %d", c.name, c.got, c.gotSize, c.off, c.size)
		}
		if c.mustAlign8 && c.got%8 != 0 {
			t.Errorf("%s at offset %d is not 8-byte aligned; atomics need it", c.name, c.got)
		}
	}
	// The words a commit writes: Head and Notify share one 64-byte line
	// (readers waiting load both), the totals another, and neither line
	// holds anything else that is written while the ring is live.
	line := func(off uintptr) uintptr { return off / 64 }
	if line(unsafe.Offsetof(sb.Head)) != line(unsafe.Offsetof(sb.Notify)) {
		t.Errorf("Head and Notify are on different cache lines")
	}
	if line(unsafe.Offsetof(sb.FramesTotal)) != line(unsafe.Offsetof(sb.BytesTotal)) {
		t.Errorf("FramesTotal and BytesTotal are on different cache lines")
	}
	hot := map[string]uintptr{"Heartbeat": unsafe.Offsetof(sb.Heartbeat), "Head": unsafe.Offsetof(sb.Head), "FramesTotal": unsafe.Offsetof(sb.FramesTotal)}
	for a, oa := range hot {
		for b, ob := range hot {
			if a < b && line(oa) == line(ob) {
				t.Errorf("%s shares cache line %d with %s", a, line(oa), b)
			}
		}
		if line(oa) <= line(unsafe.Offsetof(sb.Created)) {
			t.Errorf("%s shares a cache line with the per-open words", a)
		}
	}
	// A reader's first touch of a slot, one line: seq and every field
	// needed to pick the frame up and time it.
	for name, end := range map[string]uintptr{
		"PayloadLen": unsafe.Offsetof(sh.PayloadLen) + 8, "PublishNs": unsafe.Offsetof(sh.PublishNs) + 8,
	} {
		if end > 64 {
			t.Errorf("SlotHeader.%s ends at %d, past the seq word's line", name, end)
		}
	}
	if got := unsafe.Sizeof(sb); got != layout.SuperblockSize {
		t.Errorf("Superblock is %d bytes, want %d", got, layout.SuperblockSize)
	}
	if got := unsafe.Sizeof(sh); got != layout.SlotHeaderSize {
		t.Errorf("SlotHeader is %d bytes, want %d", got, layout.SlotHeaderSize)
	}
}

// TestGeometryTable checks the geometry examples of PROTOCOL.md section 4.
func TestGeometryTable(t *testing.T) {
	for _, c := range []struct {
		g                    ring.Geometry
		payOff, stride, size int64
	}{
		{ring.Geometry{Slots: 8, PayloadCap: 1920 * 1080 * 3, MetaCap: 4096}, 8192, 6230016, 49844224},
		{ring.Geometry{Slots: 4, PayloadCap: 1000, MetaCap: 256}, 4096, 8192, 36864},
		{ring.Geometry{Slots: 8, PayloadCap: 640 * 480 * 3, MetaCap: 0}, 4096, 925696, 7409664},
	} {
		if layout.PayloadOffset(c.g) != c.payOff || layout.SlotStride(c.g) != c.stride || c.g.Size() != c.size {
			t.Errorf("%v: offset %d stride %d size %d; PROTOCOL.md says %d %d %d", c.g,
				layout.PayloadOffset(c.g), layout.SlotStride(c.g), c.g.Size(), c.payOff, c.stride, c.size)
		}
	}
}

// goldenGeometry and goldenCreated are the fixed inputs of the golden file.
var (
	goldenGeometry = ring.Geometry{Slots: 4, PayloadCap: 1000, MetaCap: 256}
	goldenCreated  = int64(1700000000123456789)
)

// goldenText formats a ring on a zeroed buffer and dumps (1) the fresh
// superblock and first slot header, and (2) the superblock and slot header
// after a writer opened it and committed frame 1, with fixed values.
func goldenText(t *testing.T) string {
	g := goldenGeometry
	mem := make([]byte, g.Size())
	seg, err := layout.Format(mem, g, goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "# framering segment format v%d, golden dump (hexdump -C style, '*' = repeated line)\n", layout.Version)
	fmt.Fprintf(&out, "# geometry: %v, created %d\n", g, goldenCreated)
	fmt.Fprintf(&out, "# payload offset %d, slot stride %d, file size %d\n", layout.PayloadOffset(g), layout.SlotStride(g), g.Size())
	fmt.Fprintf(&out, "\n## 1. fresh: superblock (0..4095) and slot 0 header (4096..%d)\n", layout.SuperblockSize+layout.SlotHeaderSize-1)
	hexdump(&out, mem[:layout.SuperblockSize+layout.SlotHeaderSize], 0)

	// A writer opened the ring and committed frame 1 (slot 1).
	seg.Generation().Store(1)
	seg.WriterPID().Store(4242)
	seg.WriterStart().Store(1700000001000000000)
	seg.Heartbeat().Store(5000000000)
	h := seg.Slot(1)
	fi := ring.FrameInfo{Width: 8, Height: 4, Format: ring.BGR8, Stride: 32, Capture: 4000000000, Meta: []byte("hello")}
	if err := fi.Normalize(); err != nil {
		t.Fatal(err)
	}
	h.SeqWord().Store(1)
	copy(seg.Meta(1), fi.Meta)
	h.Store(1, 1, &fi, len(fi.Meta), 4500000000, 1700000002000000000)
	h.SeqWord().Store(2)
	seg.Head().Store(1)
	seg.FramesTotal().Store(1)
	seg.BytesTotal().Store(uint64(fi.Len))
	seg.Notify().Store(2)
	slot1 := layout.SuperblockSize + layout.SlotStride(g)
	fmt.Fprintf(&out, "\n## 2. after writer pid 4242 (generation 1) committed frame 1: 8x4 bgr8, stride 32, metadata \"hello\"\n")
	fmt.Fprintf(&out, "## superblock (0..4095)\n")
	hexdump(&out, mem[:layout.SuperblockSize], 0)
	fmt.Fprintf(&out, "## slot 1 header and metadata start (%d..%d)\n", slot1, slot1+layout.SlotHeaderSize+16-1)
	hexdump(&out, mem[slot1:slot1+layout.SlotHeaderSize+16], slot1)
	return out.String()
}

// hexdump writes b like hexdump -C, with absolute offsets from base and
// '*' for lines equal to the previous one.
func hexdump(w io.Writer, b []byte, base int64) {
	var prev []byte
	star := false
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		if prev != nil && bytes.Equal(line, prev) && len(line) == 16 {
			if !star {
				fmt.Fprintln(w, "*")
				star = true
			}
			continue
		}
		star = false
		prev = line
		var hx strings.Builder
		for j := 0; j < 16; j++ {
			if j == 8 {
				hx.WriteByte(' ')
			}
			if j < len(line) {
				fmt.Fprintf(&hx, "%02x ", line[j])
			} else {
				hx.WriteString("   ")
			}
		}
		asc := make([]byte, len(line))
		for j, c := range line {
			asc[j] = '.'
			if c >= 0x20 && c < 0x7f {
				asc[j] = c
			}
		}
		fmt.Fprintf(w, "%08x  %s |%s|\n", base+int64(i), hx.String(), asc)
	}
	fmt.Fprintf(w, "%08x\n", base+int64(len(b)))
}

func TestSuperblockGolden(t *testing.T) {
	got := goldenText(t)
	path := filepath.Join("testdata", "superblock.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test ./internal/layout -run TestSuperblockGolden -update to create it", err)
	}
	if got != string(want) {
		t.Errorf("segment layout differs from %s (a layout change needs a Version bump and an updated PROTOCOL.md; then run with -update)\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines that differ, for a readable failure.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, w, g)
		}
	}
	return b.String()
}

// TestGoldenChecksum recomputes the superblock checksum of the golden
// geometry independently (CRC-32C over bytes 0..59, as PROTOCOL.md says).
func TestGoldenChecksum(t *testing.T) {
	sb, err := layout.EncodeSuperblock(goldenGeometry, goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	// Bitwise CRC-32C, no table, so the test does not share code with layout.
	crc := ^uint32(0)
	for _, c := range sb[:60] {
		crc ^= uint32(c)
		for k := 0; k < 8; k++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	crc = ^crc
	stored := uint32(sb[60]) | uint32(sb[61])<<8 | uint32(sb[62])<<16 | uint32(sb[63])<<24
	if stored != crc {
		t.Fatalf("stored checksum %#08x, CRC-32C of bytes 0..59 is %#08x", stored, crc)
	}
}

// TestLimitsAgree checks that ring's unexported copies of the limits and
// alignments (which Geometry.Check and Geometry.Size use) are this
// package's: at each limit Check accepts, one past it Check refuses, and
// Size is the sum of the offsets here.
func TestLimitsAgree(t *testing.T) {
	ok := []ring.Geometry{
		{Slots: layout.MinSlots, PayloadCap: 1},
		{Slots: layout.MaxSlots, PayloadCap: 1},
		{Slots: 2, PayloadCap: layout.MaxPayloadCap},
		{Slots: 2, PayloadCap: 1, MetaCap: layout.MaxMetaCap},
		{Slots: 2, PayloadCap: 1, MetaCap: 0},
	}
	bad := []ring.Geometry{
		{Slots: layout.MinSlots / 2, PayloadCap: 1},
		{Slots: layout.MaxSlots * 2, PayloadCap: 1},
		{Slots: 2, PayloadCap: layout.MaxPayloadCap + 1},
		{Slots: 2, PayloadCap: 1, MetaCap: layout.MaxMetaCap + 1},
		{Slots: 1 << 16, PayloadCap: layout.MaxPayloadCap}, // more than MaxFileSize
	}
	for _, g := range ok {
		if err := g.Check(); err != nil {
			t.Errorf("%v: %v", g, err)
		}
	}
	for _, g := range bad {
		if err := g.Check(); err == nil {
			t.Errorf("%v accepted", g)
		}
	}
	for _, g := range append(ok, ring.Geometry{Slots: 8, PayloadCap: 4097, MetaCap: 3969}, ring.Geometry{Slots: 4, PayloadCap: 4096, MetaCap: 3968}) {
		if want := int64(layout.SuperblockSize) + int64(g.Slots)*layout.SlotStride(g); g.Size() != want {
			t.Errorf("%v: Size %d, layout gives %d", g, g.Size(), want)
		}
		if layout.PayloadOffset(g)%layout.PageSize != 0 || layout.PayloadOffset(g) < layout.SlotHeaderSize+int64(g.MetaCap) {
			t.Errorf("%v: payload offset %d", g, layout.PayloadOffset(g))
		}
	}
}
