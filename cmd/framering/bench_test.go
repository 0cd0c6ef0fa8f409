package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/framering/framering/bench"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
)

func init() {
	// "bench-cli" is the cli helper for bench runs: the bench command
	// re-executes this binary as "bench-worker SPEC" (with the helper
	// variable inherited), which must run the worker, not bench again.
	testutil.Helper("bench-cli", func() int {
		if len(os.Args) >= 3 && os.Args[1] == "bench-worker" {
			return run(os.Args[1:])
		}
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(argsEnv)), &args); err != nil {
			fmt.Fprintf(os.Stderr, "bench-cli helper: bad %s: %v\n", argsEnv, err)
			return 3
		}
		return run(args)
	})
}

// parseBench resets the bench flags, parses args and plans the run.
func parseBench(args ...string) (bench.Plan, []bench.Case, error) {
	benchFlags.quick, benchFlags.json, benchFlags.out, benchFlags.pin = false, false, "", false
	benchFlags.transports, benchFlags.sizes, benchFlags.kinds = nil, nil, nil
	benchFlags.scale, benchFlags.dir, benchFlags.cWorker, benchFlags.python = 1, "", "", ""
	if err := benchCmd.ParseFlags(args); err != nil {
		return bench.Plan{}, nil, err
	}
	return benchCases()
}

// fakeResult is a plausible result of c, with every figure a report or
// goal reads.
func fakeResult(c bench.Case) bench.Result {
	r := bench.Result{Case: c, Name: c.Name(), Frames: 50, Delivered: 50 * uint64(c.Readers), Seconds: 1}
	switch c.Kind {
	case bench.Latency, bench.PingPong, bench.Throughput:
		p50 := int64(40_000)
		r.Latency = bench.Quantiles{Count: 42, Mean: p50, P50: p50, P99: 2 * p50, P999: 3 * p50, Max: 4 * p50}
		r.CDF = []bench.CDFPoint{{V: p50, F: 0.5}, {V: 4 * p50, F: 1}}
		r.Sched = &bench.SchedStats{P50: 100, P99: 1000, UncontendedP50: p50, Frames: 42}
		r.FPS = 300
		r.GBps = 300 * float64(c.Shape.Bytes()) / 1e9
		if c.Kind == bench.Latency && (c.Transport == bench.FrameringView || c.Transport == bench.FrameringCopy) {
			r.First = &bench.FirstFrames{OpenNs: 1e6, Publish1: 2e5, PublishSlotsP50: 2e5, PublishSteady: 2e5, Latency1: p50, LatencySlotsMax: p50}
		}
	case bench.CopyOut:
		t := bench.Quantiles{Count: 20, P50: 100_000, P99: 200_000, Max: 300_000}
		r.Copy = []bench.CopyStats{{Method: bench.MethodRead, Time: t, GBps: 1}, {Method: bench.MethodGoCopy, Time: t, GBps: 1}}
	case bench.Idle:
		r.Idle = &bench.IdleStats{Seconds: 2, CPUPercent: 0.1, WakeupsPerSec: 10}
	}
	return r
}

