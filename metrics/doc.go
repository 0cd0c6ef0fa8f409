// Package metrics exports framering's counters to Prometheus.
//
// # Library users
//
// Register a writer's or a reader's collector into your own registry and
// serve it as you serve your other metrics, or with [Serve]:
//
//	reg := prometheus.NewRegistry()
//	if err := metrics.RegisterWriter(reg, w); err != nil { ... }
//	if err := metrics.RegisterReader(reg, "detector", r); err != nil { ... }
//	srv, addr, err := metrics.Serve(":9731", reg)
//	defer srv.Close()
//
// [NewRegistry] is a registry that also holds the go_* and process_*
// collectors and framering_build_info, as the framering commands serve.
//
// Collectors read the writer's and reader's counters when scraped and emit
// constant metrics. Publishing and reading make no Prometheus call, take
// no lock and allocate nothing for metrics: the counters are atomics that
// producer and consumer keep anyway, or words of the superblock.
//
// # Exporter
//
// [Exporter] serves the superblock metrics of every ring in a directory
// (or of named rings) without the applications' help: it maps each
// segment read-only. The framering metrics command runs it.
//
// Each series has one source: framering_ring_* comes from the exporter
// only, framering_writer_* from a writer's collector, framering_reader_*
// from a reader's. So sum by (ring) over everything scraped counts each
// frame once.
//
// # Names
//
// Names are framering_<subsystem>_<name>_<unit>, with _total on counters
// and base units (seconds, bytes). Labels are ring, reader and, on
// framering_reader_dropped_frames_total, reason. Classic histogram
// bounds are exact decimals, 1-2.5-5 per decade ([DecimalBuckets]).
// docs/METRICS.md lists every metric and what each documented query needs;
// mixin/ holds a Grafana dashboard and alert rules.
package metrics
