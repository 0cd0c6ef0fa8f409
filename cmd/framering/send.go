package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoder for --image
	_ "image/png"  // decoder for --image
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/metrics"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

type sendFlags struct {
	ring, dir          string
	image, pattern     string
	format             string
	video              string
	camera             int
	fps                float64
	count              int
	slots              int
	metrics            string
	legacy             string
	remove             bool
	quiet              bool
	captureW, captureH int
}

var sendOpts sendFlags

var sendCmd = &cobra.Command{
	Use:   "send --ring NAME (--image FILE | --pattern WxHxC | --video FILE | --camera N)",
	Short: "Publish frames from an image, a test pattern, a video or a camera into a ring",
	Long: `send creates (or reopens) ring NAME and publishes frames into it from one
source:

  --image FILE       a PNG or JPEG file, decoded to BGR8 (OpenCV's order)
                     and published again and again
  --pattern WxHxC    a checkable test pattern (recv --verify checks it);
                     --format picks the pixel format (default by channels:
                     1 gray8, 2 yuyv, 3 bgr8, 4 bgra8)
  --video FILE       a video file, decoded by OpenCV (build with -tags gocv)
  --camera N         camera N, captured by OpenCV (build with -tags gocv)

It runs until --count frames are sent, the video ends, or SIGINT/SIGTERM,
then closes the writer (readers see it gone); --remove also unlinks the ring.
A stats line goes to stderr every second.`,
	Example: `  framering send --ring cam0 --pattern 640x480x3 --fps 30
  framering send --ring still --image photo.jpg --fps 5 --count 100 --remove`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runSend(cmd, &sendOpts)
	},
}

