package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// frame is the test frame: 8x4 gray, 32 bytes.
var frame = ring.FrameInfo{Width: 8, Height: 4, Format: ring.Gray8}

const frameBytes = 8 * 4

func openWriter(t *testing.T, dir, name string, slots int) *producer.Writer {
	t.Helper()
	w, err := producer.Open(name, producer.Options{Dir: dir, Slots: slots, MaxFrameBytes: frameBytes})
	return testutil.Removing(t, w, err)
}

func publish(t testing.TB, w *producer.Writer, n int) {
	t.Helper()
	px := make([]byte, frameBytes)
	for range n {
		if _, err := w.Publish(frame, px); err != nil {
			t.Fatal(err)
		}
	}
}

func openReader(t *testing.T, dir, name string, opts consumer.Options) *consumer.Reader {
	t.Helper()
	opts.Dir = dir
	r, err := consumer.Open(name, opts)
	return testutil.Closing(t, r, err)
}

func read(t *testing.T, r *consumer.Reader, n int) []uint64 {
	t.Helper()
	var got []uint64
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		f, err := r.Read(ctx, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Number)
	}
	return got
}

func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := promtest.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestWriterCollector(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	w := openWriter(t, dir, name, 4)
	const n = 7
	publish(t, w, n)
	c := NewWriterCollector(w)
	lint(t, c)

	want := fmt.Sprintf(`
# HELP framering_writer_published_frames_total Frames this writer published (committed) since it opened the ring.
# TYPE framering_writer_published_frames_total counter
framering_writer_published_frames_total{ring=%[1]q} %[2]d
# HELP framering_writer_published_bytes_total Payload bytes this writer published since it opened the ring.
# TYPE framering_writer_published_bytes_total counter
framering_writer_published_bytes_total{ring=%[1]q} %[3]d
# HELP framering_writer_restarts_total Writer opens of this ring before the current writer (generation - 1).
# TYPE framering_writer_restarts_total counter
framering_writer_restarts_total{ring=%[1]q} 0
`, name, n, n*frameBytes)
	if err := promtest.CollectAndCompare(c, strings.NewReader(want),
		"framering_writer_published_frames_total", "framering_writer_published_bytes_total", "framering_writer_restarts_total"); err != nil {
		t.Fatal(err)
	}

	// One owner per series: the ring's superblock (framering_ring_*) is
	// the exporter's; a writer's collector exports framering_writer_*
	// only, else sum by (ring) counts each frame once per source.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var fams []string
	for _, mf := range mfs {
		fams = append(fams, mf.GetName())
		if !strings.HasPrefix(mf.GetName(), "framering_writer_") {
			t.Errorf("a writer's collector exports %s; it may export framering_writer_* only", mf.GetName())
		}
	}
	if len(fams) != 6 {
		t.Errorf("writer's collector exports %d families %v, want 6", len(fams), fams)
	}

	// The publish histogram counts every publish, in classic and native
	// buckets alike.
	h := gatherHist(t, c, "framering_writer_publish_duration_seconds")
	if h.GetSampleCount() != n {
		t.Errorf("publish duration count = %d, want %d", h.GetSampleCount(), n)
	}
	if got := nativeTotal(h); got != n {
		t.Errorf("native buckets hold %d observations, want %d", got, n)
	}

	// A second writer generation counts one restart.
	w.Close()
	w2 := openWriter(t, dir, name, 4)
	publish(t, w2, 2)
	c2 := NewWriterCollector(w2)
	want2 := fmt.Sprintf(`
# HELP framering_writer_restarts_total Writer opens of this ring before the current writer (generation - 1).
# TYPE framering_writer_restarts_total counter
framering_writer_restarts_total{ring=%[1]q} 1
# HELP framering_writer_published_frames_total Frames this writer published (committed) since it opened the ring.
# TYPE framering_writer_published_frames_total counter
framering_writer_published_frames_total{ring=%[1]q} 2
`, name)
	if err := promtest.CollectAndCompare(c2, strings.NewReader(want2),
		"framering_writer_restarts_total", "framering_writer_published_frames_total"); err != nil {
		t.Fatal(err)
	}
}

