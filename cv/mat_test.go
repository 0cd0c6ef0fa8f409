//go:build gocv

package cv

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"gocv.io/x/gocv"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// randomMat returns a rows x cols Mat of type t with random pixels, and
// the pixels.
func randomMat(t *testing.T, rows, cols int, mt gocv.MatType, seed uint64) (gocv.Mat, []byte) {
	t.Helper()
	f, err := FormatOf(mt)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, rows*cols*f.Channels()*f.BytesPerSample())
	r := rand.New(rand.NewPCG(seed, seed+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	m, err := gocv.NewMatFromBytes(rows, cols, mt, b)
	if err != nil {
		t.Fatal(err)
	}
	// Clone so the Mat owns its pixels and b stays our reference copy.
	c := m.Clone()
	m.Close()
	return c, b
}

func openPair(t *testing.T, maxBytes int) (*producer.Writer, *consumer.Reader) {
	t.Helper()
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: maxBytes})
	w = testutil.Removing(t, w, err)
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Next})
	return w, testutil.Closing(t, r, err)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second) // hang guard only
	t.Cleanup(cancel)
	return c
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		mt   gocv.MatType
		want ring.PixelFormat
	}{
		{"bgr8", gocv.MatTypeCV8UC3, ring.BGR8},
		{"gray8", gocv.MatTypeCV8UC1, ring.Gray8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const rows, cols = 37, 53 // odd sizes: no accidental alignment
			w, r := openPair(t, rows*cols*4)
			src, want := randomMat(t, rows, cols, tc.mt, 1)
			defer src.Close()

			// Copy in, copy out.
			n, err := PublishMat(w, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			dst := gocv.NewMat()
			defer dst.Close()
			f, err := ReadMat(ctx(t), r, &dst)
			if err != nil {
				t.Fatal(err)
			}
			if f.Number != n || f.Format != tc.want || f.Width != cols || f.Height != rows {
				t.Fatalf("frame %d %dx%d %v, want %d %dx%d %v", f.Number, f.Width, f.Height, f.Format, n, cols, rows, tc.want)
			}
			if dst.Rows() != rows || dst.Cols() != cols || dst.Type() != tc.mt {
				t.Fatalf("dst is %dx%d %v, want %dx%d %v", dst.Cols(), dst.Rows(), dst.Type(), cols, rows, tc.mt)
			}
			if got := dst.ToBytes(); !bytes.Equal(got, want) {
				t.Fatalf("copied Mat differs from the source (%d vs %d bytes)", len(got), len(want))
			}

			// Loan in (no copy), view out (no copy).
			src2, want2 := randomMat(t, rows, cols, tc.mt, 2)
			defer src2.Close()
			l, err := Reserve(w, rows, cols, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			src2.CopyTo(&l.Mat) // same size and type: written into the slot
			n2 := l.Number()
			if err := l.Commit(0); err != nil {
				t.Fatal(err)
			}
			v, err := r.Acquire(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if v.Frame().Number != n2 {
				t.Fatalf("view of frame %d, want %d", v.Frame().Number, n2)
			}
			vm, err := ViewMat(&v)
			if err != nil {
				v.Release()
				t.Fatal(err)
			}
			got2 := vm.ToBytes()
			vm.Close()
			if err := v.Release(); err != nil {
				t.Fatalf("release: %v", err)
			}
			if !bytes.Equal(got2, want2) {
				t.Fatal("viewed Mat differs from what was written into the loaned Mat")
			}
		})
	}
}

// TestLoanAliasesSlot shows that the loaned Mat is the slot: bytes written
// through it arrive without any publish copy, and a reallocation is
// refused.
func TestLoanAliasesSlot(t *testing.T) {
	w, r := openPair(t, 64*64*3)
	l, err := Reserve(w, 8, 16, ring.Gray8)
	if err != nil {
		t.Fatal(err)
	}
	if !SameData(l.Mat, l.Loan().Data()) {
		t.Fatal("loaned Mat does not start at the slot's payload")
	}
	l.Mat.SetUCharAt(3, 5, 200)
	if got := l.Loan().Data()[3*16+5]; got != 200 {
		t.Fatalf("slot byte is %d after writing 200 through the Mat", got)
	}
	if err := l.Commit(0); err != nil {
		t.Fatal(err)
	}
	f, err := r.Read(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Data[3*16+5] != 200 {
		t.Fatalf("reader sees %d, want 200", f.Data[3*16+5])
	}

	// A destination of another size makes OpenCV reallocate: Commit must
	// notice and publish nothing.
	l, err = Reserve(w, 8, 16, ring.Gray8)
	if err != nil {
		t.Fatal(err)
	}
	big, _ := randomMat(t, 20, 30, gocv.MatTypeCV8UC1, 3)
	defer big.Close()
	big.CopyTo(&l.Mat)
	err = l.Commit(0)
	if !errors.Is(err, ErrReallocated) {
		t.Fatalf("commit after reallocation: %v, want ErrReallocated", err)
	}
	if head := w.Stats().Ring.Head; head != f.Number {
		t.Fatalf("head is %d after a refused commit, want %d", head, f.Number)
	}
}

func TestMatOverStride(t *testing.T) {
	// 3 rows of 4 BGR pixels (12 bytes) with a stride of 15.
	const rows, cols, stride = 3, 4, 15
	b := make([]byte, rows*stride)
	for i := range b {
		b[i] = byte(i)
	}
	m, err := MatOver(b, rows, cols, gocv.MatTypeCV8UC3, stride)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Rows() != rows || m.Cols() != cols || m.Step() != stride {
		t.Fatalf("Mat %dx%d step %d, want %dx%d step %d", m.Cols(), m.Rows(), m.Step(), cols, rows, stride)
	}
	for y := 0; y < rows; y++ {
		for x := 0; x < cols*3; x++ {
			if got, want := m.GetUCharAt(y, x), b[y*stride+x]; got != want {
				t.Fatalf("(%d,%d) = %d, want %d", y, x, got, want)
			}
		}
	}
	if _, err := MatOver(b, rows, cols, gocv.MatTypeCV8UC3, 14); err == nil {
		t.Fatal("stride 14 (not a multiple of 3) accepted")
	}
	if _, err := MatOver(b[:20], rows, cols, gocv.MatTypeCV8UC3, 0); !errors.Is(err, ring.ErrFrameTooLarge) {
		t.Fatalf("short buffer: %v, want ErrFrameTooLarge", err)
	}
}

func TestFormats(t *testing.T) {
	for _, f := range []ring.PixelFormat{ring.Gray8, ring.YUYV, ring.BGR8, ring.BGRA8, ring.Gray16} {
		mt, err := MatType(f)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FormatOf(mt)
		if err != nil || back != f {
			t.Fatalf("%v -> %v -> %v, %v", f, mt, back, err)
		}
	}
	if _, err := MatType(ring.Raw); err == nil {
		t.Fatal("raw has a Mat type")
	}
	if _, err := FormatOf(gocv.MatTypeCV32FC1); err == nil {
		t.Fatal("32-bit float Mat accepted")
	}
}

// writeVideo writes n frames of rows x cols BGR (MJPG in AVI) with OpenCV
// and returns the file, or skips when this OpenCV cannot write video.
func writeVideo(t *testing.T, n, rows, cols int) string {
	t.Helper()
	path := t.TempDir() + "/test.avi"
	vw, err := gocv.VideoWriterFile(path, "MJPG", 25, cols, rows, true)
	if err != nil || !vw.IsOpened() {
		t.Skipf("OpenCV cannot write an MJPG AVI here (%v): no video to capture", err)
	}
	defer vw.Close()
	for i := 0; i < n; i++ {
		m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(i*20), 100, 200, 0), rows, cols, gocv.MatTypeCV8UC3)
		if err := vw.Write(m); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	return path
}

// TestCaptureIntoSlot decodes a video with VideoCapture.Read straight
// into loaned slots and checks what readers get against a plain decode.
func TestCaptureIntoSlot(t *testing.T) {
	const n, rows, cols = 5, 48, 64
	path := writeVideo(t, n, rows, cols)
	// Reference: decode into ordinary Mats.
	var want [][]byte
	ref, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := gocv.NewMat()
	for ref.Read(&m) && !m.Empty() {
		want = append(want, m.ToBytes())
	}
	m.Close()
	ref.Close()
	if len(want) != n {
		t.Fatalf("reference decode gave %d frames, want %d", len(want), n)
	}

	w, r := openPair(t, rows*cols*3)
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	for i := 0; ; i++ {
		l, err := Reserve(w, rows, cols, ring.BGR8)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Read(vc) {
			l.Abort()
			if i != n {
				t.Fatalf("capture ended after %d frames, want %d", i, n)
			}
			break
		}
		if !SameData(l.Mat, l.Loan().Data()) {
			t.Fatal("VideoCapture.Read reallocated the loaned Mat: it did not decode into the slot")
		}
		if err := l.Commit(0); err != nil {
			t.Fatal(err)
		}
		f, err := r.Read(ctx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, want[i]) {
			t.Fatalf("frame %d captured into the slot differs from the reference decode", i)
		}
	}
}
