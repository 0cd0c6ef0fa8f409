package pattern

import (
	"fmt"
	"strings"
	"testing"

	"github.com/framering/framering/ring"
)

var cardShapes = []ring.FrameInfo{
	{Width: 640, Height: 480, Format: ring.BGR8},
	{Width: 97, Height: 61, Format: ring.RGB8},
	{Width: 64, Height: 48, Format: ring.BGRA8, Stride: 64*4 + 12},
	{Width: 33, Height: 17, Format: ring.RGBA8},
	{Width: 40, Height: 30, Format: ring.Gray8, Stride: 41},
	{Width: 40, Height: 30, Format: ring.Gray16},
	{Width: 64, Height: 36, Format: ring.YUYV},
	{Width: 31, Height: 9, Format: ring.YUYV}, // odd width: a lone last pixel
	{Width: 4, Height: 4, Format: ring.Gray8}, // all header
	{Width: 3, Height: 2, Format: ring.RGB8},
}

func TestCardFillCheck(t *testing.T) {
	for _, fi := range cardShapes {
		t.Run(fmt.Sprintf("%dx%d-%v", fi.Width, fi.Height, fi.Format), func(t *testing.T) {
			c, err := NewCard(fi)
			if err != nil {
				t.Fatal(err)
			}
			n := c.Info().Len
			b := make([]byte, n)
			for _, f := range []uint64{1, 2, 255, 256, 1234567} {
				c.Fill(b, f)
				if got, err := Verify(b); err != nil || got != f {
					t.Fatalf("frame %d: Verify = %d, %v", f, got, err)
				}
				if err := c.Check(b, f); err != nil {
					t.Fatalf("frame %d: %v", f, err)
				}
				if err := c.Check(b, f+1); err == nil {
					t.Fatalf("frame %d passed as %d", f, f+1)
				}
			}
			if n < 64 {
				return // a few bytes after the header, which two frames may share
			}
			// A card restamped with another number: the header and checksum
			// are right, the picture is not.
			c.Fill(b, 20)
			Stamp(b, 21)
			if err := c.Check(b, 21); err == nil || !strings.Contains(err.Error(), "differs from the card") {
				t.Fatalf("frame 20 restamped as 21: %v", err)
			}
			// One flipped bit: the checksum.
			c.Fill(b, 20)
			b[n-1] ^= 1
			if err := c.Check(b, 20); err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("flipped bit: %v", err)
			}
		})
	}
}

func TestNewCardRefuses(t *testing.T) {
	for _, fi := range []ring.FrameInfo{
		{Width: 100, Height: 1, Format: ring.Raw, Len: 100},
		{Width: 2, Height: 2, Format: ring.Gray8}, // 4 bytes: no room for the header
		{Width: 0, Height: 2, Format: ring.BGR8},
	} {
		if _, err := NewCard(fi); err == nil {
			t.Errorf("NewCard(%+v) accepted", fi)
		}
	}
}

// rgbAt reads pixel (x, y) of an rgb8 card.
func rgbAt(b []byte, fi ring.FrameInfo, x, y int) [3]byte {
	o := y*fi.Stride + 3*x
	return [3]byte{b[o], b[o+1], b[o+2]}
}

// readNumber decodes the digits of an rgb8 card's number panel.
func readNumber(t *testing.T, c *Card, b []byte) string {
	t.Helper()
	fi := c.Info()
	k := max(1, fi.Height/60)
	py := fi.Height - 7*k
	var s strings.Builder
	for i := 0; ; i++ {
		x0 := k + i*4*k
		if x0+3*k > fi.Width {
			break
		}
		var glyph [5]byte
		lit := false
		for r := 0; r < 5; r++ {
			for col := 0; col < 3; col++ {
				p := rgbAt(b, fi, x0+col*k+k/2, py+k+r*k+k/2)
				if p == [3]byte{255, 255, 255} {
					glyph[r] |= 4 >> col
					lit = true
				}
			}
		}
		if !lit {
			break
		}
		d := -1
		for j, g := range font {
			if g == glyph {
				d = j
			}
		}
		if d < 0 {
			t.Fatalf("digit %d of the panel is no digit: %v", i, glyph)
		}
		s.WriteByte(byte('0' + d))
	}
	return s.String()
}

