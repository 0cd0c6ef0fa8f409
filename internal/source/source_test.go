package source

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/ring"
)

func TestShape(t *testing.T) {
	for _, c := range []struct {
		size, format string
		len          int
		f            ring.PixelFormat
		err          error
	}{
		{"4x2x3", "", 24, ring.BGR8, nil},
		{"4x2x1", "", 8, ring.Gray8, nil},
		{"4x2x2", "", 16, ring.YUYV, nil},
		{"4x2x4", "rgba8", 32, ring.RGBA8, nil},
		{"4x2x1", "gray16", 16, ring.Gray16, nil},
		{"5x3x2", "raw", 30, ring.Raw, nil},
		{"4x2", "", 24, ring.BGR8, nil},
		{"4x2x3", "gray8", 0, 0, ring.ErrInvalidFrame},
		{"4x2x3", "nv12", 0, 0, ring.ErrInvalidFrame},
		{"banana", "", 0, 0, ring.ErrInvalidFrame},
	} {
		fi, err := Shape(c.size, c.format)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Shape(%q, %q) = %v, want an error wrapping %v", c.size, c.format, err, c.err)
			}
			continue
		}
		if err != nil || fi.Len != c.len || fi.Format != c.f {
			t.Errorf("Shape(%q, %q) = %+v, %v; want Len %d format %v", c.size, c.format, fi, err, c.len, c.f)
		}
	}
}

func TestPattern(t *testing.T) {
	if _, err := Pattern("2x2x1", "", ""); !errors.Is(err, ring.ErrInvalidFrame) {
		t.Errorf("a 4-byte pattern: %v, want ErrInvalidFrame", err)
	}
	if _, err := Pattern("8x4x3", "rgb8", "plaid"); err == nil {
		t.Errorf("an unknown pattern style was accepted")
	}
	s, err := Pattern("8x4x3", "rgb8", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, s.Shape().Len+10) // a slot larger than the frame
	for n := uint64(1); n <= 3; n++ {
		if err := s.Ready(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Fill(buf, n); err != nil {
			t.Fatal(err)
		}
		if err := pattern.Check(buf[:s.Shape().Len], n); err != nil {
			t.Errorf("frame %d: %v", n, err)
		}
		if err := pattern.Check(buf[:s.Shape().Len], n+1); err == nil {
			t.Errorf("frame %d passes as frame %d", n, n+1)
		}
	}
}

// The visual card fills the slot so that the card's own check and the
// checker recv --verify uses accept it, and reject it as another frame.
func TestPatternVisual(t *testing.T) {
	s, err := Pattern("40x30x3", "bgr8", "visual")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi := s.Shape()
	buf := make([]byte, fi.Len)
	var c pattern.Checker
	for n := uint64(1); n <= 3; n++ {
		if _, err := s.Fill(buf, n); err != nil {
			t.Fatal(err)
		}
		f := ring.Frame{FrameInfo: fi, Number: n, Data: buf}
		if err := c.Check(&f); err != nil {
			t.Errorf("frame %d: %v", n, err)
		}
		f.Number = n + 1
		if err := c.Check(&f); err == nil {
			t.Errorf("frame %d passes as frame %d", n, n+1)
		}
	}
	if _, err := Pattern("40x30x1", "raw", "visual"); err == nil {
		t.Errorf("a visual card of raw bytes was accepted")
	}
}

func TestImage(t *testing.T) {
	dir := t.TempDir()
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	img.SetNRGBA(0, 0, color.NRGBA{R: 10, G: 20, B: 30, A: 255})
	img.SetNRGBA(2, 1, color.NRGBA{R: 200, G: 100, B: 50, A: 255})
	path := filepath.Join(dir, "in.png")
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, b.Bytes(), 0o644)
	s, err := Image(path)
	if err != nil {
		t.Fatal(err)
	}
	fi := s.Shape()
	if fi.Width != 3 || fi.Height != 2 || fi.Format != ring.BGR8 || fi.Len != 18 {
		t.Fatalf("shape %+v", fi)
	}
	buf := make([]byte, 18)
	if _, err := s.Fill(buf, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[0:3], []byte{30, 20, 10}) || !bytes.Equal(buf[15:18], []byte{50, 100, 200}) {
		t.Errorf("BGR bytes %v", buf)
	}

	if _, err := Image(filepath.Join(dir, "nope.png")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	if _, err := Image(bad); !errors.Is(err, ErrUndecodable) {
		t.Errorf("corrupt file: %v", err)
	}
}

// frames returns n frames of size bytes, each byte a function of its
// frame and position.
func frames(n, size int) []byte {
	b := make([]byte, n*size)
	for i := range b {
		b[i] = byte(i/size*31 + i*7)
	}
	return b
}

func TestRaw(t *testing.T) {
	fi, err := Shape("5x3x2", "yuyv")
	if err != nil {
		t.Fatal(err)
	}
	want := frames(4, fi.Len)
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(want),
		"one byte": iotest.OneByteReader(bytes.NewReader(want)),
		"half":     iotest.HalfReader(bytes.NewReader(want)),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Raw(r, "the test stream", fi)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			buf := make([]byte, fi.Len+7)
			for n := uint64(1); ; n++ {
				if err := s.Ready(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				capture, err := s.Fill(buf, n)
				if err != nil {
					t.Fatalf("frame %d: %v", n, err)
				}
				if capture <= 0 {
					t.Errorf("frame %d: capture time %d", n, capture)
				}
				got = append(got, buf[:fi.Len]...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("read %d bytes, not the %d sent", len(got), len(want))
			}
		})
	}
}

