package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/preview"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type viewFlags struct {
	ring, dir string
	http      string
	wait      bool
	timeout   time.Duration
	maxFPS    float64
	quality   int
	maxSide   int
}

var viewOpts viewFlags

var viewCmd = &cobra.Command{
	Use:   "view (--http ADDR [--ring NAME] | --ring NAME)",
	Short: "Watch rings live: a browser monitor of every ring (--http), or a window (gocv build)",
	Long: `view shows rings live.

With --http ADDR it serves a small monitor at http://ADDR/, with Go alone: an
index of every ring in --dir (writer state, rate, geometry, the newest
frame's shape and age, generation), and a page per ring at /view/NAME with
the newest frame scaled to the window, its metadata, counters (frames read,
skipped by the preview, lost by the ring; transport latency and preview
delay), pause and a PNG snapshot at full size. A ring is read only while a
page or stream watches it. --ring NAME opens that ring at once (--wait:
waits for it to appear) and prints its page's address. The JSON, JPEG,
MJPEG and PNG endpoints behind the pages are in docs/CLI.md.

Without --http, --ring NAME opens a window with an overlay; that needs a
build with -tags gocv and a display.

Frames in gray8, gray16, bgr8, rgb8, bgra8, rgba8 and yuyv are shown; raw
frames get a "not an image" panel with their first bytes.`,
	Example: `  framering view --http 127.0.0.1:8080              # every ring on this host
  framering view --http 127.0.0.1:8080 --ring cam0  # the same, and the address of cam0's page
  framering view --ring cam0                        # a window, gocv build`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runView(&viewOpts)
	},
}

func init() {
	f := viewCmd.Flags()
	o := &viewOpts
	f.StringVar(&o.ring, "ring", "", "the `NAME` of a ring: its page (with --http) or its window")
	f.StringVar(&o.dir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	f.StringVar(&o.http, "http", "", "serve the monitor on `ADDR` (host:port; port 0 picks a free one)")
	f.BoolVar(&o.wait, "wait", false, "wait for --ring to appear instead of failing")
	f.DurationVar(&o.timeout, "timeout", 0, "with --wait: fail if the ring does not appear within this long (0: forever)")
	f.Float64Var(&o.maxFPS, "max-fps", 25, "read and encode at most this many frames per second per ring (the newest one each time)")
	f.IntVar(&o.quality, "quality", 80, "JPEG quality of the pictures, 1 to 100")
	f.IntVar(&o.maxSide, "max-side", 1280, "scale pictures down to at most this many pixels on their longer side (0: full size)")
	root.AddCommand(viewCmd)
}

func runView(o *viewFlags) error {
	if o.http == "" && o.ring == "" {
		return usagef("view: give --http ADDR (a browser monitor of every ring) or --ring NAME (a window, gocv build)")
	}
	if o.ring != "" {
		if err := ring.CheckName(o.ring); err != nil {
			return usagef("view: --ring: %w", err)
		}
	}
	if o.maxFPS <= 0 || o.maxFPS > 1000 || o.quality < 1 || o.quality > 100 || o.maxSide < 0 {
		return usagef("view: --max-fps must be in (0, 1000], --quality in 1..100 and --max-side not negative")
	}
	ctx, stop := signalContext()
	defer stop()
	ropts := consumer.Options{Dir: o.dir, Mode: consumer.Latest}
	if o.http == "" {
		if !haveGocv {
			return runWindow(ctx, nil, o.ring) // says to use --http or build with gocv
		}
		r, err := openReader(ctx, o.ring, ropts, o.wait, o.timeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer r.Close()
		return runWindow(ctx, r, o.ring)
	}

	// Bind first: a port in use fails before anything else happens.
	ln, err := net.Listen("tcp", o.http)
	if err != nil {
		return fmt.Errorf("view --http: %w", err)
	}
	maxSide := o.maxSide
	if maxSide == 0 {
		maxSide = -1 // the package's "no limit"
	}
	srv, err := preview.New(preview.Options{Dir: o.dir, MaxFPS: o.maxFPS, Quality: o.quality, MaxSide: maxSide})
	if err != nil {
		ln.Close()
		return fmt.Errorf("view: %w; give the rings' directory with --dir", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	defer srv.Close() // first: ends the requests waiting for pictures
	base := "http://" + ln.Addr().String() + "/"

	if o.ring == "" {
		fmt.Fprintf(os.Stdout, "serving the rings in %s on %s\n", o.dir, base)
		<-ctx.Done()
		return nil
	}
	var r *consumer.Reader
	if !o.wait { // a missing ring fails before the address is printed
		if r, err = openReader(ctx, o.ring, ropts, false, 0); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stdout, "serving ring %q on %sview/%s (every ring: %s)\n", o.ring, base, o.ring, base)
	if r == nil {
		if r, err = openReader(ctx, o.ring, ropts, true, o.timeout); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if err := srv.Watch(r); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
