package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framering/framering/metrics"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type metricsFlags struct {
	listen, dir string
	hungAfter   time.Duration
}

var metricsOpts metricsFlags

var metricsCmd = &cobra.Command{
	Use:   "metrics [--listen ADDR] [--dir DIR] [RING...]",
	Short: "Serve Prometheus metrics of every ring, read from the superblocks",
	Long: `metrics serves /metrics for Prometheus with the counters of every ring in
--dir (or only the RINGs named), read from the rings' superblocks: frames and
bytes published, head, generation, writer up, heartbeat and newest-frame age,
slot count and size. It maps each ring read-only and needs nothing from the
applications, so unmodified producers and consumers are covered.

Rings that appear are picked up at the next scrape, rings that disappear are
dropped. Files that are not valid rings are skipped and logged once. It is the
one source of framering_ring_*; writers export framering_writer_* only. Per-reader
metrics (drops, latency) come from the processes themselves: 'recv --metrics'
or metrics.RegisterReader in your own program. Dashboard and alert rules:
mixin/ in the repository.`,
	Example: `  framering metrics --listen :9731
  framering metrics --listen 127.0.0.1:9731 cam0 cam1`,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runMetrics(&metricsOpts, args)
	},
}

func init() {
	f := metricsCmd.Flags()
	o := &metricsOpts
	f.StringVar(&o.listen, "listen", "127.0.0.1:9731", "serve /metrics on `ADDR` (host:port; :9731 for every interface)")
	f.StringVar(&o.dir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	f.DurationVar(&o.hungAfter, "hung-after", time.Second, "a writer whose heartbeat is older than this counts as down")
	root.AddCommand(metricsCmd)
}

func runMetrics(o *metricsFlags, rings []string) error {
	for _, n := range rings {
		if err := ring.CheckName(n); err != nil {
			return usagef("%w", err)
		}
	}
	if o.hungAfter <= 0 {
		return usagef("--hung-after %v: give a positive duration such as 1s", o.hungAfter)
	}
	logger := log.New(os.Stderr, "framering metrics: ", log.LstdFlags)
	exp, err := metrics.NewExporter(metrics.ExporterOptions{
		Dir:       o.dir,
		Rings:     rings,
		HungAfter: o.hungAfter,
		Logf:      logger.Printf,
	})
	if err != nil {
		return err
	}
	defer exp.Close()
	reg := metrics.NewRegistry() // go_*, process_*, framering_build_info
	reg.MustRegister(exp)
	srv, addr, err := metrics.Serve(o.listen, reg)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	which := "every ring in " + o.dir
	if len(rings) > 0 {
		which = fmt.Sprintf("rings %v in %s", rings, o.dir)
	}
	logger.Printf("serving %s on http://%s/metrics", which, addr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
