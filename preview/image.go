package preview

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"unicode"
	"unicode/utf8"

	"github.com/framering/framering/ring"
)

// errNotImage says a frame carries raw bytes, not pixels.
var errNotImage = errors.New("raw bytes, not an image")

// checkImage reports whether f's shape describes an image that lies within
// its Data. The shape comes from shared memory: the reader validated it
// against the ring's geometry, this checks what the conversion relies on.
func checkImage(f *ring.Frame) (bpp int, err error) {
	if f.Format == ring.Raw {
		return 0, errNotImage
	}
	if !f.Format.Valid() || f.Channels != f.Format.Channels() {
		return 0, fmt.Errorf("pixel format %v with %d channels cannot be shown", f.Format, f.Channels)
	}
	bpp = f.Channels * f.Format.BytesPerSample()
	w, h, st := f.Width, f.Height, f.Stride
	if w <= 0 || h <= 0 || st < w*bpp || int64(st)*int64(h-1)+int64(w*bpp) > int64(len(f.Data)) {
		return 0, fmt.Errorf("frame of %dx%d %v with stride %d does not fit its %d bytes", w, h, f.Format, st, len(f.Data))
	}
	return bpp, nil
}

// scaled returns the size of a w x h picture whose longer side is at most
// maxSide (0: no limit), keeping the aspect ratio.
func scaled(w, h, maxSide int) (int, int) {
	if maxSide <= 0 || max(w, h) <= maxSide {
		return w, h
	}
	if w >= h {
		return maxSide, max(1, int(int64(h)*int64(maxSide)/int64(w)))
	}
	return max(1, int(int64(w)*int64(maxSide)/int64(h))), maxSide
}

// display holds the picture buffers the pump reuses from frame to frame.
type display struct {
	rgba *image.RGBA
	gray *image.Gray
	xs   []int
}

