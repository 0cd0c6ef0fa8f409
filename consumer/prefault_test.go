package consumer_test

import (
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
)

// TestOpenPrefaults: a reader's mapping is in its page tables in full when
// Open returns, so no slot's first read pays page faults.
func TestOpenPrefaults(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := writerWith(t, dir, name, producer.Options{MaxFrameBytes: 1 << 20, Slots: 4, NoPrefault: true})
	r := openReader(t, dir, name, consumer.Options{})
	res, err := shm.Resident(r.Mapped())
	if err != nil {
		t.Fatal(err)
	}
	if size := w.Geometry().Size(); res.Size != size || res.Rss != size {
		t.Errorf("reader's mapping after Open: %+v, want all %d bytes resident", res, size)
	}
}
