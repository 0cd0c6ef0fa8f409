package layout_test

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/ring"
)

func validSuperblock(g ring.Geometry) []byte {
	sb, err := layout.EncodeSuperblock(g, 1)
	if err != nil {
		panic(err)
	}
	return sb
}

// FuzzParseSuperblock feeds arbitrary superblocks and file sizes to the
// validator: it must never panic, and whatever it accepts must be a
// geometry that fits the file.
func FuzzParseSuperblock(f *testing.F) {
	for _, g := range []ring.Geometry{{Slots: 2, PayloadCap: 1}, {Slots: 8, PayloadCap: 1920 * 1080 * 3, MetaCap: 4096}, {Slots: 1 << 16, PayloadCap: 4096}} {
		sb := validSuperblock(g)[:64] // the static fields; the rest is padded
		f.Add(sb, g.Size())
		f.Add(sb, g.Size()-1)
		bad := append([]byte(nil), sb...)
		bad[16] = 3
		f.Add(bad, g.Size())
	}
	f.Add(make([]byte, 64), int64(4096))
	f.Add([]byte("FRMRING\x00"), int64(8))
	f.Fuzz(func(t *testing.T, b []byte, fileSize int64) {
		// Inputs shorter than a page are padded with zeros, so the fuzzer
		// mutates the 64 bytes that matter and still reaches the short-page
		// check through odd lengths (> 64).
		if len(b) <= 64 {
			b = append(b, make([]byte, layout.SuperblockSize-len(b))...)
		}
		g, err := layout.ParseSuperblock(b, fileSize)
		if err != nil {
			return
		}
		if g.Check() != nil {
			t.Fatalf("accepted geometry %v fails Check", g)
		}
		if g.Size() > fileSize {
			t.Fatalf("accepted geometry of %d bytes for a %d-byte file", g.Size(), fileSize)
		}
		if layout.PayloadOffset(g)%layout.PageSize != 0 || layout.SlotStride(g) < layout.PayloadOffset(g)+int64(g.PayloadCap) {
			t.Fatalf("accepted geometry %v with bad offsets", g)
		}
	})
}

// FuzzSlotInfo feeds arbitrary slot headers to the validator: it must never
// panic, and what it accepts must fit the slot.
func FuzzSlotInfo(f *testing.F) {
	hdr := func(w, h, c, format, stride, metaLen uint32, payLen uint64) []byte {
		b := make([]byte, layout.SlotHeaderSize)
		// Offsets of the v2 slot header (see SlotHeader).
		binary.LittleEndian.PutUint64(b[8:], 1)
		binary.LittleEndian.PutUint32(b[24:], w)
		binary.LittleEndian.PutUint32(b[28:], h)
		binary.LittleEndian.PutUint32(b[32:], c)
		binary.LittleEndian.PutUint32(b[36:], format)
		binary.LittleEndian.PutUint32(b[40:], stride)
		binary.LittleEndian.PutUint32(b[44:], metaLen)
		binary.LittleEndian.PutUint64(b[48:], payLen)
		return b
	}
	f.Add(hdr(640, 404, 3, uint32(ring.BGR8), 1920, 0, 640*404*3))
	f.Add(hdr(640, 404, 1, uint32(ring.Gray8), 640, 10, 640*404))
	f.Add(hdr(4, 4, 1, uint32(ring.Gray16), 8, 0, 32))
	f.Add(hdr(0, 0, 0, uint32(ring.Raw), 0, 0, 5))
	f.Add(hdr(1<<31, 1<<31, 3, uint32(ring.BGR8), 1<<31, 1<<31, 1<<63))
	f.Add(hdr(640, 404, 3, 99, 1920, 0, 640*404*3))
	g := ring.Geometry{Slots: 4, PayloadCap: 640 * 404 * 3, MetaCap: 64}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h layout.SlotHeader
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), layout.SlotHeaderSize), b)
		fi, metaLen, err := h.Info(g)
		if err != nil {
			return
		}
		if fi.Len < 0 || fi.Len > g.PayloadCap || metaLen < 0 || metaLen > g.MetaCap {
			t.Fatalf("accepted %+v for geometry %v", fi, g)
		}
		if fi.Format != ring.Raw && int64(fi.Stride)*int64(fi.Height) != int64(fi.Len) {
			t.Fatalf("accepted stride %d x height %d != len %d", fi.Stride, fi.Height, fi.Len)
		}
	})
}
