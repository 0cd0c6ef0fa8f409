package legacy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// framering producer with the mirror -> old C and Python readers, in lock
// step (the test publishes a frame, then asks each reader for one), so the
// old protocol's tears cannot interfere: every frame must be pixel-exact.
func TestMirrorToOldReaders(t *testing.T) {
	c := buildC(t)
	py := python(t)
	dir := testutil.ShmDir(t)
	const w, h, ch = 64, 48, 3
	name := testutil.Name(t)
	leg := "mmaptest_" + name
	m, err := legacy.NewMirror(dir, leg, legacy.MirrorOptions{Width: w, Height: h, Channels: ch})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	pw, err := producer.Open(name, producer.Options{Dir: dir, Slots: 4, MaxWidth: w, MaxHeight: h, Mirror: m})
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Remove()
	path := filepath.Join(dir, leg)
	args := []string{path, strconv.Itoa(w), strconv.Itoa(h), strconv.Itoa(ch)}
	cr := startProc(t, c.reader, args...)
	pr := startProc(t, py, append([]string{"testdata/oldreader.py"}, args...)...)
	cr.expect(t, "ready")
	pr.expect(t, "ready")
	in, _ := shm.StatPath(path)
	buf := make([]byte, w*h*ch)
	for f := uint64(1); f <= 40; f++ {
		pattern.Fill(buf, f)
		if _, err := pw.Publish(ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8}, buf); err != nil {
			t.Fatal(err)
		}
		if err := pw.MirrorErr(); err != nil {
			t.Fatalf("mirror: %v", err)
		}
		before := time.Now().UnixMilli()
		for _, p := range []struct {
			p    *proc
			want string
		}{{cr, crc32c(buf)}, {pr, sha(buf)}} {
			fmt.Fprintln(p.p.in)
			fields := strings.Fields(p.p.expect(t, "frame "))
			if len(fields) != 4 {
				t.Fatalf("reader line %q", fields)
			}
			if fields[1] != strconv.FormatUint(f, 10) || fields[3] != p.want {
				t.Fatalf("%s read frame %s with digest %s, want frame %d with %s", filepath.Base(p.p.cmd.Path), fields[1], fields[3], f, p.want)
			}
			if ts, _ := strconv.ParseInt(fields[2], 10, 64); ts > before || ts < before-10_000 {
				t.Errorf("timestamp %d ms, want about %d (wall clock ms)", ts, before)
			}
		}
	}
	if after, _ := shm.StatPath(path); after.Inode != in.Inode {
		t.Errorf("mirror object inode changed from %d to %d; old readers would lose it", in.Inode, after.Inode)
	}
	if st := m.Stats(); st.Mirrored != 40 {
		t.Errorf("mirror stats %+v, want 40 mirrored", st)
	}
}

// readRing reads frames from the ring until stop says so, checking every
// one against the pattern: any frame that mixes two legacy frames fails.
func readRing(t *testing.T, ctx context.Context, r *consumer.Reader, stop func(n uint64) bool) []uint64 {
	t.Helper()
	var got []uint64
	buf := make([]byte, r.Geometry().PayloadCap)
	for {
		f, err := r.Read(ctx, buf)
		if err != nil {
			t.Fatalf("ring read after %d frames: %v", len(got), err)
		}
		n, err := pattern.Verify(f.Data)
		if err == nil {
			err = pattern.Check(f.Data, n)
		}
		if err != nil {
			t.Fatalf("ring frame %d (after legacy frames %v): torn or corrupt frame accepted: %v", f.Number, tail(got), err)
		}
		if len(got) > 0 && n <= got[len(got)-1] {
			t.Fatalf("legacy frame %d published after %d: duplicate or out of order", n, got[len(got)-1])
		}
		got = append(got, n)
		if stop(n) {
			return got
		}
	}
}

func tail(s []uint64) []uint64 { return s[max(0, len(s)-3):] }

