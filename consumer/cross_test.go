package consumer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

const hang = 2 * time.Minute // guards against a hung child, not a performance limit

// A writer at full speed and three readers in other processes: every
// accepted frame is checked word by word, and none may be torn.
func TestCrossProcessNoTornFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test: skipped in -short mode")
	}
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, _, goNow := startWriter(t, dir, name, "SLOTS=4", "DURATION=1500ms")
	var readers []*testutil.Child
	for i, mode := range []string{"MODE=ordered", "MODE=latest", "VIEW=1"} {
		r := testutil.Start(t, "reader", ringEnv(dir, name, mode, "GONE_OK=0", fmt.Sprintf("ID=%d", i))...)
		if _, err := r.Expect("ready", hang); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	goNow()
	out, err := w.Wait(hang)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, l := range out {
		fmt.Sscanf(l, "published last=%d", &last)
	}
	if last < 100 {
		t.Fatalf("writer published only up to frame %d: %q", last, out)
	}
	var totalRetries uint64
	for i, r := range readers {
		res, err := r.Expect("result", hang)
		if err != nil {
			t.Fatal(err)
		}
		got := parseResult(t, res)
		t.Logf("reader %d (%s): delivered %d, dropped %d, rejected reads (torn, retried) %d, last %d of %d",
			i, []string{"ordered copy", "latest copy", "ordered view"}[i], got.delivered, got.dropped, got.retries, got.last, last)
		if got.torn != 0 {
			t.Errorf("reader %d accepted %d torn frames; stderr:\n%s", i, got.torn, r.Stderr())
		}
		if got.delivered == 0 {
			t.Errorf("reader %d delivered nothing", i)
		}
		if got.last != last {
			t.Errorf("reader %d stopped at frame %d, writer's last was %d", i, got.last, last)
		}
		if n := got.last - got.first + 1; got.delivered+got.dropped != n {
			t.Errorf("reader %d: delivered %d + dropped %d != %d frames in its window [%d, %d]",
				i, got.delivered, got.dropped, n, got.first, got.last)
		}
		totalRetries += got.retries
	}
	t.Logf("%d frames published, %d torn reads rejected in total, 0 accepted", last, totalRetries)
}

// A reader that sleeps between frames is lapped; its counts stay exact.
func TestSlowReaderAccountingExact(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	const count = 3000
	w, _, goNow := startWriter(t, dir, name, "SLOTS=4", fmt.Sprintf("COUNT=%d", count), "BYTES=4096")
	r := testutil.Start(t, "reader", ringEnv(dir, name, "SLOW=200us", fmt.Sprintf("UNTIL=%d", count))...)
	if _, err := r.Expect("ready", hang); err != nil {
		t.Fatal(err)
	}
	goNow()
	if _, err := w.Wait(hang); err != nil {
		t.Fatal(err)
	}
	res, err := r.Expect("result", hang)
	if err != nil {
		t.Fatal(err)
	}
	got := parseResult(t, res)
	// The reader opened before the first frame: its window is every frame.
	if got.first != 1 || got.last != count {
		t.Fatalf("window [%d, %d], want [1, %d]", got.first, got.last, count)
	}
	if got.delivered+got.dropped != count {
		t.Fatalf("delivered %d + dropped %d = %d, want exactly %d published", got.delivered, got.dropped, got.delivered+got.dropped, count)
	}
	if got.dropped == 0 {
		t.Fatalf("a reader sleeping 200us per frame was never lapped by a full-speed writer: delivered %d", got.delivered)
	}
	if got.torn != 0 {
		t.Fatalf("%d torn frames accepted", got.torn)
	}
	t.Logf("delivered %d + dropped %d = %d published", got.delivered, got.dropped, count)
}

// The writer is SIGKILLed in the middle of a frame. Readers report the
// writer gone, a restarted writer continues the numbering, readers resume,
// nothing torn is accepted.
func TestWriterKilledMidFrameRestart(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, _, goNow := startWriter(t, dir, name, "SLOTS=4", "PAUSE_AT=200", "GAP=100us")
	var readers []*testutil.Child
	for _, mode := range []string{"MODE=ordered", "VIEW=1"} {
		r := testutil.Start(t, "reader", ringEnv(dir, name, mode, "GONE_OK=1", "UNTIL=399")...)
		if _, err := r.Expect("ready", hang); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	goNow()
	if _, err := w.Expect("midframe 200", hang); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	w.Kill()
	for i, r := range readers {
		if _, err := r.Expect("gone 1", hang); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		// Reported, not asserted: the design target is < 1 s (one 100 ms
		// wait slice, or at once when the lock probe runs).
		t.Logf("reader %d saw the writer gone %v after SIGKILL", i, time.Since(killed).Round(time.Millisecond))
	}
	w = testutil.Start(t, "writer", ringEnv(dir, name, "SLOTS=4", "COUNT=200", "GAP=100us")...)
	ready, err := w.Expect("ready", hang)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ready, "ready gen=2 ") {
		t.Errorf("restarted writer says %q, want generation 2", ready)
	}
	out, err := w.Wait(hang)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 || out[len(out)-1] != "published last=399" {
		t.Fatalf("restarted writer: %q, want it to continue at 200 and end at 399", out)
	}
	for i, r := range readers {
		res, err := r.Expect("result", hang)
		if err != nil {
			t.Fatal(err)
		}
		got := parseResult(t, res)
		t.Logf("reader %d: %+v", i, got)
		if got.torn != 0 {
			t.Errorf("reader %d accepted %d torn frames", i, got.torn)
		}
		if got.gone != 1 || got.resumes != 1 {
			t.Errorf("reader %d: writer gone %d times, resumed %d; want 1 and 1", i, got.gone, got.resumes)
		}
		if got.last < 399 || got.delivered+got.dropped != got.last-got.first+1 {
			t.Errorf("reader %d: delivered %d + dropped %d over window [%d, %d]", i, got.delivered, got.dropped, got.first, got.last)
		}
	}
}
