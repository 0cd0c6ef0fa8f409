package producer_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// memVariant is one way of preparing a segment's memory.
type memVariant struct {
	name string
	dir  string // "" means a fresh directory on /dev/shm
	opts producer.Options
}

// memVariants: without and with the prefault on /dev/shm (huge=never
// here), and, when FRAMERING_HUGE_DIR names a tmpfs mounted huge=advise,
// without and with huge pages there, prefaulted (mount -t tmpfs -o
// size=1g,huge=advise none DIR).
func memVariants(b *testing.B) []memVariant {
	vs := []memVariant{
		{name: "noprefault", opts: producer.Options{NoPrefault: true}},
		{name: "prefault"},
	}
	if d := os.Getenv("FRAMERING_HUGE_DIR"); d != "" {
		if mode, err := shm.HugePages(d); err != nil || mode != shm.HugeAdvise {
			b.Fatalf("FRAMERING_HUGE_DIR=%s: huge pages %v, %v; want a tmpfs mounted huge=advise", d, mode, err)
		}
		vs = append(vs,
			memVariant{name: "advisemount-nohugepages", dir: d, opts: producer.Options{NoHugePages: true}},
			memVariant{name: "advisemount-hugepages", dir: d})
	}
	return vs
}

// options are v's options for a ring of slots frames of w x h x 3, in
// v's directory or a fresh one on /dev/shm.
func (v memVariant) options(b *testing.B, w, h, slots int) producer.Options {
	o := v.opts
	o.Dir, o.MaxWidth, o.MaxHeight, o.Slots = v.dir, w, h, slots
	if o.Dir == "" {
		o.Dir = testutil.ShmDir(b)
	}
	return o
}

var ringShapes = []struct{ w, h int }{{1920, 1080}, {3840, 2160}}

// BenchmarkOpen is the creation time of an 8-slot ring (Open of a new
// segment: create, reserve, map, prefault, format), in open_ms, and the
// time of a reader's consumer.Open of it (which prefaults its own
// mapping), in reader_open_ms.
func BenchmarkOpen(b *testing.B) {
	for _, s := range ringShapes {
		for _, v := range memVariants(b) {
			b.Run(fmt.Sprintf("%dx%dx3x8/%s", s.w, s.h, v.name), func(b *testing.B) {
				opts := v.options(b, s.w, s.h, 8)
				dir := opts.Dir
				var total, rtotal time.Duration
				n := 0
				for b.Loop() {
					name := testutil.Name(b)
					t0 := time.Now()
					w, err := producer.Open(name, opts)
					total += time.Since(t0)
					if err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					r, err := consumer.Open(name, consumer.Options{Dir: dir})
					rtotal += time.Since(t1)
					if err != nil {
						b.Fatal(err)
					}
					r.Close()
					w.Remove()
					n++
				}
				b.ReportMetric(float64(total.Microseconds())/1e3/float64(n), "open_ms")
				b.ReportMetric(float64(rtotal.Microseconds())/1e3/float64(n), "reader_open_ms")
			})
		}
	}
}

// BenchmarkFirstFrames publishes the first 300 frames (10 s at 30 fps)
// into a fresh 8-slot ring, back to back, each read right after by a
// reader with its own mapping (consumer.Read, copy-out), and compares the
// first frames with the steady state. The source frame is read through
// (warm) before each Publish, untimed. It reports:
//
//   - first_us: the median over rings of the very first Publish;
//     slot1st_us: the median of the first Publish into each slot (frames
//     1-8), the ones that would take the page faults; steady_us: the
//     median of frames 17-300; first/steady and slot1st/steady (goal:
//     first/steady <= 1.5);
//   - p99_us and max_us of Publish over all 300 frames of every ring;
//   - read_slot1st_us, read_steady_us: the same medians for the reader's
//     Read, whose own mapping would pay at its first read of each slot
//     whatever the writer did (consumer.Open prefaults it).
func BenchmarkFirstFrames(b *testing.B) {
	const frames, slots = 300, 8
	for _, s := range ringShapes {
		for _, v := range memVariants(b) {
			b.Run(fmt.Sprintf("%dx%dx3/%s", s.w, s.h, v.name), func(b *testing.B) {
				opts := v.options(b, s.w, s.h, slots)
				dir := opts.Dir
				n := s.w * s.h * 3
				px := make([]byte, n)
				for i := range px {
					px[i] = byte(i)
				}
				dst := make([]byte, n)
				clear(dst) // both private buffers resident before timing
				info := ring.FrameInfo{Width: s.w, Height: s.h, Format: ring.BGR8}
				var first, slot1st, steady, all, rSlot1st, rSteady []time.Duration
				for b.Loop() {
					name := testutil.Name(b)
					w, err := producer.Open(name, opts)
					if err != nil {
						b.Fatal(err)
					}
					r, err := consumer.Open(name, consumer.Options{Dir: dir})
					if err != nil {
						b.Fatal(err)
					}
					for f := 0; f < frames; f++ {
						warm(px)
						t0 := time.Now()
						if _, err := w.Publish(info, px); err != nil {
							b.Fatal(err)
						}
						t1 := time.Now()
						if _, err := r.Read(context.Background(), dst); err != nil {
							b.Fatal(err)
						}
						t2 := time.Now()
						pub, read := t1.Sub(t0), t2.Sub(t1)
						all = append(all, pub)
						switch {
						case f == 0:
							first = append(first, pub)
							fallthrough
						case f < slots:
							slot1st = append(slot1st, pub)
							rSlot1st = append(rSlot1st, read)
						case f >= 2*slots:
							steady = append(steady, pub)
							rSteady = append(rSteady, read)
						}
					}
					r.Close()
					w.Remove()
				}
				us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
				med := median(steady)
				b.ReportMetric(us(median(first)), "first_us")
				b.ReportMetric(us(median(slot1st)), "slot1st_us")
				b.ReportMetric(us(med), "steady_us")
				b.ReportMetric(float64(median(first))/float64(med), "first/steady")
				b.ReportMetric(float64(median(slot1st))/float64(med), "slot1st/steady")
				b.ReportMetric(us(quantile(all, 0.99)), "p99_us")
				b.ReportMetric(us(quantile(all, 1)), "max_us")
				b.ReportMetric(us(median(rSlot1st)), "read_slot1st_us")
				b.ReportMetric(us(median(rSteady)), "read_steady_us")
			})
		}
	}
}

// warm reads a line of every 64 bytes of b, as a producer that has just
// rendered or decoded the frame would have it in its caches. Without it,
// the first frame of each ring reads its source from memory: Open's
// allocation zeroes the whole segment (50 MB for 8 slots of 1920x1080x3)
// through the caches, which a back-to-back benchmark then blames on the
// first Publish (1.5x steady state here, against 1.1x warmed).
func warm(b []byte) {
	var s byte
	for i := 0; i < len(b); i += 64 {
		s += b[i]
	}
	warmSink = s
}

var warmSink byte

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}
