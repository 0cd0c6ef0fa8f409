package preview_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/preview"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const hang = 30 * time.Second // hang guard only

// writer publishes frames into a ring from a goroutine of the test.
type writer struct {
	w    *producer.Writer
	fi   ring.FrameInfo
	fill func(b []byte, n uint64) []byte // fills the pixels, returns the metadata
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
	last atomic.Uint64
}

// newWriter creates ring name in dir for frames of shape fi.
func newWriter(t *testing.T, dir, name string, fi ring.FrameInfo, fill func(b []byte, n uint64) []byte) *writer {
	t.Helper()
	if err := fi.Normalize(); err != nil {
		t.Fatal(err)
	}
	pw, err := producer.Open(name, producer.Options{Dir: dir, Slots: 8, MaxFrameBytes: fi.Len, MetaBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{w: pw, fi: fi, fill: fill}
	t.Cleanup(func() {
		w.halt()
		pw.Close()
		pw.Remove()
	})
	return w
}

// cardWriter publishes the visual test card.
func cardWriter(t *testing.T, dir, name string, fi ring.FrameInfo) *writer {
	t.Helper()
	card, err := pattern.NewCard(fi)
	if err != nil {
		t.Fatal(err)
	}
	return newWriter(t, dir, name, card.Info(), func(b []byte, n uint64) []byte {
		card.Fill(b, n)
		return []byte(fmt.Sprintf(`{"frame":%d,"boxes":[{"x":1,"y":2}]}`, n))
	})
}

// publish publishes one frame and returns its number.
func (w *writer) publish(t *testing.T) uint64 {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	l, err := w.w.Reserve(w.fi)
	if err != nil {
		t.Fatal(err)
	}
	meta := w.fill(l.Data(), l.Number())
	l.Meta().Write(meta)
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	w.last.Store(l.Number())
	return l.Number()
}

// run publishes a frame every gap until halt.
func (w *writer) run(t *testing.T, gap time.Duration) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		tk := time.NewTicker(gap)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tk.C:
				w.publish(t)
			}
		}
	}()
}

func (w *writer) halt() {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
}

