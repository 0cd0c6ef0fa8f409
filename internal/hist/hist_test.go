package hist

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/framering/framering/ring"
)

func TestIndexBoundsRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<30 + 12345, MaxValue} {
		i := Index(v)
		lo, w := Bounds(i)
		if v < lo || v >= lo+w {
			t.Errorf("value %d: bucket %d covers [%d, %d)", v, i, lo, lo+w)
		}
		if i < prev {
			t.Errorf("value %d: bucket %d below previous %d", v, i, prev)
		}
		prev = i
	}
	if Index(MaxValue) != nBuckets-1 {
		t.Errorf("Index(MaxValue) = %d, want last bucket %d", Index(MaxValue), nBuckets-1)
	}
	// Buckets tile the range with no gap.
	for i := 1; i < nBuckets; i++ {
		lo, _ := Bounds(i)
		plo, pw := Bounds(i - 1)
		if plo+pw != lo {
			t.Fatalf("gap between bucket %d [%d+%d) and %d [%d)", i-1, plo, pw, i, lo)
		}
	}
}

func TestQuantileWithinError(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64() * 50000)
		h.Record(vals[i])
	}
	slices.Sort(vals)
	s := h.Snapshot()
	l := s.Latency()
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals)))]
		got := int64(l.Quantile(q))
		if d := float64(got-want) / float64(want); d > 0.04 || d < -0.04 {
			t.Errorf("q%.3f = %d, exact %d (%.1f%% off)", q, got, want, 100*d)
		}
	}
	if int64(l.Quantile(1)) != vals[len(vals)-1] || int64(l.Max()) != vals[len(vals)-1] {
		t.Errorf("max = %d, want %d", l.Quantile(1), vals[len(vals)-1])
	}
	if s.Count != uint64(len(vals)) || l.Count() != s.Count {
		t.Errorf("count = %d, latency count %d, want %d", s.Count, l.Count(), len(vals))
	}
	var sum int64
	for _, v := range vals {
		sum += v
	}
	if int64(l.Sum()) != sum || int64(l.Mean()) != sum/int64(len(vals)) {
		t.Errorf("sum %d mean %d, want %d %d", l.Sum(), l.Mean(), sum, sum/int64(len(vals)))
	}
	// Buckets: ascending, cumulative, adding up to the count.
	var prev ring.LatencyBucket
	for i, b := range l.Buckets() {
		if b.Count == 0 || b.Low > b.High || (i > 0 && (b.Low <= prev.High || b.Cumulative != prev.Cumulative+b.Count)) {
			t.Fatalf("bucket %d %+v after %+v", i, b, prev)
		}
		prev = b
	}
	if prev.Cumulative != s.Count {
		t.Errorf("last cumulative count %d, want %d", prev.Cumulative, s.Count)
	}
}

// TestLatencySince takes the per-interval distribution of two snapshots of
// one histogram: only the values recorded in between.
func TestLatencySince(t *testing.T) {
	var h Histogram
	for i := 0; i < 1000; i++ {
		h.Record(1000) // 1 µs
	}
	before := h.Snapshot().Latency()
	for i := 0; i < 100; i++ {
		h.Record(5_000_000) // 5 ms
	}
	d := h.Snapshot().Latency().Since(before)
	if d.Count() != 100 {
		t.Fatalf("interval count %d, want 100", d.Count())
	}
	if p := d.Quantile(0.5); p < 4_800_000 || p > 5_200_000 {
		t.Errorf("interval p50 %v, want about 5ms", p)
	}
	if d.Sum() != 100*5*time.Millisecond {
		t.Errorf("interval sum %v", d.Sum())
	}
	if e := h.Snapshot().Latency().Since(h.Snapshot().Latency()); e.Count() != 0 || e.Quantile(0.5) != 0 {
		t.Errorf("nothing recorded in between: %v", e)
	}
}
