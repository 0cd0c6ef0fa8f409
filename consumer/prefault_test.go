package consumer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
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

// TestRemapPrefaults: the mapping a reader makes when a writer replaced
// the segment with another geometry is prefaulted too (NoPrefault: not).
func TestRemapPrefaults(t *testing.T) {
	for _, noPrefault := range []bool{false, true} {
		dir, name := testutil.ShmDir(t), testutil.Name(t)
		w1 := writerWith(t, dir, name, producer.Options{MaxFrameBytes: 1 << 19, Slots: 4, NoPrefault: true})
		r := openReader(t, dir, name, consumer.Options{NoPrefault: noPrefault})
		w1.Close()
		w2 := writerWith(t, dir, name, producer.Options{MaxFrameBytes: 1 << 20, Slots: 4, NoPrefault: true})
		if _, err := w2.Publish(ring.FrameInfo{Format: ring.Raw}, make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		// The first Read may report the first writer gone; the next one
		// re-maps.
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		f, err := r.Read(ctx, nil)
		if errors.Is(err, ring.ErrWriterGone) {
			f, err = r.Read(ctx, nil)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		size := w2.Geometry().Size()
		if g := r.Geometry(); g != w2.Geometry() {
			t.Fatalf("frame %d read with geometry %v, want the new %v", f.Number, g, w2.Geometry())
		}
		res := resident(t, r)
		switch {
		case res.Size != size:
			t.Errorf("NoPrefault %v: reader's mapping is %d bytes, want the new segment's %d", noPrefault, res.Size, size)
		case !noPrefault && res.Rss != size:
			t.Errorf("re-mapped segment: %d of %d bytes resident", res.Rss, size)
		case noPrefault && res.Rss >= size/2:
			t.Errorf("NoPrefault: re-mapped segment has %d of %d bytes resident after one small frame", res.Rss, size)
		}
	}
}
