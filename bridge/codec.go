package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"io"
	"strings"

	"github.com/framering/framering/ring"
)

// Encoding is how a bridge carries a frame's data.
type Encoding uint8

// Encodings. Raw carries the bytes as they are (lossless, any pixel
// format); JPEG compresses gray8, bgr8, rgb8, bgra8 and rgba8 frames
// (lossy; alpha is not carried and arrives as 255).
const (
	Raw  Encoding = encRaw
	JPEG Encoding = encJPEG
)

const (
	encRaw  = 1
	encJPEG = 2
)

// ErrUnsupported is returned when a frame cannot be carried with the
// bridge's encoding (JPEG for a pixel format it cannot hold).
var ErrUnsupported = errors.New("pixel format not supported by the encoding")

func (e Encoding) String() string {
	switch e {
	case Raw:
		return "raw"
	case JPEG:
		return "jpeg"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// ParseEncoding parses "raw" or "jpeg".
func ParseEncoding(s string) (Encoding, error) {
	switch strings.ToLower(s) {
	case "raw":
		return Raw, nil
	case "jpeg", "jpg":
		return JPEG, nil
	}
	return 0, fmt.Errorf("unknown encoding %q: use raw or jpeg", s)
}

// jpegFormat reports whether JPEG can carry frames of format f.
func jpegFormat(f ring.PixelFormat) bool {
	switch f {
	case ring.Gray8, ring.BGR8, ring.RGB8, ring.BGRA8, ring.RGBA8:
		return true
	}
	return false
}

// jpegEncoder encodes frames, reusing its scratch image.
type jpegEncoder struct {
	quality int
	rgba    *image.RGBA
}

// encode writes f's data as JPEG to w.
func (e *jpegEncoder) encode(w io.Writer, f *frame) error {
	if !jpegFormat(f.format) {
		return fmt.Errorf("%w: JPEG cannot carry %v frames", ErrUnsupported, f.format)
	}
	rect := image.Rect(0, 0, f.width, f.height)
	var img image.Image
	switch f.format {
	case ring.Gray8:
		img = &image.Gray{Pix: f.data, Stride: f.stride, Rect: rect}
	case ring.RGBA8:
		img = &image.RGBA{Pix: f.data, Stride: f.stride, Rect: rect} // the encoder ignores alpha
	default:
		if e.rgba == nil || e.rgba.Rect != rect {
			e.rgba = image.NewRGBA(rect)
		}
		c := f.format.Channels()
		swap := f.format == ring.BGR8 || f.format == ring.BGRA8
		for y := 0; y < f.height; y++ {
			src := f.data[y*f.stride : y*f.stride+f.width*c]
			dst := e.rgba.Pix[y*e.rgba.Stride : y*e.rgba.Stride+4*f.width]
			for x, s := 0, 0; x < len(dst); x, s = x+4, s+c {
				r, g, b := src[s], src[s+1], src[s+2]
				if swap {
					r, b = b, r
				}
				dst[x], dst[x+1], dst[x+2], dst[x+3] = r, g, b, 255
			}
		}
		img = e.rgba
	}
	return jpeg.Encode(w, img, &jpeg.Options{Quality: e.quality})
}

// jpegDecoder decodes frames, reusing its scratch image.
type jpegDecoder struct {
	rgba *image.RGBA
}

// decode decodes JPEG data into dst (packed rows, h's format and shape).
// The stream's own dimensions are checked against h before any pixel is
// decoded, so a hostile stream cannot make it allocate more than h says.
func (d *jpegDecoder) decode(dst []byte, data []byte, h *header) (err error) {
	defer func() {
		if p := recover(); p != nil { // image/jpeg should not panic; never let input crash the receiver
			err = fmt.Errorf("JPEG decoder panicked: %v", p)
		}
	}()
	w, hh := int(h.width), int(h.height)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("JPEG header: %w", err)
	}
	if cfg.Width != w || cfg.Height != hh {
		return fmt.Errorf("JPEG of %dx%d, the frame header says %dx%d", cfg.Width, cfg.Height, w, hh)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("JPEG: %w", err)
	}
	rect := image.Rect(0, 0, w, hh)
	if img.Bounds() != rect {
		return fmt.Errorf("JPEG decoded to %v, want %v", img.Bounds(), rect)
	}
	if h.format == ring.Gray8 {
		g := &image.Gray{Pix: dst, Stride: w, Rect: rect}
		draw.Draw(g, rect, img, image.Point{}, draw.Src)
		return nil
	}
	c := h.format.Channels()
	if h.format == ring.RGBA8 || h.format == ring.BGRA8 {
		// Decode straight into dst, then swap in place for BGRA.
		m := &image.RGBA{Pix: dst, Stride: 4 * w, Rect: rect}
		draw.Draw(m, rect, img, image.Point{}, draw.Src)
		if h.format == ring.BGRA8 {
			for i := 0; i+3 < len(dst); i += 4 {
				dst[i], dst[i+2] = dst[i+2], dst[i]
			}
		}
		return nil
	}
	if d.rgba == nil || d.rgba.Rect != rect {
		d.rgba = image.NewRGBA(rect)
	}
	draw.Draw(d.rgba, rect, img, image.Point{}, draw.Src)
	swap := h.format == ring.BGR8
	src := d.rgba.Pix
	for s, o := 0, 0; s+3 < len(src) && o+c <= len(dst); s, o = s+4, o+c {
		r, g, b := src[s], src[s+1], src[s+2]
		if swap {
			r, b = b, r
		}
		dst[o], dst[o+1], dst[o+2] = r, g, b
	}
	return nil
}
