package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// A writer publishes two frames, one by copy and one filled in place; a
// reader that opened first gets both, in order.
func Example() {
	dir, _ := os.MkdirTemp("", "framering-example-")
	defer os.RemoveAll(dir)

	w, err := producer.Open("cam0", producer.Options{Dir: dir, MaxWidth: 4, MaxHeight: 2, MaxChannels: 3, MetaBytes: 64})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Remove()
	r, err := consumer.Open("cam0", consumer.Options{Dir: dir, StartAt: consumer.Next})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	// Copy API.
	pixels := make([]byte, 4*2*3)
	w.Publish(ring.FrameInfo{Width: 4, Height: 2, Format: ring.BGR8, Meta: []byte(`{"boxes":1}`)}, pixels)
	// Loan API: fill the slot in place, then commit.
	l, _ := w.Reserve(ring.FrameInfo{Width: 4, Height: 2, Format: ring.BGR8})
	for i := range l.Data() {
		l.Data()[i] = 255
	}
	l.Commit()

	ctx := context.Background()
	f, _ := r.Read(ctx, make([]byte, r.Geometry().PayloadCap))
	fmt.Printf("frame %d: %dx%d %v, %d bytes, meta %s\n", f.Number, f.Width, f.Height, f.Format, len(f.Data), f.Meta)
	err = r.ReadInPlace(ctx, func(f *ring.Frame) error {
		fmt.Printf("frame %d viewed in place: first byte %d\n", f.Number, f.Data[0])
		return nil
	})
	if errors.Is(err, ring.ErrOverwritten) {
		fmt.Println("overwritten while in use: discard the result")
	}
	st := r.Stats()
	fmt.Printf("delivered %d, dropped %d\n", st.Delivered, st.Dropped())
	// Output:
	// frame 1: 4x2 bgr8, 24 bytes, meta {"boxes":1}
	// frame 2 viewed in place: first byte 255
	// delivered 2, dropped 0
}

// Opening a ring that does not exist fails with ring.ErrNotFound;
// OpenWait waits for it instead.
func ExampleOpen_notFound() {
	dir, _ := os.MkdirTemp("", "framering-example-")
	defer os.RemoveAll(dir)
	_, err := consumer.Open("cam9", consumer.Options{Dir: dir})
	fmt.Println(errors.Is(err, ring.ErrNotFound))
	// Output:
	// true
}
