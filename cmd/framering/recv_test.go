package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// TestRecvStartAndSummary reads a ring of 20 finished frames from each
// start position and checks the summary line and the JSON summary to the
// frame: an 8-slot ring holds frames 13..20.
func TestRecvStartAndSummary(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "24x8x3", "--count", "20", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	for _, tc := range []struct {
		start                  string
		count                  string
		delivered, first, last int64
	}{
		{"oldest", "8", 8, 13, 20},
		{"oldest", "3", 3, 13, 15},
		{"newest", "1", 1, 20, 20},
	} {
		res := cli(t, "recv", "--ring", name, "--dir", dir, "--start", tc.start, "--count", tc.count, "--verify", "-q")
		if res.code != 0 {
			t.Fatalf("recv --start %s: exit %d\n%s", tc.start, res.code, res.stderr)
		}
		kv := summaryKV(t, res.stdout)
		want := map[string]int64{"delivered": tc.delivered, "window_start": tc.first, "last": tc.last, "considered": tc.delivered,
			"dropped": 0, "lapped": 0, "verified": tc.delivered, "mismatches": 0, "latency_samples": tc.delivered}
		for k, v := range want {
			if kv[k] != v {
				t.Errorf("recv --start %s --count %s: %s=%d, want %d\n%s", tc.start, tc.count, k, kv[k], v, res.stdout)
			}
		}
		if kv["delivered"]+kv["dropped"] != kv["last"]-kv["window_start"]+1 {
			t.Errorf("accounting: %v", kv)
		}
		// The Python CLI's keys first, in its order.
		line := res.stdout[strings.Index(res.stdout, "summary "):]
		if !strings.HasPrefix(line, "summary delivered=") || !strings.Contains(line, " resets=0 window_start=") ||
			!strings.Contains(line, " considered=") || !strings.Contains(line, " mismatches=0 abandoned=0 latency_samples=") {
			t.Errorf("summary line not in the documented order: %s", line)
		}

		js := cli(t, "recv", "--ring", name, "--dir", dir, "--start", tc.start, "--count", tc.count, "--json", "-q")
		var sum map[string]any
		if err := json.Unmarshal([]byte(js.stdout), &sum); err != nil || js.code != 0 {
			t.Fatalf("recv --json: exit %d, %v\n%s", js.code, err, js.stdout)
		}
		for k, v := range want {
			if k == "verified" {
				continue
			}
			if got, ok := sum[k].(float64); !ok || int64(got) != v {
				t.Errorf("recv --json --start %s: %s = %v, want %d", tc.start, k, sum[k], v)
			}
		}
		if sum["ring"] != name || sum["start"] != tc.start || sum["mode"] != "all" {
			t.Errorf("recv --json: %v", sum)
		}
	}

	// next: no frame comes; --timeout ends it with the summary printed.
	res := cli(t, "recv", "--ring", name, "--dir", dir, "--start", "next", "--timeout", "300ms", "-q")
	if res.code != 1 || !strings.Contains(res.stderr, "no frame for 300ms") {
		t.Fatalf("recv --start next: exit %d\n%s", res.code, res.stderr)
	}
	if kv := summaryKV(t, res.stdout); kv["delivered"] != 0 || kv["considered"] != 0 {
		t.Errorf("recv --start next: %v", kv)
	}
}

