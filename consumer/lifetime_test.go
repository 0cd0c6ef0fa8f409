package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// publishN publishes n raw frames of size bytes, every byte the frame
// number.
func publishN(t *testing.T, w *producer.Writer, n, size int) {
	t.Helper()
	for i := 0; i < n; i++ {
		b := bytes.Repeat([]byte{byte(w.Stats().Ring.Head + 1)}, size)
		if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, b); err != nil {
			t.Fatal(err)
		}
	}
}

// Close waits for the view that is out (bbolt's rule): the view's memory
// stays mapped and valid until Release, Release works during Close, and
// Close returns after it. Release after Close says ErrClosed.
func TestCloseWaitsForView(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 4096)
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, w, 1, 4096)
	v, err := r.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	// Close counts itself (under the reader's lock) right before it waits.
	testutil.Eventually(t, "Close waiting for the view", func() bool {
		select {
		case <-closed:
			t.Fatal("Close returned while a view was out")
		default:
		}
		return r.CloseWaits() > 0
	})
	select {
	case <-closed:
		t.Fatal("Close returned while a view was out")
	default:
	}
	var sum int
	if err := shm.Guard(func() error {
		for _, b := range v.Frame().Data {
			sum += int(b)
		}
		return nil
	}); err != nil || sum != 4096 {
		t.Fatalf("the view's data while Close waits: sum %d, %v; want 4096 and no fault", sum, err)
	}
	if _, err := r.Read(t.Context(), nil); !errors.Is(err, ring.ErrViewOutstanding) && !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Read while the view is out and Close waits = %v", err)
	}
	if err := v.Release(); err != nil {
		t.Fatalf("Release while Close waits: %v", err)
	}
	if err := testutil.Receive(t, closed, "Close after Release"); err != nil {
		t.Fatal(err)
	}
	if err := v.Release(); !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Release after Close = %v, want ErrClosed", err)
	}
	if _, err := r.Acquire(t.Context()); !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Acquire after Close = %v, want ErrClosed", err)
	}
	if st := r.Stats(); st.Delivered != 1 {
		t.Errorf("the view released during Close was not delivered: %+v", st)
	}
}

// Close wakes a blocked Read, which returns ErrClosed.
func TestCloseWakesBlockedRead(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	openWriter(t, dir, name, 64)
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next, WaitSlice: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(context.Background(), nil)
		done <- err
	}()
	testutil.Eventually(t, "Read blocked", r.Busy)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Receive(t, done, "the blocked Read after Close"); !errors.Is(err, ring.ErrClosed) {
		t.Fatalf("blocked Read after Close = %v, want ErrClosed", err)
	}
}

// A View is a value: a copy of a released view is stale and cannot
// release the view that is out now.
func TestStaleView(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next})
	publishN(t, w, 1, 64)
	v1, err := r.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stale := v1
	if err := v1.Release(); err != nil {
		t.Fatal(err)
	}
	if err := stale.Release(); !errors.Is(err, ring.ErrViewReleased) {
		t.Errorf("second Release of a view = %v, want ErrViewReleased", err)
	}
	publishN(t, w, 1, 64)
	v2, err := r.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.Release(); !errors.Is(err, ring.ErrViewReleased) {
		t.Errorf("stale Release while another view is out = %v, want ErrViewReleased", err)
	}
	if _, err := r.Read(t.Context(), nil); !errors.Is(err, ring.ErrViewOutstanding) {
		t.Errorf("a stale Release released the current view: Read = %v, want ErrViewOutstanding", err)
	}
	if v2.Frame().Number != 2 || v2.Frame().Data[0] != 2 {
		t.Errorf("second view: frame %d, data %d", v2.Frame().Number, v2.Frame().Data[0])
	}
	if err := v2.Release(); err != nil {
		t.Fatal(err)
	}
	var zero consumer.View
	if err := zero.Release(); !errors.Is(err, ring.ErrViewReleased) {
		t.Errorf("zero View Release = %v", err)
	}
	if st := r.Stats(); st.Delivered != 2 || st.Dropped() != 0 {
		t.Errorf("stats %+v, want 2 delivered", st)
	}
}

