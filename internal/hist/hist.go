// Package hist is a lock-free log-linear histogram of non-negative int64
// values (nanoseconds, in framering), in the manner of HdrHistogram: 32
// sub-buckets per power of two, so any quantile is within 3.2 % of the true
// value. One goroutine records; any goroutine may take a snapshot, and
// hand it to users as a [ring.Latency].
package hist

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/framering/framering/ring"
)

const (
	subBits = 5
	sub     = 1 << subBits
	// MaxValue is the largest value recorded exactly in its bucket; larger
	// values go to the last bucket.
	MaxValue = 1<<40 - 1
	nBuckets = (40-subBits-1)*sub + 2*sub
)

// Index returns the bucket of v.
func Index(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > MaxValue {
		v = MaxValue
	}
	u := uint64(v)
	if u < 2*sub {
		return int(u)
	}
	e := bits.Len64(u) - subBits - 1
	return e*sub + int(u>>e)
}

// Bounds returns the smallest value of bucket i and the bucket's width.
func Bounds(i int) (lo, width int64) {
	if i < 2*sub {
		return int64(i), 1
	}
	e := i/sub - 1
	m := int64(i%sub + sub)
	return m << e, 1 << e
}

// Histogram counts values. The zero value is ready to use. Record is safe
// for one goroutine at a time; Snapshot is safe from any goroutine.
type Histogram struct {
	counts [nBuckets]atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

// Record adds v.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[Index(v)].Add(1)
	h.sum.Add(v)
	if v > h.max.Load() {
		h.max.Store(v)
	}
}

// Snapshot is a copy of a histogram's counts.
type Snapshot struct {
	Counts [nBuckets]uint64
	Count  uint64
	Sum    int64
	Max    int64
}

// Snapshot copies the counts. Taken while Record runs, it may be off by the
// values recorded meanwhile.
func (h *Histogram) Snapshot() *Snapshot {
	s := &Snapshot{Sum: h.sum.Load(), Max: h.max.Load()}
	for i := range h.counts {
		c := h.counts[i].Load()
		s.Counts[i] = c
		s.Count += c
	}
	return s
}

// Merge adds o's counts to s.
func (s *Snapshot) Merge(o *Snapshot) {
	for i := range s.Counts {
		s.Counts[i] += o.Counts[i]
	}
	s.Count += o.Count
	s.Sum += o.Sum
	s.Max = max(s.Max, o.Max)
}

// Latency returns the snapshot as a [ring.Latency] of nanosecond values:
// quantiles, mean, and the buckets package metrics exports.
func (s *Snapshot) Latency() ring.Latency {
	var bs []ring.LatencyBucket
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		lo, w := Bounds(i)
		bs = append(bs, ring.LatencyBucket{Low: time.Duration(lo), High: time.Duration(lo + w - 1), Count: c})
	}
	// Buckets come from Bounds, ascending and disjoint: NewLatency cannot fail.
	l, _ := ring.NewLatency(bs, time.Duration(s.Sum), time.Duration(s.Max))
	return l
}
