package consumer_test

import (
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
)

// TestOpenPrefaults: a reader's mapping is in its page tables in full when
// Open returns, so no slot's first read pays page faults; with NoPrefault
// most of it is not. The writer does not prefault, so that its own
// mapping cannot be what makes the reader's pages resident.
func TestOpenPrefaults(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := writerWith(t, dir, name, producer.Options{MaxFrameBytes: 1 << 20, Slots: 4, NoPrefault: true})
	size := w.Geometry().Size()
	r := openReader(t, dir, name, consumer.Options{})
	if res := resident(t, r); res.Size != size || res.Rss != size {
		t.Errorf("reader's mapping after Open: %+v, want all %d bytes resident", res, size)
	}
	r2 := openReader(t, dir, name, consumer.Options{NoPrefault: true})
	if res := resident(t, r2); res.Size != size || res.Rss >= size/2 {
		t.Errorf("NoPrefault: reader's mapping after Open: %+v, want less than half of %d bytes resident", res, size)
	}
}

// resident is what /proc/self/smaps says about r's mapping.
func resident(t *testing.T, r *consumer.Reader) shm.Residency {
	t.Helper()
	res, err := shm.Resident(r.Mapped())
	if err != nil {
		t.Fatal(err)
	}
	return res
}
