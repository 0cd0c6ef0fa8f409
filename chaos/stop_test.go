package chaos_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/testutil"
)

// TestChaosStopCont stops the writer (SIGSTOP) while three readers (copy,
// view, in place) follow it: each must report the writer gone (hung: its
// lock is held but its heartbeat stops) once the heartbeat is older than
// HungAfter (the default, 1 s), and resume after SIGCONT. ls and stat must
// answer while the writer is stopped. Detection and resume times are
// printed; the invariants are that every stop is reported and every reader
// resumes, with no torn frame and exact accounting.
func TestChaosStopCont(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "writer SIGSTOP/SIGCONT")
	dir, name := ringDir(t), testutil.Name(t)
	w := startChild(t, "writer", "DIR="+dir, "RING="+name, "SLOTS=8", "BYTES=65536", "GAP=2ms")
	w.expect(t, "ready")
	const readers = 3
	f := startChild(t, "follower", "DIR="+dir, "RING="+name, "SPECS=read:ordered,acquire:latest,inplace:ordered", "START=oldest")
	o := observe(t, f, readers)
	if !o.waitReady(ty, "followers") {
		return
	}
	var resumeMs []float64
	var statHung int
	stops := 0
	for k := 0; k < l.stops && !ty.tooManyHangs(); k++ {
		// Frames flow before the stop (after the first one: the readers
		// resumed at the end of the previous round).
		flowing := o.up
		if !o.until(lineWait, flowing) {
			o.failWait(ty, fmt.Sprintf("stop %d: readers have no frame", k), flowing)
			break
		}
		ts := now()
		if err := w.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stops++
		if !o.detectGone(ty, fmt.Sprintf("stop %d", k), ts) {
			w.Signal(syscall.SIGCONT)
			break
		}
		r := runCLI(t, cliTimeout, "stat", name, "--dir", dir)
		ty.cli(r, fmt.Sprintf("stop %d", k))
		if strings.Contains(r.stdout, "hung") {
			statHung++
		}
		ty.cli(runCLI(t, cliTimeout, "ls", "--dir", dir), fmt.Sprintf("stop %d", k))
		tc := now()
		if err := w.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed := func(idx string) bool { return o.resumeAfter(idx, tc) != 0 }
		if !o.until(lineWait, resumed) {
			o.failWait(ty, fmt.Sprintf("stop %d: readers did not resume after SIGCONT", k), resumed)
			break
		}
		o.mu.Lock()
		for i := 0; i < readers; i++ {
			resumeMs = append(resumeMs, float64(o.resumeAfter(fmt.Sprint(i), tc)-tc)/1e6)
		}
		o.mu.Unlock()
	}
	results := o.finish(ty, "followers")
	w.in.Close()
	if _, err := w.Wait(lineWait); err != nil {
		if bad, why := crashed(w.Stderr(), err); bad {
			ty.crash("writer: %s", why)
		} else {
			ty.fail("writer: %v", err)
		}
	}
	var gones, resumes uint64
	for _, r := range results {
		checkAccounting(ty, "stop", r)
		gones += r.Stats.WriterGone
		resumes += r.Stats.Resumes
		if r.Stats.WriterGone < uint64(stops) {
			ty.fail("reader %s (%s %s) reported the writer gone %d times for %d stops", r.Idx, r.API, r.Mode, r.Stats.WriterGone, stops)
		}
	}
	slices.Sort(resumeMs)
	med := 0.0
	if len(resumeMs) > 0 {
		med = resumeMs[len(resumeMs)/2]
	}
	ty.figure("stops %d, readers %d, writer-gone reports %d, resumes %d, resume ms p50 %.0f after SIGCONT, stat said hung %d/%d",
		stops, readers, gones, resumes, med, statHung, stops)
}
