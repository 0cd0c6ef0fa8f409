package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"

	"github.com/framering/framering/internal/shm"
)

// TestFillSamples: a latency case's samples split into the first frames
// (each slot's first use) and the steady state, with the scheduler delay
// beside each latency.
func TestFillSamples(t *testing.T) {
	c := Case{Kind: Latency, Transport: FrameringView, Wait: Futex, Shape: Shape1080, Readers: 2, Duration: time.Second}
	w := &workerResult{Role: roleWriter, Frames: 20, Start: 0, End: 1e9, OpenNs: 7e6}
	for seq := int64(1); seq <= 20; seq++ {
		d := int64(1000)
		if seq == 1 {
			d = 9000
		} else if seq <= ringSlots {
			d = 3000
		}
		w.Samples = append(w.Samples, Sample{seq, d, -1})
	}
	reader := func(lat, sched int64) *workerResult {
		r := &workerResult{Role: roleReader, Frames: 20, Start: 0, End: 1e9}
		for seq := int64(1); seq <= 20; seq++ {
			l := lat
			if seq == 1 {
				l = 50 * lat
			}
			r.Samples = append(r.Samples, Sample{seq, l, sched})
		}
		return r
	}
	// Reader 0 uncontended (1 µs of run-queue wait), reader 1 contended
	// (8 µs) and slower.
	res := Result{Case: c}
	res.fill([]*workerResult{w, reader(10_000, 1_000), reader(30_000, 8_000)})
	if res.Latency.Count != 24 || !within(res.Latency.Max, 30_000) {
		t.Errorf("steady latency %+v: want the 12 frames after the first 8 of each reader", res.Latency)
	}
	s := res.Sched
	if s == nil || s.Frames != 24 || s.Contended != 0.5 || !within(s.UncontendedP50, 10_000) {
		t.Fatalf("sched %+v: want 24 frames, half contended, uncontended p50 10 µs", s)
	}
	f := res.First
	if f == nil || f.OpenNs != 7e6 || f.Publish1 != 9000 || f.PublishSlotsP50 != 3000 || f.PublishSteady != 1000 {
		t.Fatalf("first frames %+v: want open 7 ms, publish #1 9 µs, #1-8 p50 3 µs, steady 1 µs", f)
	}
	if f.Latency1 != 1_500_000 || f.LatencySlotsMax != 1_500_000 {
		t.Errorf("first latency %d, first 8 max %d; want the slower reader's 1.5 ms", f.Latency1, f.LatencySlotsMax)
	}
	if res.Delivered != 40 || res.Dropped != 0 {
		t.Errorf("delivered %d dropped %d", res.Delivered, res.Dropped)
	}
	// No schedstat (-1): no scheduler figures, latency still there.
	res = Result{Case: c}
	res.fill([]*workerResult{w, reader(10_000, -1)})
	if res.Sched != nil || res.Latency.Count != 12 {
		t.Errorf("without schedstat: sched %+v, latency count %d", res.Sched, res.Latency.Count)
	}
}

func TestFillPingPong(t *testing.T) {
	c := Case{Kind: PingPong, Transport: FrameringCopy, Wait: Spin, Shape: Shape1080, Readers: 1, Duration: time.Second}
	var tl tally
	for seq := uint64(1); seq <= 30; seq++ {
		tl.record(seq, 100_000, 0)
	}
	tl.record(31, 100_000, 20_000) // contended
	tl.finish(0, 0)
	ping := tl.res
	ping.Role, ping.Frames, ping.Start, ping.End = rolePing, 32, 0, 1e9
	res := Result{Case: c}
	res.fill([]*workerResult{&ping, {Role: rolePong, Frames: 31}})
	if res.Delivered != 31 || res.Dropped != 1 || res.Latency.Count != 23 || len(ping.FirstLat) != ringSlots {
		t.Errorf("delivered %d dropped %d steady %d first %d; want 31, 1, 23, 8", res.Delivered, res.Dropped, res.Latency.Count, len(ping.FirstLat))
	}
	if res.Sched == nil || res.Sched.Frames != 23 || math32(res.Sched.Contended) != math32(1.0/23) {
		t.Errorf("sched %+v: want 1 of 23 frames contended", res.Sched)
	}
	if res.FPS != 31 {
		t.Errorf("round trips/s %v, want 31", res.FPS)
	}
}

func math32(f float64) float32 { return float32(f) }

