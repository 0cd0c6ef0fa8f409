package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/source"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// framering legacy ingest|mirror: bridges to the old 24-byte slot of
// docs/LEGACY.md.
func init() {
	lg := &cobra.Command{
		Use:   "legacy",
		Short: "Bridge the old 24-byte mmaptest_shm slot and framering rings",
		Long: "The old recipe shares one frame through /dev/shm/mmaptest_shm with a 24-byte\n" +
			"header and a frame_valid flag. These commands let a site move to framering one\n" +
			"process at a time: ingest feeds new readers from an old sender, mirror feeds old\n" +
			"readers from a ring. See docs/LEGACY.md.",
	}
	lg.AddCommand(legacyIngestCmd(), legacyMirrorCmd())
	root.AddCommand(lg)
}

// stopContext ends at SIGINT/SIGTERM or after d (0: never).
func stopContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stop
	}
	ctx2, cancel := context.WithTimeout(ctx, d)
	return ctx2, func() { cancel(); stop() }
}

// legacyTrust is which unsafe legacy slots ingest accepts anyway.
type legacyTrust struct{ otherOwner, groupWritable, worldWritable bool }

func legacyIngestCmd() *cobra.Command {
	var (
		from, to, dir, legacyDir string
		count                    uint64
		duration, poll           time.Duration
		slots, maxFrame          int
		noCompare, quiet         bool
		trust                    legacyTrust
	)
	c := &cobra.Command{
		Use:   "ingest --from NAME --to RING",
		Short: "Republish frames an old sender writes into a legacy slot into a ring",
		Long: "Reads the legacy slot NAME (written by an old sender) with tear detection and\n" +
			"publishes each distinct, complete frame once into ring RING, so framering\n" +
			"readers can follow an old writer. Follows the sender through its unlink and\n" +
			"re-create at start-up. Channels map to formats: 1 gray8, 3 bgr8, 4 bgra8.",
		Example: "  framering legacy ingest --from mmaptest_shm --to cam0\n" +
			"  framering legacy ingest --from mmaptest_shm --to cam0 --count 100 --poll 200us",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ring.CheckName(to); err != nil {
				return usagef("--to: %w", err)
			}
			if err := ring.CheckName(from); err != nil {
				return usagef("--from: %w", err)
			}
			if legacyDir == "" {
				legacyDir = dir
			}
			ctx, stop := stopContext(duration)
			defer stop()
			out := cmd.OutOrStdout()
			start := time.Now()
			st, err := legacy.Ingest(ctx, legacy.IngestOptions{
				Dir: legacyDir, Name: from, Ring: to,
				Producer: producer.Options{Dir: dir, Slots: slots},
				Reader: legacy.ReaderOptions{Poll: poll, NoCompare: noCompare, MaxFrameBytes: maxFrame,
					AllowOtherOwner: trust.otherOwner, AllowGroupWritable: trust.groupWritable, AllowWorldWritable: trust.worldWritable},
				Count: count,
				OnFrame: func(n uint64, f *legacy.Frame) {
					if !quiet && (n == 1 || n%100 == 0) {
						fmt.Fprintf(out, "ingest: %d frames (%dx%dx%d) from %s into ring %q\n", n, f.Width, f.Height, f.Channels, from, to)
					}
				},
			})
			fmt.Fprintf(out, "ingest: published %d frames in %v; refused %d torn copies; re-opened the slot %d times\n",
				st.Published, time.Since(start).Round(time.Millisecond), st.Reader.Torn, st.Reader.Reopens)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&from, "from", legacy.DefaultName, "legacy slot name (a file in --legacy-dir)")
	f.StringVar(&to, "to", "", "ring to publish into (required)")
	f.StringVar(&dir, "dir", ring.DefaultDir, "directory of rings")
	f.StringVar(&legacyDir, "legacy-dir", "", "directory of the legacy slot (default: --dir)")
	f.Uint64Var(&count, "count", 0, "stop after N frames (0: run until interrupted)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: run until interrupted)")
	f.DurationVar(&poll, "poll", time.Millisecond, "sleep between looks at the slot when nothing is new (negative: spin)")
	f.IntVar(&slots, "slots", 8, "slot count of the ring, a power of two")
	f.BoolVar(&noCompare, "no-compare", false, "skip the compare pass of the tear detection (cheaper, misses more tears)")
	f.IntVar(&maxFrame, "max-frame-bytes", legacy.DefaultMaxFrameBytes, "refuse a slot whose header names a frame larger than `N` bytes (width*height*channels)")
	f.BoolVar(&trust.otherOwner, "allow-other-owner", false, "accept a slot owned by another user (an old sender running as another account)")
	f.BoolVar(&trust.groupWritable, "allow-group-writable", false, "accept a slot its group may write")
	f.BoolVar(&trust.worldWritable, "allow-world-writable", false, "accept a slot anyone may write (the old sender's 0666 under umask 0): any local user can then inject frames")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	c.MarkFlagRequired("to")
	return c
}

