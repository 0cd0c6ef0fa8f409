package bench

import (
	"context"
	"testing"
)

// The go test -bench entry points run the suite's cases with b.N frames
// (at least 2, so a rate exists), each as separate processes (this test
// binary re-executed). ns/op includes starting the processes; the
// reported metrics come from the workers' own clocks:
//
//	p50_ns, p99_ns  one-way latency (ping-pong: round trip / 2) of the
//	                frames after the first 8 (each ring slot's first use)
//	frames/s        frames each reader accepted per second
//	torn            torn frames accepted (must be 0 but for legacy)
//	dropped         frames published that a reader did not accept
//
// go test -run '^$' -bench . -benchtime=1x ./bench is the CI smoke run
// (with 2 frames no steady-state frame exists: p50 is 0); -benchtime=300x
// gives figures worth reading.

func runBench(b *testing.B, c Case, w Workers) Result {
	b.Helper()
	c.Frames = max(b.N, 2)
	b.SetBytes(int64(c.Shape.Bytes()))
	r := testRunner(b)
	r.Workers = w
	res := r.Run(context.Background(), c)
	if res.Err != "" {
		b.Fatalf("%s: %s", c.Name(), res.Err)
	}
	if res.Skipped != "" {
		b.Skip(res.Skipped)
	}
	b.ReportMetric(float64(res.Latency.P50), "p50_ns")
	b.ReportMetric(float64(res.Latency.P99), "p99_ns")
	b.ReportMetric(float64(res.Torn), "torn")
	b.ReportMetric(float64(res.Dropped), "dropped")
	if res.FPS > 0 {
		b.ReportMetric(res.FPS, "frames/s")
	}
	return res
}

// BenchmarkTransports is throughput, writer flat out, 1 reader, for every
// transport that carries frames and size (the C and Python readers, where
// their toolchain is here, at 1920x1080x3: framering bench has them at
// every size); memcpy is the baseline.
func BenchmarkTransports(b *testing.B) {
	w := foreignWorkers(b)
	for _, t := range AllTransports {
		if t == Bare {
			continue
		}
		shapes := AllShapes
		if t.foreign() {
			shapes = []Shape{Shape1080}
		}
		b.Run(string(t), func(b *testing.B) {
			for _, s := range shapes {
				b.Run(s.String(), func(b *testing.B) {
					runBench(b, Case{Kind: Throughput, Transport: t, Wait: DefaultWait(t), Shape: s, Readers: 1}, w)
				})
			}
		})
	}
}

// BenchmarkLatency is one-way latency, paced (readers idle 1-3 ms before
// each frame), 1 reader, for framering's wait modes, the bare futex and
// spin floor and the socket baseline.
func BenchmarkLatency(b *testing.B) {
	for _, k := range []lineKey{{Bare, Futex}, {FrameringView, Futex}, {Bare, Spin}, {FrameringView, Spin}, {FrameringCopy, Futex}, {Legacy, Poll}, {UDS, Block}} {
		b.Run(k.String(), func(b *testing.B) {
			for _, s := range []Shape{Shape404, Shape1080, Shape4K} {
				b.Run(s.String(), func(b *testing.B) {
					runBench(b, Case{Kind: Latency, Transport: k.t, Wait: k.w, Shape: s, Readers: 1}, Workers{})
				})
			}
		})
	}
}

// BenchmarkPingPong is round trip / 2 at 1080p: framering-view in place
// (zero-copy), framering-copy with a copy in and out each way.
func BenchmarkPingPong(b *testing.B) {
	for _, k := range []lineKey{{FrameringView, Spin}, {FrameringCopy, Spin}, {FrameringCopy, Futex}, {UDS, Block}, {Pipe, Block}, {TCP, Block}} {
		b.Run(k.String(), func(b *testing.B) {
			runBench(b, Case{Kind: PingPong, Transport: k.t, Wait: k.w, Shape: Shape1080, Readers: 1}, Workers{})
		})
	}
}

// BenchmarkGoals measures two goals against their baselines in the same
// iteration and reports the ratios: the futex view's p50 over the bare
// futex's at equal pacing (view/bare, goal <= 1.1), and the copy-out
// read's median time over Go's copy of the same slot
// (gocopy/read, goal >= 0.9 against the faster of Go copy and glibc,
// which framering bench measures with the C reader).
func BenchmarkGoals(b *testing.B) {
	run := func(b *testing.B, c Case) Result {
		c.Frames = max(b.N, minFrames)
		res := testRunner(b).Run(context.Background(), c)
		if res.Err != "" {
			b.Fatalf("%s: %s", c.Name(), res.Err)
		}
		if res.Torn != 0 {
			b.Errorf("%s: %d torn frames accepted", c.Name(), res.Torn)
		}
		return res
	}
	b.Run("view-vs-bare-futex/1920x1080x3", func(b *testing.B) {
		bare := run(b, Case{Kind: Latency, Transport: Bare, Wait: Futex, Shape: Shape1080, Readers: 1})
		view := run(b, Case{Kind: Latency, Transport: FrameringView, Wait: Futex, Shape: Shape1080, Readers: 1})
		b.ReportMetric(float64(bare.Latency.P50), "bare_p50_ns")
		b.ReportMetric(float64(view.Latency.P50), "view_p50_ns")
		b.ReportMetric(Div(float64(view.Latency.P50), float64(bare.Latency.P50)), "view/bare")
	})
	b.Run("copyout/1920x1080x3", func(b *testing.B) {
		b.SetBytes(int64(Shape1080.Bytes()))
		res := run(b, Case{Kind: CopyOut, Transport: FrameringCopy, Wait: Poll, Shape: Shape1080, Readers: 1})
		read, gocopy := copyP50(&res, MethodRead), copyP50(&res, MethodGoCopy)
		b.ReportMetric(float64(read), "read_ns")
		b.ReportMetric(float64(gocopy), "gocopy_ns")
		b.ReportMetric(Div(float64(gocopy), float64(read)), "gocopy/read")
	})
}
