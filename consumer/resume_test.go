package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// When a reader resumes on the same file after the writer was gone
// (PROTOCOL.md §10): these tests hold the OFD write lock themselves, as a
// new writer does while it prefaults the file before its takeover, or
// builds a replacement before renaming it over, and count the reader's
// futex wait slices through its beforeWait hook. Nothing here depends on
// how long anything takes.

// idleSlices is how many wait slices the reader must sit through without
// resuming before the test lets a writer come back.
const idleSlices = 5

// lockRing takes the OFD write lock on ring name in dir, like a writer that
// has opened the file and not taken it over yet, and stamps nothing. It
// returns the descriptor; closing it drops the lock.
func lockRing(t *testing.T, dir, name string) *shm.File {
	t.Helper()
	lk, err := shm.Open(ring.Path(dir, name), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	if err := lk.LockWrite(); err != nil {
		t.Fatal(err)
	}
	return lk
}

// readGone reads once more from r, whose writer is not alive, and wants
// ErrWriterGone saying want.
func readGone(t *testing.T, r *consumer.Reader, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	if f, err := r.Read(ctx, nil); !errors.Is(err, ring.ErrWriterGone) || !strings.Contains(err.Error(), want) {
		t.Fatalf("read = frame %d, %v; want ErrWriterGone saying %q", f.Number, err, want)
	}
	if st := r.Stats(); st.WriterGone != 1 || st.Resumes != 0 || st.WriterUp {
		t.Fatalf("after writer-gone: writer gone %d resumes %d up %v, want 1 0 false", st.WriterGone, st.Resumes, st.WriterUp)
	}
}

// slices installs a beforeWait hook on r that counts the wait slices of
// its next read, notes the first slice that ran after a resume, and calls
// back(n) at slice idleSlices (to bring a writer back) and after(n) at every
// slice from then on.
type slices struct {
	n             int
	resumedBefore int // the first slice that saw Resumes > 0, before back ran; 0: none
	backed        bool
}

func (s *slices) install(r *consumer.Reader, back func(), after func()) {
	r.SetBeforeWait(func() {
		s.n++
		if !s.backed && r.Stats().Resumes != 0 && s.resumedBefore == 0 {
			s.resumedBefore = s.n
		}
		switch {
		case s.n == idleSlices && !s.backed:
			s.backed = true
			back()
		case s.backed && after != nil:
			after()
		}
	})
}

func (s *slices) check(t *testing.T, r *consumer.Reader) {
	t.Helper()
	if s.resumedBefore != 0 {
		t.Fatalf("the reader resumed before any writer completed a takeover (seen at wait slice %d)", s.resumedBefore)
	}
	if s.n < idleSlices {
		t.Fatalf("%d wait slices, want at least %d before the writer came back", s.n, idleSlices)
	}
	st := r.Stats()
	if st.WriterGone != 1 || st.Resumes != 1 || !st.WriterUp {
		t.Fatalf("writer gone %d resumes %d up %v, want 1 1 true", st.WriterGone, st.Resumes, st.WriterUp)
	}
}

// A writer closed; something holds the lock again but Generation did not
// move (a writer preparing or replacing the file): no resume, however
// fresh the old heartbeat, until Generation moves.
func TestNoResumeOnLockWithoutTakeover(t *testing.T) {
	for _, how := range []string{"generation", "takeover"} {
		t.Run(how, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			w := openWriter(t, dir, name, 64)
			publishN(t, w, 2, 64)
			// HungAfter of an hour: the closed writer's heartbeat stays
			// fresh, so D2 alone would call the locker a live writer.
			r := openReader(t, dir, name, consumer.Options{WaitSlice: 5 * time.Millisecond, HungAfter: time.Hour})
			if f, err := r.Read(context.Background(), nil); err != nil || f.Number != 2 {
				t.Fatalf("read = frame %d, %v; want frame 2", f.Number, err)
			}
			gen := w.Generation()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			readGone(t, r, "exited or closed")
			lk := lockRing(t, dir, name)

			ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
			defer cancel()
			var s slices
			var w2 *producer.Writer
			switch how {
			case "generation":
				// Generation moves while the lock stays held: a writer
				// completed its takeover. Cancel the read once it resumed.
				s.install(r, func() {
					testutil.WriteLE64(t, ring.Path(dir, name), layout.OffsetGeneration, gen+1)
				}, func() {
					if r.Stats().Resumes != 0 {
						cancel()
					}
				})
			case "takeover":
				// The locker goes, a real writer takes the file over in
				// place (same geometry) and publishes frame 3.
				s.install(r, func() {
					lk.Close()
					w2 = writerWith(t, dir, name, producer.Options{Slots: 4, MaxFrameBytes: 64})
					publishN(t, w2, 1, 64)
				}, nil)
			}
			f, err := r.Read(ctx, nil)
			s.check(t, r)
			switch how {
			case "generation":
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("read = frame %d, %v; want it cancelled after the resume", f.Number, err)
				}
			case "takeover":
				if err != nil || f.Number != 3 || f.Generation != gen+1 || w2.Generation() != gen+1 {
					t.Fatalf("read = frame %d gen %d, %v; want frame 3 of generation %d", f.Number, f.Generation, err, gen+1)
				}
			}
		})
	}
}

