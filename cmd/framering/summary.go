package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/framering/framering/consumer"
)

// recvSummary is what recv prints at exit: a line for people, a
// `summary key=value ...` line for programs (the keys of the Python CLI,
// in its order, then the Go reader's own), or with --json one object with
// the same keys. The names are stable; docs/CLI.md documents them.
type recvSummary struct {
	Ring        string `json:"ring"`
	Mode        string `json:"mode"`
	Start       string `json:"start"`
	Delivered   uint64 `json:"delivered"`
	Lapped      uint64 `json:"lapped"`
	Skipped     uint64 `json:"skipped"`
	Overwritten uint64 `json:"overwritten"`
	Corrupt     uint64 `json:"corrupt"`
	Retries     uint64 `json:"retries"`
	WriterGone  uint64 `json:"writer_gone"`
	Resumes     uint64 `json:"resumes"`
	Resets      uint64 `json:"resets"`
	WindowStart uint64 `json:"window_start"`
	Last        uint64 `json:"last"`
	Considered  uint64 `json:"considered"` // delivered + dropped
	WriterUp    bool   `json:"writer_up"`
	Dropped     uint64 `json:"dropped"`
	Verified    int    `json:"verified"`
	Mismatches  int    `json:"mismatches"`
	// The Go reader's own, after the Python CLI's keys.
	Abandoned      uint64 `json:"abandoned"`
	LatencySamples uint64 `json:"latency_samples"`
	P50ns          int64  `json:"p50_ns"`
	P99ns          int64  `json:"p99_ns"`
	MaxNs          int64  `json:"max_ns"`

	received int
}

func newRecvSummary(o *recvFlags, st consumer.Stats, received, mismatches int) recvSummary {
	s := recvSummary{
		Ring: o.ring, Mode: o.mode, Start: o.start,
		Delivered: st.Delivered, Lapped: st.Lapped, Skipped: st.Skipped, Overwritten: st.Overwritten, Corrupt: st.Corrupt,
		Retries: st.Retries, WriterGone: st.WriterGone, Resumes: st.Resumes, Resets: st.Resets,
		WindowStart: st.WindowStart, Last: st.Last, Considered: st.Delivered + st.Dropped(), WriterUp: st.WriterUp,
		Dropped: st.Dropped(), Mismatches: mismatches, Abandoned: st.Abandoned,
		LatencySamples: st.Latency.Count(), P50ns: int64(st.Latency.Quantile(0.5)), P99ns: int64(st.Latency.Quantile(0.99)),
		MaxNs: int64(st.Latency.Max()), received: received,
	}
	if o.verify {
		s.Verified = received - mismatches
	}
	if o.mode == "ordered" {
		s.Mode = "all"
	}
	return s
}

// human is the line for people.
func (s recvSummary) human(verify bool) string {
	line := fmt.Sprintf("received %d frames, dropped %d, latency p50 %v p99 %v", s.received, s.Dropped,
		fmtDur(time.Duration(s.P50ns)), fmtDur(time.Duration(s.P99ns)))
	if verify {
		line += fmt.Sprintf(", verified %d, mismatches %d", s.Verified, s.Mismatches)
	}
	return line
}

// line is the `summary key=value ...` line: integers only, in a fixed
// order, new keys only at the end.
func (s recvSummary) line() string {
	up := 0
	if s.WriterUp {
		up = 1
	}
	kv := []struct {
		k string
		v any
	}{
		{"delivered", s.Delivered}, {"lapped", s.Lapped}, {"skipped", s.Skipped}, {"overwritten", s.Overwritten},
		{"corrupt", s.Corrupt}, {"retries", s.Retries}, {"writer_gone", s.WriterGone}, {"resumes", s.Resumes},
		{"resets", s.Resets}, {"window_start", s.WindowStart}, {"last", s.Last}, {"considered", s.Considered},
		{"writer_up", up}, {"dropped", s.Dropped}, {"verified", s.Verified}, {"mismatches", s.Mismatches},
		{"abandoned", s.Abandoned}, {"latency_samples", s.LatencySamples}, {"p50_ns", s.P50ns}, {"p99_ns", s.P99ns},
		{"max_ns", s.MaxNs},
	}
	var b strings.Builder
	b.WriteString("summary")
	for _, p := range kv {
		fmt.Fprintf(&b, " %s=%d", p.k, p.v)
	}
	return b.String()
}
