package producer_test

import (
	"fmt"
	"log"
	"os"

	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// The README's writer example: a frame published by copy, then one filled
// in place through a loan, with metadata.
func Example() {
	dir, _ := os.MkdirTemp("", "framering-example-")
	defer os.RemoveAll(dir)

	w, err := producer.Open("cam0", producer.Options{Dir: dir, MaxWidth: 640, MaxHeight: 480, MetaBytes: 256}) // Dir "": /dev/shm
	if err != nil {
		log.Fatal(err) // e.g. ring "cam0": already written by pid 4121
	}
	defer w.Close() // the segment stays for readers; w.Remove() unlinks it
	info := ring.FrameInfo{Width: 640, Height: 480, Format: ring.BGR8}

	// Copy API: publish a buffer.
	pixels := make([]byte, 640*480*3)
	if _, err := w.Publish(info, pixels); err != nil {
		log.Fatal(err)
	}

	// Loan API: the shape is fixed at Reserve; fill the slot in place, then commit.
	l, err := w.Reserve(info)
	if err != nil {
		log.Fatal(err)
	}
	data := l.Data() // exactly 640*480*3 bytes of the slot, until Commit or Abort
	for i := range data {
		data[i] = 128 // decode or capture straight into shared memory
	}
	fmt.Fprintf(l.Meta(), `{"boxes":%d}`, 2) // metadata travels with its frame
	l.SetCapture(ring.Now())                 // capture time, if known only now
	if err := l.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("published frames 1 to %d, %d bytes each\n", l.Number(), len(data))
	// Output:
	// published frames 1 to 2, 921600 bytes each
}
