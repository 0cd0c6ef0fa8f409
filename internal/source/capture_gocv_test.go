//go:build gocv

package source

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/framering/framering/ring"
	"gocv.io/x/gocv"
)

// TestVideo decodes an MJPG file OpenCV wrote, frame by frame, into a
// buffer, and checks the shape, the rate and each frame's colour.
func TestVideo(t *testing.T) {
	const n, rows, cols = 6, 40, 56
	path := filepath.Join(t.TempDir(), "clip.avi")
	vw, err := gocv.VideoWriterFile(path, "MJPG", 25, cols, rows, true)
	if err != nil || !vw.IsOpened() {
		t.Skipf("OpenCV cannot write an MJPG AVI here (%v)", err)
	}
	for i := 0; i < n; i++ {
		m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(40*i), 80, 160, 0), rows, cols, gocv.MatTypeCV8UC3)
		vw.Write(m)
		m.Close()
	}
	vw.Close()

	s, err := Video(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi := s.Shape()
	if fi.Width != cols || fi.Height != rows || fi.Format != ring.BGR8 || fi.Len != rows*cols*3 {
		t.Fatalf("shape %+v", fi)
	}
	if s.FPS() != 25 {
		t.Errorf("FPS %g, want 25", s.FPS())
	}
	buf := make([]byte, fi.Len)
	for i := 0; i < n; i++ {
		if _, err := s.Fill(buf, uint64(i+1)); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
		// MJPG is lossy: the centre pixel is near the colour written.
		c := buf[(rows/2*cols+cols/2)*3:]
		if d := int(c[0]) - 40*i; d < -12 || d > 12 || c[1] < 68 || c[1] > 92 || c[2] < 148 || c[2] > 172 {
			t.Errorf("frame %d: centre pixel BGR %v, written %d,80,160", i+1, c[:3], 40*i)
		}
	}
	if _, err := s.Fill(buf, n+1); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestVideoAndCameraErrors(t *testing.T) {
	if _, err := Video(filepath.Join(t.TempDir(), "nope.avi")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing video: %v", err)
	}
	if _, err := Camera(99, 0, 0); err == nil || !strings.Contains(err.Error(), "camera 99") {
		t.Errorf("absent camera: %v", err)
	}
}
