package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/framering/framering/bench"
)

var benchFlags struct {
	quick      bool
	json       bool
	out        string
	transports []string
	sizes      []string
	kinds      []string
	scale      float64
	dir        string
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Measure framering beside the old recipe, sockets, pipes and memcpy, in separate processes",
	Long: `bench runs every case as separate processes (this binary re-executed), writes
and reads every byte (each frame carries a checksum the readers verify), and
puts framering beside its alternatives in one run:

  transports  framering-copy (Read), framering-view (Acquire/Release, zero-copy),
              legacy (the old single-slot recipe), uds, pipe, tcp, and memcpy in
              one process as the physical reference
  sizes       640x404x3, 1280x720x3, 1920x1080x3, 3840x2160x3
  readers     1 and 4; wait modes futex, spin, 1 ms poll
  figures     one-way latency p50/p99/p99.9/max, ping-pong (round trip / 2),
              throughput (frames/s, GB/s), CPU seconds per process,
              frames dropped, torn frames accepted

The full suite takes under 10 minutes; --quick under 90 seconds. The table
goes to stdout, a progress bar to stderr when it is a terminal.`,
	Example: `  framering bench --quick
  framering bench --out results/          # results.json, results.md, PNG plots
  framering bench --json --transports framering-view,uds --sizes 1920x1080x3`,
	Args: cobra.NoArgs,
	RunE: runBench,
}

var benchWorkerCmd = &cobra.Command{
	Use:    "bench-worker SPEC",
	Short:  "One process of a bench case (internal)",
	Hidden: true,
	Args:   cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		if code := bench.WorkerMain(args[0], os.Stdout); code != 0 {
			os.Exit(code) // the worker has said why on stderr
		}
		return nil
	},
}

func init() {
	f := benchCmd.Flags()
	f.BoolVar(&benchFlags.quick, "quick", false, "a short run: fewer sizes and cases, short durations (under 90 s)")
	f.BoolVar(&benchFlags.json, "json", false, "print the results as JSON instead of tables")
	f.StringVar(&benchFlags.out, "out", "", "write results.json, results.md and PNG plots into this directory")
	f.StringSliceVar(&benchFlags.transports, "transports", nil, "run only these transports (comma-separated)")
	f.StringSliceVar(&benchFlags.sizes, "sizes", nil, "frame sizes WxHxC instead of the standard ones (comma-separated)")
	f.StringSliceVar(&benchFlags.kinds, "kinds", nil, "run only these measurements: latency, pingpong, throughput")
	f.Float64Var(&benchFlags.scale, "scale", 1, "multiply every case's duration by this")
	f.StringVar(&benchFlags.dir, "dir", "", "directory for the cases' rings, sockets and FIFOs (default /dev/shm)")
	root.AddCommand(benchCmd, benchWorkerCmd)
}

func benchPlan() (bench.Plan, error) {
	p := bench.Plan{Quick: benchFlags.quick, Scale: benchFlags.scale}
	if p.Scale <= 0 || p.Scale > 100 {
		return p, usagef("--scale %v: give a factor in (0, 100]", benchFlags.scale)
	}
	for _, t := range benchFlags.transports {
		tr := bench.Transport(strings.TrimSpace(t))
		ok := false
		for _, a := range bench.AllTransports {
			ok = ok || a == tr
		}
		if !ok {
			names := make([]string, len(bench.AllTransports))
			for i, a := range bench.AllTransports {
				names[i] = string(a)
			}
			return p, usagef("--transports: unknown transport %q; use %s", t, strings.Join(names, ", "))
		}
		p.Transports = append(p.Transports, tr)
	}
	for _, s := range benchFlags.sizes {
		sh, err := bench.ParseShape(s)
		if err != nil {
			return p, usagef("--sizes: %w", err)
		}
		p.Shapes = append(p.Shapes, sh)
	}
	for _, k := range benchFlags.kinds {
		switch kk := bench.Kind(strings.TrimSpace(k)); kk {
		case bench.Latency, bench.PingPong, bench.Throughput:
			p.Kinds = append(p.Kinds, kk)
		default:
			return p, usagef("--kinds: unknown measurement %q; use latency, pingpong, throughput", k)
		}
	}
	return p, nil
}

func runBench(cmd *cobra.Command, _ []string) error {
	plan, err := benchPlan()
	if err != nil {
		return err
	}
	cases := plan.Cases()
	if len(cases) == 0 {
		return usagef("no case matches the --transports, --sizes and --kinds given")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this program to run its workers: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	runner := &bench.Runner{Spawn: bench.ExecSpawner(exe, "bench-worker"), Dir: benchFlags.dir, Seed: uint64(time.Now().UnixNano())}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar := progressbar.NewOptions(len(cases),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription("bench"),
		)
		runner.Progress = func(done, total int, c bench.Case) {
			if done < total {
				bar.Describe(fmt.Sprintf("%-52s", c.Name()))
			}
			bar.Set(done)
			if done == total {
				bar.Finish()
			}
		}
	}

	m := bench.ThisMachine()
	start := time.Now()
	results := runner.RunAll(ctx, cases)
	rep := bench.NewReport(results)
	rep.Machine = m
	rep.Machine.LoadEnd = bench.LoadAvg()
	rep.Command = "framering " + strings.Join(os.Args[1:], " ")
	rep.Started = start
	rep.Seconds = time.Since(start).Seconds()
	rep.Quick = plan.Quick

	out := cmd.OutOrStdout()
	if benchFlags.json {
		err = rep.WriteJSON(out)
	} else {
		err = rep.WriteTable(out)
	}
	if err != nil {
		return fmt.Errorf("bench: write results: %w", err)
	}
	if benchFlags.out != "" {
		files, err := rep.WriteFiles(benchFlags.out)
		if err != nil {
			return fmt.Errorf("bench: %w; check that %s is writable", err, benchFlags.out)
		}
		for i := range files {
			files[i] = filepath.Join(benchFlags.out, files[i])
		}
		fmt.Fprintf(os.Stderr, "framering bench: wrote %s\n", strings.Join(files, ", "))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bench: interrupted after %d of %d cases; the results above are partial", len(results), len(cases))
	}
	if failed := rep.Failed(); len(failed) > 0 {
		return fmt.Errorf("bench: %d of %d cases failed:\n  %s", len(failed), len(results), strings.Join(failed, "\n  "))
	}
	return nil
}
