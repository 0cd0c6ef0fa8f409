package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// metricsAddrRE finds the address a command serves /metrics on in its
// stderr: "metrics on http://ADDR/metrics" (send, recv) or "serving ... on
// http://ADDR/metrics" (metrics).
var metricsAddrRE = regexp.MustCompile(`on http://([^/\s]+)/metrics`)

// metricsAddr waits (hang guard) until c says where it serves /metrics.
func metricsAddr(t *testing.T, c *testutil.Child) string {
	t.Helper()
	var addr string
	testutil.Eventually(t, "the child announces its metrics address", func() bool {
		if m := metricsAddrRE.FindStringSubmatch(c.Stderr()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case <-c.Done():
			t.Fatalf("child exited before serving metrics: %v\n%s", c.Err(), c.Stderr())
		default:
		}
		return false
	})
	return addr
}

func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMetricsEndpoints runs send --metrics, recv --metrics --metrics-name
// and the exporter, and checks what each serves: the standard go_* and
// process_* metrics and framering_build_info everywhere; writer_* from
// send only, reader_* from recv only (labelled with the name given),
// ring_* from the exporter only.
func TestMetricsEndpoints(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	send := start(t, "send", "--ring", name, "--dir", dir, "--pattern", "32x8x1", "--fps", "200", "-q", "--metrics", "127.0.0.1:0")
	recv := start(t, "recv", "--ring", name, "--dir", dir, "--wait", "-q", "--metrics", "127.0.0.1:0", "--metrics-name", "detector")
	exp := start(t, "metrics", "--dir", dir, "--listen", "127.0.0.1:0")
	addrs := map[string]string{"send": metricsAddr(t, send), "recv": metricsAddr(t, recv), "metrics": metricsAddr(t, exp)}

	own := map[string]string{
		"send":    fmt.Sprintf("framering_writer_published_frames_total{ring=%q} ", name),
		"recv":    fmt.Sprintf("framering_reader_delivered_frames_total{reader=\"detector\",ring=%q} ", name),
		"metrics": fmt.Sprintf("framering_ring_frames_total{ring=%q} ", name),
	}
	for cmd, addr := range addrs {
		var body string
		// Wait until the reader has attached and frames flow.
		testutil.Eventually(t, cmd+" serves "+own[cmd], func() bool {
			body = scrapeText(t, addr)
			return strings.Contains(body, own[cmd])
		})
		for _, want := range []string{
			"\ngo_goroutines ", "\ngo_memstats_alloc_bytes ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ",
			fmt.Sprintf("\nframering_build_info{goversion=%q,revision=", runtime.Version()),
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s --metrics lacks %q", cmd, strings.TrimSpace(want))
			}
		}
		for other, series := range own {
			family := series[:strings.Index(series, "{")]
			if other != cmd && strings.Contains(body, "\n"+family) {
				t.Errorf("%s --metrics serves %s, which is %s's alone", cmd, family, other)
			}
		}
		if cmd == "recv" && strings.Contains(body, `reader="recv"`) {
			t.Errorf("recv --metrics-name detector still labels series reader=\"recv\"")
		}
		if strings.Contains(body, "framering_ring_") && cmd != "metrics" {
			t.Errorf("%s serves framering_ring_* (the exporter's alone)", cmd)
		}
	}
	for _, c := range []struct {
		cmd string
		c   *testutil.Child
	}{{"recv", recv}, {"send", send}, {"metrics", exp}} {
		c.c.Signal(syscall.SIGTERM)
		if res := finish(t, c.c); res.code != 0 {
			t.Errorf("%s: exit %d\n%s", c.cmd, res.code, res.stderr)
		}
	}
}
