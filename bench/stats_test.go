package bench

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/hist"
)

func snapOf(vals ...int64) *hist.Snapshot {
	var h hist.Histogram
	for _, v := range vals {
		h.Record(v)
	}
	return h.Snapshot()
}

// within reports whether got is within the histogram's 3.2 % of want.
func within(got, want int64) bool {
	return math.Abs(float64(got-want)) <= 0.033*float64(want)+1
}

func TestSummarize(t *testing.T) {
	// 1..1000 µs: p50 = 500 µs, p99 = 990 µs, p99.9 = 999 µs.
	var vals []int64
	for i := int64(1); i <= 1000; i++ {
		vals = append(vals, i*1000)
	}
	q := Summarize(snapOf(vals...))
	if q.Count != 1000 || q.Max != 1_000_000 || q.Mean != 500_500 {
		t.Fatalf("count %d max %d mean %d; want 1000, 1000000, 500500", q.Count, q.Max, q.Mean)
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"p50", q.P50, 500_000}, {"p99", q.P99, 990_000}, {"p99.9", q.P999, 999_000}} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %d, want %d ± 3.2 %%", c.name, c.got, c.want)
		}
	}
	if q.P50 > q.P99 || q.P99 > q.P999 || q.P999 > q.Max {
		t.Errorf("quantiles not ordered: %+v", q)
	}
	if z := Summarize(&hist.Snapshot{}); z != (Quantiles{}) {
		t.Errorf("empty snapshot gives %+v, want zeros", z)
	}
	if z := Summarize(nil); z != (Quantiles{}) {
		t.Errorf("nil snapshot gives %+v, want zeros", z)
	}
}

func TestCDF(t *testing.T) {
	s := snapOf(10, 10, 20, 40, 1000)
	pts := CDF(s, 0)
	want := []CDFPoint{{10, 0.4}, {20, 0.6}, {40, 0.8}}
	if len(pts) != 4 {
		t.Fatalf("CDF = %v, want 4 points", pts)
	}
	for i, w := range want {
		if pts[i] != w {
			t.Errorf("point %d = %+v, want %+v", i, pts[i], w)
		}
	}
	if last := pts[3]; last.F != 1 || last.V != 1000 {
		t.Errorf("last point %+v, want F=1 at the maximum 1000", last)
	}
	// Thinning keeps the ends and stays monotonic.
	var vals []int64
	for i := int64(1); i <= 5000; i++ {
		vals = append(vals, i*i)
	}
	full := CDF(snapOf(vals...), 0)
	thin := CDF(snapOf(vals...), 50)
	if len(full) <= 50 || len(thin) != 50 {
		t.Fatalf("full %d points, thinned %d; want > 50 and 50", len(full), len(thin))
	}
	if thin[0] != full[0] || thin[49] != full[len(full)-1] {
		t.Errorf("thinning lost an end: %+v..%+v vs %+v..%+v", thin[0], thin[49], full[0], full[len(full)-1])
	}
	for i := 1; i < len(thin); i++ {
		if thin[i].V < thin[i-1].V || thin[i].F < thin[i-1].F {
			t.Fatalf("not monotonic at %d: %+v after %+v", i, thin[i], thin[i-1])
		}
	}
	if CDF(&hist.Snapshot{}, 10) != nil {
		t.Error("CDF of an empty snapshot is not empty")
	}
}

func TestRates(t *testing.T) {
	if got := Mean([]float64{1, 2, 6}); got != 3 {
		t.Errorf("Mean = %v, want 3", got)
	}
	if got := Mean(nil); got != 0 {
		t.Errorf("Mean(nil) = %v, want 0", got)
	}
	if got := Div(3, 4); got != 0.75 {
		t.Errorf("Div(3, 4) = %v", got)
	}
	if Div(3, 0) != 0 || Div(0, 3) != 0 {
		t.Error("Div with a missing side is not 0")
	}
	// 101 frames, first to last 2 s apart: 100 intervals, 50 frames/s.
	if got := spanRate(101, 1e9, 3e9); got != 50 {
		t.Errorf("spanRate = %v, want 50", got)
	}
	if spanRate(1, 1e9, 3e9) != 0 || spanRate(5, 3e9, 3e9) != 0 {
		t.Error("spanRate of one frame or no time is not 0")
	}
	if got := rate(30, 0, 3e9); got != 10 {
		t.Errorf("rate = %v, want 10", got)
	}
}

