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
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// helperIdleReader blocks in Read for BLOCK while no frame comes and
// prints the CPU time it used meanwhile.
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
	fmt.Printf("idle cpu_ns=%d wall_ns=%d\n", cpu.Nanoseconds(), wall.Nanoseconds())
	return 0
}

// A reader blocked for 5 s on a live but silent writer uses at most 0.5 %
// of a core. (A resource bound, not a timing bound: a busy machine only
// lowers the number.)
func TestBlockedReaderIdleCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5 s: skipped in -short mode")
	}
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 4096)
	_ = w
	r := testutil.Start(t, "idle-reader", ringEnv(dir, name, "BLOCK=5s")...)
	line, err := r.Expect("idle", hang)
	if err != nil {
		t.Fatal(err)
	}
	var cpu, wall int64
	fmt.Sscanf(line, "idle cpu_ns=%d wall_ns=%d", &cpu, &wall)
	share := float64(cpu) / float64(wall)
	t.Logf("blocked reader: %v CPU over %v = %.3f%% of a core", time.Duration(cpu), time.Duration(wall), 100*share)
	if share > 0.005 {
		t.Errorf("blocked reader used %.3f%% of a core, want <= 0.5%%", 100*share)
	}
}
