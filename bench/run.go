package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/proc"
)

// Proc is a running worker process: a *proc.Proc (internal/proc), which
// both ExecSpawner (the CLI) and testutil.Start (tests) return.
type Proc interface {
	// Expect reads stdout lines until one starts with prefix; timeout is a
	// hang guard.
	Expect(prefix string, timeout time.Duration) (string, error)
	// Signal sends sig to the process.
	Signal(sig os.Signal) error
	// Wait waits for the exit, killing the process after timeout.
	Wait(timeout time.Duration) ([]string, error)
	// Kill kills the process and waits for it.
	Kill()
}

// Spawner starts a worker process that runs WorkerMain(spec).
type Spawner func(spec string) (Proc, error)

// ExecSpawner starts exe with args followed by the spec as the last
// argument, e.g. ExecSpawner(os.Executable(), "bench-worker"). Children die
// with the parent (PR_SET_PDEATHSIG).
func ExecSpawner(exe string, args ...string) Spawner {
	return func(spec string) (Proc, error) {
		cmd := exec.Command(exe, append(append([]string(nil), args...), spec)...)
		return proc.Start("bench worker", cmd)
	}
}

// Runner runs cases, each as separate worker processes.
type Runner struct {
	// Spawn starts a worker process.
	Spawn Spawner
	// Dir is where each case gets a fresh directory for its rings,
	// sockets and FIFOs; empty means /dev/shm (or the temporary directory
	// where /dev/shm is missing).
	Dir string
	// Progress, if set, is called before each case and once at the end
	// (with done == total).
	Progress func(done, total int, c Case)
	// Seed makes the latency runs' random gaps repeatable.
	Seed uint64
}

// Hang guards for the coordinator (not measurements).
const (
	readyTimeout = 60 * time.Second
	drainGrace   = 2 * time.Second       // readers finish on their own after the writer
	pollerGrace  = 50 * time.Millisecond // pollers cannot tell the end: stop them
	stopTimeout  = 15 * time.Second
)

// RunAll runs the cases one after another and returns their results; a
// case that fails has Err set and the rest still run. It stops early when
// ctx ends.
func (r *Runner) RunAll(ctx context.Context, cases []Case) []Result {
	out := make([]Result, 0, len(cases))
	for i, c := range cases {
		if ctx.Err() != nil {
			break
		}
		if r.Progress != nil {
			r.Progress(i, len(cases), c)
		}
		out = append(out, r.Run(ctx, c))
	}
	if r.Progress != nil {
		r.Progress(len(out), len(cases), Case{})
	}
	return out
}

// Run runs one case.
func (r *Runner) Run(ctx context.Context, c Case) Result {
	res := Result{Case: c, Name: c.Name()}
	if err := c.Check(); err != nil {
		res.Err = err.Error()
		return res
	}
	dir, err := os.MkdirTemp(r.baseDir(), "framering-bench-")
	if err != nil {
		res.Err = fmt.Sprintf("case directory: %v", err)
		return res
	}
	defer os.RemoveAll(dir)
	r.Seed++
	ws, err := r.run(ctx, c, dir)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.fill(ws)
	return res
}

func (r *Runner) baseDir() string {
	if r.Dir != "" {
		return r.Dir
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// procs kills whatever is still running when a case ends.
type procs []Proc

func (ps *procs) killAll() {
	for _, p := range *ps {
		p.Kill()
	}
}

func (r *Runner) start(ps *procs, sp workerSpec) (Proc, string, error) {
	b, err := json.Marshal(sp)
	if err != nil {
		return nil, "", err
	}
	p, err := r.Spawn(string(b))
	if err != nil {
		return nil, "", err
	}
	*ps = append(*ps, p)
	l, err := p.Expect("ready", readyTimeout)
	if err != nil {
		return nil, "", fmt.Errorf("%s %d: %w", sp.Role, sp.Index, err)
	}
	return p, strings.TrimSpace(strings.TrimPrefix(l, "ready")), nil
}

func result(p Proc, role string, timeout time.Duration) (*workerResult, error) {
	l, err := p.Expect("result ", timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	var w workerResult
	if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "result ")), &w); err != nil {
		return nil, fmt.Errorf("%s: bad result line: %w", role, err)
	}
	if _, err := p.Wait(stopTimeout); err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	return &w, nil
}

