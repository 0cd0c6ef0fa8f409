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
//	p50_ns, p99_ns  one-way latency (ping-pong: round trip / 2)
//	frames/s        frames each reader accepted per second
//	torn            torn frames accepted (must be 0 but for legacy)
//	dropped         frames published that a reader did not accept
//
// go test -run '^$' -bench . -benchtime=1x ./bench is the CI smoke run;
// -benchtime=300x gives figures worth reading.

func runBench(b *testing.B, c Case) Result {
	b.Helper()
	c.Frames = max(b.N, 2)
	b.SetBytes(int64(c.Shape.Bytes()))
	res := testRunner(b).Run(context.Background(), c)
	if res.Err != "" {
		b.Fatalf("%s: %s", c.Name(), res.Err)
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
// transport and size; memcpy is the baseline.
func BenchmarkTransports(b *testing.B) {
	for _, t := range AllTransports {
		b.Run(string(t), func(b *testing.B) {
			for _, s := range AllShapes {
				b.Run(s.String(), func(b *testing.B) {
					runBench(b, Case{Kind: Throughput, Transport: t, Wait: DefaultWait(t), Shape: s, Readers: 1})
				})
			}
		})
	}
}

// BenchmarkLatency is one-way latency with the writer pausing 1-3 ms, 1
// reader, for framering's wait modes and the socket baseline.
func BenchmarkLatency(b *testing.B) {
	for _, k := range []lineKey{{FrameringView, Futex}, {FrameringView, Spin}, {FrameringCopy, Futex}, {Legacy, Poll}, {UDS, Block}} {
		b.Run(k.String(), func(b *testing.B) {
			for _, s := range []Shape{Shape404, Shape1080, Shape4K} {
				b.Run(s.String(), func(b *testing.B) {
					runBench(b, Case{Kind: Latency, Transport: k.t, Wait: k.w, Shape: s, Readers: 1})
				})
			}
		})
	}
}

// BenchmarkPingPong is round trip / 2 at 1080p.
func BenchmarkPingPong(b *testing.B) {
	for _, t := range []Transport{FrameringView, FrameringCopy, UDS, Pipe, TCP} {
		b.Run(string(t), func(b *testing.B) {
			runBench(b, Case{Kind: PingPong, Transport: t, Wait: DefaultWait(t), Shape: Shape1080, Readers: 1})
		})
	}
}

// BenchmarkGoals measures each goal against its baseline in the same
// run and reports the ratio: copy-out ÷ memcpy throughput at 1080p (goal
// >= 0.9) and view latency p50 4K ÷ 640x404 in futex and spin mode (goal
// <= 1.2).
func BenchmarkGoals(b *testing.B) {
	run := func(b *testing.B, c Case) Result {
		c.Frames = max(b.N, 2)
		res := testRunner(b).Run(context.Background(), c)
		if res.Err != "" {
			b.Fatalf("%s: %s", c.Name(), res.Err)
		}
		if res.Torn != 0 {
			b.Errorf("%s: %d torn frames accepted", c.Name(), res.Torn)
		}
		return res
	}
	b.Run("copy-vs-memcpy/1920x1080x3", func(b *testing.B) {
		b.SetBytes(int64(Shape1080.Bytes()))
		mc := run(b, Case{Kind: Throughput, Transport: Memcpy, Wait: None, Shape: Shape1080, Readers: 1})
		fr := run(b, Case{Kind: Throughput, Transport: FrameringCopy, Wait: Futex, Shape: Shape1080, Readers: 1})
		b.ReportMetric(mc.FPS, "memcpy_frames/s")
		b.ReportMetric(fr.FPS, "copy_frames/s")
		b.ReportMetric(Div(fr.FPS, mc.FPS), "copy/memcpy")
	})
	for _, w := range []Wait{Futex, Spin} {
		b.Run("view-flat/"+string(w), func(b *testing.B) {
			small := run(b, Case{Kind: Latency, Transport: FrameringView, Wait: w, Shape: Shape404, Readers: 1})
			big := run(b, Case{Kind: Latency, Transport: FrameringView, Wait: w, Shape: Shape4K, Readers: 1})
			b.ReportMetric(float64(small.Latency.P50), "p50_640_ns")
			b.ReportMetric(float64(big.Latency.P50), "p50_4K_ns")
			b.ReportMetric(Div(float64(big.Latency.P50), float64(small.Latency.P50)), "4K/640")
		})
	}
}
