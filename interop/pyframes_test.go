package interop_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// TestGoPaddedFramesPythonReader: a Go writer (package producer, in this
// process) publishes frames whose rows are padded (Stride > Width*3) and
// that carry metadata; the Python package's reader (testdata/pyframes.py)
// prints a digest of every image it gets, row padding excluded, and its
// metadata, by copy and in place, in both modes, paced and at full speed
// into a 2-slot ring (torn reads happen). Every frame must be the pattern
// of its number laid out row by row, with its own metadata, and the
// reader's accounts exact. (The command-line programs send packed rows and
// no metadata; this is what the matrix does not cover.)
func TestGoPaddedFramesPythonReader(t *testing.T) {
	py := pyCLI(t)
	script, err := filepath.Abs(filepath.Join("testdata", "pyframes.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		slots        int
		w, h, stride int
		mode, read   string
		count        int
		pace         time.Duration // between frames; 0: as fast as possible (torn reads)
	}{
		{name: "ordered-copy-padded", slots: 16, w: 40, h: 30, stride: 128, mode: "ordered", read: "copy", count: 200, pace: 200 * time.Microsecond},
		{name: "latest-view-padded", slots: 8, w: 64, h: 48, stride: 200, mode: "latest", read: "view", count: 50, pace: 500 * time.Microsecond},
		{name: "ordered-view-2slots", slots: 2, w: 160, h: 120, stride: 512, mode: "ordered", read: "view", count: 300, pace: 100 * time.Microsecond},
		{name: "latest-copy-stress", slots: 2, w: 160, h: 120, mode: "latest", read: "copy", count: 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			stride := c.stride
			if stride == 0 {
				stride = c.w * 3
			}
			frameLen := stride * c.h
			wr, err := producer.Open(name, producer.Options{Dir: dir, Slots: c.slots, MaxFrameBytes: frameLen, MetaBytes: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer wr.Remove()
			r := start(t, prog{path: py.path, env: py.env}, script, dir, name, c.mode, c.read, strconv.Itoa(c.count))
			waitFor(t, "the Python reader to open the ring", func() bool { return strings.HasPrefix(r.stdout(), "ready\n") })

			// Publish pattern frames until the reader exits.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var published uint64
			var pubErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, frameLen)
				for {
					select {
					case <-stop:
						return
					case <-r.done:
						return
					default:
					}
					n := published + 1
					pattern.Fill(buf, n)
					got, err := wr.Publish(ring.FrameInfo{Width: c.w, Height: c.h, Format: ring.BGR8, Stride: stride, Meta: []byte(fmt.Sprintf("m%d", n))}, buf)
					if err != nil || got != n {
						pubErr = fmt.Errorf("Publish = %d, %v; want frame %d", got, err, n)
						return
					}
					published = n
					if c.pace > 0 {
						time.Sleep(c.pace)
					}
				}
			}()
			code := r.wait(t)
			close(stop)
			wg.Wait()
			if code != 0 {
				t.Fatalf("python reader exited %d\nstdout: %s\nstderr: %s", code, r.stdout(), r.stderr())
			}
			if pubErr != nil {
				t.Fatal(pubErr)
			}
			delivered, bad, prev := 0, 0, uint64(0)
			var summary string
			sc := bufio.NewScanner(strings.NewReader(r.stdout()))
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "frame "):
					n, err := checkPythonFrame(line, c.w, c.h, stride)
					if err != nil {
						if bad++; bad <= 5 {
							t.Errorf("the Python reader returned a wrong frame: %v\n  line: %s", err, line)
						}
					}
					if n <= prev {
						t.Errorf("frame %d delivered after frame %d", n, prev)
					}
					prev = n
					delivered++
				case strings.HasPrefix(line, "summary "):
					summary = line
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d frames returned by the Python reader were torn or wrong", bad, delivered)
			}
			res, ok := summaryLine(summary)
			if !ok {
				t.Fatalf("no summary line:\n%s", r.stdout())
			}
			s := res.kv
			if s["delivered"] != uint64(delivered) || delivered != c.count {
				t.Errorf("the Python reader printed %d frames, its summary says %d delivered, it was asked for %d", delivered, s["delivered"], c.count)
			}
			if s["last"] != prev || s["window_start"] != 1 {
				t.Errorf("window %d..%d, want 1..%d (the last frame printed)", s["window_start"], s["last"], prev)
			}
			if got, window := s["delivered"]+s["dropped"], s["last"]-s["window_start"]+1; got != window || s["considered"] != window {
				t.Errorf("accounting: delivered %d + dropped %d = %d, considered %d; window has %d frames", s["delivered"], s["dropped"], got, s["considered"], window)
			}
			if s["corrupt"] != 0 || (c.read == "copy" && s["overwritten"] != 0) {
				t.Errorf("corrupt %d, overwritten %d", s["corrupt"], s["overwritten"])
			}
			t.Logf("published %d; Python %s/%s: %v", published, c.mode, c.read, res)
		})
	}
}

