package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// readAsync runs r.Read(ctx) in a goroutine; the test receives its result
// with a hang guard.
func readAsync(r *consumer.Reader, ctx context.Context) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		f, err := r.Read(ctx, nil)
		ch <- readResult{f, err}
	}()
	return ch
}

type readResult struct {
	f   ring.Frame
	err error
}

// A slot whose Seq stays odd while no writer runs (a writer crashed
// mid-frame and nobody took over, or a damaged file): the read does not
// spin; after the bounded retries it finds the writer gone, counts the
// frame corrupt and moves on. No deadline on the context: only the bound
// ends the retries.
func TestStuckOddSlotNoWriter(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64)
	publishN(t, w, 3, 64)
	g, path := w.Geometry(), w.Path()
	w.Close()
	seq := testutil.ReadLE64(t, path, layout.SlotFileOffset(g, 2)+layout.OffsetSlotSeq)
	testutil.WriteLE64(t, path, layout.SlotFileOffset(g, 2)+layout.OffsetSlotSeq, seq+1) // frame 2's slot: odd
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Oldest})

	res := testutil.Receive(t, readAsync(r, context.Background()), "read of frame 1")
	if res.err != nil || res.f.Number != 1 {
		t.Fatalf("first read: frame %d, %v", res.f.Number, res.err)
	}
	res = testutil.Receive(t, readAsync(r, context.Background()), "read of the stuck frame 2")
	if !errors.Is(res.err, ring.ErrCorrupt) || !strings.Contains(res.err.Error(), "frame 2") {
		t.Fatalf("read of a slot stuck odd with no writer = %v, want ErrCorrupt naming frame 2", res.err)
	}
	res = testutil.Receive(t, readAsync(r, context.Background()), "read of frame 3")
	if res.err != nil || res.f.Number != 3 {
		t.Fatalf("read after the stuck slot: frame %d, %v; want frame 3", res.f.Number, res.err)
	}
	st := r.Stats()
	if st.Delivered != 2 || st.Corrupt != 1 || st.Dropped() != 1 || st.Considered != 3 {
		t.Errorf("stats: %+v; want 2 delivered, 1 corrupt, 3 considered", st)
	}
	if st.Retries != consumer.TornBound {
		t.Errorf("%d retries, want exactly the bound %d", st.Retries, consumer.TornBound)
	}
}

// The same slot with a live writer (idle, its lock held, heartbeat fresh):
// the read sleeps on the futex between attempts instead of spinning, and
// returns at the deadline, at Close, and once the writer laps the frame.
func TestStuckOddSlotLiveWriter(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64) // 4 slots
	publishN(t, w, 3, 64)
	g, path := w.Geometry(), w.Path()
	seq := testutil.ReadLE64(t, path, layout.SlotFileOffset(g, 2)+layout.OffsetSlotSeq)
	testutil.WriteLE64(t, path, layout.SlotFileOffset(g, 2)+layout.OffsetSlotSeq, seq+1)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Oldest, WaitSlice: hourSlice})
	if f, err := r.Read(t.Context(), nil); err != nil || f.Number != 1 {
		t.Fatalf("first read: frame %d, %v", f.Number, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := testutil.Receive(t, readAsync(r, ctx), "read of the stuck frame with a deadline")
	if !errors.Is(res.err, context.DeadlineExceeded) {
		t.Fatalf("read of a stuck slot under a live writer = %v, want DeadlineExceeded", res.err)
	}
	_, waits, _ := r.WaitCounts()
	st := r.Stats()
	if waits == 0 || st.Retries > consumer.TornBound+waits {
		t.Errorf("%d retries and %d futex waits: after the bound every retry must sleep", st.Retries, waits)
	}
	if st.Corrupt != 0 {
		t.Errorf("a live writer's slot counted corrupt: %+v", st)
	}

	// The writer laps the frame: the read goes on with what is in the ring.
	done := readAsync(r, context.Background())
	publishN(t, w, 4, 64) // frames 4..7: frame 2's slot is frame 6's now
	res = testutil.Receive(t, done, "read after the writer lapped the stuck frame")
	if res.err != nil || res.f.Number <= 2 {
		t.Fatalf("read after the lap: frame %d, %v", res.f.Number, res.err)
	}
	if st := r.Stats(); st.Delivered+st.Dropped() != st.Considered {
		t.Errorf("accounting: %+v", st)
	}
}

// Head near 2^64: a read fails with ErrCorrupt at once and counts
// nothing; the next read waits (futex, one slice) before failing again,
// so a caller that reads on does not spin; a sane head is read again.
func TestAbsurdHead(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64)
	publishN(t, w, 3, 64)
	path := w.Path()
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: 5 * time.Millisecond})
	testutil.WriteLE64(t, path, layout.OffsetHead, 1<<64-2)

	for i := 0; i < 3; i++ {
		res := testutil.Receive(t, readAsync(r, context.Background()), "read with an absurd head")
		if !errors.Is(res.err, ring.ErrCorrupt) || !strings.Contains(res.err.Error(), "2^63") {
			t.Fatalf("read %d with head 2^64-2 = %v, want ErrCorrupt", i, res.err)
		}
		if _, waits, _ := r.WaitCounts(); waits != uint64(i) {
			t.Errorf("after %d failed reads: %d futex waits, want %d (each repeat waits once)", i+1, waits, i)
		}
	}
	if st := r.Stats(); st.Delivered+st.Dropped() != 0 || st.Considered != 0 {
		t.Errorf("an absurd head was counted: %+v", st)
	}
	// Opening the ring in that state is refused too.
	if _, err := consumer.Open(name, consumer.Options{Dir: dir}); !errors.Is(err, ring.ErrCorrupt) {
		t.Errorf("Open with head 2^64-2 = %v, want ErrCorrupt", err)
	}
	// The writer's next commit stores a sane head again.
	done := readAsync(r, context.Background())
	publishN(t, w, 1, 64)
	if res := testutil.Receive(t, done, "read after the head is sane"); res.err != nil || res.f.Number != 4 {
		t.Fatalf("read after the head came back: frame %d, %v", res.f.Number, res.err)
	}
}