func init() {
	f := sendCmd.Flags()
	o := &sendOpts
	f.StringVar(&o.ring, "ring", "", "ring name (required)")
	f.StringVar(&o.dir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	f.StringVar(&o.image, "image", "", "source: a PNG or JPEG `FILE`")
	f.StringVar(&o.pattern, "pattern", "", "source: a test pattern of `WxHxC` (width x height x channels)")
	f.StringVar(&o.format, "format", "", "pixel format of --pattern: gray8, bgr8, rgb8, bgra8, rgba8, gray16, yuyv, raw")
	f.StringVar(&o.video, "video", "", "source: a video `FILE` (gocv build)")
	f.IntVar(&o.camera, "camera", 0, "source: camera index `N` (gocv build)")
	f.IntVar(&o.captureW, "width", 0, "with --camera: requested capture width (0: the camera's default)")
	f.IntVar(&o.captureH, "height", 0, "with --camera: requested capture height (0: the camera's default)")
	f.Float64Var(&o.fps, "fps", 30, "frames per second (0: as fast as possible; --video defaults to its own rate)")
	f.IntVar(&o.count, "count", 0, "stop after N frames (0: until the source ends or SIGINT/SIGTERM)")
	f.IntVar(&o.slots, "slots", 8, "slot count of a new ring, a power of two >= 2")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics of the writer on `ADDR` (host:port)")
	f.StringVar(&o.legacy, "legacy", "", "also mirror every frame into the legacy 24-byte slot object `NAME` in --dir (e.g. mmaptest_shm)")
	f.BoolVar(&o.remove, "remove", false, "unlink the ring at exit (default: leave it for readers)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no stats line on stderr")
	root.AddCommand(sendCmd)
}

// sendMetaBytes is the metadata capacity of the rings send creates: the
// library's default is none, but send keeps the geometry it always had
// (and that the Python writer's default has), so that a ring send made and
// one another writer made are taken over in place, not rebuilt.
const sendMetaBytes = 4096

// source produces frames for send. Fill writes frame n into buf (a
// reserved slot's payload, exactly Shape's Len bytes) and returns its
// capture time (CLOCK_MONOTONIC ns, 0: the publish time); io.EOF ends the
// stream.
type source interface {
	// Shape is the frames' shape, normalized, known before the ring is
	// opened; its payload length sizes the ring.
	Shape() ring.FrameInfo
	Fill(buf []byte, n uint64) (capture int64, err error)
	// FPS is the source's own rate (a video file's), or 0.
	FPS() float64
	Close() error
}

func runSend(cmd *cobra.Command, o *sendFlags) error {
	if o.ring == "" {
		return usagef("send: --ring NAME is required")
	}
	if err := ring.CheckName(o.ring); err != nil {
		return usagef("send: --ring: %w", err)
	}
	var given []string
	for _, name := range []string{"image", "pattern", "video", "camera"} {
		if cmd.Flags().Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) != 1 {
		what := "none"
		if len(given) > 1 {
			what = strings.Join(given, " and ")
		}
		return usagef("send: give exactly one source (--image, --pattern, --video or --camera), got %s", what)
	}
	if o.format != "" && o.pattern == "" {
		return usagef("send: --format applies to --pattern only")
	}
	if o.fps < 0 || o.count < 0 {
		return usagef("send: --fps and --count must not be negative")
	}
	if o.slots < layout.MinSlots || o.slots > layout.MaxSlots || o.slots&(o.slots-1) != 0 {
		return usagef("send: --slots %d is not a power of two in [%d, %d]", o.slots, layout.MinSlots, layout.MaxSlots)
	}

	// Open the source before the ring, so bad input leaves nothing behind.
	var src source
	var err error
	switch {
	case o.pattern != "":
		src, err = newPatternSource(o.pattern, o.format)
		if err != nil {
			return usagef("send: --pattern: %w", err)
		}
	case o.image != "":
		src, err = newImageSource(o.image)
	case o.video != "":
		src, err = openVideoSource(o.video)
	default:
		src, err = openCameraSource(o.camera, o.captureW, o.captureH)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	fps := o.fps
	if o.video != "" && !cmd.Flags().Changed("fps") {
		fps = src.FPS()
	}

	ctx, stop := signalContext()
	defer stop()

	reg, stopMetrics, err := startMetrics(o.metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()

	shape := src.Shape()
	popts := producer.Options{Dir: o.dir, Slots: o.slots, MaxFrameBytes: shape.Len, MetaBytes: sendMetaBytes}
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

	sent, err := sendLoop(ctx, w, src, shape, fps, o.count, o.quiet)
	fmt.Fprintf(os.Stdout, "sent %d frames\n", sent)
	if mirror != nil {
		if merr := w.MirrorErr(); merr != nil {
			fmt.Fprintf(os.Stderr, "send --legacy: %d frames not mirrored, last: %v\n", w.Stats().MirrorErrors, merr)
		}
	}
	return errors.Join(err, closeWriter())
}

// sendLoop publishes frames at fps (0: as fast as possible) until count
// frames (0: no limit), the source's end, or ctx ends.
func sendLoop(ctx context.Context, w *producer.Writer, src source, shape ring.FrameInfo, fps float64, count int, quiet bool) (int, error) {
	var period time.Duration
	if fps > 0 {
		period = time.Duration(float64(time.Second) / fps)
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastN int
	lastT := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	n := 0
	for count == 0 || n < count {
		if period > 0 {
			if d := time.Until(start.Add(time.Duration(n) * period)); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return n, nil
				case <-timer.C:
				}
			}
		}
		if ctx.Err() != nil {
			return n, nil
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
				dt := now.Sub(lastT).Seconds()
				fmt.Fprintf(os.Stderr, "send %q: frame %d, %.1f fps\n", w.Name(), l.Number(), float64(n-lastN)/dt)
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

// patternSource fills every frame with internal/pattern for its number.
type patternSource struct{ fi ring.FrameInfo }

func newPatternSource(size, format string) (*patternSource, error) {
	w, h, c, err := ring.ParseSize(size)
	if err != nil {
		return nil, err
	}
	f := ring.FormatForChannels(c)
	if format != "" {
		if f, err = ring.ParsePixelFormat(format); err != nil {
			return nil, err
		}
		if f != ring.Raw && f.Channels() != c {
			return nil, fmt.Errorf("%w: format %v has %d channels, the size %q says %d", ring.ErrInvalidFrame, f, f.Channels(), size, c)
		}
	}
	fi := ring.FrameInfo{Width: w, Height: h, Format: f}
	if f == ring.Raw {
		fi.Len = w * h * c
	}
	if err := fi.Normalize(); err != nil {
		return nil, err
	}
	if fi.Len < pattern.HeaderLen {
		return nil, fmt.Errorf("%w: %q is %d bytes; the test pattern needs at least %d", ring.ErrInvalidFrame, size, fi.Len, pattern.HeaderLen)
	}
	return &patternSource{fi: fi}, nil
}

func (p *patternSource) Shape() ring.FrameInfo { return p.fi }
func (p *patternSource) FPS() float64          { return 0 }
func (p *patternSource) Close() error          { return nil }
func (p *patternSource) Fill(buf []byte, n uint64) (int64, error) {
	pattern.Fill(buf, n)
	return 0, nil
}

// imageSource publishes one decoded image again and again.
type imageSource struct {
	fi  ring.FrameInfo
	bgr []byte
}

func newImageSource(path string) (*imageSource, error) {
	w, h, bgr, err := loadImageBGR(path)
	if err != nil {
		return nil, err
	}
	return &imageSource{fi: ring.FrameInfo{Width: w, Height: h, Channels: 3, Format: ring.BGR8, Stride: 3 * w, Len: len(bgr)}, bgr: bgr}, nil
}

func (s *imageSource) Shape() ring.FrameInfo { return s.fi }
func (s *imageSource) FPS() float64          { return 0 }
func (s *imageSource) Close() error          { return nil }
func (s *imageSource) Fill(buf []byte, n uint64) (int64, error) {
	copy(buf, s.bgr)
	return 0, nil
}

// loadImageBGR decodes a PNG or JPEG file into packed BGR8 rows.
func loadImageBGR(path string) (w, h int, bgr []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("image %s: %w; give a readable PNG or JPEG file", path, err)
	}
	defer f.Close()
	img, format, err := image.Decode(f)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("image %s: cannot decode it (%v); give a PNG or JPEG file", path, err)
	}
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return 0, 0, nil, fmt.Errorf("image %s: %s image is empty (%dx%d)", path, format, w, h)
	}
	return w, h, imageToBGR(img), nil
}

// imageToBGR converts any image to packed BGR8 (alpha dropped).
func imageToBGR(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]byte, w*h*3)
	// 8-bit RGBA layouts (premultiplied or not) share one loop: alpha is dropped.
	var rgba []uint8
	var stride int
	switch m := img.(type) {
	case *image.RGBA:
		rgba, stride = m.Pix, m.Stride
	case *image.NRGBA:
		rgba, stride = m.Pix, m.Stride
	}
	if rgba != nil {
		for y := 0; y < h; y++ {
			row := rgba[y*stride : y*stride+4*w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x+2], row[4*x+1], row[4*x]
			}
		}
		return out
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[x], row[x], row[x]
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o[3*x], o[3*x+1], o[3*x+2] = bb, g, r
			}
		}
	default:
		for y := 0; y < h; y++ {
			o := out[y*w*3:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o[3*x], o[3*x+1], o[3*x+2] = c.B, c.G, c.R
			}
		}
	}
	return out
}
