//go:build gocv

package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/cv"
	"github.com/framering/framering/ring"
	"gocv.io/x/gocv"
)

// runWindow shows the newest frames of r in an OpenCV window with an
// fps/latency/drops overlay until the window gets q or Esc, or ctx ends.
func runWindow(ctx context.Context, r *consumer.Reader, title string) error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return fmt.Errorf("view: no display (DISPLAY is not set); use --http 127.0.0.1:8080 to watch in a browser")
	}
	win := gocv.NewWindow("framering: " + title)
	defer win.Close()
	frame, shown := gocv.NewMat(), gocv.NewMat()
	defer frame.Close()
	defer shown.Close()
	sl := newStatsLine(r)
	var line string
	last := time.Now()
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		f, err := cv.ReadMat(rctx, r, &frame)
		cancel()
		switch {
		case err == nil:
			switch f.Format {
			case ring.RGB8:
				gocv.CvtColor(frame, &shown, gocv.ColorBGRToRGB) // the same swap both ways
			case ring.RGBA8:
				gocv.CvtColor(frame, &shown, gocv.ColorRGBAToBGR)
			case ring.BGRA8:
				gocv.CvtColor(frame, &shown, gocv.ColorBGRAToBGR)
			case ring.YUYV:
				gocv.CvtColor(frame, &shown, gocv.ColorYUVToBGRYUY2)
			case ring.Gray16:
				frame.ConvertToWithParams(&shown, gocv.MatTypeCV8UC1, 1.0/256, 0)
			default:
				frame.CopyTo(&shown)
			}
			if shown.Channels() == 1 {
				gocv.CvtColor(shown, &shown, gocv.ColorGrayToBGR)
			}
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, ring.ErrWriterGone):
			line = "writer gone"
		default:
			return err
		}
		if time.Since(last) >= 500*time.Millisecond {
			line = sl.next().String()
			last = time.Now()
		}
		if !shown.Empty() {
			gocv.PutText(&shown, line, image.Pt(10, 24), gocv.FontHersheySimplex, 0.6, color.RGBA{0, 0, 0, 255}, 4)
			gocv.PutText(&shown, line, image.Pt(10, 24), gocv.FontHersheySimplex, 0.6, color.RGBA{255, 255, 0, 255}, 1)
			win.IMShow(shown)
		}
		if k := win.WaitKey(1); k == 'q' || k == 27 {
			return nil
		}
	}
	return nil
}