func TestFill(t *testing.T) {
	c := Case{Kind: Throughput, Transport: UDS, Wait: Block, Shape: Shape1080, Readers: 2, Duration: time.Second}
	w := &workerResult{Role: roleWriter, Frames: 100, Start: 0, End: 2e9, CPU: 1.5}
	r1 := &workerResult{Role: roleReader, Frames: 100, First: 0, Last: 1e9, CPU: 0.5, Hist: snapOf(1000, 2000), Torn: 1}
	r2 := &workerResult{Role: roleReader, Frames: 51, First: 0, Last: 1e9, CPU: 0.7, Hist: snapOf(3000), Rejected: 4}
	res := Result{Case: c}
	res.fill([]*workerResult{w, r1, r2})
	if res.Frames != 100 || res.Delivered != 151 || res.Dropped != 49 || res.Torn != 1 || res.Rejected != 4 {
		t.Errorf("frames %d delivered %d dropped %d torn %d rejected %d; want 100 151 49 1 4",
			res.Frames, res.Delivered, res.Dropped, res.Torn, res.Rejected)
	}
	if res.Latency.Count != 3 || res.Latency.Max != 3000 {
		t.Errorf("latency %+v: want the 3 samples of both readers", res.Latency)
	}
	if res.FPS != (99+50)/2.0 {
		t.Errorf("FPS = %v, want the mean of 99 and 50", res.FPS)
	}
	if want := res.FPS * float64(Shape1080.Bytes()) / 1e9; res.GBps != want {
		t.Errorf("GBps = %v, want %v", res.GBps, want)
	}
	if res.WriterFPS != 50 || res.Seconds != 2 || res.WriterCPU != 1.5 || len(res.ReaderCPU) != 2 {
		t.Errorf("writer fps %v seconds %v cpu %v readers %v", res.WriterFPS, res.Seconds, res.WriterCPU, res.ReaderCPU)
	}
}

func TestVerifyCatchesTornFrames(t *testing.T) {
	n := 3*markEvery + 100
	a, b := newFrame(n), newFrame(n)
	prepare(a, 7)
	prepare(b, 8)
	setSend(a, 123)
	if !verify(a) || !verify(b) {
		t.Fatal("whole frames fail verification")
	}
	if sendTime(a) != 123 || frameSeq(b) != 8 {
		t.Fatalf("header: send %d seq %d", sendTime(a), frameSeq(b))
	}
	// A reader that copied the first pages of frame 8 and the rest of 7.
	// (Past the last mark the two frames are the same bytes.)
	for _, cut := range []int{benchHdr + 8, benchHdr + 20, markEvery + 1, 2*markEvery + 50, firstMark + 3*markEvery} {
		torn := append(append([]byte(nil), b[:cut]...), a[cut:]...)
		if verify(torn) {
			t.Errorf("frame spliced at %d passes verification", cut)
		}
	}
	// Both numbers say 9 over frame 7's body.
	c := append([]byte(nil), a...)
	binary.LittleEndian.PutUint64(c[offSeq:], 9)
	binary.LittleEndian.PutUint64(c[benchHdr:], 9)
	if verify(c) {
		t.Error("frame 7 renumbered 9 passes verification")
	}
	if verify(a[:minFrame-1]) {
		t.Error("a frame shorter than the minimum passes")
	}
}

