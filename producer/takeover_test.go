package producer_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// A writer taking over a ring does not believe a head, generation or
// frame number that no writer gets to by counting frames (D3): the frame
// numbering continues from the newest plausible frame in the slots.
func TestTakeoverDistrustsAbsurdValues(t *testing.T) {
	g := ring.Geometry{Slots: 8, PayloadCap: 64}
	for _, tc := range []struct {
		name     string
		off      func() int64
		v        uint64
		wantNext uint64
		replaced bool // the file is replaced (generation that would wrap)
		wantGen  uint64
	}{
		{"head near 2^64", func() int64 { return layout.OffsetHead }, 1<<64 - 5, 6, false, 2},
		{"head 2^63", func() int64 { return layout.OffsetHead }, 1 << 63, 6, false, 2},
		{"head far above the slots", func() int64 { return layout.OffsetHead }, 1000, 6, false, 2},
		{"head whose slot holds an older frame", func() int64 { return layout.OffsetHead }, 12, 6, false, 2},
		{"stray frame number", func() int64 { return layout.SlotFileOffset(g, 7) + layout.OffsetSlotFrame }, 1<<40 + 7, 6, false, 2},
		{"head behind a committed frame", func() int64 { return layout.OffsetHead }, 3, 6, false, 2},
		{"generation 2^63", func() int64 { return layout.OffsetGeneration }, 1 << 63, 6, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			o := producer.Options{Dir: dir, Slots: g.Slots, MaxFrameBytes: g.PayloadCap}
			w, err := producer.Open(name, o)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("frame"))
			}
			w.Close()
			ino := inode(t, w.Path())
			testutil.WriteLE64(t, w.Path(), tc.off(), tc.v)
			w2 := open(t, dir, name, o)
			n, err := w2.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("next"))
			if err != nil || n != tc.wantNext {
				t.Errorf("first frame after the takeover: %d, %v; want %d", n, err, tc.wantNext)
			}
			if w2.Generation() != tc.wantGen {
				t.Errorf("generation %d, want %d", w2.Generation(), tc.wantGen)
			}
			if got := inode(t, w.Path()) != ino; got != tc.replaced {
				t.Errorf("file replaced: %v, want %v", got, tc.replaced)
			}
		})
	}
}
