package ring

import (
	"fmt"
	"time"
)

// Latency is a snapshot of a latency distribution: how long frames took
// from the start of publishing to delivery (consumer.Stats), or to
// publish (producer.Stats). Values are counted in buckets at most 3.2 %
// wide, so a quantile is within 3.2 % of the true value. The zero value is
// an empty distribution. A Latency is immutable and safe for concurrent
// use.
type Latency struct {
	buckets []LatencyBucket // non-empty buckets, ascending
	count   uint64
	sum     time.Duration
	max     time.Duration
}

// LatencyBucket is one bucket of a [Latency]: Count values in [Low, High],
// Cumulative values <= High. Package metrics builds Prometheus histograms
// from them.
type LatencyBucket struct {
	Low, High  time.Duration
	Count      uint64
	Cumulative uint64
}

// NewLatency builds a Latency from its non-empty buckets (ascending, not
// overlapping; Cumulative is computed here), the sum and the largest value
// recorded. The histogram that records latencies (internal/hist) builds
// snapshots with it; tests can too.
func NewLatency(buckets []LatencyBucket, sum, max time.Duration) (Latency, error) {
	l := Latency{buckets: make([]LatencyBucket, 0, len(buckets)), sum: sum, max: max}
	for i, b := range buckets {
		if b.Count == 0 {
			continue
		}
		if b.High < b.Low || b.Low < 0 || i > 0 && b.Low <= buckets[i-1].High {
			return Latency{}, fmt.Errorf("latency bucket %d [%v, %v] is empty or out of order", i, b.Low, b.High)
		}
		l.count += b.Count
		b.Cumulative = l.count
		l.buckets = append(l.buckets, b)
	}
	return l, nil
}

// Count is how many values the distribution holds.
func (l Latency) Count() uint64 { return l.count }

// Sum is the sum of the values.
func (l Latency) Sum() time.Duration { return l.sum }

// Max is the largest value (0 when empty).
func (l Latency) Max() time.Duration { return l.max }

// Mean is the average value (0 when empty).
func (l Latency) Mean() time.Duration {
	if l.count == 0 {
		return 0
	}
	return l.sum / time.Duration(l.count)
}

// Quantile returns the value below which a fraction q of the values fall:
// the middle of the bucket holding it, never more than Max. q >= 1 gives
// Max; an empty distribution gives 0.
func (l Latency) Quantile(q float64) time.Duration {
	if l.count == 0 {
		return 0
	}
	if q >= 1 {
		return l.max
	}
	rank := uint64(max(q, 0)*float64(l.count)) + 1
	for _, b := range l.buckets {
		if b.Cumulative >= rank {
			return min(b.Low+(b.High-b.Low)/2, l.max)
		}
	}
	return l.max
}

// Buckets returns the non-empty buckets in ascending order. The slice is
// the caller's.
func (l Latency) Buckets() []LatencyBucket {
	return append([]LatencyBucket(nil), l.buckets...)
}

// Since returns the distribution of the values recorded after earlier, an
// older snapshot of the same histogram: per-interval quantiles from two
// cumulative snapshots. Its Max is the upper end of its highest bucket (at
// most l.Max), since the largest value of the interval is not kept.
func (l Latency) Since(earlier Latency) Latency {
	var out []LatencyBucket
	j := 0
	for _, b := range l.buckets {
		for j < len(earlier.buckets) && earlier.buckets[j].High < b.Low {
			j++
		}
		if j < len(earlier.buckets) && earlier.buckets[j].Low == b.Low {
			if b.Count <= earlier.buckets[j].Count {
				continue
			}
			b.Count -= earlier.buckets[j].Count
		}
		out = append(out, b)
	}
	d := Latency{buckets: out, sum: max(l.sum-earlier.sum, 0)}
	for i := range d.buckets {
		d.count += d.buckets[i].Count
		d.buckets[i].Cumulative = d.count
	}
	if n := len(d.buckets); n > 0 {
		d.max = min(d.buckets[n-1].High, l.max)
	}
	return d
}

func (l Latency) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", l.count, l.Quantile(0.5), l.Quantile(0.99), l.max)
}