func TestPlan(t *testing.T) {
	for _, quick := range []bool{true, false} {
		cases := Plan{Quick: quick}.Cases()
		seen := map[Transport]map[Kind]bool{}
		names := map[string]bool{}
		var total time.Duration
		pinned := 0
		for _, c := range cases {
			if err := c.Check(); err != nil {
				t.Errorf("quick=%v: %v", quick, err)
			}
			if names[c.Name()] {
				t.Errorf("quick=%v: case %s twice", quick, c.Name())
			}
			names[c.Name()] = true
			if seen[c.Transport] == nil {
				seen[c.Transport] = map[Kind]bool{}
			}
			seen[c.Transport][c.Kind] = true
			total += c.Duration
			if c.Pin {
				pinned++
			}
		}
		for _, tr := range AllTransports {
			if !seen[tr][Latency] && !(quick && tr.foreign() && !tr.view()) {
				t.Errorf("quick=%v: %s lacks a latency case", quick, tr)
			}
			if !seen[tr][Throughput] && tr != Bare {
				t.Errorf("quick=%v: %s lacks a throughput case", quick, tr)
			}
		}
		for _, tr := range []Transport{FrameringCopy, CCopy, PyCopy} {
			if !seen[tr][CopyOut] {
				t.Errorf("quick=%v: no copy-out case for %s", quick, tr)
			}
		}
		if !seen[FrameringView][Idle] || !seen[FrameringCopy][PingPong] {
			t.Errorf("quick=%v: no idle or copy ping-pong case", quick)
		}
		if pinned != 2*len(shapesOfCases(cases)) {
			t.Errorf("quick=%v: %d pinned cases, want the spin pair at each size", quick, pinned)
		}
		// Every goal is judgeable from the plan's cases: synthesize a
		// result per case and check that no goal says the run lacked one.
		var rs []Result
		for _, c := range cases {
			rs = append(rs, fakeResult(c))
		}
		for _, g := range goals(rs) {
			if !g.Judged && !(quick && strings.Contains(g.Why, "at 640x404x3") || quick && strings.Contains(g.Why, "at 3840x2160x3")) {
				t.Errorf("quick=%v: goal %q cannot be judged from the plan: %s", quick, g.Name, g.Why)
			}
		}
		// The measuring time alone must leave room for process start-up
		// within the suite's budget (60 s quick, 10 min full).
		budget := 10 * time.Minute * 2 / 3
		if quick {
			budget = 60 * time.Second / 3
		}
		if total > budget {
			t.Errorf("quick=%v: %d cases measure for %v, more than %v", quick, len(cases), total, budget)
		}
	}
	only := Plan{Transports: []Transport{UDS}, Kinds: []Kind{PingPong}, Shapes: []Shape{tiny}}.Cases()
	if len(only) != 1 || only[0].Transport != UDS || only[0].Kind != PingPong || only[0].Shape != tiny {
		t.Errorf("filtered plan = %v, want one uds ping-pong case at %v", only, tiny)
	}
	// --pin pins everything, and the spin pair is not there twice.
	for _, c := range (Plan{Quick: true, Pin: true}).Cases() {
		if !c.Pin {
			t.Errorf("--pin plan has an unpinned case %s", c.Name())
		}
	}
	for _, c := range (Plan{Quick: true, NoPinnedPair: true}).Cases() {
		if c.Pin {
			t.Errorf("a plan without the pinned pair has %s", c.Name())
		}
	}
	// --quick with sizes keeps the first.
	if cs := (Plan{Quick: true, Shapes: []Shape{tiny, Shape4K}}).Cases(); len(shapesOfCases(cs)) != 1 || cs[0].Shape != tiny {
		t.Errorf("quick plan with two sizes measured %v", shapesOfCases(cs))
	}
}

func shapesOfCases(cs []Case) []Shape {
	var out []Shape
	for _, c := range cs {
		if !slices.Contains(out, c.Shape) {
			out = append(out, c.Shape)
		}
	}
	return out
}

