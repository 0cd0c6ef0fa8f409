package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/framering/framering/internal/pattern"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// makeFrame returns a frame of random bytes (format, shape, stride; for
// raw, w bytes) with some metadata.
func makeFrame(format ring.PixelFormat, w, h, stride int, seed uint64) testFrame {
	f := testFrame{format: format, width: w, height: h, stride: stride, meta: []byte(fmt.Sprintf("frame seed %d", seed))}
	n := w
	if format != ring.Raw {
		f.channels = format.Channels()
		if f.stride == 0 {
			f.stride = w * f.channels * format.BytesPerSample()
		}
		n = f.stride * h
	} else {
		f.stride, f.width, f.height = 0, 0, 0
	}
	f.data = make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range f.data {
		f.data[i] = byte(rng.Uint32())
	}
	f.capture = monoNow() - int64(7*time.Millisecond)
	return f
}

// pair is a source ring, a bridge out and in through one NATS server, and
// a reader of the remote ring.
type pair struct {
	dir, src, dst string
	url, subject  string
}

func newPair(t *testing.T, url string) pair {
	n := testutil.Name(t)
	return pair{dir: testutil.ShmDir(t), src: n + "-src", dst: n + "-dst", url: url, subject: "cams." + strings.ReplaceAll(n, ".", "_")}
}

// TestRawExact carries frames of every kind of pixel format through the
// bridge, raw: they arrive byte for byte, with their numbers, shape,
// stride, metadata and capture time.
func TestRawExact(t *testing.T) {
	_, url := natsServer(t, 0, 0)
	for _, tc := range []struct {
		name                 string
		format               ring.PixelFormat
		width, height, strid int
	}{
		{"bgr8-padded-stride", ring.BGR8, 320, 240, 968},
		{"gray16", ring.Gray16, 100, 50, 0},
		{"yuyv", ring.YUYV, 64, 48, 0},
		{"rgba8", ring.RGBA8, 33, 17, 0},
		{"raw", ring.Raw, 10000, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, url)
			proto := makeFrame(tc.format, tc.width, tc.height, tc.strid, 1)
			w := openWriter(t, p.dir, p.src, len(proto.data))
			out := runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
			in := runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
			rs, warm := warmUp(t, w, proto, p.dir, p.dst)
			r := rs[0]
			dropped := in.Stats().Dropped() // the first frames may have gone out before the bridge in subscribed
			for i := uint64(2); i < 12; i++ {
				f := makeFrame(tc.format, tc.width, tc.height, tc.strid, i)
				f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
				checkSame(t, readUntil(t, r, f.number, warm), f)
			}
			if st := in.Stats(); st.Dropped() != dropped {
				t.Errorf("bridge in dropped %d frames in lockstep on a quiet loopback: %+v", st.Dropped()-dropped, st)
			}
			if st := out.Stats(); st.PublishErrors != 0 {
				t.Errorf("bridge out: %d publish errors", st.PublishErrors)
			}
		})
	}
}

// naturalImage returns a w x h frame of format (gray8, bgr8, rgb8, bgra8,
// rgba8) that looks like a photograph more than noise: smooth gradients,
// a few discs with soft edges, a fine texture and a little sensor noise.
func naturalImage(format ring.PixelFormat, w, h int, seed uint64) testFrame {
	c := format.Channels()
	f := testFrame{format: format, width: w, height: h, channels: c, stride: w * c, data: make([]byte, w*h*c), meta: []byte("jpeg")}
	rng := rand.New(rand.NewPCG(seed, 3))
	type disc struct{ x, y, r, v float64 }
	discs := make([]disc, 6)
	for i := range discs {
		discs[i] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h), 20 + rng.Float64()*float64(h)/4, rng.Float64()*200 - 100}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			base := 60 + 120*float64(x)/float64(w) + 40*math.Sin(float64(y)/37)
			for _, d := range discs {
				dist := math.Hypot(float64(x)-d.x, float64(y)-d.y)
				base += d.v / (1 + math.Exp((dist-d.r)/3))
			}
			base += 6 * math.Sin(float64(x)/3+float64(y)/5) // texture
			for k := 0; k < c; k++ {
				v := base + float64(k)*25*math.Cos(float64(x+y)/90+float64(k)) + rng.NormFloat64()*2
				f.data[(y*w+x)*c+k] = byte(max(0, min(255, math.Round(v))))
			}
			if c == 4 {
				f.data[(y*w+x)*c+3] = byte(100 + x%50) // alpha: not carried by JPEG
			}
		}
	}
	return f
}