// serve starts a preview server over dir.
func serve(t *testing.T, opts preview.Options) (*preview.Server, *httptest.Server) {
	t.Helper()
	s, err := preview.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close() // first: ends the requests that wait for pictures
		hs.Close()
	})
	return s, hs
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp := get(t, url)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIndex(t *testing.T) {
	dir := testutil.ShmDir(t)
	base := testutil.Name(t)
	live := cardWriter(t, dir, base+"-live", ring.FrameInfo{Width: 64, Height: 48, Format: ring.BGR8})
	live.run(t, 5*time.Millisecond)
	done := cardWriter(t, dir, base+"-done", ring.FrameInfo{Width: 32, Height: 16, Format: ring.Gray8})
	for i := 0; i < 3; i++ {
		done.publish(t)
	}
	done.w.Close() // the writer is gone; the ring stays
	if err := os.WriteFile(ring.Path(dir, base+"-bad"), []byte("not a ring"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, hs := serve(t, preview.Options{Dir: dir})

	var idx preview.Index
	getJSON(t, hs.URL+"/api/rings", &idx)
	if idx.Dir != dir || len(idx.Rings) != 3 {
		t.Fatalf("index of %s: %+v", dir, idx)
	}
	rows := map[string]preview.RingInfo{}
	for _, r := range idx.Rings {
		rows[r.Name] = r
	}
	l := rows[base+"-live"]
	if l.State != "alive" || l.Width != 64 || l.Height != 48 || l.Channels != 3 || l.Format != "bgr8" ||
		l.Slots != 8 || l.SlotBytes != 64*48*3 || l.MetaBytes != 4096 || l.Generation != 1 || l.Head == 0 ||
		l.WriterPID != os.Getpid() {
		t.Errorf("live ring: %+v", l)
	}
	if l.RateFPS == nil || *l.RateFPS <= 0 || l.NewestAgeMs == nil {
		t.Errorf("live ring without a rate or an age: %+v", l)
	}
	d := rows[base+"-done"]
	if d.State != "gone" || d.Width != 32 || d.Height != 16 || d.Format != "gray8" || d.Head != 3 || d.FramesTotal != 3 {
		t.Errorf("finished ring: %+v", d)
	}
	if d.RateFPS == nil || *d.RateFPS != 0 {
		t.Errorf("finished ring's rate: %v", d.RateFPS)
	}
	if b := rows[base+"-bad"]; b.State != "unreadable" || !strings.Contains(b.Error, "truncated") {
		t.Errorf("corrupt file: %+v", b)
	}

	// Removed rings leave the index.
	os.Remove(ring.Path(dir, base+"-bad"))
	getJSON(t, hs.URL+"/api/rings", &idx)
	if len(idx.Rings) != 2 {
		t.Errorf("after removing one: %d rings", len(idx.Rings))
	}
}

// randomFrame fills b with noise from n.
func randomFrame(b []byte, n uint64) []byte {
	r := rand.New(rand.NewPCG(n, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return []byte{0, 1, 2, 0xff, byte(n)} // binary metadata
}

// TestSnapshotExact checks that the PNG snapshot is the frame, pixel for
// pixel, for the formats that have an exact PNG form.
func TestSnapshotExact(t *testing.T) {
	dir := testutil.ShmDir(t)
	_, hs := serve(t, preview.Options{Dir: dir})
	for _, fi := range []ring.FrameInfo{
		{Width: 37, Height: 21, Format: ring.BGR8},
		{Width: 16, Height: 9, Format: ring.RGB8, Stride: 16*3 + 5},
		{Width: 20, Height: 10, Format: ring.BGRA8},
		{Width: 20, Height: 10, Format: ring.RGBA8},
		{Width: 13, Height: 7, Format: ring.Gray8},
		{Width: 13, Height: 7, Format: ring.Gray16},
	} {
		t.Run(fi.Format.String(), func(t *testing.T) {
			name := testutil.Name(t)
			w := newWriter(t, dir, name, fi, randomFrame)
			fi = w.fi
			n := w.publish(t)
			data := make([]byte, fi.Len)
			randomFrame(data, n)

			resp := get(t, hs.URL+"/api/rings/"+name+"/snapshot.png")
			b := body(t, resp)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("snapshot: %s %s", resp.Status, b)
			}
			if got := resp.Header.Get("X-Frame-Number"); got != strconv.FormatUint(n, 10) {
				t.Errorf("snapshot of frame %s, want %d", got, n)
			}
			if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, fmt.Sprintf("%s-%d.png", name, n)) {
				t.Errorf("Content-Disposition %q", cd)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds() != image.Rect(0, 0, fi.Width, fi.Height) {
				t.Fatalf("snapshot %v, frame %dx%d", img.Bounds(), fi.Width, fi.Height)
			}
			for y := 0; y < fi.Height; y++ {
				for x := 0; x < fi.Width; x++ {
					p := data[y*fi.Stride:]
					var want color.Color
					switch fi.Format {
					case ring.BGR8:
						want = color.NRGBA{p[3*x+2], p[3*x+1], p[3*x], 255}
					case ring.RGB8:
						want = color.NRGBA{p[3*x], p[3*x+1], p[3*x+2], 255}
					case ring.BGRA8:
						want = color.NRGBA{p[4*x+2], p[4*x+1], p[4*x], p[4*x+3]}
					case ring.RGBA8:
						want = color.NRGBA{p[4*x], p[4*x+1], p[4*x+2], p[4*x+3]}
					case ring.Gray8:
						want = color.Gray{p[x]}
					case ring.Gray16:
						want = color.Gray16{uint16(p[2*x]) | uint16(p[2*x+1])<<8}
					}
					got := img.At(x, y)
					if fi.Format == ring.Gray16 {
						if g := color.Gray16Model.Convert(got); g != want {
							t.Fatalf("pixel (%d,%d) = %v, frame has %v", x, y, g, want)
						}
					} else if g := color.NRGBAModel.Convert(got); g != color.NRGBAModel.Convert(want) {
						t.Fatalf("pixel (%d,%d) = %v, frame has %v", x, y, g, want)
					}
				}
			}

			// By number: the same frame; a frame never held: 410.
			resp = get(t, fmt.Sprintf("%s/api/rings/%s/snapshot.png?frame=%d", hs.URL, name, n))
			if b2 := body(t, resp); resp.StatusCode != 200 || !bytes.Equal(b, b2) {
				t.Errorf("snapshot ?frame=%d: %s, %d bytes (first: %d)", n, resp.Status, len(b2), len(b))
			}
			// Once the preview read 8 newer frames, frame n is gone.
			var seq uint64
			for i := 0; i < 9; i++ {
				m := w.publish(t)
				for f := uint64(0); f != m; {
					seq, f = picture(t, hs.URL+"/api/rings/"+name, seq)
				}
			}
			resp = get(t, fmt.Sprintf("%s/api/rings/%s/snapshot.png?frame=%d", hs.URL, name, n))
			if msg := body(t, resp); resp.StatusCode != http.StatusGone || !strings.Contains(string(msg), "no longer held") {
				t.Errorf("snapshot of a frame not held: %s %s", resp.Status, msg)
			}
		})
	}
}

// TestPictures checks the live picture of every pixel format: the colour
// bars of the test card come out in their colours (within JPEG's error),
// and raw frames come as a "not an image" description.
func TestPictures(t *testing.T) {
	dir := testutil.ShmDir(t)
	_, hs := serve(t, preview.Options{Dir: dir, MaxSide: 80})
	red, blue := [3]int{191, 0, 0}, [3]int{0, 0, 191}
	luma := func(c [3]int) int { return (77*c[0] + 150*c[1] + 29*c[2] + 128) >> 8 }
	for _, fi := range []ring.FrameInfo{
		{Width: 160, Height: 90, Format: ring.BGR8}, // scaled to 80x45
		{Width: 64, Height: 48, Format: ring.RGB8},
		{Width: 64, Height: 48, Format: ring.BGRA8},
		{Width: 64, Height: 48, Format: ring.RGBA8},
		{Width: 64, Height: 48, Format: ring.YUYV},
		{Width: 63, Height: 48, Format: ring.YUYV}, // odd width
		{Width: 64, Height: 48, Format: ring.Gray8},
		{Width: 64, Height: 48, Format: ring.Gray16},
	} {
		t.Run(fi.Format.String(), func(t *testing.T) {
			name := testutil.Name(t)
			w := cardWriter(t, dir, name, fi)
			n := w.publish(t)
			resp := get(t, hs.URL+"/api/rings/"+name+"/frame.jpg")
			b := body(t, resp)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("frame.jpg: %s %s", resp.Status, b)
			}
			if got := resp.Header.Get("X-Frame-Number"); got != strconv.FormatUint(n, 10) {
				t.Errorf("picture of frame %s, want %d", got, n)
			}
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			wantW, wantH := fi.Width, fi.Height
			if wantW > 80 {
				wantW, wantH = 80, fi.Height*80/fi.Width
			}
			if img.Bounds().Dx() != wantW || img.Bounds().Dy() != wantH {
				t.Fatalf("picture %v, want %dx%d", img.Bounds(), wantW, wantH)
			}
			// Bar 5 (red) and bar 6 (blue), in the middle of the bars, away
			// from the box (which starts at the top left for frame 1... and
			// moves only a few pixels).
			for _, bar := range []struct {
				i int
				c [3]int
			}{{5, red}, {6, blue}} {
				x, y := (2*bar.i+1)*wantW/16, wantH/2
				r, g, bb, _ := img.At(x, y).RGBA()
				got := [3]int{int(r >> 8), int(g >> 8), int(bb >> 8)}
				want := bar.c
				if fi.Format == ring.Gray8 || fi.Format == ring.Gray16 {
					l := luma(bar.c)
					want = [3]int{l, l, l}
				}
				for k := range 3 {
					if d := got[k] - want[k]; d < -40 || d > 40 {
						t.Errorf("bar %d at (%d,%d) = %v, want about %v", bar.i, x, y, got, want)
						break
					}
				}
			}
		})
	}
	t.Run("raw", func(t *testing.T) {
		name := testutil.Name(t)
		w := newWriter(t, dir, name, ring.FrameInfo{Format: ring.Raw, Len: 1000, Width: 1, Height: 1}, randomFrame)
		n := w.publish(t)
		resp := get(t, hs.URL+"/api/rings/"+name+"/frame.jpg")
		b := body(t, resp)
		var ni preview.NotImage
		if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Not-Image") != "1" || json.Unmarshal(b, &ni) != nil {
			t.Fatalf("frame.jpg of a raw frame: %s %s %s", resp.Status, resp.Header, b)
		}
		data := make([]byte, 1000)
		randomFrame(data, n)
		if ni.Frame != n || ni.Format != "raw" || ni.Len != 1000 || !strings.Contains(ni.Why, "not an image") ||
			!strings.HasPrefix(ni.HeadHex, fmt.Sprintf("00000000  %02x %02x", data[0], data[1])) {
			t.Errorf("not-image description: %+v", ni)
		}
		resp = get(t, hs.URL+"/api/rings/"+name+"/snapshot.png")
		if msg := body(t, resp); resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("snapshot of a raw frame: %s %s", resp.Status, msg)
		}
	})
}

