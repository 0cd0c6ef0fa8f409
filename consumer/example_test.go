package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// The README's reader example: a writer published three frames; a reader
// reads two by copy and the third in place.
func Example() {
	dir, _ := os.MkdirTemp("", "framering-example-")
	defer os.RemoveAll(dir)
	w, err := producer.Open("cam0", producer.Options{Dir: dir, MaxWidth: 4, MaxHeight: 2, MetaBytes: 64})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Remove()
	for i := 1; i <= 3; i++ {
		meta := []byte(fmt.Sprintf(`{"boxes":%d}`, i))
		w.Publish(ring.FrameInfo{Width: 4, Height: 2, Format: ring.BGR8, Meta: meta}, make([]byte, 4*2*3))
	}
	ctx := context.Background()

	r, err := consumer.Open("cam0", consumer.Options{Dir: dir, Mode: consumer.Ordered, StartAt: consumer.Oldest})
	if err != nil {
		log.Fatal(err) // e.g. open ring "cam0": ring does not exist (consumer.OpenWait waits for it)
	}
	defer r.Close()

	buf := make([]byte, r.Geometry().PayloadCap)
	for i := 0; i < 2; i++ {
		f, err := r.Read(ctx, buf) // copy-out: returned only if the copy is consistent
		switch {
		case errors.Is(err, ring.ErrWriterGone):
			continue // reported once; the next Read waits for a writer to come back
		case err != nil:
			log.Fatal(err)
		}
		buf = f.Data[:cap(f.Data)] // a restarted writer's larger frames make Read allocate a larger buffer
		fmt.Printf("frame %d: %dx%d %v, %d bytes, meta %s\n", f.Number, f.Width, f.Height, f.Format, len(f.Data), f.Meta)
	}

	// Zero-copy: work on the slot in place; the result counts only if it stayed valid.
	err = r.ReadInPlace(ctx, func(f *ring.Frame) error {
		fmt.Printf("frame %d in place: %d bytes\n", f.Number, len(f.Data)) // f.Data aliases shared memory
		return nil
	})
	if errors.Is(err, ring.ErrOverwritten) {
		fmt.Println("the writer lapped the reader meanwhile: discard what was computed")
	}
	st := r.Stats() // Delivered, Lapped, Skipped, Overwritten, ..., Latency (a ring.Latency)
	fmt.Printf("delivered %d, dropped %d, latency counted %d\n", st.Delivered, st.Dropped(), st.Latency.Count())
	// Output:
	// frame 1: 4x2 bgr8, 24 bytes, meta {"boxes":1}
	// frame 2: 4x2 bgr8, 24 bytes, meta {"boxes":2}
	// frame 3 in place: 24 bytes
	// delivered 3, dropped 0, latency counted 3
}

// Opening a ring that does not exist fails with ring.ErrNotFound;
// OpenWait waits for it instead.
func ExampleOpen_notFound() {
	dir, _ := os.MkdirTemp("", "framering-example-")
	defer os.RemoveAll(dir)
	_, err := consumer.Open("cam9", consumer.Options{Dir: dir})
	fmt.Println(errors.Is(err, ring.ErrNotFound))
	fmt.Println(err)
	// Output:
	// true
	// open ring "cam9": ring does not exist
}
