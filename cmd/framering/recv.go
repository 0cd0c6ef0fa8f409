package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/metrics"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type recvFlags struct {
	ring, dir          string
	mode, start        string
	count              int
	verify             bool
	save               string
	stdout, json       bool
	wait               bool
	timeout            time.Duration
	metrics            string
	asReader           string // --metrics-name
	spin               time.Duration
	eof                bool
	quiet              bool
	allowOtherOwner    bool
	allowGroupWritable bool
}

var recvOpts recvFlags

var recvCmd = &cobra.Command{
	Use:   "recv --ring NAME",
	Short: "Read frames from a ring: check them, save them, count them, pipe them",
	Long: `recv follows ring NAME and reads its frames: every frame in order (--mode
all, counting the frames it was lapped on) or the newest one (--mode latest),
from the newest frame in the ring at start, the next one, or the oldest one
(--start). It prints a stats line to stderr every second (fps, latency from
publish to delivery p50/p99, dropped frames) and at exit a summary and a
line 'summary key=value ...' for programs (--json: one JSON object instead).

--verify checks every frame against the test pattern of 'send --pattern'
and exits with status 1 if any frame does not match. --save writes every
frame as a PNG file. --stdout writes every frame's pixels to standard output,
back to back (ffmpeg -f rawvideo -i -); nothing else goes there then, the
summary goes to stderr. A ring that does not exist is an error unless --wait
is given. When the writer goes away recv waits for it to come back, or
exits with --eof. A ring truncated under recv is re-opened when a writer
replaces it.`,
	Example: `  framering recv --ring cam0 --verify --count 300
  framering recv --ring cam0 --mode latest --save /tmp/frames --count 10 --wait
  framering recv --ring cam0 --stdout --start oldest -q | ffplay -f rawvideo -pixel_format bgr24 -video_size 640x480 -`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runRecv(&recvOpts)
	},
}

