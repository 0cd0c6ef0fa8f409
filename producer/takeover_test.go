package producer_test

import (
	"encoding/binary"
	"os"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// Offsets in a segment file.
const (
	offHead       = 192
	offGeneration = 80
	offFrameNo    = 8 // in a slot
)

// patch writes the little-endian word v at off of path.
func patch(t *testing.T, path string, off int64, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, v), off); err != nil {
		t.Fatal(err)
	}
}

func slotOff(g ring.Geometry, i uint64) int64 {
	return layout.SuperblockSize + int64(i&uint64(g.Slots-1))*layout.SlotStride(g)
}

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
		{"head near 2^64", func() int64 { return offHead }, 1<<64 - 5, 6, false, 2},
		{"head 2^63", func() int64 { return offHead }, 1 << 63, 6, false, 2},
		{"head far above the slots", func() int64 { return offHead }, 1000, 6, false, 2},
		{"head whose slot holds an older frame", func() int64 { return offHead }, 12, 6, false, 2},
		{"stray frame number", func() int64 { return slotOff(g, 7) + offFrameNo }, 1<<40 + 7, 6, false, 2},
		{"head behind a committed frame", func() int64 { return offHead }, 3, 6, false, 2},
		{"generation 2^63", func() int64 { return offGeneration }, 1 << 63, 6, true, 1},
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
			patch(t, w.Path(), tc.off(), tc.v)
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