// psnr is the peak signal-to-noise ratio in dB over the colour channels
// (alpha excluded).
func psnr(a, b []byte, channels int) float64 {
	var se float64
	var n int
	for i := range a {
		if channels == 4 && i%4 == 3 {
			continue
		}
		d := float64(a[i]) - float64(b[i])
		se += d * d
		n++
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

// TestJPEG sends frames as JPEG at quality 90: they arrive with their
// shape, metadata and numbers, a PSNR of at least 30 dB, and alpha 255.
// A pixel format JPEG cannot carry stops the bridge out with an error.
func TestJPEG(t *testing.T) {
	_, url := natsServer(t, 0, 0)
	for _, format := range []ring.PixelFormat{ring.BGR8, ring.RGB8, ring.Gray8, ring.RGBA8, ring.BGRA8} {
		t.Run(format.String(), func(t *testing.T) {
			p := newPair(t, url)
			proto := naturalImage(format, 640, 480, 1)
			w := openWriter(t, p.dir, p.src, len(proto.data))
			out := runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject, Encoding: JPEG, Quality: 90})
			runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
			rs, warm := warmUp(t, w, proto, p.dir, p.dst)
			var worst float64 = math.Inf(1)
			for i := uint64(2); i < 5; i++ {
				f := naturalImage(format, 640, 480, i)
				f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
				got := readUntil(t, rs[0], f.number, warm)
				if got.format != format || got.width != 640 || got.height != 480 || got.stride != 640*format.Channels() || string(got.meta) != "jpeg" {
					t.Fatalf("frame %d arrived as %v %dx%d stride %d meta %q", f.number, got.format, got.width, got.height, got.stride, got.meta)
				}
				q := psnr(got.data, f.data, format.Channels())
				worst = min(worst, q)
				if q < 30 {
					t.Errorf("frame %d: PSNR %.1f dB, want >= 30", f.number, q)
				}
				if format.Channels() == 4 {
					for j := 3; j < len(got.data); j += 4 {
						if got.data[j] != 255 {
							t.Fatalf("frame %d: alpha %d at byte %d, want 255", f.number, got.data[j], j)
						}
					}
				}
			}
			st := out.Stats()
			ratio := float64(st.Bytes) / float64(st.Sent*uint64(len(proto.data)))
			t.Logf("%v 640x480 at quality 90: PSNR >= %.1f dB, %.1f%% of the raw size on the wire", format, worst, 100*ratio)
			if ratio > 0.5 {
				t.Errorf("JPEG frames take %.0f%% of the raw size on the wire", 100*ratio)
			}
		})
	}
	t.Run("unsupported", func(t *testing.T) {
		p := newPair(t, url)
		w := openWriter(t, p.dir, p.src, 64*64*2)
		publish(t, w, makeFrame(ring.Gray16, 64, 64, 0, 1))
		o, err := NewOut(OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject, Encoding: JPEG, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		err = o.Run(ctx)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "gray16") {
			t.Fatalf("Run over a gray16 ring with JPEG = %v, want ErrUnsupported naming gray16", err)
		}
	})
}

// TestChunking sends 640x404x3 frames (775 KiB) through servers with a
// max_payload of 64 KiB, 256 KiB and 1 MiB: each frame goes in as many
// messages as the server allows, and arrives whole.
func TestChunking(t *testing.T) {
	for _, mp := range []int32{64 << 10, 256 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("max_payload=%dKiB", mp>>10), func(t *testing.T) {
			_, url := natsServer(t, mp, 0)
			p := newPair(t, url)
			proto := makeFrame(ring.BGR8, 640, 404, 0, 1)
			w := openWriter(t, p.dir, p.src, len(proto.data))
			out := runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
			in := runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
			rs, warm := warmUp(t, w, proto, p.dir, p.dst)
			before := settle(t, out)
			dropped := in.Stats().Dropped()
			const frames = 6
			for i := uint64(2); i < 2+frames; i++ {
				f := makeFrame(ring.BGR8, 640, 404, 0, i)
				f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
				checkSame(t, readUntil(t, rs[0], f.number, warm), f)
			}
			after := settle(t, out)
			wire := len(proto.data) + len(proto.meta)
			perFrame := (wire + int(mp) - HeaderLen - 1) / (int(mp) - HeaderLen)
			if got := after.Messages - before.Messages; got != uint64(frames*perFrame) {
				t.Errorf("%d frames went in %d messages, want %d each (%d)", frames, got, perFrame, frames*perFrame)
			}
			if got := after.Bytes - before.Bytes; got != uint64(frames*(wire+perFrame*HeaderLen)) {
				t.Errorf("%d frames took %d bytes, want %d", frames, got, frames*(wire+perFrame*HeaderLen))
			}
			waitFor(t, "the bridge in to finish the last frame", func() bool { return in.Stats().Pending == 0 })
			if st := in.Stats(); st.Dropped() != dropped {
				t.Errorf("bridge in: %d dropped in lockstep", st.Dropped()-dropped)
			}
		})
	}
}

