package bench

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
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
		}
		for _, tr := range AllTransports {
			if !seen[tr][Latency] || !seen[tr][Throughput] {
				t.Errorf("quick=%v: %s lacks a latency or throughput case", quick, tr)
			}
		}
		// The measuring time alone must leave room for process start-up
		// within the suite's budget (90 s quick, 10 min full).
		budget := 10 * time.Minute * 2 / 3
		if quick {
			budget = 90 * time.Second / 3
		}
		if total > budget {
			t.Errorf("quick=%v: %d cases measure for %v, more than %v", quick, len(cases), total, budget)
		}
	}
	only := Plan{Transports: []Transport{UDS}, Kinds: []Kind{PingPong}, Shapes: []Shape{tiny}}.Cases()
	if len(only) != 1 || only[0].Transport != UDS || only[0].Kind != PingPong || only[0].Shape != tiny {
		t.Errorf("filtered plan = %v, want one uds ping-pong case at %v", only, tiny)
	}
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

// synthetic results covering every ratio and goal.
func synthetic() []Result {
	lat := func(t Transport, w Wait, s Shape, p50 int64) Result {
		return Result{Case: Case{Kind: Latency, Transport: t, Wait: w, Shape: s, Readers: 1, Duration: time.Second},
			Latency: Quantiles{Count: 10, P50: p50, P99: 2 * p50, P999: 3 * p50, Max: 4 * p50}, Delivered: 10, Frames: 10,
			CDF: []CDFPoint{{p50, 0.5}, {4 * p50, 1}}}
	}
	thr := func(t Transport, w Wait, s Shape, fps float64) Result {
		return Result{Case: Case{Kind: Throughput, Transport: t, Wait: w, Shape: s, Readers: 1, Duration: time.Second},
			FPS: fps, GBps: fps * float64(s.Bytes()) / 1e9, Delivered: 100, Frames: 100}
	}
	rs := []Result{
		lat(FrameringView, Futex, Shape404, 40_000), lat(FrameringView, Futex, Shape4K, 44_000),
		lat(FrameringView, Spin, Shape404, 800), lat(FrameringView, Spin, Shape4K, 1_200),
		lat(FrameringView, Futex, Shape1080, 42_000), lat(UDS, Block, Shape1080, 420_000),
		thr(FrameringCopy, Futex, Shape1080, 95), thr(Memcpy, None, Shape1080, 100), thr(FrameringView, Futex, Shape1080, 300),
		thr(Legacy, Poll, Shape1080, 50),
	}
	rs[len(rs)-1].Torn = 7
	for i := range rs {
		rs[i].Name = rs[i].Case.Name()
	}
	return rs
}

func TestAnalyze(t *testing.T) {
	ratios, goals := Analyze(synthetic())
	byName := map[string]Ratio{}
	for _, r := range ratios {
		byName[r.Name] = r
	}
	for name, want := range map[string]float64{
		"framering-copy throughput ÷ memcpy, 1920x1080x3":   0.95,
		"framering-view throughput ÷ memcpy, 1920x1080x3":   3,
		"framering-view latency p50 ÷ UDS p50, 1920x1080x3": 0.1,
		"framering-view p50 3840x2160x3 ÷ 640x404x3, futex": 1.1,
		"framering-view p50 3840x2160x3 ÷ 640x404x3, spin":  1.5,
		"framering-view p50, spin, 640x404x3":               800,
		"torn frames accepted, legacy":                      7,
		"torn frames accepted, framering-view":              0,
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
		"view latency flat across sizes, futex":                "MET",
		"view latency flat across sizes, spin":                 "MISSED",
		"copy-out read ≥ 0.9 × memcpy throughput, 1920x1080x3": "MET",
		"spin-mode view latency p50 ≤ 1 µs":                    "MISSED",
		"old recipe accepts torn frames, framering none":       "MET",
	}
	if len(goals) != len(want) {
		t.Fatalf("%d goals, want %d", len(goals), len(want))
	}
	for _, g := range goals {
		if w, ok := want[g.Name]; !ok || g.Status() != w {
			t.Errorf("goal %q: %s (%s), want %s", g.Name, g.Status(), g.Measured, w)
		}
	}
	// Nothing measured: every goal is n/a, not met or missed.
	_, goals = Analyze(nil)
	for _, g := range goals {
		if g.Status() != "n/a" {
			t.Errorf("goal %q with no results: %s", g.Name, g.Status())
		}
	}
}

func testReport() *Report {
	rep := NewReport(append(synthetic(), Result{Case: Case{Kind: PingPong, Transport: Pipe, Wait: Block, Shape: tiny, Readers: 1},
		Name: "pingpong/pipe/block/64x48x3/r1", Err: "pong: worker exited | badly\nsecond line"}))
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
	for _, want := range []string{"# framering benchmark results", "Test CPU", "## Ratios", "## Goals", "## One-way latency", "## Throughput", "## Ping-pong"} {
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
	if tables != 5 {
		t.Errorf("%d tables, want 5 (ratios, goals, latency, ping-pong, throughput)", tables)
	}
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"machine: Test CPU", "load average", "42.0µs", "FAILED: pong: worker exited", "MISSED", "MET"} {
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
