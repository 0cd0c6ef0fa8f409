package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/framering/framering/bench"
	"github.com/framering/framering/internal/shm"
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
	pin        bool
	cWorker    string
	python     string
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Measure framering's transport beside its floor, sockets, pipes, memcpy, and its C and Python readers",
	Long: `bench runs every case as separate processes (this binary re-executed, and the
C and Python readers of the source tree), writes and reads every byte (each
frame carries a checksum the readers verify), and puts framering beside its
floor and its alternatives in one run:

  transports  framering-copy (Publish in, Read out), framering-view (a loan filled
              in place, Acquire/Release), c-view, c-copy, py-view, py-copy (the C
              and Python readers), bare (a timestamp in a shared cache line plus a
              futex wake: the floor), legacy (the old recipe), uds, pipe, tcp,
              memcpy (one process)
  kinds       latency (paced: readers idle 1-3 ms before each frame, with each
              frame's scheduler delay), pingpong, throughput, copyout (the copy
              of a slot just written on another CPU: Read, Go copy, glibc memcpy,
              numpy), idle (a blocked reader's CPU and wake-ups)
  sizes       640x404x3, 1280x720x3, 1920x1080x3, 3840x2160x3

It judges framering's performance goals from the same run and says which it
could not judge and why. The C reader needs make c (c/build/framering-bench-c),
the Python reader python3 with numpy; their cases are skipped with a message
otherwise. The full suite takes about 10 minutes on 2 CPUs; --quick (1080p
only) under a minute. The table goes to stdout, a progress bar to stderr when
it is a terminal.`,
	Example: `  framering bench --quick
  framering bench --out results/          # results.json, results.md, PNG plots
  framering bench --pin --kinds latency --transports framering-view,bare
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
	f.BoolVar(&benchFlags.quick, "quick", false, "a short run: 1920x1080x3 only (or the first of --sizes), the cases the goals need, short durations")
	f.BoolVar(&benchFlags.json, "json", false, "print the results as JSON instead of tables")
	f.StringVar(&benchFlags.out, "out", "", "write results.json, results.md and PNG plots into this directory")
	f.StringSliceVar(&benchFlags.transports, "transports", nil, "run only these transports (comma-separated)")
	f.StringSliceVar(&benchFlags.sizes, "sizes", nil, "frame sizes WxHxC instead of the standard ones (comma-separated)")
	f.StringSliceVar(&benchFlags.kinds, "kinds", nil, "run only these measurements: latency, pingpong, throughput, copyout, idle")
	f.Float64Var(&benchFlags.scale, "scale", 1, "multiply every case's duration by this")
	f.StringVar(&benchFlags.dir, "dir", "", "directory for the cases' rings, sockets and FIFOs (default /dev/shm)")
	f.BoolVar(&benchFlags.pin, "pin", false, "pin every case's writer and readers to distinct CPUs (without it only the spin goal's pair is pinned)")
	f.StringVar(&benchFlags.cWorker, "c-worker", "", "the C reader (default: c/build/framering-bench-c of the source tree, built by make c)")
	f.StringVar(&benchFlags.python, "python", "", "the Python interpreter for the Python reader, with numpy (default python3, else /usr/bin/python3)")
	root.AddCommand(benchCmd, benchWorkerCmd)
}

func names[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// benchPlan turns the flags into a plan, or a usage error.
func benchPlan() (bench.Plan, error) {
	p := bench.Plan{Quick: benchFlags.quick, Scale: benchFlags.scale, Pin: benchFlags.pin}
	if !(p.Scale > 0 && p.Scale <= 100) {
		return p, usagef("--scale %v: give a factor in (0, 100]", benchFlags.scale)
	}
	for _, t := range benchFlags.transports {
		tr := bench.Transport(strings.TrimSpace(t))
		if !slices.Contains(bench.AllTransports, tr) {
			return p, usagef("--transports: unknown transport %q; use %s", t, names(bench.AllTransports))
		}
		p.Transports = append(p.Transports, tr)
	}
	for _, s := range benchFlags.sizes {
		sh, err := bench.ParseShape(strings.TrimSpace(s))
		if err != nil {
			return p, usagef("--sizes: %w", err)
		}
		p.Shapes = append(p.Shapes, sh)
	}
	for _, k := range benchFlags.kinds {
		kk := bench.Kind(strings.TrimSpace(k))
		if !slices.Contains(bench.AllKinds, kk) {
			return p, usagef("--kinds: unknown measurement %q; use %s", k, names(bench.AllKinds))
		}
		p.Kinds = append(p.Kinds, kk)
	}
	if cpus, err := shm.CPUs(); err != nil || len(cpus) < 2 {
		p.NoPinnedPair = true
		if p.Pin {
			return p, usagef("--pin: needs 2 CPUs for a writer and its readers; this process may use %d", len(cpus))
		}
	}
	return p, nil
}

// benchCases is the plan's cases, or a usage error when there are none.
func benchCases() (bench.Plan, []bench.Case, error) {
	plan, err := benchPlan()
	if err != nil {
		return plan, nil, err
	}
	cases := plan.Cases()
	if len(cases) == 0 {
		return plan, nil, usagef("no case matches --transports %s --kinds %s --sizes %s: each transport measures only some kinds (see --help)",
			orAll(benchFlags.transports), orAll(benchFlags.kinds), orAll(benchFlags.sizes))
	}
	if benchFlags.out != "" {
		// Before the run, not after ten minutes of it.
		if err := os.MkdirAll(benchFlags.out, 0o755); err != nil {
			return plan, nil, usagef("--out %s: %w", benchFlags.out, err)
		}
	}
	return plan, cases, nil
}

func orAll(xs []string) string {
	if len(xs) == 0 {
		return "(all)"
	}
	return strings.Join(xs, ",")
}

func runBench(cmd *cobra.Command, _ []string) error {
	plan, cases, err := benchCases()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this program to run its workers: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cwd, _ := os.Getwd()
	workers := bench.FindWorkers(benchFlags.cWorker, benchFlags.python, cwd, filepath.Dir(exe))
	runner := &bench.Runner{Spawn: bench.ExecSpawner(exe, "bench-worker"), Workers: workers, Dir: benchFlags.dir, Seed: uint64(time.Now().UnixNano())}
	for _, why := range []string{workers.CMissing, workers.PythonMissing} {
		if why != "" && needsLang(cases, why) {
			fmt.Fprintf(os.Stderr, "framering bench: skipping the cases of the %s\n", why)
		}
	}
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
	if err := emitReport(rep, cmd.OutOrStdout(), os.Stderr); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bench: interrupted after %d of %d cases; the results above are partial", len(results), len(cases))
	}
	if failed := rep.Failed(); len(failed) > 0 {
		return fmt.Errorf("bench: %d of %d cases failed:\n  %s", len(failed), len(results), strings.Join(failed, "\n  "))
	}
	return nil
}

// emitReport prints the report (table or JSON) to out and, with --out,
// writes its files, naming them on msg.
func emitReport(rep *bench.Report, out, msg io.Writer) error {
	var err error
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
		fmt.Fprintf(msg, "framering bench: wrote %s\n", strings.Join(files, ", "))
	}
	return nil
}

// needsLang reports whether a case reads in the language a missing
// worker's message names ("C reader: ..." or "Python reader: ...").
func needsLang(cases []bench.Case, why string) bool {
	for _, c := range cases {
		t := string(c.Transport)
		if strings.HasPrefix(why, "C ") && strings.HasPrefix(t, "c-") || strings.HasPrefix(why, "Python ") && strings.HasPrefix(t, "py-") {
			return true
		}
	}
	return false
}
