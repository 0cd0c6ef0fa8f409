package pattern

import (
	"bytes"
	"fmt"
	"image/color"
	"strconv"

	"github.com/framering/framering/ring"
)

// Style names a test pattern: the stripes of [Fill], or the [Card].
type Style int

const (
	// Stripes is the byte pattern of [Fill]: diagonal grey stripes, checked
	// byte for byte by [Check] and by the C and Python peers.
	Stripes Style = iota
	// Visual is the test card of [Card]: colour bars, a moving box and
	// the frame number, for a person watching a preview.
	Visual
)

// String returns the style's name as ParseStyle reads it.
func (s Style) String() string {
	switch s {
	case Stripes:
		return "stripes"
	case Visual:
		return "visual"
	}
	return "style(" + strconv.Itoa(int(s)) + ")"
}

// ParseStyle parses "stripes" or "visual".
func ParseStyle(s string) (Style, error) {
	switch s {
	case "stripes":
		return Stripes, nil
	case "visual":
		return Visual, nil
	}
	return 0, fmt.Errorf("pattern style %q: use stripes or visual", s)
}

// Card draws a test card a person can see move, as frame after frame of
// one image shape:
//
//   - eight colour bars (75 % white, yellow, cyan, green, magenta, red,
//     blue, black) over the top two thirds;
//   - below them a grey ramp that scrolls 4 levels per frame;
//   - a white box with a black border (a fifth of the shorter side) that
//     bounces across the whole frame;
//   - the frame number in white digits of a 3x5 bitmap font, on a black
//     panel at the bottom left, scaled with the frame's height.
//
// The card is converted to the frame's pixel format (gray8 and gray16 as
// luma, yuyv as JFIF YCbCr with the chroma of each pixel pair averaged);
// row padding is zero. It is as checkable as the stripes: the first
// [HeaderLen] bytes are the same header (frame number, CRC-32C of the
// rest, length), so [Verify] accepts a card, and [Card.Check] compares every
// byte with a regenerated card. The header overwrites the first 16 bytes of
// the top row: a few pixels of noise in the top-left corner.
//
// Everything is integer arithmetic: the same frame number and shape give
// the same bytes on every machine. A Card is not safe for concurrent use.
type Card struct {
	fi       ring.FrameInfo
	bpp      int    // bytes per pixel
	rowBytes int    // bytes of pixels in a row (the rest of the stride is padding)
	barsH    int    // rows of colour bars; the ramp fills the rest
	rgb      []byte // one row of RGB being drawn
	barsRGB  []byte // the bars row in RGB
	bars     []byte // the bars row in the frame's format
	ramp     []byte // the ramp row of the frame being drawn, in the frame's format
	rampRGB  []byte
	scratch  []byte // Check's regenerated frame
}

// The bars, left to right, at 75 %.
var barColours = [8][3]byte{
	{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0},
	{191, 0, 191}, {191, 0, 0}, {0, 0, 191}, {0, 0, 0},
}