func init() {
	f := recvCmd.Flags()
	o := &recvOpts
	f.StringVar(&o.ring, "ring", "", "ring name (required)")
	dirFlag(f, &o.dir)
	f.StringVar(&o.mode, "mode", "all", "all: every frame in order; latest: the newest frame only")
	f.StringVar(&o.start, "start", "newest", "where reading begins: newest (the newest frame at start), next (frames after start) or oldest (the oldest in the ring)")
	f.IntVar(&o.count, "count", 0, "stop after N frames (0: no limit)")
	f.BoolVar(&o.verify, "verify", false, "check every frame against the test pattern of 'send --pattern'; exit 1 on any mismatch")
	f.StringVar(&o.save, "save", "", "write every frame as a PNG file into `DIR`")
	f.BoolVar(&o.stdout, "stdout", false, "write every frame's pixels to standard output (raw, back to back); the summary goes to stderr")
	f.BoolVar(&o.json, "json", false, "print the summary as one JSON object (field names in docs/CLI.md)")
	f.BoolVar(&o.wait, "wait", false, "wait for the ring to appear instead of failing")
	f.DurationVar(&o.timeout, "timeout", 0, "fail if the ring does not appear (--wait) or no frame comes for this long (0: wait forever)")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics of the reader on `ADDR` (host:port)")
	f.StringVar(&o.asReader, "metrics-name", "recv", "the reader label of the --metrics series: reader=`NAME` (its role: detector, recorder)")
	f.DurationVar(&o.spin, "spin", 0, "busy-poll this long before sleeping (lower latency, one busy core)")
	f.BoolVar(&o.eof, "eof", false, "exit when the writer closes the ring or dies (default: wait for it to come back)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no stats line on stderr")
	f.BoolVar(&o.allowOtherOwner, "allow-other-owner", false, "read a ring owned by another user (one its producer made group-readable for you)")
	f.BoolVar(&o.allowGroupWritable, "allow-group-writable", false, "read a ring its owner's group may write (mode 0660)")
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

func parseStart(s string) (consumer.Position, error) {
	switch s {
	case "newest":
		return consumer.Newest, nil
	case "next":
		return consumer.Next, nil
	case "oldest":
		return consumer.Oldest, nil
	}
	return 0, usagef("recv: --start %q: use newest, next or oldest", s)
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

// recoverPause is how long recv waits before reading again after an error
// the next read may recover from (a truncated ring, a corrupt slot), so
// that a ring that stays broken is not probed in a busy loop.
const recoverPause = 100 * time.Millisecond

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
	start, err := parseStart(o.start)
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
	// Results go to stdout, unless stdout carries the frames.
	report := io.Writer(os.Stdout)
	var sink *rawSink
	if o.stdout {
		report, sink = os.Stderr, newRawSink(os.Stdout)
		// A closed pipe gives EPIPE (a clean end) instead of killing recv.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	}
	ctx, stop := signalContext()
	defer stop()
	reg, stopMetrics, err := startMetrics(o.metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()

	ropts := consumer.Options{Dir: o.dir, Mode: mode, StartAt: start, Spin: o.spin,
		AllowOtherOwner: o.allowOtherOwner, AllowGroupWritable: o.allowGroupWritable}
	r, err := openReader(ctx, o.ring, ropts, o.wait, o.timeout)
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
		checker    pattern.Checker // either style of send --pattern
		sl         = newStatsLine(r)
		tick       = time.NewTicker(time.Second)
		lastFrame  = time.Now()
		failing    bool // the previous read failed with a recoverable error
		readErr    error
	)
	defer tick.Stop()
loop:
	for o.count == 0 || got < o.count {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			rctx, cancel = context.WithDeadline(ctx, lastFrame.Add(o.timeout))
		}
		f, err := r.Read(rctx, buf)
		cancel()
		switch {
		case err == nil:
			lastFrame, failing = time.Now(), false
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
		case errors.Is(err, ring.ErrTruncated), errors.Is(err, ring.ErrCorrupt):
			if !failing { // said once per outage
				fmt.Fprintf(os.Stderr, "recv: %s\n", withAdvice(err))
			} else { // again: do not probe a broken ring in a busy loop
				select {
				case <-ctx.Done():
					break loop
				case <-time.After(recoverPause):
				}
			}
			failing = true
			if o.timeout > 0 && time.Since(lastFrame) > o.timeout {
				readErr = fmt.Errorf("ring %q: no frame for %v: %w", o.ring, o.timeout, err)
				break loop
			}
			continue
		default:
			readErr = err
			break loop
		}
		buf = f.Data[:cap(f.Data)] // Read grows the buffer for a larger writer
		got++
		if o.verify {
			if err := checker.Check(&f); err != nil {
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
		if sink != nil {
			if err := sink.write(&f); err != nil {
				if errors.Is(err, syscall.EPIPE) {
					fmt.Fprintf(os.Stderr, "recv: standard output was closed (the program reading it exited): stopping\n")
				} else {
					readErr = err
				}
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
	sum := newRecvSummary(o, r.Stats(), got, mismatches)
	if o.json {
		writeJSON(report, sum)
	} else {
		fmt.Fprintln(report, sum.human(o.verify))
		fmt.Fprintln(report, sum.line())
	}
	if readErr != nil {
		return readErr
	}
	if mismatches > 0 {
		return fmt.Errorf("recv --verify: %d of %d frames do not match the test pattern (first: %v); is the producer 'send --pattern'?", mismatches, got, firstBad)
	}
	return nil
}

// rawSink writes frames' pixels to a stream, packed rows back to back, the
// form of ffmpeg's rawvideo. The frames' shape may not change: raw video
// has no framing to say so.
type rawSink struct {
	w      io.Writer
	first  *ring.FrameInfo
	packed []byte
}

func newRawSink(w io.Writer) *rawSink { return &rawSink{w: w} }

func (s *rawSink) write(f *ring.Frame) error {
	if s.first == nil {
		fi := f.FrameInfo
		s.first = &fi
	} else if f.Width != s.first.Width || f.Height != s.first.Height || f.Format != s.first.Format || f.Len != s.first.Len {
		return fmt.Errorf("recv --stdout: frame %d is %s, the frames before it were %s: raw output cannot change shape; stopping",
			f.Number, shapeString(f.FrameInfo), shapeString(*s.first))
	}
	data := f.Data[:f.Len]
	if row := f.Width * f.Format.Channels() * f.Format.BytesPerSample(); f.Format != ring.Raw && f.Stride > row {
		s.packed = s.packed[:0]
		for y := 0; y < f.Height; y++ {
			s.packed = append(s.packed, f.Data[y*f.Stride:y*f.Stride+row]...)
		}
		data = s.packed
	}
	if _, err := s.w.Write(data); err != nil {
		return fmt.Errorf("recv --stdout: frame %d: %w", f.Number, err)
	}
	return nil
}