// After Close, a view's slice that someone kept faults on access instead
// of reading another ring that reuses the address range.
func TestStaleViewSliceFaultsAfterClose(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	const size = 1 << 16
	w := openWriter(t, dir, name, size)
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, w, 1, size)
	v, err := r.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stale := v.Frame().Data
	v.Release()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Readers of rings of the same size, mapped after: the kernel would
	// hand the freed range to the first of them.
	for i := 0; i < 4; i++ {
		n := fmt.Sprintf("%s-%d", name, i)
		wi := openWriter(t, dir, n, size)
		publishN(t, wi, 1, size)
		openReader(t, dir, n, consumer.Options{})
	}
	var b byte
	err = shm.Guard(func() error { b = stale[100]; return nil })
	if !errors.Is(err, shm.ErrFault) {
		t.Fatalf("read through a closed reader's view = %d, %v; want a fault", b, err)
	}
}

// A panic in ReadInPlace's callback releases the view: the frame counts as
// not delivered (Abandoned), the panic goes on, and the reader stays
// usable.
func TestReadInPlacePanicReleasesView(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 64)
	// Closed at the end, not in a cleanup: with the view stuck out (the bug
	// this test catches) Close would wait for it for ever.
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, w, 2, 64)
	func() {
		defer func() {
			if p := recover(); p != "detector crashed" {
				t.Fatalf("recovered %v, want the callback's panic", p)
			}
		}()
		r.ReadInPlace(t.Context(), func(f *ring.Frame) error { panic("detector crashed") })
		t.Fatal("ReadInPlace returned after its callback panicked")
	}()
	var got uint64
	if err := r.ReadInPlace(t.Context(), func(f *ring.Frame) error { got = f.Number; return nil }); err != nil {
		t.Fatalf("ReadInPlace after a panic: %v", err)
	}
	if got != 2 {
		t.Errorf("after the panic on frame 1 the reader read frame %d, want 2", got)
	}
	st := r.Stats()
	if st.Abandoned != 1 || st.Delivered != 1 || st.Dropped() != 1 || st.Last != 2 {
		t.Errorf("stats %+v: want 1 abandoned, 1 delivered, last 2", st)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// A writer restarts with a larger geometry: a Read into a buffer sized for
// the old one succeeds into a new buffer of the frame's size, and a buffer
// that is large enough is used as it is.
func TestReadGrowsBufferAfterGeometryChange(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 100, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: 10 * time.Millisecond})
	buf := make([]byte, r.Geometry().PayloadCap)
	publishN(t, w, 1, 100)
	if f, err := r.Read(t.Context(), buf); err != nil || &f.Data[0] != &buf[0] {
		t.Fatalf("read into a buffer of the slot size: %v (own buffer: %v)", err, err == nil && &f.Data[0] == &buf[0])
	}
	w.Close()
	w2 := writerWith(t, dir, name, producer.Options{MaxFrameBytes: 10000, Slots: 4})
	publishN(t, w2, 2, 10000)
	var f ring.Frame
	for {
		f, err = r.Read(t.Context(), buf)
		if !errors.Is(err, ring.ErrWriterGone) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Read into the old PayloadCap after a larger geometry: %v", err)
	}
	if f.Number != 2 || len(f.Data) != 10000 || f.Data[9999] != 2 || &f.Data[0] == &buf[0] {
		t.Fatalf("frame %d: %d bytes (last %d), in the old buffer %v; want frame 2, 10000 bytes of 2 in a new buffer",
			f.Number, len(f.Data), f.Data[len(f.Data)-1], &f.Data[0] == &buf[0])
	}
	grown := f.Data
	f, err = r.Read(t.Context(), grown)
	if err != nil || &f.Data[0] != &grown[0] || f.Data[0] != 3 {
		t.Fatalf("read into the grown buffer: frame %d, %v, same buffer %v", f.Number, err, err == nil && &f.Data[0] == &grown[0])
	}
	if g := r.Geometry(); g.PayloadCap != 10000 || g.Slots != 4 {
		t.Errorf("reader geometry %v after the re-map", g)
	}
}

// Geometry takes no lock: it returns while a Read is blocked waiting for
// a frame (and holds the reader's lock) in another goroutine.
func TestGeometryDoesNotWaitForRead(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 4096)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, nil)
		read <- err
	}()
	testutil.Eventually(t, "Read blocked", r.Busy)
	got := make(chan ring.Geometry, 1)
	go func() { got <- r.Geometry() }()
	if g := testutil.Receive(t, got, "Geometry() while a Read is blocked"); g != w.Geometry() {
		t.Errorf("Geometry() = %v, writer has %v", g, w.Geometry())
	}
	if !r.Busy() {
		t.Fatal("the Read stopped waiting before Geometry returned: the test proved nothing")
	}
	cancel()
	if err := <-read; !errors.Is(err, context.Canceled) {
		t.Errorf("blocked Read after cancel = %v", err)
	}
}
