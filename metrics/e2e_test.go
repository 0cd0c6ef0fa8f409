package metrics

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/prometheus/client_golang/prometheus"
)

// Child processes for the end-to-end tests, each serving its metrics on a
// free port (metrics.NewRegistry, as the framering commands do) and
// printing "addr HOST:PORT":
//
//   - metrics-writer publishes about 1000 frames/s into $RING; with $COUNT
//     it publishes that many, prints "done", and stays open (heartbeat on,
//     no new frames).
//   - metrics-readers reads $RING with two readers: "slow", in order and
//     slower than the writer (lapped), and "latest", in latest mode
//     (skipped).
func init() {
	testutil.Helper("metrics-writer", helperWriter)
	testutil.Helper("metrics-readers", helperReaders)
}

func helperWriter() int {
	w, err := producer.Open(os.Getenv("RING"), producer.Options{Dir: os.Getenv("DIR"), Slots: 4, MaxFrameBytes: frameBytes})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	reg := NewRegistry()
	stop, ok := serveChild(reg, RegisterWriter(reg, w))
	if !ok {
		return 1
	}
	defer stop()
	count, _ := strconv.Atoi(os.Getenv("COUNT"))
	px := make([]byte, frameBytes)
	for n := 1; count == 0 || n <= count; n++ {
		if _, err := w.Publish(frame, px); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("done")
	select {} // the parent kills it
}

func helperReaders() int {
	ctx := context.Background()
	reg := NewRegistry()
	for _, rd := range []struct {
		name  string
		mode  consumer.Mode
		pause time.Duration
	}{
		{"slow", consumer.Ordered, 20 * time.Millisecond}, // slower than the writer: lapped
		{"latest", consumer.Latest, 5 * time.Millisecond}, // skips
	} {
		r, err := consumer.OpenWait(ctx, os.Getenv("RING"), consumer.Options{Dir: os.Getenv("DIR"), StartAt: consumer.Next, Mode: rd.mode})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		if err := RegisterReader(reg, rd.name, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			buf := make([]byte, frameBytes)
			for {
				if _, err := r.Read(ctx, buf); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
				time.Sleep(rd.pause)
			}
		}()
	}
	stop, ok := serveChild(reg, nil)
	if !ok {
		return 1
	}
	defer stop()
	select {}
}

func childAddr(t *testing.T, c *testutil.Child) string {
	t.Helper()
	l, err := c.Expect("addr ", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(l, "addr ")
}

// sample returns the value of the series in a text exposition whose line
// starts with prefix (name and labels), or -1.
func sample(body, prefix string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// promtoolCheck runs promtool check metrics on an exposition.
func promtoolCheck(t *testing.T, what, body string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool not installed (Debian package prometheus): not checking %s", what)
		return
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics on %s: %v\n%s", what, err, out)
	}
}

// exporterRegistry is what the framering metrics command serves.
func exporterRegistry(t *testing.T, dir string) *prometheus.Registry {
	t.Helper()
	e, _ := newExporter(t, ExporterOptions{Dir: dir})
	reg := NewRegistry()
	reg.MustRegister(e)
	return reg
}

// TestEndToEnd scrapes a running writer, two readers (child processes) and
// the exporter twice, and sees frames and drops increase.
func TestEndToEnd(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	env := []string{"RING=" + name, "DIR=" + dir}
	wc := testutil.Start(t, "metrics-writer", env...)
	waddr := childAddr(t, wc)
	rc := testutil.Start(t, "metrics-readers", env...)
	raddr := childAddr(t, rc)
	srv, eaddr, err := Serve("127.0.0.1:0", exporterRegistry(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	type probe struct{ url, series string }
	probes := []probe{
		{"http://" + waddr + "/metrics", fmt.Sprintf("framering_writer_published_frames_total{ring=%q}", name)},
		{"http://" + raddr + "/metrics", fmt.Sprintf("framering_reader_delivered_frames_total{reader=\"slow\",ring=%q}", name)},
		{"http://" + raddr + "/metrics", fmt.Sprintf("framering_reader_dropped_frames_total{reader=\"slow\",reason=\"lapped\",ring=%q}", name)},
		{"http://" + raddr + "/metrics", fmt.Sprintf("framering_reader_dropped_frames_total{reader=\"latest\",reason=\"skipped\",ring=%q}", name)},
		{"http://" + eaddr.String() + "/metrics", fmt.Sprintf("framering_ring_frames_total{ring=%q}", name)},
	}
	first := make([]float64, len(probes))
	for i, p := range probes {
		first[i] = sample(get(t, p.url), p.series)
		if first[i] < 0 {
			t.Fatalf("%s: no series %s", p.url, p.series)
		}
	}
	// Every value must grow; poll with a hang guard.
	deadline := time.Now().Add(60 * time.Second)
	for i, p := range probes {
		for {
			body := get(t, p.url)
			if v := sample(body, p.series); v > first[i] {
				t.Logf("%s: %v -> %v", p.series, first[i], v)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not grow from %v in 60 s; last scrape:\n%s", p.series, first[i], body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for what, u := range map[string]string{"writer": "http://" + waddr + "/metrics", "readers": "http://" + raddr + "/metrics", "exporter": "http://" + eaddr.String() + "/metrics"} {
		promtoolCheck(t, what, get(t, u))
	}
}

// serveChild serves reg on a free loopback port for a helper process and
// prints "addr ADDR" for the parent. regErr is the registration's result.
func serveChild(reg *prometheus.Registry, regErr error) (stop func(), ok bool) {
	if regErr != nil {
		fmt.Fprintln(os.Stderr, regErr)
		return nil, false
	}
	srv, addr, err := Serve("127.0.0.1:0", reg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return nil, false
	}
	fmt.Println("addr", addr)
	return func() { srv.Close() }, true
}