func legacyMirrorCmd() *cobra.Command {
	var (
		from, to, dir, legacyDir, size string
		count                          uint64
		duration                       time.Duration
		rate                           float64
		mode                           string
		quiet                          bool
	)
	c := &cobra.Command{
		Use:   "mirror --from RING --to NAME",
		Short: "Mirror a running ring into a legacy slot for old readers",
		Long: "Follows ring RING (written by another process) and writes its newest frames into\n" +
			"the legacy slot NAME in the old layout and write sequence, so old receivers keep\n" +
			"working. bgr8 and gray8 frames go as they are; rgb8, bgra8 and rgba8 are\n" +
			"converted to bgr8; other formats are refused. The slot keeps its inode while\n" +
			"the mirror runs and across restarts of the mirror.",
		Example: "  framering legacy mirror --from cam0 --to mmaptest_shm --rate 30\n" +
			"  framering legacy mirror --from cam0 --to mmaptest_shm --size 640x404x3",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ring.CheckName(from); err != nil {
				return usagef("--from: %w", err)
			}
			if err := ring.CheckName(to); err != nil {
				return usagef("--to: %w", err)
			}
			if source.CheckFPS(rate) != nil {
				return usagef("legacy mirror: --rate %v: give 0 (no cap) or a number from %g up", rate, source.MinFPS)
			}
			perm, err := strconv.ParseUint(mode, 8, 32)
			if err != nil || perm > 0o777 {
				return usagef("--mode %q: give octal permission bits such as 0644", mode)
			}
			mo := legacy.MirrorOptions{MaxRate: rate, Perm: os.FileMode(perm)}
			if size != "" {
				w, h, ch, err := ring.ParseSize(size)
				if err != nil {
					return usagef("--size: %w", err)
				}
				mo.Width, mo.Height, mo.Channels = w, h, ch
			}
			if legacyDir == "" {
				legacyDir = dir
			}
			ctx, stop := stopContext(duration)
			defer stop()
			out := cmd.OutOrStdout()
			var n uint64
			st, err := legacy.MirrorRing(ctx, legacy.MirrorRingOptions{
				Ring: from, Consumer: consumer.Options{Dir: dir},
				Dir: legacyDir, Name: to, Mirror: mo, Count: count,
				OnFrame: func(f *ring.Frame) {
					n++
					if !quiet && (n == 1 || n%100 == 0) {
						fmt.Fprintf(out, "mirror: %d frames of ring %q (last %dx%d %v) into %s\n", n, from, f.Width, f.Height, f.Format, to)
					}
				},
			})
			fmt.Fprintf(out, "mirror: wrote %d frames, skipped %d by --rate, refused %d\n", st.Mirrored, st.RateSkipped, st.Refused)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "ring to follow (required)")
	f.StringVar(&to, "to", legacy.DefaultName, "legacy slot name (a file in --legacy-dir)")
	f.StringVar(&dir, "dir", ring.DefaultDir, "directory of rings")
	f.StringVar(&legacyDir, "legacy-dir", "", "directory of the legacy slot (default: --dir)")
	f.Uint64Var(&count, "count", 0, "stop after N frames (0: run until interrupted)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: run until interrupted)")
	f.Float64Var(&rate, "rate", 0, "mirror at most this many frames per second (0: every frame the reader gets)")
	f.StringVar(&size, "size", "", "WxHxC the old readers expect: sizes the slot and prefills its header before the first frame")
	f.StringVar(&mode, "mode", "0644", "permission bits of a new slot (the old sender's 0666 lets anyone overwrite frames)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	c.MarkFlagRequired("from")
	return c
}
