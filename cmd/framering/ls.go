package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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

// rawRing is a ring mapped read-only for inspection, with no reader state.
type rawRing struct {
	name, path string
	file       *shm.File
	mapping    *shm.Mapping
	seg        *ring.Segment
	info       shm.Info
}

// openRaw maps ring name in dir read-only and validates its superblock.
func openRaw(dir, name string) (*rawRing, error) {
	path := ring.Path(dir, name)
	f, err := shm.Open(path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("ring %q: %w (no %s); 'framering ls --dir %s' lists the rings there", name, ring.ErrNotFound, path, dir)
		}
		return nil, fmt.Errorf("ring %q: %w", name, err)
	}
	info, err := f.CheckSafe(shm.Trust{GroupWrite: true, OtherOwner: true})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ring %q: %w; refusing to map it", name, err)
	}
	if info.Size < ring.SuperblockSize || info.Size > ring.MaxFileSize {
		f.Close()
		return nil, fmt.Errorf("ring %q: %w: %s is %d bytes; a producer may still be creating it, otherwise remove it", name, ring.ErrTruncated, path, info.Size)
	}
	m, err := shm.Map(f, int(info.Size), false)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ring %q: %w", name, err)
	}
	var seg *ring.Segment
	err = shm.Guard(func() error {
		var aerr error
		seg, aerr = ring.Attach(m.Bytes())
		return aerr
	})
	if err != nil {
		m.Unmap()
		f.Close()
		return nil, fmt.Errorf("ring %q: %w; it is not a valid framering v%d ring: remove %s and restart its producer", name, err, ring.Version, path)
	}
	return &rawRing{name: name, path: path, file: f, mapping: m, seg: seg, info: info}, nil
}

func (r *rawRing) Close() error {
	return errors.Join(r.mapping.Unmap(), r.file.Close())
}

// writerState describes the writer: alive (holds the lock, fresh
// heartbeat), hung (holds the lock, stale heartbeat) or gone.
func (r *rawRing) writerState() (state string, alive bool) {
	locked, err := r.file.WriteLocked()
	if err != nil {
		return "unknown (" + err.Error() + ")", false
	}
	if !locked {
		return "gone", false
	}
	var hb int64
	shm.Guard(func() error { hb = r.seg.Heartbeat().Load(); return nil })
	if age := time.Duration(shm.Monotonic() - hb); age > time.Second {
		return fmt.Sprintf("hung (heartbeat %v old)", age.Round(time.Second)), false
	}
	return "alive", true
}

// slotState is a consistent copy of one slot header, if one could be had.
type slotState struct {
	hdr    ring.SlotHeader
	stable bool // seq was even and unchanged around the copy
}

// readSlot copies slot i's header under its seqlock (a few attempts).
func (r *rawRing) readSlot(i uint64) slotState {
	var st slotState
	shm.Guard(func() error {
		h := r.seg.Slot(i)
		for try := 0; try < 100; try++ {
			s1 := h.SeqWord().Load()
			st.hdr = *h // racy copy of shared memory, validated by the seq check
			s2 := h.SeqWord().Load()
			st.hdr.Seq = s1
			if s1 == s2 && s1&1 == 0 {
				st.stable = true
				return nil
			}
		}
		return nil
	})
	return st
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
		r         *rawRing
		err       error
		frames0   uint64
		t0        time.Time
		state     string
		alive     bool
		stats     ring.Stats
		rate      float64
		newest    slotState
		newestAge time.Duration
	}
	rows := make([]*row, 0, len(names))
	anyAlive := false
	for _, n := range names {
		rw := &row{name: n}
		rw.r, rw.err = openRaw(dir, n)
		if rw.err == nil {
			defer rw.r.Close()
			rw.state, rw.alive = rw.r.writerState()
			anyAlive = anyAlive || rw.alive
			shm.Guard(func() error { rw.frames0 = rw.r.seg.FramesTotal().Load(); return nil })
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
			rw.err = shm.Guard(func() error { rw.stats = rw.r.seg.Stats(); return nil })
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
			rw.newest = rw.r.readSlot(rw.stats.Head)
			if rw.newest.stable && rw.newest.hdr.FrameNo == rw.stats.Head {
				if fi, err := rw.newest.hdr.Info(g); err == nil {
					frame = shapeString(fi)
				} else {
					frame = "corrupt"
				}
				age = fmtAge(shm.Monotonic() - rw.newest.hdr.PublishNs)
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
		fmt.Fprintf(os.Stderr, "ls: %v\n", p)
	}
	return nil
}

func fmtAge(ns int64) string {
	if ns < 0 {
		return "in the future?"
	}
	return fmtNs(ns).String() + " ago"
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
