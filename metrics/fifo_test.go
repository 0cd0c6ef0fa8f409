package metrics

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// A FIFO named like a ring (any local user can plant one in /dev/shm) must
// not wedge the exporter: scrapes answer while it is there, skipping it,
// and after it is removed. Before, open(2) of the FIFO blocked the scrape
// for good, with the exporter's lock held.
func TestExporterSurvivesFIFO(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	w := openWriter(t, dir, name, 4)
	publish(t, w, 3)
	fifo := ring.Path(dir, testutil.Name(t))
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	e, lg := newExporter(t, ExporterOptions{Dir: dir})
	scrapeAsync := func(what string) map[string]float64 {
		t.Helper()
		ch := make(chan map[string]float64, 1)
		go func() { ch <- scrape(t, e) }()
		select {
		case m := <-ch:
			return m
		case <-time.After(testutil.HangGuard):
			// Unblock the open(2) stuck on the FIFO, so that the
			// exporter's Close in the cleanup does not hang too.
			if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
				defer f.Close()
			}
			t.Fatalf("%s: no answer after %v", what, testutil.HangGuard)
			return nil
		}
	}
	frames := "framering_ring_frames_total{" + name + "}"

	m := scrapeAsync("a scrape with a FIFO in the directory")
	if m[frames] != 3 || m["framering_exporter_rings"] != 1 || m["framering_exporter_skipped_files"] != 1 {
		t.Fatalf("scrape with a FIFO: %v", m)
	}
	if lg.count("not a regular file") != 1 {
		t.Errorf("the FIFO was not logged once as not a regular file: %v", lg.lines)
	}
	scrapeAsync("a second scrape with the FIFO")
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	publish(t, w, 1)
	m = scrapeAsync("a scrape after the FIFO was removed")
	if m[frames] != 4 || m["framering_exporter_skipped_files"] != 0 {
		t.Fatalf("scrape after removing the FIFO: %v", m)
	}
}
