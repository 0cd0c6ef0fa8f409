package metrics

import (
	"github.com/framering/framering/producer"
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "framering"

// spec is a metric's name and help; collectors build their descriptions
// from it with their own labels.
type spec struct{ subsystem, name, help string }

// desc builds the description of s: the const labels fix ring (and reader)
// per collector, so that several rings and readers register side by side
// in one registry; variable labels are filled in at collection.
func (s spec) desc(constLabels prometheus.Labels, variable ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, s.subsystem, s.name), s.help, variable, constLabels)
}

// The writer's own counters (this process, this writer).
var (
	writerFrames       = spec{"writer", "published_frames_total", "Frames this writer published (committed) since it opened the ring."}
	writerBytes        = spec{"writer", "published_bytes_total", "Payload bytes this writer published since it opened the ring."}
	writerPublish      = spec{"writer", "publish_duration_seconds", "Time from the start of Publish (or Reserve) to the end of the commit."}
	writerAborts       = spec{"writer", "aborts_total", "Reservations (loans) rolled back without publishing."}
	writerMirrorErrors = spec{"writer", "mirror_errors_total", "Frames the mirror (legacy slot) refused."}
	writerRestarts     = spec{"writer", "restarts_total", "Writer opens of this ring before the current writer (generation - 1)."}
)

// WriterCollector exports a [producer.Writer]'s counters
// (framering_writer_*). It reads them when scraped; publishing makes no
// Prometheus call.
//
// It does not export the ring's superblock (framering_ring_*): the
// exporter does, for every ring on the host, and one series must have one
// source, or sum by (ring) counts every frame once per source. The
// exporter is the owner because it sees what a writer cannot report about
// itself (writer up, heartbeat and newest-frame age; the ring after the
// writer died) and covers writers that register no collector.
type WriterCollector struct {
	w                                               *producer.Writer
	frames, bytes, publish, aborts, mirror, restart *prometheus.Desc
}

// NewWriterCollector returns a collector of w's metrics, labelled with the
// ring name. Unregister it before closing w.
func NewWriterCollector(w *producer.Writer) *WriterCollector {
	l := prometheus.Labels{"ring": w.Name()}
	return &WriterCollector{
		w:       w,
		frames:  writerFrames.desc(l),
		bytes:   writerBytes.desc(l),
		publish: writerPublish.desc(l),
		aborts:  writerAborts.desc(l),
		mirror:  writerMirrorErrors.desc(l),
		restart: writerRestarts.desc(l),
	}
}

// Describe implements [prometheus.Collector].
func (c *WriterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.bytes, c.publish, c.aborts, c.mirror, c.restart} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c *WriterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(st.Frames))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.Bytes))
	ch <- LatencyHistogram(c.publish, st.Publish, publishBuckets)
	ch <- prometheus.MustNewConstMetric(c.aborts, prometheus.CounterValue, float64(st.Aborts))
	ch <- prometheus.MustNewConstMetric(c.mirror, prometheus.CounterValue, float64(st.MirrorErrors))
	ch <- prometheus.MustNewConstMetric(c.restart, prometheus.CounterValue, float64(st.Restarts))
}

// RegisterWriter registers the collector of w into reg. Metrics carry the
// label ring="<name>". It fails if a collector for the same ring is
// already registered there.
func RegisterWriter(reg prometheus.Registerer, w *producer.Writer) error {
	if err := reg.Register(NewWriterCollector(w)); err != nil {
		return registerErr("writer", w.Name(), "", err)
	}
	return nil
}