func TestReaderCollector(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	const slots = 4
	w := openWriter(t, dir, name, slots)
	ordered := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next})
	latest := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, Mode: consumer.Latest})

	// 3 frames: the ordered reader reads them all, the latest reader only
	// the newest. Then both fall 10 frames behind.
	publish(t, w, 3)
	read(t, ordered, 3)
	if got := read(t, latest, 1); got[0] != 3 {
		t.Fatalf("latest reader got frame %d, want the newest, 3", got[0])
	}
	const behind = 10
	publish(t, w, behind)
	got := read(t, ordered, 1)
	head := uint64(3 + behind)
	resume := head - slots/2 + 1 // a lapped reader resumes half a ring behind the head
	if got[0] != resume {
		t.Fatalf("ordered reader got frame %d after falling behind, want %d (half a ring behind the head)", got[0], resume)
	}
	if got := read(t, latest, 1); got[0] != head {
		t.Fatalf("latest reader got frame %d, want the newest, %d", got[0], head)
	}

	co := NewReaderCollector("ord", ordered)
	cl := NewReaderCollector("", latest)
	lint(t, co)
	lint(t, cl)

	const hdr = `
# HELP framering_reader_delivered_frames_total Frames delivered to the application: returned by Read, or released valid from a view.
# TYPE framering_reader_delivered_frames_total counter
framering_reader_delivered_frames_total{reader=%[2]q,ring=%[1]q} %[3]d
# HELP framering_reader_dropped_frames_total Frames the reader did not deliver, by reason: lapped, skipped, overwritten, corrupt and abandoned are frames of the reader's window; writer_gone counts interruptions (reads that returned ErrWriterGone), not numbered frames.
# TYPE framering_reader_dropped_frames_total counter
framering_reader_dropped_frames_total{reader=%[2]q,reason="lapped",ring=%[1]q} %[4]d
framering_reader_dropped_frames_total{reader=%[2]q,reason="abandoned",ring=%[1]q} 0
framering_reader_dropped_frames_total{reader=%[2]q,reason="corrupt",ring=%[1]q} 0
framering_reader_dropped_frames_total{reader=%[2]q,reason="overwritten",ring=%[1]q} 0
framering_reader_dropped_frames_total{reader=%[2]q,reason="skipped",ring=%[1]q} %[5]d
framering_reader_dropped_frames_total{reader=%[2]q,reason="writer_gone",ring=%[1]q} 0
# HELP framering_reader_lag_frames Frames between the frame delivered last and the newest one, as of that delivery: a sample, not a maximum (laps between scrapes show in framering_reader_dropped_frames_total{reason=\"lapped\"}).
# TYPE framering_reader_lag_frames gauge
framering_reader_lag_frames{reader=%[2]q,ring=%[1]q} %[6]d
# HELP framering_reader_writer_up 1 while the reader sees a live writer, 0 between writer gone and its return.
# TYPE framering_reader_writer_up gauge
framering_reader_writer_up{reader=%[2]q,ring=%[1]q} 1
`
	names := []string{"framering_reader_delivered_frames_total", "framering_reader_dropped_frames_total",
		"framering_reader_lag_frames", "framering_reader_writer_up"}
	// Ordered: frames 4..resume-1 lapped, lag from resume to the head.
	wantOrd := fmt.Sprintf(hdr, name, "ord", 4, resume-4, 0, head-resume)
	if err := promtest.CollectAndCompare(co, strings.NewReader(wantOrd), names...); err != nil {
		t.Error(err)
	}
	// Latest: frames 1, 2 and 4..head-1 skipped, no lag.
	wantLat := fmt.Sprintf(hdr, name, "default", 2, 0, 2+head-4, 0)
	if err := promtest.CollectAndCompare(cl, strings.NewReader(wantLat), names...); err != nil {
		t.Error(err)
	}
	h := gatherHist(t, co, "framering_reader_delivery_latency_seconds")
	if h.GetSampleCount() != 4 || nativeTotal(h) != 4 {
		t.Errorf("delivery latency: count %d, native buckets %d; want 4 and 4", h.GetSampleCount(), nativeTotal(h))
	}

	// Both collectors and the writer's fit into one registry; the same
	// reader name twice does not.
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterWriter(reg, w); err != nil {
		t.Fatal(err)
	}
	if err := RegisterReader(reg, "ord", ordered); err != nil {
		t.Fatal(err)
	}
	if err := RegisterReader(reg, "", latest); err != nil {
		t.Fatal(err)
	}
	err := RegisterReader(reg, "ord", latest)
	var dup prometheus.AlreadyRegisteredError
	if !errors.As(err, &dup) || !strings.Contains(err.Error(), `reader "ord"`) {
		t.Errorf("registering reader name %q twice: err = %v, want AlreadyRegisteredError naming the reader", "ord", err)
	}
	if err := RegisterWriter(reg, w); err == nil {
		t.Errorf("registering the writer twice: no error")
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
}

