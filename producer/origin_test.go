package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// TestPublishFrom republishes frames under their own numbers and publish
// times, as a bridge does: the numbers skipped count as dropped for an
// ordered reader, a number that goes back is refused, and the reader's
// frame carries the origin's publish time.
func TestPublishFrom(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 16, Slots: 4})
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Oldest})
	r = testutil.Closing(t, r, err)
	info := ring.FrameInfo{Format: ring.Raw, Len: 1}
	origin := ring.Now() - int64(250*time.Millisecond)
	wall := time.Unix(1700000000, 123)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // hang guard
	defer cancel()
	read := func(want uint64) ring.Frame {
		t.Helper()
		f, err := r.Read(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.Number != want || f.Data[0] != byte(want) {
			t.Fatalf("read frame %d holding %d, want frame %d", f.Number, f.Data[0], want)
		}
		return f
	}
	// 1 (the next number), 3 (2 skipped), 9 (4..8 skipped, more than the 4 slots), then 10 by Publish.
	for _, o := range []producer.Origin{{}, {Number: 3, Published: origin, Wall: wall}, {Number: 9}} {
		n, err := w.PublishFrom(info, []byte{byte(max(o.Number, 1))}, o)
		if err != nil {
			t.Fatal(err)
		}
		f := read(n)
		if n == 3 && (f.Published != origin || !f.Wall.Equal(wall)) {
			t.Errorf("frame 3 published %d wall %v, want the origin's %d %v", f.Published, f.Wall, origin, wall)
		}
		if n != 3 && f.Wall.Equal(wall) {
			t.Errorf("frame %d carries frame 3's wall clock", n)
		}
	}
	if _, err := w.PublishFrom(info, []byte{1}, producer.Origin{Number: 5}); !errors.Is(err, ring.ErrInvalidFrame) {
		t.Fatalf("PublishFrom with a number below the next one = %v, want ErrInvalidFrame", err)
	}
	if _, err := w.PublishFrom(info, []byte{1}, producer.Origin{Published: ring.Now() + int64(time.Hour)}); !errors.Is(err, ring.ErrInvalidFrame) {
		t.Fatalf("PublishFrom with a publish time in the future = %v, want ErrInvalidFrame", err)
	}
	n, err := w.Publish(info, []byte{10})
	if err != nil || n != 10 {
		t.Fatalf("Publish after PublishFrom(9) = %d, %v; want frame 10", n, err)
	}
	read(10)
	// Delivered 1, 3, 9, 10; the six numbers never published count as dropped.
	st := r.Stats()
	if st.Delivered != 4 || st.Dropped() != 6 || st.WindowStart != 1 || st.Last != 10 {
		t.Fatalf("reader stats: delivered %d dropped %d window %d..%d; want 4, 6, 1..10", st.Delivered, st.Dropped(), st.WindowStart, st.Last)
	}
	if w.Stats().Frames != 4 {
		t.Fatalf("writer published %d frames, want 4", w.Stats().Frames)
	}
}

