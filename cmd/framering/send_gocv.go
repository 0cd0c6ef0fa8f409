//go:build gocv

package main

import (
	"fmt"
	"io"
	"os"

	"github.com/framering/framering/cv"
	"github.com/framering/framering/ring"
	"gocv.io/x/gocv"
)

// haveGocv reports whether this binary was built with -tags gocv.
const haveGocv = true

// captureSource reads a video file or a camera with OpenCV, straight into
// the reserved slot: the Mat VideoCapture.Read fills aliases the slot.
type captureSource struct {
	vc    *gocv.VideoCapture
	what  string
	fi    ring.FrameInfo
	mt    gocv.MatType
	first gocv.Mat // the frame read to learn the shape, published first
	fps   float64
}

func openVideoSource(path string) (source, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("video %s: %w; give a readable video file", path, err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("video %s: OpenCV cannot open it; give a readable video file in a format OpenCV's FFmpeg backend decodes", path)
	}
	return newCaptureSource(vc, "video "+path)
}

func openCameraSource(index, width, height int) (source, error) {
	vc, err := gocv.VideoCaptureDevice(index)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("camera %d: OpenCV cannot open it (/dev/video%d missing or busy); list cameras with 'ls /dev/video*' and pick another --camera", index, index)
	}
	if width > 0 {
		vc.Set(gocv.VideoCaptureFrameWidth, float64(width))
	}
	if height > 0 {
		vc.Set(gocv.VideoCaptureFrameHeight, float64(height))
	}
	return newCaptureSource(vc, fmt.Sprintf("camera %d", index))
}

// newCaptureSource reads one frame to learn the shape before the ring is
// opened.
func newCaptureSource(vc *gocv.VideoCapture, what string) (*captureSource, error) {
	first := gocv.NewMat()
	if !vc.Read(&first) || first.Empty() {
		first.Close()
		vc.Close()
		return nil, fmt.Errorf("%s: opened, but no frame could be read from it; check that it is a video (or a working camera)", what)
	}
	f, err := cv.FormatOf(first.Type())
	if err != nil {
		first.Close()
		vc.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s := &captureSource{vc: vc, what: what, first: first, mt: first.Type(), fps: vc.Get(gocv.VideoCaptureFPS),
		fi: ring.FrameInfo{Width: first.Cols(), Height: first.Rows(), Format: f}}
	if err := s.fi.Normalize(); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if s.fps < 0 || s.fps > 1000 {
		s.fps = 0
	}
	return s, nil
}

func (s *captureSource) Shape() ring.FrameInfo { return s.fi }
func (s *captureSource) FPS() float64          { return s.fps }

func (s *captureSource) Close() error {
	s.first.Close()
	return s.vc.Close()
}

func (s *captureSource) Fill(buf []byte, n uint64) (int64, error) {
	capture := ring.Now()
	m, err := cv.MatOver(buf, s.fi.Height, s.fi.Width, s.mt, 0)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	if !s.first.Empty() {
		s.first.CopyTo(&m)
		s.first.Close()
		s.first = gocv.NewMat()
		return capture, nil
	}
	if !s.vc.Read(&m) || m.Empty() {
		return 0, io.EOF
	}
	if !cv.SameData(m, buf) {
		// The stream changed size or type mid-way: OpenCV reallocated.
		return 0, fmt.Errorf("%s: frame is now %dx%d of %v, the ring holds %dx%d %v", s.what,
			m.Cols(), m.Rows(), m.Type(), s.fi.Width, s.fi.Height, s.fi.Format)
	}
	return capture, nil
}
