package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/proc"
	"github.com/framering/framering/internal/shm"
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
	// Spawn starts a Go worker process.
	Spawn Spawner
	// Workers says where the C and Python readers are; a case of a
	// language whose worker is missing is skipped with the reason.
	Workers Workers
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
	if why := r.Workers.missing(c.Transport.lang()); why != "" {
		res.Skipped = why
		return res
	}
	cpus, err := r.placement(c)
	if err != nil {
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
	ws, err := r.run(ctx, c, dir, cpus)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.fill(ws)
	return res
}

// placement returns the CPU of each process of a pinned case (writer
// first, then each reader), nil for an unpinned one: the writer on the
// first CPU this process may use, the readers on the others, shared
// round-robin when there are more readers than CPUs left.
func (r *Runner) placement(c Case) ([]int, error) {
	if !c.Pin {
		return nil, nil
	}
	cpus, err := shm.CPUs()
	if err != nil {
		return nil, fmt.Errorf("pin: %w", err)
	}
	if len(cpus) < 2 {
		return nil, fmt.Errorf("pin: needs 2 CPUs for the writer and its readers; this process may use %d", len(cpus))
	}
	out := []int{cpus[0]}
	for i := 0; i < c.Readers; i++ {
		out = append(out, cpus[1+i%(len(cpus)-1)])
	}
	return out, nil
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
	var p Proc
	var err error
	if lang := sp.Case.Transport.lang(); lang != "" && sp.Role == roleReader {
		p, err = r.Workers.start(lang, &sp)
	} else {
		var b []byte
		if b, err = json.Marshal(sp); err != nil {
			return nil, "", err
		}
		p, err = r.Spawn(string(b))
	}
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

func parseResult(l, who string) (*workerResult, error) {
	var w workerResult
	if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "result ")), &w); err != nil {
		return nil, fmt.Errorf("%s: bad result line: %w", who, err)
	}
	return &w, nil
}