func TestRawEnds(t *testing.T) {
	fi, _ := Shape("4x4x1", "")
	buf := make([]byte, fi.Len)

	s, _ := Raw(bytes.NewReader(nil), "stdin", fi)
	if err := s.Ready(); err != io.EOF {
		t.Errorf("empty stream: Ready = %v, want io.EOF", err)
	}
	if _, err := s.Fill(buf, 1); err != io.EOF {
		t.Errorf("empty stream: Fill = %v, want io.EOF", err)
	}

	s, _ = Raw(bytes.NewReader(frames(3, fi.Len)[:2*fi.Len+5]), "stdin", fi)
	for n := uint64(1); n <= 2; n++ {
		if _, err := s.Fill(buf, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("5 bytes of a third frame: Ready = %v", err)
	}
	_, err := s.Fill(buf, 3)
	if !errors.Is(err, ErrPartialFrame) || !strings.Contains(err.Error(), "frame 3 has 5 of 16 bytes (2 complete frames before it)") {
		t.Errorf("partial frame: %v", err)
	}

	boom := errors.New("boom")
	s, _ = Raw(iotest.ErrReader(boom), "stdin", fi)
	if err := s.Ready(); !errors.Is(err, boom) || errors.Is(err, io.EOF) {
		t.Errorf("read error: Ready = %v", err)
	}
}

func TestCheckFPS(t *testing.T) {
	for _, fps := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, -0.5, 1e-9} {
		if CheckFPS(fps) == nil {
			t.Errorf("CheckFPS(%g) accepted", fps)
		}
	}
	for _, fps := range []float64{0, MinFPS, 0.5, 30, 1e6} {
		if err := CheckFPS(fps); err != nil {
			t.Errorf("CheckFPS(%g): %v", fps, err)
		}
	}
}

// fakeClock drives a Pacer without real time: sleeping advances it.
type fakeClock struct {
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) pacer(fps float64) *Pacer {
	p := NewPacer(fps)
	p.now = func() time.Time { return c.t }
	p.sleep = func(ctx context.Context, d time.Duration) error {
		c.sleeps = append(c.sleeps, d)
		c.t = c.t.Add(d)
		return ctx.Err()
	}
	return p
}

func TestPacer(t *testing.T) {
	ctx := context.Background()
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := c.pacer(10)
	for i := 0; i < 3; i++ {
		p.Wait(ctx)
	}
	c.t = c.t.Add(30 * time.Millisecond) // the caller's work: the next wait is shorter
	p.Wait(ctx)
	c.t = c.t.Add(2 * time.Second) // a stall: no burst afterwards
	p.Wait(ctx)
	p.Wait(ctx)
	want := []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 70 * time.Millisecond, 100 * time.Millisecond}
	if len(c.sleeps) != len(want) {
		t.Fatalf("sleeps %v, want %v", c.sleeps, want)
	}
	for i := range want {
		if c.sleeps[i] != want[i] {
			t.Fatalf("sleeps %v, want %v", c.sleeps, want)
		}
	}

	c = &fakeClock{t: time.Unix(1000, 0)}
	p = c.pacer(0)
	for i := 0; i < 5; i++ {
		p.Wait(ctx)
	}
	if len(c.sleeps) != 0 {
		t.Errorf("fps 0 slept %v", c.sleeps)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Wait(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v", err)
	}
}

// TestPacerSleepsForReal checks the real sleep path once: a cancelled
// context ends a long wait.
func TestPacerSleepsForReal(t *testing.T) {
	p := NewPacer(0.001) // one frame per 1000 s
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- p.Wait(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait = %v", err)
		}
	case <-time.After(30 * time.Second): // hang guard
		t.Fatal("Wait did not return after cancel")
	}
}