// TestReaderWriterGone checks the writer_gone reason and writer_up.
func TestReaderWriterGone(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	w := openWriter(t, dir, name, 4)
	r := openReader(t, dir, name, consumer.Options{StartAt: consumer.Next, WaitSlice: 10 * time.Millisecond})
	publish(t, w, 1)
	read(t, r, 1)
	w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Read(ctx, nil); !errors.Is(err, ring.ErrWriterGone) {
		t.Fatalf("read after writer close = %v, want ErrWriterGone", err)
	}
	c := NewReaderCollector("r", r)
	want := fmt.Sprintf(`
# HELP framering_reader_writer_up 1 while the reader sees a live writer, 0 between writer gone and its return.
# TYPE framering_reader_writer_up gauge
framering_reader_writer_up{reader="r",ring=%[1]q} 0
`, name)
	if err := promtest.CollectAndCompare(c, strings.NewReader(want), "framering_reader_writer_up"); err != nil {
		t.Error(err)
	}
	if got := promtest.ToFloat64(dropped(c, ReasonWriterGone)); got != 1 {
		t.Errorf("dropped{reason=writer_gone} = %v, want 1", got)
	}
}

// dropped is a collector of c's dropped counter for one reason only.
func dropped(c *ReaderCollector, reason string) prometheus.Collector {
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		in := make(chan prometheus.Metric, 64)
		c.Collect(in)
		close(in)
		for m := range in {
			var d dto.Metric
			m.Write(&d)
			if m.Desc() != c.dropped {
				continue
			}
			for _, l := range d.Label {
				if l.GetName() == "reason" && l.GetValue() == reason {
					ch <- m
				}
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// gatherHist returns the histogram family name of c.
func gatherHist(t *testing.T, c prometheus.Collector, name string) *dto.Histogram {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if len(mf.Metric) != 1 {
				t.Fatalf("%s has %d series, want 1", name, len(mf.Metric))
			}
			return mf.Metric[0].GetHistogram()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// nativeTotal adds up a native histogram's bucket counts.
func nativeTotal(h *dto.Histogram) uint64 {
	total := h.GetZeroCount()
	var c int64
	for _, d := range h.PositiveDelta {
		c += d
		total += uint64(c)
	}
	return total
}

func TestServe(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	w := openWriter(t, dir, name, 4)
	publish(t, w, 3)
	reg := prometheus.NewRegistry()
	if err := RegisterWriter(reg, w); err != nil {
		t.Fatal(err)
	}
	srv, addr, err := Serve("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	body := get(t, "http://"+addr.String()+"/metrics")
	want := fmt.Sprintf("framering_writer_published_frames_total{ring=%q} 3\n", name)
	if !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %q; got:\n%s", want, body)
	}

	// A second server on the same port fails at once and says where.
	_, _, err = Serve(addr.String(), reg)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), addr.String()) {
		t.Errorf("Serve on a busy port: err = %v, want EADDRINUSE naming the address", err)
	}
}

func get(t testing.TB, url string) string {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// TestWriterCollectorAfterClose: scraping a writer that was closed before
// its collector was unregistered does not crash and reports its counters
// as they were at Close.
func TestWriterCollectorAfterClose(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	w := openWriter(t, dir, name, 4)
	publish(t, w, 2)
	c := NewWriterCollector(w)
	if m := scrape(t, c); m["framering_writer_published_frames_total{"+name+"}"] != 2 {
		t.Fatalf("published frames before close = %v, want 2", m["framering_writer_published_frames_total{"+name+"}"])
	}
	w.Close()
	m := scrape(t, c)
	if got := m["framering_writer_published_frames_total{"+name+"}"]; got != 2 {
		t.Errorf("published frames after close = %v, want 2", got)
	}
	if got := m["framering_writer_published_bytes_total{"+name+"}"]; got != 2*frameBytes {
		t.Errorf("published bytes after close = %v, want %d", got, 2*frameBytes)
	}
}
