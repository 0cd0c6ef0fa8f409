package consumer_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"strings"
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// patchFile writes b at off in the ring's file, and with fixSum recomputes
// the superblock checksum so that only the geometry check can catch it.
func patchFile(t *testing.T, path string, off int64, b []byte, fixSum bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if fixSum {
		sb := make([]byte, 60)
		f.ReadAt(sb, 0)
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], crc32.Checksum(sb, crc32.MakeTable(crc32.Castagnoli)))
		f.WriteAt(sum[:], 60)
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func TestCorruptSuperblockRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		off    int64
		b      []byte
		fixSum bool
		want   error
		msg    string
	}{
		{"magic", 0, []byte("NOTARING"), false, ring.ErrIncompatible, "magic"},
		{"unknown flags", 56, le32(1), true, ring.ErrIncompatible, "flags is 0x1"},
		{"version", 8, le32(1), false, ring.ErrIncompatible, "version is 1, want 2"},
		{"checksum", 16, le32(8), false, ring.ErrCorrupt, "checksum"},
		{"slot count not power of two", 16, le32(3), true, ring.ErrCorrupt, "slot count 3"},
		{"stride", 24, le64(12345), true, ring.ErrCorrupt, "slot stride is 12345"},
		{"payload offset", 32, le64(0), true, ring.ErrCorrupt, "payload offset"},
		{"huge payload", 40, le64(1 << 62), true, ring.ErrCorrupt, "payload capacity"},
		{"geometry beyond object", 16, le32(1024), true, ring.ErrCorrupt, "file size is 36864"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			w := openWriter(t, dir, name, 4096)
			w.Close()
			patchFile(t, ring.Path(dir, name), tc.off, tc.b, tc.fixSum)
			_, err := consumer.Open(name, consumer.Options{Dir: dir})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Open = %v\nwant %v mentioning %q", err, tc.want, tc.msg)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error does not name the ring: %v", err)
			}
		})
	}
}

func TestTruncatedObjectRefused(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 4096)
	w.Close()
	for _, size := range []int64{4096 + 4096, 4096, 100, 0} {
		os.Truncate(ring.Path(dir, name), size)
		_, err := consumer.Open(name, consumer.Options{Dir: dir})
		if !errors.Is(err, ring.ErrTruncated) {
			t.Errorf("object of %d bytes: %v, want ErrTruncated", size, err)
		}
	}
}

// A slot header with impossible values is reported as corruption, never
// trusted for the copy.
func TestCorruptSlotHeader(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 4096)
	if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Oldest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	slot1 := int64(layout.SuperblockSize) + 1*layout.SlotStride(w.Geometry())
	patchFile(t, ring.Path(dir, name), slot1+48, le64(1<<40), false) // PayloadLen
	_, err = r.Read(t.Context(), make([]byte, 4096))
	if !errors.Is(err, ring.ErrCorrupt) || !strings.Contains(err.Error(), "exceeds slot capacity") {
		t.Fatalf("Read of a slot claiming 1 TiB = %v, want ErrCorrupt", err)
	}
	// The ordered reader skips the bad frame and goes on with the next.
	if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	f, err := r.Read(t.Context(), make([]byte, 4096))
	if err != nil || f.Number != 2 || len(f.Data) != 50 {
		t.Fatalf("read after a corrupt frame: frame %d (%d bytes), %v; want frame 2", f.Number, len(f.Data), err)
	}
	if st := r.Stats(); st.Corrupt != 1 || st.Delivered != 1 || st.Dropped() != 1 {
		t.Fatalf("stats after a corrupt frame: %+v", st)
	}
}

// A segment truncated under a live reader and writer: both get an error,
// neither process crashes (SIGBUS is caught).
func TestTruncatedUnderLiveReader(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := openWriter(t, dir, name, 1<<16)
	px := make([]byte, 1<<16)
	w.Publish(ring.FrameInfo{Format: ring.Raw}, px)
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(ring.Path(dir, name), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, px); !errors.Is(err, ring.ErrTruncated) {
		t.Fatalf("Publish into a truncated segment = %v, want ErrTruncated", err)
	}
	_, err = r.Read(t.Context(), nil)
	if !errors.Is(err, ring.ErrTruncated) {
		t.Fatalf("Read of a truncated segment = %v, want ErrTruncated", err)
	}
	if err := r.ReadInPlace(t.Context(), func(*ring.Frame) error { return nil }); err == nil {
		t.Fatal("ReadInPlace of a truncated segment succeeded")
	}
}

// A segment truncated while ReadInPlace's callback works on the payload
// (the slot's header page survives, so the seq still matches): the call
// reports the truncation and the frame is not counted as delivered. And a
// view whose whole slot went: it counts as overwritten, in its window.
func TestTruncatedInsideReadInPlace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keep      int64 // bytes of slot 1's payload the truncation keeps
		touch     bool  // the callback reads the payload's last byte
		abandoned uint64
	}{
		{"payload cut, callback faults", 4096, true, 1},
		{"header page cut, release faults", -4096, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			w := openWriter(t, dir, name, 1<<16)
			px := make([]byte, 1<<16)
			if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, px); err != nil { // frame 1, slot 1
				t.Fatal(err)
			}
			r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Oldest})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			geo := r.Geometry()
			stride := int64(4096 + (geo.PayloadCap+4095)&^4095) // header+metadata page, payload
			payload := 4096 + stride + 4096                     // slot 1's payload in the file
			var sum byte
			err = r.ReadInPlace(t.Context(), func(f *ring.Frame) error {
				if err := os.Truncate(ring.Path(dir, name), payload+tc.keep); err != nil {
					t.Fatal(err)
				}
				if tc.touch {
					sum += f.Data[len(f.Data)-1] // a page the file no longer has
				}
				return nil
			})
			if !errors.Is(err, ring.ErrTruncated) {
				t.Fatalf("ReadInPlace with a truncation inside the callback = %v (sum %d), want ErrTruncated", err, sum)
			}
			st := r.Stats()
			if st.Delivered != 0 || st.Abandoned != tc.abandoned || st.Dropped() != 1 || st.Considered != 1 {
				t.Fatalf("stats after the truncated view: %+v; want delivered 0, abandoned %d, dropped 1 of 1 considered", st, tc.abandoned)
			}
		})
	}
}
