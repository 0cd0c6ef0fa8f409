package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/framering/framering/bridge"
	"github.com/framering/framering/internal/proc"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
	"github.com/nats-io/nats.go"
)

// stopChild sends SIGTERM to c and returns its exit status and its stdout
// since the last line read.
func stopChild(t *testing.T, c *testutil.Child) (int, string) {
	t.Helper()
	c.Signal(syscall.SIGTERM)
	res := finish(t, c)
	return res.code, res.stdout
}

// TestBridgeEndToEnd runs send --pattern -> bridge out -> NATS (Debian's
// nats-server) -> bridge in -> recv --verify as separate processes (this
// test binary re-executed as the framering command): every frame recv gets matches the test pattern of its
// number, so numbers and pixels crossed the bridge intact.
func TestBridgeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 5 processes: skipped in -short mode")
	}
	server, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (apt-get install nats-server): skipping the bridge end-to-end test")
	}
	tmp := t.TempDir()
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
	srv, err := proc.Start("nats-server", exec.Command(server, "-c", conf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(shortWait)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-srv.Done():
			t.Fatalf("nats-server exited: %v\n%s", srv.Err(), srv.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen on %d: %v\n%s", port, err, srv.Stderr())
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
			in := start(t, "bridge", "in", "--nats", url, "--subject", subject, "--ring", dst, "--dir", dir, "-q", "--metrics", maddr)
			out := start(t, "bridge", "out", "--ring", src, "--dir", dir, "--nats", url, "--subject", subject, "--encoding", tc.encoding, "-q")
			recv := start(t, "recv", "--ring", dst, "--dir", dir, "--wait", "--verify", "--count", "60", "--timeout", "30s", "-q")
			send := start(t, "send", "--ring", src, "--dir", dir, "--pattern", tc.size, "--fps", "100", "--count", "3000", "-q")
			res := finish(t, recv)
			stopChild(t, send)
			if res.code != 0 {
				t.Fatalf("recv: exit %d\nstdout:\n%s\nstderr:\n%s\nbridge in stderr:\n%s\nbridge out stderr:\n%s",
					res.code, res.stdout, res.stderr, in.Stderr(), out.Stderr())
			}
			got, dropped, verified, bad := parseSummary(t, res.stdout)
			t.Logf("recv: %s", strings.TrimSpace(res.stdout))
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
			summary := map[string]string{}
			for side, c := range map[string]*testutil.Child{"out": out, "in": in} {
				code, stdout := stopChild(t, c)
				if code != 0 {
					t.Errorf("bridge %s after SIGTERM: exit %d\n%s", side, code, c.Stderr())
				}
				t.Logf("%s", strings.TrimSpace(stdout))
				summary[side] = stdout
			}
			if !strings.Contains(summary["out"], "bridge out: read ") || !strings.Contains(summary["in"], "bridge in: received ") {
				t.Errorf("no summary lines:\n%s\n%s", summary["out"], summary["in"])
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
		{[]string{"bridge", "out", "--ring", "a", "--subject", "s", "--hung-after", "0s"}, "--hung-after 0s"},
		{[]string{"bridge", "in", "--ring", "a", "--subject", "s", "--slots", "3"}, "--slots: invalid frame: slot count 3"},
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

// TestBridgeAdvice checks that the bridge's errors get their advice from
// advice, as every command's do, and that the library's errors carry none.
func TestBridgeAdvice(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("bridge out: --password-file: %w: %w", errSecret, fs.ErrNotExist), "holding the secret"},
		{fmt.Errorf("bridge in: connect to nats://hub:4222: %w", nats.ErrAuthorization), "--creds or --nkey"},
		{fmt.Errorf("bridge in: connect to tls://hub:4222: tls: failed to verify certificate: x509: certificate signed by unknown authority"), "--tls-ca"},
		{fmt.Errorf("bridge out: ring %q frame 7: %w: JPEG cannot carry gray16 frames", "cam0", bridge.ErrUnsupported), "--encoding raw"},
		{fmt.Errorf("bridge in: %w", &ring.BusyError{Ring: "cam0", PID: 4121}), "stop the producer"},
	} {
		if a := advice(tc.err); !strings.Contains(a, tc.want) {
			t.Errorf("advice(%v) = %q, want it to mention %q", tc.err, a, tc.want)
		}
		if strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("the error %q already says %q", tc.err, tc.want)
		}
	}
	var ue usageError
	if err := bridgeErr("in", fmt.Errorf("%w: no subject", bridge.ErrConfig)); !errors.As(err, &ue) {
		t.Errorf("bridgeErr(ErrConfig) = %v, want a usage error", err)
	}
	// The command line: a password file that is not there.
	res := cli(t, "bridge", "out", "--ring", "a", "--subject", "s", "--user", "u", "--password-file", filepath.Join(t.TempDir(), "none"))
	if res.code != 1 || !strings.Contains(res.stderr, "no such file") || !strings.Contains(res.stderr, "holding the secret on its first line") {
		t.Errorf("bridge out with a missing --password-file: exit %d, stderr:\n%s", res.code, res.stderr)
	}
}
