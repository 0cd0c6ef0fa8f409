package metrics

import (
	"errors"
	"fmt"

	"github.com/framering/framering/consumer"
	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of the reason label of
// framering_reader_dropped_frames_total.
const (
	ReasonLapped      = "lapped"      // Ordered reader: overwritten before it got to them
	ReasonSkipped     = "skipped"     // Latest reader: passed over for a newer frame
	ReasonOverwritten = "overwritten" // views whose slot was overwritten before Release
	ReasonCorrupt     = "corrupt"     // frames whose slot header failed validation
	ReasonAbandoned   = "abandoned"   // views released because ReadInPlace's callback panicked
	ReasonWriterGone  = "writer_gone" // reads that ended with ring.ErrWriterGone
)

var (
	readerDelivered = spec{"reader", "delivered_frames_total",
		"Frames delivered to the application: returned by Read, or released valid from a view."}
	readerDropped = spec{"reader", "dropped_frames_total",
		"Frames the reader did not deliver, by reason: lapped, skipped, overwritten, corrupt and abandoned are frames of the reader's window; " +
			"writer_gone counts interruptions (reads that returned ErrWriterGone), not numbered frames."}
	readerRetries = spec{"reader", "read_retries_total",
		"Reads thrown away and retried because the writer changed the slot meanwhile (torn reads caught by the seqlock)."}
	readerLatency = spec{"reader", "delivery_latency_seconds",
		"Time from the start of publishing a frame to its delivery to this reader (CLOCK_MONOTONIC)."}
	readerLag = spec{"reader", "lag_frames",
		"Frames between the frame delivered last and the newest one, as of that delivery: a sample, not a maximum " +
			"(laps between scrapes show in framering_reader_dropped_frames_total{reason=\"lapped\"})."}
	readerWriterUp = spec{"reader", "writer_up",
		"1 while the reader sees a live writer, 0 between writer gone and its return."}
	readerResumes = spec{"reader", "resumes_total",
		"Times a writer came back after the reader saw it gone."}
)

// ReaderCollector exports a [consumer.Reader]'s counters. It reads them
// when scraped; reading frames makes no Prometheus call.
type ReaderCollector struct {
	r                                                     *consumer.Reader
	name                                                  string
	delivered, dropped, retries, latency, lag, up, resume *prometheus.Desc
}

// NewReaderCollector returns a collector of r's metrics labelled
// ring="<ring name>" and reader=name. Give each reader of a process a
// short, stable name (its role: "detector", "recorder"); an empty name
// becomes "default".
func NewReaderCollector(name string, r *consumer.Reader) *ReaderCollector {
	if name == "" {
		name = "default"
	}
	l := prometheus.Labels{"ring": r.Name(), "reader": name}
	return &ReaderCollector{
		r:         r,
		name:      name,
		delivered: readerDelivered.desc(l),
		dropped:   readerDropped.desc(l, "reason"),
		retries:   readerRetries.desc(l),
		latency:   readerLatency.desc(l),
		lag:       readerLag.desc(l),
		up:        readerWriterUp.desc(l),
		resume:    readerResumes.desc(l),
	}
}

// Describe implements [prometheus.Collector].
func (c *ReaderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.delivered, c.dropped, c.retries, c.latency, c.lag, c.up, c.resume} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c *ReaderCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	up := 0.0
	if st.WriterUp {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(st.Delivered))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Lapped), ReasonLapped)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Skipped), ReasonSkipped)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Overwritten), ReasonOverwritten)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Corrupt), ReasonCorrupt)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Abandoned), ReasonAbandoned)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.WriterGone), ReasonWriterGone)
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(st.Retries))
	ch <- LatencyHistogram(c.latency, st.Latency, latencyBuckets)
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(st.Lag))
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.resume, prometheus.CounterValue, float64(st.Resumes))
}

// RegisterReader registers the collector of r into reg, labelled
// reader=<reader> (see [NewReaderCollector]). It fails if a reader of the
// same ring with the same name is already registered there.
func RegisterReader(reg prometheus.Registerer, reader string, r *consumer.Reader) error {
	c := NewReaderCollector(reader, r)
	if err := reg.Register(c); err != nil {
		return registerErr("reader", r.Name(), c.name, err)
	}
	return nil
}

func registerErr(role, ringName, reader string, err error) error {
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if role == "reader" {
			return fmt.Errorf("metrics: register reader %q of ring %q: %w", reader, ringName, err)
		}
		return fmt.Errorf("metrics: register writer of ring %q: %w", ringName, err)
	}
	return fmt.Errorf("metrics: register %s of ring %q: %w", role, ringName, err)
}
