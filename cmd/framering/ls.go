package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type lsFlags struct {
	dir  string
	json bool
}

var lsOpts lsFlags

var lsCmd = &cobra.Command{
	Use:   "ls [--dir DIR] [--json]",
	Short: "List the rings in the shared-memory directory and how they are doing",
	Long: `ls lists the rings in the shared-memory directory: name, geometry (slots x
slot size, and the newest frame's shape), writer pid and whether it is alive
(it holds the ring's lock and its heartbeat is fresh), frames published, the
current rate (sampled over 200 ms) and the age of the newest frame. Writers'
temporary files (.framering-tmp.*) follow, marked "being built" or "stale"
(its writer is gone: 'framering rm --stale' removes it).

--json prints one JSON object instead (field names in docs/CLI.md).

It only reads: it maps every ring read-only and takes no lock.`,
	Example: `  framering ls
  framering ls --dir /tmp/rings --json`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runLs(cmd.OutOrStdout(), &lsOpts)
	},
}

func init() {
	f := lsCmd.Flags()
	dirFlag(f, &lsOpts.dir)
	f.BoolVar(&lsOpts.json, "json", false, "print a JSON object instead of the table")
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

// lsFrame is the newest frame's shape in `ls --json`.
type lsFrame struct {
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Channels int    `json:"channels"`
	Format   string `json:"format"`
	Bytes    int    `json:"bytes"`
}

// lsRing is a ring in `ls --json`. Fields are documented in docs/CLI.md;
// the names are stable.
type lsRing struct {
	Name          string   `json:"name"`
	Path          string   `json:"path"`
	State         string   `json:"state"` // alive, starting, hung, gone, unknown, unreadable
	Error         string   `json:"error,omitempty"`
	WriterPID     int      `json:"writer_pid"`
	Generation    uint64   `json:"generation"`
	Slots         int      `json:"slots"`
	SlotBytes     int      `json:"slot_bytes"`
	MetaBytes     int      `json:"meta_bytes"`
	FileBytes     int64    `json:"file_bytes"`
	Head          uint64   `json:"head"`
	FramesTotal   uint64   `json:"frames_total"`
	BytesTotal    uint64   `json:"bytes_total"`
	RateFPS       float64  `json:"rate_fps"`
	Frame         *lsFrame `json:"frame"`
	NewestAge     *float64 `json:"newest_age_seconds"`
	HeartbeatAge  *float64 `json:"heartbeat_age_seconds"`
	newest, state string   // for the table
	alive         bool
}

// lsTmp is a writer's temporary file in `ls --json`.
type lsTmp struct {
	Name  string  `json:"name"`
	Path  string  `json:"path"`
	Bytes int64   `json:"bytes"`
	Age   float64 `json:"age_seconds"`
	State string  `json:"state"` // being built, stale, not a regular file, unknown
}

type lsOutput struct {
	Dir   string   `json:"dir"`
	Rings []lsRing `json:"rings"`
	Temp  []lsTmp  `json:"temporary_files"`
}

// survey reads every ring in dir twice, 200 ms apart when a writer is
// alive, for the rate. problems are the rings it could not read.
func survey(dir string) (rings []lsRing, problems []error, err error) {
	names, err := ringNames(dir)
	if err != nil {
		return nil, nil, err
	}
	files := make([]*segfile.File, len(names))
	frames0 := make([]uint64, len(names))
	t0 := time.Now()
	anyAlive := false
	rings = make([]lsRing, len(names))
	for i, n := range names {
		rw := &rings[i]
		rw.Name, rw.Path = n, ring.Path(dir, n)
		f, err := openRaw(dir, n)
		if err != nil {
			rw.State, rw.state, rw.Error = "unreadable", "unreadable", err.Error()
			problems = append(problems, err)
			continue
		}
		defer f.Close()
		files[i] = f
		l := f.Writer(time.Second)
		rw.State, rw.state, rw.alive = l.State, l.State, l.Alive
		if l.State == segfile.Hung {
			rw.state = fmt.Sprintf("hung (heartbeat %v old)", l.HeartbeatAge.Round(time.Second))
		}
		if l.HeartbeatAge > 0 {
			rw.HeartbeatAge = ptr(l.HeartbeatAge.Seconds())
		}
		anyAlive = anyAlive || l.Alive
		shm.Guard(func() error { frames0[i] = f.Seg.FramesTotal().Load(); return nil })
	}
	if anyAlive {
		time.Sleep(200 * time.Millisecond)
	}
	dt := time.Since(t0).Seconds()
	for i, f := range files {
		if f == nil {
			continue
		}
		rw := &rings[i]
		var st ring.Status
		if err := shm.Guard(func() error { st = f.Seg.Status(); return nil }); err != nil {
			err = fmt.Errorf("ring %q: %w (%v)", rw.Name, ring.ErrTruncated, err)
			rw.State, rw.state, rw.Error = "unreadable", "unreadable", err.Error()
			problems = append(problems, err)
			continue
		}
		g := st.Geometry
		rw.WriterPID, rw.Generation, rw.Head = st.WriterPID, st.Generation, st.Head
		rw.Slots, rw.SlotBytes, rw.MetaBytes, rw.FileBytes = g.Slots, g.PayloadCap, g.MetaCap, f.Info.Size
		rw.FramesTotal, rw.BytesTotal = st.FramesTotal, st.BytesTotal
		if rw.alive && dt > 0 {
			rw.RateFPS = float64(st.FramesTotal-frames0[i]) / dt
		}
		rw.newest = "-"
		if st.Head > 0 {
			hdr, stable := f.ReadSlot(st.Head)
			if stable && hdr.FrameNo == st.Head {
				if fi, _, err := hdr.Info(g); err == nil {
					rw.Frame = &lsFrame{Width: fi.Width, Height: fi.Height, Channels: fi.Channels, Format: fi.Format.String(), Bytes: fi.Len}
					rw.newest = shapeString(fi)
				} else {
					rw.newest = "corrupt"
				}
				rw.NewestAge = ptr(float64(ring.Now()-hdr.PublishNs) / 1e9)
			}
		}
	}
	return rings, problems, nil
}

func ptr[T any](v T) *T { return &v }

func runLs(out io.Writer, o *lsFlags) error {
	rings, problems, err := survey(o.dir)
	if err != nil {
		return err
	}
	tmps, err := segfile.Temps(o.dir)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	if o.json {
		res := lsOutput{Dir: o.dir, Rings: rings, Temp: []lsTmp{}}
		if res.Rings == nil {
			res.Rings = []lsRing{}
		}
		for _, t := range tmps {
			res.Temp = append(res.Temp, lsTmp{Name: t.File, Path: t.Path, Bytes: t.Size, Age: t.Age.Seconds(), State: t.State})
		}
		return writeJSON(out, res)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGEOMETRY\tFRAME\tWRITER\tSTATE\tFRAMES\tRATE\tNEWEST")
	for _, rw := range rings {
		if rw.State == "unreadable" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tunreadable\t-\t-\t-\n", rw.Name)
			continue
		}
		age := "-"
		if rw.NewestAge != nil {
			age = fmtAge(int64(*rw.NewestAge * 1e9))
		}
		fmt.Fprintf(tw, "%s\t%dx%s\t%s\t%d\t%s\t%d\t%.1f/s\t%s\n", rw.Name, rw.Slots, fmtBytes(int64(rw.SlotBytes)), rw.newest,
			rw.WriterPID, rw.state, rw.FramesTotal, rw.RateFPS, age)
	}
	for _, t := range tmps {
		fmt.Fprintf(tw, "%s\t-\t-\t-\ttemporary (%s)\t-\t-\t%s\n", t.File, t.State, fmtAge(int64(t.Age)))
	}
	if len(rings) == 0 && len(tmps) == 0 {
		fmt.Fprintf(os.Stderr, "no rings in %s\n", o.dir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "ls: %s\n", withAdvice(p))
	}
	return nil
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
