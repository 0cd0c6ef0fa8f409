// Package metrics exports framering's counters to Prometheus.
//
// (Being written: the signatures below are the contract other packages
// build on; see issue 4.)
package metrics
