package metrics

import (
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/testutil"
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
	if err := LatencyHistogram(prometheus.NewDesc("x", "x", nil, nil), s.Latency(), latencyBuckets).Write(&got); err != nil {
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
	LatencyHistogram(prometheus.NewDesc("x", "x", nil, nil), ring.Latency{}, publishBuckets).Write(&d)
	h := d.GetHistogram()
	if h.GetSampleCount() != 0 || len(h.Bucket) != len(publishBuckets) || len(h.PositiveSpan) != 1 || h.PositiveSpan[0].GetLength() != 0 {
		t.Errorf("empty histogram = %v; want zero counts, %d classic buckets and one no-op span", h, len(publishBuckets))
	}
}

func TestDecimalBuckets(t *testing.T) {
	got := DecimalBuckets(-3, -1)
	want := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1}
	if !slices.Equal(got, want) {
		t.Errorf("DecimalBuckets(-3, -1) = %v, want %v", got, want)
	}
	if got := DecimalBuckets(0, 0); !slices.Equal(got, []float64{1}) {
		t.Errorf("DecimalBuckets(0, 0) = %v, want [1]", got)
	}
	if got := DecimalBuckets(1, 0); got != nil {
		t.Errorf("DecimalBuckets(1, 0) = %v, want nil", got)
	}
}

// leRE matches the le label of a classic bucket line in the text format.
var leRE = regexp.MustCompile(`^([a-z_]+)_bucket\{.*le="([^"]*)".*\} `)

// exposedLe parses a text exposition and returns the le strings of each
// histogram's buckets, in order, per metric name (first series only).
func exposedLe(body string) map[string][]string {
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		m := leRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		name, le := m[1], m[2]
		if seen[name] {
			continue
		}
		out[name] = append(out[name], le)
		if le == "+Inf" {
			seen[name] = true
		}
	}
	return out
}

// TestBucketBoundsExposedExact serves a writer's and a reader's collectors
// over HTTP and checks the le strings in the text exposition, as a scraper
// reads them: exact decimals, 1-2.5-5 per decade, so a query or a rule on
// le="0.001" matches.
func TestBucketBoundsExposedExact(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	w := openWriter(t, dir, name, 4)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next})
	publish(t, w, 3)
	read(t, r, 3)
	reg := prometheus.NewRegistry()
	if err := RegisterWriter(reg, w); err != nil {
		t.Fatal(err)
	}
	if err := RegisterReader(reg, "x", r); err != nil {
		t.Fatal(err)
	}
	srv, addr, err := Serve("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	les := exposedLe(get(t, "http://"+addr.String()+"/metrics"))

	decade := func(exps ...string) []string {
		var s []string
		for _, e := range exps {
			s = append(s, strings.ReplaceAll("1X 2.5X 5X", "X", e))
		}
		return strings.Fields(strings.Join(s, " "))
	}
	// 1e-06 .. 5e-05 are printed in exponent form, as Go's shortest
	// formatting (and Prometheus) does below 1e-4.
	small := decade("e-06", "e-05")
	want := map[string][]string{
		"framering_writer_publish_duration_seconds": append(append(small,
			"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5"),
			"1", "+Inf"),
		"framering_reader_delivery_latency_seconds": append(append(small,
			"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5"),
			"1", "2.5", "5", "10", "+Inf"),
	}
	for name, w := range want {
		if got := les[name]; !slices.Equal(got, w) {
			t.Errorf("%s le = %q\nwant %q", name, got, w)
		}
	}
	if len(les) != len(want) {
		t.Errorf("histograms exposed: %v, want %d", les, len(want))
	}
}
