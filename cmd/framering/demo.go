package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/proc"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// demoOpts are the demo's flags, passed on to its child processes.
type demoOpts struct {
	duration time.Duration
	size     string
	fps      float64
	readers  int
	slots    int
	dir      string
	ring     string
}

func init() {
	var o demoOpts
	demo := &cobra.Command{
		Use:   "demo",
		Short: "Run one writer and several readers as separate processes and report what they saw",
		Long: `demo starts a writer and --readers readers as separate processes on one ring.
The writer publishes a checkable test pattern at --fps; every reader checks
every frame it accepts word by word. Odd readers read every frame in order
by copy; even readers take the latest frame as a zero-copy view. A line per
second shows progress; a closing table shows, per reader, frames delivered
and dropped, torn frames accepted (always 0) and latency p50/p99.`,
		Example: "  framering demo\n  framering demo --duration 5s --size 1920x1080x3 --fps 60 --readers 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, _, err := ring.ParseSize(o.size); err != nil {
				return usagef("--size: %w", err)
			}
			if o.readers < 1 || o.readers > 16 {
				return usagef("--readers %d: give 1 to 16", o.readers)
			}
			if o.fps < 0 || o.duration <= 0 {
				return usagef("--fps must be >= 0 and --duration > 0")
			}
			return runDemo(cmd.OutOrStdout(), o)
		},
	}
	f := demo.Flags()
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long the writer publishes")
	f.StringVar(&o.size, "size", "640x404x3", "frame size WxHxC (C: 1, 3 or 4)")
	f.Float64Var(&o.fps, "fps", 30, "frames per second; 0 = as fast as possible")
	f.IntVar(&o.readers, "readers", 2, "number of reader processes")
	f.IntVar(&o.slots, "slots", 8, "ring slots (a power of two >= 2)")
	f.StringVar(&o.dir, "dir", "", "shared-memory directory (default /dev/shm)")
	root.AddCommand(demo)

	worker := &cobra.Command{
		Use:    "demo-worker ROLE",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "writer":
				return demoWriter(o)
			case "reader-ordered", "reader-latest":
				return demoReader(o, args[0] == "reader-latest")
			}
			return usagef("unknown demo role %q", args[0])
		},
	}
	wf := worker.Flags()
	wf.AddFlagSet(f)
	wf.StringVar(&o.ring, "ring", "", "ring name")
	root.AddCommand(worker)
}

// demoStat is one line a demo child prints (JSON).
type demoStat struct {
	Role      string  `json:"role"`
	Final     bool    `json:"final"`
	Published uint64  `json:"published,omitempty"`
	Delivered uint64  `json:"delivered,omitempty"`
	Dropped   uint64  `json:"dropped,omitempty"`
	Torn      uint64  `json:"torn"`
	Retries   uint64  `json:"retries,omitempty"`
	P50us     float64 `json:"p50_us,omitempty"`
	P99us     float64 `json:"p99_us,omitempty"`
	Error     string  `json:"error,omitempty"`
}

func emit(s demoStat) {
	b, _ := json.Marshal(s)
	fmt.Println(string(b))
}

func frameInfo(size string) (ring.FrameInfo, int) {
	w, h, c, _ := ring.ParseSize(size)
	return ring.FrameInfo{Width: w, Height: h, Channels: c, Format: ring.FormatForChannels(c)}, w * h * c
}

func demoWriter(o demoOpts) error {
	info, n := frameInfo(o.size)
	w, err := producer.Open(o.ring, producer.Options{Dir: o.dir, Slots: o.slots, MaxFrameBytes: n})
	if err != nil {
		return err
	}
	defer w.Close()
	emit(demoStat{Role: "writer"}) // ready
	var tick <-chan time.Time
	if o.fps > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.fps))
		defer t.Stop()
		tick = t.C
	}
	end := time.Now().Add(o.duration)
	nextReport := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		if tick != nil {
			<-tick
		}
		l, err := w.Reserve(info)
		if err != nil {
			return err
		}
		pattern.Fill(l.Data(), l.Number())
		if err := l.Commit(); err != nil {
			return err
		}
		if time.Now().After(nextReport) {
			emit(demoStat{Role: "writer", Published: w.Stats().Frames})
			nextReport = nextReport.Add(time.Second)
		}
	}
	emit(demoStat{Role: "writer", Final: true, Published: w.Stats().Frames})
	return nil
}

func demoReader(o demoOpts, latest bool) error {
	opts := consumer.Options{Dir: o.dir, StartAt: consumer.Next}
	role := "ordered copy"
	if latest {
		opts.Mode, role = consumer.Latest, "latest view"
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+time.Minute)
	defer cancel()
	r, err := consumer.OpenWait(ctx, o.ring, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	emit(demoStat{Role: role}) // ready
	buf := make([]byte, r.Geometry().PayloadCap)
	var torn uint64
	report := func(final bool) {
		st := r.Stats()
		emit(demoStat{Role: role, Final: final, Delivered: st.Delivered, Dropped: st.Dropped(), Torn: torn, Retries: st.Retries,
			P50us: us(st.Latency.Quantile(0.5)), P99us: us(st.Latency.Quantile(0.99))})
	}
	nextReport := time.Now().Add(time.Second)
	for {
		if latest {
			var bad error
			err = r.ReadInPlace(ctx, func(f *ring.Frame) error {
				bad = pattern.Check(f.Data, f.Number)
				return nil
			})
			if err == nil && bad != nil {
				torn++
			}
			if errors.Is(err, ring.ErrOverwritten) {
				err = nil
			}
		} else {
			var f ring.Frame
			if f, err = r.Read(ctx, buf); err == nil && pattern.Check(f.Data, f.Number) != nil {
				torn++
			}
		}
		if errors.Is(err, ring.ErrWriterGone) {
			break // the writer finished
		}
		if err != nil {
			return err
		}
		if time.Now().After(nextReport) {
			report(false)
			nextReport = nextReport.Add(time.Second)
		}
	}
	report(true)
	return nil
}

// demoChild is a running demo process and its latest report.
type demoChild struct {
	role string
	p    *proc.Proc
	mu   sync.Mutex
	last demoStat
	done chan struct{} // closed when its reports ended and it exited
}

func (c *demoChild) stat() demoStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *demoChild) stderr() string { return strings.TrimSpace(c.p.Stderr()) }

