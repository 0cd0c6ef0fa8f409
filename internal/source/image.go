package source

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoder for Image
	_ "image/png"  // decoder for Image
	"os"

	"github.com/framering/framering/ring"
)

// imageSource publishes one decoded image again and again.
type imageSource struct {
	fi  ring.FrameInfo
	bgr []byte
}

// Image returns a source that publishes the PNG or JPEG file at path,
// decoded to packed BGR8 (OpenCV's channel order), as every frame. Errors
// wrap the file system's error, or [ErrUndecodable].
func Image(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	img, format, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w as PNG or JPEG (%v)", path, ErrUndecodable, err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("image %s: %w: the %s image is empty (%dx%d)", path, ErrUndecodable, format, w, h)
	}
	bgr := toBGR(img)
	return &imageSource{fi: ring.FrameInfo{Width: w, Height: h, Channels: 3, Format: ring.BGR8, Stride: 3 * w, Len: len(bgr)}, bgr: bgr}, nil
}

func (s *imageSource) Shape() ring.FrameInfo { return s.fi }
func (s *imageSource) Ready() error          { return nil }
func (s *imageSource) FPS() float64          { return 0 }
func (s *imageSource) Close() error          { return nil }

func (s *imageSource) Fill(buf []byte, n uint64) (int64, error) {
	copy(buf, s.bgr)
	return 0, nil
}

// toBGR converts any image to packed BGR8 rows (alpha dropped).
func toBGR(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]byte, w*h*3)
	// 8-bit RGBA layouts (premultiplied or not) share one loop: alpha is dropped.
	var rgba []uint8
	var stride int
	switch m := img.(type) {
	case *image.RGBA:
		rgba, stride = m.Pix, m.Stride
	case *image.NRGBA:
		rgba, stride = m.Pix, m.Stride
	}
	if rgba != nil {
		for y := 0; y < h; y++ {
			row := rgba[y*stride : y*stride+4*w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x+2], row[4*x+1], row[4*x]
			}
		}
		return out
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[x], row[x], row[x]
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o[3*x], o[3*x+1], o[3*x+2] = bb, g, r
			}
		}
	default:
		for y := 0; y < h; y++ {
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o[3*x], o[3*x+1], o[3*x+2] = c.B, c.G, c.R
			}
		}
	}
	return out
}
