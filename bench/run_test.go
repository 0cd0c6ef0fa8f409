package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// tiny is a small frame: enough pages for the per-page marks.
var tiny = Shape{64, 48, 3}

// TestEveryTransportAcrossProcesses runs a tiny case per transport and
// kind in separate processes and checks the accounting.
func TestEveryTransportAcrossProcesses(t *testing.T) {
	type tc struct {
		kind    Kind
		tr      Transport
		wait    Wait
		readers int
	}
	var cases []tc
	for _, tr := range AllTransports {
		cases = append(cases, tc{Latency, tr, DefaultWait(tr), 1}, tc{Throughput, tr, DefaultWait(tr), 1})
		if tr != Memcpy {
			cases = append(cases, tc{PingPong, tr, DefaultWait(tr), 1}, tc{Latency, tr, DefaultWait(tr), 2})
		}
	}
	cases = append(cases,
		tc{Latency, FrameringView, Spin, 1}, tc{Latency, FrameringView, Poll, 1},
		tc{Latency, FrameringCopy, Spin, 1}, tc{Latency, FrameringCopy, Poll, 1},
		tc{Latency, Legacy, Spin, 1})
	for _, k := range cases {
		c := Case{Kind: k.kind, Transport: k.tr, Wait: k.wait, Shape: tiny, Readers: k.readers, Duration: 150 * time.Millisecond}
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			res := testRunner(t).Run(ctx, c)
			if res.Err != "" {
				t.Fatalf("case failed: %s", res.Err)
			}
			if res.Frames == 0 || res.Delivered == 0 {
				t.Fatalf("published %d, delivered %d; want both > 0", res.Frames, res.Delivered)
			}
			if res.Latency.Count == 0 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P50 {
				t.Errorf("latency %+v: want samples with 0 < p50 <= max", res.Latency)
			}
			if c.Transport != Legacy && res.Torn != 0 {
				t.Errorf("%d torn frames accepted over %s; want 0", res.Torn, c.Transport)
			}
			if c.Kind != PingPong && c.Transport != Memcpy && len(res.ReaderCPU) != c.Readers {
				t.Errorf("CPU figures for %d readers, want %d", len(res.ReaderCPU), c.Readers)
			}
			t.Logf("frames %d delivered %d dropped %d torn %d p50 %d max %d fps %.0f cpu %.3f %v", res.Frames, res.Delivered, res.Dropped, res.Torn, res.Latency.P50, res.Latency.Max, res.FPS, res.WriterCPU, res.ReaderCPU)
			per := res.Delivered / uint64(c.Readers)
			// Sockets and pipes are lossless; so is a ring whose readers keep up
			// with 1-3 ms gaps (not asserted: a loaded machine may lap them).
			if c.Transport.stream() && c.Kind != PingPong && per != res.Frames {
				t.Errorf("%s delivered %d of %d frames per reader; a stream loses none", c.Transport, per, res.Frames)
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
	if res := results[2]; res.Frames != 20 || res.Latency.Count != 20 {
		t.Errorf("ping-pong of 20 frames: %d pings, %d round trips", res.Frames, res.Latency.Count)
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