// checkPythonFrame verifies one "frame N ... shape=HxWxC sha256=X meta=Y"
// line against the pattern of frame N (filled over Stride*H bytes, then
// the padding of each row dropped), the metadata "mN" and generation 1.
func checkPythonFrame(line string, w, h, stride int) (uint64, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed line")
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	kv := map[string]string{}
	for _, x := range f[2:] {
		if k, v, ok := strings.Cut(x, "="); ok {
			kv[k] = v
		}
	}
	if want := fmt.Sprintf("%dx%dx3", h, w); kv["shape"] != want || kv["fmt"] != "bgr8" || kv["gen"] != "1" {
		return n, fmt.Errorf("frame %d is %s %s of generation %s, want %s bgr8 of generation 1", n, kv["shape"], kv["fmt"], kv["gen"], want)
	}
	if got, want := kv["sha256"], packedDigest(n, w, h, stride); got != want {
		return n, fmt.Errorf("frame %d pixels differ from the pattern (sha256 %s, want %s)", n, got, want)
	}
	if want := hex.EncodeToString([]byte(fmt.Sprintf("m%d", n))); kv["meta"] != want {
		return n, fmt.Errorf("frame %d metadata %s, want %s", n, kv["meta"], want)
	}
	return n, nil
}

// packedDigest is the sha256 of frame n's pattern with the row padding
// dropped: what an H x W x 3 image of it holds.
func packedDigest(n uint64, w, h, stride int) string {
	full := make([]byte, stride*h)
	pattern.Fill(full, n)
	d := sha256.New()
	for y := 0; y < h; y++ {
		d.Write(full[y*stride : y*stride+w*3])
	}
	return hex.EncodeToString(d.Sum(nil))
}

// TestCheckPythonFrameCatchesTear: the verifier above rejects a frame made
// of two frames' halves, a frame whose padding leaked into the image, and
// foreign metadata, so "0 wrong frames" means something.
func TestCheckPythonFrameCatchesTear(t *testing.T) {
	const w, h, stride = 40, 30, 128
	digest := func(b []byte, rowLen int) string {
		d := sha256.New()
		for y := 0; y < h; y++ {
			d.Write(b[y*stride : y*stride+rowLen])
		}
		return hex.EncodeToString(d.Sum(nil))
	}
	line := func(sum, meta string) string {
		return fmt.Sprintf("frame 7 gen=1 fmt=bgr8 shape=%dx%dx3 sha256=%s meta=%s", h, w, sum, hex.EncodeToString([]byte(meta)))
	}
	a, b := make([]byte, stride*h), make([]byte, stride*h)
	pattern.Fill(a, 7)
	pattern.Fill(b, 11)
	if _, err := checkPythonFrame(line(digest(a, w*3), "m7"), w, h, stride); err != nil {
		t.Fatalf("an intact frame failed the check: %v", err)
	}
	torn := append([]byte(nil), a...)
	copy(torn[stride*h/2:], b[stride*h/2:]) // frame 7's top, frame 11's bottom
	for what, l := range map[string]string{
		"torn":            line(digest(torn, w*3), "m7"),
		"padding kept":    line(digest(a, stride), "m7"),
		"foreign meta":    line(digest(a, w*3), "m11"),
		"wrong shape":     strings.Replace(line(digest(a, w*3), "m7"), "shape=30x40x3", "shape=40x30x3", 1),
		"another frame's": line(digest(b, w*3), "m7"),
		"generation":      strings.Replace(line(digest(a, w*3), "m7"), "gen=1", "gen=2", 1),
	} {
		if _, err := checkPythonFrame(l, w, h, stride); err == nil {
			t.Errorf("%s: a wrong frame passed the check", what)
		}
	}
}