func TestMeta(t *testing.T) {
	dir := testutil.ShmDir(t)
	_, hs := serve(t, preview.Options{Dir: dir})
	for _, tc := range []struct {
		meta       []byte
		kind, text string
	}{
		{[]byte(`{"boxes":[1,2]}`), "json", "{\n  \"boxes\": [\n    1,\n    2\n  ]\n}"},
		{[]byte("person 0.93 at 10,20"), "text", "person 0.93 at 10,20"},
		{[]byte{0, 1, 2, 0xff}, "hex", "00000000  00 01 02 ff"},
		{nil, "none", ""},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			name := testutil.Name(t)
			w := newWriter(t, dir, name, ring.FrameInfo{Width: 8, Height: 8, Format: ring.Gray8},
				func(b []byte, n uint64) []byte { return tc.meta })
			n := w.publish(t)
			var m preview.MetaView
			getJSON(t, fmt.Sprintf("%s/api/rings/%s/meta?frame=%d", hs.URL, name, n), &m)
			if m.Frame != n || m.Kind != tc.kind || m.Len != len(tc.meta) || !strings.HasPrefix(m.Text, tc.text) {
				t.Errorf("meta %q: %+v", tc.meta, m)
			}
			// The same, in the header of the picture.
			resp := get(t, hs.URL+"/api/rings/"+name+"/frame.jpg")
			body(t, resp)
			js, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Frame-Meta"))
			var hm preview.MetaView
			if err != nil || json.Unmarshal(js, &hm) != nil || hm != m {
				t.Errorf("X-Frame-Meta %q (%v): %+v, want %+v", resp.Header.Get("X-Frame-Meta"), err, hm, m)
			}
		})
	}
}

