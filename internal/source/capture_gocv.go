//go:build gocv

package source

import (
	"fmt"
	"io"
	"math"
	"os"

	"github.com/framering/framering/ring"
	"gocv.io/x/gocv"
)

// HaveOpenCV reports whether this build has the video and camera sources
// (the gocv build tag).
const HaveOpenCV = true

// matFormats are the Mat types a capture source publishes, with the pixel
// format OpenCV means by them.
var matFormats = map[gocv.MatType]ring.PixelFormat{
	gocv.MatTypeCV8UC1:  ring.Gray8,
	gocv.MatTypeCV8UC2:  ring.YUYV,
	gocv.MatTypeCV8UC3:  ring.BGR8,
	gocv.MatTypeCV8UC4:  ring.BGRA8,
	gocv.MatTypeCV16UC1: ring.Gray16,
}

// captureSource reads a video file or a camera with OpenCV straight into
// the buffer it fills: VideoCapture.Read decodes into a Mat over it.
type captureSource struct {
	vc    *gocv.VideoCapture
	what  string
	fi    ring.FrameInfo
	mt    gocv.MatType
	first gocv.Mat // the frame read to learn the shape, published first
	fps   float64
}

// Video returns a source that decodes the video file at path with OpenCV
// (its FFmpeg backend). FPS is the file's frame rate.
func Video(path string) (Source, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("video %s: %w", path, err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("video %s: OpenCV cannot open it; give a readable video file in a format OpenCV's FFmpeg backend decodes", path)
	}
	return newCapture(vc, "video "+path)
}

// Camera returns a source that captures camera index (/dev/videoN) with
// OpenCV, asking for width x height when they are not 0.
func Camera(index, width, height int) (Source, error) {
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
	return newCapture(vc, fmt.Sprintf("camera %d", index))
}

// newCapture reads one frame to learn the shape before the ring is
// opened.
func newCapture(vc *gocv.VideoCapture, what string) (*captureSource, error) {
	first := gocv.NewMat()
	if !vc.Read(&first) || first.Empty() {
		first.Close()
		vc.Close()
		return nil, fmt.Errorf("%s: opened, but no frame could be read from it; check that it is a video (or a working camera)", what)
	}
	f, ok := matFormats[first.Type()]
	if !ok {
		mt := first.Type()
		first.Close()
		vc.Close()
		return nil, fmt.Errorf("%s: %w: OpenCV delivers Mats of type %v, which have no framering pixel format", what, ring.ErrInvalidFrame, mt)
	}
	s := &captureSource{vc: vc, what: what, first: first, mt: first.Type(), fps: vc.Get(gocv.VideoCaptureFPS),
		fi: ring.FrameInfo{Width: first.Cols(), Height: first.Rows(), Format: f}}
	if err := s.fi.Normalize(); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if math.IsNaN(s.fps) || s.fps < 0 || s.fps > 1000 {
		s.fps = 0
	}
	return s, nil
}

func (s *captureSource) Shape() ring.FrameInfo { return s.fi }
func (s *captureSource) Ready() error          { return nil }
func (s *captureSource) FPS() float64          { return s.fps }

func (s *captureSource) Close() error {
	s.first.Close()
	return s.vc.Close()
}

func (s *captureSource) Fill(buf []byte, n uint64) (int64, error) {
	capture := ring.Now()
	m, err := gocv.NewMatFromBytes(s.fi.Height, s.fi.Width, s.mt, buf[:s.fi.Len])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.what, err)
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
	// OpenCV reallocates the Mat when the stream changes size or type
	// mid-way; then the pixels are not in buf.
	if d, err := m.DataPtrUint8(); err != nil || len(d) == 0 || &d[0] != &buf[0] {
		return 0, fmt.Errorf("%s: the frame is now %dx%d of %v, the ring holds %dx%d %v", s.what,
			m.Cols(), m.Rows(), m.Type(), s.fi.Width, s.fi.Height, s.fi.Format)
	}
	return capture, nil
}
