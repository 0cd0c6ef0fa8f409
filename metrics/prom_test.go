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

	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/mixin"
)

// promWait is the hang guard of each wait for a real Prometheus: it has to
// start, scrape every target (every second) and evaluate its rules on a
// loaded 2-core machine. Never a measurement.
const promWait = 120 * time.Second

// promServer is a real Prometheus server started by a test.
type promServer struct {
	name string // "classic" or "native", for messages
	addr string
}

// startPrometheus runs bin scraping targets every second, with the rules
// in rulesFile, and native histograms enabled or not. It is killed at the
// end of the test.
func startPrometheus(t *testing.T, bin string, native bool, targets []string, rulesFile string) *promServer {
	t.Helper()
	name := "classic"
	if native {
		name = "native"
	}
	tmp := t.TempDir()
	var quoted []string
	for _, tg := range targets {
		quoted = append(quoted, strconv.Quote(tg))
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: framering
    static_configs:
      - targets: [%s]
`, rulesFile, strings.Join(quoted, ", "))
	cfg := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(tmp, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}
	if native {
		args = append(args, "--enable-feature=native-histograms")
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus (%s) output:\n%s", name, logs.String())
		}
	})
	return &promServer{name: name, addr: addr}
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

// api GETs path (with query parameters) from Prometheus's HTTP API and
// decodes data into out.
func (p *promServer) api(path string, params url.Values, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "http://" + p.addr + path
	if params != nil {
		u += "?" + params.Encode()
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("prometheus %s: %s", p.name, r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// promSample is one series of an instant query's result.
type promSample struct {
	Metric    map[string]string `json:"metric"`
	Value     []any             `json:"value"`     // [time, "float"]
	Histogram []any             `json:"histogram"` // [time, {count, sum, buckets}] for a native histogram
}

func (s promSample) float() float64 {
	if len(s.Value) != 2 {
		return -1
	}
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return -1
	}
	return v
}

// query runs an instant query now. A scalar result becomes one sample.
func (p *promServer) query(q string) ([]promSample, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {q}}, &d); err != nil {
		return nil, err
	}
	switch d.ResultType {
	case "vector":
		var out []promSample
		err := json.Unmarshal(d.Result, &out)
		return out, err
	case "scalar":
		var v []any
		err := json.Unmarshal(d.Result, &v)
		return []promSample{{Value: v}}, err
	default:
		return nil, fmt.Errorf("query %s: result type %s", q, d.ResultType)
	}
}

// waitFor polls cond (every 250 ms) until it says done; promWait is only
// a hang guard. cond's detail is reported if it never holds.
func waitFor(t *testing.T, what string, cond func() (done bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(promWait)
	for {
		done, detail := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v; last: %s", what, promWait, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitData waits until q returns at least one series on p and returns
// them.
func waitData(t *testing.T, p *promServer, q string) []promSample {
	t.Helper()
	var res []promSample
	waitFor(t, fmt.Sprintf("query on the %s server returns data: %s", p.name, q), func() (bool, string) {
		var err error
		res, err = p.query(q)
		if err != nil {
			return false, err.Error()
		}
		return len(res) > 0, "empty result"
	})
	return res
}

// docQuery is a query of docs/METRICS.md with what it needs.
type docQuery struct {
	needs string // any, classic or native
	title string
	expr  string
}

// docQueries extracts every query of the ```promql blocks of
// docs/METRICS.md: a comment line "# [needs] title" and the lines up to
// the next comment or blank line.
func docQueries(t *testing.T) []docQuery {
	t.Helper()
	b, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []docQuery
		in     bool
		cur    docQuery
		lines  []string
		blocks int
	)
	flush := func() {
		if len(lines) > 0 {
			if cur.needs == "" {
				t.Errorf("docs/METRICS.md: query without a [any], [classic] or [native] comment: %s", strings.Join(lines, "\n"))
			}
			cur.expr = strings.Join(lines, "\n")
			out = append(out, cur)
		}
		lines, cur = nil, docQuery{}
	}
	for _, l := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(l)
		switch {
		case !in && trim == "```promql":
			in = true
			blocks++
		case in && trim == "```":
			flush()
			in = false
		case !in:
		case strings.HasPrefix(trim, "#"):
			flush()
			c := strings.TrimSpace(strings.TrimPrefix(trim, "#"))
			for _, n := range []string{"any", "classic", "native"} {
				if rest, ok := strings.CutPrefix(c, "["+n+"]"); ok {
					cur.needs, cur.title = n, strings.TrimSpace(rest)
				}
			}
			if cur.needs == "" {
				t.Errorf("docs/METRICS.md: comment %q does not start with [any], [classic] or [native]", trim)
			}
		case trim == "":
			flush()
		default:
			lines = append(lines, l)
		}
	}
	if len(out) < 10 || blocks < 2 {
		t.Fatalf("docs/METRICS.md: found %d queries in %d promql blocks; the parser or the doc broke", len(out), blocks)
	}
	return out
}