// TestBenchFlagMatrix: any selection of flags gives a report (table,
// JSON, markdown, plots) or a usage error that says what was wrong; no
// panic (one size used to panic the plot's log axis) and no goal reported
// as missed that the selection did not measure.
func TestBenchFlagMatrix(t *testing.T) {
	ok := [][]string{
		{"--quick"},
		{"--quick", "--sizes", "64x48x3,3840x2160x3"},
		{"--sizes", "1920x1080x3"},
		{"--transports", "uds"},
		{"--transports", "framering-view", "--kinds", "latency", "--sizes", "64x48x3"},
		{"--transports", "framering-view", "--kinds", "pingpong", "--sizes", "64x48x3"},
		{"--kinds", "idle"},
		{"--kinds", "copyout"},
		{"--transports", "c-view,py-copy"},
		{"--quick", "--transports", "bare"},
		{"--kinds", "throughput", "--transports", "memcpy", "--sizes", "3840x2160x3"},
		{"--quick", "--scale", "0.01", "--json", "--transports", "framering-copy,c-copy", "--kinds", "latency,copyout"},
	}
	if cpus, err := shm.CPUs(); err == nil && len(cpus) >= 2 {
		ok = append(ok, []string{"--quick", "--pin"}, []string{"--pin", "--kinds", "latency", "--transports", "bare", "--sizes", "64x48x3"})
	}
	for _, args := range ok {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := t.TempDir()
			plan, cases, err := parseBench(append(args, "--out", out)...)
			if err != nil {
				t.Fatalf("usage error: %v", err)
			}
			var rs []bench.Result
			for _, c := range cases {
				if err := c.Check(); err != nil {
					t.Errorf("the plan has an invalid case: %v", err)
				}
				rs = append(rs, fakeResult(c))
			}
			rep := bench.NewReport(rs)
			rep.Quick = plan.Quick
			var stdout, msg strings.Builder
			if err := emitReport(rep, &stdout, &msg); err != nil {
				t.Fatalf("report: %v", err)
			}
			if stdout.Len() == 0 || !strings.Contains(msg.String(), "results.json") {
				t.Errorf("nothing printed (%d bytes) or no files named: %q", stdout.Len(), msg.String())
			}
			for _, g := range rep.Goals {
				if !g.Judged && (g.Met != nil || g.Why == "" || g.Status() != "-") {
					t.Errorf("goal %q not judged but %s, why %q", g.Name, g.Status(), g.Why)
				}
			}
			back, err := os.Open(filepath.Join(out, "results.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			got, err := bench.ReadReport(back)
			if err != nil || len(got.Results) != len(cases) || len(got.Goals) != len(rep.Goals) {
				t.Fatalf("results.json: %v, %d results for %d cases", err, len(got.Results), len(cases))
			}
			ents, _ := os.ReadDir(out)
			for _, e := range ents {
				fi, _ := e.Info()
				if fi.Size() == 0 {
					t.Errorf("%s is empty", e.Name())
				}
				if strings.HasSuffix(e.Name(), ".png") {
					f, _ := os.Open(filepath.Join(out, e.Name()))
					if _, err := png.Decode(f); err != nil {
						t.Errorf("%s: %v", e.Name(), err)
					}
					f.Close()
				}
			}
		})
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--transports", "bare", "--kinds", "throughput"}, "no case matches"},
		{[]string{"--kinds", "pingpong", "--transports", "c-view"}, "no case matches"},
		{[]string{"--kinds", "idle", "--transports", "uds"}, "no case matches"},
		{[]string{"--scale", "0"}, "--scale"},
		{[]string{"--scale", "1000"}, "--scale"},
		{[]string{"--scale", "NaN"}, "--scale"},
		{[]string{"--sizes", "2x2x1"}, "--sizes"},
		{[]string{"--sizes", "big"}, "--sizes"},
		{[]string{"--kinds", "vibes"}, "unknown measurement"},
		{[]string{"--transports", "carrier-pigeon"}, "unknown transport"},
		{[]string{"--out", "/dev/null/results"}, "--out"},
	}
	for _, b := range bad {
		_, _, err := parseBench(b.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), b.want) || !errors.As(err, &ue) && !isCobraUsage(err) {
			t.Errorf("%v: error %v, want a usage error with %q", b.args, err, b.want)
		}
	}
}

// TestBenchRunsEndToEnd runs framering bench as a user would, with one
// size (the selection that used to panic in the plots), the bare and view
// latency pair, the idle reader and the C reader (or its skip message).
func TestBenchRunsEndToEnd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"bench", "--quick", "--sizes", "64x48x3", "--transports", "framering-view,bare,c-view", "--kinds", "latency,idle",
		"--scale", "0.2", "--out", out, "--dir", testutil.ShmDir(t)}
	b, _ := json.Marshal(args)
	c := testutil.Start(t, "bench-cli", argsEnv+"="+string(b))
	res := finish(t, c)
	if res.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"One-way latency", "Idle", "Goals (", "view futex p50 ÷ bare futex p50 at equal pacing, 64x48x3"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	f, err := os.Open(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := bench.ReadReport(f)
	if err != nil {
		t.Fatal(err)
	}
	var sawC, sawIdle bool
	for _, r := range rep.Results {
		if r.Err != "" {
			t.Errorf("%s failed: %s", r.Name, r.Err)
		}
		if r.Transport == bench.CView {
			sawC = true
			if r.Skipped != "" && !strings.Contains(r.Skipped, "make c") {
				t.Errorf("C skipped without saying how to build it: %s", r.Skipped)
			}
		}
		if r.Kind == bench.Idle && r.Idle != nil && r.Idle.Seconds > 0 {
			sawIdle = true
		}
	}
	if !sawC || !sawIdle {
		t.Errorf("results lack the C case (%v) or the idle figures (%v)", sawC, sawIdle)
	}
	judged := 0
	for _, g := range rep.Goals {
		if g.Judged {
			judged++
		}
		if !g.Judged && g.Why == "" {
			t.Errorf("goal %q neither judged nor explained", g.Name)
		}
	}
	if judged == 0 {
		t.Error("no goal judged from a run with the pairs they need")
	}
	for _, p := range []string{bench.PlotCDF, bench.PlotP50} {
		if fi, err := os.Stat(filepath.Join(out, p)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
}
