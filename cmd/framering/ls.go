package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

var lsDir string

var lsCmd = &cobra.Command{
	Use:   "ls [--dir DIR]",
	Short: "List the rings in the shared-memory directory and how they are doing",
	Long: `ls lists the rings in the shared-memory directory: name, geometry (slots x
slot size, and the newest frame's shape), writer pid and whether it is alive
(it holds the ring's lock and its heartbeat is fresh), frames published, the
current rate (sampled over 200 ms) and the age of the newest frame.

It only reads: it maps every ring read-only and takes no lock.`,
	Example: `  framering ls
  framering ls --dir /tmp/rings`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runLs(lsDir)
	},
}

func init() {
	lsCmd.Flags().StringVar(&lsDir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	root.AddCommand(lsCmd)
}

// openRaw maps ring name in dir read-only for inspection: no reader state,
// and any owner or group-writable mode accepted (nothing is trusted beyond
// the validated superblock; only reads).
func openRaw(dir, name string) (*segfile.File, error) {
	return segfile.Open(dir, name, shm.Trust{GroupWrite: true, OtherOwner: true})
}

// ringNames lists the ring names in dir, sorted.
func ringNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ls: %w; give the rings' directory with --dir", err)
	}
	var names []string
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), ring.FilePrefix)
		if ok && ring.CheckName(n) == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func runLs(dir string) error {
	names, err := ringNames(dir)
	if err != nil {
		return err
	}
	type row struct {
		name      string
		r         *segfile.File
		err       error
		frames0   uint64
		t0        time.Time
		state     string
		alive     bool
		stats     ring.Status
		rate      float64
		newest    layout.SlotHeader
		newestAge time.Duration
	}
	rows := make([]*row, 0, len(names))
	anyAlive := false
	for _, n := range names {
		rw := &row{name: n}
		rw.r, rw.err = openRaw(dir, n)
		if rw.err == nil {
			defer rw.r.Close()
			l := rw.r.Writer(time.Second)
			rw.state, rw.alive = l.State, l.Alive
			if l.State == segfile.Hung {
				rw.state = fmt.Sprintf("hung (heartbeat %v old)", l.HeartbeatAge.Round(time.Second))
			}
			anyAlive = anyAlive || rw.alive
			shm.Guard(func() error { rw.frames0 = rw.r.Seg.FramesTotal().Load(); return nil })
			rw.t0 = time.Now()
		}
		rows = append(rows, rw)
	}
	if anyAlive {
		time.Sleep(200 * time.Millisecond)
	}
	var problems []error
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGEOMETRY\tFRAME\tWRITER\tSTATE\tFRAMES\tRATE\tNEWEST")
	for _, rw := range rows {
		if rw.err == nil {
			rw.err = shm.Guard(func() error { rw.stats = rw.r.Seg.Status(); return nil })
		}
		if rw.err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tunreadable\t-\t-\t-\n", rw.name)
			problems = append(problems, rw.err)
			continue
		}
		if dt := time.Since(rw.t0).Seconds(); rw.alive && dt > 0 {
			rw.rate = float64(rw.stats.FramesTotal-rw.frames0) / dt
		}
		g := rw.stats.Geometry
		frame, age := "-", "-"
		if rw.stats.Head > 0 {
			var stable bool
			rw.newest, stable = rw.r.ReadSlot(rw.stats.Head)
			if stable && rw.newest.FrameNo == rw.stats.Head {
				if fi, _, err := rw.newest.Info(g); err == nil {
					frame = shapeString(fi)
				} else {
					frame = "corrupt"
				}
				age = fmtAge(ring.Now() - rw.newest.PublishNs)
			}
		}
		fmt.Fprintf(tw, "%s\t%dx%s\t%s\t%d\t%s\t%d\t%.1f/s\t%s\n", rw.name, g.Slots, fmtBytes(int64(g.PayloadCap)), frame,
			rw.stats.WriterPID, rw.state, rw.stats.FramesTotal, rw.rate, age)
	}
	if len(rows) == 0 {
		fmt.Fprintf(os.Stderr, "no rings in %s\n", dir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "ls: %s\n", withAdvice(p))
	}
	return nil
}

func fmtAge(ns int64) string {
	if ns < 0 {
		return "in the future?"
	}
	return fmtDur(time.Duration(ns)).String() + " ago"
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<20) == 0:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
