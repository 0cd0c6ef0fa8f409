package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type statFlags struct {
	dir  string
	json bool
}

var statOpts statFlags

var statCmd = &cobra.Command{
	Use:   "stat NAME",
	Short: "Show a ring's superblock and the state of every slot",
	Long: `stat maps ring NAME read-only and prints every field of its superblock,
whether its writer is alive, and for every slot: the seqlock word (odd
while the writer is changing the slot), the frame it holds, its shape and
sizes, and how old it is.

Times in CLOCK_MONOTONIC are shown as ages; wall-clock times as dates.
--json prints one JSON object instead (field names in docs/CLI.md).`,
	Example: `  framering stat cam0
  framering stat --json cam0`,
	Args: func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("stat: give exactly one ring NAME, got %d arguments", len(args))
		}
		return nil
	},
	ValidArgsFunction: completeRingArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runStat(cmd.OutOrStdout(), &statOpts, args[0])
	},
}

func init() {
	f := statCmd.Flags()
	dirFlag(f, &statOpts.dir)
	f.BoolVar(&statOpts.json, "json", false, "print a JSON object instead of the tables")
	root.AddCommand(statCmd)
}

// statSuper is the superblock in `stat --json`.
type statSuper struct {
	Magic         string `json:"magic"`
	Version       uint32 `json:"version"`
	SuperSize     uint32 `json:"superblock_bytes"`
	SlotCount     uint32 `json:"slots"`
	MetaCap       uint32 `json:"meta_bytes"`
	SlotStride    uint64 `json:"slot_stride"`
	PayloadOffset uint64 `json:"payload_offset"`
	PayloadCap    uint64 `json:"slot_bytes"`
	FileSize      uint64 `json:"file_bytes"`
	Flags         uint32 `json:"flags"`
	Checksum      uint32 `json:"checksum"`
}

// statSlot is a slot in `stat --json`.
type statSlot struct {
	Index      int      `json:"index"`
	Seq        uint64   `json:"seq"`
	State      string   `json:"state"` // even, odd, changing, empty
	Frame      uint64   `json:"frame"` // 0: empty
	Generation uint64   `json:"generation"`
	Width      uint32   `json:"width"`
	Height     uint32   `json:"height"`
	Channels   uint32   `json:"channels"`
	Format     string   `json:"format"`
	Corrupt    string   `json:"corrupt,omitempty"` // why the header fails validation
	Stride     uint32   `json:"stride"`
	PayloadLen uint64   `json:"payload_bytes"`
	MetaLen    uint32   `json:"meta_bytes"`
	CaptureAge *float64 `json:"capture_age_seconds"`
	PublishAge *float64 `json:"publish_age_seconds"`
	Wall       *string  `json:"wall_time"` // RFC 3339, UTC

	shape                  string // for the table
	captureAge, publishAge int64
	wallNs                 int64
}

// statOutput is `stat --json`. The names are stable (docs/CLI.md).
type statOutput struct {
	Ring         string     `json:"ring"`
	Path         string     `json:"path"`
	FileBytes    int64      `json:"file_bytes"`
	Mode         string     `json:"mode"`
	Inode        uint64     `json:"inode"`
	Superblock   statSuper  `json:"superblock"`
	WriterPID    int        `json:"writer_pid"`
	WriterState  string     `json:"writer_state"`
	WriterStart  *string    `json:"writer_start"`
	Generation   uint64     `json:"generation"`
	Created      *string    `json:"created"`
	HeartbeatAge *float64   `json:"heartbeat_age_seconds"`
	Head         uint64     `json:"head"`
	Notify       uint32     `json:"notify"`
	FramesTotal  uint64     `json:"frames_total"`
	BytesTotal   uint64     `json:"bytes_total"`
	Slots        []statSlot `json:"slots"`
}

