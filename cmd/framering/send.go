package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/source"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/metrics"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// haveGocv reports whether this binary was built with -tags gocv.
const haveGocv = source.HaveOpenCV

type sendFlags struct {
	ring, dir          string
	image, pattern     string
	patternStyle       string
	format, size       string
	video              string
	camera             int
	stdin              bool
	fps                float64
	count              int
	slots              int
	metrics            string
	legacy             string
	perm               string
	remove             bool
	quiet              bool
	captureW, captureH int
}

var sendOpts sendFlags

var sendCmd = &cobra.Command{
	Use:   "send --ring NAME (--image FILE | --pattern WxHxC | --stdin --size WxHxC | --video FILE | --camera N)",
	Short: "Publish frames from an image, a test pattern, standard input, a video or a camera into a ring",
	Long: `send creates (or reopens) ring NAME and publishes frames into it from one
source:

  --image FILE       a PNG or JPEG file, decoded to BGR8 (OpenCV's order)
                     and published again and again
  --pattern WxHxC    a checkable test pattern (recv --verify checks it);
                     --format picks the pixel format (default by channels:
                     1 gray8, 2 yuyv, 3 bgr8, 4 bgra8)
  --stdin            raw frames of --size WxHxC and --format read from
                     standard input, back to back (ffmpeg -f rawvideo);
                     --fps defaults to 0, as fast as they come
  --video FILE       a video file, decoded by OpenCV (build with -tags gocv)
  --camera N         camera N, captured by OpenCV (build with -tags gocv)

It runs until --count frames are sent, the source ends, or SIGINT/SIGTERM,
then closes the writer (readers see it gone); --remove also unlinks the ring.
A stats line goes to stderr every second.`,
	Example: `  framering send --ring cam0 --pattern 640x480x3 --fps 30
  framering send --ring still --image photo.jpg --fps 5 --count 100 --remove
  ffmpeg -v error -f lavfi -i testsrc=size=640x480:rate=30 -pix_fmt bgr24 -f rawvideo - |
    framering send --ring cam0 --stdin --size 640x480x3 --format bgr8`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runSend(cmd, &sendOpts)
	},
}

func init() {
	f := sendCmd.Flags()
	o := &sendOpts
	f.StringVar(&o.ring, "ring", "", "ring name (required)")
	dirFlag(f, &o.dir)
	f.StringVar(&o.image, "image", "", "source: a PNG or JPEG `FILE`")
	f.StringVar(&o.pattern, "pattern", "", "source: a test pattern of `WxHxC` (width x height x channels)")
	f.BoolVar(&o.stdin, "stdin", false, "source: raw frames of --size and --format from standard input")
	f.StringVar(&o.size, "size", "", "with --stdin: the frames' `WxHxC` (width x height x channels)")
	f.StringVar(&o.patternStyle, "pattern-style", "stripes", "--pattern's look: stripes (checked byte for byte by the C and Python peers too) or visual (colour bars, a moving box, the frame number); recv --verify checks both")
	f.StringVar(&o.format, "format", "", "pixel format of --pattern or --stdin: gray8, bgr8, rgb8, bgra8, rgba8, gray16, yuyv, raw")
	f.StringVar(&o.video, "video", "", "source: a video `FILE` (gocv build)")
	f.IntVar(&o.camera, "camera", 0, "source: camera index `N` (gocv build)")
	f.IntVar(&o.captureW, "width", 0, "with --camera: requested capture width (0: the camera's default)")
	f.IntVar(&o.captureH, "height", 0, "with --camera: requested capture height (0: the camera's default)")
	f.Float64Var(&o.fps, "fps", 30, "frames per second (0: as fast as possible; --video defaults to its own rate, --stdin to 0)")
	f.IntVar(&o.count, "count", 0, "stop after N frames (0: until the source ends or SIGINT/SIGTERM)")
	f.IntVar(&o.slots, "slots", 8, "slot count of a new ring, a power of two >= 2")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics of the writer on `ADDR` (host:port)")
	f.StringVar(&o.legacy, "legacy", "", "also mirror every frame into the legacy 24-byte slot object `NAME` in --dir (e.g. mmaptest_shm)")
	f.StringVar(&o.perm, "perm", "0600", "permission bits of a new ring: 0600, 0640 (your group may read it) or 0660 (and write: readers must allow it)")
	f.BoolVar(&o.remove, "remove", false, "unlink the ring at exit (default: leave it for readers)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no stats line on stderr")
	root.AddCommand(sendCmd)
}