// boxCentre finds the white interior of the box in an rgb8 card.
func boxCentre(c *Card, b []byte) (cx, cy, count int) {
	fi := c.Info()
	for y := 0; y < fi.Height; y++ {
		for x := 0; x < fi.Width; x++ {
			if y*fi.Stride+3*x < HeaderLen {
				continue
			}
			if y >= fi.Height-7*max(1, fi.Height/60) && x < 60 {
				continue // the number panel's white digits
			}
			if rgbAt(b, fi, x, y) == [3]byte{255, 255, 255} {
				cx, cy, count = cx+x, cy+y, count+1
			}
		}
	}
	if count > 0 {
		cx, cy = cx/count, cy/count
	}
	return
}

// TestCardShows checks what a person sees: the bars, the number and a box
// that moves.
func TestCardShows(t *testing.T) {
	c, err := NewCard(ring.FrameInfo{Width: 320, Height: 240, Format: ring.RGB8})
	if err != nil {
		t.Fatal(err)
	}
	fi := c.Info()
	b := make([]byte, fi.Len)
	c.Fill(b, 1000)
	// Bars: the row just above the ramp, away from the box and the panel.
	y := 240*2/3 - 1
	sc := c.scene(1000)
	for i, want := range barColours {
		x := i*40 + 20
		if x >= sc.bx && x < sc.bx+sc.bs && y >= sc.by && y < sc.by+sc.bs {
			continue
		}
		if got := rgbAt(b, fi, x, y); got != want {
			t.Errorf("bar %d at (%d,%d) = %v, want %v", i, x, y, got, want)
		}
	}
	for _, n := range []uint64{7, 1000, 98765} {
		c.Fill(b, n)
		if got := readNumber(t, c, b); got != fmt.Sprint(n) {
			t.Errorf("frame %d shows the number %q", n, got)
		}
	}
	c.Fill(b, 10)
	x1, y1, n1 := boxCentre(c, b)
	c.Fill(b, 11)
	x2, y2, n2 := boxCentre(c, b)
	if n1 == 0 || n1 != n2 {
		t.Fatalf("box interior of %d and %d pixels", n1, n2)
	}
	if x1 == x2 && y1 == y2 {
		t.Errorf("the box did not move from frame 10 to 11: centre (%d,%d)", x1, y1)
	}
}

// TestChecker checks that either style passes and anything else fails.
func TestChecker(t *testing.T) {
	fi := ring.FrameInfo{Width: 48, Height: 32, Format: ring.BGR8}
	card, err := NewCard(fi)
	if err != nil {
		t.Fatal(err)
	}
	fi = card.Info()
	var k Checker
	frame := func(n uint64, b []byte) *ring.Frame {
		return &ring.Frame{FrameInfo: fi, Number: n, Data: b}
	}
	stripes := make([]byte, fi.Len)
	Fill(stripes, 5)
	if err := k.Check(frame(5, stripes)); err != nil {
		t.Errorf("stripes: %v", err)
	}
	b := make([]byte, fi.Len)
	card.Fill(b, 5)
	if err := k.Check(frame(5, b)); err != nil {
		t.Errorf("card: %v", err)
	}
	if err := k.Check(frame(6, b)); err == nil {
		t.Error("card 5 passed as frame 6")
	}
	card.Fill(b, 9)
	Stamp(b, 5)
	if err := k.Check(frame(5, b)); err == nil || !strings.Contains(err.Error(), "nor is it the card") {
		t.Errorf("card 9 stamped as 5: %v", err)
	}
	// Another shape: the checker makes a new card.
	fi2 := ring.FrameInfo{Width: 20, Height: 10, Format: ring.Gray8}
	c2, _ := NewCard(fi2)
	b2 := make([]byte, c2.Info().Len)
	c2.Fill(b2, 3)
	if err := k.Check(&ring.Frame{FrameInfo: c2.Info(), Number: 3, Data: b2}); err != nil {
		t.Errorf("card of another shape: %v", err)
	}
}

func TestParseStyle(t *testing.T) {
	for _, s := range []Style{Stripes, Visual} {
		got, err := ParseStyle(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStyle(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseStyle("plaid"); err == nil {
		t.Error("ParseStyle accepted plaid")
	}
}

func BenchmarkCardFill(b *testing.B) {
	c, err := NewCard(ring.FrameInfo{Width: 1920, Height: 1080, Format: ring.BGR8})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, c.Info().Len)
	b.SetBytes(int64(len(buf)))
	var n uint64
	for b.Loop() {
		n++
		c.Fill(buf, n)
	}
}

func BenchmarkStripesFill(b *testing.B) {
	buf := make([]byte, 1920*1080*3)
	b.SetBytes(int64(len(buf)))
	var n uint64
	for b.Loop() {
		n++
		Fill(buf, n)
	}
}
