//go:build !gocv

package main

import "fmt"

// haveGocv reports whether this binary was built with -tags gocv.
const haveGocv = false

// errNoGocv says how to get what needs OpenCV.
func errNoGocv(what string) error {
	return fmt.Errorf("%s needs OpenCV: this framering was built without it; rebuild with 'go build -tags gocv ./cmd/framering' (needs libopencv-dev 4.6)", what)
}

func openVideoSource(path string) (source, error) { return nil, errNoGocv("--video") }

func openCameraSource(index, width, height int) (source, error) {
	return nil, errNoGocv("--camera")
}
