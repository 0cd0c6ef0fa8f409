package bridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
	"github.com/nats-io/nats.go"
)

// BenchmarkBridge measures the bridge (ring -> bridge out -> embedded NATS
// server on loopback -> bridge in -> ring -> reader) beside a plain TCP
// stream of the same frames (memory -> loopback socket -> memory), in the
// same run:
//
//   - one-way latency, one frame at a time: from just before the source
//     publish to the remote reader holding the frame (TCP: from before the
//     write to the last byte read), p50 over the frames;
//   - throughput, b.N frames: the source writer publishes the next frame as
//     soon as the bridge out has read the previous one, so the bridge
//     always has a fresh frame and nothing is wasted on frames it would
//     skip; frames per second at the remote reader (TCP: b.N frames
//     written back to back).
//
// ratio is bridge fps / TCP fps. nats_fps and nats_p50_us are a third
// reference: the same frames as plain NATS messages (chunks of the same
// size, no bridge, no rings) through the same kind of embedded server, to
// tell the bridge's cost from the broker's; nats_ratio is bridge fps / NATS
// fps. cpu_us/frame (and nats_, tcp_) is the CPU time the whole process
// (both ends, the server, the reader) spent per frame during the
// throughput run: on a busy machine, where fps depends on how much of the
// cores the run gets, it tells what each frame costs. Run it with, e.g.,
// go test -run '^$' -bench Bridge -benchtime 200x ./bridge
func BenchmarkBridge(b *testing.B) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"640x404x3", 640, 404}, {"1920x1080x3", 1920, 1080}} {
		img := naturalImage(ring.BGR8, size.w, size.h, 1)
		img.meta = nil
		for _, enc := range []Encoding{Raw, JPEG} {
			b.Run(size.name+"/"+enc.String(), func(b *testing.B) {
				tcpLat, tcpFPS, tcpCPU := benchTCP(b, len(img.data), b.N)
				natsLat, natsFPS, natsCPU := benchNATS(b, len(img.data), b.N)
				lat, fps, cpu := benchBridge(b, img, enc, b.N)
				mb := float64(len(img.data)) / 1e6
				b.ReportMetric(fps, "fps")
				b.ReportMetric(fps*mb, "MB/s")
				b.ReportMetric(float64(lat.Microseconds()), "p50_us")
				b.ReportMetric(tcpFPS, "tcp_fps")
				b.ReportMetric(float64(tcpLat.Microseconds()), "tcp_p50_us")
				b.ReportMetric(fps/tcpFPS, "ratio")
				b.ReportMetric(natsFPS, "nats_fps")
				b.ReportMetric(float64(natsLat.Microseconds()), "nats_p50_us")
				b.ReportMetric(fps/natsFPS, "nats_ratio")
				b.ReportMetric(cpu, "cpu_us/frame")
				b.ReportMetric(natsCPU, "nats_cpu_us/frame")
				b.ReportMetric(tcpCPU, "tcp_cpu_us/frame")
				b.ReportMetric(0, "ns/op") // the figures above are the result
			})
		}
	}
}

const latencyFrames = 30

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perFrame is a CPU time per frame in µs.
func perFrame(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }

