package producer_test

// The reference Python reader (examples/python/framering_read.py, written
// from docs/PROTOCOL.md alone) against a Go writer: the segment a producer
// writes is the one the protocol describes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
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

const systemPython = "/usr/bin/python3"

// pythonReader returns the path of the reference Python reader, or skips
// the test if Debian's python3 with numpy is missing.
func pythonReader(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("short mode: skipping the Python cross-check")
	}
	if out, err := exec.Command(systemPython, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("skipping the Python cross-check: %s with numpy is not available (%v: %s); install python3-numpy", systemPython, err, bytes.TrimSpace(out))
	}
	script, err := filepath.Abs(filepath.Join("..", "examples", "python", "framering_read.py"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("reference reader: %v", err)
	}
	return script
}

// TestPythonReader runs examples/python/framering_read.py, written from
// docs/PROTOCOL.md, against a Go producer, and checks every frame it
// returns pixel by pixel, plus its drop accounting.
func TestPythonReader(t *testing.T) {
	script := pythonReader(t)
	for _, c := range []struct {
		name         string
		slots        int
		w, h, stride int
		mode         string
		count        int
		pace         time.Duration // between frames; 0: as fast as possible (provokes torn reads)
		extra        []string
	}{
		{name: "ordered-padded-futex", slots: 16, w: 40, h: 30, stride: 128, mode: "ordered", count: 200, pace: 200 * time.Microsecond},
		{name: "ordered-poll", slots: 8, w: 64, h: 48, mode: "ordered", count: 50, pace: 500 * time.Microsecond, extra: []string{"--poll"}},
		{name: "latest-stress", slots: 2, w: 160, h: 120, mode: "latest", count: 300},
		{name: "ordered-stress", slots: 2, w: 160, h: 120, mode: "ordered", count: 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			runPythonReader(t, script, c.slots, c.w, c.h, c.stride, c.mode, c.count, c.pace, c.extra)
		})
	}
}

func runPythonReader(t *testing.T, script string, slots, w, h, stride int, mode string, count int, pace time.Duration, extra []string) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	if stride == 0 {
		stride = w * 3
	}
	frameLen := stride * h
	wr, err := producer.Open(name, producer.Options{Dir: dir, Slots: slots, MaxFrameBytes: frameLen, MetaBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Remove()

	// Hang guard only: the child is killed if it runs far longer than needed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{script, "--dir", dir, "--mode", mode, "--count", strconv.Itoa(count), "--timeout", "30", "--hash"}, extra...)
	cmd := exec.CommandContext(ctx, systemPython, append(args, name)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ready ") {
		cmd.Wait()
		t.Fatalf("python reader did not start: %q; stderr:\n%s", sc.Text(), stderr.String())
	}
	t.Logf("python: %s", sc.Text())

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
			default:
			}
			n := published + 1
			pattern.Fill(buf, n)
			got, err := wr.Publish(ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8, Stride: stride, Meta: []byte(fmt.Sprintf("m%d", n))}, buf)
			if err != nil {
				pubErr = err
				return
			}
			if got != n {
				pubErr = fmt.Errorf("published frame %d, want number %d", got, n)
				return
			}
			published = n
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	}()

	var delivered, bad int
	var summary string
	prev := uint64(0)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "frame "):
			n, err := checkPythonFrame(line, w, h, stride)
			if err != nil {
				bad++
				if bad <= 5 {
					t.Errorf("python returned a wrong frame: %v\n  line: %s", err, line)
				}
			}
			if n <= prev {
				t.Errorf("frame %d delivered after frame %d", n, prev)
			}
			prev = n
			delivered++
		case strings.HasPrefix(line, "summary "):
			summary = line
		default:
			t.Logf("python: %s", line)
		}
	}
	close(stop)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python reader: %v; stderr:\n%s", err, stderr.String())
	}
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	if bad > 0 {
		t.Fatalf("%d of %d frames returned by the Python reader were torn or wrong", bad, delivered)
	}
	st := parsePythonSummary(t, summary)
	if st["delivered"] != uint64(delivered) || delivered != count {
		t.Errorf("python delivered %d frames (summary says %d), asked for %d", delivered, st["delivered"], count)
	}
	if st["last"] != prev {
		t.Errorf("summary last=%d, last frame printed %d", st["last"], prev)
	}
	window := st["last"] - st["window_start"] + 1
	if got := st["delivered"] + st["lapped"] + st["skipped"]; got != window {
		t.Errorf("accounting: delivered %d + lapped %d + skipped %d = %d, window %d..%d has %d frames",
			st["delivered"], st["lapped"], st["skipped"], got, st["window_start"], st["last"], window)
	}
	t.Logf("published %d, python delivered %d, lapped %d, skipped %d, torn reads retried %d, wrong frames 0",
		published, st["delivered"], st["lapped"], st["skipped"], st["retries"])
}

