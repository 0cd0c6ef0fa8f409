//go:build !gocv

package source

import (
	"errors"
	"testing"
)

func TestNoOpenCV(t *testing.T) {
	if _, err := Video("clip.avi"); !errors.Is(err, ErrNoOpenCV) {
		t.Errorf("Video: %v", err)
	}
	if _, err := Camera(0, 0, 0); !errors.Is(err, ErrNoOpenCV) {
		t.Errorf("Camera: %v", err)
	}
}