// TestRecvTruncated truncates a ring under a running recv (its writer
// stopped with SIGSTOP, so that only the reader meets the truncation):
// recv must say so without a runtime error, keep going, and read the ring
// a new writer makes.
func TestRecvTruncated(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	send := start(t, "send", "--ring", name, "--dir", dir, "--pattern", "32x8x3", "--fps", "100", "-q")
	if _, err := send.Expect("ring ", shortWait); err != nil {
		t.Fatal(err)
	}
	recv := start(t, "recv", "--ring", name, "--dir", dir, "--verify", "--eof", "--timeout", "30s")
	testutil.Eventually(t, "recv's first stats line", func() bool { return strings.Contains(recv.Stderr(), "fps, latency") })
	send.Signal(syscall.SIGSTOP)
	if err := os.Truncate(ring.Path(dir, name), 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "recv reporting the truncation", func() bool { return strings.Contains(recv.Stderr(), "truncated") })
	send.Kill()
	// recv keeps waiting; a new writer replaces the ring.
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "32x8x3", "--count", "10", "--fps", "100", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	res := finish(t, recv)
	if res.code != 0 {
		t.Fatalf("recv after truncation: exit %d, want 0\n%s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "runtime error") || strings.Contains(res.stderr, "invalid memory address") {
		t.Errorf("the truncation message reads like a crash:\n%s", res.stderr)
	}
	if n := strings.Count(res.stderr, "truncated"); n != 1 {
		t.Errorf("the truncation was reported %d times, want once:\n%s", n, res.stderr)
	}
	kv := summaryKV(t, res.stdout)
	if kv["resumes"] < 1 || kv["mismatches"] != 0 || kv["delivered"] < 1 || kv["delivered"]+kv["dropped"] != kv["considered"] {
		t.Errorf("summary after re-opening: %v", kv)
	}
}

// TestRecvTrust: a group-writable ring, and one owned by another user
// (as root only), are refused with advice naming recv's flags, and read
// with them.
func TestRecvTrust(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "16x8x1", "--count", "4", "--fps", "0", "--perm", "0660", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	path := ring.Path(dir, name)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("send --perm 0660 made %v (%v)", fi.Mode(), err)
	}
	res := cli(t, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--count", "2", "-q")
	if res.code != 1 || !strings.Contains(res.stderr, "group-writable") || !strings.Contains(res.stderr, "--allow-group-writable") ||
		strings.Contains(res.stderr, "AllowOtherOwner") {
		t.Errorf("group-writable ring: exit %d\n%s", res.code, res.stderr)
	}
	res = cli(t, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--count", "2", "--allow-group-writable", "--verify", "-q")
	if res.code != 0 || summaryKV(t, res.stdout)["verified"] != 2 {
		t.Errorf("recv --allow-group-writable: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	res = cli(t, "recv", "--ring", name, "--dir", dir, "--allow-group-writable", "--allow-other-owner", "-q")
	if res.code != 1 || !strings.Contains(res.stderr, "world-writable") || strings.Contains(res.stderr, "give recv --allow") {
		t.Errorf("world-writable ring: exit %d\n%s", res.code, res.stderr)
	}
	os.Chmod(path, 0o600)

	if os.Geteuid() != 0 {
		t.Skip("the other-owner case needs root (chown)")
	}
	if err := os.Chown(path, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	res = cli(t, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--count", "2", "-q")
	if res.code != 1 || !strings.Contains(res.stderr, "belongs to uid 12345") || !strings.Contains(res.stderr, "--allow-other-owner") {
		t.Errorf("another user's ring: exit %d\n%s", res.code, res.stderr)
	}
	res = cli(t, "recv", "--ring", name, "--dir", dir, "--start", "oldest", "--count", "2", "--allow-other-owner", "--verify", "-q")
	if res.code != 0 || summaryKV(t, res.stdout)["verified"] != 2 {
		t.Errorf("recv --allow-other-owner: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestNoSpace asks for a ring larger than any shared-memory file system
// (32 slots of 16 GiB, 512 GiB): the error names the ring and says its cause once,
// and nothing is left behind.
func TestNoSpace(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	start := time.Now()
	res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "65536x65536x4", "--slots", "32", "-q")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, `ring "`+name+`"`) || strings.Count(res.stderr, "not enough space") != 1 ||
		strings.Contains(res.stderr, ".framering-tmp") || !strings.Contains(res.stderr, "--shm-size=") {
		t.Errorf("no-space message:\n%s", res.stderr)
	}
	if left := ringFiles(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("%s(%v)", res.stderr, time.Since(start).Round(time.Millisecond))
}
