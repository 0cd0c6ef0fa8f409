package metrics

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// nativeSchema is the schema of the native histograms: 2^3 = 8 buckets per
// power of two, each about 9 % wide (client_golang's default bucket factor
// 1.1). ring.Latency's buckets are at most 3.2 % wide, so each of them
// falls into one native bucket up to rounding at the edges.
const nativeSchema = 3

// Classic bucket upper bounds, in seconds: 1, 2.5 and 5 per decade, each
// the float nearest its decimal, so that the exposition says le="0.001"
// (not 0.0010000000000000009) and a rule can name the bound.
var (
	// latencyBuckets: 1 µs to 10 s (22 bounds). Spin-mode deliveries take
	// about 1 µs; an ordered reader far behind, seconds.
	latencyBuckets = DecimalBuckets(-6, 1)
	// publishBuckets: 1 µs to 1 s (19 bounds). A publish of a small frame
	// takes about 1 µs, a copy of a 1080p frame a few hundred.
	publishBuckets = DecimalBuckets(-6, 0)
)

// DecimalBuckets returns histogram upper bounds 1, 2.5 and 5 times each
// power of ten from 10^minExp up to 10^maxExp, ascending:
// DecimalBuckets(-3, -1) is 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1.
// Each bound is the float nearest its decimal value (parsed, not
// multiplied), so it is exposed as exactly that decimal ("0.0025",
// "2.5e-05") and queries and rules can match le="0.0025". It returns nil
// if maxExp < minExp.
func DecimalBuckets(minExp, maxExp int) []float64 {
	if maxExp < minExp {
		return nil
	}
	out := make([]float64, 0, 3*(maxExp-minExp)+1)
	for e := minExp; ; e++ {
		for _, m := range []string{"1", "2.5", "5"} {
			v, err := strconv.ParseFloat(m+"e"+strconv.Itoa(e), 64)
			if err != nil {
				panic(err) // cannot happen: a valid literal
			}
			out = append(out, v)
			if e == maxExp {
				return out
			}
		}
	}
}

// nativeBounds are the upper bounds of the fractions (math.Frexp) of the
// native buckets within one power of two: 2^(j/8 - 1) for j = 0..7.
var nativeBounds = func() []float64 {
	b := make([]float64, 1<<nativeSchema)
	for j := range b {
		b[j] = math.Exp2(float64(j)/float64(len(b)) - 1)
	}
	return b
}()

// nativeKey returns the index of the native bucket holding v > 0: the
// bucket (2^((k-1)/8), 2^(k/8)].
func nativeKey(v float64) int {
	frac, exp := math.Frexp(v)
	return sort.SearchFloat64s(nativeBounds, frac) + (exp-1)*len(nativeBounds)
}

// nativeKeyOf returns the native bucket (seconds) of the midpoint of a
// latency bucket, or zeroKey for the bucket of exact zeros.
func nativeKeyOf(b ring.LatencyBucket) int {
	if b.High <= 0 {
		return zeroKey
	}
	mid := float64(b.Low) + float64(b.High-b.Low)/2
	return nativeKey(mid / 1e9)
}

const zeroKey = math.MinInt

// histMetric is a histogram with classic buckets and native buckets in one
// sample, as client_golang's own histograms expose when both are
// configured: the text format shows the classic buckets, a Prometheus that
// negotiates protobuf and enables native histograms also gets the native
// ones.
type histMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	h      dto.Histogram
}

func (m *histMetric) Desc() *prometheus.Desc { return m.desc }

func (m *histMetric) Write(out *dto.Metric) error {
	out.Histogram = &m.h
	out.Label = m.labels
	return nil
}

