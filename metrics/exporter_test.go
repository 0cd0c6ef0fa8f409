package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// logs collects an exporter's log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func newExporter(t *testing.T, opts ExporterOptions) (*Exporter, *logs) {
	t.Helper()
	l := &logs{}
	opts.Logf = l.logf
	e, err := NewExporter(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, l
}

// scrape gathers e's metrics as name{ring} -> value (histograms excluded).
func scrape(t *testing.T, e prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			key := mf.GetName()
			for _, l := range m.Label {
				key += fmt.Sprintf("{%s}", l.GetValue())
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return 0
}

// fileKey is a file's device and inode.
type fileKey struct{ dev, ino uint64 }

func keyOf(t *testing.T, path string) fileKey {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fileKey{uint64(st.Dev), st.Ino}
}

// mappedFDs counts this process's descriptors open on the file k. It
// compares device and inode, not the path /proc/self/fd shows: a writer
// creates a ring's file unnamed (O_TMPFILE), and its descriptor shows
// DIR/#inode (deleted) even after the file got its name.
func mappedFDs(t *testing.T, k fileKey) int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc/self/fd", e.Name()), &st) == nil && (fileKey{uint64(st.Dev), st.Ino}) == k {
			n++
		}
	}
	return n
}

func TestExporter(t *testing.T) {
	dir := testutil.ShmDir(t)
	a, b := testutil.Name(t), testutil.Name(t)
	wa := openWriter(t, dir, a, 4)
	wb := openWriter(t, dir, b, 8)
	publish(t, wa, 5)
	publish(t, wb, 11)
	// Not rings: a file with a ring's name but garbage, a writer's
	// temporary file, a file with another name.
	junk := make([]byte, 3*layout.PageSize)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	for _, f := range []string{"framering.junk", ".framering-tmp.1.x", "other"} {
		if err := os.WriteFile(filepath.Join(dir, f), junk, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e, lg := newExporter(t, ExporterOptions{Dir: dir})
	lint(t, e)

	want := fmt.Sprintf(`
# HELP framering_ring_frames_total Frames committed into the ring since the segment was created, by all its writers.
# TYPE framering_ring_frames_total counter
framering_ring_frames_total{ring=%[1]q} 5
framering_ring_frames_total{ring=%[2]q} 11
# HELP framering_ring_bytes_total Payload bytes committed into the ring since the segment was created.
# TYPE framering_ring_bytes_total counter
framering_ring_bytes_total{ring=%[1]q} %[3]d
framering_ring_bytes_total{ring=%[2]q} %[4]d
# HELP framering_ring_head_frame Number of the newest committed frame (0: none yet).
# TYPE framering_ring_head_frame gauge
framering_ring_head_frame{ring=%[1]q} 5
framering_ring_head_frame{ring=%[2]q} 11
# HELP framering_ring_slots Slot count of the ring.
# TYPE framering_ring_slots gauge
framering_ring_slots{ring=%[1]q} 4
framering_ring_slots{ring=%[2]q} 8
# HELP framering_ring_size_bytes Size of the shared-memory segment.
# TYPE framering_ring_size_bytes gauge
framering_ring_size_bytes{ring=%[1]q} %[5]d
framering_ring_size_bytes{ring=%[2]q} %[6]d
# HELP framering_ring_writer_up 1 if a writer holds the ring's lock and its heartbeat is fresh, else 0.
# TYPE framering_ring_writer_up gauge
framering_ring_writer_up{ring=%[1]q} 1
framering_ring_writer_up{ring=%[2]q} 1
# HELP framering_exporter_rings Rings the exporter currently reports.
# TYPE framering_exporter_rings gauge
framering_exporter_rings 2
# HELP framering_exporter_skipped_files Files named like rings that the exporter skips because they are not valid rings.
# TYPE framering_exporter_skipped_files gauge
framering_exporter_skipped_files 1
`, a, b, 5*frameBytes, 11*frameBytes, wa.Geometry().Size(), wb.Geometry().Size())
	names := []string{"framering_ring_frames_total", "framering_ring_bytes_total", "framering_ring_head_frame", "framering_ring_slots",
		"framering_ring_size_bytes", "framering_ring_writer_up", "framering_exporter_rings", "framering_exporter_skipped_files"}
	if err := promtest.CollectAndCompare(e, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n := lg.count("framering.junk"); n != 1 {
		t.Errorf("junk file logged %d times after several scrapes, want once; logs: %q", n, lg.lines)
	}
	if n := lg.count("tmp") + lg.count("other"); n != 0 {
		t.Errorf("temporary or foreign files logged: %q", lg.lines)
	}
	m := scrape(t, e)
	for _, r := range []string{a, b} {
		if age, ok := m["framering_ring_newest_frame_age_seconds{"+r+"}"]; !ok || age < 0 {
			t.Errorf("ring %s: newest frame age %v (present %v), want >= 0", r, age, ok)
		}
		if _, ok := m["framering_ring_heartbeat_age_seconds{"+r+"}"]; !ok {
			t.Errorf("ring %s: no heartbeat age", r)
		}
	}

	// b's writer closes: its lock goes, writer_up drops to 0 while the
	// counters stay.
	wb.Close()
	m = scrape(t, e)
	if m["framering_ring_writer_up{"+b+"}"] != 0 || m["framering_ring_writer_up{"+a+"}"] != 1 || m["framering_ring_frames_total{"+b+"}"] != 11 {
		t.Errorf("after closing %s's writer: %v", b, m)
	}

	// b disappears: its series go and its mapping is closed.
	pathB := ring.Path(dir, b)
	fileB := keyOf(t, pathB)
	if mappedFDs(t, fileB) != 1 {
		t.Fatalf("exporter holds %d descriptors on %s, want 1", mappedFDs(t, fileB), pathB)
	}
	if err := wb.Remove(); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, e)
	for k := range m {
		if strings.Contains(k, b) {
			t.Errorf("series %s of removed ring still reported", k)
		}
	}
	if m["framering_exporter_rings"] != 1 {
		t.Errorf("exporter_rings = %v, want 1", m["framering_exporter_rings"])
	}
	if n := mappedFDs(t, fileB); n != 0 {
		t.Errorf("exporter still holds %d descriptors on removed %s", n, pathB)
	}

	// a is replaced by a writer with another geometry (new inode): the
	// exporter follows it. The frame numbering carries over.
	oldA := keyOf(t, ring.Path(dir, a))
	wa.Close()
	wa2, err := producer.Open(a, producer.Options{Dir: dir, Slots: 16, MaxFrameBytes: frameBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer wa2.Remove()
	publish(t, wa2, 2)
	m = scrape(t, e)
	if m["framering_ring_slots{"+a+"}"] != 16 || m["framering_ring_head_frame{"+a+"}"] != 7 || m["framering_ring_writer_up{"+a+"}"] != 1 {
		t.Errorf("after replacing %s with 16 slots and 2 more frames: slots %v head %v up %v; want 16, 7, 1",
			a, m["framering_ring_slots{"+a+"}"], m["framering_ring_head_frame{"+a+"}"], m["framering_ring_writer_up{"+a+"}"])
	}
	// The writer's and the exporter's descriptors on the new file; none
	// on the replaced one.
	if n := mappedFDs(t, keyOf(t, ring.Path(dir, a))); n != 2 {
		t.Errorf("%d descriptors on %s after replacement, want 2 (writer, exporter)", n, a)
	}
	if n := mappedFDs(t, oldA); n != 0 {
		t.Errorf("exporter still holds the replaced %s open", a)
	}

	// A new ring appears.
	c := testutil.Name(t)
	wc := openWriter(t, dir, c, 2)
	publish(t, wc, 1)
	if m := scrape(t, e); m["framering_ring_frames_total{"+c+"}"] != 1 || m["framering_exporter_rings"] != 2 {
		t.Errorf("new ring %s: frames %v, rings %v; want 1, 2", c, m["framering_ring_frames_total{"+c+"}"], m["framering_exporter_rings"])
	}

	// The junk file replaced by other junk is logged again, once.
	if err := os.WriteFile(filepath.Join(dir, "framering.junk"), junk[:layout.PageSize*2], 0o600); err != nil {
		t.Fatal(err)
	}
	scrape(t, e)
	scrape(t, e)
	if n := lg.count("framering.junk"); n != 2 {
		t.Errorf("changed junk file logged %d times in all, want 2", n)
	}
}

func TestExporterNamed(t *testing.T) {
	dir := testutil.ShmDir(t)
	a, b, missing := testutil.Name(t), testutil.Name(t), testutil.Name(t)
	publish(t, openWriter(t, dir, a, 4), 3)
	publish(t, openWriter(t, dir, b, 4), 3)
	e, _ := newExporter(t, ExporterOptions{Dir: dir, Rings: []string{a, missing}})
	m := scrape(t, e)
	if m["framering_ring_frames_total{"+a+"}"] != 3 || m["framering_exporter_rings"] != 1 {
		t.Errorf("named %s: %v", a, m)
	}
	for k := range m {
		if strings.Contains(k, b) || strings.Contains(k, missing) {
			t.Errorf("series %s of a ring not named", k)
		}
	}
	// The missing ring appears.
	publish(t, openWriter(t, dir, missing, 4), 1)
	if m := scrape(t, e); m["framering_ring_frames_total{"+missing+"}"] != 1 {
		t.Errorf("ring %s appeared but is not reported: %v", missing, m)
	}

	if _, err := NewExporter(ExporterOptions{Dir: dir, Rings: []string{"bad/name"}}); err == nil {
		t.Errorf("NewExporter with an invalid ring name: no error")
	}
	if _, err := NewExporter(ExporterOptions{Dir: filepath.Join(dir, "nope")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewExporter with a missing directory: err = %v, want fs.ErrNotExist", err)
	}
}

// TestExporterCorrupt: a ring file whose superblock is damaged after the
// exporter mapped it, and one truncated, do not crash the exporter.
func TestExporterCorrupt(t *testing.T) {
	dir := testutil.ShmDir(t)
	a := testutil.Name(t)
	w := openWriter(t, dir, a, 4)
	publish(t, w, 3)
	e, lg := newExporter(t, ExporterOptions{Dir: dir})
	if m := scrape(t, e); m["framering_exporter_rings"] != 1 {
		t.Fatalf("rings = %v, want 1", m["framering_exporter_rings"])
	}
	w.Close()
	// Truncate to a page: the size changes, the exporter re-validates,
	// finds it too short and skips it.
	if err := os.Truncate(ring.Path(dir, a), layout.PageSize); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, e)
	if m["framering_exporter_rings"] != 0 || m["framering_exporter_skipped_files"] != 1 {
		t.Errorf("after truncation: rings %v skipped %v, want 0 and 1", m["framering_exporter_rings"], m["framering_exporter_skipped_files"])
	}
	if lg.count(a) != 1 {
		t.Errorf("truncated ring logged %d times, want 1: %q", lg.count(a), lg.lines)
	}
}
