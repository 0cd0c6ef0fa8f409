package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/metrics"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type recvFlags struct {
	ring, dir string
	mode      string
	count     int
	verify    bool
	save      string
	wait      bool
	timeout   time.Duration
	metrics   string
	asReader  string // --metrics-name
	spin      time.Duration
	eof       bool
	quiet     bool
}

var recvOpts recvFlags

var recvCmd = &cobra.Command{
	Use:   "recv --ring NAME",
	Short: "Read frames from a ring: check them, save them, count them",
	Long: `recv follows ring NAME and reads its frames: every frame in order (--mode
all, counting the frames it was lapped on) or the newest one (--mode latest).
It prints a stats line to stderr every second (fps, latency from publish to
delivery p50/p99, dropped frames) and a summary to stdout at exit.

--verify checks every frame against the test pattern of 'send --pattern'
and exits with status 1 if any frame does not match. --save writes every
frame as a PNG file. A ring that does not exist is an error unless --wait
is given. When the writer goes away recv waits for it to come back, or
exits with --eof.`,
	Example: `  framering recv --ring cam0 --verify --count 300
  framering recv --ring cam0 --mode latest --save /tmp/frames --count 10 --wait`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runRecv(&recvOpts)
	},
}

func init() {
	f := recvCmd.Flags()
	o := &recvOpts
	f.StringVar(&o.ring, "ring", "", "ring name (required)")
	f.StringVar(&o.dir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	f.StringVar(&o.mode, "mode", "all", "all: every frame in order; latest: the newest frame only")
	f.IntVar(&o.count, "count", 0, "stop after N frames (0: no limit)")
	f.BoolVar(&o.verify, "verify", false, "check every frame against the test pattern of 'send --pattern'; exit 1 on any mismatch")
	f.StringVar(&o.save, "save", "", "write every frame as a PNG file into `DIR`")
	f.BoolVar(&o.wait, "wait", false, "wait for the ring to appear instead of failing")
	f.DurationVar(&o.timeout, "timeout", 0, "fail if the ring does not appear (--wait) or no frame comes for this long (0: wait forever)")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics of the reader on `ADDR` (host:port)")
	f.StringVar(&o.asReader, "metrics-name", "recv", "the reader label of the --metrics series: reader=`NAME` (its role: detector, recorder)")
	f.DurationVar(&o.spin, "spin", 0, "busy-poll this long before sleeping (lower latency, one busy core)")
	f.BoolVar(&o.eof, "eof", false, "exit when the writer closes the ring or dies (default: wait for it to come back)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no stats line on stderr")
	root.AddCommand(recvCmd)
}

func parseMode(s string) (consumer.Mode, error) {
	switch s {
	case "all", "ordered":
		return consumer.Ordered, nil
	case "latest":
		return consumer.Latest, nil
	}
	return 0, usagef("recv: --mode %q: use all or latest", s)
}

// openReader opens ring name, waiting for it with wait (bounded by
// timeout when it is > 0).
func openReader(ctx context.Context, name string, opts consumer.Options, wait bool, timeout time.Duration) (*consumer.Reader, error) {
	if !wait {
		return consumer.Open(name, opts)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	r, err := consumer.OpenWait(ctx, name, opts)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("ring %q did not appear within %v in %s; start its producer or check --dir", name, timeout, opts.Dir)
	}
	return r, err
}

func runRecv(o *recvFlags) error {
	if o.ring == "" {
		return usagef("recv: --ring NAME is required")
	}
	if err := ring.CheckName(o.ring); err != nil {
		return usagef("recv: --ring: %w", err)
	}
	mode, err := parseMode(o.mode)
	if err != nil {
		return err
	}
	if o.count < 0 || o.timeout < 0 || o.spin < 0 {
		return usagef("recv: --count, --timeout and --spin must not be negative")
	}
	if o.save != "" {
		if err := os.MkdirAll(o.save, 0o755); err != nil {
			return fmt.Errorf("recv: --save: %w; give a directory you can write", err)
		}
	}
	ctx, stop := signalContext()
	defer stop()
	reg, stopMetrics, err := startMetrics(o.metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()

	r, err := openReader(ctx, o.ring, consumer.Options{Dir: o.dir, Mode: mode, Spin: o.spin}, o.wait, o.timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while waiting
		}
		return err
	}
	defer r.Close()
	if reg != nil {
		if err := metrics.RegisterReader(reg, o.asReader, r); err != nil {
			return fmt.Errorf("recv: metrics: %w", err)
		}
	}

	var (
		buf        = make([]byte, r.Geometry().PayloadCap)
		got        int
		mismatches int
		firstBad   error
		sl         = newStatsLine(r)
		tick       = time.NewTicker(time.Second)
	)
	defer tick.Stop()
	var readErr error
loop:
	for o.count == 0 || got < o.count {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		f, err := r.Read(rctx, buf)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			break loop
		case errors.Is(err, context.DeadlineExceeded):
			readErr = fmt.Errorf("ring %q: no frame for %v; is the producer running?", o.ring, o.timeout)
			break loop
		case errors.Is(err, ring.ErrWriterGone):
			if o.eof {
				fmt.Fprintf(os.Stderr, "recv: %v\n", err)
				break loop
			}
			fmt.Fprintf(os.Stderr, "recv: %v; waiting for it to come back (--eof exits instead)\n", err)
			continue
		default:
			readErr = err
			break loop
		}
		got++
		if o.verify {
			if err := pattern.Check(f.Data, f.Number); err != nil {
				mismatches++
				if firstBad == nil {
					firstBad = err
				}
				if mismatches <= 5 {
					fmt.Fprintf(os.Stderr, "recv: frame %d: %v\n", f.Number, err)
				}
			}
		}
		if o.save != "" {
			if err := saveFrame(o.save, o.ring, &f); err != nil {
				readErr = err
				break loop
			}
		}
		select {
		case <-tick.C:
			if !o.quiet {
				fmt.Fprintf(os.Stderr, "recv %q: %s\n", o.ring, sl.next().String())
			}
		default:
		}
	}
	st := r.Stats()
	summary := fmt.Sprintf("received %d frames, dropped %d, latency p50 %v p99 %v", got, st.Dropped(),
		fmtDur(st.Latency.Quantile(0.5)), fmtDur(st.Latency.Quantile(0.99)))
	if o.verify {
		summary += fmt.Sprintf(", verified %d, mismatches %d", got-mismatches, mismatches)
	}
	fmt.Fprintln(os.Stdout, summary)
	if readErr != nil {
		return readErr
	}
	if mismatches > 0 {
		return fmt.Errorf("recv --verify: %d of %d frames do not match the test pattern (first: %v); is the producer 'send --pattern'?", mismatches, got, firstBad)
	}
	return nil
}