func runStat(out io.Writer, o *statFlags, name string) error {
	if err := ring.CheckName(name); err != nil {
		return usagef("stat: %w", err)
	}
	r, err := openRaw(o.dir, name)
	if err != nil {
		return err
	}
	defer r.Close()
	l := r.Writer(time.Second)
	var (
		sb     layout.Superblock
		st     ring.Status
		notify uint32
	)
	if err := shm.Guard(func() error {
		sb = *r.Seg.Super() // static fields; the live ones come from Status
		st = r.Seg.Status()
		notify = r.Seg.Notify().Load()
		return nil
	}); err != nil {
		return fmt.Errorf("ring %q: %w: the segment shrank while reading it", name, ring.ErrTruncated)
	}
	now := ring.Now()
	res := statOutput{
		Ring: name, Path: r.Path, FileBytes: r.Info.Size, Mode: fmt.Sprintf("%04o", uint32(r.Info.Mode.Perm())), Inode: r.Info.Inode,
		Superblock: statSuper{Magic: string(sb.Magic[:]), Version: sb.Version, SuperSize: sb.SuperSize, SlotCount: sb.SlotCount,
			MetaCap: sb.MetaCap, SlotStride: sb.SlotStride, PayloadOffset: sb.PayloadOffset, PayloadCap: sb.PayloadCap,
			FileSize: sb.FileSize, Flags: sb.Flags, Checksum: sb.Checksum},
		WriterPID: st.WriterPID, WriterState: l.State, WriterStart: jsonTime(st.WriterStart), Generation: st.Generation,
		Created: jsonTime(st.Created), Head: st.Head, Notify: notify, FramesTotal: st.FramesTotal, BytesTotal: st.BytesTotal,
	}
	if st.Heartbeat != 0 {
		res.HeartbeatAge = ptr(float64(now-st.Heartbeat) / 1e9)
	}
	g := st.Geometry
	for i := 0; i < g.Slots; i++ {
		res.Slots = append(res.Slots, slotState(r, g, i, now))
	}
	if o.json {
		return writeJSON(out, res)
	}

	state := l.State
	if l.State == segfile.Hung {
		state = fmt.Sprintf("hung (heartbeat %v old)", l.HeartbeatAge.Round(time.Second))
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "ring\t%s\n", name)
	fmt.Fprintf(w, "path\t%s (%d bytes, mode %s, inode %d)\n", r.Path, r.Info.Size, res.Mode, r.Info.Inode)
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

	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SLOT\tSEQ\tSTATE\tFRAME\tGEN\tSHAPE\tSTRIDE\tPAYLOAD\tMETA\tCAPTURED\tPUBLISHED\tWALL")
	for _, s := range res.Slots {
		label := s.State
		if label == "odd" {
			label = "odd (writing)"
		}
		if s.Frame == 0 {
			fmt.Fprintf(w, "%d\t%d\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", s.Index, s.Seq, label)
			continue
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Index, s.Seq, label, s.Frame, s.Generation, s.shape,
			s.Stride, s.PayloadLen, s.MetaLen, fmtAge(s.captureAge), fmtAge(s.publishAge), fmtWall(s.wallNs))
	}
	return w.Flush()
}

// slotState reads slot i's header under its seqlock.
func slotState(r *segfile.File, g ring.Geometry, i int, now int64) statSlot {
	h, stable := r.ReadSlot(uint64(i))
	s := statSlot{Index: i, Seq: h.Seq, State: "even", Frame: h.FrameNo, Generation: h.Generation, Width: h.Width, Height: h.Height,
		Channels: h.Channels, Format: ring.PixelFormat(h.Format).String(), Stride: h.Stride, PayloadLen: h.PayloadLen, MetaLen: h.MetaLen}
	switch {
	case h.Seq&1 == 1:
		s.State = "odd"
	case !stable:
		s.State = "changing"
	case h.FrameNo == 0:
		s.State = "empty"
	}
	if h.FrameNo == 0 {
		return s
	}
	s.shape = "corrupt"
	if fi, _, err := h.Info(g); err == nil {
		s.shape = shapeString(fi)
	} else if stable {
		s.shape = "corrupt: " + err.Error()
		s.Corrupt = err.Error()
	}
	s.captureAge, s.publishAge, s.wallNs = now-h.CaptureNs, now-h.PublishNs, h.WallNs
	s.CaptureAge = ptr(float64(s.captureAge) / 1e9)
	s.PublishAge = ptr(float64(s.publishAge) / 1e9)
	if h.WallNs != 0 {
		s.Wall = ptr(time.Unix(0, h.WallNs).UTC().Format(time.RFC3339Nano))
	}
	return s
}

// jsonTime is t in RFC 3339 (UTC), or nil for the zero time.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return ptr(t.UTC().Format(time.RFC3339Nano))
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