// picture fetches the next picture after seq.
func picture(t *testing.T, url string, after uint64) (seq, frame uint64) {
	t.Helper()
	resp := get(t, fmt.Sprintf("%s/frame.jpg?after=%d", url, after))
	body(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("frame.jpg?after=%d: %s", after, resp.Status)
	}
	seq, _ = strconv.ParseUint(resp.Header.Get("X-Preview-Seq"), 10, 64)
	frame, _ = strconv.ParseUint(resp.Header.Get("X-Frame-Number"), 10, 64)
	return seq, frame
}

// TestLongPoll checks that frame.jpg?after=SEQ waits for the next picture.
func TestLongPoll(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := cardWriter(t, dir, name, ring.FrameInfo{Width: 32, Height: 24, Format: ring.BGR8})
	_, hs := serve(t, preview.Options{Dir: dir, MaxFPS: 1000})
	api := hs.URL + "/api/rings/" + name
	w.publish(t)
	seq, n := picture(t, api, 0)
	if seq == 0 || n != 1 {
		t.Fatalf("first picture: seq %d frame %d", seq, n)
	}
	got := make(chan [2]uint64, 1)
	go func() {
		s, f := picture(t, api, seq)
		got <- [2]uint64{s, f}
	}()
	select {
	case g := <-got:
		t.Fatalf("frame.jpg?after=%d returned %v before a new frame", seq, g)
	case <-time.After(300 * time.Millisecond):
	}
	w.publish(t)
	g := testutil.Receive(t, got, "the next picture")
	if g[0] != seq+1 || g[1] != 2 {
		t.Errorf("next picture: seq %d frame %d, want %d and 2", g[0], g[1], seq+1)
	}
}

