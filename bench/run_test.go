package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
)

// tiny is a small frame: enough pages for the per-page marks.
var tiny = Shape{64, 48, 3}

// TestEveryTransportAcrossProcesses runs a tiny case per transport and
// kind in separate processes (the C and Python readers too, where their
// toolchain is here) and checks the accounting.
func TestEveryTransportAcrossProcesses(t *testing.T) {
	type tc struct {
		kind    Kind
		tr      Transport
		wait    Wait
		readers int
		pin     bool
	}
	var cases []tc
	for _, tr := range AllTransports {
		cases = append(cases, tc{kind: Latency, tr: tr, wait: DefaultWait(tr), readers: 1})
		if tr != Bare {
			cases = append(cases, tc{kind: Throughput, tr: tr, wait: DefaultWait(tr), readers: 1})
		}
		if tr != Memcpy && !tr.foreign() && tr != Bare {
			cases = append(cases, tc{kind: PingPong, tr: tr, wait: DefaultWait(tr), readers: 1}, tc{kind: Latency, tr: tr, wait: DefaultWait(tr), readers: 2})
		}
	}
	cases = append(cases,
		tc{kind: Latency, tr: FrameringView, wait: Spin, readers: 1}, tc{kind: Latency, tr: FrameringView, wait: Poll, readers: 1},
		tc{kind: Latency, tr: FrameringCopy, wait: Spin, readers: 1}, tc{kind: Latency, tr: FrameringCopy, wait: Poll, readers: 1},
		tc{kind: Latency, tr: Legacy, wait: Spin, readers: 1}, tc{kind: Latency, tr: Bare, wait: Spin, readers: 1},
		tc{kind: Latency, tr: Bare, wait: Futex, readers: 2}, tc{kind: PingPong, tr: FrameringCopy, wait: Spin, readers: 1},
		tc{kind: Latency, tr: FrameringView, wait: Spin, readers: 1, pin: true},
		tc{kind: CopyOut, tr: FrameringCopy, wait: Poll, readers: 1}, tc{kind: CopyOut, tr: CCopy, wait: Poll, readers: 1},
		tc{kind: CopyOut, tr: PyCopy, wait: Poll, readers: 1},
		tc{kind: Idle, tr: FrameringView, wait: Futex, readers: 1}, tc{kind: Idle, tr: CView, wait: Futex, readers: 1},
		tc{kind: Idle, tr: PyView, wait: Futex, readers: 1})
	workers := foreignWorkers(t)
	for _, why := range []string{workers.CMissing, workers.PythonMissing} {
		if why != "" {
			t.Logf("skipping: %s", why)
		}
	}
	for _, k := range cases {
		c := Case{Kind: k.kind, Transport: k.tr, Wait: k.wait, Shape: tiny, Readers: k.readers, Pin: k.pin, Duration: 150 * time.Millisecond}
		if k.kind == Idle {
			c.Duration = 300 * time.Millisecond
		}
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			if why := workers.missing(c.Transport.lang()); why != "" {
				t.Skip(why)
			}
			if c.Pin {
				if cpus, _ := shm.CPUs(); len(cpus) < 2 {
					t.Skip("pinning needs 2 CPUs")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			r := testRunner(t)
			r.Workers = workers
			res := r.Run(ctx, c)
			if res.Err != "" || res.Skipped != "" {
				t.Fatalf("case failed: %s%s", res.Err, res.Skipped)
			}
			t.Logf("frames %d delivered %d dropped %d torn %d p50 %d max %d fps %.0f cpu %.3f %v sched %+v first %+v copy %+v idle %+v",
				res.Frames, res.Delivered, res.Dropped, res.Torn, res.Latency.P50, res.Latency.Max, res.FPS, res.WriterCPU, res.ReaderCPU,
				res.Sched, res.First, res.Copy, res.Idle)
			if c.Transport != Legacy && res.Torn != 0 {
				t.Errorf("%d torn frames accepted over %s; want 0", res.Torn, c.Transport)
			}
			if c.Kind == Idle {
				if res.Idle == nil || res.Idle.Seconds <= 0 || res.Delivered != 0 {
					t.Errorf("idle: %+v, %d frames delivered; want a window and no frame", res.Idle, res.Delivered)
				}
				return
			}
			if res.Frames < minFrames || res.Delivered == 0 {
				t.Fatalf("published %d, delivered %d; want at least %d and > 0", res.Frames, res.Delivered, minFrames)
			}
			if c.Kind == CopyOut {
				want := map[Transport][]string{FrameringCopy: {MethodRead, MethodGoCopy}, CCopy: {MethodRead, MethodGlibc}, PyCopy: {MethodRead, MethodNumpy}}[c.Transport]
				if len(res.Copy) != 2 || res.Copy[0].Method != want[0] || res.Copy[1].Method != want[1] || res.Copy[0].Time.Count == 0 {
					t.Errorf("copy-out figures %+v; want %v", res.Copy, want)
				}
				if res.AckTimeouts != 0 || res.Delivered != res.Frames {
					t.Errorf("copy-out: %d of %d frames, %d ack timeouts; a paced reader misses none", res.Delivered, res.Frames, res.AckTimeouts)
				}
				return
			}
			if res.Latency.Count == 0 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P50 {
				t.Errorf("latency %+v: want steady-state samples with 0 < p50 <= max", res.Latency)
			}
			if c.Kind != PingPong && c.Transport != Memcpy && len(res.ReaderCPU) != c.Readers {
				t.Errorf("CPU figures for %d readers, want %d", len(res.ReaderCPU), c.Readers)
			}
			per := res.Delivered / uint64(c.Readers)
			// Sockets and pipes are lossless; so is every paced reader (the
			// writer waits for its ack).
			if (c.Transport.stream() && c.Kind != PingPong || c.Kind == Latency && c.Transport != Legacy) && per != res.Frames {
				t.Errorf("%s delivered %d of %d frames per reader; want all", c.Transport, per, res.Frames)
			}
			if c.Kind == Latency {
				if res.AckTimeouts != 0 {
					t.Errorf("%d paced frames not acked in time", res.AckTimeouts)
				}
				if res.Sched == nil && newSchedClock() != nil {
					t.Error("no scheduler figures although schedstat is there")
				}
				if c.Transport.ring() && (res.First == nil || res.First.Publish1 <= 0 || res.First.PublishSteady <= 0 || res.First.OpenNs <= 0) {
					t.Errorf("first frames %+v: want the writer's publish times and the ring's creation", res.First)
				}
			}
		})
	}
}