func TestCaseCheckRefuses(t *testing.T) {
	ok := Case{Kind: Latency, Transport: UDS, Wait: Block, Shape: tiny, Readers: 1, Duration: time.Second}
	for name, mut := range map[string]func(*Case){
		"transport":      func(c *Case) { c.Transport = "carrier-pigeon" },
		"wait":           func(c *Case) { c.Wait = Spin },
		"kind":           func(c *Case) { c.Kind = "vibes" },
		"readers":        func(c *Case) { c.Readers = 0 },
		"pingpong 2":     func(c *Case) { c.Kind, c.Readers = PingPong, 2 },
		"memcpy readers": func(c *Case) { c.Transport, c.Wait, c.Readers = Memcpy, None, 2 },
		"tiny frame":     func(c *Case) { c.Shape = Shape{2, 2, 1} },
		"no duration":    func(c *Case) { c.Duration = 0 },
	} {
		c := ok
		mut(&c)
		if err := c.Check(); err == nil {
			t.Errorf("%s: Check accepted %+v", name, c)
		}
	}
	if err := ok.Check(); err != nil {
		t.Errorf("valid case refused: %v", err)
	}
	if _, err := ParseShape("2x2x1"); err == nil {
		t.Error("ParseShape accepted a frame too small to carry the header")
	}
	if s, err := ParseShape("1920x1080x3"); err != nil || s != Shape1080 {
		t.Errorf("ParseShape = %v, %v", s, err)
	}
}

// fakeResult is a plausible result of case c: every figure a goal or a
// report reads is set.
func fakeResult(c Case) Result {
	r := Result{Case: c, Name: c.Name(), Frames: 100, Delivered: 100 * uint64(c.Readers), Seconds: 1}
	p50 := int64(40_000)
	switch {
	case c.Transport == Bare && c.Wait == Spin:
		p50 = 500
	case c.Wait == Spin:
		p50 = 2_000
	case c.Transport == CView:
		p50 = 40_500
	case c.Readers == 4:
		p50 = 50_000
	}
	if c.Kind == PingPong {
		p50 = int64(c.Shape.Bytes()) / 20 // 20 GB/s in and out
	}
	if c.Kind == Latency || c.Kind == PingPong || c.Kind == Throughput {
		r.Latency = Quantiles{Count: 92, Mean: p50, P50: p50, P99: 2 * p50, P999: 3 * p50, Max: 4 * p50}
		r.CDF = []CDFPoint{{p50, 0.5}, {4 * p50, 1}}
		r.Sched = &SchedStats{P50: 100, P99: 2000, Contended: 0.01, UncontendedP50: p50, Frames: 92}
		r.FPS = 1e9 / float64(p50)
		r.GBps = r.FPS * float64(c.Shape.Bytes()) / 1e9
	}
	if c.Kind == Latency && c.Transport.ring() {
		r.First = &FirstFrames{OpenNs: 5e6, Publish1: 1_100_000, PublishSlotsP50: 1_050_000, PublishSteady: 1_000_000, Latency1: 2 * p50, LatencySlotsMax: 3 * p50}
	}
	if c.Kind == CopyOut {
		ns := int64(c.Shape.Bytes()) / 10 // 10 GB/s
		st := func(m string, f float64) CopyStats {
			t := int64(float64(ns) * f)
			return CopyStats{Method: m, Time: Quantiles{Count: 20, P50: t, P99: 2 * t, Max: 3 * t}, GBps: float64(c.Shape.Bytes()) / float64(t)}
		}
		switch c.Transport {
		case FrameringCopy:
			r.Copy = []CopyStats{st(MethodRead, 1), st(MethodGoCopy, 1.5)}
		case CCopy:
			r.Copy = []CopyStats{st(MethodRead, 1), st(MethodGlibc, 0.95)}
		case PyCopy:
			r.Copy = []CopyStats{st(MethodRead, 1.5), st(MethodNumpy, 1)}
		}
	}
	if c.Kind == Idle {
		r.Idle = &IdleStats{Seconds: 5, CPUPercent: 0.2, WakeupsPerSec: 20}
	}
	if c.Transport == Legacy && c.Kind == Throughput {
		r.Torn = 3
	}
	return r
}