func result(p Proc, role string, timeout time.Duration) (*workerResult, error) {
	l, err := p.Expect("result ", timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	w, err := parseResult(l, role)
	if err != nil {
		return nil, err
	}
	if _, err := p.Wait(stopTimeout); err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	return w, nil
}

// run starts the case's processes, lets them run and collects their
// results: the writer's (or pinger's, or memcpy's) first.
func (r *Runner) run(ctx context.Context, c Case, dir string, cpus []int) ([]*workerResult, error) {
	var ps procs
	defer ps.killAll()
	writerRole, readerRole := roleWriter, roleReader
	switch {
	case c.Transport == Memcpy:
		writerRole = roleMemcpy
	case c.Kind == PingPong:
		writerRole, readerRole = rolePing, rolePong
	}
	cpu := func(i int) int {
		if cpus == nil {
			return -1
		}
		return cpus[i]
	}
	w, addr, err := r.start(&ps, workerSpec{Role: writerRole, Case: c, Dir: dir, Seed: r.Seed, CPU: cpu(0)})
	if err != nil {
		return nil, err
	}
	var readers []Proc
	if writerRole != roleMemcpy {
		for i := 0; i < c.Readers; i++ {
			p, _, err := r.start(&ps, workerSpec{Role: readerRole, Case: c, Dir: dir, Index: i, Addr: addr, CPU: cpu(1 + i)})
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
	if c.Kind == Idle {
		limit = idleDuration(c) + idleMargin + readyTimeout
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
		res, err := parseResult(l, fmt.Sprintf("%s %d", readerRole, i))
		if err != nil {
			return nil, err
		}
		if _, err := p.Wait(stopTimeout); err != nil {
			return nil, fmt.Errorf("%s %d: %w", readerRole, i, err)
		}
		out = append(out, res)
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
	// readers, in ns, of the steady-state frames: those after each ring
	// slot's first use (First has those).
	Latency Quantiles `json:"latency_ns"`
	// Sched is the scheduler delay beside each latency sample.
	Sched *SchedStats `json:"sched,omitempty"`
	// First is the first frames of the case apart: a fresh ring's first
	// touch of each slot.
	First *FirstFrames `json:"first_frames,omitempty"`
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
	// Copy is a copy-out case's figures, per method.
	Copy []CopyStats `json:"copy,omitempty"`
	// Idle is an idle case's figures.
	Idle *IdleStats `json:"idle,omitempty"`
	// AckTimeouts counts paced frames a reader did not finish within the
	// writer's wait (then the writer went on; 0 in a healthy run).
	AckTimeouts uint64 `json:"ack_timeouts,omitempty"`
	// Seconds is how long the writer ran.
	Seconds float64 `json:"seconds"`
	// Skipped says why the case did not run (a missing toolchain); it is
	// not a failure.
	Skipped string `json:"skipped,omitempty"`
	Err     string `json:"error,omitempty"`
}

// ok reports whether the case ran to the end.
func (res *Result) ok() bool { return res.Err == "" && res.Skipped == "" }

// SchedStats is the scheduler delay per frame: from
// /proc/thread-self/schedstat, the time the reader's thread spent
// runnable without a CPU from the moment it started to wait for the frame
// until it had it (a preemption just before it fell asleep included);
// ping-pong: the pinger's over the round trip.
type SchedStats struct {
	P50 int64 `json:"p50_ns"`
	P99 int64 `json:"p99_ns"`
	// Contended is the share of frames with at least 5 µs of it.
	Contended float64 `json:"contended"`
	// UncontendedP50 is the latency p50 of the other frames.
	UncontendedP50 int64  `json:"uncontended_latency_p50_ns"`
	Frames         uint64 `json:"frames"`
}

// FirstFrames are a case's first frames, the first use of each of the
// ring's slots (frames 1 to 8), against the steady state (the frames
// after). Publish is the writer's time for a frame: for the view
// transports Reserve, filling the slot and Commit; for the copy
// transports Publish.
type FirstFrames struct {
	OpenNs          int64 `json:"open_ns"`               // producer.Open: ring creation
	Publish1        int64 `json:"publish_first_ns"`      // frame 1
	PublishSlotsP50 int64 `json:"publish_slots_p50_ns"`  // frames 1-8
	PublishSteady   int64 `json:"publish_steady_p50_ns"` // frames after
	Latency1        int64 `json:"latency_first_ns"`      // frame 1, the slowest reader
	LatencySlotsMax int64 `json:"latency_slots_max_ns"`  // frames 1-8, any reader
}

// CopyStats is one copy-out method's time per frame.
type CopyStats struct {
	Method string    `json:"method"`
	Time   Quantiles `json:"time_ns"`
	// GBps is the frame's bytes over the median time.
	GBps float64 `json:"gb_per_s"`
}

// IdleStats is an idle reader's cost, mean over readers.
type IdleStats struct {
	Seconds float64 `json:"seconds"`
	// CPUPercent is CPU time over wall time, in percent of one core.
	CPUPercent float64 `json:"cpu_percent"`
	// WakeupsPerSec is context switches per second (each wake-up from a
	// sleep ends in one), all threads of the process.
	WakeupsPerSec float64 `json:"wakeups_per_s"`
}

// frameLog gathers per-frame samples into the figures.
type frameLog struct {
	lat, sched, unc hist.Histogram
	contended       uint64
	first           []Sample // latency of frames 1..ringSlots
}

func (l *frameLog) add(seq, lat, sched int64) {
	if seq <= ringSlots {
		l.first = append(l.first, Sample{seq, lat, sched})
		return
	}
	l.lat.Record(max(lat, 0))
	if sched < 0 {
		return
	}
	l.sched.Record(sched)
	if sched >= int64(contendedMin) {
		l.contended++
	} else {
		l.unc.Record(max(lat, 0))
	}
}

// fill computes the figures from the workers' reports: ws[0] is the
// writer's (pinger's, memcpy's), the rest the readers'.
func (res *Result) fill(ws []*workerResult) {
	w := ws[0]
	res.Frames = w.Frames
	res.WriterCPU = w.CPU
	res.AckTimeouts = w.AckTimeouts
	res.Seconds = float64(w.End-w.Start) / 1e9
	if res.Seconds > 0 {
		res.WriterFPS = float64(w.Frames) / res.Seconds
	}
	var log frameLog
	snap := &hist.Snapshot{}
	schedSnap, uncSnap := &hist.Snapshot{}, &hist.Snapshot{}
	var contended uint64
	var firstLat []int64
	addWorker := func(r *workerResult) {
		for _, s := range r.Samples {
			log.add(s[0], s[1], s[2])
		}
		if r.Hist != nil {
			snap.Merge(r.Hist)
		}
		if r.Sched != nil {
			schedSnap.Merge(r.Sched)
		}
		if r.Uncontended != nil {
			uncSnap.Merge(r.Uncontended)
		}
		contended += r.Contended
		firstLat = append(firstLat, r.FirstLat...)
	}
	var fps []float64
	switch {
	case w.Role == roleMemcpy:
		res.Delivered, res.Torn = w.Frames, w.Torn
		addWorker(w)
		fps = append(fps, rate(w.Frames, w.Start, w.End))
	case w.Role == rolePing:
		res.Delivered, res.Torn = uint64(len(w.FirstLat)), w.Torn
		if w.Hist != nil {
			res.Delivered += w.Hist.Count
		}
		res.Dropped = w.Frames - min(w.Frames, res.Delivered)
		addWorker(w)
		fps = append(fps, rate(res.Delivered, w.Start, w.End))
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
			addWorker(r)
			if res.Kind == Throughput {
				fps = append(fps, spanRate(r.Frames, r.First, r.Last))
			} else {
				fps = append(fps, rate(r.Frames, w.Start, w.End))
			}
		}
	}
	snap.Merge(log.lat.Snapshot())
	schedSnap.Merge(log.sched.Snapshot())
	uncSnap.Merge(log.unc.Snapshot())
	contended += log.contended
	res.Latency = Summarize(snap)
	if schedSnap.Count > 0 {
		res.Sched = &SchedStats{
			P50:            Summarize(schedSnap).P50,
			P99:            Summarize(schedSnap).P99,
			Contended:      float64(contended) / float64(schedSnap.Count),
			UncontendedP50: Summarize(uncSnap).P50,
			Frames:         schedSnap.Count,
		}
	}
	res.fillFirst(w, log.first, firstLat)
	res.fillCopy(ws[1:])
	res.fillIdle(ws[1:])
	res.CDF = CDF(snap, 200)
	res.FPS = Mean(fps)
	res.GBps = res.FPS * float64(res.Shape.Bytes()) / 1e9
}

// fillFirst fills First from the writer's samples (its time per frame)
// and the readers' first frames.
func (res *Result) fillFirst(w *workerResult, first []Sample, firstLat []int64) {
	if w.Role != roleWriter && len(first) == 0 && len(firstLat) == 0 {
		return
	}
	f := &FirstFrames{OpenNs: w.OpenNs}
	var slots, steady []int64
	if w.Role == roleWriter {
		for _, s := range w.Samples {
			switch {
			case s[0] == 1:
				f.Publish1 = s[1]
				slots = append(slots, s[1])
			case s[0] <= ringSlots:
				slots = append(slots, s[1])
			default:
				steady = append(steady, s[1])
			}
		}
	}
	f.PublishSlotsP50 = median(slots)
	f.PublishSteady = median(steady)
	for _, s := range first {
		if s[0] == 1 {
			f.Latency1 = max(f.Latency1, s[1])
		}
		f.LatencySlotsMax = max(f.LatencySlotsMax, s[1])
	}
	for _, v := range firstLat {
		f.LatencySlotsMax = max(f.LatencySlotsMax, v)
	}
	if *f == (FirstFrames{}) {
		return
	}
	res.First = f
}

// fillCopy fills Copy from copy-out readers' timings.
func (res *Result) fillCopy(readers []*workerResult) {
	all := map[string][]int64{}
	for _, r := range readers {
		for m, ts := range r.Timings {
			all[m] = append(all[m], ts...)
		}
	}
	for _, m := range []string{MethodRead, MethodGoCopy, MethodGlibc, MethodNumpy} {
		ts, ok := all[m]
		if !ok {
			continue
		}
		q := quantilesOf(ts)
		res.Copy = append(res.Copy, CopyStats{Method: m, Time: q, GBps: Div(float64(res.Shape.Bytes()), float64(q.P50))})
	}
}

// fillIdle fills Idle for an idle case.
func (res *Result) fillIdle(readers []*workerResult) {
	if res.Kind != Idle || len(readers) == 0 {
		return
	}
	var secs, cpu, wake []float64
	for _, r := range readers {
		s := float64(r.End-r.Start) / 1e9
		if s <= 0 {
			continue
		}
		secs = append(secs, s)
		cpu = append(cpu, 100*r.CPU/s)
		wake = append(wake, float64(r.Switches)/s)
	}
	if len(secs) == 0 {
		return
	}
	res.Idle = &IdleStats{Seconds: Mean(secs), CPUPercent: Mean(cpu), WakeupsPerSec: Mean(wake)}
}

// quantilesOf summarizes raw values.
func quantilesOf(vs []int64) Quantiles {
	var h hist.Histogram
	for _, v := range vs {
		h.Record(max(v, 0))
	}
	return Summarize(h.Snapshot())
}

// median is the middle value of vs (0 for none).
func median(vs []int64) int64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
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
