package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"

	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Child processes: a writer publishing about 1000 frames/s and a slow
// reader, each serving its own metrics on a free port and printing
// "addr HOST:PORT".
func init() {
	testutil.Helper("metrics-writer", helperWriter)
	testutil.Helper("metrics-slow-reader", helperSlowReader)
}

func helperWriter() int {
	w, err := producer.Open(os.Getenv("RING"), producer.Options{Dir: os.Getenv("DIR"), Slots: 4, MaxFrameBytes: frameBytes})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	reg := prometheus.NewRegistry()
	stop, ok := serveChild(reg, RegisterWriter(reg, w))
	if !ok {
		return 1
	}
	defer stop()
	px := make([]byte, frameBytes)
	for {
		if _, err := w.Publish(frame, px); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		time.Sleep(time.Millisecond)
	}
}

func helperSlowReader() int {
	ctx := context.Background()
	r, err := consumer.OpenWait(ctx, os.Getenv("RING"), consumer.Options{Dir: os.Getenv("DIR"), StartAt: consumer.Next})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	reg := prometheus.NewRegistry()
	stop, ok := serveChild(reg, RegisterReader(reg, "slow", r))
	if !ok {
		return 1
	}
	defer stop()
	buf := make([]byte, frameBytes)
	for {
		if _, err := r.Read(ctx, buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		time.Sleep(20 * time.Millisecond) // slower than the writer: lapped
	}
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(e, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// TestEndToEnd scrapes a running writer, a slow reader (child processes)
// and the exporter twice, and sees frames and drops increase.
func TestEndToEnd(t *testing.T) {
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	env := []string{"RING=" + name, "DIR=" + dir}
	wc := testutil.Start(t, "metrics-writer", env...)
	waddr := childAddr(t, wc)
	rc := testutil.Start(t, "metrics-slow-reader", env...)
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
	for what, u := range map[string]string{"writer": "http://" + waddr + "/metrics", "reader": "http://" + raddr + "/metrics", "exporter": "http://" + eaddr.String() + "/metrics"} {
		promtoolCheck(t, what, get(t, u))
	}
}

// TestPrometheus runs a real Prometheus server that scrapes the exporter
// and a writer's own endpoint every second, and queries the frame rate
// through its HTTP API.
func TestPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (Debian: apt-get install prometheus); skipping the real-server test")
	}
	if testing.Short() {
		t.Skip("-short: skipping the real Prometheus server")
	}
	dir := testutil.ShmDir(t)
	name := testutil.Name(t)
	wc := testutil.Start(t, "metrics-writer", "RING="+name, "DIR="+dir)
	waddr := childAddr(t, wc)
	srv, eaddr, err := Serve("127.0.0.1:0", exporterRegistry(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "prometheus.yml")
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: framering
    static_configs:
      - targets: [%q, %q]
`, eaddr.String(), waddr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(tmp, "data"),
		"--web.listen-address="+promAddr,
		"--enable-feature=native-histograms",
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})

	// Wait (hang guard: 90 s) until Prometheus has scraped both targets
	// enough to compute rates, then check them.
	queries := []string{
		fmt.Sprintf(`rate(framering_ring_frames_total{ring=%q}[5s])`, name),             // exporter
		fmt.Sprintf(`rate(framering_writer_published_frames_total{ring=%q}[5s])`, name), // writer's own endpoint
		// The publish duration arrives as a native histogram (protobuf).
		fmt.Sprintf(`histogram_count(rate(framering_writer_publish_duration_seconds{ring=%q}[5s]))`, name),
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, q := range queries {
		for {
			v, err := promQuery(promAddr, q)
			if err == nil && v > 0 {
				t.Logf("%s = %g", q, v)
				break
			}
			if time.Now().After(deadline) {
				up, _ := promQuery(promAddr, "sum(up)")
				t.Fatalf("query %s: %v, %v after 90 s (sum(up) = %v)", q, v, err, up)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var errNoResult = fmt.Errorf("no result")

// promQuery runs an instant query and returns the first sample's value.
func promQuery(addr, q string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", r.Error)
	}
	if len(r.Data.Result) == 0 {
		return 0, errNoResult
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
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