// startIngest runs legacy.Ingest in a goroutine and returns a ring reader
// of its output and a function that stops it and returns its result.
func startIngest(t *testing.T, dir, leg, name string, ro legacy.ReaderOptions) (*consumer.Reader, func() legacy.IngestStats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		st  legacy.IngestStats
		err error
	}
	res := make(chan result, 1)
	go func() {
		st, err := legacy.Ingest(ctx, legacy.IngestOptions{Dir: dir, Name: leg, Ring: name, Reader: ro, Producer: producer.Options{Dir: dir, Slots: 64}})
		res <- result{st, err}
	}()
	r, err := consumer.OpenWait(timeout(t, 20*time.Second), name, consumer.Options{Dir: dir, StartAt: consumer.Oldest})
	if err != nil {
		cancel()
		t.Fatalf("ingest ring: %v (ingest: %v)", err, func() error { r := <-res; return r.err }())
	}
	t.Cleanup(func() { r.Close() })
	var once bool
	var out legacy.IngestStats
	stop := func() legacy.IngestStats {
		if once {
			return out
		}
		once = true
		cancel()
		rr := <-res
		if rr.err != nil {
			t.Errorf("ingest: %v", rr.err)
		}
		out = rr.st
		return out
	}
	t.Cleanup(func() { stop() })
	return r, stop
}

// old C writer at full speed -> Ingest -> framering consumer: every frame
// pixel-exact, each once, in order; the old writer's tears never pass.
func TestIngestFromOldCWriter(t *testing.T) {
	c := buildC(t)
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	leg := "mmaptest_" + name
	const w, h, ch = 320, 240, 3
	wr := startProc(t, c.writer, filepath.Join(dir, leg), strconv.Itoa(w), strconv.Itoa(h), strconv.Itoa(ch), "0", "0")
	wr.expect(t, "ready")
	// Poll often, so that many copies overlap the writer's writes.
	r, stop := startIngest(t, dir, leg, name, legacy.ReaderOptions{Poll: 20 * time.Microsecond})
	got := readRing(t, timeout(t, 60*time.Second), r, func(uint64) bool { return r.Stats().Delivered >= 300 })
	st := stop()
	t.Logf("ingest: %d legacy frames published, last %d, reader %+v (torn copies refused: %d)", st.Published, got[len(got)-1], st.Reader, st.Reader.Torn)
	if st.Published < uint64(len(got)) {
		t.Errorf("ingest published %d frames, the ring reader got %d", st.Published, len(got))
	}
}

// The old writer restarts (unlink + recreate, new inode) mid-run: ingest
// follows it to the new object.
func TestIngestSurvivesOldWriterRestart(t *testing.T) {
	c := buildC(t)
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	leg := "mmaptest_" + name
	wr := startProc(t, c.writer, filepath.Join(dir, leg), "64", "48", "3", "500", "0")
	wr.expect(t, "ready")
	r, stop := startIngest(t, dir, leg, name, legacy.ReaderOptions{})
	ctx := timeout(t, 60*time.Second)
	readRing(t, ctx, r, func(uint64) bool { return r.Stats().Delivered >= 30 })
	in1, _ := shm.StatPath(filepath.Join(dir, leg))
	if err := wr.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	line := wr.expect(t, "restarted ")
	from, _ := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
	in2, _ := shm.StatPath(filepath.Join(dir, leg))
	if in1.Inode == in2.Inode {
		t.Fatalf("the old writer's restart kept inode %d; the test needs a new one", in1.Inode)
	}
	got := readRing(t, ctx, r, func(n uint64) bool { return n >= from+30 })
	st := stop()
	if st.Reader.Reopens < 1 {
		t.Errorf("reader stats %+v: want at least one re-open", st.Reader)
	}
	t.Logf("restart before frame %d; ring got up to %d; reader %+v", from, got[len(got)-1], st.Reader)
}