// synthetic results covering every ratio and goal, at 1080p, with some
// goals met and some missed.
func synthetic() []Result {
	var rs []Result
	for _, c := range (Plan{Quick: true}).Cases() {
		rs = append(rs, fakeResult(c))
	}
	// Two more sizes for the size ratios.
	for _, s := range []Shape{Shape404, Shape4K} {
		for _, w := range []Wait{Futex, Spin} {
			rs = append(rs, fakeResult(Case{Kind: Latency, Transport: FrameringView, Wait: w, Shape: s, Readers: 1, Duration: time.Second}))
		}
	}
	set := func(name string, f func(*Result)) {
		for i := range rs {
			if rs[i].Name == name {
				f(&rs[i])
				return
			}
		}
		panic("no case " + name)
	}
	set("latency/framering-view/futex/3840x2160x3/r1", func(r *Result) { r.Latency.P50 = 44_000 })
	set("latency/framering-view/futex/1920x1080x3/r4", func(r *Result) { r.Latency.P50 = 70_000 }) // 1.75x: missed
	set("latency/uds/block/1920x1080x3/r1", func(r *Result) { r.Latency.P50 = 400_000 })
	set("throughput/memcpy/none/1920x1080x3/r1", func(r *Result) { r.FPS = 100 })
	set("throughput/framering-copy/futex/1920x1080x3/r1", func(r *Result) { r.FPS = 95 })
	return rs
}

func TestAnalyze(t *testing.T) {
	ratios, goals := Analyze(synthetic())
	byName := map[string]Ratio{}
	for _, r := range ratios {
		byName[r.Name] = r
	}
	for name, want := range map[string]float64{
		"framering-copy throughput ÷ memcpy, 1920x1080x3":    0.95,
		"framering-view latency p50 ÷ UDS p50, 1920x1080x3":  0.1,
		"framering-view p50 3840x2160x3 ÷ 640x404x3, futex":  1.1,
		"framering-view p50 3840x2160x3 ÷ 640x404x3, spin":   1,
		"torn frames accepted, legacy":                       3,
		"torn frames accepted, framering-view":               0,
		"idle framering-view reader, CPU":                    0.2,
		"C copy-out read ÷ glibc memcpy (time), 1920x1080x3": 1 / 0.95,
	} {
		r, ok := byName[name]
		if !ok {
			t.Errorf("no ratio %q", name)
			continue
		}
		if math.Abs(r.Value-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, r.Value, want)
		}
	}
	want := map[string]string{
		"view futex p50 ÷ bare futex p50 at equal pacing, 1920x1080x3":        "MET",    // 40 / 40 µs
		"4 readers ÷ 1 reader, view futex p50, 1920x1080x3":                   "MISSED", // 1.75x
		"spin view p50 ÷ cache-line one-way (bare spin), pinned, 1920x1080x3": "MET",    // 2 / 0.5 µs
		"copy-out read ÷ fastest of glibc memcpy and Go copy, 640x404x3":      "-",
		"copy-out read ÷ fastest of glibc memcpy and Go copy, 1920x1080x3":    "MET", // 0.95x
		"copy-out read ÷ fastest of glibc memcpy and Go copy, 3840x2160x3":    "-",
		"copy-in + copy-out ping-pong p50 ÷ iceoryx's published, 640x404x3":   "-",
		"copy-in + copy-out ping-pong p50 ÷ iceoryx's published, 1920x1080x3": "MET", // 311 µs vs 526 µs
		"copy-in + copy-out ping-pong p50 ÷ iceoryx's published, 3840x2160x3": "-",
		"first frame into a fresh 1920x1080x3 ring ÷ steady-state frame":      "MET",    // 1.1x
		"C view p50 − Go view p50, 1920x1080x3":                               "MET",    // +0.5 µs
		"Python copy-out ÷ numpy copy in one process, 1920x1080x3":            "MISSED", // 0.67x
		"old recipe accepts torn frames, framering none":                      "MET",
		"a blocked Go reader's CPU, idle ring":                                "MET",
	}
	// The other sizes have latency cases, but not the pairs.
	for _, sz := range []string{"640x404x3", "3840x2160x3"} {
		for _, g := range []string{"view futex p50 ÷ bare futex p50 at equal pacing, ", "4 readers ÷ 1 reader, view futex p50, ",
			"spin view p50 ÷ cache-line one-way (bare spin), pinned, ", "C view p50 − Go view p50, "} {
			want[g+sz] = "-"
		}
	}
	if len(goals) != len(want) {
		for _, g := range goals {
			t.Logf("goal %q", g.Name)
		}
		t.Fatalf("%d goals, want %d", len(goals), len(want))
	}
	for _, g := range goals {
		w, ok := want[g.Name]
		if !ok || g.Status() != w {
			t.Errorf("goal %q: %s (%s), want %s", g.Name, g.Status(), g.MeasuredText(), w)
		}
		if g.Judged != (g.Met != nil) || g.Judged == (g.Why != "") {
			t.Errorf("goal %q: judged %v, met %v, why %q: inconsistent", g.Name, g.Judged, g.Met, g.Why)
		}
	}
	// Nothing measured: every goal is not judged, none met or missed.
	_, goals = Analyze(nil)
	if len(goals) == 0 {
		t.Fatal("no goals listed for an empty run")
	}
	for _, g := range goals {
		if g.Status() != "-" || g.Judged || g.Why == "" {
			t.Errorf("goal %q with no results: %s, judged %v, why %q", g.Name, g.Status(), g.Judged, g.Why)
		}
	}
}