// checkPythonFrame verifies one "frame N ... sha256=X meta=Y" line against
// the pattern of frame N, with padded rows stripped.
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
	if want := fmt.Sprintf("%dx%dx3", h, w); kv["shape"] != want {
		return n, fmt.Errorf("shape %s, want %s", kv["shape"], want)
	}
	full := make([]byte, stride*h)
	pattern.Fill(full, n)
	packed := make([]byte, 0, w*h*3)
	for y := 0; y < h; y++ {
		packed = append(packed, full[y*stride:y*stride+w*3]...)
	}
	sum := sha256.Sum256(packed)
	if got := kv["sha256"]; got != hex.EncodeToString(sum[:]) {
		return n, fmt.Errorf("frame %d pixels differ from the pattern (sha256 %s)", n, got)
	}
	if want := hex.EncodeToString([]byte(fmt.Sprintf("m%d", n))); kv["meta"] != want {
		return n, fmt.Errorf("frame %d metadata %s, want %s", n, kv["meta"], want)
	}
	return n, nil
}

// TestCheckPythonFrameCatchesTear shows that the verifier used above
// rejects a frame made of two frames' halves, so "0 wrong frames" means
// something.
func TestCheckPythonFrameCatchesTear(t *testing.T) {
	const w, h, stride = 40, 30, 128
	a, b := make([]byte, stride*h), make([]byte, stride*h)
	pattern.Fill(a, 7)
	pattern.Fill(b, 11)
	copy(a[stride*h/2:], b[stride*h/2:]) // frame 7's top, frame 11's bottom
	var packed []byte
	for y := 0; y < h; y++ {
		packed = append(packed, a[y*stride:y*stride+w*3]...)
	}
	sum := sha256.Sum256(packed)
	line := fmt.Sprintf("frame 7 gen=1 bgr8 shape=%dx%dx3 age_us=1 sha256=%s meta=%s", h, w, hex.EncodeToString(sum[:]), hex.EncodeToString([]byte("m7")))
	if _, err := checkPythonFrame(line, w, h, stride); err == nil {
		t.Fatal("a torn frame passed the check")
	}
	pattern.Fill(a, 7)
	packed = packed[:0]
	for y := 0; y < h; y++ {
		packed = append(packed, a[y*stride:y*stride+w*3]...)
	}
	sum = sha256.Sum256(packed)
	line = fmt.Sprintf("frame 7 gen=1 bgr8 shape=%dx%dx3 age_us=1 sha256=%s meta=%s", h, w, hex.EncodeToString(sum[:]), hex.EncodeToString([]byte("m7")))
	if _, err := checkPythonFrame(line, w, h, stride); err != nil {
		t.Fatalf("an intact frame failed the check: %v", err)
	}
}

// TestPythonReaderWriterRestart closes the writer under the Python reader
// (which must notice through F_OFD_GETLK), reopens it, and checks that the
// reader resumes with the next frame numbers and the new generation.
func TestPythonReaderWriterRestart(t *testing.T) {
	script := pythonReader(t)
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	const w, h = 16, 8
	opts := producer.Options{Dir: dir, Slots: 8, MaxFrameBytes: w * h * 3, MetaBytes: 64}
	wr, err := producer.Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { wr.Remove() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, script, "--dir", dir, "--count", "6", "--timeout", "30", "--hash", name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	next := func(prefix string) string {
		t.Helper()
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				return sc.Text()
			}
			t.Logf("python: %s", sc.Text())
		}
		t.Fatalf("python reader ended before a %q line; stderr:\n%s", prefix, stderr.String())
		return ""
	}
	next("ready ")
	buf := make([]byte, w*h*3)
	publish := func(n uint64) {
		t.Helper()
		pattern.Fill(buf, n)
		got, err := wr.Publish(ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8, Meta: []byte(fmt.Sprintf("m%d", n))}, buf)
		if err != nil || got != n {
			t.Fatalf("Publish = %d, %v; want %d", got, err, n)
		}
	}
	for n := uint64(1); n <= 3; n++ {
		publish(n)
		line := next("frame ")
		if got, err := checkPythonFrame(line, w, h, w*3); err != nil || got != n || !strings.Contains(line, " gen=1 ") {
			t.Fatalf("frame line %q: number %d, %v; want frame %d of generation 1", line, got, err, n)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	if line := next("gone "); !strings.Contains(line, "exited or closed") {
		t.Errorf("gone line %q does not say the writer exited or closed", line)
	}
	wr, err = producer.Open(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(4); n <= 6; n++ {
		publish(n)
		line := next("frame ")
		if got, err := checkPythonFrame(line, w, h, w*3); err != nil || got != n || !strings.Contains(line, " gen=2 ") {
			t.Fatalf("frame line %q: number %d, %v; want frame %d of generation 2", line, got, err, n)
		}
	}
	st := parsePythonSummary(t, next("summary "))
	if st["delivered"] != 6 || st["writer_gone"] != 1 || st["lapped"]+st["skipped"] != 0 {
		t.Errorf("summary %v; want 6 delivered, 1 writer-gone, no drops", st)
	}
}

func parsePythonSummary(t *testing.T, line string) map[string]uint64 {
	t.Helper()
	if line == "" {
		t.Fatal("python reader printed no summary")
	}
	m := map[string]uint64{}
	for _, x := range strings.Fields(line)[1:] {
		k, v, _ := strings.Cut(x, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("summary %q: %v", line, err)
		}
		m[k] = n
	}
	return m
}
