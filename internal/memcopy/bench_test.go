package memcopy

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/internal/memcopy/glibc"
	"golang.org/x/sys/unix"
)

// The frame sizes of issue 14: 640x404x3, 1920x1080x3, 3840x2160x3.
var frameSizes = []struct {
	name string
	n    int
}{{"640x404x3", 640 * 404 * 3}, {"1920x1080x3", 1920 * 1080 * 3}, {"3840x2160x3", 3840 * 2160 * 3}}

// A rival is one copy routine in a same-run comparison.
type rival struct {
	name string
	fn   func(dst, src []byte)
}

func rivals(kernels bool) []rival {
	rs := []rival{
		{"go", func(d, s []byte) { copy(d, s) }},
		{"memcopy", func(d, s []byte) { Copy(d, s) }},
	}
	if glibc.Available {
		rs = append(rs, rival{"glibc", func(d, s []byte) { glibc.Memcpy(d, s) }})
	}
	if kernels {
		for _, k := range testKernels {
			if k.ok {
				rs = append(rs, rival{k.name, func(d, s []byte) { k.call(d, s, len(d)) }})
			}
		}
	}
	return rs
}

// BenchmarkCopy compares Copy with the built-in copy and glibc's memcpy
// (when built with cgo) in the same run, interleaved: every iteration
// runs each routine once, in an order that rotates. Cases:
//
//   - hot: the same source every time, and each routine's own destination
//     (cache-resident where they fit);
//   - cold: the source streams through a 256 MiB arena, so it comes from
//     DRAM; the destination is the reader's own buffer, reused;
//   - crosscore: another goroutine, locked to another CPU, writes the
//     whole source just before each copy (with temporal stores) and
//     signals: the copy-out of a slot the writer just filled.
//
// Per routine it reports <name>_MB/s (bytes / the median time of one
// copy; ns/op is the whole iteration, fills included, and means nothing)
// and the ratios memcopy/go and memcopy/glibc of those throughputs (> 1:
// Copy is faster).
func BenchmarkCopy(b *testing.B) {
	for _, mode := range []string{"hot", "cold", "crosscore"} {
		for _, s := range frameSizes {
			b.Run(mode+"/"+s.name, func(b *testing.B) { benchRivals(b, mode, s.n, rivals(false)) })
		}
	}
}

// BenchmarkKernels is the size sweep behind Copy's thresholds: each
// kernel, copy and memcpy, hot and cross-core, from 2 KiB to 24 MiB.
func BenchmarkKernels(b *testing.B) {
	sizes := []int{2 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 512 << 10, 768 << 10, 1 << 20, 3 << 19, 2 << 20, 4 << 20, 8 << 20, 24 << 20}
	for _, mode := range []string{"hot", "crosscore"} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, n>>10), func(b *testing.B) { benchRivals(b, mode, n, rivals(true)) })
		}
	}
}

var (
	arenaOnce sync.Once
	arena     []byte
)

func coldArena() []byte {
	arenaOnce.Do(func() {
		arena = make([]byte, 256<<20)
		fill(arena, 7)
	})
	return arena
}

func benchRivals(b *testing.B, mode string, n int, rs []rival) {
	// Each routine has its own destination, the reader's buffer that it
	// reuses frame after frame: what one routine's stores leave in the
	// caches (or, with non-temporal stores, do not) is its own affair.
	dsts := make([][]byte, len(rs))
	src := make([]byte, n)
	fill(src, 5)
	for j, r := range rs { // first touch and warm-up, untimed
		dsts[j] = make([]byte, n)
		r.fn(dsts[j], src)
	}
	var prep func(i int) []byte // returns the source of copy i
	var done func()
	switch mode {
	case "hot":
		prep = func(int) []byte { return src }
	case "cold":
		a := coldArena()
		slots := len(a) / n
		if slots < 8 {
			b.Skipf("arena holds %d frames of %d bytes; want 8", slots, n)
		}
		prep = func(i int) []byte { off := (i % slots) * n; return a[off : off+n] }
	case "crosscore":
		var cpus unix.CPUSet
		if err := unix.SchedGetaffinity(0, &cpus); err != nil || cpus.Count() < 2 {
			b.Skipf("cross-core case needs 2 CPUs (affinity: %d, %v)", cpus.Count(), err)
		}
		var ids []int
		for c := 0; len(ids) < 2; c++ {
			if cpus.IsSet(c) {
				ids = append(ids, c)
			}
		}
		runtime.LockOSThread()
		pin(b, ids[0])
		w := startWriter(b, ids[1], src)
		prep = w.next
		done = func() {
			w.stop()
			unix.SchedSetaffinity(0, &cpus)
			runtime.UnlockOSThread()
		}
	}
	times := make([][]time.Duration, len(rs))
	copies := 0
	for b.Loop() {
		// Rotate the order, so that each routine follows each other one
		// equally often.
		for k := range rs {
			j := (copies + k) % len(rs)
			s := prep(copies*len(rs) + k)
			t0 := time.Now()
			rs[j].fn(dsts[j], s)
			times[j] = append(times[j], time.Since(t0))
		}
		copies++
	}
	if done != nil {
		done()
	}
	// The median copy: a copy that another process preempted (this
	// machine is shared) does not move it.
	mbs := map[string]float64{}
	for j, r := range rs {
		slices.Sort(times[j])
		mbs[r.name] = float64(n) / times[j][len(times[j])/2].Seconds() / 1e6
		b.ReportMetric(mbs[r.name], r.name+"_MB/s")
	}
	b.ReportMetric(mbs["memcopy"]/mbs["go"], "memcopy/go")
	if g, ok := mbs["glibc"]; ok {
		b.ReportMetric(mbs["memcopy"]/g, "memcopy/glibc")
	}
}

func pin(b *testing.B, cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		b.Fatalf("pin to CPU %d: %v", cpu, err)
	}
}

// writer rewrites src on its own CPU whenever the reader asks for the next
// source, then hands it over: the reader's copy finds src's lines modified
// in the other core's cache.
type writer struct {
	src      []byte
	turn     atomic.Int32 // 0: the writer's turn, 1: the reader's, 2: stop
	finished chan struct{}
}

func startWriter(b *testing.B, cpu int, src []byte) *writer {
	w := &writer{src: src, finished: make(chan struct{})}
	pats := [2][]byte{make([]byte, len(src)), make([]byte, len(src))}
	fill(pats[0], 11)
	fill(pats[1], 12)
	ready := make(chan error)
	go func() {
		defer close(w.finished)
		// Locked for good: the thread's affinity dies with it.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		ready <- unix.SchedSetaffinity(0, &set)
		for i := 0; ; i++ {
			var t int32
			for t = w.turn.Load(); t == 1; t = w.turn.Load() {
			}
			if t == 2 {
				return
			}
			Copy(src, pats[i%2]) // temporal stores on every path
			if !w.turn.CompareAndSwap(0, 1) {
				return // stopped while writing
			}
		}
	}()
	if err := <-ready; err != nil {
		b.Fatalf("pin writer to CPU %d: %v", cpu, err)
	}
	return w
}

// next waits for the writer's fresh source and gives the writer its turn
// back for the copy after this one: called before each copy, it returns
// when the previous copy is done and the new source written.
func (w *writer) next(i int) []byte {
	if i > 0 {
		w.turn.Store(0)
	}
	for w.turn.Load() != 1 {
	}
	return w.src
}

func (w *writer) stop() {
	w.turn.Store(2)
	<-w.finished
}