// TestGoalsRefuseContention: a case whose frames mostly waited for a CPU,
// or that has no steady-state frame, leaves its goal not judged, with the
// reason, instead of met or missed.
func TestGoalsRefuseContention(t *testing.T) {
	rs := synthetic()
	for i := range rs {
		switch rs[i].Name {
		case "latency/bare/futex/1920x1080x3/r1":
			rs[i].Sched.Contended = 0.8
		case "pingpong/framering-copy/spin/1920x1080x3/r1":
			rs[i].Latency = Quantiles{}
		}
	}
	_, goals := Analyze(rs)
	for _, g := range goals {
		switch g.Name {
		case "view futex p50 ÷ bare futex p50 at equal pacing, 1920x1080x3":
			if g.Judged || !strings.Contains(g.Why, "80 % of frames waited") {
				t.Errorf("contended baseline: %s, %q", g.Status(), g.Why)
			}
		case "copy-in + copy-out ping-pong p50 ÷ iceoryx's published, 1920x1080x3":
			if g.Judged || !strings.Contains(g.Why, "no steady-state frame") {
				t.Errorf("no steady frames: %s, %q", g.Status(), g.Why)
			}
		case "4 readers ÷ 1 reader, view futex p50, 1920x1080x3":
			if !g.Judged {
				t.Errorf("fan-out not judged: %q (only its 1-reader side must be uncontended)", g.Why)
			}
		}
	}
	// Most frames contended but enough uncontended ones: judged on those,
	// and the measured text says so.
	rs = synthetic()
	for i := range rs {
		if rs[i].Name == "latency/bare/futex/1920x1080x3/r1" {
			rs[i].Sched.Contended, rs[i].Sched.UncontendedP50, rs[i].Latency.P50 = 0.6, 38_000, 60_000
		}
	}
	_, goals = Analyze(rs)
	for _, g := range goals {
		if g.Name == "view futex p50 ÷ bare futex p50 at equal pacing, 1920x1080x3" {
			if !g.Judged || !strings.Contains(g.Measured, "on the uncontended frames") || math.Abs(g.Value-40.0/38) > 1e-9 {
				t.Errorf("judged %v value %v measured %q; want 40/38 on the uncontended frames", g.Judged, g.Value, g.Measured)
			}
		}
	}
	// A skipped language says so in the goal.
	rs = synthetic()
	for i := range rs {
		if rs[i].Transport == CCopy || rs[i].Transport == CView {
			rs[i] = Result{Case: rs[i].Case, Name: rs[i].Name, Skipped: "C reader: c/build/framering-bench-c missing: run make c"}
		}
	}
	_, goals = Analyze(rs)
	for _, g := range goals {
		if strings.HasPrefix(g.Name, "copy-out read ÷ fastest") && strings.HasSuffix(g.Name, "1920x1080x3") {
			if g.Judged || !strings.Contains(g.Why, "run make c") || !strings.Contains(g.Why, "Go copy alone: 1.50x") {
				t.Errorf("copy-out goal without the C worker: %s %q", g.Status(), g.Why)
			}
		}
		if strings.HasPrefix(g.Name, "C view") && (g.Judged || !strings.Contains(g.Why, "run make c")) {
			t.Errorf("C view goal without the C worker: %s %q", g.Status(), g.Why)
		}
	}
}

