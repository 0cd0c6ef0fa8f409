package chaos_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// TestChaosManyReaders runs 32 readers on one writer: 4 processes of 8
// goroutines, every API (copy, view, in place), ordered and latest, two of
// them spinning first. The writer publishes P frames of 16 KiB into 4
// slots in bursts of 6 frames back to back, 1 ms apart: the bursts lap
// the ring, so readers get lapped and overwritten in the middle of a copy
// (torn reads, retried); the readers open the empty ring
// first, so every window starts at frame 1, and stop at frame P.
//
// Asserted per reader: 0 torn frames accepted (each checked word by word),
// frames in order, the reader's own count equal to Stats.Delivered, the
// window [1, P], and delivered + dropped == P.
func TestChaosManyReaders(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "32 readers on one writer")
	dir, name := ringDir(t), testutil.Name(t)
	P := l.frames32
	w := startChild(t, "writer", "DIR="+dir, "RING="+name, "SLOTS=4", "BYTES=16384", fmt.Sprintf("COUNT=%d", P),
		"GAP=1ms", "BURST=6", "HOLD=1", "LINGER=1")
	w.expect(t, "ready")
	apis := []string{"read", "acquire", "inplace"}
	var obs []*observer
	n := 0
	for p := 0; p < 4; p++ {
		var specs []string
		for g := 0; g < 8; g++ {
			s := apis[n%3] + ":" + []string{"ordered", "latest"}[(n/3)%2]
			if n == 5 || n == 22 {
				s += ":spin"
			}
			specs = append(specs, s)
			n++
		}
		f := startChild(t, "follower", "DIR="+dir, "RING="+name, "SPECS="+strings.Join(specs, ","), "START=oldest",
			fmt.Sprintf("UNTIL=%d", P), "CALL=10s")
		obs = append(obs, observe(t, f, 8))
	}
	for i, o := range obs {
		if !o.waitReady(ty, fmt.Sprintf("follower %d", i)) {
			t.FailNow()
		}
	}
	w.send("go")
	if _, err := w.Expect("published", lineWait*4); err != nil {
		ty.fail("writer: %v", err)
	}
	var all []readerResult
	for i, o := range obs {
		// Each follower ends by itself once its readers considered frame P.
		select {
		case <-o.c.Done():
		case <-time.After(2 * lineWait):
			o.mu.Lock()
			ty.fail("follower %d: its readers did not all reach frame %d (newest frames seen: %v)", i, P, o.frame)
			o.mu.Unlock()
		}
		all = append(all, o.finish(ty, fmt.Sprintf("follower %d", i))...)
	}
	w.in.Close()
	w.Wait(lineWait)
	var delivered, dropped, retries, lapped, skipped, overwritten uint64
	var perReader []uint64
	for _, r := range all {
		checkAccounting(ty, "32 readers", r)
		s := r.Stats
		if s.WindowStart != 1 || s.Last != uint64(P) {
			ty.fail("reader %s (%s %s): window [%d, %d], want [1, %d]", r.Idx, r.API, r.Mode, s.WindowStart, s.Last, P)
		}
		if s.Delivered+s.Dropped != uint64(P) {
			ty.fail("reader %s (%s %s): delivered %d + dropped %d != %d published", r.Idx, r.API, r.Mode, s.Delivered, s.Dropped, P)
		}
		if r.Mine == 0 {
			ty.fail("reader %s (%s %s) delivered nothing", r.Idx, r.API, r.Mode)
		}
		delivered += s.Delivered
		dropped += s.Dropped
		retries += s.Retries
		lapped += s.Lapped
		skipped += s.Skipped
		overwritten += s.Overwritten
		perReader = append(perReader, s.Delivered)
	}
	if len(all) != 32 {
		ty.fail("%d reader results, want 32", len(all))
	}
	slices.Sort(perReader)
	if len(perReader) > 0 {
		ty.figure("readers %d, frames published %d, delivered %d (per reader %d..%d), dropped %d (lapped %d, skipped %d, views overwritten %d), torn reads retried %d",
			len(all), P, delivered, perReader[0], perReader[len(perReader)-1], dropped, lapped, skipped, overwritten, retries)
	}
}
