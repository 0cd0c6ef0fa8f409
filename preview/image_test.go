package preview

import (
	"math/rand/v2"
	"testing"

	"github.com/framering/framering/ring"
)

// TestPictureUntrustedShape feeds the conversions shapes that do not fit
// their bytes (as a broken writer could publish): an error, never a panic.
func TestPictureUntrustedShape(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var d display
	formats := []ring.PixelFormat{ring.Gray8, ring.BGR8, ring.RGB8, ring.BGRA8, ring.RGBA8, ring.Gray16, ring.YUYV, ring.Raw, ring.FormatInvalid, 99}
	for i := 0; i < 20000; i++ {
		f := formats[r.IntN(len(formats))]
		fr := ring.Frame{FrameInfo: ring.FrameInfo{
			Width: r.IntN(40) - 2, Height: r.IntN(40) - 2, Channels: r.IntN(6), Format: f, Stride: r.IntN(200) - 5,
		}, Data: make([]byte, r.IntN(3000))}
		if r.IntN(2) == 0 {
			fr.Channels = f.Channels()
		}
		_, perr := d.picture(&fr, r.IntN(50)-5)
		_, ferr := fullImage(&fr)
		_, cerr := checkImage(&fr)
		if (perr == nil) != (cerr == nil) || (ferr == nil) != (cerr == nil) {
			t.Fatalf("%+v: picture %v, full %v, check %v", fr.FrameInfo, perr, ferr, cerr)
		}
	}
}

func TestScaled(t *testing.T) {
	for _, c := range []struct{ w, h, max, ww, wh int }{
		{1920, 1080, 1280, 1280, 720},
		{1080, 1920, 1280, 720, 1280},
		{640, 480, 1280, 640, 480},
		{5000, 1, 100, 100, 1},
		{640, 480, -1, 640, 480},
	} {
		if w, h := scaled(c.w, c.h, c.max); w != c.ww || h != c.wh {
			t.Errorf("scaled(%d, %d, %d) = %d, %d, want %d, %d", c.w, c.h, c.max, w, h, c.ww, c.wh)
		}
	}
}

func TestDescribeMeta(t *testing.T) {
	long := make([]byte, maxMetaText+10)
	for i := range long {
		long[i] = 'a'
	}
	long[maxMetaText-1] = 0xc3 // a two-byte rune across the cut
	long[maxMetaText] = 0xa9
	v := describeMeta(1, long)
	if v.Kind != "text" || !v.Truncated || len(v.Text) != maxMetaText-1 {
		t.Errorf("long text: kind %s truncated %v, %d bytes", v.Kind, v.Truncated, len(v.Text))
	}
	bin := make([]byte, maxMetaHex+1)
	if v := describeMeta(1, bin); v.Kind != "hex" || !v.Truncated {
		t.Errorf("long binary: %s %v", v.Kind, v.Truncated)
	}
	if v := describeMeta(1, []byte("tab\tand\nnewline")); v.Kind != "text" {
		t.Errorf("text with white space: %s", v.Kind)
	}
	if v := describeMeta(1, []byte("bell\a")); v.Kind != "hex" {
		t.Errorf("control character: %s", v.Kind)
	}
}