// patternFrame is frame n's content in the restart test: internal/pattern
// ties every byte to the frame number, so a frame mixed from two, or
// delivered under the wrong number, fails pattern.Check.
func patternFrame(w, h int) testFrame {
	return testFrame{format: ring.BGR8, width: w, height: h, stride: 3 * w, data: make([]byte, 3*w*h)}
}

// TestFanOut sends one stream to three bridges in on the same subject:
// each gets every frame, whole.
func TestFanOut(t *testing.T) {
	_, url := natsServer(t, 64<<10, 0)
	p := newPair(t, url)
	proto := makeFrame(ring.BGR8, 160, 120, 0, 1)
	w := openWriter(t, p.dir, p.src, len(proto.data))
	runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	var names []string
	for i := 0; i < 3; i++ {
		names = append(names, fmt.Sprintf("%s%d", p.dst, i))
		runIn(t, InConfig{Ring: names[i], Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	}
	rs, warm := warmUp(t, w, proto, p.dir, names...)
	for i := uint64(2); i < 22; i++ {
		f := makeFrame(ring.BGR8, 160, 120, 0, i)
		f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
		for _, r := range rs {
			checkSame(t, readUntil(t, r, f.number, warm), f)
		}
	}
}

// TestServerRestart stops the NATS server in the middle of a stream of
// chunked frames and starts it again on the same port: both bridges
// reconnect on their own, frames flow again, the remote reader never gets
// a torn or mixed frame, and every frame is accounted for.
func TestServerRestart(t *testing.T) {
	const mp = 64 << 10
	srv, url := natsServer(t, mp, 0)
	port := srv.Addr().(*net.TCPAddr).Port
	p := newPair(t, url)
	const W, H = 320, 240 // 230 KB: 4 chunks each
	proto := patternFrame(W, H)
	w := openWriter(t, p.dir, p.src, len(proto.data))
	out := runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	in := runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	rs, warm := warmUp(t, w, proto, p.dir, p.dst)
	r := rs[0]

	// The writer: a pattern frame every 2 ms until stopped.
	var written atomic.Uint64
	written.Store(warm)
	stopWriter, writerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(writerDone)
		f := patternFrame(W, H)
		for {
			select {
			case <-stopWriter:
				return
			default:
			}
			n := written.Load() + 1
			pattern.Fill(f.data, n)
			if got := publish(t, w, f); got != n {
				t.Errorf("writer published frame %d, expected %d", got, n)
				return
			}
			written.Store(n)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// The remote reader: checks every frame against its number.
	base := counts(r).delivered // the warm-up's
	var got, last, after, mismatches atomic.Uint64
	var mark atomic.Uint64 // frames above it arrived after the restart
	mark.Store(math.MaxUint64)
	ctx, cancel := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ctx.Err() == nil {
			f, err := readFrame(r, 100*time.Millisecond)
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("remote reader: %v", err)
					return
				}
				continue
			}
			if err := pattern.Check(f.data, f.number); err != nil {
				if mismatches.Add(1) <= 3 {
					t.Errorf("remote frame %d: %v", f.number, err)
				}
			}
			got.Add(1)
			last.Store(f.number)
			if f.number > mark.Load() {
				after.Add(1)
			}
		}
	}()
	defer func() { cancel(); <-readerDone }()

	waitFor(t, "20 frames through the bridge", func() bool { return got.Load() >= 20 })
	srv.Shutdown()
	waitFor(t, "both bridges to see the server gone", func() bool { return !out.Stats().Connected && !in.Stats().Connected })
	time.Sleep(300 * time.Millisecond) // frames keep coming into the source ring meanwhile
	mark.Store(written.Load())
	natsServer(t, mp, port)
	waitFor(t, "both bridges to reconnect", func() bool { return out.Stats().Reconnects >= 1 && in.Stats().Reconnects >= 1 })
	waitFor(t, "20 frames after the restart", func() bool { return after.Load() >= 20 })
	close(stopWriter)
	<-writerDone
	final := written.Load()
	waitFor(t, "the last frame at the remote reader", func() bool { return last.Load() == final })
	os := settle(t, out)
	var is InStats
	waitFor(t, "the bridge in to finish", func() bool { is = in.Stats(); return is.SeqLast == os.Attempted && is.Pending == 0 })
	cancel()
	<-readerDone
	rc := counts(r)

	t.Logf("source ring: frames %d..%d written (after warm-up); restart after frame %d", warm+1, final, mark.Load())
	t.Logf("bridge out: read %d, sent %d, dropped: skipped %d, disconnected %d, publish errors %d; disconnects %d, reconnects %d",
		os.Read, os.Sent, os.Skipped, os.Disconnected, os.PublishErrors, os.Disconnects, os.Reconnects)
	t.Logf("bridge in: window %d (seq %d..%d), delivered %d, dropped: lost %d, incomplete %d, corrupt %d; chunk errors %v; disconnects %d, reconnects %d",
		is.Window, is.SeqFirst, is.SeqLast, is.Delivered, is.Lost, is.Incomplete, is.Corrupt, nonzero(is.ChunkErrors), is.Disconnects, is.Reconnects)
	t.Logf("remote reader: frames %d..%d: delivered %d (%d after the restart), dropped %d, mismatches %d",
		rc.windowStart, rc.last, rc.delivered, after.Load(), rc.dropped, mismatches.Load())

	if mismatches.Load() != 0 {
		t.Errorf("%d frames at the remote reader do not match their number's pattern", mismatches.Load())
	}
	if os.Attempted != os.Sent+os.PublishErrors || os.Read != os.Attempted+os.Disconnected {
		t.Errorf("bridge out accounting: read %d, attempted %d, sent %d, publish errors %d, disconnected %d", os.Read, os.Attempted, os.Sent, os.PublishErrors, os.Disconnected)
	}
	if os.Disconnected+os.PublishErrors == 0 {
		t.Errorf("bridge out counted no frame lost to the outage")
	}
	if is.Sessions != 1 || is.Window != is.SeqLast-is.SeqFirst+1 || is.Delivered+is.Dropped() != is.Window {
		t.Errorf("bridge in accounting: sessions %d, window %d for seq %d..%d, delivered %d + dropped %d", is.Sessions, is.Window, is.SeqFirst, is.SeqLast, is.Delivered, is.Dropped())
	}
	if rc.delivered+rc.dropped != rc.last-rc.windowStart+1 || rc.delivered != base+got.Load() {
		t.Errorf("remote reader accounting: delivered %d (counted %d + %d in the warm-up) + dropped %d, window %d..%d", rc.delivered, got.Load(), base, rc.dropped, rc.windowStart, rc.last)
	}
	// Every source frame after the warm-up is delivered or counted dropped
	// by the remote reader (gaps in the numbering), and the outage's frames
	// are among the dropped.
	if rc.last != final || rc.dropped < os.Disconnected {
		t.Errorf("remote reader ends at %d (source %d) with %d dropped, fewer than the %d the bridge out could not send", rc.last, final, rc.dropped, os.Disconnected)
	}
}