type ringStats struct {
	Ring    preview.RingInfo  `json:"ring"`
	Preview preview.FeedStats `json:"preview"`
}

// TestCounters checks that every frame of the reader's window is counted
// once, that frames passed over because of --max-fps count as the
// preview's skips and not as ring drops, and that the latencies are there.
func TestCounters(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := cardWriter(t, dir, name, ring.FrameInfo{Width: 32, Height: 24, Format: ring.RGB8})
	_, hs := serve(t, preview.Options{Dir: dir, MaxFPS: 20})
	api := hs.URL + "/api/rings/" + name
	var st ringStats
	getJSON(t, api, &st) // opens the reader
	w.run(t, time.Millisecond)
	var seq uint64
	for i := 0; i < 8; i++ {
		seq, _ = picture(t, api, seq)
	}
	w.halt()
	time.Sleep(200 * time.Millisecond) // let the pump read the last frame, if it will
	getJSON(t, api, &st)
	c := st.Preview.Counters
	if c.Read < 8 || c.Sent < 8 || c.Encoded != c.Read {
		t.Errorf("read %d, sent %d, encoded %d: want at least the 8 pictures fetched", c.Read, c.Sent, c.Encoded)
	}
	if sum := c.Read + c.SkippedPreview + c.SkippedIdle + c.RingDrops; sum != c.Window || c.Window == 0 {
		t.Errorf("read %d + skipped %d + idle %d + drops %d = %d, window %d", c.Read, c.SkippedPreview, c.SkippedIdle, c.RingDrops, sum, c.Window)
	}
	// The writer published about 50 frames for each one the preview read:
	// skips by the pacing, none of them ring drops.
	if c.SkippedPreview < c.Read || c.RingDrops != 0 {
		t.Errorf("skipped by the preview %d, ring drops %d, read %d", c.SkippedPreview, c.RingDrops, c.Read)
	}
	if st.Preview.Frame == nil || st.Preview.Frame.Width != 32 || st.Preview.Frame.Format != "rgb8" || st.Preview.Frame.MetaLen == 0 {
		t.Errorf("frame: %+v", st.Preview.Frame)
	}
	if st.Preview.MaxFPS != 20 || st.Ring.Name != name || st.Ring.Head != w.last.Load() {
		t.Errorf("stats: max fps %v, ring %+v (writer's last frame %d)", st.Preview.MaxFPS, st.Ring, w.last.Load())
	}
	// The interval figures: computed over at least the last 0.9 s.
	time.Sleep(time.Second)
	w.run(t, 5*time.Millisecond)
	for i := 0; i < 3; i++ {
		seq, _ = picture(t, api, seq)
	}
	w.halt()
	getJSON(t, api, &st)
	// The writer publishes every 5 ms and the preview reads every 50 ms:
	// each frame it reads was already waiting, so there is a ring wait,
	// and the transport is the copy alone.
	iv := st.Preview.Interval
	if iv.Seconds < 0.9 || iv.TransportP50Ms <= 0 || iv.RingWaitP50Ms <= 0 || iv.DelayP50Ms <= 0 || iv.EncodeP50Ms <= 0 {
		t.Errorf("interval: %+v", iv)
	}
}

