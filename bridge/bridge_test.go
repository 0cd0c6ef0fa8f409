package bridge

import (
	"fmt"
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
			for i := uint64(2); i < 12; i++ {
				f := makeFrame(tc.format, tc.width, tc.height, tc.strid, i)
				f.number, f.pubLo, f.pubHi = publishAt(t, w, f)
				checkSame(t, readUntil(t, r, f.number, warm), f)
			}
			if st := in.Stats(); st.Dropped() != 0 || st.Corrupt != 0 {
				t.Errorf("bridge in dropped frames on a quiet loopback: %+v", st)
			}
			if st := out.Stats(); st.PublishErrors != 0 {
				t.Errorf("bridge out: %d publish errors", st.PublishErrors)
			}
		})
	}
}