func TestFillCopyOutAndIdle(t *testing.T) {
	c := Case{Kind: CopyOut, Transport: CCopy, Wait: Poll, Shape: Shape1080, Readers: 1, Duration: time.Second}
	r := &workerResult{Role: roleReader, Frames: 6, Timings: map[string][]int64{
		MethodRead: {400_000, 410_000, 420_000}, MethodGlibc: {380_000, 390_000, 1_000_000}}}
	res := Result{Case: c}
	res.fill([]*workerResult{{Role: roleWriter, Frames: 6, End: 1e9}, r})
	if len(res.Copy) != 2 || res.Copy[0].Method != MethodRead || res.Copy[1].Method != MethodGlibc {
		t.Fatalf("copy figures %+v: want read then glibc", res.Copy)
	}
	if g := res.Copy[1]; !within(g.Time.P50, 390_000) || g.Time.Count != 3 || g.GBps < 15.5 || g.GBps > 16.5 {
		t.Errorf("glibc %+v: want p50 390 µs, ~15.9 GB/s", g)
	}
	c = Case{Kind: Idle, Transport: FrameringView, Wait: Futex, Shape: Shape1080, Readers: 2, Duration: 4 * time.Second}
	res = Result{Case: c}
	res.fill([]*workerResult{{Role: roleWriter}, {Start: 0, End: 4e9, CPU: 0.004, Switches: 40}, {Start: 0, End: 2e9, CPU: 0.006, Switches: 10}})
	if i := res.Idle; i == nil || i.Seconds != 3 || !near(i.CPUPercent, (0.1+0.3)/2) || !near(i.WakeupsPerSec, (10+5)/2.0) {
		t.Errorf("idle %+v: want 3 s, 0.2 %%, 7.5 wake-ups/s (means over readers)", res.Idle)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestParseSchedstat(t *testing.T) {
	for in, want := range map[string]int64{
		"4550404 39123 2\n": 39123,
		"1 0 0":             0,
		"12":                -1,
		"":                  -1,
		"1 x 2":             -1,
		"1 -5 2":            -1,
	} {
		if got := parseSchedstat([]byte(in)); got != want {
			t.Errorf("parseSchedstat(%q) = %d, want %d", in, got, want)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := newSchedClock()
	if c == nil {
		t.Skip("no /proc/thread-self/schedstat")
	}
	defer c.close()
	a := c.now()
	settle()
	if d := c.since(a); d < 0 {
		t.Errorf("run-queue wait went back by %d ns", -d)
	}
	var none *schedClock
	if none.now() != -1 || none.since(5) != -1 || c.since(-1) != -1 {
		t.Error("a missing clock does not read -1")
	}
}

func TestVerifyHeader(t *testing.T) {
	n := 5*markEvery + 77
	b := newFrame(n)
	prepare(b, 300)
	if !verifyHeader(b) || !verify(b) {
		t.Fatal("a whole frame fails")
	}
	old := newFrame(n)
	prepare(old, 299)
	// The pages of the frame before, spliced in at a page's mark.
	torn := append(append([]byte(nil), b[:firstMark+2*markEvery]...), old[firstMark+2*markEvery:]...)
	if verifyHeader(torn) {
		t.Error("a frame with the last pages of the frame before passes")
	}
	c := append([]byte(nil), b...)
	setSeq(c, 301)
	if verifyHeader(c) {
		t.Error("a header whose number differs from the pattern's passes")
	}
	if verifyHeader(b[:minFrame-1]) {
		t.Error("a short frame passes")
	}
}

func TestAckBoard(t *testing.T) {
	dir := t.TempDir()
	w, err := createAcks(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	r, err := openAcks(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if w.await(2, 1, time.Millisecond) {
		t.Error("await returned true before any ack")
	}
	r.ack(0, 1)
	if w.await(2, 1, time.Millisecond) {
		t.Error("await returned true with one of two readers")
	}
	r.ack(1, 3) // a later frame counts too
	if !w.await(2, 1, time.Second) {
		t.Error("await returned false with both acks")
	}
	done := make(chan struct{})
	go func() {
		r.barrier(2, 5)
		close(done)
	}()
	r.received(0, 5)
	select {
	case <-done:
		t.Fatal("barrier passed with one reader of two")
	case <-time.After(20 * time.Millisecond):
	}
	w.received(1, 5)
	select {
	case <-done:
	case <-time.After(30 * time.Second): // hang guard
		t.Fatal("barrier did not pass with both readers")
	}
	var none *ackBoard
	none.ack(0, 1) // no board (unpaced cases): no-op
	none.barrier(4, 1)
	if _, err := openAcks(filepath.Join(dir, "missing")); err == nil {
		t.Error("openAcks of a missing directory: no error")
	}
}

func TestPacerMinimum(t *testing.T) {
	p := newPacer(Case{Kind: Throughput, Duration: time.Nanosecond}, 1, nil, 0)
	time.Sleep(time.Millisecond)
	if !p.more(minFrames) || p.more(minFrames+1) {
		t.Errorf("a case past its duration: more(%d) %v, more(%d) %v; want the minimum frames, then stop",
			minFrames, p.more(minFrames), minFrames+1, p.more(minFrames+1))
	}
	p = newPacer(Case{Kind: Latency, Frames: 3}, 1, nil, 0)
	if !p.more(3) || p.more(4) {
		t.Error("a frame count is not obeyed")
	}
}

func TestPlacement(t *testing.T) {
	r := &Runner{}
	if cpus, err := r.placement(Case{Readers: 4}); cpus != nil || err != nil {
		t.Errorf("unpinned case placed on %v, %v", cpus, err)
	}
	all, err := shm.CPUs()
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := r.placement(Case{Readers: 4, Pin: true})
	if len(all) < 2 {
		if err == nil {
			t.Errorf("pinned on %d CPU: no error", len(all))
		}
		return
	}
	if err != nil || len(cpus) != 5 {
		t.Fatalf("placement %v, %v; want 5 CPUs", cpus, err)
	}
	for i, c := range cpus {
		if !slices.Contains(all, c) || i > 0 && c == cpus[0] {
			t.Errorf("process %d on CPU %d (allowed %v, writer on %d)", i, c, all, cpus[0])
		}
	}
}

func TestFindWorkers(t *testing.T) {
	// The source tree: found from a subdirectory; the C worker may or may
	// not be built, and says which.
	w := FindWorkers("", "", "workers")
	if w.C == "" && !strings.Contains(w.CMissing, "make c") {
		t.Errorf("no C worker and no advice: %q", w.CMissing)
	}
	// Outside any source tree.
	w = FindWorkers("", "", t.TempDir())
	if w.C != "" || len(w.Python) != 0 || w.missing("c") == "" || w.missing("python") == "" || w.missing("") != "" {
		t.Errorf("outside the tree: %+v", w)
	}
	// Given paths that do not work.
	w = FindWorkers(filepath.Join(t.TempDir(), "nope"), "no-such-python3", "workers")
	if w.C != "" || !strings.Contains(w.CMissing, "nope") {
		t.Errorf("a missing --c-worker: %+v", w)
	}
	if len(w.Python) != 0 || !strings.Contains(w.PythonMissing, "no-such-python3 not found") {
		t.Errorf("a missing --python: %+v", w)
	}
	f := filepath.Join(t.TempDir(), "not-exec")
	os.WriteFile(f, []byte("x"), 0o644)
	if err := executable(f); err == nil {
		t.Error("a file without x bits counts as executable")
	}
}

func TestForeignArgs(t *testing.T) {
	sp := &workerSpec{Role: roleReader, Case: Case{Kind: Idle, Transport: PyView, Wait: Futex, Shape: Shape404, Readers: 1, Duration: 2 * time.Second},
		Dir: "/dev/shm/x", Index: 3, CPU: -1}
	got := strings.Join(args(sp), " ")
	want := "--kind idle --transport py-view --wait futex --size 640x404x3 --index 3 --dir /dev/shm/x --ring data --cpu -1 --duration-ns 2000000000"
	if got != want {
		t.Errorf("args:\n got %s\nwant %s", got, want)
	}
}

// TestWritePlotsAnySelection: every subset a flag selection can produce
// (one size, one transport, one kind, a single latency value) gives a
// report and plots, never a panic (gonum's log axis cannot span one
// value) or a half-written file.
func TestWritePlotsAnySelection(t *testing.T) {
	all := synthetic()
	subsets := map[string][]Result{"none": nil}
	for _, k := range AllKinds {
		for _, r := range all {
			if r.Kind == k {
				subsets["kind "+string(k)] = append(subsets["kind "+string(k)], r)
			}
		}
	}
	for _, r := range all {
		if r.Transport == FrameringView {
			subsets["transport framering-view"] = append(subsets["transport framering-view"], r)
		}
	}
	one := fakeResult(Case{Kind: Latency, Transport: FrameringView, Wait: Futex, Shape: Shape404, Readers: 1, Duration: time.Second})
	one.CDF = []CDFPoint{{40_000, 1}}
	one.Latency = Quantiles{Count: 1, P50: 40_000, P99: 40_000, P999: 40_000, Max: 40_000}
	subsets["one frame"] = []Result{one}
	failed := Result{Case: one.Case, Name: one.Name, Err: "boom"}
	subsets["only a failure"] = []Result{failed}
	for name, rs := range subsets {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			rep := NewReport(rs)
			dir := t.TempDir()
			files, err := rep.WriteFiles(dir)
			if err != nil {
				t.Fatalf("WriteFiles: %v", err)
			}
			if len(files) < 2 || files[0] != "results.json" || files[1] != "results.md" {
				t.Errorf("wrote %v", files)
			}
			for _, f := range files {
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil || fi.Size() == 0 {
					t.Errorf("%s: %v, %d bytes", f, err, fi.Size())
				}
			}
		})
	}
}

func TestPadLog(t *testing.T) {
	for _, c := range [][2]float64{{5, 5}, {0, 5}, {-1, 5}, {5, 5.1}} {
		a := plotAxisLog(c[0], c[1])
		padLog(a)
		if !(a.Min > 0 && a.Max >= 1.5*a.Min && a.Min <= c[1] && a.Max >= c[1]) {
			t.Errorf("padLog(%v..%v) = %v..%v: want a positive span of at least 1.5x around the data", c[0], c[1], a.Min, a.Max)
		}
	}
}

// plotAxisLog is a log axis over min..max.
func plotAxisLog(min, max float64) *plot.Axis {
	p := plot.New()
	p.X.Scale, p.X.Min, p.X.Max = plot.LogScale{}, min, max
	return &p.X
}
