package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestHistNative checks the native buckets against client_golang's own
// native histogram of schema 3 fed with the midpoints of the internal
// buckets the values fall in.
func TestHistNative(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h hist.Histogram
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                         "ref",
		Buckets:                      latencyBuckets,
		NativeHistogramBucketFactor:  1.1,
		NativeHistogramZeroThreshold: prometheus.DefNativeHistogramZeroThreshold,
	})
	var raw []int64
	for i := range 5000 {
		v := int64(math.Exp(rng.Float64() * math.Log(3e9)))
		if i%100 == 0 {
			v = 0
		}
		raw = append(raw, v)
		h.Record(v)
		lo, w := hist.Bounds(hist.Index(v))
		ref.Observe((float64(lo) + float64(w-1)/2) / 1e9)
	}
	s := h.Snapshot()
	var got, want dto.Metric
	if err := newHistMetric(prometheus.NewDesc("x", "x", nil, nil), s.Latency(), latencyBuckets).Write(&got); err != nil {
		t.Fatal(err)
	}
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	g, w := got.GetHistogram(), want.GetHistogram()
	if g.GetSchema() != w.GetSchema() || g.GetZeroCount() != w.GetZeroCount() || g.GetSampleCount() != w.GetSampleCount() {
		t.Errorf("schema/zero/count = %d/%d/%d, client_golang %d/%d/%d",
			g.GetSchema(), g.GetZeroCount(), g.GetSampleCount(), w.GetSchema(), w.GetZeroCount(), w.GetSampleCount())
	}
	if !slices.Equal(g.PositiveDelta, w.PositiveDelta) || len(g.PositiveSpan) != len(w.PositiveSpan) {
		t.Fatalf("positive deltas %v (%d spans), client_golang %v (%d spans)", g.PositiveDelta, len(g.PositiveSpan), w.PositiveDelta, len(w.PositiveSpan))
	}
	for i := range g.PositiveSpan {
		if g.PositiveSpan[i].GetOffset() != w.PositiveSpan[i].GetOffset() || g.PositiveSpan[i].GetLength() != w.PositiveSpan[i].GetLength() {
			t.Errorf("span %d = %v, client_golang %v", i, g.PositiveSpan[i], w.PositiveSpan[i])
		}
	}
	if math.Abs(g.GetSampleSum()-float64(s.Sum)/1e9) > 1e-9 {
		t.Errorf("sum = %v, want %v", g.GetSampleSum(), float64(s.Sum)/1e9)
	}

	// Classic buckets: never more than the values at or below the bound,
	// never fewer than those 3.2 % (one internal bucket) below it.
	for _, b := range g.Bucket {
		ub := b.GetUpperBound() * 1e9
		var atMost, wellBelow uint64
		for _, v := range raw {
			if float64(v) <= ub {
				atMost++
			}
			if float64(v) <= ub*(1-1.0/32) {
				wellBelow++
			}
		}
		if c := b.GetCumulativeCount(); c > atMost || c < wellBelow {
			t.Errorf("bucket le=%g: %d, want between %d and %d", b.GetUpperBound(), c, wellBelow, atMost)
		}
	}
}

func TestHistEmpty(t *testing.T) {
	var d dto.Metric
	newHistMetric(prometheus.NewDesc("x", "x", nil, nil), ring.Latency{}, publishBuckets).Write(&d)
	h := d.GetHistogram()
	if h.GetSampleCount() != 0 || len(h.Bucket) != len(publishBuckets) || len(h.PositiveSpan) != 1 || h.PositiveSpan[0].GetLength() != 0 {
		t.Errorf("empty histogram = %v; want zero counts, %d classic buckets and one no-op span", h, len(publishBuckets))
	}
}