// LatencyHistogram converts a latency snapshot into a histogram in seconds
// (for collectors: the reader's, the writer's and the bridge's)
// with the given classic upper bounds (seconds, ascending).
//
// Classic buckets count the latency buckets ([ring.Latency.Buckets]) that
// lie entirely at or below each bound, so a cumulative count can be low by
// the contents of the one latency bucket (at most 3.2 % wide) that
// straddles the bound. Native buckets receive each latency bucket at its
// midpoint.
func LatencyHistogram(desc *prometheus.Desc, l ring.Latency, bounds []float64, labelValues ...string) prometheus.Metric {
	m := &histMetric{desc: desc, labels: prometheus.MakeLabelPairs(desc, labelValues)}
	var count, zero uint64
	classic := make([]uint64, len(bounds))
	var nb nativeBuilder
	boundsNs := make([]time.Duration, len(bounds))
	for i, ub := range bounds {
		boundsNs[i] = time.Duration(math.Round(ub * 1e9))
	}
	b := 0
	// Latency buckets ascend, and so do their native keys and the classic
	// bounds: one pass fills both.
	for _, lb := range l.Buckets() {
		c := lb.Count
		count += c
		if k := nativeKeyOf(lb); k == zeroKey {
			zero += c
		} else {
			nb.add(k, int64(c))
		}
		// The bucket's largest value against the bounds, in whole
		// nanoseconds: no float rounding decides which bound a bucket
		// ending exactly on it belongs to.
		for b < len(bounds) && boundsNs[b] < lb.High {
			b++
		}
		if b < len(bounds) {
			classic[b] += c
		}
	}
	sum := l.Sum().Seconds()
	m.h.SampleCount = &count
	m.h.SampleSum = &sum
	m.h.Bucket = make([]*dto.Bucket, len(bounds))
	buckets := make([]dto.Bucket, len(bounds))
	cums := make([]uint64, len(bounds))
	ubs := append([]float64(nil), bounds...)
	var cum uint64
	for i := range bounds {
		cum += classic[i]
		cums[i] = cum
		buckets[i] = dto.Bucket{CumulativeCount: &cums[i], UpperBound: &ubs[i]}
		m.h.Bucket[i] = &buckets[i]
	}
	schema := int32(nativeSchema)
	threshold := prometheus.DefNativeHistogramZeroThreshold
	m.h.Schema = &schema
	m.h.ZeroThreshold = &threshold
	m.h.ZeroCount = &zero
	m.h.PositiveSpan, m.h.PositiveDelta = nb.finish()
	if len(m.h.PositiveSpan) == 0 && zero == 0 {
		// A no-op span, so that scrapers see a native histogram without
		// observations rather than a classic one.
		m.h.PositiveSpan = []*dto.BucketSpan{{Offset: ptr(int32(0)), Length: ptr(uint32(0))}}
	}
	return m
}

// nativeBuilder encodes bucket counts, added in ascending key order
// (repeated keys add up), as spans and deltas, the native histogram wire
// form. As client_golang does, a gap of up to two empty buckets continues
// a span rather than starting a new one.
type nativeBuilder struct {
	keys   []int
	counts []int64
}

func (nb *nativeBuilder) add(k int, c int64) {
	if n := len(nb.keys); n > 0 && nb.keys[n-1] == k {
		nb.counts[n-1] += c
		return
	}
	nb.keys = append(nb.keys, k)
	nb.counts = append(nb.counts, c)
}

func (nb *nativeBuilder) finish() ([]*dto.BucketSpan, []int64) {
	if len(nb.keys) == 0 {
		return nil, nil
	}
	var (
		spans  []*dto.BucketSpan
		deltas = make([]int64, 0, len(nb.keys))
		prev   int64
		next   int
	)
	add := func(c int64) {
		*spans[len(spans)-1].Length++
		deltas = append(deltas, c-prev)
		prev = c
	}
	for n, k := range nb.keys {
		gap := k - next
		if n == 0 || gap > 2 {
			spans = append(spans, &dto.BucketSpan{Offset: ptr(int32(gap)), Length: ptr(uint32(0))})
		} else {
			for range gap {
				add(0)
			}
		}
		add(nb.counts[n])
		next = k + 1
	}
	return spans, deltas
}

func ptr[T any](v T) *T { return &v }