func benchBridge(b *testing.B, img testFrame, enc Encoding, n int) (time.Duration, float64, float64) {
	_, url := natsServer(b, 0, 0)
	dir := testutil.ShmDir(b)
	src, dst, subject := "bench-src", "bench-dst", fmt.Sprintf("bench.%d", time.Now().UnixNano())
	w := openWriter(b, dir, src, len(img.data))
	out := runOut(b, OutConfig{Ring: src, Dir: dir, NATS: testConn(url), Subject: subject, Encoding: enc, Logf: func(string, ...any) {}})
	runIn(b, InConfig{Ring: dst, Dir: dir, NATS: testConn(url), Subject: subject, Logf: func(string, ...any) {}})
	rs, _ := warmUp(b, w, img, dir, dst)
	r := rs[0]

	// Latency: one frame at a time.
	var lats []time.Duration
	for i := 0; i < latencyFrames; i++ {
		t0 := time.Now()
		num := publish(b, w, img)
		readUntil(b, r, num, num-1)
		lats = append(lats, time.Since(t0))
	}
	// Throughput: the next frame as soon as the bridge out read the last.
	settle(b, out)
	start, cpu0 := time.Now(), cpuTime(b)
	done := make(chan error, 1)
	go func() {
		// Into one buffer, as the TCP reference reads.
		buf := make([]byte, len(img.data))
		for got := 0; got < n; got++ {
			ctx, cancel := context.WithTimeout(context.Background(), hang) // per frame: 200 JPEG frames take longer
			f, err := r.Read(ctx, buf)
			cancel()
			if err != nil {
				done <- err
				return
			}
			buf = f.Data[:cap(f.Data)]
		}
		done <- nil
	}()
	stop, stopped := make(chan struct{}), make(chan struct{})
	info := ring.FrameInfo{Width: img.width, Height: img.height, Format: img.format}
	go func() {
		defer close(stopped)
		for {
			read := out.read.Load()
			if _, err := w.Publish(info, img.data); err != nil {
				return
			}
			for out.read.Load() == read {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
	}()
	err := <-done
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	close(stop)
	<-stopped
	if err != nil {
		b.Fatal(err)
	}
	return median(lats), float64(n) / elapsed.Seconds(), perFrame(cpu, n)
}

// benchTCP streams frames of size bytes over a loopback TCP connection.
func benchTCP(b *testing.B, size, n int) (time.Duration, float64, float64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	got := make(chan error, 1)
	frames := make(chan struct{}, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		var hdr [8]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				got <- nil
				return
			}
			if _, err := io.ReadFull(c, buf[:binary.LittleEndian.Uint64(hdr[:])]); err != nil {
				got <- err
				return
			}
			frames <- struct{}{}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	frame := make([]byte, 8+size)
	binary.LittleEndian.PutUint64(frame, uint64(size))
	var lats []time.Duration
	for i := 0; i < latencyFrames; i++ {
		t0 := time.Now()
		if _, err := c.Write(frame); err != nil {
			b.Fatal(err)
		}
		<-frames
		lats = append(lats, time.Since(t0))
	}
	start, cpu0 := time.Now(), cpuTime(b)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		<-frames
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	c.Close()
	if err := <-got; err != nil {
		b.Fatal(err)
	}
	return median(lats), float64(n) / elapsed.Seconds(), perFrame(cpu, n)
}

// benchNATS publishes frames of size bytes as plain NATS messages in
// chunks of 1 MiB - HeaderLen through an embedded server, at most two
// frames in flight (so the subscriber is never a slow consumer).
func benchNATS(b *testing.B, size, n int) (time.Duration, float64, float64) {
	_, url := natsServer(b, 0, 0)
	pub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	chunk := int(pub.MaxPayload()) - HeaderLen
	chunks := (size + chunk - 1) / chunk
	frames := make(chan struct{}, 4)
	got := 0
	s, err := sub.Subscribe("bench.nats", func(m *nats.Msg) {
		if got++; got%chunks == 0 {
			frames <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Unsubscribe()
	sub.Flush()
	data := make([]byte, size)
	send := func() {
		for off := 0; off < size; off += chunk {
			if err := pub.Publish("bench.nats", data[off:min(off+chunk, size)]); err != nil {
				b.Error(err)
				return
			}
		}
	}
	var lats []time.Duration
	for i := 0; i < latencyFrames; i++ {
		t0 := time.Now()
		send()
		<-frames
		lats = append(lats, time.Since(t0))
	}
	start, cpu0 := time.Now(), cpuTime(b)
	inFlight := 0
	for i := 0; i < n; i++ {
		if inFlight == 2 {
			<-frames
			inFlight--
		}
		send()
		inFlight++
	}
	for ; inFlight > 0; inFlight-- {
		<-frames
	}
	return median(lats), float64(n) / time.Since(start).Seconds(), perFrame(cpuTime(b)-cpu0, n)
}