// run starts the case's processes, lets them run and collects their
// results: the writer's (or pinger's, or memcpy's) first.
func (r *Runner) run(ctx context.Context, c Case, dir string) ([]*workerResult, error) {
	var ps procs
	defer ps.killAll()
	writerRole, readerRole := roleWriter, roleReader
	switch {
	case c.Transport == Memcpy:
		writerRole = roleMemcpy
	case c.Kind == PingPong:
		writerRole, readerRole = rolePing, rolePong
	}
	w, addr, err := r.start(&ps, workerSpec{Role: writerRole, Case: c, Dir: dir, Seed: r.Seed})
	if err != nil {
		return nil, err
	}
	var readers []Proc
	if writerRole != roleMemcpy {
		for i := 0; i < c.Readers; i++ {
			p, _, err := r.start(&ps, workerSpec{Role: readerRole, Case: c, Dir: dir, Index: i, Addr: addr})
			if err != nil {
				return nil, err
			}
			readers = append(readers, p)
		}
	}
	if err := w.Signal(sigGo); err != nil {
		return nil, fmt.Errorf("start writer: %w", err)
	}
	limit := c.Duration + readyTimeout
	if c.Frames > 0 {
		limit = 2*readyTimeout + time.Duration(c.Frames)*10*time.Millisecond
	}
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-stopCtx.Done()
		if ctx.Err() != nil { // interrupted: stop the workers
			for _, p := range ps {
				p.Signal(syscall.SIGTERM)
			}
		}
	}()
	wr, err := result(w, writerRole, limit)
	if err != nil {
		return nil, err
	}
	out := []*workerResult{wr}
	// Readers see the end of the stream themselves (EOF, writer gone);
	// pollers cannot tell, so they get the stop signal at once (after the
	// last frame's travel), the others only if they miss the end.
	grace := drainGrace
	if c.Transport == Legacy || c.Wait == Poll {
		grace = pollerGrace
	}
	deadline := time.Now().Add(grace)
	for i, p := range readers {
		l, err := p.Expect("result ", max(time.Until(deadline), time.Millisecond))
		if err != nil {
			p.Signal(sigStop)
			l, err = p.Expect("result ", stopTimeout)
			if err != nil {
				return nil, fmt.Errorf("%s %d: %w", readerRole, i, err)
			}
		}
		var res workerResult
		if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "result ")), &res); err != nil {
			return nil, fmt.Errorf("%s %d: bad result line: %w", readerRole, i, err)
		}
		if _, err := p.Wait(stopTimeout); err != nil {
			return nil, fmt.Errorf("%s %d: %w", readerRole, i, err)
		}
		out = append(out, &res)
	}
	return out, nil
}

// Result is what one case measured.
type Result struct {
	Case
	Name string `json:"name"`
	// Frames is how many frames the writer published (ping-pong: pings
	// sent).
	Frames uint64 `json:"frames_published"`
	// Delivered is the frames readers accepted, over all readers.
	Delivered uint64 `json:"frames_delivered"`
	// Dropped is, summed over readers, the frames published that a reader
	// did not accept: lapped, skipped, refused at Release, or never seen.
	Dropped uint64 `json:"frames_dropped"`
	// Rejected is the views Release refused (they are in Dropped).
	Rejected uint64 `json:"views_rejected"`
	// Torn is the frames readers accepted that fail the checksum.
	Torn uint64 `json:"torn_accepted"`
	// Latency is one-way latency (ping-pong: round trip / 2) over all
	// readers, in ns.
	Latency Quantiles `json:"latency_ns"`
	// CDF is the latency distribution, for plots.
	CDF []CDFPoint `json:"latency_cdf,omitempty"`
	// FPS is the frames per second each reader accepted (mean over
	// readers; ping-pong: round trips per second); GBps the same in bytes.
	FPS  float64 `json:"fps"`
	GBps float64 `json:"gb_per_s"`
	// WriterFPS is the writer's publishing rate.
	WriterFPS float64 `json:"writer_fps"`
	// CPU seconds (getrusage, user+system) of the writer and each reader
	// process during the measurement; memcpy has only the writer's.
	WriterCPU float64   `json:"writer_cpu_s"`
	ReaderCPU []float64 `json:"reader_cpu_s,omitempty"`
	// Seconds is how long the writer ran.
	Seconds float64 `json:"seconds"`
	Err     string  `json:"error,omitempty"`
}

// fill computes the figures from the workers' reports: ws[0] is the
// writer's (pinger's, memcpy's), the rest the readers'.
func (res *Result) fill(ws []*workerResult) {
	w := ws[0]
	res.Frames = w.Frames
	res.WriterCPU = w.CPU
	res.Seconds = float64(w.End-w.Start) / 1e9
	if res.Seconds > 0 {
		res.WriterFPS = float64(w.Frames) / res.Seconds
	}
	snap := &hist.Snapshot{}
	var fps []float64
	switch {
	case w.Role == roleMemcpy:
		res.Delivered, res.Torn = w.Frames, w.Torn
		snap = w.Hist
		fps = append(fps, rate(w.Frames, w.Start, w.End))
	case w.Role == rolePing:
		res.Delivered, res.Torn = w.Hist.Count, w.Torn
		res.Dropped = w.Frames - min(w.Frames, w.Hist.Count)
		snap = w.Hist
		fps = append(fps, rate(w.Hist.Count, w.Start, w.End))
		for _, r := range ws[1:] {
			res.ReaderCPU = append(res.ReaderCPU, r.CPU)
			res.Torn += r.Torn
		}
	default:
		for _, r := range ws[1:] {
			res.Delivered += r.Frames
			res.Torn += r.Torn
			res.Rejected += r.Rejected
			res.Dropped += w.Frames - min(w.Frames, r.Frames)
			res.ReaderCPU = append(res.ReaderCPU, r.CPU)
			if r.Hist != nil {
				snap.Merge(r.Hist)
			}

			if res.Kind == Throughput {
				fps = append(fps, spanRate(r.Frames, r.First, r.Last))
			} else {
				fps = append(fps, rate(r.Frames, w.Start, w.End))
			}
		}
	}
	res.Latency = Summarize(snap)

	res.CDF = CDF(snap, 200)
	res.FPS = Mean(fps)
	res.GBps = res.FPS * float64(res.Shape.Bytes()) / 1e9
}

// rate is n frames over the interval [start, end] ns.
func rate(n uint64, start, end int64) float64 {
	if end <= start {
		return 0
	}
	return float64(n) / (float64(end-start) / 1e9)
}

// spanRate is the rate of n frames of which the first came at first and
// the last at last: n-1 intervals.
func spanRate(n uint64, first, last int64) float64 {
	if n < 2 || last <= first {
		return 0
	}
	return float64(n-1) / (float64(last-first) / 1e9)
}
