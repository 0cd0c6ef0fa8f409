package legacy_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/ring"
)

// readSlot reads the object as the old receiver would, for w x h x c.
func readSlot(t *testing.T, dir, name string, w, h, c int) []byte {
	t.Helper()
	o, err := legacy.NewOldReader(dir, name, w, h, c)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	buf := make([]byte, w*h*c)
	if _, ok, err := o.TryRead(buf); err != nil || !ok {
		t.Fatalf("old read: ok=%v err=%v", ok, err)
	}
	return buf
}

func TestMirrorFormats(t *testing.T) {
	dir := testutil.ShmDir(t)
	const w, h = 5, 3
	// src builds an image of c channels with a row stride, pixel (x,y)
	// channel k = 10*y + x + 100*k.
	src := func(c, stride int) []byte {
		b := make([]byte, stride*h)
		for i := range b {
			b[i] = 0xEE // padding must not leak into the slot
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for k := 0; k < c; k++ {
					b[y*stride+x*c+k] = byte(10*y + x + 50*k)
				}
			}
		}
		return b
	}
	want := func(c int, order []int) []byte {
		var out []byte
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for _, k := range order {
					out = append(out, byte(10*y+x+50*k))
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		name   string
		format ring.PixelFormat
		inC    int
		stride int
		outC   int
		order  []int
	}{
		{"bgr8", ring.BGR8, 3, 0, 3, []int{0, 1, 2}},
		{"bgr8-stride", ring.BGR8, 3, 5*3 + 7, 3, []int{0, 1, 2}},
		{"gray8", ring.Gray8, 1, 0, 1, []int{0}},
		{"gray8-stride", ring.Gray8, 1, 8, 1, []int{0}},
		{"rgb8", ring.RGB8, 3, 0, 3, []int{2, 1, 0}},
		{"bgra8", ring.BGRA8, 4, 0, 3, []int{0, 1, 2}},
		{"rgba8-stride", ring.RGBA8, 4, 5*4 + 4, 3, []int{2, 1, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "mmaptest_" + testutil.Name(t)
			m, err := legacy.NewMirror(dir, name, legacy.MirrorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Remove()
			stride := c.stride
			if stride == 0 {
				stride = w * c.inC
			}
			f := ring.Frame{FrameInfo: ring.FrameInfo{Width: w, Height: h, Channels: c.inC, Format: c.format, Stride: c.stride}, Number: 1, Data: src(c.inC, stride)}
			if err := m.MirrorFrame(&f); err != nil {
				t.Fatal(err)
			}
			if got, want := readSlot(t, dir, name, w, h, c.outC), want(c.outC, c.order); !bytes.Equal(got, want) {
				t.Fatalf("slot pixels\n got % x\nwant % x", got, want)
			}
			in, _ := shm.StatPath(filepath.Join(dir, name))
			if in.Mode.Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", in.Mode.Perm())
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		name := "mmaptest_" + testutil.Name(t)
		m, err := legacy.NewMirror(dir, name, legacy.MirrorOptions{MaxFrameBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Remove()
		for _, format := range []ring.PixelFormat{ring.Gray16, ring.YUYV, ring.Raw} {
			f := ring.Frame{FrameInfo: ring.FrameInfo{Width: 2, Height: 2, Format: format, Len: 16}, Data: make([]byte, 16)}
			if err := m.MirrorFrame(&f); !errors.Is(err, legacy.ErrUnsupportedFormat) {
				t.Errorf("%v: MirrorFrame = %v, want ErrUnsupportedFormat", format, err)
			}
		}
	})
}

// The object keeps its inode: across frames of different sizes (growing
// in place), across a restart of the mirror, and a rate cap skips frames.
func TestMirrorKeepsInodeAndCapsRate(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := "mmaptest_" + testutil.Name(t)
	path := filepath.Join(dir, name)
	m, err := legacy.NewMirror(dir, name, legacy.MirrorOptions{Width: 4, Height: 4, Channels: 3, MaxRate: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	in0, err := shm.StatPath(path)
	if err != nil {
		t.Fatal(err)
	}
	if hdr := readHeader(t, path); hdr.Width != 4 || hdr.Valid != 0 {
		t.Fatalf("prefilled header %+v, want 4x4x3 with frame_valid 0", hdr)
	}
	frame := func(w, h int) *ring.Frame {
		return &ring.Frame{FrameInfo: ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8}, Data: make([]byte, w*h*3), Published: ring.Now()}
	}
	for i := 0; i < 3; i++ {
		if err := m.MirrorFrame(frame(4, 4)); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Mirrored != 1 || st.RateSkipped != 2 {
		t.Fatalf("stats %+v, want 1 mirrored and 2 skipped by a 0.001 Hz cap", st)
	}
	m.Close()
	if hdr := readHeader(t, path); hdr.Valid != 0 {
		t.Errorf("after Close frame_valid = %d, want 0", hdr.Valid)
	}
	m, err = legacy.NewMirror(dir, name, legacy.MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	before := time.Now().UnixMilli()
	if err := m.MirrorFrame(frame(40, 30)); err != nil { // larger: grows in place
		t.Fatal(err)
	}
	in1, _ := shm.StatPath(path)
	if in1.Inode != in0.Inode || in1.Size != 24+40*30*3 {
		t.Fatalf("after restart and growth: inode %d size %d, want inode %d size %d", in1.Inode, in1.Size, in0.Inode, 24+40*30*3)
	}
	hdr := readHeader(t, path)
	if hdr.Width != 40 || hdr.Height != 30 || hdr.Channels != 3 || hdr.Valid != 1 || hdr.TimestampMs < before-1000 || hdr.TimestampMs > time.Now().UnixMilli() {
		t.Fatalf("header %+v", hdr)
	}
	if err := m.MirrorFrame(frame(50, 40)); err != nil { // grows the live mapping
		t.Fatal(err)
	}
	if in2, _ := shm.StatPath(path); in2.Inode != in0.Inode || in2.Size != 24+50*40*3 {
		t.Fatalf("after growth: inode %d size %d", in2.Inode, in2.Size)
	}
	if st := m.Stats(); st.Grown != 1 || st.Mirrored != 2 {
		t.Errorf("stats %+v, want Grown 1, Mirrored 2", st)
	}
}

func readHeader(t *testing.T, path string) legacy.Header {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < legacy.HeaderSize {
		t.Fatalf("read %s: %d bytes, %v", path, len(b), err)
	}
	return legacy.ParseHeader(b)
}