// sendMetaBytes is the metadata capacity of the rings send creates: the
// library's default is none, but send keeps the geometry it always had
// (and that the Python writer's default has), so that a ring send made and
// one another writer made are taken over in place, not rebuilt.
const sendMetaBytes = 4096

// checkFPS refuses a frame rate flag that is not a number >= 0.
func checkFPS(cmd string, fps float64) error {
	if source.CheckFPS(fps) != nil {
		return usagef("%s: --fps %v: give 0 (as fast as possible) or a number from %g up", cmd, fps, source.MinFPS)
	}
	return nil
}

// checkSlots refuses a slot count that is not a power of two in range.
func checkSlots(cmd string, slots int) error {
	if slots < layout.MinSlots || slots > layout.MaxSlots || slots&(slots-1) != 0 {
		return usagef("%s: --slots %d is not a power of two in [%d, %d]", cmd, slots, layout.MinSlots, layout.MaxSlots)
	}
	return nil
}

func runSend(cmd *cobra.Command, o *sendFlags) error {
	if o.ring == "" {
		return usagef("send: --ring NAME is required")
	}
	if err := ring.CheckName(o.ring); err != nil {
		return usagef("send: --ring: %w", err)
	}
	var given []string
	for _, name := range []string{"image", "pattern", "stdin", "video", "camera"} {
		if cmd.Flags().Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) != 1 {
		what := "none"
		if len(given) > 1 {
			what = strings.Join(given, " and ")
		}
		return usagef("send: give exactly one source (--image, --pattern, --stdin, --video or --camera), got %s", what)
	}
	switch {
	case o.format != "" && o.pattern == "" && !o.stdin:
		return usagef("send: --format applies to --pattern and --stdin only")
	case o.patternStyle != "stripes" && o.pattern == "":
		return usagef("send: --pattern-style applies to --pattern only")
	case o.size != "" && !o.stdin:
		return usagef("send: --size applies to --stdin only (--pattern takes its size)")
	case o.stdin && o.size == "":
		return usagef("send: --stdin needs --size WxHxC (and --format, unless the channels say it)")
	case o.stdin && term.IsTerminal(int(os.Stdin.Fd())):
		return usagef("send: --stdin: standard input is a terminal; pipe raw frames in (ffmpeg ... -f rawvideo - | framering send --stdin ...)")
	case o.count < 0:
		return usagef("send: --count must not be negative")
	}
	if err := checkFPS("send", o.fps); err != nil {
		return err
	}
	if err := checkSlots("send", o.slots); err != nil {
		return err
	}
	perm, err := strconv.ParseUint(o.perm, 8, 32)
	if err != nil || perm&^0o660 != 0 || perm&0o600 != 0o600 {
		return usagef("send: --perm %q: give 0600, 0640 or 0660 (octal; others never get access)", o.perm)
	}

	// Open the source before the ring, so bad input leaves nothing behind.
	src, err := openSource(o)
	if err != nil {
		return err
	}
	defer src.Close()
	fps := o.fps
	if !cmd.Flags().Changed("fps") {
		switch {
		case o.video != "":
			fps = src.FPS()
		case o.stdin:
			fps = 0
		}
	}

	ctx, stop := signalContext()
	defer stop()

	reg, stopMetrics, err := startMetrics(o.metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()

	shape := src.Shape()
	popts := producer.Options{Dir: o.dir, Slots: o.slots, MaxFrameBytes: shape.Len, MetaBytes: sendMetaBytes, Perm: os.FileMode(perm)}
	var mirror *legacy.Writer
	if o.legacy != "" {
		mirror, err = legacy.NewMirror(o.dir, o.legacy, legacy.MirrorOptions{MaxFrameBytes: shape.Width * shape.Height * 3})
		if err != nil {
			return fmt.Errorf("send --legacy: %w", err)
		}
		popts.Mirror = mirror
	}
	w, err := producer.Open(o.ring, popts)
	if err != nil {
		if mirror != nil {
			mirror.Close()
		}
		return err
	}
	closeWriter := func() error {
		var errs []error
		if o.remove {
			errs = append(errs, w.Remove())
		} else {
			errs = append(errs, w.Close())
		}
		if mirror != nil {
			if o.remove {
				errs = append(errs, mirror.Remove())
			} else {
				errs = append(errs, mirror.Close())
			}
		}
		return errors.Join(errs...)
	}
	if reg != nil {
		if err := metrics.RegisterWriter(reg, w); err != nil {
			closeWriter()
			return fmt.Errorf("send: metrics: %w", err)
		}
	}
	fmt.Fprintf(os.Stdout, "ring %q: %s, %d slots of %d bytes, generation %d, %s\n",
		o.ring, shapeString(shape), w.Geometry().Slots, w.Geometry().PayloadCap, w.Generation(), w.Path())

	ready := src.Ready
	if o.stdin {
		ready = interruptible(ctx, src.Ready)
	}
	sent, err := sendLoop(ctx, w, src, ready, fps, o.count, o.quiet)
	fmt.Fprintf(os.Stdout, "sent %d frames\n", sent)
	if mirror != nil {
		if merr := w.MirrorErr(); merr != nil {
			fmt.Fprintf(os.Stderr, "send --legacy: %d frames not mirrored, last: %v\n", w.Stats().MirrorErrors, merr)
		}
	}
	return errors.Join(err, closeWriter())
}

// openSource opens the one source the flags name.
func openSource(o *sendFlags) (source.Source, error) {
	switch {
	case o.pattern != "":
		src, err := source.Pattern(o.pattern, o.format, o.patternStyle)
		if err != nil {
			return nil, usagef("send: --pattern: %w", err)
		}
		return src, nil
	case o.stdin:
		fi, err := source.Shape(o.size, o.format)
		if err != nil {
			return nil, usagef("send: --size/--format: %w", err)
		}
		return source.Raw(os.Stdin, "standard input", fi)
	case o.image != "":
		return source.Image(o.image)
	case o.video != "":
		return source.Video(o.video)
	}
	return source.Camera(o.camera, o.captureW, o.captureH)
}

// interruptible runs ready (which blocks on input) on a goroutine of its
// own, so that the caller can give up when ctx ends. The goroutine stays
// blocked until input comes or the process exits; ready is never called
// twice at once.
func interruptible(ctx context.Context, ready func() error) func() error {
	req, res := make(chan struct{}), make(chan error, 1)
	go func() {
		for range req {
			res <- ready()
		}
	}()
	pending := false
	return func() error {
		if !pending {
			req <- struct{}{}
			pending = true
		}
		select {
		case err := <-res:
			pending = false
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendLoop publishes frames from src at fps (0: as fast as possible)
// until count frames (0: no limit), the source's end, or ctx ends. Each
// frame is filled in place: the source writes straight into the slot.
func sendLoop(ctx context.Context, w *producer.Writer, src source.Source, ready func() error, fps float64, count int, quiet bool) (int, error) {
	shape := src.Shape()
	pace := source.NewPacer(fps)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastN, lastT := 0, time.Now()
	n := 0
	for count == 0 || n < count {
		if pace.Wait(ctx) != nil {
			return n, nil
		}
		if err := ready(); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return n, nil
			}
			return n, err
		}
		l, err := w.Reserve(shape)
		if err != nil {
			return n, err
		}
		capture, err := src.Fill(l.Data(), l.Number())
		if err != nil {
			l.Abort()
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		l.SetCapture(capture)
		if err := l.Commit(); err != nil {
			return n, err
		}
		n++
		select {
		case now := <-tick.C:
			if !quiet {
				fmt.Fprintf(os.Stderr, "send %q: frame %d, %.1f fps\n", w.Name(), l.Number(), float64(n-lastN)/now.Sub(lastT).Seconds())
			}
			lastN, lastT = n, now
		default:
		}
	}
	return n, nil
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// startMetrics serves a fresh registry on addr ("" = no metrics). The
// address is bound before anything else is created, so a port in use
// leaves nothing behind.
func startMetrics(addr string) (*prometheus.Registry, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	reg := metrics.NewRegistry() // go_*, process_*, framering_build_info
	srv, bound, err := metrics.Serve(addr, reg)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics: %w", err) // metrics.Serve says what to do
	}
	fmt.Fprintf(os.Stderr, "metrics on http://%s/metrics\n", bound)
	return reg, func() { srv.Close() }, nil
}

func shapeString(fi ring.FrameInfo) string {
	if fi.Format == ring.Raw {
		return fmt.Sprintf("raw %d bytes", fi.Len)
	}
	return fmt.Sprintf("%dx%dx%d %v", fi.Width, fi.Height, fi.Channels, fi.Format)
}
