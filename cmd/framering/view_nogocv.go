//go:build !gocv

package main

import (
	"context"
	"fmt"

	"github.com/framering/framering/consumer"
)

func runWindow(ctx context.Context, r *consumer.Reader, title string) error {
	return fmt.Errorf("view: no --http address and no window: this framering was built without OpenCV; use --http 127.0.0.1:8080 to watch in a browser, or rebuild with 'go build -tags gocv ./cmd/framering' for a window")
}
