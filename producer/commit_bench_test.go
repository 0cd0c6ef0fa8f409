package producer_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"golang.org/x/sys/unix"
)

func init() {
	// commit-reader: a futex-mode reader in its own process, pinned to
	// $CPU if set, that prints "got N" after each frame it acquires.
	testutil.Helper("commit-reader", func() int {
		runtime.LockOSThread()
		if c := os.Getenv("CPU"); c != "" {
			cpu, _ := strconv.Atoi(c)
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		r, err := consumer.Open(os.Getenv("RING"), consumer.Options{Dir: os.Getenv("DIR"), Mode: consumer.Latest})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		fmt.Println("ready")
		for {
			v, err := r.Acquire(context.Background())
			if err != nil {
				return 0 // the writer went away
			}
			n := v.Frame().Number
			v.Release()
			fmt.Println("got", n)
		}
	})
}

// BenchmarkCommitWake is Commit's own cost in futex mode (Reserve is not
// timed; no pixels are written): with nobody waiting, and with a reader
// in another process asleep in FUTEX_WAIT when the frame comes (the
// writer pauses 1 ms after the reader's acknowledgement of the frame
// before). The writer runs on CPU 0; the reader on the other CPU, on the
// same one, or wherever the scheduler puts it. It reports commit_p50_us
// and commit_p99_us, and preempted: the share of Commits during which the
// writer's thread was switched out involuntarily (its
// nonvoluntary_ctxt_switches grew), which is the woken reader taking the
// writer's CPU inside FUTEX_WAKE. futexwake-nowaiter is the bare system
// call on the ring's notify word with nobody waiting.
func BenchmarkCommitWake(b *testing.B) {
	b.Run("futexwake-nowaiter", func(b *testing.B) {
		dir := testutil.ShmDir(b)
		w, err := producer.Open(testutil.Name(b), producer.Options{Dir: dir, MaxFrameBytes: 4096})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Remove()
		notify := w.Segment().Notify()
		for b.Loop() {
			shm.FutexWake(notify, math.MaxInt32)
		}
	})
	for _, c := range []struct{ name, readerCPU string }{
		{"noreader", "none"},
		{"reader-othercpu", "1"},
		{"reader-samecpu", "0"},
		{"reader-unpinned", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			var cpus unix.CPUSet
			if err := unix.SchedGetaffinity(0, &cpus); err != nil || cpus.Count() < 2 || !cpus.IsSet(0) || !cpus.IsSet(1) {
				b.Skipf("needs CPUs 0 and 1 (affinity: %d CPUs, %v)", cpus.Count(), err)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(0)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				b.Fatal(err)
			}
			defer unix.SchedSetaffinity(0, &cpus)

			dir, name := testutil.ShmDir(b), testutil.Name(b)
			w, err := producer.Open(name, producer.Options{Dir: dir, MaxWidth: 640, MaxHeight: 404, Slots: 8})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Remove()
			var child *testutil.Child
			if c.readerCPU != "none" {
				child = testutil.Start(b, "commit-reader", "RING="+name, "DIR="+dir, "CPU="+c.readerCPU)
				if _, err := child.Expect("ready", 30*time.Second); err != nil {
					b.Fatal(err)
				}
			}
			info := ring.FrameInfo{Width: 640, Height: 404, Format: ring.BGR8}
			var commits []time.Duration
			preempted := 0
			for b.Loop() {
				time.Sleep(time.Millisecond) // the reader is back in FUTEX_WAIT
				l, err := w.Reserve(info)
				if err != nil {
					b.Fatal(err)
				}
				nv0 := involuntarySwitches(b)
				t0 := time.Now()
				if err := l.Commit(); err != nil {
					b.Fatal(err)
				}
				d := time.Since(t0)
				if involuntarySwitches(b) > nv0 {
					preempted++
				}
				commits = append(commits, d)
				if child != nil {
					want := fmt.Sprint("got ", l.Number())
					if _, err := child.Expect(want, 30*time.Second); err != nil {
						b.Fatal(err)
					}
				}
			}
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			b.ReportMetric(us(quantile(commits, 0.5)), "commit_p50_us")
			b.ReportMetric(us(quantile(commits, 0.99)), "commit_p99_us")
			b.ReportMetric(float64(preempted)/float64(len(commits)), "preempted")
		})
	}
}

// involuntarySwitches reads this thread's nonvoluntary_ctxt_switches.
func involuntarySwitches(b *testing.B) int {
	st, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		b.Fatal(err)
	}
	const key = "nonvoluntary_ctxt_switches:"
	i := bytes.Index(st, []byte(key))
	if i < 0 {
		b.Fatalf("no %s in /proc/thread-self/status", key)
	}
	rest := bytes.TrimLeft(st[i+len(key):], " \t")
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(string(rest))
	if err != nil {
		b.Fatal(err)
	}
	return n
}
