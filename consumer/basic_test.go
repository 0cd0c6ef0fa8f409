package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

func TestPublishReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := producer.Open("rt", producer.Options{Dir: dir, Slots: 4, MaxWidth: 8, MaxHeight: 4, MetaBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Remove()
	r, err := consumer.Open("rt", consumer.Options{Dir: dir, StartAt: consumer.Next})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	px := make([]byte, 8*4*3)
	for i := range px {
		px[i] = byte(i)
	}
	n, err := w.Publish(ring.FrameInfo{Width: 8, Height: 4, Format: ring.BGR8, Meta: []byte("det")}, px)
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1, nil", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := r.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Number != 1 || f.Width != 8 || f.Height != 4 || f.Channels != 3 || f.Format != ring.BGR8 || !bytes.Equal(f.Data, px) || string(f.Meta) != "det" {
		t.Fatalf("got frame %+v", f)
	}
	// View.
	px[0] = 99
	if _, err := w.Publish(ring.FrameInfo{Width: 8, Height: 4, Format: ring.BGR8}, px); err != nil {
		t.Fatal(err)
	}
	err = r.ReadInPlace(ctx, func(f *ring.Frame) error {
		if f.Number != 2 || f.Data[0] != 99 {
			t.Errorf("view frame %d pixel0 %d", f.Number, f.Data[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Delivered != 2 || st.Dropped() != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Deadline with nothing new.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := r.Read(dctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read with nothing published = %v, want deadline exceeded", err)
	}
}

// openWriter opens ring name in dir with 4 slots of size bytes and
// removes it when the test ends.
func openWriter(t *testing.T, dir, name string, size int) *producer.Writer {
	t.Helper()
	return writerWith(t, dir, name, producer.Options{Slots: 4, MaxFrameBytes: size})
}

// writerWith opens ring name in dir with opts and removes it when the test
// ends.
func writerWith(t *testing.T, dir, name string, opts producer.Options) *producer.Writer {
	t.Helper()
	opts.Dir = dir
	w, err := producer.Open(name, opts)
	return testutil.Removing(t, w, err)
}

// openReader opens ring name in dir with opts and closes it when the test
// ends.
func openReader(t *testing.T, dir, name string, opts consumer.Options) *consumer.Reader {
	t.Helper()
	opts.Dir = dir
	r, err := consumer.Open(name, opts)
	return testutil.Closing(t, r, err)
}
