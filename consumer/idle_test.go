package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
)

// A reader blocked on a live but silent writer wakes up once per wait
// slice: one futex wait, one writer probe, one turn of its loop. The
// counts come from the reader's own counters; the bound is per slice of
// the time that actually passed, so a slow or busy machine can only
// lower them. A reader that spun, or whose futex wait returned at once
// (EFAULT taken for "re-check", a value that never matches), would make
// thousands of turns per slice.
func TestBlockedReaderIdleWakeups(t *testing.T) {
	const slice = 20 * time.Millisecond
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	openWriter(t, dir, name, 4096)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: slice})
	ctx, cancel := context.WithTimeout(context.Background(), 25*slice)
	defer cancel()
	start := time.Now()
	if _, err := r.Read(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want DeadlineExceeded", err)
	}
	elapsed := time.Since(start)
	loops, waits, probes := r.WaitCounts()
	slices := uint64(elapsed/slice) + 1 // the last wait is cut short by the deadline
	t.Logf("%v blocked: %d loop turns, %d futex waits, %d writer probes (%.1f wake-ups per second)",
		elapsed.Round(time.Millisecond), loops, waits, probes, float64(waits)/elapsed.Seconds())
	if waits == 0 || waits > slices+1 {
		t.Errorf("%d futex waits in %d slices: want one per slice", waits, slices)
	}
	if probes > waits {
		t.Errorf("%d writer probes for %d waits: want at most one per wait", probes, waits)
	}
	if loops > waits+2 {
		t.Errorf("%d loop turns for %d waits: want one per wait (+2)", loops, waits)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// helperIdleReader blocks in Read for BLOCK while no frame comes and
// prints the CPU time it used meanwhile and its futex waits.
func helperIdleReader() int {
	r, err := consumer.Open(os.Getenv("RING"), consumer.Options{Dir: os.Getenv("DIR"), StartAt: consumer.Next})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	block := envDur("BLOCK", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), block)
	defer cancel()
	cpu0, t0 := cpuTime(), time.Now()
	_, err = r.Read(ctx, nil)
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(os.Stderr, "Read returned %v, want deadline exceeded\n", err)
		return 1
	}
	_, waits, _ := r.WaitCounts()
	fmt.Printf("idle cpu_ns=%d wall_ns=%d waits=%d\n", cpu.Nanoseconds(), wall.Nanoseconds(), waits)
	return 0
}

// BenchmarkBlockedReaderIdle reports the CPU share and the wake-ups per
// second of a reader process blocked on a live, silent writer with the
// default wait slice (a figure, not a test: it depends on the machine).
// Each iteration blocks one reader process for 2 s.
func BenchmarkBlockedReaderIdle(b *testing.B) {
	dir, name := testutil.ShmDir(b), testutil.Name(b)
	w, err := producer.Open(name, producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Remove()
	var cpu, wall, waits int64
	for b.Loop() {
		c := testutil.Start(b, "idle-reader", ringEnv(dir, name, "BLOCK=2s")...)
		line, err := c.Expect("idle", hang)
		if err != nil {
			b.Fatal(err)
		}
		var cn, wn, n int64
		fmt.Sscanf(line, "idle cpu_ns=%d wall_ns=%d waits=%d", &cn, &wn, &n)
		cpu, wall, waits = cpu+cn, wall+wn, waits+n
	}
	b.ReportMetric(100*float64(cpu)/float64(wall), "cpu_%")
	b.ReportMetric(float64(waits)/time.Duration(wall).Seconds(), "wakeups/s")
}