// TestExecSpawner runs cases through ExecSpawner, the CLI's way of
// starting workers (spec as the last argument), with the test binary as
// the program.
func TestExecSpawner(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// testutil.Main dispatches on this variable; the children inherit it.
	t.Setenv("FRAMERING_TEST_HELPER", workerHelper+"-arg")
	r := &Runner{Spawn: ExecSpawner(exe, "-test.run=^$"), Dir: testutil.ShmDir(t)}
	var progress []int
	r.Progress = func(done, total int, c Case) { progress = append(progress, done) }
	cases := []Case{
		{Kind: Latency, Transport: FrameringView, Wait: Futex, Shape: tiny, Readers: 1, Duration: 100 * time.Millisecond},
		{Kind: Throughput, Transport: Legacy, Wait: Poll, Shape: tiny, Readers: 1, Duration: 100 * time.Millisecond},
		{Kind: PingPong, Transport: TCP, Wait: Block, Shape: tiny, Readers: 1, Frames: 20},
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	results := r.RunAll(ctx, cases)
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(results), len(cases))
	}
	for _, res := range results {
		if res.Err != "" {
			t.Errorf("%s: %s", res.Name, res.Err)
		} else if res.Delivered == 0 {
			t.Errorf("%s: nothing delivered", res.Name)
		}
	}
	if res := results[2]; res.Frames != 20 || res.Delivered != 20 || res.Latency.Count != 20-ringSlots {
		t.Errorf("ping-pong of 20 frames: %d pings, %d round trips, %d after the first %d; want 20, 20, %d",
			res.Frames, res.Delivered, res.Latency.Count, ringSlots, 20-ringSlots)
	}
	if len(progress) != 4 || progress[3] != 3 {
		t.Errorf("progress calls %v, want 0 1 2 3", progress)
	}
}

// TestWorkerFailureIsReported checks that a worker that cannot start
// gives the case an error instead of hanging the run.
func TestWorkerFailureIsReported(t *testing.T) {
	r := testRunner(t)
	r.Dir = filepath.Join(t.TempDir(), "missing") // the case directory cannot be made
	res := r.Run(context.Background(), Case{Kind: Latency, Transport: UDS, Wait: Block, Shape: tiny, Readers: 1, Duration: time.Second})
	if res.Err == "" {
		t.Fatal("case in a missing directory reported no error")
	}
	bad := testRunner(t)
	res = bad.Run(context.Background(), Case{Kind: Latency, Transport: UDS, Wait: Spin, Shape: tiny, Readers: 1, Duration: time.Second})
	if !strings.Contains(res.Err, "cannot wait") {
		t.Errorf("invalid case: error %q, want it refused", res.Err)
	}
}