func testReport() *Report {
	rep := NewReport(append(synthetic(), Result{Case: Case{Kind: PingPong, Transport: Pipe, Wait: Block, Shape: tiny, Readers: 1},
		Name: "pingpong/pipe/block/64x48x3/r1", Err: "pong: worker exited | badly\nsecond line"},
		Result{Case: Case{Kind: Latency, Transport: CCopy, Wait: Futex, Shape: tiny, Readers: 1}, Name: "latency/c-copy/futex/64x48x3/r1",
			Skipped: "C reader: missing"}))
	rep.Machine = Machine{CPU: "Test CPU | x", Cores: 2, Kernel: "6.1", GoVersion: "go1.26", LoadStart: "0.1 0.2 0.3"}
	rep.Command = "framering bench --quick"
	rep.Started = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return rep
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := testReport()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatal("WriteJSON wrote invalid JSON")
	}
	back, err := ReadReport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rep.Results) || back.Machine != rep.Machine || len(back.Goals) != len(rep.Goals) {
		t.Fatalf("round trip lost data: %d results, machine %+v", len(back.Results), back.Machine)
	}
	for i := range rep.Results {
		a, b := rep.Results[i], back.Results[i]
		if a.Case != b.Case || a.Latency != b.Latency || a.FPS != b.FPS || a.Torn != b.Torn || a.Err != b.Err {
			t.Errorf("result %d: %+v came back as %+v", i, a, b)
		}
	}
	if got := back.Failed(); len(got) != 1 || !strings.HasPrefix(got[0], "pingpong/pipe") {
		t.Errorf("Failed() = %v, want the one failed case", got)
	}
}

func TestReportMarkdownTables(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"# framering benchmark results", "Test CPU", "## Ratios", "## Goals", "## One-way latency", "## First frames",
		"## Throughput", "## Ping-pong", "## Copy-out", "## Idle", "## Skipped", "- C reader: missing", "skipped: C reader: missing"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// Every table row has as many cells as its header.
	cells := func(l string) int {
		return len(strings.Split(strings.ReplaceAll(strings.Trim(l, "|"), `\|`, ""), "|"))
	}
	lines := strings.Split(md, "\n")
	tables := 0
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "|") {
			continue
		}
		tables++
		n := cells(lines[i])
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "|---") || cells(lines[i+1]) != n {
			t.Fatalf("table at line %d has no rule row of %d cells", i+1, n)
		}
		for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
			if cells(lines[i]) != n {
				t.Errorf("line %d has %d cells, header %d: %s", i+1, cells(lines[i]), n, lines[i])
			}
		}
	}
	if tables != 8 {
		t.Errorf("%d tables, want 8 (ratios, goals, latency, first frames, ping-pong, throughput, copy-out, idle)", tables)
	}
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"machine: Test CPU", "load average", "40.0µs", "FAILED: pong: worker exited", "MISSED", "MET",
		"spin, pinned", "0.200", "skipped (see below)", "Skipped\n  C reader: missing", "not judged: needs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	files, err := testReport().WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"results.json", "results.md", PlotCDF, PlotP50, PlotThroughput}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	for _, f := range want[2:] {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
			t.Errorf("%s is %v, want a readable plot", f, b)
		}
	}
	// No data for plots: only the two results files.
	files, err = NewReport(nil).WriteFiles(filepath.Join(t.TempDir(), "empty"))
	if err != nil || len(files) != 2 {
		t.Errorf("empty report wrote %v, %v; want results.json and results.md only", files, err)
	}
}

func TestDurationFormat(t *testing.T) {
	for ns, want := range map[int64]string{0: "-", 850: "850ns", 1234: "1.23µs", 42_000: "42.0µs", 1_050_000: "1.05ms", 12_300_000: "12.3ms"} {
		if got := Duration(ns); got != want {
			t.Errorf("Duration(%d) = %q, want %q", ns, got, want)
		}
	}
}
