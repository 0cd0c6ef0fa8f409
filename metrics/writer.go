package metrics

import (
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
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

// A ring's superblock, shared by the writer's collector and the exporter.
var (
	ringFrames       = spec{"ring", "frames_total", "Frames committed into the ring since the segment was created, by all its writers."}
	ringBytes        = spec{"ring", "bytes_total", "Payload bytes committed into the ring since the segment was created."}
	ringHead         = spec{"ring", "head_frame", "Number of the newest committed frame (0: none yet)."}
	ringGeneration   = spec{"ring", "generation", "Writer opens of the ring since it was created: 1 for the first writer; restarts are generation - 1."}
	ringSize         = spec{"ring", "size_bytes", "Size of the shared-memory segment."}
	ringSlots        = spec{"ring", "slots", "Slot count of the ring."}
	ringSlotCapacity = spec{"ring", "slot_capacity_bytes", "Payload capacity of one slot."}
)

// ringDescs are the superblock metrics' descriptions.
type ringDescs struct {
	frames, bytes, head, generation, size, slots, slotCap *prometheus.Desc
}

func newRingDescs(constLabels prometheus.Labels, variable ...string) ringDescs {
	return ringDescs{
		frames:     ringFrames.desc(constLabels, variable...),
		bytes:      ringBytes.desc(constLabels, variable...),
		head:       ringHead.desc(constLabels, variable...),
		generation: ringGeneration.desc(constLabels, variable...),
		size:       ringSize.desc(constLabels, variable...),
		slots:      ringSlots.desc(constLabels, variable...),
		slotCap:    ringSlotCapacity.desc(constLabels, variable...),
	}
}

func (d *ringDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.frames, d.bytes, d.head, d.generation, d.size, d.slots, d.slotCap} {
		ch <- x
	}
}

// collect emits the superblock metrics of st. A zero geometry (a
// superblock that could not be read) emits nothing.
func (d *ringDescs) collect(ch chan<- prometheus.Metric, st *ring.Status, labels ...string) {
	g := st.Geometry
	if g.Slots == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(d.frames, prometheus.CounterValue, float64(st.FramesTotal), labels...)
	ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(st.BytesTotal), labels...)
	ch <- prometheus.MustNewConstMetric(d.head, prometheus.GaugeValue, float64(st.Head), labels...)
	ch <- prometheus.MustNewConstMetric(d.generation, prometheus.GaugeValue, float64(st.Generation), labels...)
	ch <- prometheus.MustNewConstMetric(d.size, prometheus.GaugeValue, float64(g.Size()), labels...)
	ch <- prometheus.MustNewConstMetric(d.slots, prometheus.GaugeValue, float64(g.Slots), labels...)
	ch <- prometheus.MustNewConstMetric(d.slotCap, prometheus.GaugeValue, float64(g.PayloadCap), labels...)
}

// WriterCollector exports a [producer.Writer]'s counters. It reads them
// when scraped; publishing makes no Prometheus call.
type WriterCollector struct {
	w                                               *producer.Writer
	frames, bytes, publish, aborts, mirror, restart *prometheus.Desc
	ring                                            ringDescs
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
		ring:    newRingDescs(l),
	}
}

// Describe implements [prometheus.Collector].
func (c *WriterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.bytes, c.publish, c.aborts, c.mirror, c.restart} {
		ch <- d
	}
	c.ring.describe(ch)
}

// Collect implements [prometheus.Collector].
func (c *WriterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(st.Frames))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.Bytes))
	ch <- newHistMetric(c.publish, st.Publish, publishBuckets)
	ch <- prometheus.MustNewConstMetric(c.aborts, prometheus.CounterValue, float64(st.Aborts))
	ch <- prometheus.MustNewConstMetric(c.mirror, prometheus.CounterValue, float64(st.MirrorErrors))
	ch <- prometheus.MustNewConstMetric(c.restart, prometheus.CounterValue, float64(st.Restarts))
	c.ring.collect(ch, &st.Ring)
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
