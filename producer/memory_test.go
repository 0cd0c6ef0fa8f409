package producer_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// segmentResidency is what /proc/self/smaps says about the writer's
// mapping of its segment.
func segmentResidency(t *testing.T, w *producer.Writer) shm.Residency {
	t.Helper()
	r, err := shm.Resident(w.Segment().Payload(0))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOpenPrefaults: a new segment is in the writer's page tables in full
// before the first frame, unless NoPrefault; a reopened one too.
func TestOpenPrefaults(t *testing.T) {
	dir := testutil.ShmDir(t)
	opts := producer.Options{Dir: dir, MaxFrameBytes: 1 << 20, Slots: 4}
	w := open(t, dir, testutil.Name(t), opts)
	size := w.Geometry().Size()
	if r := segmentResidency(t, w); r.Size != size || r.Rss != size {
		t.Errorf("new segment: %+v, want all %d bytes resident", r, size)
	}
	// Taken over by a second writer with the same geometry: prefaulted
	// again in the new mapping.
	name := w.Name()
	w.Close()
	w2 := open(t, dir, name, opts)
	if w2.Generation() != 2 {
		t.Fatalf("reopen did not take the segment over: generation %d", w2.Generation())
	}
	if r := segmentResidency(t, w2); r.Rss != size {
		t.Errorf("reused segment: Rss %d of %d", r.Rss, size)
	}
	opts.NoPrefault = true
	w3 := open(t, dir, testutil.Name(t), opts)
	if r := segmentResidency(t, w3); r.Rss >= size/2 {
		t.Errorf("NoPrefault: %d of %d bytes resident before any frame", r.Rss, size)
	}
}

// TestHugePages: on a tmpfs mounted huge=advise, a new segment gets huge
// pages (and publishing works); with NoHugePages, none.
func TestHugePages(t *testing.T) {
	dir := testutil.MountTmpfs(t, "size=128m,huge=advise")
	const frame = 1920 * 1080 * 3
	for _, huge := range []bool{true, false} {
		w := open(t, dir, testutil.Name(t), producer.Options{Dir: dir, MaxFrameBytes: frame, Slots: 2, NoHugePages: !huge})
		r := segmentResidency(t, w)
		if r.Rss != w.Geometry().Size() {
			t.Errorf("huge pages %v: Rss %d of %d", huge, r.Rss, w.Geometry().Size())
		}
		if huge && r.PmdMapped < 4<<20 {
			t.Errorf("new segment on a huge=advise tmpfs: %d bytes in huge pages", r.PmdMapped)
		}
		if !huge && r.PmdMapped != 0 {
			t.Errorf("huge pages with NoHugePages: %d bytes", r.PmdMapped)
		}
		px := make([]byte, frame)
		if _, err := w.Publish(ring.FrameInfo{Width: 1920, Height: 1080, Format: ring.BGR8}, px); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHugePagesNoSpace: the sparse segment of a huge-page ring that does
// not fit fails at Open with ErrNoSpace (found by the prefault, not by a
// SIGBUS at some frame) and leaves nothing behind.
func TestHugePagesNoSpace(t *testing.T) {
	dir := testutil.MountTmpfs(t, "size=4m,huge=advise")
	_, err := producer.Open("big", producer.Options{Dir: dir, MaxWidth: 640, MaxHeight: 480, Slots: 8})
	if !errors.Is(err, ring.ErrNoSpace) {
		t.Fatalf("Open on a 4 MiB tmpfs = %v, want ErrNoSpace", err)
	}
	var nse *producer.NoSpaceError
	if !errors.As(err, &nse) || nse.Dir != dir || nse.Need != (ring.Geometry{Slots: 8, PayloadCap: 640 * 480 * 3}).Size() {
		t.Errorf("error %v: want a *producer.NoSpaceError for %s with the ring's size", err, dir)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed creation left %v", ents)
	}
}

// openReader opens a reader of ring name in dir with o and closes it when
// the test ends.
func openReader(t *testing.T, dir, name string, o consumer.Options) *consumer.Reader {
	t.Helper()
	o.Dir = dir
	r, err := consumer.Open(name, o)
	return testutil.Closing(t, r, err)
}

// threadFaults is this thread's minor page faults so far.
func threadFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// TestFirstFramesTakeNoFaults: after Open's prefault, publishing into
// every slot and reading every frame back takes no page fault per page of
// the frames (a few for the runtime are allowed); with NoPrefault the
// writer takes about one per page.
func TestFirstFramesTakeNoFaults(t *testing.T) {
	runtime.LockOSThread() // RUSAGE_THREAD counts this thread only
	defer runtime.UnlockOSThread()
	const frame, slots = 1 << 20, 4
	pages := int64(frame / os.Getpagesize() * slots)
	px := make([]byte, frame)
	dst := make([]byte, frame)
	for i := range px {
		px[i], dst[i] = byte(i), 1 // both resident before counting
	}
	for _, noPrefault := range []bool{false, true} {
		dir, name := testutil.ShmDir(t), testutil.Name(t)
		w := open(t, dir, name, producer.Options{MaxFrameBytes: frame, Slots: slots, NoPrefault: noPrefault})
		r := openReader(t, dir, name, consumer.Options{})
		f0 := threadFaults(t)
		for i := 0; i < slots; i++ {
			if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, px); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Read(context.Background(), dst); err != nil {
				t.Fatal(err)
			}
		}
		faults := threadFaults(t) - f0
		t.Logf("NoPrefault %v: %d minor faults for %d pages written and read", noPrefault, faults, pages)
		switch {
		case !noPrefault && faults > pages/16:
			t.Errorf("prefaulted ring: %d page faults in the first %d frames (%d pages each way)", faults, slots, pages)
		case noPrefault && faults < pages/2:
			t.Errorf("NoPrefault: only %d page faults for %d fresh pages; does this test still measure anything?", faults, pages)
		}
	}
}