// Bad headers and short objects: a clear error, no crash.
func TestReaderBadInput(t *testing.T) {
	dir := testutil.ShmDir(t)
	for _, c := range []struct {
		name     string
		w, h, ch int32
		size     int64
		want     string
	}{
		{"negative-width", -640, 404, 3, 24 + 640*404*3, "width and height"},
		{"negative-height", 640, -1, 3, 24 + 640*404*3, "width and height"},
		{"huge-width", 1 << 30, 404, 3, 1 << 20, "width and height"},
		{"huge-height", 640, 1<<31 - 1, 3, 1 << 20, "width and height"},
		{"zero-channels", 640, 404, 0, 24 + 640*404*3, "channels"},
		{"negative-channels", 640, 404, -3, 24 + 640*404*3, "channels"},
		{"huge-channels", 640, 404, 1 << 30, 24 + 640*404*3, "channels"},
		{"object-too-small", 640, 404, 3, 24 + 640*404*3 - 1, "object has only"},
		{"header-only", 640, 404, 3, 24, "object has only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			leg := "mmaptest_" + testutil.Name(t)
			path := filepath.Join(dir, leg)
			writeObject(t, path, c.size, c.w, c.h, c.ch)
			r, err := legacy.NewReader(dir, leg, legacy.ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.Read(timeout(t, 10*time.Second), nil)
			if !errors.Is(err, legacy.ErrCorrupt) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), leg) {
				t.Fatalf("Read = %v; want ErrCorrupt naming the object and saying %q", err, c.want)
			}
			t.Logf("error: %v", err)
			// The old reader refuses too (it maps exactly what it expects).
			if o, err := legacy.NewOldReader(dir, leg, 640, 404, 3); err == nil {
				_, _, err = o.TryRead(make([]byte, 640*404*3))
				o.Close()
				if err == nil {
					t.Errorf("old reader accepted the object")
				}
			}
		})
	}
}

// A valid object that shrinks under the reader: an error, then recovery
// when it is valid again.
func TestReaderObjectShrinks(t *testing.T) {
	dir := testutil.ShmDir(t)
	leg := "mmaptest_" + testutil.Name(t)
	path := filepath.Join(dir, leg)
	writeObject(t, path, 24+16*16*3, 16, 16, 3)
	r, err := legacy.NewReader(dir, leg, legacy.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.Read(timeout(t, 10*time.Second), nil)
	if err != nil || f.Width != 16 || len(f.Pixels) != 16*16*3 {
		t.Fatalf("first read = %+v, %v", f, err)
	}
	fh, err := shm.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := fh.Truncate(100); err != nil {
		t.Fatal(err)
	}
	_, err = r.Read(timeout(t, 10*time.Second), nil)
	if !errors.Is(err, legacy.ErrCorrupt) && !errors.Is(err, legacy.ErrTruncated) {
		t.Fatalf("read of a shrunk object = %v; want ErrCorrupt or ErrTruncated", err)
	}
	t.Logf("error: %v", err)
}

// writeObject makes a legacy object of size bytes with the given header,
// frame_valid = 1 and a pattern in the pixels that fit.
func writeObject(t *testing.T, path string, size int64, w, h, c int32) {
	t.Helper()
	f, err := shm.Create(path, size, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	putLE(b[0:], uint64(uint32(w)), 4)
	putLE(b[4:], uint64(uint32(h)), 4)
	putLE(b[8:], uint64(uint32(c)), 4)
	putLE(b[12:], uint64(time.Now().UnixMilli()), 8)
	putLE(b[20:], 1, 4)
	if len(b) > 24+pattern.HeaderLen {
		pattern.Fill(b[24:], 7)
	}
	if _, err := f.OSFile().WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

func putLE(b []byte, v uint64, n int) {
	for i := 0; i < n; i++ {
		b[i] = byte(v >> (8 * i))
	}
}
