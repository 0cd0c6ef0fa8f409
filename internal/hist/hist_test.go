package hist

import (
	"math/rand/v2"
	"slices"
	"testing"
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
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals)))]
		got := s.Quantile(q)
		if d := float64(got-want) / float64(want); d > 0.04 || d < -0.04 {
			t.Errorf("q%.3f = %d, exact %d (%.1f%% off)", q, got, want, 100*d)
		}
	}
	if s.Quantile(1) != vals[len(vals)-1] {
		t.Errorf("max = %d, want %d", s.Quantile(1), vals[len(vals)-1])
	}
	if s.Count != uint64(len(vals)) {
		t.Errorf("count = %d, want %d", s.Count, len(vals))
	}
}