// TestPrometheus runs two real Prometheus servers (Debian's 2.42): one
// without native histograms ("classic") and one with
// --enable-feature=native-histograms ("native"). Both scrape the exporter,
// a running writer, a writer that stopped publishing, and two readers
// (child processes), and load the mixin's alert rules. Then:
//
//   - one owner per series: framering_ring_* has one source per ring, and
//     its value equals the superblock's;
//   - what each server stores of a histogram, as docs/METRICS.md says;
//   - every query of docs/METRICS.md returns data on the servers it is
//     documented for;
//   - every query of the mixin's dashboard returns data on both servers
//     (the bridge's are excused when no bridge runs: see bridgeTargets);
//   - the alert rules evaluate without error, and the alerts that the
//     scene should raise (a lapped reader, a ring without a writer, a
//     writer that stopped publishing) become active.
func TestPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (Debian: apt-get install prometheus); skipping the real-server test")
	}
	if testing.Short() {
		t.Skip("-short: skipping the real Prometheus server")
	}
	dir := testutil.ShmDir(t)
	live, stopped, gone := testutil.Name(t), testutil.Name(t), testutil.Name(t)

	// gone: 5 frames, then its writer closed: no live writer.
	w := openWriter(t, dir, gone, 4)
	publish(t, w, 5)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	const stoppedFrames = 500
	wl := testutil.Start(t, "metrics-writer", "RING="+live, "DIR="+dir)
	ws := testutil.Start(t, "metrics-writer", "RING="+stopped, "DIR="+dir, "COUNT="+strconv.Itoa(stoppedFrames))
	rd := testutil.Start(t, "metrics-readers", "RING="+live, "DIR="+dir)
	srv, eaddr, err := Serve("127.0.0.1:0", exporterRegistry(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	exporter := eaddr.String()
	targets := []string{exporter, childAddr(t, wl), childAddr(t, ws), childAddr(t, rd)}
	bridge := bridgeTargets(t, dir, live)
	targets = append(targets, bridge...)

	rules := filepath.Join(t.TempDir(), "framering.yaml")
	if err := os.WriteFile(rules, mixin.Alerts(), 0o644); err != nil {
		t.Fatal(err)
	}
	classic := startPrometheus(t, bin, false, targets, rules)
	native := startPrometheus(t, bin, true, targets, rules)
	both := []*promServer{classic, native}

	t.Run("OneOwnerPerSeries", func(t *testing.T) {
		if _, err := ws.Expect("done", promWait); err != nil {
			t.Fatal(err)
		}
		f, err := segfile.Open(dir, stopped, shm.Trust{})
		if err != nil {
			t.Fatal(err)
		}
		st := f.Seg.Status()
		f.Close()
		if st.FramesTotal != stoppedFrames {
			t.Fatalf("superblock of %s: FramesTotal %d, want %d", stopped, st.FramesTotal, stoppedFrames)
		}
		want := float64(st.FramesTotal)
		for _, p := range both {
			// Scraped after the last frame: Prometheus has the final value.
			waitFor(t, p.name+": framering_ring_frames_total of the stopped ring reaches the superblock's FramesTotal", func() (bool, string) {
				res, err := p.query(fmt.Sprintf(`framering_ring_frames_total{ring=%q}`, stopped))
				if err != nil || len(res) == 0 {
					return false, fmt.Sprint(res, err)
				}
				return res[0].float() == want, fmt.Sprint(res)
			})
			// One series per ring, from the exporter alone.
			res, err := p.query(`count by (ring, instance) (framering_ring_frames_total)`)
			if err != nil {
				t.Fatal(err)
			}
			rings := map[string]bool{}
			for _, s := range res {
				rings[s.Metric["ring"]] = true
				if s.float() != 1 || s.Metric["instance"] != exporter {
					t.Errorf("%s: framering_ring_frames_total{ring=%q} has %v series from %s; want 1, from the exporter %s",
						p.name, s.Metric["ring"], s.float(), s.Metric["instance"], exporter)
				}
			}
			for _, r := range []string{live, stopped, gone} {
				if !rings[r] {
					t.Errorf("%s: no framering_ring_frames_total for ring %s; got %v", p.name, r, res)
				}
			}
			res, err = p.query(`count by (instance) ({__name__=~"framering_ring_.+"})`)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || res[0].Metric["instance"] != exporter {
				t.Errorf("%s: framering_ring_* comes from %v; want the exporter %s only", p.name, res, exporter)
			}
			// The sum over sources equals the superblock, and the
			// writer's own counter agrees.
			for _, q := range []string{
				fmt.Sprintf(`sum by (ring) (framering_ring_frames_total{ring=%q})`, stopped),
				fmt.Sprintf(`sum by (ring) (framering_writer_published_frames_total{ring=%q})`, stopped),
			} {
				res := waitData(t, p, q)
				if len(res) != 1 || res[0].float() != want {
					t.Errorf("%s: %s = %v, want one series of %v (the superblock's FramesTotal)", p.name, q, res, want)
				}
			}
		}
		// The documented rate query on the live ring reads the writer's
		// rate, not twice it: both counters over the same window, scraped
		// from two processes. The band is wide (scrapes are not aligned);
		// two sources of framering_ring_* would read 2.
		waitFor(t, "15 s of samples of the live ring from the exporter and the writer", func() (bool, string) {
			res, err := classic.query(fmt.Sprintf(`count_over_time(framering_ring_frames_total{ring=%[1]q}[15s]) >= 10 and on (ring) count_over_time(framering_writer_published_frames_total{ring=%[1]q}[15s]) >= 10`, live))
			return err == nil && len(res) == 1, fmt.Sprint(res, err)
		})
		q := fmt.Sprintf(`sum by (ring) (rate(framering_ring_frames_total{ring=%[1]q}[15s])) / sum by (ring) (rate(framering_writer_published_frames_total{ring=%[1]q}[15s]))`, live)
		res, err := classic.query(q)
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: %v, %v", q, res, err)
		}
		if r := res[0].float(); r < 0.5 || r > 1.5 {
			t.Errorf("sum by (ring) (rate(framering_ring_frames_total)) / the writer's own rate = %v, want about 1", r)
		}
		rate, _ := classic.query(fmt.Sprintf(`sum by (ring) (rate(framering_ring_frames_total{ring=%q}[15s]))`, live))
		t.Logf("live ring: %v frames/s by the documented query, %v times the writer's own rate", rate, res[0].float())
	})

	t.Run("HistogramStorage", func(t *testing.T) {
		slow := `{reader="slow"}`
		// Classic server: the _bucket series, exact le strings, no
		// native samples under the bare name.
		waitData(t, classic, "framering_reader_delivery_latency_seconds_bucket"+slow)
		waitData(t, classic, "framering_reader_delivery_latency_seconds_count"+slow)
		waitData(t, classic, `framering_reader_delivery_latency_seconds_bucket{reader="slow",le="0.001"}`)
		if res, err := classic.query("framering_reader_delivery_latency_seconds" + slow); err != nil || len(res) != 0 {
			t.Errorf("classic server: the bare histogram name = %v, %v; want nothing (no native histograms)", res, err)
		}
		// Native server: the native histogram under the bare name, and
		// (Prometheus 2.42) no classic series for it at all.
		res := waitData(t, native, "framering_reader_delivery_latency_seconds"+slow)
		if len(res[0].Histogram) != 2 {
			t.Errorf("native server: %v is not a native histogram", res[0])
		}
		waitData(t, native, `framering_writer_publish_duration_seconds`)
		for _, q := range []string{
			`{__name__=~"framering_reader_delivery_latency_seconds_(bucket|count|sum)"}`,
			`{__name__=~"framering_writer_publish_duration_seconds_(bucket|count|sum)"}`,
		} {
			if res, err := native.query(q); err != nil || len(res) != 0 {
				t.Errorf("native server: %s = %d series, %v; docs/METRICS.md says Prometheus 2.42 with native histograms stores none", q, len(res), err)
			}
		}
	})

	t.Run("DocQueries", func(t *testing.T) {
		qs := docQueries(t)
		counts := map[string]int{}
		for _, q := range qs {
			counts[q.needs]++
			servers := both
			switch q.needs {
			case "classic":
				servers = []*promServer{classic}
			case "native":
				servers = []*promServer{native}
			}
			for _, p := range servers {
				res := waitData(t, p, q.expr)
				t.Logf("%s [%s] %s: %d series", p.name, q.needs, q.title, len(res))
			}
		}
		if counts["any"] == 0 || counts["classic"] == 0 || counts["native"] == 0 {
			t.Errorf("docs/METRICS.md queries by need: %v; want each kind", counts)
		}
	})

	t.Run("DashboardQueries", func(t *testing.T) {
		qs, err := mixin.Queries(mixin.Dashboard())
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{"ring": ".+", "__rate_interval": "1m"}
		for _, q := range qs {
			expr, err := mixin.Expand(q.Expr, vars)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range both {
				if len(bridge) == 0 && strings.Contains(expr, "framering_bridge_") {
					// Excused: no bridge in this test (see bridgeTargets).
					// The query must still be valid PromQL.
					if _, err := p.query(expr); err != nil {
						t.Errorf("panel %q %s: %v", q.Panel, q.RefID, err)
					}
					t.Logf("%s: panel %q %s: not checked for data: no bridge runs", p.name, q.Panel, q.RefID)
					continue
				}
				res := waitData(t, p, expr)
				t.Logf("%s: panel %q %s: %d series", p.name, q.Panel, q.RefID, len(res))
			}
		}
	})

	t.Run("Alerts", func(t *testing.T) {
		type rule struct {
			Name      string `json:"name"`
			Type      string `json:"type"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		}
		for _, p := range both {
			waitFor(t, p.name+": the mixin's 4 alert rules evaluated without error", func() (bool, string) {
				var d struct {
					Groups []struct {
						Rules []rule `json:"rules"`
					} `json:"groups"`
				}
				if err := p.api("/api/v1/rules", nil, &d); err != nil {
					return false, err.Error()
				}
				var rs []rule
				for _, g := range d.Groups {
					rs = append(rs, g.Rules...)
				}
				ok := len(rs) == 4
				for _, r := range rs {
					ok = ok && r.Type == "alerting" && r.Health == "ok"
				}
				return ok, fmt.Sprintf("%+v", rs)
			})
			for _, want := range []struct{ alert, ring, reader string }{
				{"FrameringReaderDropRatioHigh", live, "slow"}, // lapped
				{"FrameringWriterDown", gone, ""},
				{"FrameringStreamStale", stopped, ""}, // after 10 s without a frame
			} {
				waitFor(t, fmt.Sprintf("%s: %s active for ring %s", p.name, want.alert, want.ring), func() (bool, string) {
					var d struct {
						Alerts []struct {
							Labels map[string]string `json:"labels"`
							State  string            `json:"state"`
						} `json:"alerts"`
					}
					if err := p.api("/api/v1/alerts", nil, &d); err != nil {
						return false, err.Error()
					}
					for _, a := range d.Alerts {
						if a.Labels["alertname"] == want.alert && a.Labels["ring"] == want.ring && a.Labels["reader"] == want.reader {
							return true, ""
						}
					}
					return false, fmt.Sprintf("%+v", d.Alerts)
				})
			}
		}
	})
}