// statsLine computes per-interval rates from a reader's cumulative stats.
type statsLine struct {
	r    *consumer.Reader
	prev consumer.Stats
	at   time.Time
}

type interval struct {
	FPS      float64 `json:"fps"`       // frames delivered per second
	RingFPS  float64 `json:"ring_fps"`  // frames published per second (delivered + dropped)
	P50us    float64 `json:"p50_us"`    // latency publish -> delivery, this interval
	P99us    float64 `json:"p99_us"`    //
	Dropped  uint64  `json:"dropped"`   // dropped since the reader opened
	Frame    uint64  `json:"frame"`     // last frame number considered
	WriterUp bool    `json:"writer_up"` // false while the writer is gone
}

func (iv interval) String() string {
	s := fmt.Sprintf("%.1f fps, latency p50 %v p99 %v, dropped %d, frame %d",
		iv.FPS, fmtDur(time.Duration(iv.P50us*1e3)), fmtDur(time.Duration(iv.P99us*1e3)), iv.Dropped, iv.Frame)
	if !iv.WriterUp {
		s += ", writer gone"
	}
	return s
}

func newStatsLine(r *consumer.Reader) *statsLine {
	return &statsLine{r: r, prev: r.Stats(), at: time.Now()}
}

func (s *statsLine) next() interval {
	now, cur := time.Now(), s.r.Stats()
	dt := now.Sub(s.at).Seconds()
	if dt <= 0 {
		dt = 1
	}
	delta := cur.Latency.Since(s.prev.Latency)
	iv := interval{
		FPS:      float64(cur.Delivered-s.prev.Delivered) / dt,
		RingFPS:  float64(cur.Delivered+cur.Dropped()-s.prev.Delivered-s.prev.Dropped()) / dt,
		P50us:    us(delta.Quantile(0.5)),
		P99us:    us(delta.Quantile(0.99)),
		Dropped:  cur.Dropped(),
		Frame:    cur.Last,
		WriterUp: cur.WriterUp,
	}
	s.prev, s.at = cur, now
	return iv
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// fmtDur rounds d for display.
func fmtDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

// saveFrame writes f as DIR/NAME-<frame>.png.
func saveFrame(dir, name string, f *ring.Frame) error {
	img, err := frameImage(f)
	if err != nil {
		return fmt.Errorf("recv --save: frame %d: %w", f.Number, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%08d.png", name, f.Number))
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("recv --save: %w", err)
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return fmt.Errorf("recv --save: %s: %w", path, err)
	}
	return out.Close()
}

// frameImage converts a frame to an image.Image with the right colours:
// BGR8/BGRA8 are swapped to RGB, YUYV converted, Gray8/Gray16 kept.
func frameImage(f *ring.Frame) (image.Image, error) {
	w, h, st := f.Width, f.Height, f.Stride
	if f.Format != ring.Raw && (w <= 0 || h <= 0 || st*h > len(f.Data)) {
		return nil, fmt.Errorf("frame of %dx%d with stride %d does not fit its %d bytes", w, h, st, len(f.Data))
	}
	rect := image.Rect(0, 0, w, h)
	switch f.Format {
	case ring.Gray8:
		img := image.NewGray(rect)
		for y := 0; y < h; y++ {
			copy(img.Pix[y*img.Stride:y*img.Stride+w], f.Data[y*st:])
		}
		return img, nil
	case ring.Gray16:
		img := image.NewGray16(rect)
		for y := 0; y < h; y++ {
			src, dst := f.Data[y*st:], img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				dst[2*x], dst[2*x+1] = src[2*x+1], src[2*x] // little-endian -> big-endian
			}
		}
		return img, nil
	case ring.BGR8, ring.RGB8, ring.BGRA8, ring.RGBA8:
		c := f.Format.Channels()
		swap := f.Format == ring.BGR8 || f.Format == ring.BGRA8
		img := image.NewNRGBA(rect)
		for y := 0; y < h; y++ {
			src, dst := f.Data[y*st:], img.Pix[y*img.Stride:]
			for x := 0; x < w; x++ {
				p := src[c*x : c*x+c]
				r, g, b := p[0], p[1], p[2]
				if swap {
					r, b = b, r
				}
				a := byte(255)
				if c == 4 {
					a = p[3]
				}
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, b, a
			}
		}
		return img, nil
	case ring.YUYV:
		img := image.NewYCbCr(rect, image.YCbCrSubsampleRatio422)
		for y := 0; y < h; y++ {
			src := f.Data[y*st:]
			for x := 0; x < w; x++ {
				img.Y[y*img.YStride+x] = src[2*x]
			}
			for x := 0; x+1 < w; x += 2 {
				ci := y*img.CStride + x/2
				img.Cb[ci], img.Cr[ci] = src[2*x+1], src[2*x+3]
			}
			if w%2 == 1 { // a trailing half pair: reuse the previous chroma
				ci := y*img.CStride + w/2
				img.Cb[ci], img.Cr[ci] = 128, 128
				if w > 1 {
					img.Cb[ci], img.Cr[ci] = img.Cb[ci-1], img.Cr[ci-1]
				}
			}
		}
		return img, nil
	}
	return nil, fmt.Errorf("pixel format %v has no image form; only gray8, gray16, bgr8, rgb8, bgra8, rgba8 and yuyv can be shown or saved", f.Format)
}
