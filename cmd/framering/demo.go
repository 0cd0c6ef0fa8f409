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
	"github.com/framering/framering/internal/source"
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

// check refuses flags the demo cannot run with, before any process starts.
func (o demoOpts) check() error {
	fi, err := source.Shape(o.size, "")
	if err != nil {
		return usagef("demo: --size: %w", err)
	}
	if o.readers < 1 || o.readers > 16 {
		return usagef("demo: --readers %d: give 1 to 16", o.readers)
	}
	if o.duration <= 0 {
		return usagef("demo: --duration %v: give a positive duration such as 10s", o.duration)
	}
	if err := checkFPS("demo", o.fps); err != nil {
		return err
	}
	if err := checkSlots("demo", o.slots); err != nil {
		return err
	}
	if fi.Len < pattern.HeaderLen {
		return usagef("demo: --size %s is %d bytes; the test pattern needs at least %d", o.size, fi.Len, pattern.HeaderLen)
	}
	if err := (ring.Geometry{Slots: o.slots, PayloadCap: fi.Len}).Check(); err != nil {
		return usagef("demo: --size %s with --slots %d: %w", o.size, o.slots, err)
	}
	return nil
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
second shows progress; a closing table shows, per reader, the first and last
frame of its window, frames delivered and dropped (delivered + dropped =
last - first + 1), torn frames accepted (always 0) and latency p50/p99.

SIGINT or SIGTERM stops the writer and the readers at once; the table shows
what they saw until then, and demo exits with 130 (SIGINT) or 143 (SIGTERM).`,
		Example: "  framering demo\n  framering demo --duration 5s --size 1920x1080x3 --fps 60 --readers 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
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
	f.StringVar(&o.dir, "dir", "", "shared-memory directory ($"+dirEnv+" when set, else /dev/shm)")
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
	First     uint64  `json:"first,omitempty"` // first frame of the reader's window
	Last      uint64  `json:"last,omitempty"`  // last frame it considered
	Delivered uint64  `json:"delivered,omitempty"`
	Dropped   uint64  `json:"dropped,omitempty"`
	Torn      uint64  `json:"torn"`
	Retries   uint64  `json:"retries,omitempty"`
	P50us     float64 `json:"p50_us,omitempty"`
	P99us     float64 `json:"p99_us,omitempty"`
}

func emit(s demoStat) {
	b, _ := json.Marshal(s)
	fmt.Println(string(b))
}

// demoWriter publishes the test pattern until --duration or SIGINT/SIGTERM.
func demoWriter(o demoOpts) error {
	info, err := source.Shape(o.size, "")
	if err != nil {
		return err
	}
	w, err := producer.Open(o.ring, producer.Options{Dir: o.dir, Slots: o.slots, MaxFrameBytes: info.Len})
	if err != nil {
		return err
	}
	defer w.Close()
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	emit(demoStat{Role: "writer"}) // ready
	pace := source.NewPacer(o.fps)
	pace.Wait(ctx) // the first frame comes one period after start, when the readers are open
	nextReport := time.Now().Add(time.Second)
	for pace.Wait(ctx) == nil {
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

// demoReader checks every frame it gets until the writer is gone or
// SIGINT/SIGTERM.
func demoReader(o demoOpts, latest bool) error {
	opts := consumer.Options{Dir: o.dir, StartAt: consumer.Next}
	role := "ordered copy"
	if latest {
		opts.Mode, role = consumer.Latest, "latest view"
	}
	ctx, stop := signalContext()
	defer stop()
	octx, cancel := context.WithTimeout(ctx, time.Minute) // hang guard: the writer made the ring already
	defer cancel()
	r, err := consumer.OpenWait(octx, o.ring, opts)
	if err != nil {
		if ctx.Err() != nil {
			emit(demoStat{Role: role, Final: true})
			return nil
		}
		return err
	}
	defer r.Close()
	emit(demoStat{Role: role}) // ready
	buf := make([]byte, r.Geometry().PayloadCap)
	var torn uint64
	report := func(final bool) {
		st := r.Stats()
		s := demoStat{Role: role, Final: final, Delivered: st.Delivered, Dropped: st.Dropped(), Torn: torn, Retries: st.Retries,
			P50us: us(st.Latency.Quantile(0.5)), P99us: us(st.Latency.Quantile(0.99))}
		if st.Delivered+st.Dropped() > 0 {
			s.First, s.Last = st.WindowStart, st.Last
		}
		emit(s)
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
		if errors.Is(err, ring.ErrWriterGone) || ctx.Err() != nil {
			break // the writer finished, or we were told to stop
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

// why says why a child gave no final report.
func (c *demoChild) why() string {
	status := "still running"
	select {
	case <-c.done:
		status = "exit status 0"
		if err := c.p.Err(); err != nil {
			status = err.Error()
		}
	default:
	}
	stderr := strings.TrimSpace(c.p.Stderr())
	if stderr == "" {
		stderr = "nothing on stderr"
	}
	return fmt.Sprintf("%s; %s", status, stderr)
}

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

// stopChildren sends SIGTERM to every child still running and waits for
// them; a child that does not exit within the hang guard is killed.
func stopChildren(children []*demoChild) {
	for _, c := range children {
		c.p.Signal(syscall.SIGTERM)
	}
	waitChildren(children, 10*time.Second)
}

// waitChildren waits for every child, killing those still running after
// guard (a hang guard).
func waitChildren(children []*demoChild, guard time.Duration) {
	deadline := time.After(guard)
	for _, c := range children {
		select {
		case <-c.done:
		case <-deadline:
			c.p.Kill()
			<-c.done
		}
	}
}

func runDemo(out io.Writer, o demoOpts) error {
	o.ring = fmt.Sprintf("demo-%d", os.Getpid())
	defer producer.Remove(o.dir, o.ring)
	info, _ := source.Shape(o.size, "")
	fmt.Fprintf(out, "framering demo: ring %q, %dx%dx%d %v frames (%d bytes), %d slots, %s, %d readers, %v\n",
		o.ring, info.Width, info.Height, info.Channels, info.Format, info.Len, o.slots, fpsText(o.fps), o.readers, o.duration)
	// Signals are ours from here on: they stop the children, then the demo.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)

	ready := make(chan struct{}, o.readers+1)
	var children []*demoChild
	defer func() { stopChildren(children) }() // on every early return
	writer, err := startDemoChild(o, "writer", ready)
	if err != nil {
		return err
	}
	children = append(children, writer)
	if err := awaitReady(ready, writer, 1, sigc); err != nil {
		return err
	}
	// The writer published nothing yet: it waits one period before its first frame.
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
	if err := awaitReady(ready, writer, o.readers, sigc); err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	var prev uint64
	var stoppedBy os.Signal
	for stoppedBy == nil {
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
			continue
		case <-writer.done:
		case stoppedBy = <-sigc:
			fmt.Fprintf(out, "interrupted by %v: stopping the writer and the readers\n", sigName(stoppedBy.(syscall.Signal)))
			stopChildren(children)
		}
		break
	}
	if stoppedBy == nil {
		// The writer finished: the readers see it gone within a wait slice.
		// A signal meanwhile stops them at once.
		done := make(chan struct{})
		go func() { waitChildren(children[1:], 10*time.Second); close(done) }()
		select {
		case <-done:
		case stoppedBy = <-sigc:
			fmt.Fprintf(out, "interrupted by %v: stopping the readers\n", sigName(stoppedBy.(syscall.Signal)))
			stopChildren(children)
			<-done
		}
	}
	failed := demoTable(out, writer, children[1:])
	switch {
	case len(failed) > 0:
		return errors.New("demo: " + strings.Join(failed, "; "))
	case stoppedBy != nil:
		return signalled{"demo", stoppedBy.(syscall.Signal)}
	}
	return nil
}

// demoTable prints the closing table and returns what went wrong.
func demoTable(out io.Writer, writer *demoChild, readers []*demoChild) (failed []string) {
	ws := writer.stat()
	if !ws.Final {
		failed = append(failed, fmt.Sprintf("the writer exited without its final report (%s)", writer.why()))
	}
	fmt.Fprintf(out, "\nframes published: %d\n\n", ws.Published)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "reader\tmode\tfirst\tlast\tdelivered\tdropped\ttorn accepted\ttorn reads rejected\tlatency p50\tlatency p99\t")
	for i, c := range readers {
		s := c.stat()
		if !s.Final {
			failed = append(failed, fmt.Sprintf("reader %d (%s) exited without its final report (%s)", i+1, c.role, c.why()))
		}
		if s.Torn > 0 {
			failed = append(failed, fmt.Sprintf("reader %d accepted %d torn frames", i+1, s.Torn))
		}
		first, last := "-", "-"
		if n := s.Delivered + s.Dropped; n > 0 {
			first, last = fmt.Sprint(s.First), fmt.Sprint(s.Last)
			if s.Last < s.First || s.Last-s.First+1 != n {
				failed = append(failed, fmt.Sprintf("reader %d: delivered %d + dropped %d is not the %d frames of its window %d..%d",
					i+1, s.Delivered, s.Dropped, int64(s.Last)-int64(s.First)+1, s.First, s.Last))
			}
		}
		fmt.Fprintf(tw, "r%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f µs\t%.1f µs\t\n", i+1, s.Role, first, last, s.Delivered, s.Dropped,
			s.Torn, s.Retries, s.P50us, s.P99us)
	}
	tw.Flush()
	fmt.Fprintln(out, "\nfor every reader, delivered + dropped = last - first + 1: the frames published in its window")
	return failed
}

func awaitReady(ready <-chan struct{}, writer *demoChild, n int, sigc <-chan os.Signal) error {
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case <-writer.done:
			return fmt.Errorf("demo: writer exited early: %s", writer.why())
		case s := <-sigc:
			return signalled{"demo (while starting)", s.(syscall.Signal)}
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