func nonzero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// wireFrame lays f out as a bridge out's reader leaves a frame: room for
// a header, the data, the metadata.
func wireFrame(f testFrame, number uint64) frame {
	buf := make([]byte, HeaderLen+len(f.data)+len(f.meta))
	copy(buf[HeaderLen:], f.data)
	copy(buf[HeaderLen+len(f.data):], f.meta)
	n := len(f.data)
	return frame{
		number: number, generation: 1, format: f.format, width: f.width, height: f.height, channels: f.format.Channels(), stride: f.stride,
		capture: monoNow(), published: monoNow(), wall: time.Now().UnixNano(),
		data: buf[HeaderLen : HeaderLen+n], meta: buf[HeaderLen+n:], wire: buf,
	}
}

// messages returns the NATS messages o would send for f (chunks of at
// most maxPayload bytes).
func messages(t testing.TB, o *Out, f testFrame, number uint64, maxPayload int) [][]byte {
	t.Helper()
	wf := wireFrame(f, number)
	var msgs [][]byte
	if err := o.sendWith(&wf, maxPayload, func(m []byte) error { msgs = append(msgs, append([]byte(nil), m...)); return nil }); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestHostileMessages publishes malformed, foreign, truncated, duplicate,
// inconsistent and corrupt messages straight onto a bridge in's subject,
// between valid frames: each is counted by reason and skipped, the valid
// frames arrive whole, and the accounting adds up.
func TestHostileMessages(t *testing.T) {
	_, url := natsServer(t, 0, 0)
	p := newPair(t, url)
	const limit = 64 << 10
	// A fixed capacity: the ring exists from the start, and its reader sees
	// every frame from the first (the numbers have gaps: 10, 30, 40, 90).
	in := runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject, FrameLimit: limit, MaxFrameBytes: 4096})
	r := openRemote(t, p.dir, p.dst)
	// Wait until the bridge in hears the subject: foreign messages count.
	waitFor(t, "the bridge in to subscribe", func() bool {
		publishMsgs(t, url, p.subject, []byte("ping"))
		return in.Stats().ChunkErrors["foreign"] > 0
	})
	time.Sleep(50 * time.Millisecond) // let the last pings in before the baseline
	base := in.Stats()

	o, err := NewOut(OutConfig{Ring: "fake", Subject: p.subject, Stream: "hostile-test"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewOut(OutConfig{Ring: "fake", Subject: p.subject, Stream: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	const mp = 2048                                                                      // 1920 bytes of body a chunk
	img := func(seed uint64) testFrame { return makeFrame(ring.Gray8, 50, 60, 0, seed) } // 3000 bytes + meta: 2 chunks
	var want []testFrame
	valid := func(seed, number uint64) [][]byte {
		f := img(seed)
		f.number = number
		want = append(want, f)
		return messages(t, o, f, number, mp)
	}
	var msgs, sent [][]byte
	add := func(m ...[]byte) { msgs = append(msgs, m...) }
	// flush publishes what was added and reads the frame it ended with: the
	// remote reader takes each valid frame before the next comes, so it
	// sees all four (the gaps in their numbers are larger than the ring).
	flush := func() {
		publishMsgs(t, url, p.subject, msgs...)
		sent, msgs = append(sent, msgs...), nil
		f := want[len(want)-1]
		got, err := readFrame(r, hang)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, got, f)
	}
	edit := func(m []byte, fn func(b []byte)) []byte { b := append([]byte(nil), m...); fn(b); return b }
	le := binary.LittleEndian

	// Garbage (8 rejected messages, none of them a frame).
	add([]byte("hello"), []byte{}) // foreign x2
	tmpl := messages(t, o, img(99), 5, mp)
	o.attempted.Store(0)                                                 // the template consumed a seq: take it back
	add(edit(tmpl[0], func(b []byte) { b[4] = 9 }))                      // version
	add(tmpl[0][:50])                                                    // malformed: truncated header
	add(tmpl[0][:len(tmpl[0])-10])                                       // malformed: truncated chunk
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[88:], limit+1) })) // too_large
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[8:], 7) }))        // malformed: chunk index >= count
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[76:], 0) }))       // malformed: height 0
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[84:], 49) }))      // malformed: stride < row
	add(edit(tmpl[0], func(b []byte) { b[7] = 1 }))                      // malformed: flags
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[20:], 1<<31) }))   // too_large
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[28:], 42) }))      // malformed: pixel format
	add(edit(tmpl[0], func(b []byte) { le.PutUint64(b[56:], 0) }))       // malformed: frame 0
	add(edit(tmpl[0], func(b []byte) { le.PutUint64(b[40:], 0) }))       // malformed: session 0
	add(edit(tmpl[0], func(b []byte) { le.PutUint32(b[12:], 3) }))       // malformed: count does not match the size
	garbage := map[string]uint64{"foreign": 2, "version": 1, "malformed": 10, "too_large": 2}

	// The stream (seq 1..9 of session o).
	add(valid(1, 10)...) // seq 1: delivered
	flush()
	s2 := messages(t, o, img(2), 20, mp) // seq 2: only its first chunk -> incomplete
	add(s2[0])                           //
	s3 := valid(3, 30)                   // seq 3: delivered, then a chunk of it again -> stale
	add(s3...)                           //
	flush()
	s4 := valid(4, 40)       // seq 4: first chunk twice -> duplicate; delivered
	add(s4[0], s4[0], s4[1]) //
	flush()
	s5 := messages(t, o, img(5), 50, mp)    // seq 5: a second chunk that disagrees -> inconsistent, corrupt;
	add(s5[0], edit(s5[1], func(b []byte) { //   the real second chunk afterwards -> stale
		le.PutUint32(b[72:], 60) //   (width 60, height 50: same size)
		le.PutUint32(b[76:], 50) //
		le.PutUint32(b[84:], 60) //
	}), s5[1]) //
	s6 := messages(t, o, img(6), 60, mp) // seq 6: a byte flipped -> checksum -> corrupt
	add(s6[0], edit(s6[1], func(b []byte) { b[HeaderLen+5] ^= 1 }))
	add(s3[1])                                 // stale
	add(messages(t, other, img(7), 70, mp)...) // another stream: other_stream x2
	// seq 7: JPEG that is not JPEG -> corrupt.
	junk := []byte("this is not a JPEG stream at all, but its checksum is right")
	var jh [HeaderLen]byte
	h := header{kind: kindChunk, encoding: encJPEG, chunk: 0, count: 1, chunkSize: uint32(len(junk)), total: uint32(len(junk)),
		crc: crc32.Checksum(junk, castagnoli), format: ring.Gray8, stream: o.stream, session: o.session, seq: o.attempted.Add(1),
		frame: 75, generation: 1, width: 50, height: 60, channels: 1, stride: 50, dataLen: 3000}
	h.put(jh[:])
	add(append(jh[:], junk...))
	o.attempted.Add(1)   // seq 8 never sent -> lost
	add(valid(9, 90)...) // seq 9: delivered
	flush()

	waitFor(t, "the bridge in to handle every message", func() bool {
		st := in.Stats()
		return st.Messages-base.Messages == uint64(len(sent)) && st.SeqLast == 9 && st.Pending == 0
	})
	st := in.Stats()
	wantErr := map[string]uint64{"duplicate": 1, "inconsistent": 1, "stale": 2, "other_stream": 2}
	for k, v := range garbage {
		wantErr[k] += v
	}
	for _, reason := range chunkReasons {
		if got := st.ChunkErrors[reason] - base.ChunkErrors[reason]; got != wantErr[reason] {
			t.Errorf("chunk errors %q: %d, want %d", reason, got, wantErr[reason])
		}
	}
	if st.Delivered != 4 || st.Incomplete != 1 || st.Corrupt != 3 || st.Lost != 1 || st.Window != 9 || st.Delivered+st.Dropped() != st.Window {
		t.Errorf("frames: delivered %d, incomplete %d, corrupt %d, lost %d, window %d; want 4, 1, 3, 1, 9",
			st.Delivered, st.Incomplete, st.Corrupt, st.Lost, st.Window)
	}
	if c := counts(r); c.delivered != 4 || c.dropped != 86 {
		t.Errorf("remote reader delivered %d frames and dropped %d, want 4 and the 86 numbers never published", c.delivered, c.dropped)
	}
}