// font is a 3x5 bitmap of the digits: five rows, bit 2 is the left column.
var font = [10][5]byte{
	{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
	{7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
}

// NewCard returns a card for frames of shape fi (width, height, format and
// stride; Meta is ignored). fi must describe an image (not Raw) of at least
// HeaderLen bytes.
func NewCard(fi ring.FrameInfo) (*Card, error) {
	fi.Meta = nil
	if err := fi.Normalize(); err != nil {
		return nil, fmt.Errorf("pattern card: %w", err)
	}
	if fi.Format == ring.Raw {
		return nil, fmt.Errorf("pattern card: %w: raw frames are not images; use the stripes", ring.ErrInvalidFrame)
	}
	if fi.Len < HeaderLen {
		return nil, fmt.Errorf("pattern card: %w: %dx%d %v is %d bytes, the header needs %d", ring.ErrInvalidFrame, fi.Width, fi.Height, fi.Format, fi.Len, HeaderLen)
	}
	c := &Card{fi: fi, bpp: fi.Channels * fi.Format.BytesPerSample()}
	c.rowBytes = fi.Width * c.bpp
	c.barsH = max(1, fi.Height*2/3)
	c.rgb = make([]byte, 3*fi.Width)
	c.barsRGB = make([]byte, 3*fi.Width)
	c.rampRGB = make([]byte, 3*fi.Width)
	c.bars = make([]byte, c.rowBytes)
	c.ramp = make([]byte, c.rowBytes)
	for x := 0; x < fi.Width; x++ {
		copy(c.barsRGB[3*x:], barColours[x*8/fi.Width][:])
	}
	c.encode(c.bars, c.barsRGB)
	return c, nil
}

// Info returns the normalized shape the card draws.
func (c *Card) Info() ring.FrameInfo { return c.fi }

// scene is what moves: where the box and the frame number are in frame n.
type scene struct {
	n                  uint64
	bx, by, bs, border int    // box
	px, py, pw, ph, k  int    // number panel and the font's scale
	digits             string // the frame number
}

func (c *Card) scene(n uint64) scene {
	w, h := c.fi.Width, c.fi.Height
	s := scene{n: n, bs: max(2, min(w, h)/5)}
	s.border = max(1, s.bs/8)
	s.bx = bounce(n*uint64(max(1, w/90)), w-s.bs)
	s.by = bounce(n*uint64(max(1, h/70)), h-s.bs)
	s.digits = strconv.FormatUint(n, 10)
	s.k = max(1, h/60)
	s.pw, s.ph = len(s.digits)*4*s.k+s.k, 7*s.k
	s.px, s.py = 0, h-s.ph
	return s
}

// bounce maps t to a position going 0..r and back.
func bounce(t uint64, r int) int {
	if r <= 0 {
		return 0
	}
	p := int(t % uint64(2*r))
	if p > r {
		p = 2*r - p
	}
	return p
}

// Fill draws frame n into dst, which must hold at least Info().Len bytes,
// and stamps the header.
func (c *Card) Fill(dst []byte, n uint64) {
	fi := &c.fi
	dst = dst[:fi.Len]
	sc := c.scene(n)
	shift := int(n % 64 * 4)
	for x := 0; x < fi.Width; x++ {
		v := byte(x*256/fi.Width + shift)
		c.rampRGB[3*x], c.rampRGB[3*x+1], c.rampRGB[3*x+2] = v, v, v
	}
	c.encode(c.ramp, c.rampRGB)
	for y := 0; y < fi.Height; y++ {
		row := dst[y*fi.Stride:]
		inBox := y >= sc.by && y < sc.by+sc.bs
		inPanel := y >= sc.py && y < sc.py+sc.ph
		switch {
		case inBox || inPanel:
			if y < c.barsH {
				copy(c.rgb, c.barsRGB)
			} else {
				copy(c.rgb, c.rampRGB)
			}
			c.overlay(&sc, y, inBox, inPanel)
			c.encode(row[:c.rowBytes], c.rgb)
		case y < c.barsH:
			copy(row, c.bars)
		default:
			copy(row, c.ramp)
		}
		clear(row[c.rowBytes:fi.Stride]) // Len is Stride*Height: every row has its padding
	}
	Stamp(dst, n)
}

// overlay draws the box and the number panel's parts on row y into c.rgb.
func (c *Card) overlay(sc *scene, y int, inBox, inPanel bool) {
	set := func(x int, v byte) {
		if x >= 0 && x < c.fi.Width {
			c.rgb[3*x], c.rgb[3*x+1], c.rgb[3*x+2] = v, v, v
		}
	}
	if inBox {
		edge := y < sc.by+sc.border || y >= sc.by+sc.bs-sc.border
		for x := sc.bx; x < sc.bx+sc.bs; x++ {
			if edge || x < sc.bx+sc.border || x >= sc.bx+sc.bs-sc.border {
				set(x, 0)
			} else {
				set(x, 255)
			}
		}
	}
	if inPanel {
		for x := sc.px; x < sc.px+sc.pw; x++ {
			set(x, 0)
		}
		fy := (y - sc.py - sc.k) // row inside the glyphs, in pixels
		if fy >= 0 && fy < 5*sc.k {
			fr := fy / sc.k
			for i, d := range sc.digits {
				bits := font[d-'0'][fr]
				x0 := sc.px + sc.k + i*4*sc.k
				for col := 0; col < 3; col++ {
					if bits&(4>>col) == 0 {
						continue
					}
					for x := x0 + col*sc.k; x < x0+(col+1)*sc.k; x++ {
						set(x, 255)
					}
				}
			}
		}
	}
}

// encode converts one row of RGB into the card's pixel format.
func (c *Card) encode(dst, rgb []byte) {
	w := c.fi.Width
	switch c.fi.Format {
	case ring.RGB8:
		copy(dst, rgb[:3*w])
	case ring.BGR8:
		for x := 0; x < w; x++ {
			dst[3*x], dst[3*x+1], dst[3*x+2] = rgb[3*x+2], rgb[3*x+1], rgb[3*x]
		}
	case ring.RGBA8:
		for x := 0; x < w; x++ {
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = rgb[3*x], rgb[3*x+1], rgb[3*x+2], 255
		}
	case ring.BGRA8:
		for x := 0; x < w; x++ {
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = rgb[3*x+2], rgb[3*x+1], rgb[3*x], 255
		}
	case ring.Gray8:
		for x := 0; x < w; x++ {
			dst[x] = luma(rgb[3*x:])
		}
	case ring.Gray16:
		for x := 0; x < w; x++ {
			v := uint16(luma(rgb[3*x:])) * 257
			dst[2*x], dst[2*x+1] = byte(v), byte(v>>8)
		}
	case ring.YUYV:
		for x := 0; x < w; x += 2 {
			p := rgb[3*x:]
			y0, _, _ := color.RGBToYCbCr(p[0], p[1], p[2])
			if x+1 == w { // odd width: the last pixel keeps its own Y and U
				_, cb, _ := color.RGBToYCbCr(p[0], p[1], p[2])
				dst[2*x], dst[2*x+1] = y0, cb
				break
			}
			q := rgb[3*x+3:]
			y1, _, _ := color.RGBToYCbCr(q[0], q[1], q[2])
			_, cb, cr := color.RGBToYCbCr(byte((int(p[0])+int(q[0]))/2), byte((int(p[1])+int(q[1]))/2), byte((int(p[2])+int(q[2]))/2))
			dst[2*x], dst[2*x+1], dst[2*x+2], dst[2*x+3] = y0, cb, y1, cr
		}
	}
}

// luma is the BT.601 luma of an RGB pixel, rounded.
func luma(p []byte) byte {
	return byte((77*int(p[0]) + 150*int(p[1]) + 29*int(p[2]) + 128) >> 8)
}

// Check verifies that b is exactly frame n of the card: header, checksum
// and every byte after the header.
func (c *Card) Check(b []byte, n uint64) error {
	if len(b) != c.fi.Len {
		return fmt.Errorf("pattern: frame of %d bytes, the %dx%d %v card has %d", len(b), c.fi.Width, c.fi.Height, c.fi.Format, c.fi.Len)
	}
	got, err := Verify(b)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("pattern: header says frame %d, want %d", got, n)
	}
	if c.scratch == nil {
		c.scratch = make([]byte, c.fi.Len)
	}
	c.Fill(c.scratch, n)
	if i := mismatch(b[HeaderLen:], c.scratch[HeaderLen:]); i >= 0 {
		off := HeaderLen + i
		return fmt.Errorf("pattern: frame %d differs from the card at byte %d (pixel %d,%d)", n, off, off%c.fi.Stride/c.bpp, off/c.fi.Stride)
	}
	return nil
}

// mismatch returns the first index where a and b (of equal length) differ,
// or -1.
func mismatch(a, b []byte) int {
	const chunk = 4096
	for i := 0; i < len(a); i += chunk {
		j := min(i+chunk, len(a))
		if bytes.Equal(a[i:j], b[i:j]) {
			continue
		}
		for k := i; k < j; k++ {
			if a[k] != b[k] {
				return k
			}
		}
	}
	return -1
}

// Checker checks frames of either style, as recv --verify does: a frame
// passes if it is exactly the stripes of its number, or exactly the card
// of its number and shape. It keeps the card of the last shape it saw.
// A Checker is not safe for concurrent use; the zero value is ready.
type Checker struct {
	card *Card
}

// Check verifies frame f (its Number, shape and Data).
func (k *Checker) Check(f *ring.Frame) error {
	serr := Check(f.Data, f.Number)
	if serr == nil {
		return nil
	}
	if _, err := Verify(f.Data); err != nil || f.Format == ring.Raw {
		return serr // a broken header or checksum: torn, corrupt or not a pattern at all
	}
	fi := ring.FrameInfo{Width: f.Width, Height: f.Height, Channels: f.Channels, Format: f.Format, Stride: f.Stride, Len: f.Len}
	if k.card == nil || !sameShape(&k.card.fi, &fi) {
		card, err := NewCard(fi)
		if err != nil {
			return serr
		}
		k.card = card
	}
	if cerr := k.card.Check(f.Data, f.Number); cerr != nil {
		return fmt.Errorf("%w; nor is it the card: %v", serr, cerr)
	}
	return nil
}

func sameShape(a, b *ring.FrameInfo) bool {
	return a.Width == b.Width && a.Height == b.Height && a.Channels == b.Channels &&
		a.Format == b.Format && a.Stride == b.Stride && a.Len == b.Len
}