// picture converts f for display: scaled down (nearest neighbour) so that
// neither side exceeds maxSide, gray formats as *image.Gray, everything
// else as opaque *image.RGBA (the forms image/jpeg encodes fastest).
// gray16 is stretched from the darkest to the brightest pixel shown; yuyv
// is converted as JFIF YCbCr. The image is d's until the next call.
func (d *display) picture(f *ring.Frame, maxSide int) (image.Image, error) {
	bpp, err := checkImage(f)
	if err != nil {
		return nil, err
	}
	w, h, st := f.Width, f.Height, f.Stride
	dw, dh := scaled(w, h, maxSide)
	if cap(d.xs) < dw {
		d.xs = make([]int, dw)
	}
	xs := d.xs[:dw]
	for x := range xs {
		xs[x] = int(int64(x) * int64(w) / int64(dw))
	}
	srcRow := func(y int) []byte { return f.Data[(int64(y)*int64(h)/int64(dh))*int64(st):] }
	rect := image.Rect(0, 0, dw, dh)

	switch f.Format {
	case ring.Gray8, ring.Gray16:
		if d.gray == nil || d.gray.Rect != rect {
			d.gray = image.NewGray(rect)
		}
		img := d.gray
		if f.Format == ring.Gray8 {
			for y := 0; y < dh; y++ {
				src, dst := srcRow(y), img.Pix[y*img.Stride:]
				for x, sx := range xs {
					dst[x] = src[sx]
				}
			}
			return img, nil
		}
		lo, hi := 0xffff, 0
		for y := 0; y < dh; y++ {
			src := srcRow(y)
			for _, sx := range xs {
				v := int(src[2*sx]) | int(src[2*sx+1])<<8
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		for y := 0; y < dh; y++ {
			src, dst := srcRow(y), img.Pix[y*img.Stride:]
			for x, sx := range xs {
				v := int(src[2*sx]) | int(src[2*sx+1])<<8
				if hi > lo {
					dst[x] = byte((v - lo) * 255 / (hi - lo))
				} else {
					dst[x] = byte(v >> 8)
				}
			}
		}
		return img, nil
	}

	if d.rgba == nil || d.rgba.Rect != rect {
		d.rgba = image.NewRGBA(rect)
	}
	img := d.rgba
	for y := 0; y < dh; y++ {
		src, dst := srcRow(y), img.Pix[y*img.Stride:]
		for x, sx := range xs {
			r, g, b := pixelRGB(f.Format, src, sx, w, bpp)
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, b, 255
		}
	}
	return img, nil
}

// pixelRGB returns the colour of pixel x of a row of an 8-bit colour
// format.
func pixelRGB(f ring.PixelFormat, row []byte, x, w, bpp int) (r, g, b byte) {
	p := row[x*bpp:]
	switch f {
	case ring.BGR8, ring.BGRA8:
		return p[2], p[1], p[0]
	case ring.RGB8, ring.RGBA8:
		return p[0], p[1], p[2]
	case ring.YUYV:
		pair := x &^ 1
		cb, cr := row[2*pair+1], byte(128)
		switch {
		case pair+1 < w:
			cr = row[2*pair+3]
		case pair >= 2: // odd width, the lone last pixel: the previous pair's V
			cr = row[2*pair-1]
		}
		return color.YCbCrToRGB(p[0], cb, cr)
	}
	return 0, 0, 0
}

// fullImage converts f at its own size for a PNG snapshot: exact for
// gray8 (Gray), gray16 (Gray16), bgr8 and rgb8 (opaque RGBA), bgra8 and
// rgba8 (NRGBA, alpha kept); yuyv is converted to RGB.
func fullImage(f *ring.Frame) (image.Image, error) {
	bpp, err := checkImage(f)
	if err != nil {
		return nil, err
	}
	w, h, st := f.Width, f.Height, f.Stride
	rect := image.Rect(0, 0, w, h)
	row := func(y int) []byte { return f.Data[y*st : y*st+w*bpp] }
	switch f.Format {
	case ring.Gray8:
		img := image.NewGray(rect)
		for y := 0; y < h; y++ {
			copy(img.Pix[y*img.Stride:], row(y))
		}
		return img, nil
	case ring.Gray16:
		img := image.NewGray16(rect)
		for y := 0; y < h; y++ {
			src, dst := row(y), img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				dst[2*x], dst[2*x+1] = src[2*x+1], src[2*x] // little-endian to big-endian
			}
		}
		return img, nil
	case ring.BGRA8, ring.RGBA8:
		img := image.NewNRGBA(rect)
		for y := 0; y < h; y++ {
			src, dst := row(y), img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				r, g, b := pixelRGB(f.Format, src, x, w, bpp)
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, b, src[4*x+3]
			}
		}
		return img, nil
	}
	img := image.NewRGBA(rect)
	for y := 0; y < h; y++ {
		src, dst := row(y), img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			r, g, b := pixelRGB(f.Format, src, x, w, bpp)
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, b, 255
		}
	}
	return img, nil
}

// Limits of what the metadata panel shows.
const (
	maxMetaText = 64 << 10
	maxMetaHex  = 4 << 10
	rawHeadHex  = 256
	// maxMetaHeader is the longest metadata description (JSON) sent with
	// a picture in its X-Frame-Meta header; longer ones are fetched.
	maxMetaHeader = 8 << 10
)

// MetaView is a frame's metadata as the page shows it.
type MetaView struct {
	Frame     uint64 `json:"frame"`
	Len       int    `json:"len"`       // bytes of metadata
	Kind      string `json:"kind"`      // none, json, text or hex
	Text      string `json:"text"`      // indented JSON, the text, or a hex dump
	Truncated bool   `json:"truncated"` // Text shows only the start
}

// describeMeta turns metadata into text: indented JSON if it is JSON,
// the text if it is printable UTF-8, a hex dump otherwise.
func describeMeta(n uint64, m []byte) MetaView {
	v := MetaView{Frame: n, Len: len(m), Kind: "none"}
	switch {
	case len(m) == 0:
	case printable(m):
		v.Kind, v.Text = "text", string(m)
		var ind bytes.Buffer
		if json.Valid(m) && json.Indent(&ind, m, "", "  ") == nil {
			v.Kind, v.Text = "json", ind.String()
		}
		if len(v.Text) > maxMetaText {
			cut := maxMetaText
			for cut > 0 && !utf8.RuneStart(v.Text[cut]) {
				cut--
			}
			v.Text, v.Truncated = v.Text[:cut], true
		}
	default:
		v.Kind = "hex"
		v.Text = hex.Dump(m[:min(len(m), maxMetaHex)])
		v.Truncated = len(m) > maxMetaHex
	}
	return v
}

// printable reports whether b is valid UTF-8 of printable characters and
// white space.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}
