package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/framering/framering/ring"
)

// saveFrame writes f as DIR/NAME-<frame>.png.
func saveFrame(dir, name string, f *ring.Frame) error {
	img, err := frameImage(f)
	if err != nil {
		return fmt.Errorf("recv --save: frame %d: %w", f.Number, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%08d.png", name, f.Number))
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("recv --save: %w", err)
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return fmt.Errorf("recv --save: %s: %w", path, err)
	}
	return out.Close()
}

// frameImage converts a frame to an image.Image with the right colours:
// BGR8/BGRA8 are swapped to RGB, YUYV converted, Gray8/Gray16 kept.
func frameImage(f *ring.Frame) (image.Image, error) {
	w, h, st := f.Width, f.Height, f.Stride
	if f.Format != ring.Raw && (w <= 0 || h <= 0 || st*h > len(f.Data)) {
		return nil, fmt.Errorf("frame of %dx%d with stride %d does not fit its %d bytes", w, h, st, len(f.Data))
	}
	rect := image.Rect(0, 0, w, h)
	switch f.Format {
	case ring.Gray8:
		img := image.NewGray(rect)
		for y := 0; y < h; y++ {
			copy(img.Pix[y*img.Stride:y*img.Stride+w], f.Data[y*st:])
		}
		return img, nil
	case ring.Gray16:
		img := image.NewGray16(rect)
		for y := 0; y < h; y++ {
			src, dst := f.Data[y*st:], img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				dst[2*x], dst[2*x+1] = src[2*x+1], src[2*x] // little-endian -> big-endian
			}
		}
		return img, nil
	case ring.BGR8, ring.RGB8, ring.BGRA8, ring.RGBA8:
		c := f.Format.Channels()
		swap := f.Format == ring.BGR8 || f.Format == ring.BGRA8
		img := image.NewNRGBA(rect)
		for y := 0; y < h; y++ {
			src, dst := f.Data[y*st:], img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				p := src[c*x : c*x+c]
				r, g, b := p[0], p[1], p[2]
				if swap {
					r, b = b, r
				}
				a := byte(255)
				if c == 4 {
					a = p[3]
				}
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, b, a
			}
		}
		return img, nil
	case ring.YUYV:
		img := image.NewYCbCr(rect, image.YCbCrSubsampleRatio422)
		for y := 0; y < h; y++ {
			src := f.Data[y*st:]
			for x := 0; x < w; x++ {
				img.Y[y*img.YStride+x] = src[2*x]
			}
			for x := 0; x+1 < w; x += 2 {
				ci := y*img.CStride + x/2
				img.Cb[ci], img.Cr[ci] = src[2*x+1], src[2*x+3]
			}
			if w%2 == 1 { // a trailing half pair: reuse the previous chroma
				ci := y*img.CStride + w/2
				img.Cb[ci], img.Cr[ci] = 128, 128
				if w > 1 {
					img.Cb[ci], img.Cr[ci] = img.Cb[ci-1], img.Cr[ci-1]
				}
			}
		}
		return img, nil
	}
	return nil, fmt.Errorf("pixel format %v has no image form; only gray8, gray16, bgr8, rgb8, bgra8, rgba8 and yuyv can be shown or saved", f.Format)
}