// TestPublishFromEmptiesSkippedSlots checks that skipping numbers leaves no
// older frame in the slot of a skipped number: PROTOCOL.md's readers (C,
// Python) take a slot of frame n <= Head holding an older frame for an
// absurd head (corrupt), and a takeover would take the newest frame for a
// stray write. The Python reader, started at the oldest frame, must count
// the skipped numbers as lost.
func TestPublishFromEmptiesSkippedSlots(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	const slots = 4
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 16, Slots: slots})
	info := ring.FrameInfo{Format: ring.Raw, Len: 1}
	check := func(head uint64) {
		t.Helper()
		seg := w.Segment()
		if h := seg.Head().Load(); h != head {
			t.Fatalf("head %d, want %d", h, head)
		}
		for i := uint64(0); i < slots; i++ {
			if f := seg.Slot(i).FrameNo; f != 0 && (f > head || f+slots <= head) {
				t.Errorf("after frame %d, slot %d holds frame %d: not one of the last %d numbers", head, i, f, slots)
			}
		}
	}
	for i := 1; i <= 4; i++ {
		if _, err := w.Publish(info, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// 6 skips 5, whose slot holds frame 1; 11 skips 7..10, whose slots hold 3, 4, 5 (empty), 6.
	for _, n := range []uint64{6, 11} {
		if _, err := w.PublishFrom(info, []byte{byte(n)}, producer.Origin{Number: n}); err != nil {
			t.Fatal(err)
		}
		check(n)
	}
	const python = "/usr/bin/python3" // Debian's, with numpy (python/README.md)
	if _, err := exec.Command(python, "-c", "import numpy").CombinedOutput(); err != nil || testing.Short() {
		t.Skip("the Python cross-check needs /usr/bin/python3 with numpy (and no -short)")
	}
	pkg, err := filepath.Abs(filepath.Join("..", "python"))
	if err != nil {
		t.Fatal(err)
	}
	// Oldest: frame 8 (Head - N + 1). 8, 9, 10 were skipped: lost; 11 is delivered.
	script := `import json, sys, framering
r = framering.Reader(sys.argv[1], dir=sys.argv[2], start="oldest")
f = r.read(timeout=10)
d = r.stats.as_dict(); d["number"] = f.number
print(json.dumps(d))`
	cmd := exec.CommandContext(t.Context(), python, "-c", script, name, dir)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pkg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Python reader: %v\n%s", err, stderr.String())
	}
	var got struct {
		Number, Delivered, Lapped, Corrupt, WindowStart uint64
	}
	var raw map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("Python reader said %q: %v", out, err)
	}
	for k, p := range map[string]*uint64{"number": &got.Number, "delivered": &got.Delivered, "lapped": &got.Lapped, "corrupt": &got.Corrupt, "window_start": &got.WindowStart} {
		v, ok := raw[k].(float64)
		if !ok {
			t.Fatalf("Python reader's stats lack %s: %s", k, out)
		}
		*p = uint64(v)
	}
	if got.Number != 11 || got.Delivered != 1 || got.Lapped != 3 || got.Corrupt != 0 || got.WindowStart != 8 {
		t.Fatalf("Python reader from the oldest frame: %s; want frame 11, delivered 1, lapped 3 (8, 9, 10), corrupt 0, window from 8", out)
	}
}

// TestReserveFrom fills a loan for a frame first published elsewhere: it
// publishes under the origin's number and times, an aborted one leaves its
// number to the next frame, and a number that goes back is refused.
func TestReserveFrom(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 16, MetaBytes: 16, Slots: 4})
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
	r = testutil.Closing(t, r, err)
	info := ring.FrameInfo{Format: ring.Raw, Len: 2}
	origin := ring.Now() - int64(time.Second)
	wall := time.Unix(1700000000, 0)
	l, err := w.ReserveFrom(info, producer.Origin{Number: 7, Published: origin, Wall: wall})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	if l.Number() != 7 || len(l.Data()) != 2 {
		t.Fatalf("loan of frame %d with %d bytes, want frame 7 with 2", l.Number(), len(l.Data()))
	}
	l.Abort()
	if _, err := w.ReserveFrom(info, producer.Origin{Number: 6}); !errors.Is(err, ring.ErrInvalidFrame) {
		t.Fatalf("ReserveFrom(6) after an aborted 7 = %v, want ErrInvalidFrame", err)
	}
	l, err = w.ReserveFrom(info, producer.Origin{Number: 7, Published: origin, Wall: wall})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort() // if the test fails before Commit: Close waits for an open loan
	copy(l.Data(), "ab")
	if _, err := l.Meta().Write([]byte("m")); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // hang guard
	defer cancel()
	f, err := r.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Number != 7 || string(f.Data) != "ab" || string(f.Meta) != "m" || f.Published != origin || !f.Wall.Equal(wall) {
		t.Fatalf("read frame %d %q meta %q published %d wall %v; want frame 7 \"ab\" meta \"m\" published %d wall %v",
			f.Number, f.Data, f.Meta, f.Published, f.Wall, origin, wall)
	}
	if st := r.Stats(); st.Delivered != 1 || st.Dropped() != 6 {
		t.Fatalf("reader: delivered %d dropped %d, want 1 and 6 (frames 1..6 never published)", st.Delivered, st.Dropped())
	}
}