// TestSourceGoneAndBack closes the source ring's writer: the remote
// reader sees its writer gone too. A writer that comes back continues the
// stream; a ring removed and re-created from scratch (numbering from 1
// again) continues it above the numbers already used.
func TestSourceGoneAndBack(t *testing.T) {
	_, url := natsServer(t, 0, 0)
	p := newPair(t, url)
	proto := makeFrame(ring.BGR8, 64, 48, 0, 1)
	w := openWriter(t, p.dir, p.src, len(proto.data))
	out := runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	in := runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	rs, warm := warmUp(t, w, proto, p.dir, p.dst)
	r := rs[0]
	expectGone := func() {
		t.Helper()
		for {
			_, err := readFrame(r, hang)
			if errors.Is(err, errGone) {
				return
			}
			if err != nil {
				t.Fatalf("remote reader: %v, want the writer gone", err)
			}
		}
	}

	// 1. The writer closes.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expectGone()
	if st := out.Stats(); st.SourceGone != 1 {
		t.Errorf("bridge out saw the source gone %d times, want 1", st.SourceGone)
	}
	waitFor(t, "the notice at the bridge in", func() bool { return in.Stats().SourceGone >= 1 })

	// 2. It comes back: numbering continues, so do the frames.
	w = openWriter(t, p.dir, p.src, len(proto.data))
	f := makeFrame(ring.BGR8, 64, 48, 0, 2)
	for i := 0; ; i++ { // the bridge out notices the writer within its wait slice
		f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
		got, err := readFrame(r, 200*time.Millisecond)
		if err == nil {
			if got.number <= warm {
				t.Fatalf("frame %d after the writer came back, the warm-up ended at %d", got.number, warm)
			}
			if got.number == f.number {
				checkSame(t, got, f)
				break
			}
		} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errGone) {
			t.Fatal(err)
		}
		if i > 100 {
			t.Fatal("no frame after the writer came back")
		}
	}
	lastNumber := f.number

	// 3. Removed and re-created from scratch: numbering restarts at 1 in
	// the source; the remote ring continues above lastNumber.
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	expectGone()
	w = openWriter(t, p.dir, p.src, len(proto.data))
	var sent []testFrame
	for i := 0; ; i++ {
		f = makeFrame(ring.BGR8, 64, 48, 0, uint64(10+i))
		sent = append(sent, f)
		n := publish(t, w, f)
		if n > 10 && i == 0 {
			t.Fatalf("the re-created ring starts at frame %d", n)
		}
		got, err := readFrame(r, 200*time.Millisecond)
		if err == nil {
			if got.number <= lastNumber {
				t.Fatalf("remote frame %d after the re-creation, not above %d", got.number, lastNumber)
			}
			for _, f := range sent { // the one it is, if a late one
				if bytes.Equal(f.data, got.data) {
					f.number = got.number
					checkSame(t, got, f)
					sent = nil
				}
			}
			if sent != nil {
				t.Fatalf("remote frame %d is none of the frames sent", got.number)
			}
			break
		} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errGone) {
			t.Fatal(err)
		}
		if i > 100 {
			t.Fatal("no frame after the ring was re-created")
		}
	}
	if st := in.Stats(); st.Renumbered != 1 {
		t.Errorf("bridge in renumbered %d times, want 1", st.Renumbered)
	}
}

