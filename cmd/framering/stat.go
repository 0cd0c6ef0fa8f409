package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

var statDir string

var statCmd = &cobra.Command{
	Use:   "stat NAME",
	Short: "Show a ring's superblock and the state of every slot",
	Long: `stat maps ring NAME read-only and prints every field of its superblock,
whether its writer is alive, and for every slot: the seqlock word (odd
while the writer is changing the slot), the frame it holds, its shape and
sizes, and how old it is.

Times in CLOCK_MONOTONIC are shown as ages; wall-clock times as dates.`,
	Example: `  framering stat cam0`,
	Args: func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("stat: give exactly one ring NAME, got %d arguments", len(args))
		}
		return nil
	},
	RunE: func(cmd *cobra.Command, args []string) error {
		return runStat(statDir, args[0])
	},
}

func init() {
	statCmd.Flags().StringVar(&statDir, "dir", ring.DefaultDir, "shared-memory directory holding the rings")
	root.AddCommand(statCmd)
}

func runStat(dir, name string) error {
	if err := ring.CheckName(name); err != nil {
		return usagef("stat: %w", err)
	}
	r, err := openRaw(dir, name)
	if err != nil {
		return err
	}
	defer r.Close()
	l := r.Writer(time.Second)
	state := l.State
	if l.State == segfile.Hung {
		state = fmt.Sprintf("hung (heartbeat %v old)", l.HeartbeatAge.Round(time.Second))
	}
	var (
		sb     layout.Superblock
		st     ring.Status
		notify uint32
	)
	if err := shm.Guard(func() error {
		sb = *r.Seg.Super() // static fields; the live ones come from Stats
		st = r.Seg.Status()
		notify = r.Seg.Notify().Load()
		return nil
	}); err != nil {
		return fmt.Errorf("ring %q: %w; the segment shrank while reading it", name, err)
	}
	now := ring.Now()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "ring\t%s\n", name)
	fmt.Fprintf(w, "path\t%s (%d bytes, mode %04o, inode %d)\n", r.Path, r.Info.Size, uint32(r.Info.Mode.Perm()), r.Info.Inode)
	fmt.Fprintf(w, "magic\t%q\n", sb.Magic[:])
	fmt.Fprintf(w, "version\t%d\n", sb.Version)
	fmt.Fprintf(w, "superblock size\t%d\n", sb.SuperSize)
	fmt.Fprintf(w, "slot count\t%d\n", sb.SlotCount)
	fmt.Fprintf(w, "metadata capacity\t%d bytes per slot\n", sb.MetaCap)
	fmt.Fprintf(w, "slot stride\t%d\n", sb.SlotStride)
	fmt.Fprintf(w, "payload offset\t%d\n", sb.PayloadOffset)
	fmt.Fprintf(w, "payload capacity\t%d bytes per slot (%s)\n", sb.PayloadCap, fmtBytes(int64(sb.PayloadCap)))
	fmt.Fprintf(w, "file size\t%d\n", sb.FileSize)
	fmt.Fprintf(w, "flags\t%#x\n", sb.Flags)
	fmt.Fprintf(w, "checksum\t%#08x (valid)\n", sb.Checksum)
	fmt.Fprintf(w, "writer pid\t%d (%s)\n", st.WriterPID, state)
	fmt.Fprintf(w, "writer start\t%s\n", fmtTime(st.WriterStart))
	fmt.Fprintf(w, "generation\t%d\n", st.Generation)
	fmt.Fprintf(w, "created\t%s\n", fmtTime(st.Created))
	fmt.Fprintf(w, "heartbeat\t%s\n", fmtAge(now-st.Heartbeat))
	fmt.Fprintf(w, "head\t%d\n", st.Head)
	fmt.Fprintf(w, "notify\t%d\n", notify)
	fmt.Fprintf(w, "frames total\t%d\n", st.FramesTotal)
	fmt.Fprintf(w, "bytes total\t%d (%s)\n", st.BytesTotal, fmtBytes(int64(st.BytesTotal)))
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(os.Stdout)
	w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SLOT\tSEQ\tSTATE\tFRAME\tGEN\tSHAPE\tSTRIDE\tPAYLOAD\tMETA\tCAPTURED\tPUBLISHED\tWALL")
	g := st.Geometry
	for i := 0; i < g.Slots; i++ {
		hdr, stable := r.ReadSlot(uint64(i))
		h := &hdr
		seqState := "even"
		switch {
		case h.Seq&1 == 1:
			seqState = "odd (writing)"
		case !stable:
			seqState = "changing"
		case h.FrameNo == 0:
			seqState = "empty"
		}
		if h.FrameNo == 0 {
			fmt.Fprintf(w, "%d\t%d\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", i, h.Seq, seqState)
			continue
		}
		shape := "corrupt"
		if fi, _, err := h.Info(g); err == nil {
			shape = shapeString(fi)
		} else if stable {
			shape = "corrupt: " + err.Error()
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", i, h.Seq, seqState, h.FrameNo, h.Generation, shape,
			h.Stride, h.PayloadLen, h.MetaLen, fmtAge(now-h.CaptureNs), fmtAge(now-h.PublishNs), fmtWall(h.WallNs))
	}
	return w.Flush()
}

func fmtWall(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return fmtTime(time.Unix(0, ns))
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05.000000 MST")
}
