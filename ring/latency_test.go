package ring_test

import (
	"testing"
	"time"

	"github.com/framering/framering/ring"
)

func TestLatency(t *testing.T) {
	var zero ring.Latency
	if zero.Count() != 0 || zero.Quantile(0.5) != 0 || zero.Mean() != 0 || zero.Max() != 0 || len(zero.Buckets()) != 0 {
		t.Errorf("zero Latency: %v", zero)
	}
	l, err := ring.NewLatency([]ring.LatencyBucket{
		{Low: 10, High: 19, Count: 90},
		{Low: 20, High: 29, Count: 0}, // empty buckets are dropped
		{Low: 100, High: 199, Count: 10},
	}, 90*15+10*150, 180)
	if err != nil {
		t.Fatal(err)
	}
	if l.Count() != 100 || l.Mean() != (90*15+10*150)/100 || l.Max() != 180 {
		t.Errorf("count %d mean %v max %v", l.Count(), l.Mean(), l.Max())
	}
	for q, want := range map[float64]time.Duration{0: 14, 0.5: 14, 0.89: 14, 0.9: 149, 0.99: 149, 1: 180} {
		if got := l.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	b := l.Buckets()
	if len(b) != 2 || b[0].Cumulative != 90 || b[1].Cumulative != 100 {
		t.Errorf("buckets %+v", b)
	}
	b[0].Count = 0 // the caller's copy
	if l.Buckets()[0].Count != 90 {
		t.Error("Buckets returned the Latency's own slice")
	}
	if _, err := ring.NewLatency([]ring.LatencyBucket{{Low: 100, High: 199, Count: 1}, {Low: 10, High: 19, Count: 1}}, 0, 0); err == nil {
		t.Error("buckets out of order accepted")
	}
}
