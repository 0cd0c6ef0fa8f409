package bridge

import (
	"github.com/framering/framering/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics: docs/METRICS.md and docs/BRIDGE.md list them. A collector
// reads the bridge's counters when Prometheus scrapes; sending and
// receiving make no Prometheus call.

var (
	bridgeLabels = []string{"side", "ring", "subject"}

	descSentFrames = prometheus.NewDesc("framering_bridge_sent_frames_total",
		"Frames a bridge out handed to NATS whole.", bridgeLabels, nil)
	descSentBytes = prometheus.NewDesc("framering_bridge_sent_bytes_total",
		"Bytes a bridge out handed to NATS, message headers included.", bridgeLabels, nil)
	descRecvFrames = prometheus.NewDesc("framering_bridge_received_frames_total",
		"Frames a bridge in received whole and published into its ring.", bridgeLabels, nil)
	descRecvBytes = prometheus.NewDesc("framering_bridge_received_bytes_total",
		"Bytes of the NATS messages a bridge in received, valid or not.", bridgeLabels, nil)
	descMessages = prometheus.NewDesc("framering_bridge_messages_total",
		"NATS messages sent (out) or received (in): chunks and notices.", bridgeLabels, nil)
	descDropped = prometheus.NewDesc("framering_bridge_dropped_frames_total",
		"Frames not carried, by reason: out skipped, disconnected, publish_error; in lost, incomplete, corrupt, too_large, ring_error.",
		append(bridgeLabels, "reason"), nil)
	descChunkErrors = prometheus.NewDesc("framering_bridge_chunk_errors_total",
		"NATS messages a bridge in rejected, by reason: foreign, version, malformed, too_large, inconsistent, duplicate, stale, other_stream.",
		append(bridgeLabels, "reason"), nil)
	descPending = prometheus.NewDesc("framering_bridge_pending_frames",
		"Frames a bridge in has begun to receive and not yet delivered or dropped.", bridgeLabels, nil)
	descReconnects = prometheus.NewDesc("framering_bridge_reconnects_total",
		"Times the NATS connection came back after being lost.", bridgeLabels, nil)
	descDisconnects = prometheus.NewDesc("framering_bridge_disconnects_total",
		"Times the NATS connection was lost.", bridgeLabels, nil)
	descConnected = prometheus.NewDesc("framering_bridge_connected",
		"1 while the NATS connection is up, else 0.", bridgeLabels, nil)
	descSlow = prometheus.NewDesc("framering_bridge_slow_consumer_events_total",
		"Slow-consumer events of the bridge in's NATS client: it could not keep up and dropped messages.", bridgeLabels, nil)
	descClientDropped = prometheus.NewDesc("framering_bridge_slow_consumer_dropped_messages_total",
		"Messages the bridge in's NATS client dropped because the bridge could not keep up.", bridgeLabels, nil)
	descSessions = prometheus.NewDesc("framering_bridge_sessions_total",
		"Sender runs (sessions) a bridge in has followed: 1, plus one per restart of its sender or change of stream.", bridgeLabels, nil)
	descSourceGone = prometheus.NewDesc("framering_bridge_source_gone_total",
		"Out: deaths or closes of the source ring's writer seen. In: notices that the source writer or the sender stopped (the ring's writer was closed in turn).", bridgeLabels, nil)
	descLatency = prometheus.NewDesc("framering_bridge_latency_seconds",
		"Out: source publish to handed to NATS (one host's CLOCK_MONOTONIC). In: source publish to published into this ring, end to end, by the two hosts' wall clocks (as good as their synchronisation).",
		bridgeLabels, nil)
)

// latencyBuckets: 100 µs to 10 s, 1-2.5-5 per decade, exact decimal
// bounds (le="0.001").
var latencyBuckets = metrics.DecimalBuckets(-4, 1)

// Collector returns a Prometheus collector of the bridge out's metrics
// (side="out"). Register it once.
func (o *Out) Collector() prometheus.Collector {
	return &collector{labels: []string{"out", o.cfg.Ring, o.cfg.Subject}, collect: o.collect}
}

// Collector returns a Prometheus collector of the bridge in's metrics
// (side="in"). Register it once.
func (in *In) Collector() prometheus.Collector {
	return &collector{labels: []string{"in", in.cfg.Ring, in.cfg.Subject}, collect: in.collect}
}

type collector struct {
	labels  []string
	collect func(labels []string, ch chan<- prometheus.Metric)
}

// Describe describes nothing: the collector is unchecked, so that a bridge
// out and a bridge in (same metric names, side="out" and side="in") can
// share a registry.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) { c.collect(c.labels, ch) }

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (o *Out) collect(l []string, ch chan<- prometheus.Metric) {
	st := o.Stats()
	counter(ch, descSentFrames, st.Sent, l...)
	counter(ch, descSentBytes, st.Bytes, l...)
	counter(ch, descMessages, st.Messages, l...)
	counter(ch, descDropped, st.Skipped, append(l, "skipped")...)
	counter(ch, descDropped, st.Disconnected, append(l, "disconnected")...)
	counter(ch, descDropped, st.PublishErrors, append(l, "publish_error")...)
	counter(ch, descReconnects, st.Reconnects, l...)
	counter(ch, descDisconnects, st.Disconnects, l...)
	gauge(ch, descConnected, b2f(st.Connected), l...)
	counter(ch, descSourceGone, st.SourceGone, l...)
	ch <- metrics.LatencyHistogram(descLatency, st.Latency, latencyBuckets, l...)
}

func (in *In) collect(l []string, ch chan<- prometheus.Metric) {
	st := in.Stats()
	counter(ch, descRecvFrames, st.Delivered, l...)
	counter(ch, descRecvBytes, st.Bytes, l...)
	counter(ch, descMessages, st.Messages, l...)
	for _, d := range []struct {
		reason string
		v      uint64
	}{{"lost", st.Lost}, {"incomplete", st.Incomplete}, {"corrupt", st.Corrupt}, {"too_large", st.TooLarge}, {"ring_error", st.RingErrors}} {
		counter(ch, descDropped, d.v, append(l, d.reason)...)
	}
	for _, r := range chunkReasons {
		counter(ch, descChunkErrors, st.ChunkErrors[r], append(l, r)...)
	}
	gauge(ch, descPending, float64(st.Pending), l...)
	counter(ch, descReconnects, st.Reconnects, l...)
	counter(ch, descDisconnects, st.Disconnects, l...)
	gauge(ch, descConnected, b2f(st.Connected), l...)
	counter(ch, descSlow, st.SlowConsumer, l...)
	counter(ch, descClientDropped, st.ClientDropped, l...)
	counter(ch, descSessions, st.Sessions, l...)
	counter(ch, descSourceGone, st.SourceGone, l...)
	ch <- metrics.LatencyHistogram(descLatency, st.Latency, latencyBuckets, l...)
}
