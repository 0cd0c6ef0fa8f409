package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// framering builds the command into the test's temporary directory (the
// demo re-executes its own binary, which the test binary cannot be).
func framering(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary: skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "framering")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// demoRow is a reader's row of the closing table.
type demoRow struct {
	reader, mode                          string
	first, last, delivered, dropped, torn int64
}

var demoRowRE = regexp.MustCompile(`(?m)^\s+r(\d+)\s+(ordered copy|latest view)\s+(\d+|-)\s+(\d+|-)\s+(\d+)\s+(\d+)\s+(\d+)\s`)

// demoTable parses the closing table and checks every reader's window:
// delivered + dropped == last - first + 1, and no torn frame accepted.
func checkDemoTable(t *testing.T, out string, readers int) (published int64, rows []demoRow) {
	t.Helper()
	m := regexp.MustCompile(`frames published: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no 'frames published' line:\n%s", out)
	}
	published, _ = strconv.ParseInt(m[1], 10, 64)
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	for _, r := range demoRowRE.FindAllStringSubmatch(out, -1) {
		row := demoRow{reader: r[1], mode: r[2], first: n(r[3]), last: n(r[4]), delivered: n(r[5]), dropped: n(r[6]), torn: n(r[7])}
		rows = append(rows, row)
		if row.torn != 0 {
			t.Errorf("reader %s accepted %d torn frames", row.reader, row.torn)
		}
		if r[3] == "-" {
			if row.delivered+row.dropped != 0 {
				t.Errorf("reader %s: no window but %d delivered, %d dropped", row.reader, row.delivered, row.dropped)
			}
			continue
		}
		if row.delivered+row.dropped != row.last-row.first+1 {
			t.Errorf("reader %s: delivered %d + dropped %d != window %d..%d", row.reader, row.delivered, row.dropped, row.first, row.last)
		}
		if row.last > published {
			t.Errorf("reader %s: last frame %d > %d published", row.reader, row.last, published)
		}
	}
	if len(rows) != readers {
		t.Fatalf("want %d reader rows in the closing table, got %d:\n%s", readers, len(rows), out)
	}
	return published, rows
}

// TestDemoEndToEnd runs the README's first command, shortened: a writer and
// two readers as separate processes. Every reader must deliver frames,
// accept no torn frame, and account for every frame of its window.
func TestDemoEndToEnd(t *testing.T) {
	bin := framering(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "demo", "--duration", "2s", "--fps", "200", "--size", "320x240x3", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	published, rows := checkDemoTable(t, string(out), 2)
	if published == 0 { // how many depends on the machine's load: not asserted
		t.Errorf("the demo's writer published nothing in 2 s")
	}
	for _, r := range rows {
		if r.delivered == 0 {
			t.Errorf("reader %s delivered nothing", r.reader)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, "*")); len(ents) != 0 {
		t.Errorf("demo left %v behind", ents)
	}
}

// workers lists the pids of running demo workers of ring.
func workers(ring string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := string(b)
		if strings.Contains(cmd, "demo-worker") && strings.Contains(cmd, ring) {
			pids = append(pids, strings.Split(p, "/")[2])
		}
	}
	return pids
}

// TestDemoSignal sends SIGINT, then SIGTERM, to the demo's pid alone (not
// its process group): the whole demo stops at once, with the table so far
// and exit status 128 + the signal.
func TestDemoSignal(t *testing.T) {
	bin := framering(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		name string
	}{{syscall.SIGINT, 130, "SIGINT"}, {syscall.SIGTERM, 143, "SIGTERM"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, "demo", "--duration", "10m", "--fps", "100", "--size", "64x48x1", "--readers", "3", "--dir", dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true} // a group of its own: the test signals only the demo
			var out strings.Builder
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			ring := "demo-" + strconv.Itoa(cmd.Process.Pid)
			lines := make(chan string, 100)
			go func() {
				buf := make([]byte, 4096)
				var acc string
				for {
					n, err := stdout.Read(buf)
					acc += string(buf[:n])
					for {
						i := strings.IndexByte(acc, '\n')
						if i < 0 {
							break
						}
						lines <- acc[:i]
						acc = acc[i+1:]
					}
					if err != nil {
						lines <- acc
						close(lines)
						return
					}
				}
			}()
			var seen []string
			guard := time.After(60 * time.Second) // hang guard
		progress:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("demo ended before its first progress line:\n%s\nstderr:\n%s", strings.Join(seen, "\n"), out.String())
					}
					seen = append(seen, l)
					if strings.Contains(l, "published") && strings.Contains(l, "| r3") {
						break progress
					}
				case <-guard:
					t.Fatalf("no progress line within 60 s:\n%s", strings.Join(seen, "\n"))
				}
			}
			if n := len(workers(ring)); n != 4 {
				t.Fatalf("%d demo workers running, want 4 (a writer and 3 readers)", n)
			}
			cmd.Process.Signal(tc.sig)
			done := make(chan error, 1)
			go func() {
				for l := range lines {
					seen = append(seen, l)
				}
				done <- cmd.Wait()
			}()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(60 * time.Second): // hang guard
				t.Fatalf("demo still running 60 s after %v:\n%s", tc.sig, strings.Join(seen, "\n"))
			}
			text := strings.Join(seen, "\n")
			t.Logf("%s\nstderr:\n%s", text, out.String())
			ee, ok := werr.(*exec.ExitError)
			if !ok || ee.ExitCode() != tc.code {
				t.Fatalf("demo after %v: %v, want exit status %d", tc.sig, werr, tc.code)
			}
			if !strings.Contains(text, "interrupted by "+tc.name) || strings.Contains(out.String(), "did not finish") ||
				strings.Contains(out.String(), "without its final report") {
				t.Errorf("demo did not stop cleanly after %v: stdout\n%s\nstderr\n%s", tc.sig, text, out.String())
			}
			if !strings.Contains(out.String(), "demo: interrupted by "+tc.name) {
				t.Errorf("stderr does not say the demo was interrupted:\n%s", out.String())
			}
			published, rows := checkDemoTable(t, text, 3)
			if published == 0 {
				t.Errorf("the writer published nothing before %v", tc.sig)
			}
			for _, r := range rows {
				if r.delivered == 0 {
					t.Errorf("reader %s delivered nothing", r.reader)
				}
			}
			if left := workers(ring); len(left) != 0 {
				t.Errorf("demo workers %v still running after the demo exited", left)
			}
			if ents, _ := filepath.Glob(filepath.Join(dir, "*")); len(ents) != 0 {
				t.Errorf("demo left %v behind", ents)
			}
		})
	}
}
