package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// proc is a process of the bridge end-to-end test.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for p to exit (hang guard) and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		return 0
	case <-time.After(longWait):
		t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, longWait, p.stderr.String())
	}
	return -1
}

func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t)
}

// TestBridgeEndToEnd runs send --pattern -> bridge out -> NATS (Debian's
// nats-server) -> bridge in -> recv --verify as separate processes of
// the built binary: every frame recv gets matches the test pattern of its
// number, so numbers and pixels crossed the bridge intact.
func TestBridgeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 5 processes: skipped in -short mode")
	}
	server, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (apt-get install nats-server): skipping the bridge end-to-end test")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "framering")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// 256 KiB messages: a 320x240x3 frame (230 KB) goes in one, a
	// 640x404x3 frame (776 KB) in four.
	conf := filepath.Join(tmp, "nats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: 127.0.0.1:%d\nmax_payload: 262144\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startProc(t, "nats-server", server, "-c", conf)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(shortWait)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-srv.done:
			t.Fatalf("nats-server exited: %v\n%s", err, srv.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen on %d: %v\n%s", port, err, srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, tc := range []struct{ name, size, encoding string }{
		{"raw-640x404x3", "640x404x3", "raw"},
		{"raw-gray-320x240x1", "320x240x1", "raw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			src, dst, subject := name+"-src", name+"-dst", "cams."+strings.ReplaceAll(name, ".", "_")
			ml, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			maddr := ml.Addr().String()
			ml.Close()
			in := startProc(t, "bridge in", bin, "bridge", "in", "--nats", url, "--subject", subject, "--ring", dst, "--dir", dir, "-q", "--metrics", maddr)
			out := startProc(t, "bridge out", bin, "bridge", "out", "--ring", src, "--dir", dir, "--nats", url, "--subject", subject, "--encoding", tc.encoding, "-q")
			recv := startProc(t, "recv", bin, "recv", "--ring", dst, "--dir", dir, "--wait", "--verify", "--count", "60", "--timeout", "30s", "-q")
			send := startProc(t, "send", bin, "send", "--ring", src, "--dir", dir, "--pattern", tc.size, "--fps", "100", "--count", "3000", "-q")
			code := recv.wait(t)
			send.stop(t)
			if code != 0 {
				t.Fatalf("recv: exit %d\nstdout:\n%s\nstderr:\n%s\nbridge in stderr:\n%s\nbridge out stderr:\n%s",
					code, recv.stdout.String(), recv.stderr.String(), in.stderr.String(), out.stderr.String())
			}
			got, dropped, verified, bad := parseSummary(t, recv.stdout.String())
			t.Logf("recv: %s", strings.TrimSpace(recv.stdout.String()))
			if got != 60 || verified != 60 || bad != 0 {
				t.Fatalf("recv received %d, verified %d, mismatches %d (dropped %d)", got, verified, bad, dropped)
			}
			// The bridge in's metrics count what recv got, at least.
			resp, err := http.Get("http://" + maddr + "/metrics")
			if err != nil {
				t.Fatalf("scrape bridge in: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := regexp.MustCompile(`(?m)^framering_bridge_received_frames_total\{ring="` + regexp.QuoteMeta(dst) + `",side="in",subject="` + regexp.QuoteMeta(subject) + `"\} (\d+)$`).FindSubmatch(body)
			if m == nil {
				t.Fatalf("no received frames metric in:\n%s", body)
			}
			if n, _ := strconv.Atoi(string(m[1])); n < 60 {
				t.Errorf("bridge in metrics: %d frames received, recv got 60", n)
			}
			for _, p := range []*proc{out, in} {
				if code := p.stop(t); code != 0 {
					t.Errorf("%s after SIGTERM: exit %d\n%s", p.name, code, p.stderr.String())
				}
				t.Logf("%s", strings.TrimSpace(p.stdout.String()))
			}
			if !strings.Contains(out.stdout.String(), "bridge out: read ") || !strings.Contains(in.stdout.String(), "bridge in: received ") {
				t.Errorf("no summary lines:\n%s\n%s", out.stdout.String(), in.stdout.String())
			}
		})
	}
}

// TestBridgeUsage checks the bridge commands' usage errors and that a
// password is never taken from the command line.
func TestBridgeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bridge", "out", "--subject", "a"}, "--ring NAME and --subject SUBJECT are required"},
		{[]string{"bridge", "in", "--ring", "a"}, "--ring NAME and --subject SUBJECT are required"},
		{[]string{"bridge", "out", "--ring", "a", "--subject", "a.*"}, "wildcards"},
		{[]string{"bridge", "out", "--ring", "a", "--subject", "s", "--encoding", "png"}, "use raw or jpeg"},
		{[]string{"bridge", "out", "--ring", "a", "--subject", "s", "--quality", "0"}, "--quality 0"},
		{[]string{"bridge", "in", "--ring", "a", "--subject", "s", "--slots", "3"}, "--slots 3"},
		{[]string{"bridge", "in", "--ring", "a", "--subject", "s", "--password", "x"}, "unknown flag: --password"},
		{[]string{"bridge", "in", "--ring", "a", "--subject", "s", "--token", "x"}, "unknown flag: --token"},
		{[]string{"bridge", "in", "--ring", "a", "--subject", "s", "--creds", "c", "--nkey", "k"}, "give one of"},
	} {
		res := cli(t, tc.args...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q; stderr:\n%s", tc.args, res.code, tc.want, res.stderr)
		}
	}
}
