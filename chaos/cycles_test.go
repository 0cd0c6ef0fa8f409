package chaos_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// Bounds on what open/close cycles may leave behind, as counts. Closed
// mappings stay reserved (PROT_NONE) for the last 16 a process retired, and
// the Go runtime grows its heap in arenas: a few lines of /proc/self/maps
// more are fine, a line per cycle is a leak. Threads: the runtime keeps a
// thread per blocking system call in flight at once. RSS: the runtime and
// the kernel round; a ring mapping that is not unmapped stays resident.
const (
	maxFDGrowth        = 0
	maxMapsGrowth      = 48
	maxMapsGrowthLate  = 24 // from half-way to the end
	maxThreadGrowth    = 4
	maxGoroutineGrowth = 2
	maxRSSGrowthKiB    = 16 << 10
	maxRSSGrowthLate   = 8 << 10
)

// TestChaosCycles opens and closes readers and writers thousands of times
// (10,000 of each kind in the full suite) in a child process and compares
// what the process holds after a warm-up, half-way and at the end: file
// descriptors, /proc/self/maps lines, threads, goroutines, resident
// memory. Kinds: reader (Open, one frame by each API in turn: Read,
// Acquire/Release, ReadInPlace, OpenWait + Read; Close), writer (Open the
// existing ring, take it over, Publish, Close) and create (Open a new
// ring, Publish, Remove). No temporary file may remain.
func TestChaosCycles(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "open/close cycles")
	dir, name := ringDir(t), testutil.Name(t)
	if !prepareRing(t, ty, dir, name, 65536, 16) {
		t.FailNow()
	}
	for _, kind := range []string{"reader", "writer", "create"} {
		c := startChild(t, "cycler", "DIR="+dir, "RING="+name, "KIND="+kind, fmt.Sprintf("N=%d", l.cycles), "BYTES=65536", "SLOTS=8")
		rest, err := c.Wait(lineWait * 10)
		var line string
		for _, x := range rest {
			if strings.HasPrefix(x, "usage ") {
				line = x
			}
			if strings.HasPrefix(x, "hang ") {
				ty.hang("%s cycles: %s\n%s", kind, x, hungStack(c.Stderr()))
			}
		}
		if err != nil {
			if bad, why := crashed(c.Stderr(), err); bad {
				ty.crash("%s cycles: %s", kind, why)
			} else if line == "" {
				ty.fail("%s cycles: %v", kind, err)
			}
		}
		if line == "" {
			continue
		}
		var u struct {
			Kind            string
			N               int
			Warm, Half, End usage
			Errors          map[string]int
			First           map[string]string
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "usage ")), &u); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for k, n := range u.Errors {
			ty.fail("%s cycles: %d errors %s, the first: %s", kind, n, k, u.First[k])
		}
		check := func(what string, warm, half, end, bound, lateBound int) {
			if end-warm > bound || end-half > lateBound {
				ty.leak("%s cycles: %s %d after the warm-up, %d half-way, %d after %d cycles (bound: +%d, +%d in the second half)",
					kind, what, warm, half, end, u.N, bound, lateBound)
			}
		}
		check("descriptors", u.Warm.FDs, u.Half.FDs, u.End.FDs, maxFDGrowth, maxFDGrowth)
		check("mapping lines", u.Warm.Maps, u.Half.Maps, u.End.Maps, maxMapsGrowth, maxMapsGrowthLate)
		check("threads", u.Warm.Threads, u.Half.Threads, u.End.Threads, maxThreadGrowth, maxThreadGrowth)
		check("goroutines", u.Warm.Goroutines, u.Half.Goroutines, u.End.Goroutines, maxGoroutineGrowth, maxGoroutineGrowth)
		check("RSS KiB", u.Warm.RSSKiB, u.Half.RSSKiB, u.End.RSSKiB, maxRSSGrowthKiB, maxRSSGrowthLate)
		ty.figure("%s %d cycles: fds %d→%d→%d, maps %d→%d→%d, threads %d→%d→%d, goroutines %d→%d→%d, RSS %d→%d→%d KiB",
			kind, u.N, u.Warm.FDs, u.Half.FDs, u.End.FDs, u.Warm.Maps, u.Half.Maps, u.End.Maps,
			u.Warm.Threads, u.Half.Threads, u.End.Threads, u.Warm.Goroutines, u.Half.Goroutines, u.End.Goroutines,
			u.Warm.RSSKiB, u.Half.RSSKiB, u.End.RSSKiB)
	}
	if left := tmpFiles(dir); len(left) > 0 {
		ty.leak("temporary files left: %v", left)
	}
	for _, n := range dirNames(dir) {
		if n != ring.FilePrefix+name {
			ty.leak("file left in the ring directory: %s", n)
		}
	}
}