// A head far ahead of the frames in the slots (it is not backed by them)
// is refused before the reader counts a whole ring of frames as lapped
// that were never published.
func TestUnbackedHead(t *testing.T) {
	for _, mode := range []consumer.Mode{consumer.Ordered, consumer.Latest} {
		t.Run(mode.String(), func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			w := writerWith(t, dir, name, producer.Options{Slots: 8, MaxFrameBytes: 64})
			publishN(t, w, 3, 64)
			r := openReader(t, dir, name, consumer.Options{Mode: mode, StartAt: consumer.Next, WaitSlice: time.Millisecond})
			// Frame 1001's slot (1) holds frame 1.
			testutil.WriteLE64(t, w.Path(), layout.OffsetHead, 1001)
			res := testutil.Receive(t, readAsync(r, context.Background()), "read with an unbacked head")
			if !errors.Is(res.err, ring.ErrCorrupt) || !strings.Contains(res.err.Error(), "not backed") {
				t.Fatalf("read with head 1001 over frames 1..3 = %v, want ErrCorrupt", res.err)
			}
			if st := r.Stats(); st.Lapped != 0 || st.Skipped != 0 || st.Considered != 0 {
				t.Errorf("frames counted for an unbacked head: %+v", st)
			}
		})
	}
}

// A head a little ahead of the slots (not a whole ring): each frame whose
// slot holds an older frame is reported corrupt, counted once, and
// skipped; nothing spins and the accounting holds.
func TestHeadAheadOfSlots(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := writerWith(t, dir, name, producer.Options{Slots: 8, MaxFrameBytes: 64})
	publishN(t, w, 3, 64)
	path := w.Path()
	w.Close()
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next})
	testutil.WriteLE64(t, path, layout.OffsetHead, 10) // frames 4..8 empty slots, 9 and 10 hold 1 and 2
	var corrupt int
	for {
		res := testutil.Receive(t, readAsync(r, context.Background()), "read with a head ahead of the slots")
		if errors.Is(res.err, ring.ErrWriterGone) {
			break
		}
		if !errors.Is(res.err, ring.ErrCorrupt) {
			t.Fatalf("read = frame %d, %v; want ErrCorrupt or ErrWriterGone", res.f.Number, res.err)
		}
		corrupt++
	}
	st := r.Stats()
	if corrupt != 2 || st.Corrupt != 2 || st.Lapped != 5 || st.Considered != 7 || st.Delivered+st.Dropped() != st.Considered {
		t.Errorf("%d corrupt reads, stats %+v; want frames 9 and 10 corrupt, 4..8 lapped", corrupt, st)
	}
}

// A ring removed and created again from scratch under the same name
// restarts its numbering: the reader counts one reset, closes its window
// and opens a new one at the oldest frame of the new numbering (D4).
// Delivered + Dropped() == Considered holds across both windows.
func TestResetOpensNewWindow(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	o := producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: 64}
	w1, err := producer.Open(name, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w1.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("old"))
	}
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Oldest, WaitSlice: time.Millisecond})
	var got []uint64
	for len(got) < 4 { // frames 7..10
		f, err := r.Read(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Number)
	}
	w1.Remove()
	w2 := writerWith(t, dir, name, o) // a new ring: frames 1, 2, 3
	for i := 0; i < 3; i++ {
		w2.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("new"))
	}
	for len(got) < 7 {
		res := testutil.Receive(t, readAsync(r, context.Background()), "read across the reset")
		if errors.Is(res.err, ring.ErrWriterGone) {
			continue
		}
		if res.err != nil {
			t.Fatal(res.err)
		}
		got = append(got, res.f.Number)
	}
	if fmt.Sprint(got) != "[7 8 9 10 1 2 3]" {
		t.Errorf("frames %v, want [7 8 9 10 1 2 3]", got)
	}
	st := r.Stats()
	if st.Resets != 1 || st.WindowStart != 1 || st.Last != 3 || st.Considered != 7 || st.Delivered != 7 || st.Dropped() != 0 {
		t.Errorf("stats across a reset: %+v", st)
	}
}