// TestServerLateAndGone starts both bridges before the NATS server exists:
// they wait for it and carry frames once it is up. With MaxReconnects set,
// a server that goes away for good ends both Runs with an error.
func TestServerLateAndGone(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	p := newPair(t, url)
	proto := makeFrame(ring.Gray8, 32, 32, 0, 1)
	w := openWriter(t, p.dir, p.src, len(proto.data))
	conn := testConn(url)
	conn.MaxReconnects = 40 // 2 s of attempts 50 ms apart: enough for the late start, and then for giving up
	o, err := NewOut(OutConfig{Ring: p.src, Dir: p.dir, NATS: conn, Subject: p.subject, Logf: t.Logf, HungAfter: hang})
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewIn(InConfig{Ring: p.dst, Dir: p.dir, NATS: conn, Subject: p.subject, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*hang)
	defer cancel()
	outErr, inErr := make(chan error, 1), make(chan error, 1)
	go func() { outErr <- o.Run(ctx) }()
	go func() { inErr <- in.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // both are waiting for the server now
	if o.Stats().Connected || in.Stats().Connected {
		t.Fatal("connected without a server")
	}
	srv, _ := natsServer(t, 0, port)
	rs, warm := warmUp(t, w, proto, p.dir, p.dst)
	f := makeFrame(ring.Gray8, 32, 32, 0, 2)
	f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
	checkSame(t, readUntil(t, rs[0], f.number, warm), f)

	srv.Shutdown()
	for _, ch := range []chan error{outErr, inErr} {
		select {
		case err := <-ch:
			if err == nil || !strings.Contains(err.Error(), "closed for good") {
				t.Errorf("Run after the server went away for good = %v, want an error saying the connection is closed for good", err)
			}
		case <-time.After(hang):
			t.Fatal("Run did not return after the reconnects ran out")
		}
	}
}

// TestSlowReceiver makes the bridge in slow (each message takes 3 ms) with
// a client buffer of little more than one frame, while frames of 4
// chunks come much faster: the NATS client drops messages and reports a
// slow consumer, the bridge counts it, never delivers a partial frame,
// and its accounting still adds up.
func TestSlowReceiver(t *testing.T) {
	_, url := natsServer(t, 64<<10, 0)
	p := newPair(t, url)
	const W, H = 320, 240
	w := openWriter(t, p.dir, p.src, 3*W*H)
	out := runOut(t, OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject})
	in, err := NewIn(InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject, BufferBytes: 300 << 10, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	in.slowHook = func() { time.Sleep(3 * time.Millisecond) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge in Run: %v", err)
		}
	}()
	f := patternFrame(W, H)
	var last uint64
	waitFor(t, "slow-consumer drops", func() bool {
		last++
		pattern.Fill(f.data, last)
		if n := publish(t, w, f); n != last {
			t.Fatalf("published frame %d, expected %d", n, last)
		}
		time.Sleep(time.Millisecond)
		st := in.Stats()
		return st.SlowConsumer > 0 && st.ClientDropped > 0 && st.Delivered > 5
	})
	// Let the bridge in drain its buffer, then send one more frame, which
	// nothing crowds out.
	settle(t, out)
	waitFor(t, "the bridge in to drain", func() bool {
		a, b := in.Stats().Messages, out.Stats().Messages
		time.Sleep(50 * time.Millisecond)
		return in.Stats().Messages == a && a <= b
	})
	last++
	pattern.Fill(f.data, last)
	publish(t, w, f)
	var os OutStats
	var st InStats
	waitFor(t, "the last frame at the bridge in", func() bool {
		os, st = settle(t, out), in.Stats()
		return os.Read > 0 && st.SeqLast == os.Attempted && st.Pending == 0
	})
	t.Logf("slow receiver: out sent %d frames (%d messages); in: slow consumer events %d, messages dropped by the client %d, delivered %d, lost %d, incomplete %d",
		os.Sent, os.Messages, st.SlowConsumer, st.ClientDropped, st.Delivered, st.Lost, st.Incomplete)
	if st.Lost+st.Incomplete == 0 || st.Corrupt != 0 {
		t.Errorf("dropped messages but no lost or incomplete frame (corrupt %d)", st.Corrupt)
	}
	if st.Delivered+st.Dropped() != st.Window || st.Window != st.SeqLast-st.SeqFirst+1 {
		t.Errorf("accounting: delivered %d + dropped %d, window %d (seq %d..%d)", st.Delivered, st.Dropped(), st.Window, st.SeqFirst, st.SeqLast)
	}
	// Whatever arrived is whole: check it in the remote ring.
	r := openRemote(t, p.dir, p.dst)
	for {
		g, err := readFrame(r, 100*time.Millisecond)
		if err != nil {
			break
		}
		if err := pattern.Check(g.data, g.number); err != nil {
			t.Fatalf("remote frame %d: %v", g.number, err)
		}
	}
}

// TestOutLatestWins holds the bridge out's publisher on its first frame
// while the ring gets more: the newest frame waiting wins, the others are
// counted as skipped, so that Read + Skipped is every frame the ring
// published and the remote ring gets the first and the newest frame.
func TestOutLatestWins(t *testing.T) {
	_, url := natsServer(t, 0, 0)
	p := newPair(t, url)
	proto := makeFrame(ring.BGR8, 64, 48, 0, 1)
	w := openWriter(t, p.dir, p.src, len(proto.data))
	// 32 slots: frame 1 stays in the remote ring after frame 20.
	in := runIn(t, InConfig{Ring: p.dst, Dir: p.dir, NATS: testConn(url), Subject: p.subject, MaxFrameBytes: len(proto.data), Slots: 32})
	r := openRemote(t, p.dir, p.dst)
	o, err := NewOut(OutConfig{Ring: p.src, Dir: p.dir, NATS: testConn(url), Subject: p.subject, Logf: t.Logf, HungAfter: hang})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	first := true
	o.publishHook = func() {
		if first {
			first = false
			held <- struct{}{}
			<-release
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() {
		unhold()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge out Run: %v", err)
		}
	}()
	waitFor(t, "the bridge out to read the ring", func() bool { return o.pipe.Load() != nil })
	waitFor(t, "the bridge in to subscribe", func() bool {
		publishMsgs(t, url, p.subject, []byte("ping"))
		return in.Stats().ChunkErrors["foreign"] > 0
	})

	const frames = 20
	publish(t, w, proto) // frame 1: the publisher takes it and is held
	<-held
	var last uint64
	for i := 2; i <= frames; i++ {
		f := makeFrame(ring.BGR8, 64, 48, 0, uint64(i))
		last = publish(t, w, f)
		if i == frames {
			f.number = last
			proto = f
		}
	}
	// Every frame is counted but the one waiting for the publisher.
	waitFor(t, "the bridge out to read the newest frame", func() bool { st := o.Stats(); return st.Read+st.Skipped >= frames-1 })
	unhold()
	waitFor(t, "the bridge out to send the newest frame", func() bool { return o.Stats().Sent == 2 && o.idle() })
	st := o.Stats()
	if st.Read+st.Skipped != frames || st.Read != 2 || st.Attempted != 2 {
		t.Fatalf("bridge out: read %d + skipped %d, want %d frames: read 2 (the first and the newest), attempted %d", st.Read, st.Skipped, frames, st.Attempted)
	}
	got, err := readFrame(r, hang)
	if err != nil || got.number != 1 {
		t.Fatalf("remote ring: frame %d first (%v), want 1; bridge in %+v", got.number, err, in.Stats())
	}
	checkSame(t, readUntil(t, r, last, 0), proto)
	if rc := counts(r); rc.delivered != 2 || rc.dropped != last-2 {
		t.Fatalf("remote reader: delivered %d dropped %d, want 2 and %d (the skipped numbers)", rc.delivered, rc.dropped, last-2)
	}
}
