package producer_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

var benchSizes = []struct{ w, h, c int }{{640, 404, 3}, {1920, 1080, 3}, {3840, 2160, 3}}

// shmBuffer maps a fresh n-byte object in dir.
func shmBuffer(b *testing.B, dir, name string, n int) []byte {
	f, err := shm.Create(filepath.Join(dir, name), int64(n), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	m, err := shm.Map(f, n, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Unmap(); f.Close() })
	return m.Bytes()
}

// BenchmarkPublish publishes by copy and, interleaved in the same loop,
// copies the same bytes between two shared-memory buffers (the baseline).
// publish/copy is the ratio of the two; the goal is <= 1.1 at 1920x1080x3.
func BenchmarkPublish(b *testing.B) {
	for _, s := range benchSizes {
		n := s.w * s.h * s.c
		b.Run(fmt.Sprintf("%dx%dx%d", s.w, s.h, s.c), func(b *testing.B) {
			dir, name := testutil.ShmDir(b), testutil.Name(b)
			// Baseline buffers rotate like the ring's slots, so both sides
			// write to memory that is equally cold.
			const slots = 4
			var dsts [slots][]byte
			for i := range dsts {
				dsts[i] = shmBuffer(b, dir, fmt.Sprintf("dst%d", i), n)
			}
			src := shmBuffer(b, dir, "src", n)
			for i := range src {
				src[i] = byte(i)
			}
			w, err := producer.Open(name, producer.Options{Dir: dir, Slots: slots, MaxFrameBytes: n})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Remove()
			// Touch every slot once so page faults are not measured.
			for i := 0; i < 2*slots; i++ {
				w.Publish(ring.FrameInfo{Width: s.w, Height: s.h, Format: ring.BGR8}, src)
				copy(dsts[i%slots], src)
			}
			info := ring.FrameInfo{Width: s.w, Height: s.h, Format: ring.BGR8}
			var tCopy, tPub time.Duration
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				t0 := time.Now()
				copy(dsts[i%slots], src)
				t1 := time.Now()
				if _, err := w.Publish(info, src); err != nil {
					b.Fatal(err)
				}
				tPub += time.Since(t1)
				tCopy += t1.Sub(t0)
				i++
			}
			b.ReportMetric(float64(tPub.Nanoseconds())/float64(i), "publish_ns/op")
			b.ReportMetric(float64(tCopy.Nanoseconds())/float64(i), "copy_ns/op")
			b.ReportMetric(float64(tPub)/float64(tCopy), "publish/copy")
		})
	}
}

// BenchmarkLoanCommit is the fixed cost of publishing in place: Reserve
// and Commit with no pixel writes (seqlock, header, head, futex wake).
func BenchmarkLoanCommit(b *testing.B) {
	dir, name := testutil.ShmDir(b), testutil.Name(b)
	w, err := producer.Open(name, producer.Options{Dir: dir, Slots: 8, MaxFrameBytes: 640 * 404 * 3})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Remove()
	info := ring.FrameInfo{Width: 640, Height: 404, Format: ring.BGR8}
	b.ReportAllocs()
	for b.Loop() {
		l, err := w.Reserve(info)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
