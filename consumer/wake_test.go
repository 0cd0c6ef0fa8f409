package consumer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// Every test here waits with a one-hour WaitSlice: a wake-up that got lost
// would leave the read asleep for an hour, and the hang guard (30 s) fails
// the test. None of them measures time.
const hourSlice = time.Hour

// bothWaits runs fn with futex_waitv and with the FUTEX_WAIT fallback.
func bothWaits(t *testing.T, fn func(t *testing.T)) {
	t.Run("waitv", func(t *testing.T) {
		if !shm.HaveWaitv() {
			t.Skip("futex_waitv not available on this kernel")
		}
		fn(t)
	})
	t.Run("fallback", func(t *testing.T) {
		shm.ForceFallback(true)
		defer shm.ForceFallback(false)
		fn(t)
	})
}

// blockedRead starts a Read of r with ctx in a goroutine and returns the
// channel of its error.
func blockedRead(r *consumer.Reader, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, nil)
		done <- err
	}()
	return done
}

// The race window forced: Close lands after the read's last check and
// before its futex wait. The poke is sticky: the wait returns at once
// instead of sleeping its hour.
func TestCloseInRaceWindowIsSticky(t *testing.T) {
	bothWaits(t, func(t *testing.T) {
		dir, name := testutil.ShmDir(t), testutil.Name(t)
		openWriter(t, dir, name, 64)
		r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next, WaitSlice: hourSlice})
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		first := true
		r.SetBeforeWait(func() {
			if !first {
				return
			}
			first = false
			go func() { closed <- r.Close() }()
			// Close pokes before it takes the reader's lock (which this
			// read holds): wait for the poke, then go to sleep.
			testutil.Eventually(t, "Close's poke", func() bool { return r.Pokes() > 0 })
		})
		done := blockedRead(r, context.Background())
		if err := testutil.Receive(t, done, "the read after a Close in the race window"); !errors.Is(err, ring.ErrClosed) {
			t.Fatalf("read = %v, want ErrClosed", err)
		}
		if err := testutil.Receive(t, closed, "Close"); err != nil {
			t.Fatal(err)
		}
		if _, waits, _ := r.WaitCounts(); waits != 1 {
			t.Errorf("%d futex waits, want 1 (the one that returned for the Close)", waits)
		}
	})
}

// The same for a cancelled context.
func TestCancelInRaceWindowIsSticky(t *testing.T) {
	bothWaits(t, func(t *testing.T) {
		dir, name := testutil.ShmDir(t), testutil.Name(t)
		openWriter(t, dir, name, 64)
		r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: hourSlice})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first := true
		r.SetBeforeWait(func() {
			if !first {
				return
			}
			first = false
			cancel()
			// The context's AfterFunc pokes from its own goroutine.
			testutil.Eventually(t, "the cancel's poke", func() bool { return r.Pokes() > 0 })
		})
		if err := testutil.Receive(t, blockedRead(r, ctx), "the read after a cancel in the race window"); !errors.Is(err, context.Canceled) {
			t.Fatalf("read = %v, want context.Canceled", err)
		}
		if _, waits, _ := r.WaitCounts(); waits != 1 {
			t.Errorf("%d futex waits, want 1", waits)
		}
	})
}

// spinFor busy-waits a random number of iterations (up to max), so that a
// cancel or Close lands at a random point of the read.
func spinFor(max int) {
	for i, n := 0, rand.IntN(max); i < n; i++ {
		if i%64 == 0 {
			runtime.Gosched()
		}
	}
}

// 2,000 cancels and 300 Closes at random points of a blocked read: every
// read returns (none sleeps its one-hour slice).
func TestCancelsAndClosesAtRandomPoints(t *testing.T) {
	cancels, closes := 2000, 300
	if testing.Short() {
		cancels, closes = 200, 30
	}
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	openWriter(t, dir, name, 64)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: hourSlice})
	for i := 0; i < cancels; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := blockedRead(r, ctx)
		spinFor(20000)
		cancel()
		if err := testutil.Receive(t, done, "a cancelled read"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel %d: read = %v, want context.Canceled", i, err)
		}
	}
	for i := 0; i < closes; i++ {
		r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next, WaitSlice: hourSlice})
		if err != nil {
			t.Fatal(err)
		}
		done := blockedRead(r, context.Background())
		spinFor(20000)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := testutil.Receive(t, done, "a read blocked at Close"); !errors.Is(err, ring.ErrClosed) {
			t.Fatalf("close %d: read = %v, want ErrClosed", i, err)
		}
	}
}

// A read blocked with a deadline returns at the deadline even with a
// one-hour slice (the context's timer pokes the wake word).
func TestDeadlineEndsWait(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	openWriter(t, dir, name, 64)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: hourSlice})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := testutil.Receive(t, blockedRead(r, ctx), "a read with a deadline"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read = %v, want DeadlineExceeded", err)
	}
}