func startDemoChild(o demoOpts, role string, ready chan<- struct{}) (*demoChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("demo: find own executable: %w", err)
	}
	args := []string{"demo-worker", role, "--ring", o.ring, "--size", o.size, "--slots", fmt.Sprint(o.slots),
		"--fps", fmt.Sprint(o.fps), "--duration", o.duration.String()}
	if o.dir != "" {
		args = append(args, "--dir", o.dir)
	}
	p, err := proc.Start("demo "+role, exec.Command(exe, args...))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	c := &demoChild{role: role, p: p, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		first := true
		for l := range p.Lines() {
			var s demoStat
			if json.Unmarshal([]byte(l), &s) != nil {
				continue
			}
			c.mu.Lock()
			c.last = s
			c.mu.Unlock()
			if first {
				first = false
				ready <- struct{}{}
			}
		}
		<-p.Done()
	}()
	return c, nil
}

func runDemo(out io.Writer, o demoOpts) error {
	o.ring = fmt.Sprintf("demo-%d", os.Getpid())
	defer producer.Remove(o.dir, o.ring)
	info, n := frameInfo(o.size)
	fmt.Fprintf(out, "framering demo: ring %q, %dx%dx%d %v frames (%d bytes), %d slots, %s, %d readers, %v\n",
		o.ring, info.Width, info.Height, info.Channels, info.Format, n, o.slots, fpsText(o.fps), o.readers, o.duration)
	ready := make(chan struct{}, o.readers+1)
	writer, err := startDemoChild(o, "writer", ready)
	if err != nil {
		return err
	}
	children := []*demoChild{writer}
	defer func() {
		for _, c := range children {
			c.p.Kill()
			<-c.done
		}
	}()
	if err := awaitReady(ready, writer, 1); err != nil {
		return err
	}
	// The writer published nothing yet: it waits one tick before its first frame.
	for i := 0; i < o.readers; i++ {
		role := "reader-ordered"
		if i%2 == 1 {
			role = "reader-latest"
		}
		c, err := startDemoChild(o, role, ready)
		if err != nil {
			return err
		}
		children = append(children, c)
	}
	if err := awaitReady(ready, writer, o.readers); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	var prev uint64
	for running := true; running; {
		select {
		case <-tick.C:
			ws := writer.stat()
			line := fmt.Sprintf("%3.0fs  published %7d (%6.1f fps)", time.Since(start).Seconds(), ws.Published, float64(ws.Published-prev))
			prev = ws.Published
			for i, c := range children[1:] {
				s := c.stat()
				line += fmt.Sprintf(" | r%d %7d ok %5d dropped p50 %6.0fµs", i+1, s.Delivered, s.Dropped, s.P50us)
			}
			fmt.Fprintln(out, line)
		case <-writer.done:
			running = false
		case <-sig:
			fmt.Fprintln(out, "interrupted")
			running = false
		}
	}
	for _, c := range children[1:] {
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("demo: reader %s did not finish 10 s after the writer; stderr: %s", c.role, c.stderr())
		}
	}
	ws := writer.stat()
	fmt.Fprintf(out, "\nframes published: %d\n\n", ws.Published)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "reader\tmode\tdelivered\tdropped\ttorn accepted\ttorn reads rejected\tlatency p50\tlatency p99\t")
	var failed []string
	for i, c := range children[1:] {
		s := c.stat()
		if !s.Final {
			failed = append(failed, fmt.Sprintf("reader %d (%s) did not finish: %s", i+1, c.role, c.stderr()))
		}
		if s.Torn > 0 {
			failed = append(failed, fmt.Sprintf("reader %d accepted %d torn frames", i+1, s.Torn))
		}
		fmt.Fprintf(tw, "r%d\t%s\t%d\t%d\t%d\t%d\t%.1f µs\t%.1f µs\t\n", i+1, s.Role, s.Delivered, s.Dropped, s.Torn, s.Retries, s.P50us, s.P99us)
	}
	tw.Flush()
	if len(failed) > 0 {
		return errors.New("demo: " + strings.Join(failed, "; "))
	}
	return nil
}

func awaitReady(ready <-chan struct{}, writer *demoChild, n int) error {
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case <-writer.done:
			return fmt.Errorf("demo: writer exited early: %s", writer.stderr())
		case <-time.After(30 * time.Second):
			return errors.New("demo: children did not start within 30 s")
		}
	}
	return nil
}

func fpsText(fps float64) string {
	if fps == 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%g fps", fps)
}
