package metrics

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
	"github.com/prometheus/client_golang/prometheus"
)

// benchSizes are the frames of the publish benchmarks: a small one, where
// any per-frame overhead shows most, and a 640x480 BGR one.
var benchSizes = []struct {
	name string
	w, h int
}{{"64x16x3", 64, 16}, {"640x480x3", 640, 480}}

func benchWriter(b *testing.B, w, h int) (*producer.Writer, ring.FrameInfo, []byte) {
	b.Helper()
	fi := ring.FrameInfo{Width: w, Height: h, Format: ring.BGR8}
	wr, err := producer.Open(testutil.Name(b), producer.Options{Dir: testutil.ShmDir(b), Slots: 8, MaxFrameBytes: w * h * 3})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { wr.Remove() })
	return wr, fi, make([]byte, w*h*3)
}

// scrapeEvery is the scraper's pause between scrapes: 100 times the rate
// of a Prometheus scraping every second.
const scrapeEvery = 10 * time.Millisecond

// scraper gathers reg every scrapeEvery while on is set, until stop.
func scraper(reg prometheus.Gatherer, on *atomic.Bool, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if on.Load() {
				if _, err := reg.Gather(); err != nil {
					panic(err)
				}
			}
			time.Sleep(scrapeEvery)
		}
	}()
	return &wg
}

// BenchmarkPublishMetrics measures Publish with metrics off (no collector)
// and on (collector registered, a scraper gathering it continually, every
// scrapeEvery). Its ratio sub-benchmark alternates 50 ms blocks with the
// scraper off and on within one run, so that both see the same machine,
// and reports on/off as "ratio" (goal: <= 1.02).
func BenchmarkPublishMetrics(b *testing.B) {
	for _, sz := range benchSizes {
		for _, mode := range []string{"off", "on"} {
			b.Run(sz.name+"/"+mode, func(b *testing.B) {
				w, fi, px := benchWriter(b, sz.w, sz.h)
				if mode == "on" {
					reg := prometheus.NewRegistry()
					if err := RegisterWriter(reg, w); err != nil {
						b.Fatal(err)
					}
					var on atomic.Bool
					on.Store(true)
					stop := make(chan struct{})
					wg := scraper(reg, &on, stop)
					defer func() { close(stop); wg.Wait() }()
				}
				b.SetBytes(int64(len(px)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := w.Publish(fi, px); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(sz.name+"/ratio", func(b *testing.B) {
			w, fi, px := benchWriter(b, sz.w, sz.h)
			reg := prometheus.NewRegistry()
			if err := RegisterWriter(reg, w); err != nil {
				b.Fatal(err)
			}
			var on atomic.Bool
			stop := make(chan struct{})
			wg := scraper(reg, &on, stop)
			defer func() { close(stop); wg.Wait() }()
			const block = 50 * time.Millisecond
			var tOff, tOn time.Duration
			var nOff, nOn int
			b.SetBytes(int64(len(px)))
			phase := time.Now()
			for b.Loop() {
				start := time.Now()
				if start.Sub(phase) > block {
					on.Store(!on.Load())
					phase = start
				}
				if _, err := w.Publish(fi, px); err != nil {
					b.Fatal(err)
				}
				if d := time.Since(start); on.Load() {
					tOn += d
					nOn++
				} else {
					tOff += d
					nOff++
				}
			}
			if nOn > 0 && nOff > 0 {
				off := float64(tOff) / float64(nOff)
				onNs := float64(tOn) / float64(nOn)
				b.ReportMetric(off, "off_ns/op")
				b.ReportMetric(onNs, "on_ns/op")
				b.ReportMetric(onNs/off, "ratio")
			}
		})
	}
}

// BenchmarkScrape measures one scrape: the collectors of a writer and a
// reader, and the exporter over 16 rings (goal: < 5 ms), gathered in
// process and over HTTP as Prometheus does.
func BenchmarkScrape(b *testing.B) {
	b.Run("writer", func(b *testing.B) {
		w, fi, px := benchWriter(b, 64, 16)
		for range 100 {
			w.Publish(fi, px)
		}
		reg := prometheus.NewRegistry()
		RegisterWriter(reg, w)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	dir := testutil.ShmDir(b)
	for i := range 16 {
		w, err := producer.Open(fmt.Sprintf("bench%02d", i), producer.Options{Dir: dir, Slots: 8, MaxFrameBytes: 640 * 480 * 3})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Remove()
		px := make([]byte, 640*480*3)
		for range 10 {
			w.Publish(ring.FrameInfo{Width: 640, Height: 480, Format: ring.BGR8}, px)
		}
	}
	e, err := NewExporter(ExporterOptions{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	b.Run("exporter-16-rings", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mfs, err := reg.Gather()
			if err != nil || len(mfs) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("exporter-16-rings-http", func(b *testing.B) {
		srv, addr, err := Serve("127.0.0.1:0", reg)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		url := "http://" + addr.String() + "/metrics"
		for b.Loop() {
			resp, err := http.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
