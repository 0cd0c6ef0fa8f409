package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// A spinning reader whose writer dies without a word (SIGKILL: no wake-up,
// only its lock goes) reports the writer gone after one spin, however long
// Spin is: the spin is capped at WaitSlice and ends with a writer probe.
// Before, it spun for the whole Spin (a reader was seen spinning for 6
// minutes after its writer exited).
func TestSpinningReaderNoticesDeadWriter(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, _, _ := startWriter(t, dir, name)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, Spin: time.Hour, WaitSlice: 50 * time.Millisecond})
	done := readAsync(r, context.Background())
	testutil.Eventually(t, "the reader spinning", func() bool { loops, _, _ := r.WaitCounts(); return loops > 10 })
	w.Kill()
	if res := testutil.Receive(t, done, "a spinning read after its writer was killed"); !errors.Is(res.err, ring.ErrWriterGone) {
		t.Fatalf("read = %v, want ErrWriterGone", res.err)
	}
}

// A spinning reader on a live, silent writer yields to the futex after
// its spin: it sleeps (futex waits) instead of spinning until its
// deadline, whatever Spin says.
func TestSpinYieldsToFutex(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	openWriter(t, dir, name, 64)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, Spin: time.Hour, WaitSlice: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if res := testutil.Receive(t, readAsync(r, ctx), "a spinning read with a deadline"); !errors.Is(res.err, context.DeadlineExceeded) {
		t.Fatalf("read = %v, want DeadlineExceeded", res.err)
	}
	_, waits, probes := r.WaitCounts()
	if waits == 0 || probes == 0 {
		t.Fatalf("%d futex waits, %d writer probes: the spin never yielded to the futex", waits, probes)
	}
}