// TestStalledClient checks that a client that stops reading its MJPEG
// stream slows neither the preview nor the other clients.
func TestStalledClient(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := newWriter(t, dir, name, ring.FrameInfo{Width: 320, Height: 240, Format: ring.BGR8}, randomFrame)
	_, hs := serve(t, preview.Options{Dir: dir, MaxFPS: 200, Quality: 95})
	api := hs.URL + "/api/rings/" + name
	w.run(t, 2*time.Millisecond)

	// The stalled client: asks for the stream, reads one part, then nothing.
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /api/rings/%s/stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n", name)
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(hang))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/x-mixed-replace") {
		t.Fatalf("stream Content-Type %q", ct)
	}
	part, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(part, "--framering-frame") {
		t.Fatalf("first part: %q %v", part, err)
	}
	// Noise at quality 95 is about 100 KB a picture: the socket buffers
	// fill after a few pictures, and the stream's handler blocks in Write.
	var st ringStats
	getJSON(t, api, &st)
	start := st.Preview.Counters.Encoded
	var seq uint64
	const fetched = 30
	for i := 0; i < fetched; i++ {
		seq, _ = picture(t, api, seq)
	}
	getJSON(t, api, &st)
	if got := st.Preview.Counters.Encoded - start; got < fetched-1 {
		t.Errorf("the preview encoded %d pictures while a client stalled, want the %d fetched", got, fetched)
	}
	// The stalled client: what it can read now is what the socket buffers
	// held when its handler blocked, far fewer pictures than were made.
	conn.SetReadDeadline(time.Now().Add(time.Second))
	data, _ := io.ReadAll(resp.Body)
	parts := bytes.Count(data, []byte("--framering-frame"))
	t.Logf("the stalled client had %d pictures (%d bytes) waiting; the other got %d", parts+1, len(data), fetched)
	if parts+1 >= fetched {
		t.Errorf("the stalled client had %d pictures waiting: it did not stall", parts+1)
	}
	w.halt()
}

// TestIdleAndClose checks that a ring's reader closes after Options.Idle
// without requests, and that Close ends the requests waiting for pictures.
func TestIdleAndClose(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := cardWriter(t, dir, name, ring.FrameInfo{Width: 16, Height: 16, Format: ring.Gray8})
	w.publish(t)
	s, hs := serve(t, preview.Options{Dir: dir, Idle: 100 * time.Millisecond})
	previewed := func() bool {
		var idx preview.Index
		getJSON(t, hs.URL+"/api/rings", &idx) // the index does not count as watching a ring
		return len(idx.Rings) == 1 && idx.Rings[0].Previewed
	}
	if previewed() {
		t.Fatal("a ring nobody asked for is previewed")
	}
	picture(t, hs.URL+"/api/rings/"+name, 0)
	if !previewed() {
		t.Fatal("the ring whose picture was fetched has no reader")
	}
	testutil.Eventually(t, "the reader closes after the idle time", func() bool { return !previewed() })

	// A request waiting for a picture that never comes: Close ends it.
	res := make(chan int, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/api/rings/%s/frame.jpg?after=%d", hs.URL, name, uint64(1)<<40))
		if err != nil {
			res <- -1
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	testutil.Eventually(t, "the request opens the ring", previewed)
	// after=2^40 is from no feed of this server: treated as none, it gets
	// the newest picture at once.
	if code := testutil.Receive(t, res, "the answer to a stale after"); code != 200 {
		t.Fatalf("frame.jpg with a stale after: %d", code)
	}
	var seq uint64
	seq, _ = picture(t, hs.URL+"/api/rings/"+name, 0)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/api/rings/%s/frame.jpg?after=%d", hs.URL, name, seq))
		if err != nil {
			res <- -1
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // let it wait (if it returned already, the code below says so)
	s.Close()
	if code := testutil.Receive(t, res, "the answer after Close"); code != http.StatusServiceUnavailable {
		t.Errorf("a request waiting at Close got %d, want 503", code)
	}
	resp := get(t, hs.URL+"/api/rings/"+name)
	if body(t, resp); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a request after Close got %s", resp.Status)
	}
}
