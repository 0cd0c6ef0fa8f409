package bridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
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
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "gray16") || !strings.Contains(err.Error(), "raw") {
			t.Fatalf("Run over a gray16 ring with JPEG = %v, want ErrUnsupported naming gray16 and raw", err)
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
			if st := in.Stats(); st.Dropped() != dropped || st.Pending != 0 {
				t.Errorf("bridge in: %d dropped in lockstep, %d pending", st.Dropped()-dropped, st.Pending)
			}
		})
	}
}
