package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
	"github.com/spf13/cobra"
)

type rmFlags struct {
	dir          string
	force, stale bool
}

var rmOpts rmFlags

var rmCmd = &cobra.Command{
	Use:   "rm [--force] [--stale] [NAME...]",
	Short: "Remove rings, and stale temporary files of writers",
	Long: `rm removes the rings named from the shared-memory directory. A ring whose
writer is alive (it holds the ring's lock, however old its heartbeat) is
refused unless --force is given; --force also ignores names that do not
exist. Readers and a writer that still have the ring mapped keep it until
they close it; the memory is freed then.

--stale removes the temporary files writers build rings in
(.framering-tmp.*) whose writer is gone: unlocked and unchanged for more
than 10 s. 'framering ls' shows them.`,
	Example: `  framering rm cam0 cam1
  framering rm --stale`,
	ValidArgsFunction: completeRingArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		return runRm(cmd.OutOrStdout(), &rmOpts, args)
	},
}

func init() {
	f := rmCmd.Flags()
	dirFlag(f, &rmOpts.dir)
	f.BoolVarP(&rmOpts.force, "force", "f", false, "remove rings even while their writer is alive; ignore names that do not exist")
	f.BoolVar(&rmOpts.stale, "stale", false, "remove stale temporary files of writers (.framering-tmp.*)")
	root.AddCommand(rmCmd)
}

// errWriterAlive is returned for a ring rm refuses to remove.
var errWriterAlive = errors.New("its writer is alive")

// rmError is an error of rm about one ring, so that advice can tell rm's
// "does not exist" from a reader's.
type rmError struct {
	name string
	err  error
}

func (e *rmError) Error() string { return fmt.Sprintf("rm %q: %v", e.name, e.err) }
func (e *rmError) Unwrap() error { return e.err }

func runRm(out io.Writer, o *rmFlags, names []string) error {
	if len(names) == 0 && !o.stale {
		return usagef("rm: give the ring NAMEs to remove, or --stale")
	}
	for _, n := range names {
		if err := ring.CheckName(n); err != nil {
			return usagef("rm: %w", err)
		}
	}
	var errs []error
	for _, n := range names {
		path, err := removeRing(o.dir, n, o.force)
		switch {
		case err == nil:
			fmt.Fprintf(out, "removed ring %q (%s)\n", n, path)
		case o.force && errors.Is(err, ring.ErrNotFound):
		default:
			errs = append(errs, err)
		}
	}
	if o.stale {
		removed, err := segfile.RemoveStaleTemps(o.dir)
		for _, t := range removed {
			fmt.Fprintf(out, "removed stale temporary file %s (%s, unchanged for %v)\n", t.Path, fmtBytes(t.Size), t.Age.Round(time.Second))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rm --stale: %w", err))
		}
	}
	if len(errs) > 1 { // each with its own advice, then the count
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "framering: %s\n", withAdvice(err))
		}
		return fmt.Errorf("rm: %d errors", len(errs))
	}
	return errors.Join(errs...)
}

// removeRing unlinks ring name in dir unless its writer holds the ring's
// lock (and force is not set).
func removeRing(dir, name string, force bool) (string, error) {
	path := ring.Path(dir, name)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, &rmError{name, ring.ErrNotFound}
	}
	if err != nil {
		return path, &rmError{name, err}
	}
	// Only a regular file can have a writer; a FIFO or link under the name
	// is not opened (a FIFO would block) and is removed as it is.
	if fi.Mode().IsRegular() && !force {
		if l, err := probeWriter(dir, name, path); err != nil {
			return path, &rmError{name, err}
		} else if l.State != segfile.Gone {
			return path, &rmError{name, fmt.Errorf("%w: %s", errWriterAlive, describeWriter(l))}
		}
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return path, &rmError{name, ring.ErrNotFound}
		}
		return path, &rmError{name, err}
	}
	return path, nil
}

// probeWriter finds out whether a writer holds ring name's lock: through
// its superblock when it is a valid ring (which also gives the pid and the
// heartbeat), else by probing the OFD lock of the file alone.
func probeWriter(dir, name, path string) (segfile.Liveness, error) {
	if f, err := openRaw(dir, name); err == nil {
		defer f.Close()
		l := f.Writer(time.Second)
		if l.State != segfile.Unknown {
			return l, nil
		}
	}
	f, err := shm.Open(path, false)
	if err != nil {
		return segfile.Liveness{}, err
	}
	defer f.Close()
	locked, err := f.WriteLocked()
	if err != nil {
		return segfile.Liveness{}, err
	}
	if locked {
		return segfile.Liveness{State: segfile.Alive, Alive: true}, nil
	}
	return segfile.Liveness{State: segfile.Gone}, nil
}

func describeWriter(l segfile.Liveness) string {
	who := "a writer holds its lock"
	if l.PID > 0 {
		who = fmt.Sprintf("writer pid %d holds its lock", l.PID)
	}
	switch l.State {
	case segfile.Hung:
		return fmt.Sprintf("%s (hung: heartbeat %v old)", who, l.HeartbeatAge.Round(time.Millisecond))
	case segfile.Starting:
		return who + " (starting)"
	}
	return who
}
