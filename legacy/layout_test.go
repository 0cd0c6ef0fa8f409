package legacy

import (
	"encoding/binary"
	"testing"
)

func TestHeaderLayout(t *testing.T) {
	b := make([]byte, HeaderSize)
	putGeometry(b, 640, 404, 3, 0x0102030405060708)
	binary.LittleEndian.PutUint32(b[20:], 1)
	for _, c := range []struct {
		off  int
		want []byte
	}{
		{0, []byte{0x80, 0x02, 0, 0}},
		{4, []byte{0x94, 0x01, 0, 0}},
		{8, []byte{3, 0, 0, 0}},
		{12, []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{20, []byte{1, 0, 0, 0}},
	} {
		if got := b[c.off : c.off+len(c.want)]; string(got) != string(c.want) {
			t.Errorf("bytes at %d = % x, want % x", c.off, got, c.want)
		}
	}
	h := ParseHeader(b)
	want := Header{Width: 640, Height: 404, Channels: 3, TimestampMs: 0x0102030405060708, Valid: 1}
	if h != want {
		t.Fatalf("ParseHeader = %+v, want %+v", h, want)
	}
}

func TestHeaderCheck(t *testing.T) {
	for _, c := range []struct {
		h    Header
		size int64
		ok   bool
	}{
		{Header{Width: 640, Height: 404, Channels: 3}, 24 + 640*404*3, true},
		{Header{Width: 640, Height: 404, Channels: 3}, 24 + 640*404*3 - 1, false},
		{Header{Width: -1, Height: 404, Channels: 3}, 1 << 30, false},
		{Header{Width: 640, Height: 1 << 30, Channels: 3}, 1 << 40, false},
		{Header{Width: 640, Height: 404, Channels: 0}, 1 << 30, false},
		{Header{Width: 640, Height: 404, Channels: 5}, 1 << 30, false},
		{Header{Width: 1 << 20, Height: 1 << 20, Channels: 4}, 1 << 34, false}, // no overflow
	} {
		if err := c.h.Check(c.size); (err == nil) != c.ok {
			t.Errorf("%+v.Check(%d) = %v, want ok=%v", c.h, c.size, err, c.ok)
		}
	}
}
