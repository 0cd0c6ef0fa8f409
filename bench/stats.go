package bench

import (
	"github.com/framering/framering/internal/hist"
)

// Quantiles summarizes a latency distribution, in ns. Values come from a
// log-linear histogram: within 3.2 % of the true value.
type Quantiles struct {
	Count uint64 `json:"count"`
	Mean  int64  `json:"mean"`
	P50   int64  `json:"p50"`
	P99   int64  `json:"p99"`
	P999  int64  `json:"p99_9"`
	Max   int64  `json:"max"`
}

// Summarize computes the quantiles of s (all zero when s is empty).
func Summarize(s *hist.Snapshot) Quantiles {
	if s == nil || s.Count == 0 {
		return Quantiles{}
	}
	l := s.Latency()
	return Quantiles{
		Count: l.Count(),
		Mean:  int64(l.Mean()),
		P50:   int64(l.Quantile(0.50)),
		P99:   int64(l.Quantile(0.99)),
		P999:  int64(l.Quantile(0.999)),
		Max:   int64(l.Max()),
	}
}

// CDFPoint says that a fraction F of the values are at most V ns.
type CDFPoint struct {
	V int64   `json:"v"`
	F float64 `json:"f"`
}

// CDF returns the cumulative distribution of s at the upper end of each
// non-empty bucket, thinned to at most maxPoints points (the last point,
// F = 1 at the maximum, is always kept). It is empty for an empty s.
func CDF(s *hist.Snapshot, maxPoints int) []CDFPoint {
	if s == nil || s.Count == 0 {
		return nil
	}
	var pts []CDFPoint
	var seen uint64
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		seen += c
		lo, w := hist.Bounds(i)
		pts = append(pts, CDFPoint{V: min(lo+w-1, s.Max), F: float64(seen) / float64(s.Count)})
	}
	if maxPoints < 2 || len(pts) <= maxPoints {
		return pts
	}
	out := make([]CDFPoint, 0, maxPoints)
	step := float64(len(pts)-1) / float64(maxPoints-1)
	for i := 0; i < maxPoints-1; i++ {
		out = append(out, pts[int(float64(i)*step)])
	}
	return append(out, pts[len(pts)-1])
}

// Mean is the arithmetic mean of xs (0 for none).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Div is a/b, or 0 when either is missing (zero).
func Div(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}
