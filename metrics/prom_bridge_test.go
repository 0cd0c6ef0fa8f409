package metrics

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/framering/framering/internal/proc"
	"github.com/framering/framering/internal/testutil"
)

// bridgeAddrRE finds where a framering command serves /metrics in its
// stderr ("metrics on http://ADDR/metrics").
var bridgeAddrRE = regexp.MustCompile(`metrics on http://([^/\s]+)/metrics`)

// bridgeTargets starts a NATS bridge of ring (framering bridge out, Debian's
// nats-server, framering bridge in into a new ring in dir) and returns the
// two bridge ends' metrics endpoints, so that TestPrometheus checks the
// dashboard's bridge panels too. It returns none, and TestPrometheus
// excuses those panels, when the framering command has no bridge (issue
// 12, built on its own branch) or nats-server or the go command is
// missing; it says which in the test log.
//
// $FRAMERING_BRIDGE_BIN names a framering binary to use instead of
// building ../cmd/framering (a bridge built on another branch).
func bridgeTargets(t *testing.T, dir, ring string) []string {
	t.Helper()
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Log("nats-server not installed: no bridge; the dashboard's bridge panels are not checked for data")
		return nil
	}
	bin := os.Getenv("FRAMERING_BRIDGE_BIN")
	if bin == "" {
		goBin, err := exec.LookPath("go")
		if err != nil {
			t.Log("no go command to build framering: no bridge; the dashboard's bridge panels are not checked for data")
			return nil
		}
		bin = filepath.Join(t.TempDir(), "framering")
		if out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/framering").CombinedOutput(); err != nil {
			t.Fatalf("go build ../cmd/framering: %v\n%s", err, out)
		}
	}
	if err := exec.Command(bin, "bridge", "--help").Run(); err != nil {
		t.Log("framering has no bridge command on this branch: the dashboard's bridge panels are not checked for data")
		return nil
	}

	natsAddr := freeAddr(t)
	host, port, _ := net.SplitHostPort(natsAddr)
	start := func(name string, args ...string) *proc.Proc {
		p, err := proc.Start(name, exec.Command(args[0], args[1:]...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		return p
	}
	srv := start("nats-server", natsBin, "-a", host, "-p", port)
	testutil.Eventually(t, "nats-server listens on "+natsAddr, func() bool {
		select {
		case <-srv.Done():
			t.Fatalf("nats-server exited: %v\n%s", srv.Err(), srv.Stderr())
		default:
		}
		c, err := net.DialTimeout("tcp", natsAddr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	url := "nats://" + natsAddr
	const subject = "framering.e2e"
	out := start("bridge out", bin, "bridge", "out", "--ring", ring, "--dir", dir, "--nats", url, "--subject", subject, "--metrics", "127.0.0.1:0")
	in := start("bridge in", bin, "bridge", "in", "--ring", testutil.Name(t), "--dir", dir, "--nats", url, "--subject", subject, "--metrics", "127.0.0.1:0")
	var addrs []string
	for _, p := range []*proc.Proc{out, in} {
		testutil.Eventually(t, p.Name+" serves its metrics", func() bool {
			select {
			case <-p.Done():
				t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), p.Stderr())
			default:
			}
			if m := bridgeAddrRE.FindStringSubmatch(p.Stderr()); m != nil {
				addrs = append(addrs, m[1])
				return true
			}
			return false
		})
	}
	t.Logf("bridge out and in of ring %s over nats-server: metrics on %v", ring, addrs)
	return addrs
}
