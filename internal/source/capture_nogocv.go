//go:build !gocv

package source

import "fmt"

// HaveOpenCV reports whether this build has the video and camera sources
// (the gocv build tag).
const HaveOpenCV = false

// Video needs the gocv build tag: this build returns [ErrNoOpenCV].
func Video(path string) (Source, error) {
	return nil, fmt.Errorf("video %s: %w", path, ErrNoOpenCV)
}

// Camera needs the gocv build tag: this build returns [ErrNoOpenCV].
func Camera(index, width, height int) (Source, error) {
	return nil, fmt.Errorf("camera %d: %w", index, ErrNoOpenCV)
}