// A hung writer (the lock held, its heartbeat stale) that stamps its
// heartbeat again is back, with the same Generation; while the heartbeat
// stays stale the reader waits.
func TestHungWriterResumesWithSameGeneration(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64)
	publishN(t, w, 2, 64)
	gen := w.Generation()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The "writer": the lock held, a heartbeat from long ago (1 ns after
	// boot: older than HungAfter on any machine up for 10 s).
	path := ring.Path(dir, name)
	lockRing(t, dir, name)
	testutil.WriteLE64(t, path, layout.OffsetHeartbeat, 1)
	r := openReader(t, dir, name, consumer.Options{WaitSlice: 5 * time.Millisecond, HungAfter: 10 * time.Second})
	if f, err := r.Read(context.Background(), nil); err != nil || f.Number != 2 {
		t.Fatalf("read = frame %d, %v; want frame 2", f.Number, err)
	}
	readGone(t, r, "hung or stopped")

	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	var s slices
	s.install(r, func() {
		testutil.WriteLE64(t, path, layout.OffsetHeartbeat, uint64(ring.Now()))
	}, func() {
		if r.Stats().Resumes != 0 {
			cancel()
		}
	})
	if f, err := r.Read(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("read = frame %d, %v; want it cancelled after the resume", f.Number, err)
	}
	s.check(t, r)
	if g := testutil.ReadLE64(t, path, layout.OffsetGeneration); g != gen {
		t.Fatalf("generation %d, want %d (unchanged)", g, gen)
	}
}

// A writer that takes the file over, publishes and closes while the reader
// waits after writer-gone left its frames in the file (Generation moved):
// the reader delivers them, then reports the writer gone a second time.
func TestResumeAfterWriterCameAndWent(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64)
	publishN(t, w, 2, 64)
	r := openReader(t, dir, name, consumer.Options{WaitSlice: 5 * time.Millisecond})
	if f, err := r.Read(context.Background(), nil); err != nil || f.Number != 2 {
		t.Fatalf("read = frame %d, %v; want frame 2", f.Number, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	readGone(t, r, "exited or closed")
	w2 := openWriter(t, dir, name, 64) // takes the same file over
	publishN(t, w2, 1, 64)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	if f, err := r.Read(ctx, nil); err != nil || f.Number != 3 || f.Data[0] != 3 {
		t.Fatalf("read = frame %d, %v; want frame 3 of the writer that came and went", f.Number, err)
	}
	if _, err := r.Read(ctx, nil); !errors.Is(err, ring.ErrWriterGone) {
		t.Fatalf("read after frame 3 = %v, want ErrWriterGone", err)
	}
	if st := r.Stats(); st.WriterGone != 2 || st.Resumes != 1 || st.Delivered != 2 || st.Dropped() != 0 {
		t.Fatalf("writer gone %d resumes %d delivered %d dropped %d, want 2 1 2 0", st.WriterGone, st.Resumes, st.Delivered, st.Dropped())
	}
}
